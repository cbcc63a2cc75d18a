// The launch server's API as a client sees it: the OpenAPI document and
// the routes it answers agree; the store's own rules (templates,
// priorities) hold whoever the client is; bad, oversized and slow requests
// are refused without harm to other clients; event streams.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <memory>
#include <set>
#include <sstream>
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

std::string run_command(const std::string& command, int* rc) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  REQUIRE(p);
  std::array<char, 4096> buf;
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  *rc = ::pclose(p);
  return out;
}

// A TCP connection of our own, to send what no well-behaved client would.
class RawSocket {
 public:
  explicit RawSocket(const std::string& url) {
    std::string hostport = url.substr(url.find("://") + 3);
    int port = std::stoi(hostport.substr(hostport.rfind(':') + 1));
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~RawSocket() { ::close(fd_); }
  void send(const std::string& data) {
    REQUIRE(::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size()));
  }
  // What the server sends until it closes the connection or `timeout`
  // passes; `closed` tells which.
  std::string read_until_closed(std::chrono::milliseconds timeout, bool* closed) {
    std::string out;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    *closed = false;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      deadline - std::chrono::steady_clock::now())
                                      .count());
      if (::poll(&p, 1, std::max(left, 1)) <= 0) continue;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        *closed = true;
        break;
      }
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }

 private:
  int fd_ = -1;
};

struct Served {
  TempDir dir{"launch-api"};
  LaunchServer server;
  Api api{""};
  std::string key;
  explicit Served(std::vector<std::string> args = {})
      : server("sqlite://" + dir.path() + "/launch.db", nullptr, true, std::move(args)),
        api(server.url()),
        key(server.admin_key()) {}
};

}  // namespace

TEST_CASE("api: docs/openapi.yaml is valid OpenAPI 3 and names every route the server answers") {
  int rc = 0;
  std::string listing =
      run_command("node " LAUNCH_SOURCE_DIR "/tests/node/openapi/validate.js " LAUNCH_SOURCE_DIR
                  "/docs/openapi.yaml 2>&1",
                  &rc);
  INFO(listing);
  REQUIRE(rc == 0);
  Served s;
  // Each documented operation is answered by a route (whatever the status
  // for these dummy arguments, never "no such route"), and with a status
  // the document lists for it.
  std::istringstream lines(listing);
  std::string method, path, codes;
  std::set<std::string> documented;
  int operations = 0;
  while (lines >> method >> path >> codes) {
    documented.insert(method + " " + path);
    std::string concrete = path;
    for (auto [from, to] : {std::pair<const char*, const char*>{"{entity}", "team"},
                            {"{name}", "nope"},
                            {"{id}", "999"},
                            {"{team}", "noteam"},
                            {"{user}", "nouser"},
                            {"{prefix}", "lk_nokey"}}) {
      for (std::size_t at; (at = concrete.find(from)) != std::string::npos;) {
        concrete.replace(at, std::string(from).size(), to);
      }
    }
    if (path == "/events") continue;  // a stream: tested below
    Answer a = s.api.call(method, concrete, s.key, method == "GET" || method == "DELETE" ? "" : "{}");
    CAPTURE(method);
    CAPTURE(concrete);
    CAPTURE(a.body);
    CHECK(a.body.find("no such route") == std::string::npos);
    CHECK(("," + codes + ",").find("," + std::to_string(a.status) + ",") != std::string::npos);
    ++operations;
  }
  CHECK(operations >= 30);
  // And what is not documented is not there.
  CHECK(s.api.call("GET", "/nope", s.key).status == 404);
  CHECK(s.api.call("PATCH", "/queues", s.key, "{}").status == 501);
  for (const char* op : {"GET /me", "GET /resources", "POST /keys", "GET /items/{id}/logs",
                         "POST /teams", "PUT /teams/{team}/members/{user}"}) {
    CAPTURE(op);
    CHECK(documented.count(op) == 1);
  }
}

