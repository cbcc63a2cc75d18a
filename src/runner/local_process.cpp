// The local-process runner: a job's argv started with posix_spawn (never a
// shell) in a process group of its own, its output in files, followed
// through a pidfd so the agent can sleep in poll(2) until it ends.
//
// Config keys (the queue's config after templates, merge and macros):
//   env              object: variables added beneath the job's own env
//   working_dir      string: the directory the process starts in
//   timeout_seconds  number: the run fails once it has run this long
//   gpus             integer: how many GPUs the job needs; gpus_wanted()
//                    tells the agent, which hands out that many from its
//                    pool, and the run sees them as CUDA_VISIBLE_DEVICES
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <map>

#include <fmt/format.h>

#include "builtins/factories.hpp"
#include "core/template_value.hpp"
#include "util/json.hpp"
#include "launch/error.hpp"
#include "launch/runner.hpp"

extern char** environ;

namespace launch {
namespace {

using clock = std::chrono::steady_clock;

struct LocalConfig {
  std::map<std::string, std::string> env;
  std::string working_dir;
  double timeout_seconds = 0;  // 0: none
  int gpus = 0;
};

const char* const kLocalConfigCtx = "local-process config";

void check_local_keys(const json::Value& d) {
  static const char* const kKeys[] = {"env", "working_dir", "timeout_seconds", "gpus"};
  const std::string ctx = kLocalConfigCtx;
  for (const auto& m : d.GetObject()) {
    std::string key(m.name.GetString(), m.name.GetStringLength());
    bool known = false;
    for (const char* k : kKeys) known = known || key == k;
    if (!known) {
      throw Error(Errc::invalid,
                  fmt::format("{}: unknown option \"{}\" (known: env, working_dir, "
                              "timeout_seconds, gpus)",
                              ctx, key));
    }
  }
}

LocalConfig parse_local_config(const std::string& config_json) {
  const std::string ctx = kLocalConfigCtx;
  json::Document d = json::parse_object(config_json, ctx);
  check_local_keys(d);
  LocalConfig c;
  c.env = json::get_string_map(d, "env", ctx);
  c.working_dir = json::get_string(d, "working_dir", ctx);
  auto timeout = json::get_optional_number(d, "timeout_seconds", ctx);
  if (timeout) {
    if (*timeout < 0) {
      throw Error(Errc::invalid,
                  fmt::format("{}: timeout_seconds {} must not be negative", ctx, *timeout));
    }
    c.timeout_seconds = *timeout;
  }
  auto gpus = json::get_optional_int(d, "gpus", ctx);
  if (gpus && *gpus < 0) {
    throw Error(Errc::invalid, fmt::format("{}: gpus {} must not be negative", ctx, *gpus));
  }
  // A count beyond an int is no machine's: refused, not truncated.
  if (gpus && *gpus > std::numeric_limits<int>::max()) {
    throw Error(Errc::invalid, fmt::format("{}: gpus {} is too many", ctx, *gpus));
  }
  c.gpus = gpus ? static_cast<int>(*gpus) : 0;
  return c;
}

std::string signal_text(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? fmt::format("{} (SIG{})", sig, abbrev) : std::to_string(sig);
}

std::string seconds_text(double s) { return fmt::format("{:g}s", s); }

class LocalRun : public Run {
 public:
  LocalRun(pid_t pid, double timeout_seconds)
      : pid_(pid), started_(clock::now()), timeout_seconds_(timeout_seconds) {
    pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfd_ >= 0) ::fcntl(pidfd_, F_SETFD, FD_CLOEXEC);
  }

