// The sagemaker runner under a real Agent: an item pushed to a sagemaker
// queue runs on the test server to its end, its CloudWatch log in the
// item's stdout.log; a spot interruption puts it back to pending and the
// next run (LAUNCH_RESUME_COUNT 1) completes.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "aws_server.hpp"
#include "launch/features.h"
#include "launch/launch.hpp"
#include "support/prebuilt_builder.hpp"
#include "support/temp_dir.hpp"

using namespace launch;

namespace {

struct Harness {
  aws_test::WithKeys env;
  launch_test::TempDir home{"launch-sm-agent"};
  std::shared_ptr<Transport> t = open_transport("memory://");
  std::vector<JobEvent> events;
  std::unique_ptr<Agent> agent;

  explicit Harness(const std::string& builder = "test-prebuilt") {
    launch_test::register_prebuilt_builder();
    QueueDef q;
    q.entity = "ml";
    q.name = "sm";
    q.resource = "sagemaker";
    q.config = R"({"role_arn": "launch-test-role",
                   "output_data_config": {"s3_output_path": "s3://launch-test/out"},
                   "resource_config": {"instance_type": "ml.m5.xlarge", "instance_count": 1,
                                       "volume_size_in_gb": 10},
                   "enable_managed_spot_training": true,
                   "stopping_condition": {"max_runtime_in_seconds": 600,
                                          "max_wait_time_in_seconds": 1200}})";
    t->create_queue(q);
    AgentConfig c;
    c.entity = "ml";
    c.queues = {"sm"};
    c.launch_home = home.path();
    c.gpus = 0;
    c.builder.type = builder;
    c.environment_type = "aws";
    c.environment_region = "us-east-1";
    agent = std::make_unique<Agent>(c, t);
    agent->on_event([this](const JobEvent& e) { events.push_back(e); });
  }

  std::string push(const std::string& outcome,
                   const std::string& image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:v1") {
    JobSpec s;
    s.name = "train";
    s.author = "alice";
    s.source.kind = JobSource::Kind::image;
    s.source.image = image;
    s.entry_point = {"python", "train.py"};
    s.env = {{"SIM_OUTCOME", outcome}, {"SIM_SECONDS", "1"}};
    return t->push(QueueRef{"ml", "sm"}, s);
  }

  QueueItem wait_end(const std::string& id) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (!is_terminal(t->get(id).state) && std::chrono::steady_clock::now() < deadline) {
      agent->step(std::chrono::milliseconds(100));
    }
    return t->get(id);
  }

  std::string log_of(const std::string& id) {
    std::ifstream in(run_directory(home.path(), id) + "/stdout.log");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
};

}  // namespace

TEST_CASE("agent: a sagemaker item finishes with its CloudWatch log in the item's logs") {
  Harness h;
  std::string id = h.push("Completed");
  QueueItem item = h.wait_end(id);
  CHECK(to_string(item.state) == std::string("finished"));
  std::string log = h.log_of(id);
  CHECK(log.find("LAUNCH_ITEM_ID=" + id + "\n") != std::string::npos);
  CHECK(log.find("done: Completed\n") != std::string::npos);
}

TEST_CASE("agent: a failing sagemaker job fails the item with SageMaker's reason") {
  Harness h;
  std::string id = h.push("Failed");
  QueueItem item = h.wait_end(id);
  CHECK(to_string(item.state) == std::string("failed"));
  REQUIRE(item.error.has_value());
  CHECK(item.error->message.find("AlgorithmError") != std::string::npos);
}

TEST_CASE("agent: a spot interruption requeues the item; the resumed run completes") {
  Harness h;
  std::string id = h.push("Spot");
  QueueItem item = h.wait_end(id);
  CHECK(to_string(item.state) == std::string("finished"));
  CHECK(item.resume_count == 1);
  bool requeued = false;
  for (const auto& e : h.events) requeued = requeued || (e.item_id == id && e.state == ItemState::pending);
  CHECK(requeued);
  // Two training jobs, the second named for the resumed run.
  rapidjson::Document state = h.env.server.state();  // keeps the values below alive
  auto jobs = state["jobs"].GetObject();
  int of_this_run = 0;
  for (const auto& m : jobs) {
    std::string name = m.name.GetString();
    if (name.find("launch-" + item.run_id + "-") == 0) ++of_this_run;
  }
  CHECK(of_this_run == 2);
}

#if LAUNCH_FEATURE_DOCKER
TEST_CASE("agent: the noop builder checks the image is in ECR (SageMaker pulls it), not locally") {
  Harness h("noop");
  h.env.server.post("/_test/config", R"({"images": {"train": {"v1": "sha256:)" +
                                         std::string(64, 'b') + R"("}}})");
  std::string ok = h.push("Completed");
  CHECK(to_string(h.wait_end(ok).state) == std::string("finished"));

  std::string missing = h.push("Completed", "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:v404");
  QueueItem item = h.wait_end(missing);
  CHECK(to_string(item.state) == std::string("failed"));
  REQUIRE(item.error.has_value());
  CHECK(to_string(item.error->stage) == std::string("build"));
  CHECK(item.error->message.find("train:v404 is not in the registry") != std::string::npos);
}
#endif
