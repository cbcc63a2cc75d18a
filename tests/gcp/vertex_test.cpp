// The gcp-vertex runner against the test server: CustomJob bodies checked
// against the aiplatform v1 protos, a simulated job lifecycle, Cloud
// Logging entries, cancel and reattach.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "gcp_server.hpp"
#include "launch/launch.hpp"

using namespace launch;
using gcp_test::EnvScope;
using std::chrono::seconds;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// W&B's vertex resource_args shape, with launch's project and region.
const char* kConfig = R"({
  "project": "launch-test-project",
  "region": "us-central1",
  "spec": {
    "staging_bucket": "gs://launch-test-staging",
    "labels": {"team": "ml"},
    "worker_pool_specs": [{
      "machine_spec": {"machine_type": "n1-standard-4", "accelerator_type": "NVIDIA_TESLA_T4",
                       "accelerator_count": 1},
      "replica_count": 1,
      "container_spec": {"image_uri": "ignored", "env": [{"name": "FROM_CONFIG", "value": "cfg"}]}
    }]
  },
  "run": {"timeout": 3600, "service_account": "trainer@launch-test-project.iam.gserviceaccount.com",
          "restart_job_on_worker_restart": false}
})";

std::unique_ptr<Runner> vertex(const std::string& home = "") {
  RunnerContext ctx;
  ctx.launch_home = home;
  return make_runner("gcp-vertex", ctx);
}

ResolvedJob job_in(const launch_test::TempDir& dir, const std::string& outcome,
                   const std::string& secs = "1", const std::string& config = kConfig) {
  static int n = 0;
  ResolvedJob job;
  job.item.id = "Item" + std::to_string(++n);
  job.item.run_id = "Run" + std::to_string(n) + "x" + std::to_string(::getpid());
  job.item.attempt = 1;
  job.queue.entity = "ml";
  job.queue.name = "vx";
  job.queue.resource = "gcp-vertex";
  job.queue.config = config;
  job.config = config;
  job.image = "us-docker.pkg.dev/launch-test-project/train/train:v1";
  job.argv = {"python", "train.py", "--epochs", "3"};
  job.env = {{"LAUNCH_RUN_ID", job.item.run_id}, {"LAUNCH_ITEM_ID", job.item.id},
             {"SIM_OUTCOME", outcome}, {"SIM_SECONDS", secs}};
  job.log_dir = dir.path();
  return job;
}

std::string job_id(const Run& run) { return run.id().substr(run.id().rfind('/') + 1); }

}  // namespace

TEST_CASE("vertex: check_config refuses a missing or wrong field, naming it") {
  auto r = vertex();
  CHECK_NOTHROW(r->check_config(kConfig));
  CHECK_THROWS_WITH(r->check_config(R"({"spec": {"staging_bucket": "gs://b"}})"),
                    doctest::Contains("spec.worker_pool_specs is required"));
  CHECK_THROWS_WITH(r->check_config(R"({"project": "p"})"), doctest::Contains("spec is required"));
  CHECK_THROWS_WITH(r->check_config(R"({"spec": {"worker_pool_specs": [
      {"machine_spec": {"machine_type": "n1-standard-4"}, "replica_count": 1,
       "container_spec": {}}]}})"),
                    doctest::Contains("spec.staging_bucket is required"));
  CHECK_THROWS_WITH(r->check_config(R"({"spec": {"staging_bucket": "gs://b", "worker_pool_specs": [
      {"machine_spec": {}, "replica_count": 1, "container_spec": {}}]}})"),
                    doctest::Contains("spec.worker_pool_specs[0].machine_spec.machine_type is required"));
  CHECK_THROWS_WITH(r->check_config(R"({"spec": {"staging_bucket": "gs://b", "worker_pool_specs": [
      {"machine_spec": {"machine_type": "n1"}, "replica_count": 0, "container_spec": {}}]}})"),
                    doctest::Contains("spec.worker_pool_specs[0].replica_count must be a positive integer"));
  CHECK_THROWS_WITH(r->check_config(R"({"spec": {"staging_bucket": "gs://b", "worker_pool_specs": [
      {"machine_spec": {"machine_type": "n1"}, "replica_count": 1}]}})"),
                    doctest::Contains("spec.worker_pool_specs[0].container_spec is required"));
  CHECK_THROWS_WITH(r->check_config(R"({"spec": {"staging_bucket": "b", "worker_pool_specs": [
      {"machine_spec": {"machine_type": "n1"}, "replica_count": 1, "container_spec": {}}]}})"),
                    doctest::Contains("spec.staging_bucket \"b\" must be a gs:// URI"));
  CHECK_THROWS_WITH(r->check_config(R"({"bogus": 1, "spec": {}})"),
                    doctest::Contains("bogus is not a gcp-vertex option"));
  CHECK_THROWS_WITH(r->check_config(R"({"spec": {"staging_bucket": "gs://b", "worker_pool_specs": [
      {"machine_spec": {"machine_type": "n1"}, "replica_count": 1, "container_spec": {}}]},
      "run": {"timeout": "an hour"}})"),
                    doctest::Contains("run.timeout must be a number of seconds"));
  // The proto JSON names (lowerCamelCase) and template placeholders.
  CHECK_NOTHROW(r->check_config(R"({"spec": {"stagingBucket": "gs://b", "workerPoolSpecs": [
      {"machineSpec": {"machineType": "{{machine}}"}, "replicaCount": "{{n}}",
       "containerSpec": {}}]}, "run": {"timeout": "{{timeout}}"}})"));
}

