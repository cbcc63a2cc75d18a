#include "agent/runner_calls.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "launch/error.hpp"

namespace launch {

const char* to_string(RunnerCall::Kind kind) {
  switch (kind) {
    case RunnerCall::Kind::submit: return "submit";
    case RunnerCall::Kind::reattach: return "reattach";
    case RunnerCall::Kind::poll: return "poll";
    case RunnerCall::Kind::cancel: return "cancel";
  }
  return "?";
}

void perform(RunnerCall& call) {
  try {
    switch (call.kind) {
      case RunnerCall::Kind::submit:
        call.run = call.runner->submit(call.job);
        if (!call.run) call.error = "the runner returned no run";
        break;
      case RunnerCall::Kind::reattach:
        call.run = call.runner->reattach(call.item, call.queue);
        break;
      case RunnerCall::Kind::poll:
        call.status = call.run->poll();
        break;
      case RunnerCall::Kind::cancel:
        call.run->cancel(call.grace);
        break;
    }
  } catch (const std::exception& e) {
    call.error = e.what();
  } catch (...) {
    call.error = fmt::format("{} threw something that is not a std::exception",
                             to_string(call.kind));
  }
}

RunnerCalls::RunnerCalls(std::size_t max_threads)
    : max_threads_(max_threads > 0 ? max_threads : 1) {
  event_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (event_fd_ < 0) {
    throw Error(Errc::io, fmt::format("agent: eventfd: {}", std::strerror(errno)));
  }
}

RunnerCalls::~RunnerCalls() {
  shutdown();
  ::close(event_fd_);
}

void RunnerCalls::post(RunnerCall call) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return;
  todo_.push_back(std::move(call));
  ++outstanding_;
  // A new worker only when none is free: an agent whose runners never
  // block, or block one at a time, keeps one thread or none.
  if (idle_ < todo_.size() && threads_.size() < max_threads_) {
    threads_.emplace_back([this] { work(); });
  } else {
    cv_.notify_one();
  }
}

std::vector<RunnerCall> RunnerCalls::take() {
  std::uint64_t n;
  while (::read(event_fd_, &n, sizeof n) > 0) {
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<RunnerCall> out;
  out.swap(done_);
  outstanding_ -= out.size();
  return out;
}

std::size_t RunnerCalls::outstanding() const {
  std::lock_guard<std::mutex> lock(mu_);
  return outstanding_;
}

void RunnerCalls::shutdown() {
  std::vector<std::thread> threads;
  std::deque<RunnerCall> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    dropped.swap(todo_);
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (auto& t : threads) t.join();
  std::vector<RunnerCall> finished;
  {
    std::lock_guard<std::mutex> lock(mu_);
    finished.swap(done_);
    outstanding_ = 0;
  }
  // `dropped` and `finished` go here, outside the lock: dropping a run may
  // take a moment (it stops what it started).
}

void RunnerCalls::work() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    ++idle_;
    cv_.wait(lock, [this] { return stopping_ || !todo_.empty(); });
    --idle_;
    if (stopping_) return;
    RunnerCall call = std::move(todo_.front());
    todo_.pop_front();
    lock.unlock();
    perform(call);
    lock.lock();
    done_.push_back(std::move(call));
    std::uint64_t one = 1;
    (void)!::write(event_fd_, &one, sizeof one);
  }
}

}  // namespace launch
