// launch/sys — a base for transports that store items as records.
//
// Derive from RecordTransport and provide a handful of storage primitives;
// it implements the semantic operations of Transport (push, start, finish,
// cancel, heartbeat, ...) with the functions of lifecycle.hpp, so the
// semantics are shared. memory://, sqlite:// and postgres:// are built this
// way. A store may still override any operation with something faster (a
// single-statement claim, say) as long as it keeps the semantics.
#ifndef LAUNCH_SYS_RECORD_TRANSPORT_HPP
#define LAUNCH_SYS_RECORD_TRANSPORT_HPP

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "launch/export.h"
#include "launch/sys/lifecycle.hpp"
#include "launch/transport.hpp"

namespace launch {

class LAUNCH_EXPORT RecordTransport : public Transport {
 public:
  std::string push(const QueueRef& queue, const JobSpec& spec) override;
  QueueItem cancel(const std::string& item_id) override;
  QueueItem start(const std::string& item_id, const std::string& agent_id,
                  const std::string& run_id) override;
  HeartbeatReply heartbeat(const std::string& agent_id,
                           const std::vector<std::string>& item_ids) override;
  QueueItem finish(const std::string& item_id, const std::string& agent_id,
                   int exit_code) override;
  QueueItem fail(const std::string& item_id, const std::string& agent_id,
                 const ItemError& error, std::optional<int> exit_code) override;
  QueueItem confirm_stopped(const std::string& item_id, const std::string& agent_id) override;
  QueueItem requeue(const std::string& item_id, const std::string& agent_id,
                    RequeueReason why) override;
  void add_warning(const std::string& item_id, const std::string& message) override;
  int expire_leases() override;

 protected:
  // Appends a pending item built by lifecycle::make_pending, in one
  // transaction with a check that `queue` still exists (Errc::not_found).
  // Fills item.id and returns it. Must wake waiting agents (notify_fd).
  virtual std::string insert_item(const QueueRef& queue, QueueItem& item) = 0;
  // Loads the item, calls `fn` on it and stores the result, atomically with
  // respect to every other writer (of this and other processes). If `fn`
  // throws, nothing is stored and the exception propagates. Errc::not_found
  // for an unknown id. Must wake waiting agents when the item ends up pending.
  virtual QueueItem update_item(const std::string& item_id,
                                const std::function<void(QueueItem&)>& fn) = 0;
  // Ids of claimed/running/stopping items whose lease ran out before `now`.
  virtual std::vector<std::string> expired_item_ids(std::int64_t now) = 0;
  // Marks the agent as seen (heartbeat). No-op for an unregistered agent.
  virtual void touch_agent(const std::string& agent_id, std::int64_t now) = 0;
};

}  // namespace launch

#endif
