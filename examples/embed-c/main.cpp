// Embeds a launch agent in a C++ program through the C ABI (launch.h), with
// a custom runner: an "in-house scheduler" class that records what it is
// handed. The C vtable calls static trampolines that forward to the object.
//
//   launch_example_embed_c [QUEUE_URI]     (default memory://)
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "launch/launch.h"

namespace {

class InHouseScheduler {
 public:
  // Returns the scheduler's id for the job.
  std::string submit(const std::string& job_json) {
    handed_.push_back(job_json);
    std::string id = "hpc-" + std::to_string(handed_.size());
    polls_[id] = 0;
    return id;
  }
  // Each job runs for two polls.
  bool done(const std::string& id) { return ++polls_[id] > 2; }
  const std::vector<std::string>& handed() const { return handed_; }

  // The C vtable. Callbacks must not throw: exceptions become error codes.
  launch_runner vtable() {
    launch_runner r{};
    r.version = LAUNCH_RUNNER_VERSION;
    r.user = this;
    r.submit = [](void* user, const char* job, char* run_id, size_t size) {
      try {
        std::string id = static_cast<InHouseScheduler*>(user)->submit(job);
        std::snprintf(run_id, size, "%s", id.c_str());
        return static_cast<int>(LAUNCH_OK);
      } catch (const std::exception& e) {
        return launch_error_set(LAUNCH_EUSER, e.what());
      }
    };
    r.poll = [](void* user, const char* run_id, launch_run_status* st) {
      if (static_cast<InHouseScheduler*>(user)->done(run_id)) {
        st->phase = LAUNCH_RUN_FINISHED;
        st->has_exit_code = 1;
        st->exit_code = 0;
      }
      return static_cast<int>(LAUNCH_OK);
    };
    r.cancel = [](void*, const char*, int) { return static_cast<int>(LAUNCH_OK); };
    return r;
  }

 private:
  std::vector<std::string> handed_;
  std::map<std::string, int> polls_;
};

// Owns a C handle: destroy functions accept NULL.
using Transport = std::unique_ptr<launch_transport, decltype(&launch_transport_close)>;
using Agent = std::unique_ptr<launch_agent, decltype(&launch_agent_destroy)>;

int check(int rc, const char* what) {
  if (rc < 0) {
    std::fprintf(stderr, "%s: %s (%s)\n", what, launch_last_error(), launch_error_name(rc));
    std::exit(1);
  }
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  InHouseScheduler scheduler;
  launch_runner vt = scheduler.vtable();
  check(launch_runner_register("hpc", &vt), "register");

  launch_transport* raw_t = nullptr;
  check(launch_transport_open(&raw_t, argc > 1 ? argv[1] : "memory://"), "open");
  Transport t(raw_t, launch_transport_close);
  check(launch_queue_create(t.get(), "name: batch\nentity: lab\nresource: hpc\n", nullptr),
        "queue create");
  for (int i = 0; i < 4; ++i) {
    std::string job = R"({"name": "sim-)" + std::to_string(i) + R"(", "entry_point": ["sim"]})";
    check(launch_queue_push(t.get(), "lab/batch", job.c_str(), nullptr), "push");
  }

  launch_agent_options opts;
  check(launch_agent_options_init(&opts, LAUNCH_AGENT_OPTIONS_VERSION), "options");
  const char* queues[] = {"lab/batch"};
  opts.config_yaml = "entity: lab\ngpus: 0\n";
  opts.queues = queues;
  opts.queue_count = 1;
  opts.max_jobs = 4;
  launch_agent* raw_a = nullptr;
  check(launch_agent_create(&raw_a, t.get(), &opts), "agent");
  Agent agent(raw_a, launch_agent_destroy);

  int finished = 0;
  struct Stop {
    launch_agent* agent;
    int* finished;
  } stop{agent.get(), &finished};
  check(launch_agent_on_event(
            agent.get(),
            [](const char* event, void* user) {
              auto* s = static_cast<Stop*>(user);
              if (std::string(event).find(R"("state":"finished")") != std::string::npos &&
                  ++*s->finished == 4) {
                launch_agent_stop(s->agent, LAUNCH_STOP_DRAIN);
              }
            },
            &stop),
        "on_event");
  check(launch_agent_run(agent.get()), "run");

  for (const auto& job : scheduler.handed()) std::printf("handed: %.120s...\n", job.c_str());
  std::printf("%d of 4 jobs finished\n", finished);
  agent.reset();
  check(launch_runner_unregister("hpc"), "unregister");
  return finished == 4 ? 0 : 1;
}
