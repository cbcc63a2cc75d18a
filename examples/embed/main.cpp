// Embedding launch in a host program that has a scheduler of its own.
//
// The host registers a runner for the resource "inhouse": launch hands it
// each job fully resolved (config with templates filled and overrides
// merged, argv, env), and the runner passes it to the host's scheduler. The
// host owns the loop: it steps the agent whenever it likes, hears every
// transition through a callback, and stops the agent when it is done.
#include <ftw.h>
#include <stdlib.h>

#include <cstdio>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "launch/launch.hpp"

namespace {

// The host's scheduler: it records what it is handed and "runs" each job
// for a few ticks of the host's loop.
struct Scheduler {
  struct Task {
    std::string name;
    std::vector<std::string> argv;
    std::string config;
    std::string run_id;
    int ticks_left = 3;
    bool cancelled = false;
  };
  std::deque<Task> tasks;

  void tick() {
    for (auto& t : tasks) {
      if (t.ticks_left > 0) --t.ticks_left;
    }
  }
};

class InhouseRun : public launch::Run {
 public:
  InhouseRun(Scheduler& s, std::size_t index) : sched_(s), index_(index) {}
  std::string id() const override { return "task-" + std::to_string(index_); }
  launch::RunStatus poll() override {
    const auto& t = sched_.tasks[index_];
    launch::RunStatus st;
    if (t.cancelled) {
      st.phase = launch::RunPhase::stopped;
    } else if (t.ticks_left == 0) {
      st.phase = launch::RunPhase::finished;
      st.exit_code = 0;
    }
    return st;
  }
  void cancel(std::chrono::milliseconds) override { sched_.tasks[index_].cancelled = true; }

 private:
  Scheduler& sched_;
  std::size_t index_;
};

class InhouseRunner : public launch::Runner {
 public:
  explicit InhouseRunner(Scheduler& s) : sched_(s) {}
  // The scheduler lives on the host's thread and is quick to answer: no
  // worker threads, every call on the agent's (the host's) thread.
  bool blocking() const override { return false; }
  std::unique_ptr<launch::Run> submit(const launch::ResolvedJob& job) override {
    Scheduler::Task t;
    t.name = job.item.spec.name;
    t.argv = job.argv;
    t.config = job.config;
    t.run_id = job.env.at("LAUNCH_RUN_ID");
    sched_.tasks.push_back(t);
    return std::make_unique<InhouseRun>(sched_, sched_.tasks.size() - 1);
  }

 private:
  Scheduler& sched_;
};

}  // namespace

int main() {
  Scheduler scheduler;
  launch::register_runner("inhouse", [&scheduler](const launch::RunnerContext&) {
    return std::make_unique<InhouseRunner>(scheduler);
  });

  // One in-process store: the host pushes, the agent claims.
  auto transport = launch::open_transport("memory://embed");
  launch::QueueDef q;
  q.entity = "lab";
  q.name = "inhouse";
  q.resource = "inhouse";
  q.config = R"({"partition": "{{partition}}", "tag": "${run_id}"})";
  launch::TemplateVariable partition;
  partition.enum_values = {"cpu", "gpu"};
  partition.default_value = "cpu";
  q.template_variables["partition"] = partition;
  transport->create_queue(q);

  for (const char* name : {"prepare", "train", "evaluate"}) {
    launch::JobSpec spec;
    spec.name = name;
    spec.author = "host";
    spec.entry_point = {"python3", std::string(name) + ".py"};
    if (std::string(name) == "train") {
      spec.template_values = {{"partition", "gpu"}};
      spec.resource_args = R"({"nodes": 2})";
    }
    transport->push(q.ref(), spec);
  }

  launch::AgentConfig config;
  config.entity = "lab";
  config.queues = {"inhouse"};
  config.max_jobs = 2;
  config.gpus = 0;
  // Where the agent keeps its lock and per-run directories; thrown away at
  // the end.
  char home[] = "/tmp/launch-embed-example.XXXXXX";
  if (!::mkdtemp(home)) return 1;
  config.launch_home = home;
  launch::set_log_level(launch::LogLevel::warn);  // the host prints its own lines

  launch::Agent agent(config, transport);
  int ended = 0;
  agent.on_event([&ended](const launch::JobEvent& e) {
    std::printf("event: item %s %s\n", e.item_id.c_str(), launch::to_string(e.state));
    if (launch::is_terminal(e.state)) ++ended;
  });

  // The host's own loop: step the agent, tick the scheduler.
  while (ended < 3) {
    agent.step(std::chrono::milliseconds(10));
    scheduler.tick();
  }
  agent.stop(launch::StopMode::drain);
  while (agent.step(std::chrono::milliseconds(10))) {
  }

  ::nftw(home, [](const char* path, const struct stat*, int, struct FTW*) { return ::remove(path); },
         16, FTW_DEPTH | FTW_PHYS);

  for (const auto& t : scheduler.tasks) {
    std::string argv;
    for (const auto& a : t.argv) argv += (argv.empty() ? "" : " ") + a;
    std::printf("scheduler got %-8s argv [%s] config %s\n", t.name.c_str(), argv.c_str(),
                t.config.c_str());
  }
  return scheduler.tasks.size() == 3 ? 0 : 1;
}
