// The test API server speaks the real protocol: the real kubectl
// (/usr/bin/kubectl) lists, watches and deletes against it; and it refuses
// Jobs the published schema refuses, as the real API server does.
#include <doctest/doctest.h>

#include <fstream>

#include "kube_server.hpp"
#include "support/temp_dir.hpp"
#include "util/process.hpp"

using namespace launch;
using launch_test::TempDir;

namespace {

const char* kJob = R"({"apiVersion": "batch/v1", "kind": "Job",
  "metadata": {"generateName": "kubectl-test-", "labels": {"launch.item-id": "item-1"}},
  "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
    "containers": [{"name": "main", "image": "busybox",
                    "command": ["sh", "-c", "echo hello $WHO; sleep 0.2; exit 0"],
                    "env": [{"name": "WHO", "value": "kubectl"}]}]}}}})";

struct Kubectl {
  TempDir dir{"launch-kubectl"};
  std::string config = dir / "kubeconfig";
  Kubectl() { std::ofstream(config) << kube_test::Server::get().kubeconfig(); }
  util::ProcessResult run(std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/kubectl", "--kubeconfig", config});
    util::ProcessOptions o;
    o.stderr_mode = util::StderrMode::capture;
    o.timeout = std::chrono::seconds(120);
    // kubectl's discovery cache goes under $HOME.
    o.extra_env = {"HOME=" + dir.path(), "KUBECACHEDIR=" + dir / "cache"};
    return util::run_process(args, o);
  }
};

std::string created_name(const http::Response& r) {
  rapidjson::Document d;
  d.Parse(r.body.c_str());
  return d["metadata"]["name"].GetString();
}

}  // namespace

TEST_CASE("kubectl lists, waits on (watch) and deletes Jobs on the test API server") {
  kube_test::Server& s = kube_test::Server::get();
  http::Response r = s.post("/apis/batch/v1/namespaces/default/jobs", kJob);
  REQUIRE(r.status == 201);
  std::string name = created_name(r);
  CHECK(name.rfind("kubectl-test-", 0) == 0);
  CHECK(name.size() == std::string("kubectl-test-").size() + 5);

  Kubectl k;
  util::ProcessResult w = k.run({"wait", "--for=condition=complete", "job/" + name,
                                 "--timeout=60s"});
  CHECK_MESSAGE(w.status == 0, w.err);
  CHECK(w.out.find("job.batch/" + name + " condition met") != std::string::npos);

  util::ProcessResult g = k.run({"get", "jobs", "-l", "launch.item-id=item-1", "-o", "json"});
  REQUIRE_MESSAGE(g.status == 0, g.err);
  rapidjson::Document list;
  list.Parse(g.out.c_str());
  REQUIRE(list.IsObject());
  bool found = false;
  for (const auto& j : list["items"].GetArray()) {
    if (std::string(j["metadata"]["name"].GetString()) != name) continue;
    found = true;
    CHECK(std::string(j["status"]["conditions"][1]["type"].GetString()) == "Complete");
  }
  CHECK(found);

  util::ProcessResult logs = k.run({"logs", "job/" + name});
  CHECK_MESSAGE(logs.status == 0, logs.err);
  CHECK(logs.out == "hello kubectl\n");

  util::ProcessResult del = k.run({"delete", "job", name});
  CHECK_MESSAGE(del.status == 0, del.err);
  CHECK(del.out.find("job.batch \"" + name + "\" deleted") != std::string::npos);
  util::ProcessResult gone = k.run({"get", "job", name});
  CHECK(gone.status != 0);
  CHECK(gone.err.find("NotFound") != std::string::npos);
}

