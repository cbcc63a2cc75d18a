// Shared helpers for the agent suite: temporary directories, small files,
// and a loop that steps an agent until something holds.
#ifndef LAUNCH_TESTS_AGENT_HELPERS_HPP
#define LAUNCH_TESTS_AGENT_HELPERS_HPP

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "launch/runner.hpp"
#include "support/temp_dir.hpp"

namespace launch_test {

// A run that has finished, exit code 0, by the time it is first polled.
struct FinishedRun : launch::Run {
  std::string id() const override { return "finished"; }
  launch::RunStatus poll() override {
    launch::RunStatus st;
    st.phase = launch::RunPhase::finished;
    st.exit_code = 0;
    return st;
  }
  void cancel(std::chrono::milliseconds) override {}
};

// A runner that records every job it is handed; its runs end at once.
// Tests derive from it to say what else the runner wants (an image, GPUs).
struct RecordingRunner : launch::Runner {
  std::vector<launch::ResolvedJob>* seen;
  explicit RecordingRunner(std::vector<launch::ResolvedJob>* s) : seen(s) {}
  std::unique_ptr<launch::Run> submit(const launch::ResolvedJob& job) override {
    seen->push_back(job);
    return std::make_unique<FinishedRun>();
  }
};

// A RecordingRunner whose jobs need an image (the agent builds one first).
struct ImagedRunner : RecordingRunner {
  using RecordingRunner::RecordingRunner;
  bool needs_image() const override { return true; }
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

inline bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// Calls `step` until `done` holds; fails the test after `limit`.
inline void until(const std::function<bool()>& done, const std::function<void()>& step,
                  std::chrono::seconds limit = std::chrono::seconds(30)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "timed out waiting");
    step();
  }
}

inline std::string binary_dir() { return LAUNCH_BINARY_DIR; }
inline std::string agent_binary() { return binary_dir() + "/examples/launch-agent/launch-agent"; }

}  // namespace launch_test

#endif