TEST_CASE("api: template values and priorities are enforced by the server for a raw client") {
  Served s;
  REQUIRE(s.api
              .call("POST", "/queues", s.key,
                    R"({"entity":"team","name":"gpu","resource":"local-process",)"
                    R"("config":"env:\n  GPUS: \"{{gpus}}\"\n",)"
                    R"("template_variables":{"gpus":{"type":"integer","minimum":1,"maximum":4}}})")
              .status == 201);
  Answer too_many = s.api.call(
      "POST", "/queues/team/gpu/items", s.key,
      R"({"name":"j","source":{"image":"x"},"entry_point":["true"],"template_values":{"gpus":"9"}})");
  CHECK(too_many.status == 400);
  CHECK(too_many.body.find("gpus") != std::string::npos);
  Answer prioritized = s.api.call(
      "POST", "/queues/team/gpu/items", s.key,
      R"({"name":"j","source":{"image":"x"},"entry_point":["true"],"priority":"high","template_values":{"gpus":"2"}})");
  CHECK(prioritized.status == 400);
  CHECK(prioritized.body.find("priorit") != std::string::npos);
  // Nothing was queued by either.
  CHECK(s.api.call("GET", "/items?queue=team/gpu", s.key).body == "[]");
  CHECK(s.api
            .call("POST", "/queues/team/gpu/items", s.key,
                  R"({"name":"j","source":{"image":"x"},"entry_point":["true"],"template_values":{"gpus":"2"}})")
            .status == 201);
}

TEST_CASE("api: malformed, oversized and slow requests are refused; others are served") {
  Served s({"--request-read-seconds", "2"});
  // Malformed JSON: a 400 naming what was wrong, in the error body.
  Answer bad = s.api.call("POST", "/queues", s.key, "{\"entity\": ");
  CHECK(bad.status == 400);
  CHECK(bad.code() == "invalid");
  Answer wrong_type = s.api.call("POST", "/queues", s.key,
                                 R"({"entity":"team","name":"q","resource":"local-process","lease_seconds":"x"})");
  CHECK(wrong_type.status == 400);
  CHECK(wrong_type.body.find("lease_seconds") != std::string::npos);

  // Not HTTP at all.
  {
    RawSocket raw(s.server.url());
    raw.send("\x16\x03\x01 this is not http\r\n\r\n");
    bool closed = false;
    std::string answer = raw.read_until_closed(std::chrono::seconds(5), &closed);
    CHECK(answer.rfind("HTTP/1.1 400", 0) == 0);
    CHECK(closed);
  }
  // A body larger than the limit: 413, before it is read whole.
  {
    RawSocket raw(s.server.url());
    raw.send("POST /api/v1/queues HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + s.key +
             "\r\nContent-Type: application/json\r\nContent-Length: " +
             std::to_string(launch::api::kMaxRequestBodyBytes + 1) + "\r\n\r\n{");
    bool closed = false;
    std::string answer = raw.read_until_closed(std::chrono::seconds(5), &closed);
    CHECK(answer.rfind("HTTP/1.1 413", 0) == 0);
  }
  // A header larger than the limit: 431.
  {
    RawSocket raw(s.server.url());
    raw.send("GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " +
             std::string(launch::api::kMaxRequestHeaderBytes + 10, 'a') + "\r\n\r\n");
    bool closed = false;
    std::string answer = raw.read_until_closed(std::chrono::seconds(5), &closed);
    CHECK(answer.rfind("HTTP/1.1 431", 0) == 0);
  }
  // Slow loris: many connections that send half a header and stall. The
  // server keeps answering everyone else at once, and drops them after
  // the read time (2 s here).
  std::vector<std::unique_ptr<RawSocket>> slow;
  for (int i = 0; i < 50; ++i) {
    slow.push_back(std::make_unique<RawSocket>(s.server.url()));
    slow.back()->send("GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ");
  }
  for (int i = 0; i < 20; ++i) {
    auto start = std::chrono::steady_clock::now();
    CHECK(s.api.call("GET", "/queues", s.key).status == 200);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
  }
  bool closed = false;
  slow.front()->read_until_closed(std::chrono::seconds(6), &closed);
  CHECK(closed);
}

