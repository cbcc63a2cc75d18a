// launch/sys — the item state machine as pure functions, for people who
// write a transport. Every built-in transport loads an item, applies one of
// these, and stores it, inside one transaction of its own store; so every
// transport has the same semantics, checked by the same code.
//
// Each function checks the transition (Errc::state, naming the item, its
// state and the wanted one) and, where an agent acts, that the agent holds
// the item's lease. `now` is ms since the epoch.
#ifndef LAUNCH_SYS_LIFECYCLE_HPP
#define LAUNCH_SYS_LIFECYCLE_HPP

#include <cstdint>
#include <optional>
#include <string>

#include "launch/export.h"
#include "launch/job.hpp"
#include "launch/queue.hpp"
#include "launch/transport.hpp"

namespace launch {
namespace lifecycle {

// How many times a preempted item goes back to pending before it fails.
constexpr int kMaxResumes = 5;

// Builds the pending item a push appends: validates the spec and its
// template values against the queue, checks the queue's config with the
// spec's resource_args merged over it with the queue's runner
// (Runner::check_config; W&B's resource-keyed resource_args are read as
// QueueDef::validate() describes), applies the priority rules (an explicit
// priority on a queue without prioritization is refused), snapshots the
// queue's lease policy and assigns a run id when the spec has none. The id
// is left empty for the store to assign.
LAUNCH_EXPORT QueueItem make_pending(const QueueDef& queue, const JobSpec& spec,
                                     std::int64_t now);

LAUNCH_EXPORT void claim(QueueItem& item, const std::string& agent_id, std::int64_t now);
LAUNCH_EXPORT void start(QueueItem& item, const std::string& agent_id,
                         const std::string& run_id, std::int64_t now);
LAUNCH_EXPORT void finish(QueueItem& item, const std::string& agent_id, int exit_code,
                          std::int64_t now);
LAUNCH_EXPORT void fail(QueueItem& item, const std::string& agent_id,
                        const ItemError& error, std::optional<int> exit_code,
                        std::int64_t now);
LAUNCH_EXPORT void confirm_stopped(QueueItem& item, const std::string& agent_id, std::int64_t now);
LAUNCH_EXPORT void requeue(QueueItem& item, const std::string& agent_id, RequeueReason why,
                           std::int64_t now);
LAUNCH_EXPORT void cancel(QueueItem& item, std::int64_t now);

// Renews the lease when `agent_id` still holds the item. Returns false when
// it does not (the agent has lost it).
LAUNCH_EXPORT bool renew(QueueItem& item, const std::string& agent_id, std::int64_t now);

// True when the item holds a lease that has run out at `now`.
LAUNCH_EXPORT bool lease_expired(const QueueItem& item, std::int64_t now);
// Applies the lease policy to an expired item: back to pending while
// attempt < max_attempts, else failed at stage agent; a stopping item
// becomes stopped. Returns false (and changes nothing) if the lease has not
// expired.
LAUNCH_EXPORT bool expire(QueueItem& item, std::int64_t now);

// delete_queue's pending check, once the store has counted, in the
// transaction that deletes, the queue's pending items: Errc::state saying
// how many when `mode` does not take them.
LAUNCH_EXPORT void check_delete_pending(const QueueRef& queue, QueueDelete mode,
                                        std::size_t pending);

// An item whose stored row cannot be read back (a damaged row, a field of
// the wrong type, a state this version does not know): `item` holds what
// the store could read of it (id, queue, state, times, attempts); it becomes
// failed at stage agent with "unreadable item: <cause>", so list() shows it
// and claim() passes it by instead of failing on it forever. An item whose
// state was read and had ended keeps that state and only gets the error; a
// state that could not be read counts as not ended (pass it as pending).
// Returns true when the state changed: the store then records the failure
// in its own statement (leaving the unreadable fields as they are, for
// whoever inspects the row), so the queue moves on.
LAUNCH_EXPORT bool quarantine(QueueItem& item, const std::string& cause, std::int64_t now);

// The status list_agents() shows for `agent` at `now` (AgentStatus):
// dead when it said polling or running, runs on this host (its host is
// this host's name) and its pid no longer exists; else lost when its
// last_seen is more than kAgentLeaseSeconds old; else what it reported.
// Every store applies it to the records it reads.
LAUNCH_EXPORT void judge_agent(AgentRecord& agent, std::int64_t now);

}  // namespace lifecycle
}  // namespace launch

#endif