  ~LocalRun() override {
    if (!reaped_) {
      // Dropped while running (a lost lease, an agent going away): the run
      // must not outlive its handle.
      ::kill(-pid_, SIGKILL);
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
    if (pidfd_ >= 0) ::close(pidfd_);
  }

  std::string id() const override { return std::to_string(pid_); }
  int wait_fd() const override { return reaped_ ? -1 : pidfd_; }

  RunStatus poll() override {
    if (reaped_) {
      // A stopped run is over once its whole group is: the orphans killed
      // with it are reaped by init, which takes a moment.
      if (group_wait_until_) {
        if (::kill(-pid_, 0) == 0 && clock::now() < *group_wait_until_) return RunStatus{};
        group_wait_until_.reset();
      }
      return status_;
    }
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(pid_, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == pid_) {
      reaped_ = true;
      status_ = ended(status);
      if (cancelled_ || timed_out_) {
        group_wait_until_ = clock::now() + std::chrono::seconds(2);
        return poll();
      }
      return status_;
    }
    auto now = clock::now();
    if (timeout_seconds_ > 0 && !timed_out_ && !cancelled_ &&
        now - started_ >= std::chrono::duration<double>(timeout_seconds_)) {
      timed_out_ = true;
      terminate(std::chrono::seconds(5));
    }
    if (kill_at_ && now >= *kill_at_) {
      ::kill(-pid_, SIGKILL);
      kill_at_.reset();
    }
    return RunStatus{};
  }

  void cancel(std::chrono::milliseconds grace) override {
    if (reaped_ || cancelled_) return;
    cancelled_ = true;
    terminate(grace);
  }

 private:
  void terminate(std::chrono::milliseconds grace) {
    ::kill(-pid_, SIGTERM);
    kill_at_ = clock::now() + grace;
  }

  RunStatus ended(int status) {
    // Whatever the leader left behind in its group goes with it when the
    // run was stopped; a run that ended on its own keeps its children.
    if (cancelled_ || timed_out_) ::kill(-pid_, SIGKILL);
    RunStatus st;
    if (WIFEXITED(status)) {
      st.exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
      st.exit_code = 128 + WTERMSIG(status);
    }
    if (cancelled_) {
      st.phase = RunPhase::stopped;
      st.message = "cancelled";
    } else if (timed_out_) {
      st.phase = RunPhase::failed;
      st.message = fmt::format("timed out after {}", seconds_text(timeout_seconds_));
    } else if (WIFSIGNALED(status)) {
      st.phase = RunPhase::failed;
      st.message = fmt::format("killed by signal {}", signal_text(WTERMSIG(status)));
    } else if (st.exit_code == 0) {
      st.phase = RunPhase::finished;
    } else {
      st.phase = RunPhase::failed;
      st.message = fmt::format("exited with code {}", *st.exit_code);
    }
    return st;
  }

  pid_t pid_;
  int pidfd_ = -1;
  clock::time_point started_;
  double timeout_seconds_;
  bool reaped_ = false;
  bool cancelled_ = false;
  bool timed_out_ = false;
  std::optional<clock::time_point> kill_at_;
  std::optional<clock::time_point> group_wait_until_;
  RunStatus status_;
};

class LocalProcessRunner : public Runner {
 public:
  // A spawn and a waitpid: quick, and done on the agent's own thread.
  bool blocking() const override { return false; }

  // The keys as they are; the values' types once the placeholders, whose
  // values come at push, are set aside.
  void check_config(const std::string& config_json) const override {
    json::Document d = json::parse_object(config_json, kLocalConfigCtx);
    check_local_keys(d);
    tmpl::drop_placeholders(d);
    parse_local_config(json::dump(d));
  }

  // The whole config is checked here, so a bad one fails before the job
  // waits for devices.
  int gpus_wanted(const ResolvedJob& job) const override {
    return parse_local_config(job.config).gpus;
  }

  std::unique_ptr<Run> submit(const ResolvedJob& job) override {
    LocalConfig config = parse_local_config(job.config);
    if (job.argv.empty()) {
      throw Error(Errc::invalid,
                  "local-process: the job has no entry_point (nothing to run)");
    }
    if (!config.working_dir.empty()) {
      struct stat st;
      if (::stat(config.working_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        throw Error(Errc::invalid,
                    fmt::format("local-process config: working_dir \"{}\" is not a directory",
                                config.working_dir));
      }
    }

    // The environment: the agent's own, then the config's env, then the
    // job's (LAUNCH_* included), then the GPUs handed out.
    std::map<std::string, std::string> env;
    for (char** e = environ; *e; ++e) {
      const char* eq = std::strchr(*e, '=');
      if (eq) env[std::string(*e, static_cast<std::size_t>(eq - *e))] = eq + 1;
    }
    for (const auto& kv : config.env) env[kv.first] = kv.second;
    for (const auto& kv : job.env) env[kv.first] = kv.second;
    if (!job.gpus.empty()) {
      std::string devices;
      for (int g : job.gpus) devices += (devices.empty() ? "" : ",") + std::to_string(g);
      env["CUDA_VISIBLE_DEVICES"] = devices;
    }
    std::vector<std::string> env_strings;
    env_strings.reserve(env.size());
    for (const auto& kv : env) env_strings.push_back(kv.first + "=" + kv.second);
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(&s[0]);
    envp.push_back(nullptr);
    std::vector<std::string> args = job.argv;
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(&a[0]);
    argv.push_back(nullptr);

    // The child opens (creates) its own log files: creating inodes is most
    // of a short job's cost, and this way it happens in the child, beside
    // the agent's loop rather than in it.
    const std::string out_path = job.log_dir + "/stdout.log";
    const std::string err_path = job.log_dir + "/stderr.log";
    if (::access(job.log_dir.c_str(), W_OK) != 0) {
      throw Error(Errc::io, fmt::format("local-process: log directory {}: {}", job.log_dir,
                                        std::strerror(errno)));
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (!config.working_dir.empty()) {
      posix_spawn_file_actions_addchdir_np(&actions, config.working_dir.c_str());
    }
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    // A group of its own, so cancel reaches every process the job starts;
    // and none of the agent's signal dispositions or mask.
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2}) {
      sigaddset(&defaults, sig);
    }
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);

    pid_t pid = 0;
    int rc = ::posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
      throw Error(rc == ENOENT || rc == EACCES || rc == ENOEXEC ? Errc::invalid : Errc::io,
                  fmt::format("local-process: cannot start \"{}\": {}", job.argv[0],
                              std::strerror(rc)));
    }
    return std::make_unique<LocalRun>(pid, config.timeout_seconds);
  }
};

}  // namespace

std::unique_ptr<Runner> make_local_process_runner(const RunnerContext&) {
  return std::make_unique<LocalProcessRunner>();
}

}  // namespace launch