TEST_CASE("api: an event stream wakes a remote agent's transport, and shows only what its caller may see") {
  Served s;
  Api& api = s.api;
  REQUIRE(api.call("POST", "/users", s.key, R"({"name":"carol"})").status == 201);
  std::string carol = api.key_for_user(s.key, "carol");
  REQUIRE(api.call("POST", "/queues", s.key,
                   R"({"entity":"team","name":"q","resource":"local-process"})")
              .status == 201);
  REQUIRE(api.call("POST", "/queues", carol,
                   R"({"entity":"carol","name":"mine","resource":"local-process"})")
              .status == 201);

  ::setenv("LAUNCH_API_KEY", carol.c_str(), 1);
  auto as_carol = launch::open_transport(s.server.url());
  ::setenv("LAUNCH_API_KEY", s.key.c_str(), 1);
  auto as_admin = launch::open_transport(s.server.url());
  ::unsetenv("LAUNCH_API_KEY");
  int carol_fd = as_carol->notify_fd();
  int admin_fd = as_admin->notify_fd();
  as_carol->drain_notify();
  as_admin->drain_notify();

  auto readable = [](int fd, int ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, ms) == 1;
  };
  // Work on a team queue carol is not in: the admin's stream wakes, carol's
  // does not... (the store's own wake-up is "anyone's", so wait it out).
  launch::JobSpec spec;
  spec.name = "j";
  spec.source.kind = launch::JobSource::Kind::image;
  spec.source.image = "x";
  spec.entry_point = {"true"};
  as_admin->push({"team", "q"}, spec);
  CHECK(readable(admin_fd, 5000));
  // Carol's own push wakes her within milliseconds.
  as_carol->drain_notify();
  auto start = std::chrono::steady_clock::now();
  as_carol->push({"carol", "mine"}, spec);
  CHECK(readable(carol_fd, 5000));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(1));

  // Item events of the team queue never reach carol's raw stream.
  RawSocket raw(s.server.url());
  raw.send("GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + carol +
           "\r\n\r\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto item = as_admin->claim({{"team", "q"}}, "agent-x");
  REQUIRE(item);
  as_carol->cancel(as_carol->list({launch::QueueRef{"carol", "mine"}, std::nullopt, "", 0})[0].id);
  bool closed = false;
  std::string seen = raw.read_until_closed(std::chrono::milliseconds(1500), &closed);
  CHECK(seen.find("HTTP/1.1 200") == 0);
  CHECK(seen.find("\"queue\":\"carol/mine\"") != std::string::npos);
  CHECK(seen.find("team/q") == std::string::npos);
}

TEST_CASE("api: a refused queue names the field it concerns, for a form to show it there") {
  Served s;
  auto field_of = [&](const std::string& body) {
    Answer a = s.api.call("POST", "/queues", s.key, body);
    CAPTURE(a.body);
    CHECK(a.status == 400);
    auto d = a.json();
    const auto& f = d["error"]["field"];
    return f.IsString() ? std::string(f.GetString()) : std::string("(null)");
  };
  CHECK(field_of(R"({"entity":"team","name":"bad name","resource":"local-process"})") == "name");
  CHECK(field_of(R"({"entity":"team","name":"q","resource":"nope"})") == "resource");
  CHECK(field_of(R"({"entity":"team","name":"q","resource":"local-process","config":"a: [1"})") ==
        "config");
  CHECK(field_of(R"({"entity":"team","name":"q","resource":"local-process",)"
                 R"("template_variables":{"n":{"type":"integer","minimum":5,"maximum":1}}})")
            .rfind("template_variables.n", 0) == 0);
  CHECK(field_of(R"({"entity":"bad entity","name":"q","resource":"local-process"})") == "entity");
}

TEST_CASE("api: /metrics in Prometheus' text format, for server admins") {
  Served s;
  REQUIRE(s.api.call("POST", "/queues", s.key,
                     R"({"entity":"team","name":"m","resource":"local-process"})")
              .status == 201);
  for (int i = 0; i < 3; ++i) {
    REQUIRE(s.api.call("POST", "/queues/team/m/items", s.key,
                       R"({"name":"j","source":{"image":"x"},"entry_point":["true"]})")
                .status == 201);
  }
  REQUIRE(s.api.call("POST", "/claims", s.key, R"({"agent_id":"a","queues":["team/m"]})").status ==
          200);
  // launch-server answers at /metrics too, where Prometheus looks.
  launch::http::Client client;
  launch::http::Request r;
  r.url = s.server.url() + "/metrics";
  r.headers.set("Authorization", "Bearer " + s.key);
  auto res = client.send(r, true);
  REQUIRE(res.status == 200);
  const std::string& m = res.body;
  CHECK(m.find("# TYPE launch_items gauge") != std::string::npos);
  CHECK(m.find("launch_items{queue=\"team/m\",state=\"pending\"} 2\n") != std::string::npos);
  CHECK(m.find("launch_items{queue=\"team/m\",state=\"claimed\"} 1\n") != std::string::npos);
  CHECK(m.find("launch_claim_wait_seconds_count 1\n") != std::string::npos);
  CHECK(m.find("launch_http_requests_total{method=\"POST\",code=\"201\"} 4\n") !=
        std::string::npos);
  CHECK(m.find("launch_agents{status=\"polling\"} 0\n") != std::string::npos);
  REQUIRE(s.api.call("POST", "/users", s.key, R"({"name":"u"})").status == 201);
  CHECK(s.api.call("GET", "/metrics", s.api.key_for_user(s.key, "u")).status == 403);
  CHECK(s.api.call("GET", "/metrics", "").status == 401);
}
