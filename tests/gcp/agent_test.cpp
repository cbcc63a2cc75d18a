// The gcp-vertex runner under a real Agent: an item pushed to a Vertex
// queue runs as a CustomJob on the test server to its end, its Cloud
// Logging entries in the item's stdout.log; a failing one fails with
// Vertex's reason; a cancel stops it; a restarted agent follows the job an
// earlier one started.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "gcp_server.hpp"
#include "launch/launch.hpp"
#include "support/prebuilt_builder.hpp"
#include "support/temp_dir.hpp"

using namespace launch;

namespace {

struct Harness {
  gcp_test::WithServiceAccount env;
  launch_test::TempDir home{"launch-vx-agent"};
  std::shared_ptr<Transport> t = open_transport("memory://");
  std::unique_ptr<Agent> agent;

  Harness() {
    launch_test::register_prebuilt_builder();
    QueueDef q;
    q.entity = "ml";
    q.name = "vx";
    q.resource = "gcp-vertex";
    // W&B's wrapper, and a template value for the machine type.
    q.config = R"({"gcp-vertex": {"spec": {
        "staging_bucket": "gs://launch-test-staging",
        "worker_pool_specs": [{"machine_spec": {"machine_type": "{{machine}}"},
                               "replica_count": 1, "container_spec": {}}]},
      "run": {"timeout": 600}}})";
    TemplateVariable var;
    var.type = VarType::string;
    var.default_value = "n1-standard-4";
    q.template_variables["machine"] = var;
    t->create_queue(q);
    start();
  }

  AgentConfig config() const {
    AgentConfig c;
    c.entity = "ml";
    c.queues = {"vx"};
    c.launch_home = home.path();
    c.gpus = 0;
    c.builder.type = "test-prebuilt";
    c.environment_type = "gcp";
    c.environment_region = "us-central1";
    return c;
  }
  void start() { agent = std::make_unique<Agent>(config(), t); }

  std::string push(const std::string& outcome, const std::string& seconds = "1") {
    JobSpec s;
    s.name = "train";
    s.author = "alice";
    s.source.kind = JobSource::Kind::image;
    s.source.image = "us-docker.pkg.dev/launch-test-project/train/train:v1";
    s.entry_point = {"python", "train.py"};
    s.env = {{"SIM_OUTCOME", outcome}, {"SIM_SECONDS", seconds}};
    s.template_values = {{"machine", "n1-highmem-8"}};
    return t->push(QueueRef{"ml", "vx"}, s);
  }

  template <typename Pred>
  QueueItem step_until(const std::string& id, Pred done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (!done(t->get(id)) && std::chrono::steady_clock::now() < deadline) {
      agent->step(std::chrono::milliseconds(50));
    }
    return t->get(id);
  }
  QueueItem wait_end(const std::string& id) {
    return step_until(id, [](const QueueItem& i) { return is_terminal(i.state); });
  }

  std::string log_of(const std::string& id) {
    std::ifstream in(run_directory(home.path(), id) + "/stdout.log");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
};

// The jobs on the server labelled with `item`'s id and run id (each test's
// memory:// transport numbers its items from 1).
std::vector<std::string> jobs_of(const rapidjson::Document& state, const QueueItem& item) {
  auto label = [](const std::string& s) {
    std::string out;
    for (char c : s) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  std::vector<std::string> out;
  for (const auto& j : state["jobs"].GetObject()) {
    const auto& l = j.value["labels"];
    if (l["launch-item-id"].GetString() == label(item.id) &&
        l["launch-run-id"].GetString() == label(item.run_id)) {
      out.push_back(j.name.GetString());
    }
  }
  return out;
}

}  // namespace

