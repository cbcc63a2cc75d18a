// The sagemaker runner against the test server: CreateTrainingJob bodies
// checked against botocore's SageMaker model, every call's signature with
// botocore's signer, a simulated job lifecycle and its CloudWatch logs.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "aws_server.hpp"
#include "launch/launch.hpp"
#include "support/temp_dir.hpp"

using namespace launch;
using aws_test::EnvScope;
using std::chrono::seconds;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const char* kConfig = R"({
  "RoleArn": "launch-test-role",
  "OutputDataConfig": {"S3OutputPath": "s3://launch-test/out"},
  "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
  "Environment": {"FROM_CONFIG": "cfg"}
})";

std::unique_ptr<Runner> sagemaker() {
  RunnerContext ctx;
  ctx.region = "us-east-1";
  return make_runner("sagemaker", ctx);
}

ResolvedJob job_in(const launch_test::TempDir& dir, const std::string& outcome,
                   const std::string& seconds = "1", const std::string& config = kConfig) {
  static int n = 0;
  ResolvedJob job;
  job.item.id = "item" + std::to_string(++n);
  job.item.run_id = "run" + std::to_string(n) + "x" + std::to_string(::getpid());
  job.item.attempt = 1;
  job.queue.entity = "ml";
  job.queue.name = "sm";
  job.queue.resource = "sagemaker";
  job.config = config;
  job.image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:v1";
  job.argv = {"python", "train.py", "--epochs", "3"};
  job.env = {{"LAUNCH_RUN_ID", job.item.run_id}, {"LAUNCH_ITEM_ID", job.item.id},
             {"LAUNCH_RESUME_COUNT", "0"}, {"SIM_OUTCOME", outcome}, {"SIM_SECONDS", seconds}};
  job.log_dir = dir.path();
  return job;
}

// Fails the test for every 403 and every model violation the server saw
// since it was made.
struct NothingWrong {
  aws_test::Server& server = aws_test::Server::get();
  rapidjson::SizeType denied = server.state()["denied"].Size();
  rapidjson::SizeType invalid = server.state()["invalid"].Size();
  void check() {
    auto st = server.state();
    for (auto i = denied; i < st["denied"].Size(); ++i) {
      FAIL_CHECK("403: " << std::string(st["denied"][i].GetString()));
    }
    for (auto i = invalid; i < st["invalid"].Size(); ++i) {
      FAIL_CHECK("400: " << std::string(st["invalid"][i].GetString()));
    }
  }
};

}  // namespace

TEST_CASE("check_config: a missing required field is refused, naming it") {
  auto r = sagemaker();
  CHECK_NOTHROW(r->check_config(kConfig));
  CHECK_THROWS_WITH(r->check_config(R"({"OutputDataConfig": {"S3OutputPath": "s3://b/o"},
      "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 1}})"),
                    doctest::Contains("RoleArn is required"));
  CHECK_THROWS_WITH(r->check_config(R"({"RoleArn": "r", "OutputDataConfig": {"S3OutputPath": "s3://b/o"},
      "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}})"),
                    doctest::Contains("ResourceConfig.VolumeSizeInGB is required"));
  CHECK_THROWS_WITH(r->check_config(R"({"RoleArn": "r", "OutputDataConfig": {},
      "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 1}})"),
                    doctest::Contains("OutputDataConfig.S3OutputPath is required"));
  CHECK_THROWS_WITH(r->check_config(R"({"RoleArn": "r", "OutputDataConfig": {"S3OutputPath": "s3://b/o"},
      "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 0, "VolumeSizeInGB": 1}})"),
                    doctest::Contains("InstanceCount must be a positive integer"));
  CHECK_THROWS_WITH(r->check_config(R"({"RoleArn": "r", "Bogus": 1})"),
                    doctest::Contains("unknown key \"Bogus\""));
  CHECK_THROWS_WITH(r->check_config(R"({"TrainingJobName": "x", "RoleArn": "r"})"),
                    doctest::Contains("TrainingJobName is set by launch"));
  // W&B's snake_case keys, and template placeholders where values go.
  CHECK_NOTHROW(r->check_config(R"({"role_arn": "{{role}}",
      "output_data_config": {"s3_output_path": "s3://b/o"},
      "resource_config": {"instance_type": "{{type}}", "instance_count": "{{n}}",
                          "volume_size_in_gb": 5}})"));
}

