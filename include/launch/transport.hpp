// launch — transports: where queues and their items live.
//
// A transport is chosen by URI and every one behaves the same (one
// conformance suite runs against all of them):
//
//   memory://                 in-process, for embedding and tests
//   sqlite:///path/launch.db  the embedded default, shared by every process
//                             on one machine (WAL mode)
//   postgres://...            many agents on many machines
//
// Users add their own scheme with register_transport().
//
// Thread safety: a Transport may be used from several threads at once.
#ifndef LAUNCH_TRANSPORT_HPP
#define LAUNCH_TRANSPORT_HPP

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "launch/export.h"
#include "launch/job.hpp"
#include "launch/queue.hpp"

namespace launch {

struct ItemFilter {
  std::optional<QueueRef> queue;
  std::optional<ItemState> state;
  std::string agent_id;  // empty: any
  std::size_t limit = 0;  // 0: all; otherwise the newest `limit`
};

// What an agent is doing. An agent reports the first three itself; the
// last two are the store's judgement, made by list_agents() each time it is
// asked, of an agent that said polling or running and then went quiet:
//   polling  registered, waiting for work
//   running  holds at least one item
//   stopped  shut down cleanly
//   lost     its last heartbeat is older than kAgentLeaseSeconds (another
//            host's agent killed, hung or cut off; its items come back when
//            their own leases expire)
//   dead     on this host (the same host name as the reader), and its pid is
//            gone: known at once, without waiting for the lease
// A lost agent that heartbeats again shows what it last reported.
enum class AgentStatus { polling, running, stopped, lost, dead };
LAUNCH_EXPORT const char* to_string(AgentStatus s);
LAUNCH_EXPORT AgentStatus parse_agent_status(const std::string& text);

// How long an agent's registration holds without a heartbeat. Agents
// heartbeat at least every 10 s (every second while they hold items).
constexpr int kAgentLeaseSeconds = 30;

// What an agent says of itself when it registers and heartbeats.
struct AgentRecord {
  std::string id;
  std::string host;
  int pid = 0;
  std::string version;
  std::string entity;
  std::vector<std::string> queues;  // "entity/name"
  AgentStatus status = AgentStatus::polling;
  int max_jobs = 1;
  int running_jobs = 0;
  std::int64_t started_at = 0;
  std::int64_t last_seen = 0;
};

// The answer to a heartbeat: items whose cancel was requested (the agent
// must stop their runs and confirm_stopped() them), and items this agent no
// longer holds (its lease expired and the item moved on: the agent must drop
// them).
struct HeartbeatReply {
  std::vector<std::string> cancel_requested;
  std::vector<std::string> lost;
};

// The JSON forms of the two, as the CLI's --json, the C ABI and a launch
// server write them: every field, under its name above. The readers accept
// fields they do not know and refuse (Errc::invalid, naming the field) a
// missing `id` or `status` (a record), a missing list (a reply), or a field
// of the wrong type.
LAUNCH_EXPORT std::string to_json(const AgentRecord& agent);
LAUNCH_EXPORT AgentRecord agent_record_from_json(const std::string& json);
LAUNCH_EXPORT std::string to_json(const HeartbeatReply& reply);
LAUNCH_EXPORT HeartbeatReply heartbeat_reply_from_json(const std::string& json);

// What Transport::finish_and_claim() did.
struct FinishAndClaim {
  QueueItem finished;            // the item it ended
  std::optional<QueueItem> next;  // the item it claimed then; empty: none
};

// Why an agent hands an item back to pending.
enum class RequeueReason {
  released,   // the agent is shutting down (second SIGTERM); attempt kept
  preempted,  // the target evicted the run; resume_count+1, at most 5
};

// Whether delete_queue may take pending items with their queue (`launch
// queue delete --force`) or refuses while there are any.
enum class QueueDelete { if_no_pending, with_pending };

class LAUNCH_EXPORT Transport {
 public:
  Transport() = default;
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;
  virtual ~Transport();

  virtual std::string uri() const = 0;

  // --- queues
  virtual void create_queue(const QueueDef& queue) = 0;  // Errc::exists
  virtual QueueDef get_queue(const QueueRef& ref) = 0;   // Errc::not_found
  virtual std::vector<QueueDef> list_queues() = 0;
  // Deletes the queue and its items in one transaction and returns the ids
  // of the items deleted (their run directories are the caller's to
  // remove). Refused (Errc::state), changing nothing, while any item is
  // claimed, running or stopping, and with QueueDelete::if_no_pending
  // while any is pending: what is checked is what is deleted, so an item
  // pushed meanwhile is never taken unasked.
  virtual std::vector<std::string> delete_queue(const QueueRef& ref, QueueDelete mode) = 0;

  // --- items, as a producer sees them
  // Validates the spec against the queue (template values, priority rules)
  // and appends it. A refused push changes nothing. Returns the item id.
  virtual std::string push(const QueueRef& queue, const JobSpec& spec) = 0;
  // pending -> stopped at once; claimed/running -> stopping (the owning
  // agent learns it from its next heartbeat). Terminal: Errc::state.
  virtual QueueItem cancel(const std::string& item_id) = 0;
  virtual QueueItem get(const std::string& item_id) = 0;  // Errc::not_found
  // Oldest first.
  virtual std::vector<QueueItem> list(const ItemFilter& filter = {}) = 0;

