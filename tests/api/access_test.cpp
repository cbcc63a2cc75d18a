// The access rules of launch/accounts.hpp, one case each, through a real
// launch-server: each case fails if its rule is taken out of the Service.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "api_client.hpp"
#include "launch/transport.hpp"
#include "support/launch_server.hpp"
#include "support/temp_dir.hpp"

using api_test::Answer;
using api_test::Api;
using launch_test::LaunchServer;
using launch_test::TempDir;

namespace {

const char* kJob =
    R"({"name":"j","source":{"image":"busybox"},"entry_point":["true"],"author":"mallory"})";

// A server with: admin (server admin); users alice, bob, carol; team ml
// (alice admin, bob member, carol not in it) with service account "agent";
// queues alice/private (personal) and ml/shared (the team's).
struct World {
  TempDir dir{"launch-api-access"};
  LaunchServer server{"sqlite://" + dir.path() + "/launch.db"};
  Api api{server.url()};
  std::string admin = server.admin_key(), alice, bob, carol, agent;

  World() {
    for (const char* u : {"alice", "bob", "carol"}) {
      REQUIRE(api.call("POST", "/users", admin, std::string("{\"name\":\"") + u + "\"}").status ==
              201);
    }
    alice = api.key_for_user(admin, "alice");
    bob = api.key_for_user(admin, "bob");
    carol = api.key_for_user(admin, "carol");
    REQUIRE(api.call("POST", "/teams", alice, R"({"name":"ml"})").status == 201);
    REQUIRE(api.call("PUT", "/teams/ml/members/bob", alice, R"({"role":"member"})").status == 204);
    REQUIRE(api.call("POST", "/teams/ml/service-accounts", alice, R"({"name":"agent"})").status ==
            201);
    agent = api.key_for_sa(alice, "ml", "agent");
    REQUIRE(create_queue(alice, "alice", "private").status == 201);
    REQUIRE(create_queue(alice, "ml", "shared").status == 201);
  }

  Answer create_queue(const std::string& key, const std::string& entity, const std::string& name,
                      const std::string& extra = "") {
    return api.call("POST", "/queues", key,
                    "{\"entity\":\"" + entity + "\",\"name\":\"" + name +
                        "\",\"resource\":\"local-process\"" + extra + "}");
  }
  Answer push(const std::string& key, const std::string& queue, const std::string& job = kJob) {
    return api.call("POST", "/queues/" + queue + "/items", key, job);
  }
  std::string item_id(const Answer& a) {
    auto d = a.json();
    return launch::json::get_string(d, "id", "item");
  }
};

bool lists_queue(const Answer& a, const std::string& entity, const std::string& name) {
  auto d = a.json();
  for (const auto& q : d.GetArray()) {
    if (launch::json::get_string(q, "entity", "q") == entity &&
        launch::json::get_string(q, "name", "q") == name) {
      return true;
    }
  }
  return false;
}

}  // namespace

TEST_CASE("api access: no key, a key of nobody and a revoked key are unauthenticated") {
  World w;
  CHECK(w.api.call("GET", "/health", "").status == 200);  // the one open route
  Answer none = w.api.call("GET", "/queues", "");
  CHECK(none.status == 401);
  CHECK(none.code() == "unauthenticated");
  CHECK(w.api.call("GET", "/queues", "lk_aaaaaaaa_notakeyatall").status == 401);
  CHECK(w.api.call("GET", "/queues", w.carol).status == 200);

  Answer made = w.api.call("POST", "/keys", w.carol, R"({"description":"laptop"})");
  REQUIRE(made.status == 201);
  std::string key = Api::key_of(made);
  std::string prefix = key.substr(0, 11);
  CHECK(w.api.call("GET", "/queues", key).status == 200);
  // Listed by prefix, never with its secret.
  Answer listed = w.api.call("GET", "/keys", w.carol);
  CHECK(listed.body.find(prefix) != std::string::npos);
  CHECK(listed.body.find(key) == std::string::npos);
  // Another user cannot revoke it, nor learn it exists.
  CHECK(w.api.call("DELETE", "/keys/" + prefix, w.bob).status == 404);
  CHECK(w.api.call("DELETE", "/keys/" + prefix, w.carol).status == 204);
  Answer revoked = w.api.call("GET", "/queues", key);
  CHECK(revoked.status == 401);
  CHECK(revoked.body.find("revoked") != std::string::npos);
  // The event stream is refused the same.
  CHECK(w.api.call("GET", "/events", key).status == 401);
}