TEST_CASE("a SageMaker job runs to finished, its CloudWatch log in stdout.log") {
  aws_test::WithKeys env;
  NothingWrong clean;
  launch_test::TempDir dir("launch-sm");
  auto job = job_in(dir, "Completed", "2");
  auto run = sagemaker()->submit(job);
  CHECK(run->id() == "launch-" + job.item.run_id + "-1-0");
  RunStatus st = run->wait(seconds(60));
  CHECK(st.phase == RunPhase::finished);
  CHECK(st.exit_code == 0);

  std::string log = slurp(dir / "stdout.log");
  CHECK(log.find("argv: [\"python\", \"train.py\", \"--epochs\", \"3\"]\n") != std::string::npos);
  CHECK(log.find("LAUNCH_RUN_ID=" + job.item.run_id + "\n") != std::string::npos);
  CHECK(log.find("step 2\n") != std::string::npos);
  CHECK(log.find("done: Completed\n") != std::string::npos);
  // Each line once, though the log was read over several polls.
  CHECK(log.find("step 1\n") == log.rfind("step 1\n"));

  auto state = env.server.state();
  const auto& sent = state["jobs"][run->id().c_str()];
  CHECK(std::string(sent["RoleArn"].GetString()) ==
        "arn:aws:iam::123456789012:role/launch-test-role");
  CHECK(std::string(sent["AlgorithmSpecification"]["TrainingImage"].GetString()) == job.image);
  CHECK(std::string(sent["AlgorithmSpecification"]["TrainingInputMode"].GetString()) == "File");
  CHECK(std::string(sent["Environment"]["FROM_CONFIG"].GetString()) == "cfg");
  CHECK(sent["StoppingCondition"]["MaxRuntimeInSeconds"].GetInt() == 86400);
  clean.check();
}

TEST_CASE("W&B's snake_case config reaches SageMaker in its own names") {
  aws_test::WithKeys env;
  NothingWrong clean;
  launch_test::TempDir dir("launch-sm-snake");
  auto job = job_in(dir, "Completed", "0", R"({
      "role_arn": "arn:aws:iam::123456789012:role/given",
      "output_data_config": {"s3_output_path": "s3://launch-test/out"},
      "resource_config": {"instance_type": "ml.m5.xlarge", "instance_count": 1,
                          "volume_size_in_gb": 10},
      "stopping_condition": {"max_runtime_in_seconds": 600},
      "hyper_parameters": {"learning_rate": "0.1"}})");
  auto run = sagemaker()->submit(job);
  CHECK(run->wait(seconds(60)).phase == RunPhase::finished);
  rapidjson::Document state = env.server.state();
  const auto& sent = state["jobs"][run->id().c_str()];
  CHECK(sent["ResourceConfig"]["VolumeSizeInGB"].GetInt() == 10);
  CHECK(sent["StoppingCondition"]["MaxRuntimeInSeconds"].GetInt() == 600);
  CHECK(sent["HyperParameters"].HasMember("learning_rate"));  // the user's keys stay
  clean.check();
}

TEST_CASE("a failing job ends failed with SageMaker's FailureReason") {
  aws_test::WithKeys env;
  NothingWrong clean;
  launch_test::TempDir dir("launch-sm-fail");
  auto run = sagemaker()->submit(job_in(dir, "Failed"));
  RunStatus st = run->wait(seconds(60));
  CHECK(st.phase == RunPhase::failed);
  CHECK(st.message.find("AlgorithmError: the training script exited with status 3") !=
        std::string::npos);
  clean.check();
}

