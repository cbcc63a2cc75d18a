#include "util/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "launch/error.hpp"

extern char** environ;

namespace launch {
namespace util {
namespace {

// fd[0] reads, fd[1] writes. The stdin one is a socket pair, so that a
// write after the program stopped reading fails with EPIPE (MSG_NOSIGNAL)
// instead of raising SIGPIPE in the embedding process.
struct Pipe {
  int fd[2] = {-1, -1};
  explicit Pipe(bool socket = false) {
    int rc = socket ? ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd)
                    : ::pipe2(fd, O_CLOEXEC);
    if (rc != 0) throw Error(Errc::io, fmt::format("pipe: {}", std::strerror(errno)));
  }
  ~Pipe() {
    close_end(0);
    close_end(1);
  }
  void close_end(int i) {
    if (fd[i] >= 0) ::close(fd[i]);
    fd[i] = -1;
  }
};

void append_capped(std::string& to, const char* data, std::size_t n, std::size_t cap) {
  if (to.size() >= cap) return;
  to.append(data, std::min(n, cap - to.size()));
}

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options) {
  if (argv.empty()) throw Error(Errc::invalid, "run_process: empty argv");
  std::vector<char*> env;
  for (const auto& e : options.extra_env) env.push_back(const_cast<char*>(e.c_str()));
  for (char** e = environ; *e != nullptr; ++e) env.push_back(*e);
  env.push_back(nullptr);
  std::vector<char*> args;
  for (const auto& s : argv) args.push_back(const_cast<char*>(s.c_str()));
  args.push_back(nullptr);

  Pipe out;
  std::optional<Pipe> err, in;
  if (options.stderr_mode == StderrMode::capture) err.emplace();
  if (options.input) in.emplace(true);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (in) {
    posix_spawn_file_actions_adddup2(&actions, in->fd[0], 0);
  } else {
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  }
  posix_spawn_file_actions_adddup2(&actions, out.fd[1], 1);
  switch (options.stderr_mode) {
    case StderrMode::merge: posix_spawn_file_actions_adddup2(&actions, out.fd[1], 2); break;
    case StderrMode::capture: posix_spawn_file_actions_adddup2(&actions, err->fd[1], 2); break;
    case StderrMode::discard:
      posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
      break;
  }
  if (!options.working_dir.empty()) {
    posix_spawn_file_actions_addchdir_np(&actions, options.working_dir.c_str());
  }
  // The child starts with default signal handling and nothing blocked,
  // whatever the embedding program set for itself.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigfillset(&defaults);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, args[0], &actions, &attr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  out.close_end(1);
  if (err) err->close_end(1);
  if (in) in->close_end(0);
  if (rc != 0) {
    throw Error(Errc::io, fmt::format("cannot run \"{}\": {}", argv[0], std::strerror(rc)));
  }

  ProcessResult result;
  std::size_t written = 0;
  if (in && options.input->empty()) in->close_end(1);
  if (in) ::fcntl(in->fd[1], F_SETFL, ::fcntl(in->fd[1], F_GETFL) | O_NONBLOCK);
  auto deadline = options.timeout ? std::chrono::steady_clock::now() + *options.timeout
                                  : std::chrono::steady_clock::time_point::max();
  for (;;) {
    struct pollfd p[3];
    int n = 0;
    int out_i = -1, err_i = -1, in_i = -1;
    if (out.fd[0] >= 0) p[out_i = n++] = {out.fd[0], POLLIN, 0};
    if (err && err->fd[0] >= 0) p[err_i = n++] = {err->fd[0], POLLIN, 0};
    if (in && in->fd[1] >= 0) p[in_i = n++] = {in->fd[1], POLLOUT, 0};
    if (n == 0) break;
    int wait_ms = -1;
    if (options.timeout) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        ::kill(pid, SIGKILL);
        result.timed_out = true;
        break;
      }
      wait_ms = static_cast<int>(left.count());
    }
    int ready = ::poll(p, static_cast<nfds_t>(n), wait_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) break;
    char buf[4096];
    auto drain = [&](int i, Pipe& pipe, std::string& to) {
      if (i < 0 || p[i].revents == 0) return;
      ssize_t got = ::read(pipe.fd[0], buf, sizeof buf);
      if (got > 0) {
        append_capped(to, buf, static_cast<std::size_t>(got), options.max_output);
      } else if (got == 0 || errno != EINTR) {
        pipe.close_end(0);
      }
    };
    drain(out_i, out, result.out);
    if (err) drain(err_i, *err, result.err);
    if (in_i >= 0 && p[in_i].revents != 0) {
      const std::string& data = *options.input;
      ssize_t put = ::send(in->fd[1], data.data() + written, data.size() - written,
                           MSG_NOSIGNAL);
      if (put > 0) written += static_cast<std::size_t>(put);
      // EPIPE: the program stopped reading, which is its business.
      if (written == data.size() || (put < 0 && errno != EINTR && errno != EAGAIN)) {
        in->close_end(1);
      }
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) {
    result.status = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.status = 128 + WTERMSIG(status);
  }
  return result;
}

bool process_exists(int pid) {
  if (pid <= 0) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

}  // namespace util
}  // namespace launch
