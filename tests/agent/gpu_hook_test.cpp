// Runner::gpus_wanted(): the agent asks the runner how many devices a job
// needs, whatever the runner, and hands that many out of its pool.
#include <memory>
#include <string>
#include <vector>

#include "helpers.hpp"
#include "launch/launch.hpp"

using namespace launch;
using launch_test::TempDir;
using std::chrono::milliseconds;

namespace {

struct CountingRunner : launch_test::RecordingRunner {
  using RecordingRunner::RecordingRunner;
  int gpus_wanted(const ResolvedJob& job) const override {
    return job.config.find("\"devices\":1") != std::string::npos ? 1 : 0;
  }
};

QueueItem run_one(const std::string& config, int pool, std::vector<ResolvedJob>* seen) {
  static std::vector<ResolvedJob>* current = nullptr;
  current = seen;
  register_runner("counting", [](const RunnerContext&) {
    return std::make_unique<CountingRunner>(current);
  });
  TempDir home;
  auto t = open_transport("memory://");
  QueueDef q;
  q.entity = "team";
  q.name = "q";
  q.resource = "counting";
  q.config = config;
  t->create_queue(q);
  AgentConfig c;
  c.entity = "team";
  c.launch_home = home.path();
  c.queues = {"q"};
  c.gpus = pool;
  Agent agent(c, t);
  JobSpec s;
  s.name = "job";
  s.entry_point = {"/bin/true"};
  s.author = "alice";
  std::string id = t->push(QueueRef{"team", "q"}, s);
  launch_test::until([&] { return is_terminal(t->get(id).state); },
                     [&] { agent.step(milliseconds(50)); });
  unregister_runner("counting");
  return t->get(id);
}

}  // namespace

TEST_CASE("agent: a custom runner that asks for one GPU gets one from the pool") {
  std::vector<ResolvedJob> seen;
  QueueItem item = run_one(R"({"devices": 1})", 2, &seen);
  CHECK(item.state == ItemState::finished);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].gpus == std::vector<int>{0});

  // Asking for none gets none, GPUs or not.
  seen.clear();
  item = run_one(R"({"devices": 0})", 2, &seen);
  CHECK(item.state == ItemState::finished);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].gpus.empty());
}

TEST_CASE("agent: a custom runner that asks for more GPUs than the agent has fails at stage agent") {
  std::vector<ResolvedJob> seen;
  QueueItem item = run_one(R"({"devices": 1})", 0, &seen);
  CHECK(item.state == ItemState::failed);
  REQUIRE(item.error);
  CHECK(item.error->stage == ErrorStage::agent);
  CHECK(item.error->message.find("counting config: gpus 1: this agent has 0 GPUs") == 0);
  CHECK(seen.empty());
}

namespace {

struct CountingBuilder : Builder {
  int* builds;
  explicit CountingBuilder(int* b) : builds(b) {}
  BuildResult build(const BuildRequest&) override {
    ++*builds;
    BuildResult r;
    r.image = "registry.example/job:built";
    return r;
  }
};

}  // namespace

TEST_CASE("agent: a job its config refuses is refused before anything is built for it") {
  static std::vector<ResolvedJob> seen;
  static int builds = 0;
  register_runner("imaged", [](const RunnerContext&) {
    return std::make_unique<launch_test::ImagedRunner>(&seen);
  });
  register_builder("counting", [](const BuilderConfig&) {
    return std::make_unique<CountingBuilder>(&builds);
  });
  TempDir home;
  auto t = open_transport("memory://");
  QueueDef q;
  q.entity = "team";
  q.name = "q";
  q.resource = "imaged";
  q.config = R"({"image": "${image_uri}"})";
  t->create_queue(q);
  AgentConfig c;
  c.entity = "team";
  c.launch_home = home.path();
  c.queues = {"q"};
  c.secure_mode = true;
  c.builder.type = "counting";
  Agent agent(c, t);
  auto push = [&](const std::string& resource_args) {
    JobSpec s;
    s.name = "job";
    s.source.kind = JobSource::Kind::code;
    s.source.code_dir = home.path();
    s.resource_args = resource_args;
    std::string id = t->push(QueueRef{"team", "q"}, s);
    launch_test::until([&] { return is_terminal(t->get(id).state); },
                       [&] { agent.step(milliseconds(50)); });
    return t->get(id);
  };
  QueueItem refused = push(R"({"spec": {"hostNetwork": true}})");
  CHECK(refused.state == ItemState::failed);
  REQUIRE(refused.error);
  CHECK(refused.error->stage == ErrorStage::agent);
  CHECK(refused.error->message.find("hostNetwork") != std::string::npos);
  CHECK(builds == 0);
  CHECK(seen.empty());

  // A job it takes is built once and gets the built image in its config.
  QueueItem taken = push("{}");
  CHECK(taken.state == ItemState::finished);
  CHECK(builds == 1);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].config == R"({"image":"registry.example/job:built"})");
  unregister_runner("imaged");
  CHECK(std::find(builder_names().begin(), builder_names().end(), "counting") != builder_names().end());
}
