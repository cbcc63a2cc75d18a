// Internal: local jobs under a supervisor of their own, so that a job
// outlives the death of the agent that started it and its true ending is
// still known.
//
// The agent forks a supervisor (a new session, holding none of the agent's
// descriptors), which starts the job in a process group of its own, waits
// for it, and writes the job's wait status into the run directory before it
// exits. While it lives it holds a lock on a file there, so "is this run
// still alive?" is a lock test, safe against reused pids. The run directory
// then holds:
//
//   supervisor          "<supervisor pid> <job pid> <attempt>", written
//                       before the job is reported started
//   supervisor.lock     locked by the supervisor for as long as it lives
//   exit                the job's wait status, once it has ended
//   cancelled           present when the agent stopped the run on purpose
//
// The supervisor makes only async-signal-safe calls between fork and
// _exit: everything it needs is prepared before the fork.
#ifndef LAUNCH_SRC_RUNNER_SUPERVISOR_HPP
#define LAUNCH_SRC_RUNNER_SUPERVISOR_HPP

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace launch {

struct SupervisedJob {
  std::vector<std::string> argv;  // argv[0] looked up on the job's PATH
  std::map<std::string, std::string> env;
  std::string working_dir;  // "" : the agent's
  std::string run_dir;      // stdout.log and stderr.log go here too
  int attempt = 0;
};

// A supervised run, started by this process or found again in its run
// directory.
class Supervised {
 public:
  // Forks the supervisor and returns once the job has been exec'd.
  // Errc::invalid when the program cannot be run (not found, not
  // executable), Errc::io for anything else (no room for its log files).
  static std::unique_ptr<Supervised> start(const SupervisedJob& job);
  // The run recorded in `run_dir`: one whose supervisor still lives, or one
  // that ended while nobody followed it — started for `attempt` (to
  // reattach), or with `earlier_attempts` for an earlier attempt and not
  // stopped on purpose (mark_cancelled; for a new claim of its item).
  // attempt -1: only a live one. nullptr when there is neither.
  static std::unique_ptr<Supervised> find(const std::string& run_dir, int attempt,
                                          bool earlier_attempts = false);

  ~Supervised();
  Supervised(const Supervised&) = delete;
  Supervised& operator=(const Supervised&) = delete;

  pid_t job_pid() const { return job_pid_; }
  // Readable once the supervisor has exited; -1 once that was seen.
  int wait_fd() const { return ended_ ? -1 : pidfd_; }
  // Whether the supervisor has exited (never blocks). Then status() tells
  // how the job ended: its wait status, or nullopt when the supervisor was
  // killed before it could record one.
  bool ended();
  // Blocks until the supervisor has exited.
  void wait();
  std::optional<int> status() const { return status_; }
  // Signals the job's process group; whether any process was left in it.
  bool signal_group(int sig) const;
  // Records that the run is being stopped on purpose, so its ending is not
  // taken as the outcome of a later attempt.
  void mark_cancelled() const;

 private:
  Supervised() = default;
  // Reads the recorded ending; else the one the supervisor exited with.
  void collect(std::optional<int> supervisor_status = std::nullopt);
  std::string run_dir_;
  pid_t supervisor_pid_ = -1;
  pid_t job_pid_ = -1;
  int pidfd_ = -1;
  bool child_ = false;  // ours to reap
  bool ended_ = false;
  std::optional<int> status_;
};

}  // namespace launch

#endif
