// launch — the agent: polls its queues in turn, never runs more than
// `max_jobs` jobs at once, builds an image when the runner needs one,
// resolves the resource config (template.hpp), submits to the queue's
// runner, follows each run to its end and reports every transition.
//
// Configured like W&B Launch's agent: launch-config.yaml (same keys), then
// the environment (LAUNCH_ENTITY, LAUNCH_MAX_JOBS), then flags.
//
// Embedding: run() blocks until the agent has stopped; step() does one turn
// for a host's own loop. stop() may be called from another thread or a
// signal handler.
//
// Threads: the agent's thread is the one that calls run() or step(). The
// transport, on_event callbacks and fast runners (Runner::blocking() false)
// are used only from it. A blocking runner's submit, reattach, poll and
// cancel are made on a few worker threads the agent starts as they are
// needed (at most max_jobs + 1, 16 at the most) and joins when destroyed,
// so a slow target holds up neither heartbeats nor other items.
#ifndef LAUNCH_AGENT_HPP
#define LAUNCH_AGENT_HPP

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "launch/builder.hpp"
#include "launch/export.h"
#include "launch/job.hpp"
#include "launch/transport.hpp"

namespace launch {

// launch-config.yaml. The first block is W&B Launch's keys; the second is
// launch's own.
struct LAUNCH_EXPORT AgentConfig {
  std::string entity;
  std::vector<std::string> queues;  // "name" or "entity/name"
  int max_jobs = 1;                 // -1: unlimited
  int max_schedulers = 1;
  bool secure_mode = false;
  int verbosity = 0;
  int stopped_run_timeout = 60;  // seconds a cancelled run gets before SIGKILL
  BuilderConfig builder;         // `builder` and `registry`
  std::string environment_type;  // `environment.type`: aws | gcp | azure
  std::string environment_region;

  std::string queue_uri;         // `queue_uri`: transport; "" = default_transport_uri()
  std::string launch_home;       // `launch_home`; "" = launch_home()
  int gpus = -1;                 // `gpus`: GPU pool size; -1 = detect (nvidia-smi -L)
  std::string log_format = "text";  // `log_format`: text | json

  std::string source;  // the file the settings were read from ("" when none)

  // Parses launch-config.yaml text with W&B Launch's meaning for its keys.
  // Errc::invalid naming `source`, the key and the value for: an unknown
  // key, a wrong type, `queues` given as a string instead of a list, and
  // everything validate() refuses. A file with an `entity` and no `queues`
  // polls that entity's queue "default", as W&B's agent does.
  // builder.destination and registry.uri are kept normalised (without an
  // "https://" prefix or a trailing '/').
  static AgentConfig from_yaml(const std::string& text, const std::string& source);
  // Reads and parses a file (Errc::io when unreadable); sets `source`.
  static AgentConfig from_file(const std::string& path);
  // $XDG_CONFIG_HOME/launch/launch-config.yaml, else
  // ~/.config/launch/launch-config.yaml
  static std::string default_path();
  // Where the agent looks when given no file, in order: default_path(),
  // then W&B Launch's ~/.config/wandb/launch-config.yaml.
  static std::vector<std::string> default_paths();
  // The first of default_paths() that exists; "" when none does.
  static std::string find_default_file();
  // Applies LAUNCH_ENTITY and LAUNCH_MAX_JOBS from the environment.
  void apply_environment();
  // Errc::invalid, naming the key and the value, for: max_jobs,
  // max_schedulers, stopped_run_timeout, verbosity or gpus out of range;
  // a log_format other than text or json; a builder.type other than noop,
  // docker or kaniko, or one this build does not have (kaniko, until its
  // builder lands); a builder.platform other than linux/amd64 or
  // linux/arm64; a builder.destination or registry.uri that is no
  // repository URI or has a tag or digest (a GAR one also needs an image
  // name: <region>-docker.pkg.dev/<project>/<repository>/<image>); a
  // registry.type other than ecr, gcr or acr, or a registry.uri of another
  // kind than its type; an environment.type other than aws, gcp or azure;
  // aws or gcp without environment.region; a queue name that is no name.
  void validate() const;
};

// Every setting of `config` as indented JSON, in launch-config.yaml's
// shape plus "config_file" (its `source`): what `launch-agent
// --print-config` prints. A password in queue_uri is shown as "***".
LAUNCH_EXPORT std::string to_json(const AgentConfig& config);

// One transition of one job, as the agent saw it.
struct JobEvent {
  std::string item_id;
  QueueRef queue;
  ItemState state = ItemState::pending;  // the state the item entered
  std::string run_id;
  std::optional<int> exit_code;
  std::string message;  // the error or warning, when there is one
};

// The JSON form of an event, as launch_agent_on_event() hands it over and
// the agent's JSON log lines carry it: {"item_id", "queue", "state",
// "run_id", "exit_code" (null when none), "message"}. The reader accepts
// fields it does not know and refuses (Errc::invalid, naming the field) a
// missing item_id, queue or state, or a field of the wrong type.
LAUNCH_EXPORT std::string to_json(const JobEvent& event);
LAUNCH_EXPORT JobEvent job_event_from_json(const std::string& json);

enum class StopMode {
  drain,   // stop claiming; let running jobs finish
  cancel,  // stop claiming; cancel running jobs and put their items back
};

// An agent's id is stable across restarts (same host, LAUNCH_HOME,
// transport, entity and queues), so a restarted agent finds what it held:
// runs its runner can follow again, and the reports the store could not
// take before (unreachable, disk full). Those are kept in order in
// $LAUNCH_HOME/agents/<id>.reports, retried with backoff while the agent
// runs (the item's lease renewed meanwhile) and by its next start, until
// they land: a run that ended is never left to its lease and run again.
class LAUNCH_EXPORT Agent {
 public:
  Agent(AgentConfig config, std::shared_ptr<Transport> transport);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Called on the agent's thread for every transition it reports.
  void on_event(std::function<void(const JobEvent&)> callback);

  // Registers the agent and loops until it has stopped and has no run left.
  void run();
  // One turn: claims what it may, follows its runs, heartbeats, waiting at
  // most `timeout` for something to happen. Returns false once the agent
  // has stopped and has no run left.
  bool step(std::chrono::milliseconds timeout);
  // Async-signal-safe: only sets a flag and wakes the loop. A second
  // drain, or cancel, escalates.
  void stop(StopMode mode);

  const std::string& id() const;
  int running_jobs() const;
  const AgentConfig& config() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace launch

#endif
