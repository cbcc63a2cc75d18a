// The item state machine. Transports load an item, apply one of these and
// store it in one transaction, so every transport has the same semantics.
#include "launch/sys/lifecycle.hpp"

#include <fmt/format.h>

#include "core/resolve.hpp"
#include "launch/error.hpp"
#include "launch/template.hpp"
#include "util/process.hpp"
#include "util/user.hpp"

namespace launch {
namespace lifecycle {
namespace {

void move_to(QueueItem& item, ItemState to, std::int64_t now) {
  if (!can_transition(item.state, to)) {
    throw Error(Errc::state, fmt::format("item {}: cannot go from {} to {}", item.id,
                                         to_string(item.state), to_string(to)));
  }
  item.state = to;
  item.updated_at = now;
  if (is_terminal(to)) {
    item.ended_at = now;
    item.lease_expires_at = 0;
  }
}

void check_holder(const QueueItem& item, const std::string& agent_id) {
  if (item.agent_id != agent_id || item.state == ItemState::pending || is_terminal(item.state)) {
    throw Error(Errc::state,
                fmt::format("item {} ({}): agent \"{}\" does not hold its lease{}", item.id,
                            to_string(item.state), agent_id,
                            item.agent_id.empty() ? std::string()
                                                  : " (held by \"" + item.agent_id + "\")"));
  }
}

void extend_lease(QueueItem& item, std::int64_t now) {
  item.lease_expires_at = now + static_cast<std::int64_t>(item.lease_seconds) * 1000;
}

void back_to_pending(QueueItem& item, std::int64_t now) {
  move_to(item, ItemState::pending, now);
  item.agent_id.clear();
  item.lease_expires_at = 0;
}

}  // namespace

QueueItem make_pending(const QueueDef& queue, const JobSpec& spec, std::int64_t now) {
  spec.validate();
  validate_template_values(queue, spec.template_values);
  check_resource_config(queue, spec.resource_args);
  if (spec.priority && !queue.prioritization) {
    throw Error(Errc::invalid,
                fmt::format("priority \"{}\": queue \"{}\" has prioritization off "
                            "(create it with prioritization: true)",
                            to_string(*spec.priority), queue.ref().str()));
  }
  QueueItem item;
  item.queue = queue.ref();
  item.spec = spec;
  item.state = ItemState::pending;
  item.priority = spec.priority.value_or(Priority::medium);
  item.created_at = now;
  item.updated_at = now;
  item.lease_seconds = queue.lease_seconds;
  item.max_attempts = queue.max_attempts;
  item.run_id = spec.run_id.empty() ? generate_run_id() : spec.run_id;
  item.spec.run_id = item.run_id;
  return item;
}

void claim(QueueItem& item, const std::string& agent_id, std::int64_t now) {
  if (agent_id.empty()) throw Error(Errc::invalid, "claim: agent id is empty");
  move_to(item, ItemState::claimed, now);
  item.agent_id = agent_id;
  item.attempt += 1;
  extend_lease(item, now);
}

void start(QueueItem& item, const std::string& agent_id, const std::string& run_id,
           std::int64_t now) {
  check_holder(item, agent_id);
  move_to(item, ItemState::running, now);
  if (!run_id.empty()) item.run_id = run_id;
  item.started_at = now;
  extend_lease(item, now);
}

void finish(QueueItem& item, const std::string& agent_id, int exit_code, std::int64_t now) {
  check_holder(item, agent_id);
  if (item.state == ItemState::claimed) {
    throw Error(Errc::state,
                fmt::format("item {}: cannot finish from claimed (start it first)", item.id));
  }
  item.exit_code = exit_code;
  if (exit_code == 0) {
    move_to(item, ItemState::finished, now);
  } else {
    move_to(item, ItemState::failed, now);
    item.error = ItemError{ErrorStage::run, fmt::format("exited with code {}", exit_code)};
  }
}

void fail(QueueItem& item, const std::string& agent_id, const ItemError& error,
          std::optional<int> exit_code, std::int64_t now) {
  check_holder(item, agent_id);
  move_to(item, ItemState::failed, now);
  item.error = error;
  if (exit_code) item.exit_code = exit_code;
}

void confirm_stopped(QueueItem& item, const std::string& agent_id, std::int64_t now) {
  check_holder(item, agent_id);
  if (item.state != ItemState::stopping) {
    throw Error(Errc::state, fmt::format("item {}: cannot go from {} to stopped (only a "
                                         "cancelled item, in stopping, can)",
                                         item.id, to_string(item.state)));
  }
  move_to(item, ItemState::stopped, now);
}

void requeue(QueueItem& item, const std::string& agent_id, RequeueReason why, std::int64_t now) {
  check_holder(item, agent_id);
  if (why == RequeueReason::preempted) {
    if (item.state != ItemState::running) {
      throw Error(Errc::state, fmt::format("item {}: only a running item can be preempted, "
                                           "it is {}",
                                           item.id, to_string(item.state)));
    }
    item.resume_count += 1;
    if (item.resume_count > kMaxResumes) {
      move_to(item, ItemState::failed, now);
      item.error = ItemError{ErrorStage::run, fmt::format("preempted {} times (at most {} "
                                                          "resumes)",
                                                          item.resume_count, kMaxResumes)};
      return;
    }
    item.warnings.push_back(
        fmt::format("preempted; resuming (resume {} of {})", item.resume_count, kMaxResumes));
  }
  back_to_pending(item, now);
}

void cancel(QueueItem& item, std::int64_t now) {
  switch (item.state) {
    case ItemState::pending:
      move_to(item, ItemState::stopped, now);
      return;
    case ItemState::claimed:
    case ItemState::running:
      move_to(item, ItemState::stopping, now);
      return;
    case ItemState::stopping:
      return;  // already on its way
    default:
      throw Error(Errc::state, fmt::format("item {}: cannot cancel, it is already {}", item.id,
                                           to_string(item.state)));
  }
}

bool renew(QueueItem& item, const std::string& agent_id, std::int64_t now) {
  bool held = item.agent_id == agent_id &&
              (item.state == ItemState::claimed || item.state == ItemState::running ||
               item.state == ItemState::stopping);
  if (held) extend_lease(item, now);
  return held;
}

bool lease_expired(const QueueItem& item, std::int64_t now) {
  bool leased = item.state == ItemState::claimed || item.state == ItemState::running ||
                item.state == ItemState::stopping;
  return leased && item.lease_expires_at > 0 && item.lease_expires_at < now;
}

void check_delete_pending(const QueueRef& queue, QueueDelete mode, std::size_t pending) {
  if (mode == QueueDelete::with_pending || pending == 0) return;
  throw Error(Errc::state,
              fmt::format("queue \"{}\" still holds {} pending item{}; delete it with them "
                          "(launch queue delete --force) or let them end first",
                          queue.str(), pending, pending == 1 ? "" : "s"));
}

bool expire(QueueItem& item, std::int64_t now) {
  if (!lease_expired(item, now)) return false;
  std::string lost = item.agent_id;
  if (item.state == ItemState::stopping) {
    move_to(item, ItemState::stopped, now);
    item.warnings.push_back(fmt::format("lease of agent \"{}\" expired while stopping", lost));
    return true;
  }
  if (item.attempt < item.max_attempts) {
    item.warnings.push_back(fmt::format("lease of agent \"{}\" expired on attempt {}; "
                                        "back to pending",
                                        lost, item.attempt));
    back_to_pending(item, now);
    return true;
  }
  move_to(item, ItemState::failed, now);
  item.error = ItemError{ErrorStage::agent,
                         fmt::format("lease of agent \"{}\" expired on attempt {} of {}", lost,
                                     item.attempt, item.max_attempts)};
  return true;
}

bool quarantine(QueueItem& item, const std::string& cause, std::int64_t now) {
  item.error = ItemError{ErrorStage::agent, "unreadable item: " + cause};
  if (is_terminal(item.state)) return false;
  // Not through move_to: a pending item cannot normally fail, but one that
  // cannot be read must not wait forever either.
  item.state = ItemState::failed;
  item.updated_at = now;
  item.ended_at = now;
  item.lease_expires_at = 0;
  return true;
}

void judge_agent(AgentRecord& agent, std::int64_t now) {
  if (agent.status != AgentStatus::polling && agent.status != AgentStatus::running) return;
  if (agent.pid > 0 && agent.host == util::host_name() && !util::process_exists(agent.pid)) {
    agent.status = AgentStatus::dead;
  } else if (now - agent.last_seen > static_cast<std::int64_t>(kAgentLeaseSeconds) * 1000) {
    agent.status = AgentStatus::lost;
  }
}

}  // namespace lifecycle
}  // namespace launch
