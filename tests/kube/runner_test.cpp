// The kubernetes runner against the test API server: the Job it makes, a
// run to its end with its exit code and log, a failing container, cancel and
// reattach.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include <unistd.h>

#include "kube_server.hpp"
#include "launch/error.hpp"
#include "launch/home.hpp"
#include "runner/kubernetes.hpp"
#include "support/temp_dir.hpp"

using namespace launch;
using launch_test::TempDir;

namespace {

std::unique_ptr<Runner> runner() { return make_runner("kubernetes", RunnerContext{}); }

ResolvedJob make_job(const std::string& item_id, const std::string& script, const std::string& dir) {
  ResolvedJob j;
  j.item.id = item_id;
  j.item.run_id = "Run_" + item_id;
  j.item.queue = QueueRef{"team", "q"};
  j.queue.entity = "team";
  j.queue.name = "q";
  j.queue.resource = "kubernetes";
  j.config = R"({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"labels": {"app": "x"}},
    "spec": {"template": {"spec": {"containers": [{"name": "main",
      "env": [{"name": "FROM_QUEUE", "value": "q"}, {"name": "WHO", "value": "queue"}]}]}}}})";
  j.queue.config = j.config;
  j.image = "busybox:1.36";
  j.argv = {"sh", "-c", script};
  j.env = {{"LAUNCH_RUN_ID", j.item.run_id}, {"WHO", "job"}};
  j.log_dir = dir;
  j.agent_id = "agent-1";
  return j;
}

std::string read(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

struct Cluster {
  TempDir dir{"launch-kube-runner"};
  std::string config = dir / "kubeconfig";
  kube_test::EnvScope env{"KUBECONFIG", config};
  Cluster() { std::ofstream(config) << kube_test::Server::get().kubeconfig(); }
};

bool server_has_job(const std::string& name) {
  auto st = kube_test::Server::get().state();
  return st["jobs"].HasMember(name.c_str());
}

}  // namespace

TEST_CASE("kubernetes: the Job has W&B's defaults, the image, command, env and labels") {
  ResolvedJob j = make_job("it-1", "echo hi", "");
  j.item.run_id = "Run_ABC";
  j.env["LAUNCH_RUN_ID"] = "Run_ABC";
  kube::JobManifest m = kube::build_job_manifest(j);
  const auto& d = m.job;
  CHECK(std::string(d["apiVersion"].GetString()) == "batch/v1");
  CHECK(std::string(d["metadata"]["generateName"].GetString()) == "launch-q-run-abc-");
  CHECK(std::string(d["metadata"]["labels"]["launch/item-id"].GetString()) == "it-1");
  CHECK(std::string(d["metadata"]["labels"]["launch/run-id"].GetString()) == "Run_ABC");
  CHECK(std::string(d["metadata"]["labels"]["launch/agent"].GetString()) == "agent-1");
  CHECK(std::string(d["metadata"]["labels"]["app"].GetString()) == "x");
  CHECK(std::string(d["metadata"]["annotations"]["launch/queue"].GetString()) == "team/q");
  CHECK(std::string(d["spec"]["template"]["metadata"]["labels"]["launch/item-id"].GetString()) ==
        "it-1");
  CHECK(d["spec"]["backoffLimit"].GetInt() == 0);
  CHECK(d["spec"]["ttlSecondsAfterFinished"].GetInt() == 3600);
  const auto& pod = d["spec"]["template"]["spec"];
  CHECK(std::string(pod["restartPolicy"].GetString()) == "Never");
  const auto& c = pod["containers"][0];
  CHECK(std::string(c["image"].GetString()) == "busybox:1.36");
  CHECK(json::dump(c["command"]) == R"(["sh"])");
  CHECK(json::dump(c["args"]) == R"(["-c","echo hi"])");
  // The queue's env beneath the job's: WHO is the job's, FROM_QUEUE kept.
  std::map<std::string, std::string> env;
  for (const auto& e : c["env"].GetArray()) env[e["name"].GetString()] = e["value"].GetString();
  CHECK(env["WHO"] == "job");
  CHECK(env["FROM_QUEUE"] == "q");
  CHECK(env["LAUNCH_RUN_ID"] == "Run_ABC");
  CHECK(kube::label_value("team/q:x-") == "team-q-x");
  CHECK(kube::label_value(std::string(80, 'a')).size() == 63);
}

