// The kubernetes runner and its Job's pods, on the test API server: what
// keeps a pod from starting becomes one warning per reason, a pod that does
// not start within startTimeoutSeconds fails the run saying why, and an
// evicted pod preempts the run (its Job deleted).
#include <doctest/doctest.h>

#include <fstream>

#include <unistd.h>

#include "kube_server.hpp"
#include "launch/error.hpp"
#include "runner/kubernetes.hpp"
#include "support/temp_dir.hpp"

using namespace launch;
using launch_test::TempDir;

namespace {

struct Cluster {
  TempDir dir{"launch-kube-pods"};
  std::string config = dir / "kubeconfig";
  kube_test::EnvScope env{"KUBECONFIG", config};
  Cluster() { std::ofstream(config) << kube_test::Server::get().kubeconfig(); }
};

ResolvedJob make_job(const std::string& item_id, const std::string& config,
                     const std::string& script, const std::string& dir) {
  ResolvedJob j;
  j.item.id = item_id;
  j.item.run_id = "run-" + item_id;
  j.item.queue = QueueRef{"team", "q"};
  j.queue.entity = "team";
  j.queue.name = "q";
  j.queue.resource = "kubernetes";
  j.config = config;
  j.queue.config = config;
  j.image = "busybox:1.36";
  j.argv = {"sh", "-c", script};
  j.log_dir = dir;
  j.agent_id = "agent-pods";
  return j;
}

// Polls the run to its end (60 s at most), gathering its warnings.
RunStatus follow(Run& run, std::vector<std::string>& warnings) {
  for (int i = 0; i < 6000; ++i) {
    RunStatus st = run.poll();
    warnings.insert(warnings.end(), st.warnings.begin(), st.warnings.end());
    if (st.phase != RunPhase::running) return st;
    usleep(10000);
  }
  FAIL("the run did not end within 60 s");
  return {};
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

bool deleted(const std::string& job) {
  auto st = kube_test::Server::get().state();
  for (const auto& d : st["deletes"].GetArray()) {
    if (std::string(d["resource"].GetString()) == "jobs" &&
        std::string(d["name"].GetString()) == job) {
      return true;
    }
  }
  return false;
}

}  // namespace

TEST_CASE("kubernetes pods: an unschedulable pod warns once and fails after startTimeoutSeconds") {
  Cluster k;
  auto r = make_runner("kubernetes", RunnerContext{});
  auto run = r->submit(make_job("unsched-1", R"({"startTimeoutSeconds": 2,
    "spec": {"template": {"metadata": {"annotations": {"launch-test/unschedulable": "yes"}}}}})",
                                "echo never", k.dir / "logs"));
  std::vector<std::string> warnings;
  RunStatus st = follow(*run, warnings);
  CHECK(st.phase == RunPhase::failed);
  CHECK_MESSAGE(contains(st.message, "pod " + run->id() + "-"), st.message);
  CHECK_MESSAGE(contains(st.message, "did not start within 2 s: Unschedulable: 0/3 nodes are "
                                     "available: 3 Insufficient nvidia.com/gpu"),
                st.message);
  // The pod's condition and the scheduler's FailedScheduling event: one warning.
  REQUIRE_MESSAGE(warnings.size() == 1, warnings.size());
  CHECK_MESSAGE(contains(warnings[0], "Unschedulable: 0/3 nodes are available"), warnings[0]);
  CHECK(contains(warnings[0], "pod " + run->id() + "-"));
  CHECK(deleted(run->id()));
}

TEST_CASE("kubernetes pods: an image that cannot be pulled warns once and fails the run") {
  Cluster k;
  auto r = make_runner("kubernetes", RunnerContext{});
  ResolvedJob j = make_job("pull-1", R"({"startTimeoutSeconds": 2})", "echo never", k.dir / "l");
  j.image = "registry.invalid/team/no-such-image:v1";
  auto run = r->submit(j);
  std::vector<std::string> warnings;
  RunStatus st = follow(*run, warnings);
  CHECK(st.phase == RunPhase::failed);
  CHECK_MESSAGE(contains(st.message, "did not start within 2 s: ImagePullBackOff: Back-off "
                                     "pulling image \"registry.invalid/team/no-such-image:v1\""),
                st.message);
  // ErrImagePull, then ImagePullBackOff, in the status and in events: one warning.
  REQUIRE_MESSAGE(warnings.size() == 1, warnings.size());
  CHECK_MESSAGE(contains(warnings[0], "ErrImagePull"), warnings[0]);
  CHECK(deleted(run->id()));
}

TEST_CASE("kubernetes pods: a crash loop warns once, and the run fails with the exit code") {
  Cluster k;
  auto r = make_runner("kubernetes", RunnerContext{});
  auto run = r->submit(make_job("crash-1", R"({"spec": {"backoffLimit": 2,
    "template": {"spec": {"restartPolicy": "OnFailure"}}}})",
                                "echo try; exit 1", k.dir / "logs"));
  std::vector<std::string> warnings;
  RunStatus st = follow(*run, warnings);
  CHECK(st.phase == RunPhase::failed);
  CHECK(st.exit_code == 1);
  // Two restarts, each a CrashLoopBackOff in the status and a BackOff
  // event: one warning, in the words of whichever came first.
  REQUIRE_MESSAGE(warnings.size() == 1, warnings.size());
  CHECK_MESSAGE(contains(warnings[0], "CrashLoopBackOff: "), warnings[0]);
  CHECK_MESSAGE(contains(warnings[0], "estarting failed container"), warnings[0]);
}