  // --- items, as an agent sees them. Each checks that `agent_id` holds the
  // item's lease (else Errc::state) and that the transition is legal.
  // Claims the first pending item of the given queues (highest priority,
  // then oldest) under a lease of the queue's lease_seconds.
  virtual std::optional<QueueItem> claim(const std::vector<QueueRef>& queues,
                                         const std::string& agent_id) = 0;
  virtual QueueItem start(const std::string& item_id, const std::string& agent_id,
                          const std::string& run_id) = 0;
  // Renews the agent's lease on `item_ids` and its registration's last_seen.
  virtual HeartbeatReply heartbeat(const std::string& agent_id,
                                   const std::vector<std::string>& item_ids) = 0;
  // Exit code 0 -> finished; anything else -> failed at stage `run`.
  virtual QueueItem finish(const std::string& item_id, const std::string& agent_id,
                           int exit_code) = 0;
  // finish() and then claim(), for an agent whose run ended and that wants
  // its next item. postgres:// sends both in one round trip and commits them
  // together; other transports do one after the other. A refused finish
  // throws and claims nothing; the finish stands whatever the claim finds.
  virtual FinishAndClaim finish_and_claim(const std::string& item_id,
                                          const std::string& agent_id, int exit_code,
                                          const std::vector<QueueRef>& queues);
  virtual QueueItem fail(const std::string& item_id, const std::string& agent_id,
                         const ItemError& error,
                         std::optional<int> exit_code = std::nullopt) = 0;
  // The agent stopped the run of a cancelled item: stopping -> stopped.
  virtual QueueItem confirm_stopped(const std::string& item_id, const std::string& agent_id) = 0;
  virtual QueueItem requeue(const std::string& item_id, const std::string& agent_id,
                            RequeueReason why) = 0;
  virtual void add_warning(const std::string& item_id, const std::string& message) = 0;

  // Puts items whose lease has expired back to pending (attempt < the
  // queue's max_attempts) or fails them. Any agent may call it. Returns how
  // many items it moved. Opening a built-in transport calls it too, so a
  // killed agent's items come back after their lease even when no agent
  // runs: the next `launch list` (or any other open) moves them.
  virtual int expire_leases() = 0;

  // --- agents
  virtual void upsert_agent(const AgentRecord& agent) = 0;
  // Every registered agent, with `status` as judged now: lost or dead for
  // one that went quiet (see AgentStatus; lifecycle::judge_agent).
  virtual std::vector<AgentRecord> list_agents() = 0;

  // --- logs. A piece of an item's log ("stdout", "stderr" or "build") from
  // byte `offset`: at most kMaxLogChunkBytes, empty at the end (or before
  // the run wrote anything). `next_offset` is where to read on. The
  // default reads the run directory under launch_home() on this machine,
  // where a local agent writes it (launch/home.hpp); http(s):// asks the
  // server, so `launch logs -f` works from anywhere. Errc::invalid for
  // another stream name.
  struct LogChunk {
    std::string data;
    std::uint64_t next_offset = 0;
  };
  static constexpr std::size_t kMaxLogChunkBytes = std::size_t{1} << 20;
  virtual LogChunk read_log(const std::string& item_id, const std::string& stream,
                            std::uint64_t offset);

  // --- records: small JSON documents a launch server keeps in the store
  // beside the queues (its users, teams and API keys: launch/accounts.hpp),
  // so that a server keeps no state of its own and several servers can
  // serve one PostgreSQL store. Named by `kind` and `key`. The built-in
  // stores keep them (memory, sqlite, postgres); a transport that does not
  // throws Errc::unsupported, as these defaults do.
  virtual std::optional<std::string> get_record(const std::string& kind, const std::string& key);
  // False, changing nothing, when the key is taken.
  virtual bool insert_record(const std::string& kind, const std::string& key,
                             const std::string& value);
  // Compare-and-set: false, changing nothing, unless the record holds
  // `expected`.
  virtual bool replace_record(const std::string& kind, const std::string& key,
                              const std::string& expected, const std::string& value);
  // False when there was none.
  virtual bool delete_record(const std::string& kind, const std::string& key);
  // Every record of `kind`, ordered by key.
  virtual std::vector<std::pair<std::string, std::string>> list_records(const std::string& kind);

  // --- wake-ups. A file descriptor that becomes readable when new work may
  // be claimable (a push, a requeue), so an agent can sleep in poll() beside
  // its runs' descriptors. -1: none, the caller polls on a timer.
  virtual int notify_fd() { return -1; }
  // Clears the readiness of notify_fd() after it fired.
  virtual void drain_notify() {}
  // Sleeps until notify_fd() fires or `timeout` passes. True if woken.
  bool wait_for_work(std::chrono::milliseconds timeout);
};

// Opens a transport by URI. Throws Errc::invalid for a malformed URI and
// Errc::not_found for an unknown scheme.
LAUNCH_EXPORT std::shared_ptr<Transport> open_transport(const std::string& uri);

// Registers `factory` for "scheme://..." URIs, replacing an earlier one.
// Thread-safe.
using TransportFactory = std::function<std::shared_ptr<Transport>(const std::string& uri)>;
LAUNCH_EXPORT void register_transport(const std::string& scheme, TransportFactory factory);

// The URI the CLI and the agent use when nothing is configured:
// $LAUNCH_QUEUE_URI, else sqlite://$LAUNCH_HOME/launch.db (launch/home.hpp).
LAUNCH_EXPORT std::string default_transport_uri();

}  // namespace launch

#endif