TEST_CASE("vertex: a queue whose config lacks a required field is not created") {
  auto t = open_transport("memory://");
  QueueDef q;
  q.entity = "ml";
  q.name = "vx";
  q.resource = "gcp-vertex";
  q.config = R"({"spec": {"staging_bucket": "gs://b"}})";
  CHECK_THROWS_WITH(t->create_queue(q), doctest::Contains("spec.worker_pool_specs is required"));
  // W&B's wrapper is taken off first.
  q.config = std::string(R"({"vertex": )") + kConfig + "}";
  CHECK_NOTHROW(t->create_queue(q));
}

TEST_CASE("vertex: a CustomJob runs to finished, its Cloud Logging entries in stdout.log") {
  gcp_test::WithServiceAccount env;
  gcp_test::NothingWrong clean;
  launch_test::TempDir dir("launch-vx");
  auto job = job_in(dir, "SUCCEEDED", "3");
  auto run = vertex()->submit(job);
  CHECK(run->id().rfind("projects/launch-test-project/locations/us-central1/customJobs/", 0) == 0);
  RunStatus st = run->wait(seconds(60));
  CHECK(st.phase == RunPhase::finished);
  CHECK(st.exit_code == 0);

  std::string log = slurp(dir / "stdout.log");
  CHECK(log.find("LAUNCH_ITEM_ID=" + job.item.id + "\nLAUNCH_RUN_ID=" + job.item.run_id + "\n") !=
        std::string::npos);
  CHECK(log.find("step 2\n") != std::string::npos);
  CHECK(log.find("done: JOB_STATE_SUCCEEDED\n") != std::string::npos);
  // Each line once, though the log was read over several polls.
  CHECK(log.find("step 1\n") == log.rfind("step 1\n"));
  CHECK(log.find("LAUNCH_RUN_ID=") == log.rfind("LAUNCH_RUN_ID="));

  rapidjson::Document state = env.server.state();
  const auto& sent = state["jobs"][job_id(*run).c_str()];
  CHECK(std::string(sent["displayName"].GetString()) == "launch-" + job.item.run_id + "-1-0");
  CHECK(std::string(sent["labels"]["launch-item-id"].GetString()) == "item" + job.item.id.substr(4));
  CHECK(std::string(sent["labels"]["launch-run-id"].GetString()).find("run") == 0);
  CHECK(std::string(sent["labels"]["team"].GetString()) == "ml");
  const auto& spec = sent["jobSpec"];
  CHECK(std::string(spec["baseOutputDirectory"]["outputUriPrefix"].GetString()) ==
        "gs://launch-test-staging/launch-" + job.item.run_id + "-1-0");
  CHECK(std::string(spec["serviceAccount"].GetString()) ==
        "trainer@launch-test-project.iam.gserviceaccount.com");
  CHECK(std::string(spec["scheduling"]["timeout"].GetString()) == "3600s");
  const auto& cs = spec["workerPoolSpecs"][0]["containerSpec"];
  CHECK(std::string(cs["imageUri"].GetString()) == job.image);
  CHECK(cs["command"].Size() == 1);
  CHECK(std::string(cs["command"][0].GetString()) == "python");
  CHECK(cs["args"].Size() == 3);
  CHECK(std::string(cs["args"][2].GetString()) == "3");
  std::map<std::string, std::string> envs;
  for (const auto& e : cs["env"].GetArray()) envs[e["name"].GetString()] = e["value"].GetString();
  CHECK(envs["FROM_CONFIG"] == "cfg");
  CHECK(envs["LAUNCH_ITEM_ID"] == job.item.id);
  clean.check();
}

