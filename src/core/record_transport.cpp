// Transport's semantic operations, written once over a store's primitives.
#include "launch/sys/record_transport.hpp"

#include "launch/error.hpp"

namespace launch {

std::string RecordTransport::push(const QueueRef& queue, const JobSpec& spec) {
  QueueItem item = lifecycle::make_pending(get_queue(queue), spec, now_ms());
  return insert_item(queue, item);
}

QueueItem RecordTransport::cancel(const std::string& item_id) {
  return update_item(item_id, [](QueueItem& it) { lifecycle::cancel(it, now_ms()); });
}

QueueItem RecordTransport::start(const std::string& item_id, const std::string& agent_id,
                                 const std::string& run_id) {
  return update_item(item_id,
                     [&](QueueItem& it) { lifecycle::start(it, agent_id, run_id, now_ms()); });
}

HeartbeatReply RecordTransport::heartbeat(const std::string& agent_id,
                                          const std::vector<std::string>& item_ids) {
  HeartbeatReply reply;
  std::int64_t now = now_ms();
  touch_agent(agent_id, now);
  for (const auto& id : item_ids) {
    bool held = false;
    QueueItem it;
    try {
      it = update_item(id, [&](QueueItem& item) { held = lifecycle::renew(item, agent_id, now); });
    } catch (const Error& e) {
      if (e.code() != Errc::not_found) throw;
    }
    if (!held) {
      reply.lost.push_back(id);
    } else if (it.state == ItemState::stopping) {
      reply.cancel_requested.push_back(id);
    }
  }
  return reply;
}

QueueItem RecordTransport::finish(const std::string& item_id, const std::string& agent_id,
                                  int exit_code) {
  return update_item(item_id,
                     [&](QueueItem& it) { lifecycle::finish(it, agent_id, exit_code, now_ms()); });
}

QueueItem RecordTransport::fail(const std::string& item_id, const std::string& agent_id,
                                const ItemError& error, std::optional<int> exit_code) {
  return update_item(item_id, [&](QueueItem& it) {
    lifecycle::fail(it, agent_id, error, exit_code, now_ms());
  });
}

QueueItem RecordTransport::confirm_stopped(const std::string& item_id,
                                           const std::string& agent_id) {
  return update_item(item_id,
                     [&](QueueItem& it) { lifecycle::confirm_stopped(it, agent_id, now_ms()); });
}

QueueItem RecordTransport::requeue(const std::string& item_id, const std::string& agent_id,
                                   RequeueReason why) {
  return update_item(item_id,
                     [&](QueueItem& it) { lifecycle::requeue(it, agent_id, why, now_ms()); });
}

void RecordTransport::add_warning(const std::string& item_id, const std::string& message) {
  update_item(item_id, [&](QueueItem& it) {
    it.warnings.push_back(message);
    it.updated_at = now_ms();
  });
}

int RecordTransport::expire_leases() {
  std::int64_t now = now_ms();
  int moved = 0;
  for (const auto& id : expired_item_ids(now)) {
    bool changed = false;
    try {
      update_item(id, [&](QueueItem& it) { changed = lifecycle::expire(it, now); });
    } catch (const Error& e) {
      if (e.code() != Errc::not_found) throw;  // deleted meanwhile
    }
    moved += changed ? 1 : 0;
  }
  return moved;
}

}  // namespace launch