TEST_CASE("api access: an expiring key stops working when it expires") {
  World w;
  std::string key =
      Api::key_of(w.api.call("POST", "/keys", w.carol, R"({"expires_in_seconds":1})"));
  CHECK(w.api.call("GET", "/queues", key).status == 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  CHECK(w.api.call("GET", "/queues", key).status == 401);
  CHECK(w.api.call("POST", "/keys", w.carol, R"({"expires_in_seconds":0})").status == 400);
}

TEST_CASE("api access: a personal queue is invisible to everyone but its owner") {
  World w;
  CHECK(lists_queue(w.api.call("GET", "/queues", w.alice), "alice", "private"));
  CHECK_FALSE(lists_queue(w.api.call("GET", "/queues", w.bob), "alice", "private"));
  CHECK(w.api.call("GET", "/queues/alice/private", w.bob).status == 404);
  CHECK(w.push(w.bob, "alice/private").status == 404);
  CHECK(w.push(w.agent, "alice/private").status == 404);
  Answer pushed = w.push(w.alice, "alice/private");
  REQUIRE(pushed.status == 201);
  std::string id = w.item_id(pushed);
  CHECK(w.api.call("GET", "/items/" + id, w.bob).status == 404);
  CHECK(w.api.call("POST", "/items/" + id + "/cancel", w.bob).status == 404);
  CHECK(w.api.call("GET", "/items/" + id + "/logs", w.bob).status == 404);
  CHECK(w.api.call("GET", "/items?queue=alice/private", w.bob).status == 404);
  CHECK(w.api.call("GET", "/items", w.bob).body.find("\"id\":\"" + id + "\"") ==
        std::string::npos);
  CHECK(w.api.call("GET", "/items", w.alice).body.find("\"id\":\"" + id + "\"") !=
        std::string::npos);
  // Nobody else may make queues in alice's name.
  CHECK(w.create_queue(w.bob, "alice", "planted").status == 404);
}

TEST_CASE("api access: a team queue takes pushes from every member and the team's agents") {
  World w;
  CHECK(w.push(w.alice, "ml/shared").status == 201);
  CHECK(w.push(w.bob, "ml/shared").status == 201);
  CHECK(w.push(w.agent, "ml/shared").status == 201);
  CHECK(w.push(w.carol, "ml/shared").status == 404);
  CHECK(w.api.call("GET", "/queues/ml/shared", w.carol).status == 404);
  CHECK_FALSE(lists_queue(w.api.call("GET", "/queues", w.carol), "ml", "shared"));
  // Taken out of the team, bob loses it.
  REQUIRE(w.api.call("DELETE", "/teams/ml/members/bob", w.alice).status == 204);
  CHECK(w.push(w.bob, "ml/shared").status == 404);
}

TEST_CASE("api access: only a team's admins create, change or delete its queues") {
  World w;
  Answer by_member = w.create_queue(w.bob, "ml", "other");
  CHECK(by_member.status == 403);
  CHECK(by_member.code() == "forbidden");
  CHECK(w.create_queue(w.agent, "ml", "other").status == 403);
  CHECK(w.create_queue(w.carol, "ml", "other").status == 404);
  CHECK(w.api.call("DELETE", "/queues/ml/shared", w.bob).status == 403);
  CHECK(w.api.call("DELETE", "/queues/ml/shared", w.carol).status == 404);
  CHECK(w.api.call("GET", "/queues/ml/shared", w.bob).status == 200);  // still there
  // A member made admin may.
  REQUIRE(w.api.call("PUT", "/teams/ml/members/bob", w.alice, R"({"role":"admin"})").status ==
          204);
  CHECK(w.create_queue(w.bob, "ml", "other").status == 201);
  CHECK(w.api.call("DELETE", "/queues/ml/other", w.bob).status == 200);
  // Team membership is the team admins' too.
  CHECK(w.api.call("PUT", "/teams/ml/members/carol", w.carol, R"({"role":"admin"})").status ==
        404);
  REQUIRE(w.api.call("PUT", "/teams/ml/members/bob", w.alice, R"({"role":"member"})").status ==
          204);
  CHECK(w.api.call("PUT", "/teams/ml/members/carol", w.bob, R"({"role":"member"})").status ==
        403);
}

TEST_CASE("api access: the author is the pushing key's user, and an agent never changes it") {
  World w;
  Answer pushed = w.push(w.bob, "ml/shared");
  REQUIRE(pushed.status == 201);
  std::string id = w.item_id(pushed);
  CHECK(pushed.body.find("\"author\":\"bob\"") != std::string::npos);  // not "mallory"
  CHECK(pushed.body.find("mallory") == std::string::npos);
  Answer by_agent = w.push(w.agent, "ml/shared");
  CHECK(by_agent.body.find("\"author\":\"agent@ml\"") != std::string::npos);

  // The team's agent runs bob's item through the http transport.
  ::setenv("LAUNCH_API_KEY", w.agent.c_str(), 1);
  auto t = launch::open_transport(w.server.url());
  ::unsetenv("LAUNCH_API_KEY");
  auto claimed = t->claim({launch::QueueRef{"ml", "shared"}}, "agent-1");
  REQUIRE(claimed);
  CHECK(claimed->id == id);
  t->start(id, "agent-1", "");
  launch::QueueItem done = t->finish(id, "agent-1", 0);
  CHECK(done.state == launch::ItemState::finished);
  CHECK(done.spec.author == "bob");
  CHECK(w.api.call("GET", "/items/" + id, w.alice).body.find("\"author\":\"bob\"") !=
        std::string::npos);
}

TEST_CASE("api access: agents claim and report only on queues of their entity") {
  World w;
  REQUIRE(w.push(w.alice, "alice/private").status == 201);
  Answer foreign = w.api.call("POST", "/claims", w.agent,
                              R"({"agent_id":"a1","queues":["alice/private"]})");
  CHECK(foreign.status == 404);
  // Nothing was claimed: the item is still pending for alice.
  CHECK(w.api.call("GET", "/items?queue=alice/private&state=pending", w.alice).body.find(
            "\"state\":\"pending\"") != std::string::npos);
  Answer mixed = w.api.call("POST", "/claims", w.agent,
                            R"({"agent_id":"a1","queues":["ml/shared","alice/private"]})");
  CHECK(mixed.status == 404);

  // alice's own agent takes it; the team's agent cannot report on it.
  Answer mine = w.api.call("POST", "/claims", w.alice,
                           R"({"agent_id":"a2","queues":["alice/private"]})");
  REQUIRE(mine.status == 200);
  auto d = mine.json();
  std::string id = launch::json::get_string(d["item"], "id", "item");
  CHECK(w.api.call("POST", "/items/" + id + "/start", w.agent,
                   R"({"agent_id":"a2","run_id":"x"})")
            .status == 404);
  CHECK(w.api.call("POST", "/heartbeats", w.agent, "{\"agent_id\":\"a2\",\"items\":[\"" + id +
                                                       "\"]}")
            .status == 404);
  CHECK(w.api.call("PUT", "/agents/a3", w.agent,
                   R"({"id":"a3","status":"polling","entity":"alice","queues":["alice/private"]})")
            .status == 404);
  CHECK(w.api.call("PUT", "/agents/a3", w.agent,
                   R"({"id":"a3","status":"polling","entity":"ml","queues":["ml/shared"]})")
            .status == 204);
  // The agents page shows alice none of the team's agents she is not in...
  CHECK(w.api.call("GET", "/agents", w.carol).body == "[]");
  CHECK(w.api.call("GET", "/agents", w.bob).body.find("\"a3\"") != std::string::npos);
}

TEST_CASE("api access: only server admins make users; a service account makes no keys") {
  World w;
  CHECK(w.api.call("POST", "/users", w.alice, R"({"name":"dave"})").status == 403);
  CHECK(w.api.call("GET", "/users", w.alice).status == 403);
  CHECK(w.api.call("POST", "/keys", w.agent, "{}").status == 403);
  CHECK(w.api.call("POST", "/keys", w.bob, R"({"user":"alice"})").status == 403);
  CHECK(w.api.call("POST", "/keys", w.bob, R"({"team":"ml","service_account":"agent"})").status ==
        403);
  CHECK(w.api.call("POST", "/teams/ml/service-accounts", w.bob, R"({"name":"x"})").status == 403);
  // Users and teams share one namespace of entities.
  CHECK(w.api.call("POST", "/teams", w.bob, R"({"name":"alice"})").status == 409);
  CHECK(w.api.call("POST", "/users", w.admin, R"({"name":"ml"})").status == 409);
}

TEST_CASE("api access: /me names the caller and the entities it may use") {
  World w;
  Answer me = w.api.call("GET", "/me", w.bob);
  REQUIRE(me.status == 200);
  CHECK(me.body.find("\"name\":\"bob\"") != std::string::npos);
  CHECK(me.body.find(R"({"name":"ml","kind":"team","role":"member"})") != std::string::npos);
  CHECK(me.body.find(R"({"name":"bob","kind":"user","role":"owner"})") != std::string::npos);
  CHECK(w.api.call("GET", "/me", w.agent).body.find("\"kind\":\"service_account\"") !=
        std::string::npos);
}
