// A Transport that forwards every call to another one, for tests that
// count calls or make some of them fail: derive and override those.
#ifndef LAUNCH_TESTS_SUPPORT_FORWARDING_TRANSPORT_HPP
#define LAUNCH_TESTS_SUPPORT_FORWARDING_TRANSPORT_HPP

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "launch/transport.hpp"

namespace launch_test {

class ForwardingTransport : public launch::Transport {
 public:
  explicit ForwardingTransport(std::shared_ptr<launch::Transport> t) : t_(std::move(t)) {}

  std::string uri() const override { return t_->uri(); }
  void create_queue(const launch::QueueDef& q) override { t_->create_queue(q); }
  launch::QueueDef get_queue(const launch::QueueRef& r) override { return t_->get_queue(r); }
  std::vector<launch::QueueDef> list_queues() override { return t_->list_queues(); }
  std::vector<std::string> delete_queue(const launch::QueueRef& r,
                                        launch::QueueDelete mode) override {
    return t_->delete_queue(r, mode);
  }
  std::string push(const launch::QueueRef& q, const launch::JobSpec& s) override {
    return t_->push(q, s);
  }
  launch::QueueItem cancel(const std::string& i) override { return t_->cancel(i); }
  launch::QueueItem get(const std::string& i) override { return t_->get(i); }
  std::vector<launch::QueueItem> list(const launch::ItemFilter& f) override {
    return t_->list(f);
  }
  std::optional<launch::QueueItem> claim(const std::vector<launch::QueueRef>& q,
                                         const std::string& a) override {
    return t_->claim(q, a);
  }
  launch::QueueItem start(const std::string& i, const std::string& a,
                          const std::string& r) override {
    return t_->start(i, a, r);
  }
  launch::HeartbeatReply heartbeat(const std::string& a,
                                   const std::vector<std::string>& i) override {
    return t_->heartbeat(a, i);
  }
  launch::QueueItem finish(const std::string& i, const std::string& a, int code) override {
    return t_->finish(i, a, code);
  }
  launch::FinishAndClaim finish_and_claim(const std::string& i, const std::string& a, int code,
                                          const std::vector<launch::QueueRef>& q) override {
    return t_->finish_and_claim(i, a, code, q);
  }
  launch::QueueItem fail(const std::string& i, const std::string& a,
                         const launch::ItemError& e, std::optional<int> code) override {
    return t_->fail(i, a, e, code);
  }
  launch::QueueItem confirm_stopped(const std::string& i, const std::string& a) override {
    return t_->confirm_stopped(i, a);
  }
  launch::QueueItem requeue(const std::string& i, const std::string& a,
                            launch::RequeueReason w) override {
    return t_->requeue(i, a, w);
  }
  void add_warning(const std::string& i, const std::string& m) override { t_->add_warning(i, m); }
  int expire_leases() override { return t_->expire_leases(); }
  void upsert_agent(const launch::AgentRecord& a) override { t_->upsert_agent(a); }
  std::vector<launch::AgentRecord> list_agents() override { return t_->list_agents(); }
  int notify_fd() override { return t_->notify_fd(); }
  void drain_notify() override { t_->drain_notify(); }

 protected:
  std::shared_ptr<launch::Transport> t_;
};

}  // namespace launch_test

#endif
