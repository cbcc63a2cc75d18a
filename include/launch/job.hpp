// launch — jobs: what is pushed (JobSpec) and what waits in a queue
// (QueueItem), with the item's states and the only legal ways between them:
//
//   pending --claim--> claimed --start(run_id)--> running --> finished | failed | stopped
//   cancel: pending -> stopped at once; claimed/running -> stopping -> stopped
//   lease expired (agent lost): -> pending again (attempt+1) or failed, per queue policy
//   preempted (the target evicted it): -> pending again, resume_count+1, at most 5
//
// Every item ends in exactly one terminal state (finished, failed, stopped);
// a retry keeps the item's run_id so the job can resume.
#ifndef LAUNCH_JOB_HPP
#define LAUNCH_JOB_HPP

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "launch/export.h"
#include "launch/queue.hpp"

namespace launch {

// Lower value runs first. A queue with prioritization off refuses any
// explicit priority; its items all carry `medium`.
enum class Priority { critical = 0, high = 1, medium = 2, low = 3 };
LAUNCH_EXPORT const char* to_string(Priority p);
LAUNCH_EXPORT Priority parse_priority(const std::string& text);  // name or 0-3

enum class ItemState { pending, claimed, running, stopping, finished, failed, stopped };
LAUNCH_EXPORT const char* to_string(ItemState s);
LAUNCH_EXPORT ItemState parse_item_state(const std::string& text);
LAUNCH_EXPORT bool is_terminal(ItemState s);
// True when the state machine above allows `from` -> `to`.
LAUNCH_EXPORT bool can_transition(ItemState from, ItemState to);

// Where a job's failure happened.
enum class ErrorStage { agent, build, run };
LAUNCH_EXPORT const char* to_string(ErrorStage s);
LAUNCH_EXPORT ErrorStage parse_error_stage(const std::string& text);

struct ItemError {
  ErrorStage stage = ErrorStage::agent;
  std::string message;
};

// Exactly one source: an image, a git repository at a ref, or a local code
// directory.
struct LAUNCH_EXPORT JobSource {
  enum class Kind { none, image, git, code };
  Kind kind = Kind::none;
  std::string image;     // kind == image
  std::string git_url;   // kind == git
  std::string git_ref;   // kind == git (branch, tag or commit; default HEAD)
  std::string code_dir;  // kind == code
};

struct LAUNCH_EXPORT JobSpec {
  std::string name;  // free text: UTF-8, at most 128 characters, no controls
  std::string project;  // ${project_name}
  JobSource source;
  std::vector<std::string> entry_point;  // argv, never a shell string
  std::vector<std::string> args;         // appended to entry_point
  std::map<std::string, std::string> env;
  std::string run_config = "{}";     // JSON object, given to the run as LAUNCH_CONFIG
  std::string resource_args = "{}";  // JSON object, deep-merged over the queue config
  std::map<std::string, std::string> template_values;  // as text, typed by schema
  std::optional<Priority> priority;
  std::string author;
  std::string run_id;      // empty: the transport assigns one at push
  std::string dockerfile;  // optional Dockerfile override (path in the source)

  // Checks the shape (JSON fields are objects, at most one source, names).
  // Throws Errc::invalid naming the field and value.
  void validate() const;
};

struct LAUNCH_EXPORT QueueItem {
  std::string id;
  QueueRef queue;
  JobSpec spec;
  ItemState state = ItemState::pending;
  Priority priority = Priority::medium;
  std::int64_t created_at = 0;  // ms since the epoch
  std::int64_t updated_at = 0;
  std::int64_t started_at = 0;  // 0: never started
  std::int64_t ended_at = 0;    // 0: not terminal
  int attempt = 0;              // how many times it has been claimed
  int resume_count = 0;         // how many times a target preempted it
  int lease_seconds = 30;       // the queue's lease policy, taken at push
  int max_attempts = 3;
  std::string agent_id;         // the claiming agent, while it holds the lease
  std::int64_t lease_expires_at = 0;
  std::string run_id;
  std::optional<int> exit_code;
  std::optional<ItemError> error;
  std::vector<std::string> warnings;
};

// The JSON forms used by the CLI's --json, the C ABI and the stores.
// Field names are the DESIGN names (docs/architecture.md) (snake_case). Every field is written
// (a spec's source as the keys of its kind only: image; git_url, git_ref;
// code_dir; a spec's unset priority and an item's missing exit_code and
// error as null). The readers accept fields they do not know and refuse
// (Errc::invalid, naming the field) a field of the wrong type and, for an
// item, a missing `id`, `queue` or `state`. A spec has no required field.
LAUNCH_EXPORT std::string to_json(const JobSpec& spec);
LAUNCH_EXPORT JobSpec job_spec_from_json(const std::string& json);
LAUNCH_EXPORT std::string to_json(const QueueItem& item);
LAUNCH_EXPORT QueueItem queue_item_from_json(const std::string& json);

// A fresh run id: 8 chars of [a-z0-9], as W&B run ids look.
LAUNCH_EXPORT std::string generate_run_id();

// Milliseconds since the epoch (the clock every transport stamps with).
LAUNCH_EXPORT std::int64_t now_ms();

}  // namespace launch

#endif
