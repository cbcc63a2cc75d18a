// Internal: the agent's calls into runners (submit, reattach, and a run's
// poll and cancel), made on a few worker threads so that a runner talking
// to a slow remote API never holds up the agent's loop: its heartbeats,
// cancels and the other items' transitions.
//
// The loop posts a call and carries on; a worker makes it and queues the
// result; an eventfd (fd()) wakes the loop, which takes the results and acts
// on them on its own thread. Workers touch only the runner and the run the
// call carries, never the transport or the agent's state. The run itself
// travels with the call, so one run is used by one thread at a time.
#ifndef LAUNCH_SRC_AGENT_RUNNER_CALLS_HPP
#define LAUNCH_SRC_AGENT_RUNNER_CALLS_HPP

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "launch/runner.hpp"

namespace launch {

struct RunnerCall {
  enum class Kind { submit, reattach, poll, cancel };
  Kind kind = Kind::poll;
  std::string item_id;
  std::uint64_t serial = 0;  // which claim of the item the call is for
  Runner* runner = nullptr;  // submit, reattach
  ResolvedJob job;           // submit
  QueueItem item;            // reattach
  QueueDef queue;            // reattach
  std::chrono::milliseconds grace{0};  // cancel
  // The run the call is made on (poll, cancel), or the one it returned
  // (submit, reattach; null when reattach found none).
  std::unique_ptr<Run> run;
  RunStatus status;                  // poll
  std::optional<std::string> error;  // what the call threw
};

const char* to_string(RunnerCall::Kind kind);

// Makes the call on the calling thread; exceptions end up in `error`.
void perform(RunnerCall& call);

class RunnerCalls {
 public:
  // At most `max_threads` workers, started as calls need them.
  explicit RunnerCalls(std::size_t max_threads);
  ~RunnerCalls();  // shutdown()
  RunnerCalls(const RunnerCalls&) = delete;
  RunnerCalls& operator=(const RunnerCalls&) = delete;

  // Queues the call for a worker.
  void post(RunnerCall call);
  // Readable while finished calls wait to be taken.
  int fd() const { return event_fd_; }
  // The finished calls, in the order they finished.
  std::vector<RunnerCall> take();
  // Calls posted and not yet taken.
  std::size_t outstanding() const;
  // Drops calls not started yet, waits for those in progress, joins the
  // workers. Calls finished and not taken are dropped (their runs with them).
  void shutdown();

 private:
  void work();

  std::size_t max_threads_;
  int event_fd_ = -1;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<RunnerCall> todo_;
  std::vector<RunnerCall> done_;
  std::vector<std::thread> threads_;
  std::size_t idle_ = 0;
  std::size_t outstanding_ = 0;
  bool stopping_ = false;
};

}  // namespace launch

#endif
