// launch — runners: one per resource type. A runner takes a resolved job and
// starts it on its target (a local process, a container, a Kubernetes Job…),
// returning a Run handle the agent follows to its end.
//
// Built in: "local-process" (and, when built with them, "local-container",
// "kubernetes", ...). Users register their own under a resource name; a
// queue whose `resource` is that name hands its jobs to it.
#ifndef LAUNCH_RUNNER_HPP
#define LAUNCH_RUNNER_HPP

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "launch/export.h"
#include "launch/job.hpp"
#include "launch/queue.hpp"

namespace launch {

// Everything a runner needs, already resolved by the agent.
struct ResolvedJob {
  QueueItem item;
  QueueDef queue;
  std::string config = "{}";  // the resource config: templates filled, resource_args
                              // merged, macros expanded, secure-mode checked
  std::string image;          // the image to run (container runners); may be empty
  std::vector<std::string> argv;  // entry_point + args; empty: the image's default
  // LAUNCH_RUN_ID, LAUNCH_ITEM_ID, LAUNCH_QUEUE, LAUNCH_ENTITY, LAUNCH_AUTHOR,
  // LAUNCH_RESUME_COUNT, LAUNCH_CONFIG, then the job's env. A runner adds the
  // `env` of its config beneath the job's (the job wins).
  std::map<std::string, std::string> env;
  // Where the run's output goes: stdout.log and stderr.log (build.log is the
  // builder's). Created by the agent.
  std::string log_dir;
  std::string agent_id;
  // The GPUs the agent handed out for this run from its pool: as many as
  // Runner::gpus_wanted() asked for, none of them given to another run
  // until this one has ended.
  std::vector<int> gpus;
};

enum class RunPhase { running, finished, failed, stopped, preempted };
LAUNCH_EXPORT const char* to_string(RunPhase p);

struct RunStatus {
  RunPhase phase = RunPhase::running;
  std::optional<int> exit_code;  // when the target reports one
  std::string message;           // why it failed / was stopped / preempted
  // What the target said about the run since the last poll that the user
  // should see (a pod that cannot be scheduled, an image that cannot be
  // pulled): the agent adds each to the item's warnings, once. A runner
  // reports each warning in one poll only.
  std::vector<std::string> warnings;
};

// One started run. Not thread-safe: the agent makes one call on it at a
// time. For a blocking() runner that call may come from any of the agent's
// worker threads, a different one each time; otherwise it is always the
// agent's own thread. Destroying a run stops what it started.
class LAUNCH_EXPORT Run {
 public:
  virtual ~Run();
  // The target's name for it: a pid, a container id, a Job name.
  virtual std::string id() const = 0;
  // Non-blocking: where the run is now.
  virtual RunStatus poll() = 0;
  // Asks the run to stop: SIGTERM, then SIGKILL after `grace` (or the
  // target's own equivalent). poll() reports `stopped` once it has.
  virtual void cancel(std::chrono::milliseconds grace) = 0;
  // A descriptor that becomes readable when poll() may return something
  // new, so the agent can sleep in poll(2). -1: the agent polls on a timer.
  virtual int wait_fd() const { return -1; }
  // Blocks until the run has ended or `timeout` passed; returns poll().
  RunStatus wait(std::chrono::milliseconds timeout);
};

class LAUNCH_EXPORT Runner {
 public:
  virtual ~Runner();
  // Starts the job. Throws launch::Error: Errc::invalid for a config this
  // runner refuses (naming the option), anything else for a target failure.
  virtual std::unique_ptr<Run> submit(const ResolvedJob& job) = 0;
  // Finds a run that an earlier agent started for `item` (containers and
  // Jobs carry the item id in a label), or nullptr.
  virtual std::unique_ptr<Run> reattach(const QueueItem& item, const QueueDef& queue);
  // True when reattach() finding nothing proves that no run was started for
  // the item (every run is recorded where reattach looks before it starts):
  // then an item the earlier agent had claimed but not started is started
  // afresh instead of failing "agent restarted; run lost".
  virtual bool reattach_finds_every_run() const { return false; }
  // True when jobs need a container image (the agent builds one first).
  virtual bool needs_image() const { return false; }
  // True (the default) when submit, reattach or a run's poll and cancel
  // may take a while: a remote API behind a slow server. The agent then
  // makes those calls on a few worker threads of its own, so its heartbeats,
  // cancels and other items go on meanwhile; calls for different runs may
  // overlap, so such a runner must be thread-safe (one run still sees one
  // call at a time). False: every call is made on the agent's thread, and
  // must return promptly (local-process, or a host's in-process scheduler
  // that is not thread-safe). needs_image() and blocking() are always
  // called on the agent's thread.
  virtual bool blocking() const { return true; }

  // How many of the agent's GPUs `job` needs, read from its config the way
  // this runner reads it (local-process: its `gpus` key). The agent calls it
  // once per job, after resolving the config and before submit(); it takes
  // that many devices from its pool (a job waits while they are all taken)
  // and hands them over in job.gpus, and refuses a job that wants more than
  // the agent has. Every field of `job` but `gpus` is set. Default: none (a
  // runner whose target schedules its own devices). Throws launch::Error
  // (Errc::invalid naming the option) for a config this runner refuses.
  virtual int gpus_wanted(const ResolvedJob& /*job*/) const { return 0; }

  // Checks a resource config before anything is stored: a queue's config
  // when the queue is created or changed, and at push the queue's config
  // with the job's resource_args merged in. What submit() would refuse for
  // the config's shape (an unknown option, a field of the wrong type, a
  // secure-mode violation, a required field missing) is refused here with
  // Errc::invalid naming the option's path. QueueDef::validate() (so every
  // transport's create_queue) and lifecycle::make_pending() (every push)
  // call it. `config_json` is the config as stored, out of W&B's
  // resource-keyed wrapper: template placeholders ("{{var}}") are not
  // filled yet and must be accepted wherever a template value could go.
  // Called on a runner made for this purpose alone, from an empty
  // RunnerContext, so a factory must not contact its target while
  // constructing. Default: accepts everything.
  virtual void check_config(const std::string& /*config_json*/) const {}
};

// What a runner factory may look at: the agent's settings that concern it.
struct RunnerContext {
  std::string launch_home;
  std::string agent_id;
  std::string environment_type;  // aws | gcp | azure | ""
  std::string region;
  std::string registry_uri;
};

using RunnerFactory = std::function<std::unique_ptr<Runner>(const RunnerContext&)>;
// Registers (or replaces) the runner for resource `name`. Thread-safe.
LAUNCH_EXPORT void register_runner(const std::string& name, RunnerFactory factory);
// Removes the runner registered for `name`; false when there was none.
// Runners already made by make_runner() are not affected. Thread-safe.
LAUNCH_EXPORT bool unregister_runner(const std::string& name);
// Errc::not_found naming the resource when nothing is registered for it.
LAUNCH_EXPORT std::unique_ptr<Runner> make_runner(const std::string& name,
                                                  const RunnerContext& context);
LAUNCH_EXPORT std::vector<std::string> runner_names();

}  // namespace launch

#endif
