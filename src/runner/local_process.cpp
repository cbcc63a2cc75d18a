// The local-process runner: a job's argv started (never through a shell)
// in a process group of its own under a supervisor of its own
// (runner/supervisor.hpp), its output in files, followed through a pidfd
// so the agent can sleep in poll(2) until it ends. A run outlives an agent
// that is killed: the agent's next start reattaches to it, or learns how
// it ended meanwhile, from its run directory.
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
#include <sys/stat.h>
#include <sys/statvfs.h>
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
#include "launch/home.hpp"
#include "runner/supervisor.hpp"
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
  LocalRun(std::unique_ptr<Supervised> run, double timeout_seconds, std::string log_dir)
      : run_(std::move(run)),
        started_(clock::now()),
        timeout_seconds_(timeout_seconds),
        log_dir_(std::move(log_dir)) {}

  ~LocalRun() override {
    if (!reaped_ && !run_->ended()) {
      // Dropped while running (a lost lease, an agent going away): the run
      // must not outlive its handle. (An agent that is killed drops
      // nothing: its runs live on under their supervisors.)
      run_->signal_group(SIGKILL);
      run_->wait();
    }
  }

  std::string id() const override { return std::to_string(run_->job_pid()); }
  int wait_fd() const override { return reaped_ ? -1 : run_->wait_fd(); }

  RunStatus poll() override {
    if (reaped_) {
      // A stopped run is over once its whole group is: the orphans killed
      // with it are reaped by init, which takes a moment.
      if (group_wait_until_) {
        if (run_->signal_group(0) && clock::now() < *group_wait_until_) return RunStatus{};
        group_wait_until_.reset();
      }
      return status_;
    }
    if (run_->ended()) {
      reaped_ = true;
      status_ = ended(run_->status());
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
      run_->signal_group(SIGKILL);
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
    run_->mark_cancelled();
    run_->signal_group(SIGTERM);
    kill_at_ = clock::now() + grace;
  }

  RunStatus ended(std::optional<int> wait_status) {
    // Whatever the leader left behind in its group goes with it when the
    // run was stopped; a run that ended on its own keeps its children.
    if (cancelled_ || timed_out_) run_->signal_group(SIGKILL);
    RunStatus st;
    if (!wait_status) {
      st.phase = cancelled_ ? RunPhase::stopped : RunPhase::failed;
      st.message = "its supervisor was killed before it recorded how the job ended";
      return st;
    }
    int status = *wait_status;
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
    // A job whose output could not be written often fails for that alone
    // (a shell's echo exits 1 on ENOSPC), and its stderr, on the same file
    // system, cannot say so.
    if (st.phase == RunPhase::failed && logs_full()) {
      st.message += fmt::format("; the file system of its logs ({}) is full, so what it "
                                "wrote to stdout and stderr may be lost",
                                log_dir_);
    }
    return st;
  }

  bool logs_full() const {
    struct statvfs fs;
    if (log_dir_.empty() || ::statvfs(log_dir_.c_str(), &fs) != 0) return false;
    return fs.f_bavail == 0 || fs.f_favail == 0;
  }

  std::unique_ptr<Supervised> run_;
  clock::time_point started_;
  double timeout_seconds_;
  std::string log_dir_;
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
    if (::access(job.log_dir.c_str(), W_OK) != 0) {
      throw Error(Errc::io, fmt::format("local-process: log directory {}: {}", job.log_dir,
                                        std::strerror(errno)));
    }
    // A run of this item that is still alive on this host (its agent died,
    // the lease ran out, and the item came back) is followed, not started
    // a second time beside it.
    // One that ended while no agent followed it stands as this attempt's
    // ending: the job ran to its end once already.
    if (auto earlier = Supervised::find(job.log_dir, job.item.attempt, true)) {
      return std::make_unique<LocalRun>(std::move(earlier), config.timeout_seconds,
                                        job.log_dir);
    }
    SupervisedJob sj;
    sj.argv = job.argv;
    sj.env = std::move(env);
    sj.working_dir = config.working_dir;
    sj.run_dir = job.log_dir;
    sj.attempt = job.item.attempt;
    return std::make_unique<LocalRun>(Supervised::start(sj), config.timeout_seconds, job.log_dir);
  }

  // A run an earlier agent started for `item`: alive under its supervisor,
  // or ended while no agent followed it (its exit status recorded).
  std::unique_ptr<Run> reattach(const QueueItem& item, const QueueDef& queue) override {
    std::string dir = run_directory(home_, item.id);
    auto found = Supervised::find(dir, item.attempt);
    if (!found) return nullptr;
    // The queue's config as stored may hold template placeholders; a
    // timeout that cannot be read from it is not applied to the run.
    double timeout = 0;
    try {
      timeout = parse_local_config(queue.config).timeout_seconds;
    } catch (const Error&) {
    }
    return std::make_unique<LocalRun>(std::move(found), timeout, dir);
  }

  // Its supervisor takes the run directory's lock before the job starts.
  bool reattach_finds_every_run() const override { return true; }

  explicit LocalProcessRunner(std::string home) : home_(std::move(home)) {}

 private:
  std::string home_;
};

}  // namespace

std::unique_ptr<Runner> make_local_process_runner(const RunnerContext& ctx) {
  return std::make_unique<LocalProcessRunner>(ctx.launch_home.empty() ? launch_home()
                                                                      : ctx.launch_home);
}

}  // namespace launch