TEST_CASE("the test API server refuses Jobs the schema refuses, as the API server does") {
  kube_test::Server& s = kube_test::Server::get();
  // An unknown field: 400, strict decoding, naming the field.
  http::Response r = s.post("/apis/batch/v1/namespaces/default/jobs",
                            R"({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"},
                                "spec": {"bogus": 1, "template": {"spec": {"containers": [
                                  {"name": "c", "image": "i"}]}}}})");
  CHECK(r.status == 400);
  CHECK(r.body.find("unknown field \\\"spec.bogus\\\"") != std::string::npos);
  // A wrong type: 400.
  r = s.post("/apis/batch/v1/namespaces/default/jobs",
             R"({"metadata": {"name": "x"}, "spec": {"backoffLimit": "zero", "template":
                 {"spec": {"containers": [{"name": "c", "image": "i"}]}}}})");
  CHECK(r.status == 400);
  CHECK(r.body.find("spec.backoffLimit") != std::string::npos);
  // A required field missing: 422 Invalid.
  r = s.post("/apis/batch/v1/namespaces/default/jobs",
             R"({"metadata": {"name": "x"}, "spec": {"template": {"spec": {"containers": [
                 {"image": "i"}]}}}})");
  CHECK(r.status == 422);
  CHECK(r.body.find("spec.template.spec.containers[0].name: Required value") != std::string::npos);
  // A label value the API refuses ('/' is not allowed in one).
  r = s.post("/apis/batch/v1/namespaces/default/jobs",
             R"({"metadata": {"name": "x", "labels": {"launch.queue": "team/q"}}, "spec":
                 {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}})");
  CHECK(r.status == 422);
  // Without a token: 401.
  http::Client c = s.client();
  http::Request q;
  q.url = s.url("/apis/batch/v1/namespaces/default/jobs");
  CHECK(c.send(q, true).status == 401);
}

namespace {

struct Event {
  std::string type, name, rv, detail;
};

// Watches `resource` ("jobs", "pods") in the default namespace, from the
// query's resourceVersion, until `until` says stop or the server ends the
// stream (at the latest after its timeoutSeconds, so a failing test ends);
// the events seen. An event's detail: the last Job condition, "deleting",
// a pod's phase, or an ERROR's code.
std::vector<Event> watch(const std::string& query, const std::function<bool(const Event&)>& until,
                         const std::string& resource = "jobs") {
  kube_test::Server& s = kube_test::Server::get();
  http::Client c = s.client();
  http::Request r;
  r.url = s.url((resource == "jobs" ? "/apis/batch/v1" : "/api/v1") + std::string("/namespaces/default/") +
                resource + "?watch=1&timeoutSeconds=120&" + query);
  r.headers.set("Authorization", std::string("Bearer ") + kube_test::kToken);
  std::vector<Event> seen;
  try {
    c.stream_lines(r, [&](const std::string& line) {
      if (line.empty()) return;
      rapidjson::Document d;
      d.Parse(line.c_str());
      Event e;
      e.type = d["type"].GetString();
      const auto& o = d["object"];
      if (o.HasMember("metadata") && o["metadata"].HasMember("name")) {
        e.name = o["metadata"]["name"].GetString();
      }
      if (o.HasMember("metadata") && o["metadata"].HasMember("resourceVersion")) {
        e.rv = o["metadata"]["resourceVersion"].GetString();
      }
      if (e.type == "ERROR") e.detail = std::to_string(o["code"].GetInt());
      if (o.HasMember("metadata") && o["metadata"].HasMember("deletionTimestamp")) {
        e.detail = "deleting";
      }
      if (o.HasMember("status") && o["status"].IsObject() && o["status"].HasMember("phase")) {
        e.detail = o["status"]["phase"].GetString();
      }
      if (o.HasMember("status") && o["status"].IsObject() && o["status"].HasMember("conditions")) {
        for (const auto& cond : o["status"]["conditions"].GetArray()) {
          e.detail = cond["type"].GetString();
        }
      }
      seen.push_back(e);
      if (until(e)) c.abort();
    });
  } catch (const Error& e) {
    if (std::string(e.what()).find("cancelled") == std::string::npos) throw;
  }
  return seen;
}

std::string list_rv() {
  kube_test::Server& s = kube_test::Server::get();
  http::Client c = s.client();
  http::Request r;
  r.url = s.url("/apis/batch/v1/namespaces/default/jobs?labelSelector=launch.item-id");
  r.headers.set("Authorization", std::string("Bearer ") + kube_test::kToken);
  rapidjson::Document d;
  d.Parse(c.send(r).body.c_str());
  return d["metadata"]["resourceVersion"].GetString();
}

}  // namespace