TEST_CASE("cancel stops the job with StopTrainingJob; it ends stopped") {
  aws_test::WithKeys env;
  NothingWrong clean;
  launch_test::TempDir dir("launch-sm-cancel");
  auto run = sagemaker()->submit(job_in(dir, "Completed", "600"));
  CHECK(run->poll().phase == RunPhase::running);
  run->cancel(seconds(10));
  RunStatus st = run->wait(seconds(60));
  CHECK(st.phase == RunPhase::stopped);
  bool stopped = false;
  rapidjson::Document state = env.server.state();
  for (const auto& c : state["calls"].GetArray()) {
    stopped = stopped || std::string(c.GetString()) == "sagemaker.StopTrainingJob";
  }
  CHECK(stopped);
  clean.check();
}

TEST_CASE("throttled DescribeTrainingJob calls are asked again, not failed") {
  aws_test::WithKeys env;
  launch_test::TempDir dir("launch-sm-throttle");
  auto run = sagemaker()->submit(job_in(dir, "Completed", "0"));
  env.server.post("/_test/config", R"({"throttle": 2})");
  RunStatus st = run->wait(seconds(60));
  CHECK(st.phase == RunPhase::finished);
  CHECK(env.server.state()["throttle"].GetInt() == 0);  // both were answered "Rate exceeded"
}

TEST_CASE("a managed-spot interruption is reported as preempted") {
  aws_test::WithKeys env;
  NothingWrong clean;
  launch_test::TempDir dir("launch-sm-spot");
  auto run = sagemaker()->submit(job_in(dir, "Spot"));
  RunStatus st = run->wait(seconds(60));
  CHECK(st.phase == RunPhase::preempted);
  CHECK(st.message.find("Interrupted") != std::string::npos);
}

TEST_CASE("a restarted agent's runner finds the job by name and follows it to its end") {
  aws_test::WithKeys env;
  NothingWrong clean;
  launch_test::TempDir home("launch-sm-home");
  auto job = job_in(home, "Completed", "2");
  auto first = sagemaker()->submit(job);
  RunnerContext ctx;
  ctx.region = "us-east-1";
  ctx.launch_home = home.path();
  auto restarted = make_runner("sagemaker", ctx);
  auto again = restarted->reattach(job.item, job.queue);
  REQUIRE(again != nullptr);
  CHECK(again->id() == first->id());
  CHECK(again->wait(seconds(60)).phase == RunPhase::finished);
  std::string log = slurp(run_directory(home.path(), job.item.id) + "/stdout.log");
  CHECK(log.find("done: Completed\n") != std::string::npos);
  CHECK(first->wait(seconds(60)).phase == RunPhase::finished);

  QueueItem other = job.item;
  other.run_id = "never-submitted";
  CHECK(restarted->reattach(other, job.queue) == nullptr);
}

TEST_CASE("2-second credentials carry a 10-second job to its end: refreshed, never refused") {
  aws_test::Environment env;
  NothingWrong clean;
  launch_test::TempDir dir("launch-sm-refresh");
  {
    std::ofstream(dir / "token") << aws_test::kContainerToken;
  }
  EnvScope uri{"AWS_CONTAINER_CREDENTIALS_FULL_URI", env.server.url("/container-credentials")};
  EnvScope tok{"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", dir / "token"};
  env.server.set_lifetime(2);
  int before = env.server.state()["issued"]["container"].GetInt();
  launch_test::TempDir logs("launch-sm-refresh-logs");
  auto run = sagemaker()->submit(job_in(logs, "Completed", "10"));
  RunStatus st = run->wait(seconds(120));
  env.server.set_lifetime(3600);
  CHECK(st.phase == RunPhase::finished);
  CHECK(slurp(logs / "stdout.log").find("step 10\n") != std::string::npos);
  // At least one refresh every 2 s over 10 s, and not one 403.
  CHECK(env.server.state()["issued"]["container"].GetInt() - before >= 4);
  clean.check();
}
