// Definitions other branches provide; this file goes away when they land.
#include "core/builtins.hpp"
#include "launch/builder.hpp"
#include "launch/error.hpp"
#include "launch/log.hpp"
#include "launch/runner.hpp"

#include <thread>

namespace launch {
Run::~Run() = default;
Runner::~Runner() = default;
Builder::~Builder() = default;
std::unique_ptr<Run> Runner::reattach(const QueueItem&, const QueueDef&) { return nullptr; }
RunStatus Run::wait(std::chrono::milliseconds timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  RunStatus s = poll();
  while (s.phase == RunPhase::running && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    s = poll();
  }
  return s;
}
}  // namespace launch