TEST_CASE("kubernetes: check_config refuses what is not a batch/v1 Job, naming the field") {
  auto r = runner();
  CHECK_NOTHROW(r->check_config(R"({"spec": {}})"));
  CHECK_NOTHROW(r->check_config(R"({"apiVersion": "batch/v1", "kind": "Job", "namespace": "x"})"));
  CHECK_THROWS_WITH_AS(r->check_config(R"({"apiVersion": "kubeflow.org/v1", "kind": "Job"})"),
                       doctest::Contains("apiVersion \"kubeflow.org/v1\""), Error);
  CHECK_THROWS_WITH_AS(r->check_config(R"({"apiVersion": "batch/v1", "kind": "PyTorchJob"})"),
                       doctest::Contains("kind \"PyTorchJob\""), Error);
  CHECK_THROWS_WITH_AS(r->check_config(R"({"spec": {"template": {"spec": {"containers": 3}}}})"),
                       doctest::Contains("spec.template.spec.containers"), Error);
  ResolvedJob j = make_job("it-2", "true", "");
  j.image = "";
  CHECK_THROWS_WITH_AS(kube::build_job_manifest(j),
                       doctest::Contains("spec.template.spec.containers[0].image"), Error);
}

TEST_CASE("kubernetes: a Job runs to its end; stdout.log has the pod's output") {
  Cluster k;
  auto r = runner();
  CHECK(r->needs_image());
  auto run = r->submit(make_job("ok-1", "echo hello $WHO; sleep 0.2; echo bye", k.dir / "logs"));
  CHECK(run->id().rfind("launch-q-run-ok-1-", 0) == 0);
  RunStatus st = run->wait(std::chrono::seconds(60));
  CHECK(st.phase == RunPhase::finished);
  CHECK(st.exit_code == 0);
  CHECK(read(k.dir / "logs/stdout.log") == "hello job\nbye\n");
  auto state = kube_test::Server::get().state();
  const auto& job = state["jobs"][run->id().c_str()];
  CHECK(std::string(job["metadata"]["labels"]["launch/item-id"].GetString()) == "ok-1");
}

TEST_CASE("kubernetes: a failing container fails the run with its exit code and reason") {
  Cluster k;
  auto r = runner();
  auto run = r->submit(make_job("bad-1", "echo oops; exit 3", k.dir / "logs"));
  RunStatus st = run->wait(std::chrono::seconds(60));
  CHECK(st.phase == RunPhase::failed);
  CHECK(st.exit_code == 3);
  CHECK_MESSAGE(st.message.find("BackoffLimitExceeded") != std::string::npos, st.message);
  CHECK_MESSAGE(st.message.find("exited with 3 (Error)") != std::string::npos, st.message);
  CHECK(read(k.dir / "logs/stdout.log") == "oops\n");
}

TEST_CASE("kubernetes: cancel deletes the Job (Foreground), stopped once it is gone") {
  Cluster k;
  auto r = runner();
  auto run = r->submit(make_job("cancel-1", "echo started; sleep 60", k.dir / "logs"));
  std::string name = run->id();
  CHECK(server_has_job(name));
  run->cancel(std::chrono::milliseconds(0));
  RunStatus st = run->wait(std::chrono::seconds(60));
  CHECK(st.phase == RunPhase::stopped);
  CHECK_FALSE(server_has_job(name));
  auto state = kube_test::Server::get().state();
  bool foreground = false;
  for (const auto& d : state["deletes"].GetArray()) {
    if (std::string(d["name"].GetString()) == name &&
        std::string(d["propagationPolicy"].GetString()) == "Foreground") {
      foreground = true;
    }
  }
  CHECK(foreground);
}

