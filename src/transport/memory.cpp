// memory:// — an in-process store. "memory://" alone is a private store;
// "memory://NAME" is shared by every open of that name in this process (so
// an embedding host and its agent can see one store).
#include <sys/eventfd.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <set>

#include <fmt/format.h>

#include "builtins/factories.hpp"
#include "launch/error.hpp"
#include "launch/sys/record_transport.hpp"

namespace launch {
namespace {

class MemoryTransport final : public RecordTransport {
 public:
  explicit MemoryTransport(std::string uri) : uri_(std::move(uri)) {
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) throw Error(Errc::io, "memory transport: eventfd failed");
  }
  ~MemoryTransport() override { ::close(wake_fd_); }

  std::optional<std::string> get_record(const std::string& kind,
                                        const std::string& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = records_.find({kind, key});
    if (it == records_.end()) return std::nullopt;
    return it->second;
  }
  bool insert_record(const std::string& kind, const std::string& key,
                     const std::string& value) override {
    std::lock_guard<std::mutex> lock(mu_);
    return records_.emplace(std::make_pair(kind, key), value).second;
  }
  bool replace_record(const std::string& kind, const std::string& key,
                      const std::string& expected, const std::string& value) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = records_.find({kind, key});
    if (it == records_.end() || it->second != expected) return false;
    it->second = value;
    return true;
  }
  bool delete_record(const std::string& kind, const std::string& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    return records_.erase({kind, key}) > 0;
  }
  std::vector<std::pair<std::string, std::string>> list_records(
      const std::string& kind) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::pair<std::string, std::string>> out;
    for (auto it = records_.lower_bound({kind, ""}); it != records_.end() && it->first.first == kind;
         ++it) {
      out.emplace_back(it->first.second, it->second);
    }
    return out;
  }

  std::string uri() const override { return uri_; }

  void create_queue(const QueueDef& queue) override {
    queue.validate();
    std::lock_guard<std::mutex> lock(mu_);
    if (queues_.count(queue.ref())) {
      throw Error(Errc::exists, fmt::format("queue \"{}\" already exists", queue.ref().str()));
    }
    QueueDef q = queue;
    q.created_at = now_ms();
    queues_[q.ref()] = q;
  }

  QueueDef get_queue(const QueueRef& ref) override {
    std::lock_guard<std::mutex> lock(mu_);
    return queue_locked(ref);
  }

  std::vector<QueueDef> list_queues() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<QueueDef> out;
    for (const auto& kv : queues_) out.push_back(kv.second);
    return out;
  }

  std::vector<std::string> delete_queue(const QueueRef& ref, QueueDelete mode) override {
    std::lock_guard<std::mutex> lock(mu_);
    queue_locked(ref);
    std::vector<std::string> ids;
    std::size_t pending = 0;
    for (const auto& kv : items_) {
      const QueueItem& it = kv.second;
      if (it.queue != ref) continue;
      if (!is_terminal(it.state) && it.state != ItemState::pending) {
        throw Error(Errc::state, fmt::format("queue \"{}\": item {} is {}; cancel it or let it "
                                             "end before deleting the queue",
                                             ref.str(), it.id, to_string(it.state)));
      }
      if (it.state == ItemState::pending) ++pending;
      ids.push_back(it.id);
    }
    lifecycle::check_delete_pending(ref, mode, pending);
    for (auto it = items_.begin(); it != items_.end();) {
      it = it->second.queue == ref ? items_.erase(it) : std::next(it);
    }
    pending_.erase(ref);
    queues_.erase(ref);
    return ids;
  }

  std::optional<QueueItem> claim(const std::vector<QueueRef>& queues,
                                 const std::string& agent_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    const Key* best = nullptr;
    std::set<Key>* best_set = nullptr;
    for (const auto& ref : queues) {
      auto p = pending_.find(ref);
      if (p == pending_.end() || p->second.empty()) continue;
      const Key& head = *p->second.begin();
      if (!best || head < *best) {
        best = &head;
        best_set = &p->second;
      }
    }
    if (!best) return std::nullopt;
    QueueItem& item = items_.at(best->second);
    lifecycle::claim(item, agent_id, now_ms());
    best_set->erase(best_set->begin());
    return item;
  }

  QueueItem get(const std::string& item_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    return item_locked(item_id);
  }

  std::vector<QueueItem> list(const ItemFilter& f) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<QueueItem> out;
    for (const auto& kv : items_) {
      const QueueItem& it = kv.second;
      if (f.queue && it.queue != *f.queue) continue;
      if (f.state && it.state != *f.state) continue;
      if (!f.agent_id.empty() && it.agent_id != f.agent_id) continue;
      out.push_back(it);
    }
    if (f.limit && out.size() > f.limit) out.erase(out.begin(), out.end() - f.limit);
    return out;
  }

  void upsert_agent(const AgentRecord& agent) override {
    std::lock_guard<std::mutex> lock(mu_);
    AgentRecord a = agent;
    if (a.last_seen == 0) a.last_seen = now_ms();
    agents_[a.id] = a;
  }

  std::vector<AgentRecord> list_agents() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<AgentRecord> out;
    std::int64_t now = now_ms();
    for (const auto& kv : agents_) {
      out.push_back(kv.second);
      lifecycle::judge_agent(out.back(), now);
    }
    return out;
  }

  int notify_fd() override { return wake_fd_; }

  void drain_notify() override {
    std::uint64_t n;
    while (::read(wake_fd_, &n, sizeof n) == static_cast<ssize_t>(sizeof n)) {
    }
  }

 protected:
  std::string insert_item(const QueueRef& queue, QueueItem& item) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_locked(queue);
      std::int64_t id = ++next_id_;
      item.id = std::to_string(id);
      items_[id] = item;
      pending_[queue].insert(Key{static_cast<int>(item.priority), id});
    }
    wake();
    return item.id;
  }

  QueueItem update_item(const std::string& item_id,
                        const std::function<void(QueueItem&)>& fn) override {
    bool now_pending;
    QueueItem copy;
    {
      std::lock_guard<std::mutex> lock(mu_);
      QueueItem& stored = item_locked(item_id);
      copy = stored;
      fn(copy);  // throws: nothing stored
      bool was_pending = stored.state == ItemState::pending;
      now_pending = copy.state == ItemState::pending;
      std::int64_t id = std::stoll(item_id);
      if (was_pending != now_pending || stored.priority != copy.priority) {
        auto& set = pending_[copy.queue];
        set.erase(Key{static_cast<int>(stored.priority), id});
        if (now_pending) set.insert(Key{static_cast<int>(copy.priority), id});
      }
      stored = copy;
      now_pending = now_pending && !was_pending;
    }
    if (now_pending) wake();
    return copy;
  }

  std::vector<std::string> expired_item_ids(std::int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    for (const auto& kv : items_) {
      if (lifecycle::lease_expired(kv.second, now)) out.push_back(kv.second.id);
    }
    return out;
  }

  void touch_agent(const std::string& agent_id, std::int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = agents_.find(agent_id);
    if (it != agents_.end()) it->second.last_seen = now;
  }

 private:
  using Key = std::pair<int, std::int64_t>;  // (priority, id): best first, FIFO within

  const QueueDef& queue_locked(const QueueRef& ref) {
    auto it = queues_.find(ref);
    if (it == queues_.end()) {
      throw Error(Errc::not_found, fmt::format("queue \"{}\" does not exist", ref.str()));
    }
    return it->second;
  }

  QueueItem& item_locked(const std::string& item_id) {
    std::int64_t id = 0;
    try {
      std::size_t used = 0;
      id = std::stoll(item_id, &used);
      if (used != item_id.size()) id = 0;
    } catch (const std::exception&) {
      id = 0;
    }
    auto it = items_.find(id);
    if (it == items_.end()) {
      throw Error(Errc::not_found, fmt::format("item \"{}\" does not exist", item_id));
    }
    return it->second;
  }

  void wake() {
    std::uint64_t one = 1;
    ssize_t rc = ::write(wake_fd_, &one, sizeof one);
    (void)rc;  // a full counter still wakes the reader
  }

  std::string uri_;
  int wake_fd_ = -1;
  std::mutex mu_;
  std::map<QueueRef, QueueDef> queues_;
  std::map<std::pair<std::string, std::string>, std::string> records_;  // (kind, key)
  std::map<std::int64_t, QueueItem> items_;
  std::map<QueueRef, std::set<Key>> pending_;
  std::map<std::string, AgentRecord> agents_;
  std::int64_t next_id_ = 0;
};

}  // namespace

std::shared_ptr<Transport> open_memory_transport(const std::string& uri) {
  const std::string prefix = "memory://";
  std::string name = uri.substr(prefix.size());
  if (name.empty()) return std::make_shared<MemoryTransport>(uri);
  static std::mutex mu;
  static auto* named = new std::map<std::string, std::weak_ptr<Transport>>;
  std::lock_guard<std::mutex> lock(mu);
  if (auto existing = (*named)[name].lock()) {
    // Opening a store puts the items of agents that went away back.
    existing->expire_leases();
    return existing;
  }
  auto t = std::make_shared<MemoryTransport>(uri);
  (*named)[name] = t;
  return t;
}

}  // namespace launch