TEST_CASE("the test API server's watch: from a resourceVersion, bookmarks, 410 after compaction") {
  kube_test::Server& s = kube_test::Server::get();
  std::string rv = list_rv();
  REQUIRE(s.post("/apis/batch/v1/namespaces/default/jobs", kJob).status == 201);
  // Everything after the list, in order, to the Job's completion.
  auto events = watch("labelSelector=launch.item-id%3Ditem-1&resourceVersion=" + rv,
                      [](const Event& e) { return e.detail == "Complete"; });
  REQUIRE(!events.empty());
  CHECK(events.front().type == "ADDED");
  CHECK(events.back().detail == "Complete");
  for (std::size_t i = 1; i < events.size(); ++i) {
    CHECK(std::stoll(events[i].rv) > std::stoll(events[i - 1].rv));
  }

  // A watch that matches nothing still gets bookmarks carrying the
  // current resourceVersion.
  s.post("/_test/config", R"({"bookmark_seconds": 0.05})");
  auto marks = watch("labelSelector=launch.item-id%3Dnobody&allowWatchBookmarks=true&"
                     "resourceVersion=" + list_rv(),
                     [](const Event& e) { return e.type == "BOOKMARK"; });
  REQUIRE(marks.size() == 1);
  CHECK(marks[0].type == "BOOKMARK");
  CHECK(!marks[0].rv.empty());

  // Once the history is compacted, a watch from before it is told 410.
  s.post("/_test/compact", "{}");
  auto gone = watch("resourceVersion=" + rv, [](const Event&) { return false; });
  REQUIRE(gone.size() == 1);
  CHECK(gone[0].type == "ERROR");
  CHECK(gone[0].detail == "410");
}

TEST_CASE("the test API server: Foreground deletion marks the Job, removes its pods, then it") {
  kube_test::Server& s = kube_test::Server::get();
  std::string job = R"({"metadata": {"generateName": "fg-", "labels": {"launch.item-id": "fg"}},
    "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
      "containers": [{"name": "main", "image": "busybox",
                      "command": ["sh", "-c", "echo started; sleep 600"]}]}}}})";
  std::string rv = list_rv();
  http::Response r = s.post("/apis/batch/v1/namespaces/default/jobs", job);
  REQUIRE(r.status == 201);
  std::string name = created_name(r);
  http::Client c = s.client();
  // Its pod, watched until it runs.
  std::string pod;
  watch("labelSelector=job-name%3D" + name + "&resourceVersion=" + rv,
        [&](const Event& e) {
          if (e.detail == "Running") pod = e.name;
          return !pod.empty();
        },
        "pods");
  auto pods = [&] {
    rapidjson::Document st = s.state();
    int n = 0;
    for (const auto& p : st["pods"].GetObject()) {
      n += std::string(p.name.GetString()).rfind(name + "-", 0) == 0;
    }
    return n;
  };
  REQUIRE(!pod.empty());
  http::Request logs;
  logs.url = s.url("/api/v1/namespaces/default/pods/" + pod + "/log?follow=true&container=main");
  logs.headers.set("Authorization", std::string("Bearer ") + kube_test::kToken);
  std::string first;
  try {
    c.stream_lines(logs, [&](const std::string& line) {
      first = line;
      c.abort();
    });
  } catch (const Error&) {
  }
  c.reset_abort();
  CHECK(first == "started");

  http::Request del;
  del.method = "DELETE";
  del.url = s.url("/apis/batch/v1/namespaces/default/jobs/" + name);
  del.body = R"({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"})";
  del.headers.set("Content-Type", "application/json");
  del.headers.set("Authorization", std::string("Bearer ") + kube_test::kToken);
  CHECK(c.send(del).status == 200);
  auto events = watch("labelSelector=launch.item-id%3Dfg&resourceVersion=" + rv,
                      [&](const Event& e) { return e.type == "DELETED"; });
  REQUIRE(events.size() >= 2);
  CHECK(events.back().type == "DELETED");
  CHECK(events[events.size() - 2].detail == "deleting");
  CHECK(pods() == 0);
  rapidjson::Document st = s.state();
  bool recorded = false;
  for (const auto& d : st["deletes"].GetArray()) {
    recorded = recorded || (std::string(d["name"].GetString()) == name &&
                            std::string(d["propagationPolicy"].GetString()) == "Foreground");
  }
  CHECK(recorded);
}