TEST_CASE("vertex: entries Cloud Logging shows seconds late still reach stdout.log") {
  gcp_test::WithServiceAccount env;
  gcp_test::NothingWrong clean;
  env.server.post("/_test/config", R"({"log_lag": 2.5})");
  launch_test::TempDir dir("launch-vx-lag");
  auto run = vertex()->submit(job_in(dir, "SUCCEEDED", "1"));
  RunStatus st = run->wait(seconds(60));
  env.server.post("/_test/config", R"({"log_lag": 1.0})");
  CHECK(st.phase == RunPhase::finished);
  CHECK(slurp(dir / "stdout.log").find("done: JOB_STATE_SUCCEEDED\n") != std::string::npos);
  clean.check();
}

TEST_CASE("vertex: the queue config in lowerCamelCase reaches Vertex as valid proto JSON") {
  gcp_test::WithServiceAccount env;
  gcp_test::NothingWrong clean;
  launch_test::TempDir dir("launch-vx-camel");
  auto job = job_in(dir, "SUCCEEDED", "0", R"({"location": "europe-west4",
      "spec": {"baseOutputDir": "gs://launch-test/out", "workerPoolSpecs": [
        {"machineSpec": {"machineType": "n1-standard-4"}, "replicaCount": "1",
         "containerSpec": {}, "diskSpec": {"bootDiskType": "pd-ssd", "bootDiskSizeGb": 100}},
        {"machineSpec": {"machineType": "n1-standard-4"}, "replicaCount": 2, "containerSpec": {}}]},
      "run": {"timeout": "86400s", "enableWebAccess": true}})");
  auto run = vertex()->submit(job);  // the project comes from the key file
  CHECK(run->id().rfind("projects/launch-test-project/locations/europe-west4/", 0) == 0);
  CHECK(run->wait(seconds(60)).phase == RunPhase::finished);
  rapidjson::Document state = env.server.state();
  const auto& spec = state["jobs"][job_id(*run).c_str()]["jobSpec"];
  CHECK(spec["workerPoolSpecs"].Size() == 2);
  // Both pools run the job.
  CHECK(std::string(spec["workerPoolSpecs"][1]["containerSpec"]["imageUri"].GetString()) == job.image);
  CHECK(spec["workerPoolSpecs"][0]["diskSpec"]["bootDiskSizeGb"].GetInt() == 100);
  CHECK(std::string(spec["baseOutputDirectory"]["outputUriPrefix"].GetString()) == "gs://launch-test/out");
  CHECK(spec["enableWebAccess"].GetBool());
  clean.check();
}

TEST_CASE("vertex: a failing job ends failed with Vertex's error message") {
  gcp_test::WithServiceAccount env;
  gcp_test::NothingWrong clean;
  launch_test::TempDir dir("launch-vx-fail");
  auto run = vertex()->submit(job_in(dir, "FAILED"));
  RunStatus st = run->wait(seconds(60));
  CHECK(st.phase == RunPhase::failed);
  CHECK(st.message.find("exited with a non-zero status of 1") != std::string::npos);
  CHECK(slurp(dir / "stdout.log").find("done: JOB_STATE_FAILED\n") != std::string::npos);
  clean.check();
}

TEST_CASE("vertex: an expired job ends failed, saying so") {
  gcp_test::WithServiceAccount env;
  gcp_test::NothingWrong clean;
  launch_test::TempDir dir("launch-vx-expired");
  auto run = vertex()->submit(job_in(dir, "EXPIRED", "0"));
  RunStatus st = run->wait(seconds(60));
  CHECK(st.phase == RunPhase::failed);
  CHECK(st.message.find(run->id() + " expired") != std::string::npos);
  clean.check();
}

TEST_CASE("vertex: throttled GETs of the job are asked again, not failed") {
  gcp_test::WithServiceAccount env;
  launch_test::TempDir dir("launch-vx-throttle");
  auto run = vertex()->submit(job_in(dir, "SUCCEEDED", "0"));
  env.server.post("/_test/config", R"({"throttle": 2})");
  RunStatus st = run->wait(seconds(60));
  CHECK(st.phase == RunPhase::finished);
  CHECK(env.server.state()["throttle"].GetInt() == 0);  // both were answered 429
}

TEST_CASE("vertex: a create whose answer is lost finds the job it made; no second one") {
  gcp_test::WithServiceAccount env;
  gcp_test::NothingWrong clean;
  launch_test::TempDir dir("launch-vx-lost");
  auto job = job_in(dir, "SUCCEEDED", "0");
  env.server.post("/_test/config", R"({"drop_creates": 1})");
  auto run = vertex()->submit(job);
  CHECK(run->wait(seconds(60)).phase == RunPhase::finished);
  rapidjson::Document state = env.server.state();
  int made = 0;
  for (const auto& j : state["jobs"].GetObject()) {
    made += std::string(j.value["displayName"].GetString()) == "launch-" + job.item.run_id + "-1-0";
  }
  CHECK(made == 1);
  clean.check();
}

