#include "agent/gpu_pool.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>

extern char** environ;

namespace launch {

int GpuPool::free_count() const {
  int n = 0;
  for (bool u : used_) n += u ? 0 : 1;
  return n;
}

std::optional<std::vector<int>> GpuPool::take(int n) {
  if (n > free_count()) return std::nullopt;
  std::vector<int> out;
  for (std::size_t i = 0; i < used_.size() && static_cast<int>(out.size()) < n; ++i) {
    if (!used_[i]) {
      used_[i] = true;
      out.push_back(static_cast<int>(i));
    }
  }
  return out;
}

void GpuPool::give_back(const std::vector<int>& devices) {
  for (int d : devices) {
    if (d >= 0 && static_cast<std::size_t>(d) < used_.size()) used_[static_cast<std::size_t>(d)] = false;
  }
}

int detect_gpus() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return 0;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  char arg0[] = "nvidia-smi";
  char arg1[] = "-L";
  char* argv[] = {arg0, arg1, nullptr};
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, "nvidia-smi", &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    return 0;
  }
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    struct pollfd p = {fds[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[4096];
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  ::kill(pid, SIGKILL);  // harmless when it has already exited
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  int count = 0;
  std::size_t pos = 0;
  while (pos < out.size()) {
    std::size_t eol = out.find('\n', pos);
    if (eol == std::string::npos) eol = out.size();
    if (out.compare(pos, 4, "GPU ") == 0) ++count;
    pos = eol + 1;
  }
  return count;
}

}  // namespace launch
