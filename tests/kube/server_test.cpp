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
