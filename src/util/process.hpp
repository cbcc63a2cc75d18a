// Internal: running a helper program to its end (git, a Docker credential
// helper, nvidia-smi). Never a shell: argv[0] is looked up on PATH. Jobs
// are not run through this: runners own their processes.
#ifndef LAUNCH_SRC_UTIL_PROCESS_HPP
#define LAUNCH_SRC_UTIL_PROCESS_HPP

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace launch {
namespace util {

enum class StderrMode {
  merge,    // into ProcessResult::out, interleaved as written
  capture,  // into ProcessResult::err
  discard,  // to /dev/null
};

struct ProcessOptions {
  std::vector<std::string> extra_env;  // "K=V", ahead of the inherited environment
  std::optional<std::string> input;    // written to stdin, then closed; none: /dev/null
  StderrMode stderr_mode = StderrMode::merge;
  std::string working_dir;             // "": this process's
  // Killed (SIGKILL) when it runs longer; status is then 128+9.
  std::optional<std::chrono::milliseconds> timeout;
  // Output past this many bytes (out and err each) is read and dropped, so a
  // chatty program cannot grow memory without bound.
  std::size_t max_output = 16u << 20;
};

struct ProcessResult {
  int status = -1;  // the exit code, or 128+signal when a signal ended it
  bool timed_out = false;
  std::string out;
  std::string err;
};

// Runs argv and waits for it. Errc::io naming argv[0] when it cannot be
// started (not found, not executable); Errc::invalid for an empty argv.
ProcessResult run_process(const std::vector<std::string>& argv,
                          const ProcessOptions& options = {});

// True while a process `pid` exists on this host (kill(pid, 0); one owned
// by another user exists too). False for pid <= 0.
bool process_exists(int pid);

}  // namespace util
}  // namespace launch

#endif