TEST_CASE("kubernetes: another runner reattaches by the item-id label and follows the Job") {
  Cluster k;
  auto first = runner();
  ResolvedJob j = make_job("re-1", "echo one; sleep 0.5; exit 4", k.dir / "logs");
  auto run = first->submit(j);
  // A second agent (the first one's Run left alive, as a killed agent leaves
  // its Job) finds it by label.
  RunnerContext ctx;
  ctx.launch_home = (k.dir / "home");
  auto second = make_runner("kubernetes", ctx);
  CHECK(second->reattach(make_job("other", "", "").item, j.queue) == nullptr);
  QueueItem other_run = j.item;
  other_run.run_id = "another-run";  // the same item id from another transport
  CHECK(second->reattach(other_run, j.queue) == nullptr);
  auto again = second->reattach(j.item, j.queue);
  REQUIRE(again != nullptr);
  CHECK(again->id() == run->id());
  RunStatus st = again->wait(std::chrono::seconds(60));
  CHECK(st.phase == RunPhase::failed);
  CHECK(st.exit_code == 4);
  CHECK(read(run_directory(ctx.launch_home, "re-1") + "/stdout.log") == "one\n");
  CHECK(run->wait(std::chrono::seconds(60)).phase == RunPhase::failed);
}

namespace {
int job_watches() { return kube_test::Server::get().state()["watches"]["jobs"].GetInt(); }
int job_lists() {
  int n = 0;
  auto st = kube_test::Server::get().state();
  for (const auto& r : st["requests"].GetArray()) {
    std::string s = r.GetString();
    if (s.rfind("GET /apis/batch/v1/namespaces/default/jobs?labelSelector=", 0) == 0 &&
        s.find("watch=") == std::string::npos) {
      ++n;
    }
  }
  return n;
}
}  // namespace

TEST_CASE("kubernetes: the runs of a namespace share one watch") {
  Cluster k;
  auto r = runner();
  int before = job_watches();
  auto a = r->submit(make_job("share-1", "sleep 0.3; exit 0", k.dir / "a"));
  auto b = r->submit(make_job("share-2", "sleep 0.3; exit 2", k.dir / "b"));
  auto c = r->submit(make_job("share-3", "exit 0", k.dir / "c"));
  CHECK(a->wait(std::chrono::seconds(60)).phase == RunPhase::finished);
  CHECK(b->wait(std::chrono::seconds(60)).exit_code == 2);
  CHECK(c->wait(std::chrono::seconds(60)).phase == RunPhase::finished);
  CHECK(job_watches() - before == 1);
}

TEST_CASE("kubernetes: after 410 Gone the watch lists again and the run still ends") {
  Cluster k;
  auto& server = kube_test::Server::get();
  // No bookmark may move the watch's resourceVersion past what is dropped.
  server.post("/_test/config", R"({"bookmark_seconds": 3600})");
  auto r = runner();
  auto run = r->submit(make_job("gone-1", "echo a; sleep 1; exit 5", k.dir / "logs"));
  // The pod runs (its Job's events are out), and the watch follows it.
  for (int i = 0; i < 6000 && read(k.dir / "logs/stdout.log") != "a\n"; ++i) {
    CHECK(run->poll().phase == RunPhase::running);
    usleep(10000);
  }
  REQUIRE(read(k.dir / "logs/stdout.log") == "a\n");
  // An event the Jobs watch does not see, then its history dropped and the
  // watch cut: it reconnects from a resourceVersion that is too old.
  CHECK(server.post("/api/v1/namespaces/default/secrets",
                    R"({"metadata": {"generateName": "bump-"}, "stringData": {"a": "b"}})")
            .status == 201);
  int lists = job_lists();
  server.post("/_test/compact", "{}");
  server.post("/_test/drop-watches", "{}");
  RunStatus st = run->wait(std::chrono::seconds(60));
  server.post("/_test/config", R"({"bookmark_seconds": 1})");
  CHECK(st.phase == RunPhase::failed);
  CHECK(st.exit_code == 5);
  CHECK(job_lists() > lists);
}
