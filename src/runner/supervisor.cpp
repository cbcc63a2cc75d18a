#include "runner/supervisor.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

#include "launch/error.hpp"
#include "util/fs.hpp"

namespace launch {

namespace {

// What the supervisor tells the agent once the job was exec'd (err 0) or
// could not be: where it failed and errno.
enum Stage : std::int32_t { kStarted = 0, kLogs = 1, kWorkingDir = 2, kExec = 3 };
struct StartReport {
  std::int32_t job_pid;
  std::int32_t stage;
  std::int32_t err;
};

constexpr int kReportFd = 3;
constexpr int kLockFd = 4;

// Writes all of `n` bytes; async-signal-safe.
bool write_all(int fd, const void* data, std::size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// Decimal text of `v` into `out` (at least 12 bytes); its length.
// Async-signal-safe.
std::size_t decimal(long v, char* out) {
  char tmp[24];
  std::size_t n = 0;
  bool neg = v < 0;
  unsigned long u = neg ? 0ul - static_cast<unsigned long>(v) : static_cast<unsigned long>(v);
  do {
    tmp[n++] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u > 0);
  std::size_t len = 0;
  if (neg) out[len++] = '-';
  while (n > 0) out[len++] = tmp[--n];
  return len;
}

// Replaces `path` with `text` through `tmp`; async-signal-safe.
void write_atomically(const char* tmp, const char* path, const char* text, std::size_t n) {
  int fd = ::open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  bool ok = write_all(fd, text, n) && ::fsync(fd) == 0;
  ::close(fd);
  if (ok) ::rename(tmp, path);
}

// Everything the supervisor and the job use, made before the fork.
struct Prepared {
  std::string program;
  std::vector<std::string> args, env;
  std::vector<char*> argv, envp;
  std::string out, err, lock, record, record_tmp, exit, exit_tmp, working_dir;
  int attempt = 0;
};

// The job's side of the fork: its own group, its logs, exec.
[[noreturn]] void become_job(const Prepared& p, int exec_fd) {
  ::setpgid(0, 0);
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  ::sigaction(SIGPIPE, &dfl, nullptr);
  auto fail = [&](std::int32_t stage) {
    std::int32_t msg[2] = {stage, errno};
    write_all(exec_fd, msg, sizeof msg);
    ::_exit(127);
  };
  int in = ::open("/dev/null", O_RDONLY);
  if (in < 0 || ::dup2(in, 0) < 0) fail(kLogs);
  int out = ::open(p.out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (out < 0 || ::dup2(out, 1) < 0) fail(kLogs);
  int err = ::open(p.err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (err < 0 || ::dup2(err, 2) < 0) fail(kLogs);
  for (int fd : {in, out, err}) {
    if (fd > 2) ::close(fd);
  }
  if (!p.working_dir.empty() && ::chdir(p.working_dir.c_str()) != 0) fail(kWorkingDir);
  ::execve(p.program.c_str(), p.argv.data(), p.envp.data());
  fail(kExec);
  ::_exit(127);
}

// The supervisor's side of the fork. `report_fd` is the agent's pipe,
// `lock_fd` the run directory's lock, taken by the agent before the fork
// and held from then on by this process alone.
[[noreturn]] void become_supervisor(const Prepared& p, int report_fd, int lock_fd) {
  // Out of the agent's session (a terminal's ^C, a kill of its group) and
  // with none of its descriptors: its lock file, its store, its sockets.
  ::setsid();
  ::prctl(PR_SET_NAME, "launch-supervise", 0, 0, 0);
  // Into place without clobbering each other: both may sit anywhere.
  int report_copy = ::fcntl(report_fd, F_DUPFD_CLOEXEC, kLockFd + 1);
  int lock_copy = ::fcntl(lock_fd, F_DUPFD_CLOEXEC, kLockFd + 1);
  if (report_copy < 0 || lock_copy < 0 || ::dup3(report_copy, kReportFd, O_CLOEXEC) < 0 ||
      ::dup3(lock_copy, kLockFd, O_CLOEXEC) < 0) {
    ::_exit(126);
  }
  ::syscall(SYS_close_range, kLockFd + 1, ~0u, 0);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
  }
  // The agent may be gone when it is told the job started: that must not
  // end the supervisor too.
  struct sigaction ign = dfl;
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ign, nullptr);
  StartReport report{-1, kStarted, 0};
  auto refuse = [&](std::int32_t stage, int err) {
    report.stage = stage;
    report.err = err;
    write_all(kReportFd, &report, sizeof report);
    ::_exit(126);
  };
  int exec_pipe[2];
  if (::pipe2(exec_pipe, O_CLOEXEC) != 0) refuse(kExec, errno);
  pid_t job = ::fork();
  if (job < 0) refuse(kExec, errno);
  if (job == 0) {
    ::close(exec_pipe[0]);
    ::close(kReportFd);
    ::close(kLockFd);
    become_job(p, exec_pipe[1]);
  }
  ::setpgid(job, job);
  ::close(exec_pipe[1]);
  std::int32_t failed[2] = {0, 0};
  ssize_t n;
  do {
    n = ::read(exec_pipe[0], failed, sizeof failed);
  } while (n < 0 && errno == EINTR);
  ::close(exec_pipe[0]);
  report.job_pid = job;
  if (n == static_cast<ssize_t>(sizeof failed)) {
    int status;
    while (::waitpid(job, &status, 0) < 0 && errno == EINTR) {
    }
    refuse(failed[0], failed[1]);
  }
  char text[64];
  std::size_t len = decimal(::getpid(), text);
  text[len++] = ' ';
  len += decimal(job, text + len);
  text[len++] = ' ';
  len += decimal(p.attempt, text + len);
  text[len++] = '\n';
  write_atomically(p.record_tmp.c_str(), p.record.c_str(), text, len);
  write_all(kReportFd, &report, sizeof report);
  ::close(kReportFd);
  int status = 0;
  while (::waitpid(job, &status, 0) < 0) {
    if (errno != EINTR) ::_exit(125);
  }
  len = decimal(status, text);
  text[len++] = '\n';
  write_atomically(p.exit_tmp.c_str(), p.exit.c_str(), text, len);
  // The agent that started it reads the same ending from this process's
  // own, should the file not have been written (its disk is full): it
  // ends as the job did.
  if (WIFSIGNALED(status)) {
    struct rlimit no_core = {0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
    ::kill(::getpid(), WTERMSIG(status));
  }
  ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 125);
}

std::string find_program(const std::string& name, const std::map<std::string, std::string>& env) {
  if (name.find('/') != std::string::npos) return name;
  auto it = env.find("PATH");
  std::string path = it != env.end() ? it->second : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  for (;;) {
    std::size_t colon = path.find(':', start);
    std::string dir = path.substr(start, colon == std::string::npos ? colon : colon - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    struct stat st;
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  throw Error(Errc::invalid, fmt::format("local-process: cannot start \"{}\": {}", name,
                                         std::strerror(ENOENT)));
}

int open_pidfd(pid_t pid) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd >= 0) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  return fd;
}

std::optional<long> read_number(const std::string& path, std::vector<long>* more = nullptr) {
  std::optional<std::string> text;
  try {
    text = util::read_file(path);
  } catch (const Error&) {
    return std::nullopt;
  }
  if (!text || text->empty()) return std::nullopt;
  const char* p = text->c_str();
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(p, &end, 10);
  if (end == p || errno != 0) return std::nullopt;
  while (more && *end == ' ') {
    p = end + 1;
    long w = std::strtol(p, &end, 10);
    if (end == p) return std::nullopt;
    more->push_back(w);
  }
  return v;
}

}  // namespace

std::unique_ptr<Supervised> Supervised::start(const SupervisedJob& job) {
  if (job.argv.empty()) throw Error(Errc::invalid, "local-process: nothing to run");
  Prepared p;
  p.program = find_program(job.argv[0], job.env);
  p.args = job.argv;
  for (auto& a : p.args) p.argv.push_back(&a[0]);
  p.argv.push_back(nullptr);
  for (const auto& kv : job.env) p.env.push_back(kv.first + "=" + kv.second);
  for (auto& e : p.env) p.envp.push_back(&e[0]);
  p.envp.push_back(nullptr);
  p.out = job.run_dir + "/stdout.log";
  p.err = job.run_dir + "/stderr.log";
  p.lock = job.run_dir + "/supervisor.lock";
  p.record = job.run_dir + "/supervisor";
  p.record_tmp = p.record + ".new";
  p.exit = job.run_dir + "/exit";
  p.exit_tmp = p.exit + ".new";
  p.working_dir = job.working_dir;
  p.attempt = job.attempt;
  // What an earlier run of this item left is not this run's.
  ::unlink(p.exit.c_str());
  ::unlink(p.record.c_str());
  ::unlink((job.run_dir + "/cancelled").c_str());

  // The run is alive from the moment this lock is taken: taken here and
  // handed to the supervisor by the fork, so that an agent killed at any
  // point after it leaves either no run or a run that holds it.
  int lock = ::open(p.lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock < 0) {
    throw Error(Errc::io, fmt::format("local-process: cannot create {}: {}", p.lock,
                                      std::strerror(errno)));
  }
  // Another agent may be testing the lock (a shared lock for a moment); one
  // that stays held is a live run, which the caller has looked for.
  for (int tries = 0; ::flock(lock, LOCK_EX | LOCK_NB) != 0; ++tries) {
    if (errno != EWOULDBLOCK || tries == 100) {
      ::close(lock);
      throw Error(Errc::state, fmt::format("local-process: a run of this item is still "
                                           "alive in {}",
                                           job.run_dir));
    }
    ::usleep(1000);
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    int e = errno;
    ::close(lock);
    throw Error(Errc::io, fmt::format("local-process: pipe: {}", std::strerror(e)));
  }
  pid_t sup = ::fork();
  if (sup < 0) {
    int e = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    ::close(lock);
    throw Error(Errc::io, fmt::format("local-process: fork: {}", std::strerror(e)));
  }
  if (sup == 0) {
    ::close(fds[0]);
    become_supervisor(p, fds[1], lock);
  }
  // The lock stays held through the supervisor's copy of the descriptor.
  ::close(lock);
  ::close(fds[1]);
  StartReport report{-1, kStarted, 0};
  std::size_t got = 0;
  while (got < sizeof report) {
    ssize_t n = ::read(fds[0], reinterpret_cast<char*>(&report) + got, sizeof report - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fds[0]);
  auto run = std::unique_ptr<Supervised>(new Supervised());
  run->run_dir_ = job.run_dir;
  run->supervisor_pid_ = sup;
  run->child_ = true;
  if (got != sizeof report || report.stage != kStarted) {
    int status;
    while (::waitpid(sup, &status, 0) < 0 && errno == EINTR) {
    }
    run->ended_ = true;
    if (got != sizeof report) {
      throw Error(Errc::io, "local-process: the run's supervisor died before the job started");
    }
    int e = report.err;
    switch (report.stage) {
      case kExec:
        throw Error(e == ENOENT || e == EACCES || e == ENOEXEC ? Errc::invalid : Errc::io,
                    fmt::format("local-process: cannot start \"{}\": {}", job.argv[0],
                                std::strerror(e)));
      case kWorkingDir:
        throw Error(Errc::invalid, fmt::format("local-process config: working_dir \"{}\": {}",
                                               job.working_dir, std::strerror(e)));
      default:
        throw Error(Errc::io, fmt::format("local-process: cannot create its log files in {}: {}",
                                          job.run_dir, std::strerror(e)));
    }
  }
  run->job_pid_ = report.job_pid;
  run->pidfd_ = open_pidfd(sup);
  return run;
}

std::unique_ptr<Supervised> Supervised::find(const std::string& run_dir, int attempt,
                                             bool earlier_attempts) {
  std::string lock = run_dir + "/supervisor.lock";
  int fd = ::open(lock.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return nullptr;
  bool alive = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  if (!alive) ::flock(fd, LOCK_UN);
  ::close(fd);
  // A live supervisor writes its record right after the job's exec: an
  // agent that died in between left no record yet.
  std::vector<long> rest;
  long sup = -1;
  for (int tries = 0; tries < (alive ? 200 : 1); ++tries) {
    rest.clear();
    auto found = read_number(run_dir + "/supervisor", &rest);
    if (found && rest.size() == 2) {
      sup = *found;
      break;
    }
    if (alive) ::usleep(10000);
  }
  if (sup < 0) return nullptr;
  auto run = std::unique_ptr<Supervised>(new Supervised());
  run->run_dir_ = run_dir;
  run->supervisor_pid_ = static_cast<pid_t>(sup);
  run->job_pid_ = static_cast<pid_t>(rest[0]);
  long recorded_attempt = rest[1];
  if (alive) {
    // The lock says the supervisor lives; its pidfd says when it ends.
    run->pidfd_ = open_pidfd(run->supervisor_pid_);
    if (run->pidfd_ >= 0) return run;
  }
  // Ended while no agent followed it. For a new claim of its item (it came
  // back after a lease ran out) its ending stands, unless it was stopped
  // on purpose (released by a stopping agent): then the item runs again.
  if (attempt < 0) return nullptr;
  if (earlier_attempts) {
    if (recorded_attempt >= attempt) return nullptr;
    if (::access((run_dir + "/cancelled").c_str(), F_OK) == 0) return nullptr;
  } else if (recorded_attempt != attempt) {
    return nullptr;
  }
  auto status = read_number(run_dir + "/exit");
  if (!status) return nullptr;
  run->ended_ = true;
  run->status_ = static_cast<int>(*status);
  return run;
}

void Supervised::mark_cancelled() const {
  int fd = ::open((run_dir_ + "/cancelled").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0) ::close(fd);
}

Supervised::~Supervised() {
  if (child_ && !ended_) wait();
  if (pidfd_ >= 0) ::close(pidfd_);
}

void Supervised::collect(std::optional<int> supervisor_status) {
  ended_ = true;
  auto status = read_number(run_dir_ + "/exit");
  if (status) {
    status_ = static_cast<int>(*status);
  } else if (supervisor_status) {
    status_ = *supervisor_status;  // it ends as its job did
  }
}

bool Supervised::ended() {
  if (ended_) return true;
  if (child_) {
    int status;
    pid_t r;
    do {
      r = ::waitpid(supervisor_pid_, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == supervisor_pid_) collect(status);
    if (r < 0 && errno == ECHILD) collect();
    return ended_;
  }
  struct pollfd pfd = {pidfd_, POLLIN, 0};
  if (pidfd_ < 0 || ::poll(&pfd, 1, 0) > 0) collect();
  return ended_;
}

void Supervised::wait() {
  if (ended_) return;
  if (child_) {
    int status;
    pid_t r;
    do {
      r = ::waitpid(supervisor_pid_, &status, 0);
    } while (r < 0 && errno == EINTR);
    if (r == supervisor_pid_) {
      collect(status);
    } else {
      collect();
    }
    return;
  }
  struct pollfd pfd = {pidfd_, POLLIN, 0};
  while (pidfd_ >= 0 && ::poll(&pfd, 1, -1) < 0 && errno == EINTR) {
  }
  collect();
}

bool Supervised::signal_group(int sig) const {
  return job_pid_ > 0 && ::kill(-job_pid_, sig) == 0;
}

}  // namespace launch