TEST_CASE("vertex: cancel calls :cancel; the job ends stopped") {
  gcp_test::WithServiceAccount env;
  gcp_test::NothingWrong clean;
  launch_test::TempDir dir("launch-vx-cancel");
  auto run = vertex()->submit(job_in(dir, "SUCCEEDED", "600"));
  CHECK(run->poll().phase == RunPhase::running);
  run->cancel(seconds(10));
  RunStatus st = run->wait(seconds(60));
  CHECK(st.phase == RunPhase::stopped);
  rapidjson::Document state = env.server.state();
  CHECK(std::string(state["jobs"][job_id(*run).c_str()]["state"].GetString()) ==
        "JOB_STATE_CANCELLED");
  bool cancelled = false;
  for (const auto& c : state["calls"].GetArray()) {
    cancelled = cancelled || std::string(c.GetString()) == "POST /v1/" + run->id() + ":cancel";
  }
  CHECK(cancelled);
  clean.check();
}

TEST_CASE("vertex: a job cancelled outside launch fails the run, saying so") {
  gcp_test::WithServiceAccount env;
  launch_test::TempDir dir("launch-vx-outside");
  auto run = vertex()->submit(job_in(dir, "SUCCEEDED", "600"));
  env.server.post("/_test/cancel-outside", "{\"id\": \"" + job_id(*run) + "\"}");
  RunStatus st = run->wait(seconds(60));
  CHECK(st.phase == RunPhase::failed);
  CHECK(st.message.find("cancelled outside launch") != std::string::npos);
}

TEST_CASE("vertex: a restarted agent's runner finds the job by its labels and follows it") {
  gcp_test::WithServiceAccount env;
  gcp_test::NothingWrong clean;
  launch_test::TempDir home("launch-vx-home");
  auto job = job_in(home, "SUCCEEDED", "2");
  auto first = vertex()->submit(job);
  auto restarted = vertex(home.path());
  auto again = restarted->reattach(job.item, job.queue);
  REQUIRE(again != nullptr);
  CHECK(again->id() == first->id());
  CHECK(again->wait(seconds(60)).phase == RunPhase::finished);
  std::string log = slurp(run_directory(home.path(), job.item.id) + "/stdout.log");
  CHECK(log.find("done: JOB_STATE_SUCCEEDED\n") != std::string::npos);
  CHECK(first->wait(seconds(60)).phase == RunPhase::finished);

  QueueItem other = job.item;
  other.run_id = "never-submitted";
  CHECK(restarted->reattach(other, job.queue) == nullptr);
  clean.check();
}

TEST_CASE("vertex: 2-second tokens carry a 6-second job to its end: refreshed, never refused") {
  gcp_test::WithServiceAccount env;
  gcp_test::NothingWrong clean;
  env.server.set_lifetime(2);
  int before = env.server.state()["issued"]["service_account"].GetInt();
  launch_test::TempDir dir("launch-vx-refresh");
  auto run = vertex()->submit(job_in(dir, "SUCCEEDED", "6"));
  RunStatus st = run->wait(seconds(120));
  env.server.set_lifetime(3600);
  CHECK(st.phase == RunPhase::finished);
  CHECK(slurp(dir / "stdout.log").find("step 5\n") != std::string::npos);
  CHECK(env.server.state()["issued"]["service_account"].GetInt() - before >= 3);
  clean.check();
}

TEST_CASE("vertex: the project from GOOGLE_CLOUD_PROJECT, the token from the metadata server") {
  gcp_test::Environment env;
  gcp_test::NothingWrong clean;
  EnvScope project{"GOOGLE_CLOUD_PROJECT", "launch-meta-project"};
  launch_test::TempDir dir("launch-vx-meta");
  auto job = job_in(dir, "SUCCEEDED", "0", R"({"region": "us-central1", "spec": {
      "staging_bucket": "gs://b", "worker_pool_specs": [{"machine_spec": {"machine_type": "n1"},
      "replica_count": 1, "container_spec": {}}]}})");
  auto run = vertex()->submit(job);
  CHECK(run->id().rfind("projects/launch-meta-project/", 0) == 0);
  CHECK(run->wait(seconds(60)).phase == RunPhase::finished);
  clean.check();
}

TEST_CASE("vertex: no region anywhere is refused, naming where to set it") {
  gcp_test::WithServiceAccount env;
  launch_test::TempDir dir("launch-vx-noregion");
  auto job = job_in(dir, "SUCCEEDED", "0", R"({"spec": {"staging_bucket": "gs://b",
      "worker_pool_specs": [{"machine_spec": {"machine_type": "n1"}, "replica_count": 1,
      "container_spec": {}}]}})");
  CHECK_THROWS_WITH(vertex()->submit(job), doctest::Contains("no region: set region"));
}
