// The parts of the runner interface every runner shares: waiting on a run
// and the default (no) reattachment.
#include <poll.h>

#include <algorithm>
#include <thread>

#include "launch/runner.hpp"
#include "util/enum_names.hpp"

namespace launch {

const char* to_string(RunPhase p) {
  static const util::EnumName<RunPhase> names[] = {{RunPhase::running, "running"},
                                                   {RunPhase::finished, "finished"},
                                                   {RunPhase::failed, "failed"},
                                                   {RunPhase::stopped, "stopped"},
                                                   {RunPhase::preempted, "preempted"}};
  return util::enum_name(names, p, "unknown");
}

Run::~Run() = default;

RunStatus Run::wait(std::chrono::milliseconds timeout) {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + timeout;
  // A run may have deadlines of its own (a timeout, a kill after a grace
  // period) that only poll() acts on, so never sleep long between polls.
  const auto slice = std::chrono::milliseconds(wait_fd() >= 0 ? 100 : 10);
  for (;;) {
    RunStatus st = poll();
    if (st.phase != RunPhase::running) return st;
    auto now = clock::now();
    if (now >= deadline) return st;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    auto nap = std::max(std::chrono::milliseconds(1), std::min(left, slice));
    int fd = wait_fd();
    if (fd >= 0) {
      struct pollfd p = {fd, POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(nap.count()));
    } else {
      std::this_thread::sleep_for(nap);
    }
  }
}

Runner::~Runner() = default;

std::unique_ptr<Run> Runner::reattach(const QueueItem&, const QueueDef&) { return nullptr; }

}  // namespace launch