TEST_CASE("kubernetes pods: a pod that started is not timed out; a healthy pod warns nothing") {
  Cluster k;
  auto r = make_runner("kubernetes", RunnerContext{});
  auto run = r->submit(make_job("slow-1", R"({"startTimeoutSeconds": 3})", "sleep 4.5; exit 0",
                                k.dir / "logs"));
  std::vector<std::string> warnings;
  RunStatus st = follow(*run, warnings);
  CHECK_MESSAGE(st.phase == RunPhase::finished, st.message);
  CHECK(warnings.empty());
}

TEST_CASE("kubernetes pods: an evicted pod preempts the run and its Job is deleted") {
  Cluster k;
  auto r = make_runner("kubernetes", RunnerContext{});
  auto run = r->submit(make_job("evict-1", "{}", "echo up; evict-if yes yes; echo never",
                                k.dir / "logs"));
  std::vector<std::string> warnings;
  RunStatus st = follow(*run, warnings);
  CHECK(st.phase == RunPhase::preempted);
  CHECK_MESSAGE(contains(st.message, "was disrupted (EvictionByEvictionAPI: Eviction API: "
                                     "evicting)"),
                st.message);
  CHECK(deleted(run->id()));
  CHECK(warnings.empty());
}

TEST_CASE("kubernetes pods: check_config takes startTimeoutSeconds from 0 to a week") {
  auto r = make_runner("kubernetes", RunnerContext{});
  CHECK_NOTHROW(r->check_config(R"({"startTimeoutSeconds": 0})"));
  CHECK_NOTHROW(r->check_config(R"({"startTimeoutSeconds": 300})"));
  CHECK_NOTHROW(r->check_config(R"({"startTimeoutSeconds": "{{start}}"})"));
  CHECK_NOTHROW(r->check_config(R"({"startTimeoutSeconds": "120"})"));
  CHECK_THROWS_WITH_AS(r->check_config(R"({"startTimeoutSeconds": -1})"),
                       doctest::Contains("startTimeoutSeconds must be a whole number of seconds "
                                         "from 0 (no timeout) to 604800, not -1"),
                       Error);
  CHECK_THROWS_WITH_AS(r->check_config(R"({"startTimeoutSeconds": 604801})"),
                       doctest::Contains("not 604801"), Error);
  CHECK_THROWS_WITH_AS(r->check_config(R"({"startTimeoutSeconds": "soon"})"),
                       doctest::Contains("not \"soon\""), Error);
  CHECK_THROWS_WITH_AS(r->check_config(R"({"startTimeoutSeconds": 1.5})"),
                       doctest::Contains("not 1.5"), Error);
  // The runner's key never reaches the Job.
  kube::JobManifest m = kube::build_job_manifest(make_job("m-1", R"({"startTimeoutSeconds": 9})",
                                                          "true", ""));
  CHECK(m.start_timeout_seconds == 9);
  CHECK_FALSE(m.job.HasMember("startTimeoutSeconds"));
  CHECK(kube::build_job_manifest(make_job("m-2", "{}", "true", "")).start_timeout_seconds == 600);
}

TEST_CASE("kubernetes pods: a reattached run does not repeat the item's warnings") {
  Cluster k;
  auto first = make_runner("kubernetes", RunnerContext{});
  ResolvedJob j = make_job("again-1", R"({"startTimeoutSeconds": 0,
    "spec": {"template": {"metadata": {"annotations": {"launch-test/unschedulable": "yes"}}}}})",
                           "echo never", "");
  auto run = first->submit(j);
  std::vector<std::string> warnings;
  for (int i = 0; i < 6000 && warnings.empty(); ++i) {
    RunStatus st = run->poll();
    REQUIRE(st.phase == RunPhase::running);
    warnings = st.warnings;
    usleep(10000);
  }
  REQUIRE(warnings.size() == 1);
  // Another agent follows the Job on: the item already has the warning.
  QueueItem item = j.item;
  item.warnings = {"preempted; resuming (resume 1 of 5)", warnings[0]};
  auto again = make_runner("kubernetes", RunnerContext{})->reattach(item, j.queue);
  REQUIRE(again != nullptr);
  // Without it on the item, the same reattach warns.
  auto fresh = make_runner("kubernetes", RunnerContext{})->reattach(j.item, j.queue);
  REQUIRE(fresh != nullptr);
  std::vector<std::string> fresh_warnings;
  for (int i = 0; i < 6000 && fresh_warnings.empty(); ++i) {
    CHECK(again->poll().warnings.empty());
    fresh_warnings = fresh->poll().warnings;
    usleep(10000);
  }
  CHECK(fresh_warnings.size() == 1);
  for (int i = 0; i < 50; ++i) {
    CHECK(again->poll().warnings.empty());
    usleep(10000);
  }
  run->cancel(std::chrono::milliseconds(0));
  CHECK(run->wait(std::chrono::seconds(60)).phase == RunPhase::stopped);
}