TEST_CASE("agent: a gcp-vertex item finishes with its Cloud Logging entries in the item's logs") {
  Harness h;
  gcp_test::NothingWrong clean;
  std::string id = h.push("SUCCEEDED", "2");
  QueueItem item = h.wait_end(id);
  CHECK(to_string(item.state) == std::string("finished"));
  std::string log = h.log_of(id);
  CHECK(log.find("LAUNCH_ITEM_ID=" + id + "\n") != std::string::npos);
  CHECK(log.find("step 1\n") != std::string::npos);
  CHECK(log.find("done: JOB_STATE_SUCCEEDED\n") != std::string::npos);
  rapidjson::Document state = h.env.server.state();
  auto jobs = jobs_of(state, item);
  REQUIRE(jobs.size() == 1);
  const auto& pool = state["jobs"][jobs[0].c_str()]["jobSpec"]["workerPoolSpecs"][0];
  CHECK(std::string(pool["machineSpec"]["machineType"].GetString()) == "n1-highmem-8");
  CHECK(std::string(state["jobs"][jobs[0].c_str()]["name"].GetString())
            .rfind("projects/launch-test-project/locations/us-central1/", 0) == 0);
  clean.check();
}

TEST_CASE("agent: a failing Vertex job fails the item with Vertex's reason") {
  Harness h;
  std::string id = h.push("FAILED");
  QueueItem item = h.wait_end(id);
  CHECK(to_string(item.state) == std::string("failed"));
  REQUIRE(item.error.has_value());
  CHECK(item.error->message.find("exited with a non-zero status of 1") != std::string::npos);
}

TEST_CASE("agent: cancelling a gcp-vertex item cancels its CustomJob") {
  Harness h;
  gcp_test::NothingWrong clean;
  std::string id = h.push("SUCCEEDED", "600");
  QueueItem running = h.step_until(id, [&](const QueueItem& i) {
    return i.state == ItemState::running && h.log_of(i.id).find("step 0\n") != std::string::npos;
  });
  REQUIRE(running.state == ItemState::running);
  h.t->cancel(id);
  QueueItem item = h.wait_end(id);
  CHECK(to_string(item.state) == std::string("stopped"));
  rapidjson::Document state = h.env.server.state();
  auto jobs = jobs_of(state, item);
  REQUIRE(jobs.size() == 1);
  CHECK(std::string(state["jobs"][jobs[0].c_str()]["state"].GetString()) == "JOB_STATE_CANCELLED");
  clean.check();
}

TEST_CASE("agent: a restarted agent finds the CustomJob by its labels and follows it to its end") {
  Harness h;
  gcp_test::NothingWrong clean;
  std::string id = h.push("SUCCEEDED", "3");
  std::string agent_id = h.agent->id();
  h.agent.reset();
  // As if the agent had claimed and submitted it, then died.
  auto claimed = h.t->claim({QueueRef{"ml", "vx"}}, agent_id);
  REQUIRE(claimed.has_value());
  QueueItem started = h.t->start(id, agent_id, claimed->run_id);
  ResolvedJob job;
  job.item = started;
  job.queue = h.t->get_queue(QueueRef{"ml", "vx"});
  job.config = R"({"spec": {"staging_bucket": "gs://launch-test-staging",
      "worker_pool_specs": [{"machine_spec": {"machine_type": "n1-standard-4"},
                             "replica_count": 1, "container_spec": {}}]}})";
  job.image = started.spec.source.image;
  job.env = {{"LAUNCH_ITEM_ID", id}, {"SIM_SECONDS", "3"}};
  RunnerContext ctx;
  ctx.environment_type = "gcp";
  ctx.region = "us-central1";
  auto dead = make_runner("gcp-vertex", ctx)->submit(job);

  h.start();
  CHECK(h.agent->id() == agent_id);
  QueueItem item = h.wait_end(id);
  CHECK(to_string(item.state) == std::string("finished"));
  CHECK(h.log_of(id).find("done: JOB_STATE_SUCCEEDED\n") != std::string::npos);
  rapidjson::Document state = h.env.server.state();
  CHECK(jobs_of(state, started).size() == 1);  // followed, not run again
  CHECK(dead->wait(std::chrono::seconds(30)).phase == RunPhase::finished);
  clean.check();
}
