// The crash test. Several producer processes push thousands of short
// local-process jobs while several agent processes run them; throughout the
// run the harness SIGKILLs a random agent and starts a new one (and, on
// PostgreSQL, stops the server with -m immediate once and starts it again).
// Each job appends its item id to a log (O_APPEND), so the harness knows how
// many times each job's process ran. At the end:
//   - every pushed item exists once and is in exactly one terminal state;
//   - no item is left claimed, running or stopping (lost = 0);
//   - a job ran more than once only when its lease expired (runs <= attempt),
//     and such re-runs are counted and reported;
//   - at least 20 agents were killed over at least 3,000 jobs.
// Bounded in time: the run fails if it has not settled within 10 minutes.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "launch/error.hpp"
#include "launch/transport.hpp"
#include "pg_support.hpp"
#include "support/temp_dir.hpp"

extern char** environ;

using namespace launch;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr int kProducers = 3;
constexpr int kAgents = 4;
constexpr int kJobsPerProducer = 1000;  // 3,000 jobs
constexpr int kMinKills = 20;
constexpr int kLeaseSeconds = 3;
constexpr auto kKillEvery = std::chrono::milliseconds(300);
constexpr auto kDeadline = std::chrono::minutes(10);

struct TempDir : launch_test::TempDir {
  TempDir() : launch_test::TempDir("launch-crash") {}
};

// Starts argv with extra environment entries and stdout/stderr appended to
// `log`. No shell.
pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
            const std::string& log) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) env.push_back(*e);
  env.insert(env.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> envp, args;
  for (auto& s : env) envp.push_back(&s[0]);
  envp.push_back(nullptr);
  std::vector<std::string> copy = argv;
  for (auto& s : copy) args.push_back(&s[0]);
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("posix_spawn " + argv[0] + " failed");
  return pid;
}

// Exit code, or -1 when it has not exited (with `block` false) or was
// killed by a signal.
int reap(pid_t pid, bool block, bool* exited = nullptr) {
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (exited) *exited = r == pid;
  if (r != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::vector<std::string> lines_of(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

struct Summary {
  int jobs = 0;
  int kills = 0;
  int rerun_jobs = 0;     // jobs whose process ran more than once
  int extra_runs = 0;     // runs beyond the first, all after a lease expiry
  int reclaimed = 0;      // items claimed more than once (a lease expired)
  int finished = 0, failed = 0, stopped = 0;
  int lost = 0;           // pushed items not in a terminal state (or missing)
  int unexplained = 0;    // runs > attempt: ran twice with no lease expiry
  int finished_unrun = 0; // finished although its process never ran
  int server_restarts = 0;
};

class Run {
 public:
  Run(std::string uri, bool restart_server) : uri_(std::move(uri)), restart_(restart_server) {}

  Summary go() {
    auto t = open_transport(uri_);
    QueueDef q;
    q.entity = "team";
    q.name = "crash";
    q.lease_seconds = kLeaseSeconds;
    q.max_attempts = 50;
    t->create_queue(q);
    runs_log_ = dir_.path() + "/runs.log";

    for (int a = 0; a < kAgents; ++a) agents_.push_back(start_agent());
    std::vector<pid_t> producers;
    for (int p = 0; p < kProducers; ++p) {
      producers.push_back(spawn({LAUNCH_CRASH_WORKER, "push", uri_, "team/crash",
                                 std::to_string(kJobsPerProducer), runs_log_,
                                 dir_.path() + "/ids-" + std::to_string(p)},
                                {}, dir_.path() + "/producer-" + std::to_string(p) + ".log"));
    }

    Summary s;
    s.jobs = kProducers * kJobsPerProducer;
    std::mt19937 rng(std::random_device{}());
    auto deadline = clock_type::now() + kDeadline;
    auto next_kill = clock_type::now() + kKillEvery;
    auto next_check = clock_type::now();
    int producers_left = kProducers;
    bool settled = false;
    while (clock_type::now() < deadline) {
      for (auto& pid : producers) {
        if (pid < 0) continue;
        bool exited = false;
        int code = reap(pid, false, &exited);
        if (exited) {
          CHECK_MESSAGE(code == 0, "a producer failed; see its log");
          pid = -1;
          --producers_left;
        }
      }
      // Agents that died on their own (not killed by us) are restarted too,
      // but noted: an agent should not exit.
      for (auto& pid : agents_) {
        bool exited = false;
        reap(pid, false, &exited);
        if (exited) {
          ++agent_exits_;
          pid = start_agent();
        }
      }
      if (clock_type::now() >= next_kill && (s.kills < kMinKills || !settled)) {
        auto& victim = agents_[rng() % agents_.size()];
        ::kill(victim, SIGKILL);
        reap(victim, true);
        ++s.kills;
        victim = start_agent();
        next_kill = clock_type::now() + kKillEvery;
      }
      if (clock_type::now() >= next_check) {
        next_check = clock_type::now() + std::chrono::seconds(1);
        int terminal = 0, total = 0;
        for (const auto& it : t->list({QueueRef{"team", "crash"}, std::nullopt, "", 0})) {
          ++total;
          terminal += is_terminal(it.state) ? 1 : 0;
        }
        if (restart_ && s.server_restarts == 0 && terminal >= s.jobs / 2) {
          launch_test::restart_server(1000);
          ++s.server_restarts;
        }
        settled = producers_left == 0 && total == s.jobs && terminal == total;
        if (settled && s.kills >= kMinKills) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK_MESSAGE(settled, "the run did not settle within the deadline");
    stop_agents();
    for (auto pid : producers) {
      if (pid > 0) {
        ::kill(pid, SIGKILL);
        reap(pid, true);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // last job writes
    check(*t, s);
    MESSAGE("agent processes that exited by themselves: " << agent_exits_);
    return s;
  }

 private:
  pid_t start_agent() {
    int n = agent_starts_++;
    // One LAUNCH_HOME, as on one host: the agents' id locks live there, so
    // live agents get distinct ids and a restarted one may take a dead one's.
    std::string home = dir_.path() + "/home";
    std::string log = dir_.path() + "/agent-" + std::to_string(n) + ".log";
#ifdef LAUNCH_AGENT_BIN
    return spawn({LAUNCH_AGENT_BIN, "-q", "team/crash", "--max-jobs", "2", "-e", "team"},
                 {"LAUNCH_QUEUE_URI=" + uri_, "LAUNCH_HOME=" + home}, log);
#else
    return spawn({LAUNCH_CRASH_WORKER, "agent", uri_, "team/crash"},
                 {"LAUNCH_QUEUE_URI=" + uri_, "LAUNCH_HOME=" + home}, log);
#endif
  }

  void stop_agents() {
    for (auto pid : agents_) ::kill(pid, SIGTERM);
    auto until = clock_type::now() + std::chrono::seconds(15);
    for (auto pid : agents_) {
      bool exited = false;
      while (reap(pid, false, &exited), !exited && clock_type::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (!exited) {
        ::kill(pid, SIGKILL);
        reap(pid, true);
      }
    }
    agents_.clear();
  }

  void check(Transport& t, Summary& s) {
    std::set<std::string> pushed;
    for (int p = 0; p < kProducers; ++p) {
      for (auto& id : lines_of(dir_.path() + "/ids-" + std::to_string(p))) {
        CHECK_MESSAGE(pushed.insert(id).second, "push returned id " << id << " twice");
      }
    }
    std::map<std::string, int> runs;
    for (auto& id : lines_of(runs_log_)) runs[id]++;

    std::map<std::string, QueueItem> items;
    for (auto& it : t.list({QueueRef{"team", "crash"}, std::nullopt, "", 0})) {
      items[it.id] = it;
    }
    CHECK(pushed.size() == static_cast<std::size_t>(s.jobs));
    CHECK(items.size() == static_cast<std::size_t>(s.jobs));
    for (const auto& id : pushed) {
      auto found = items.find(id);
      if (found == items.end() || !is_terminal(found->second.state)) {
        ++s.lost;
        continue;
      }
      const QueueItem& it = found->second;
      int ran = runs.count(id) ? runs[id] : 0;
      if (it.state == ItemState::finished) ++s.finished;
      if (it.state == ItemState::failed) ++s.failed;
      if (it.state == ItemState::stopped) ++s.stopped;
      if (it.attempt > 1) ++s.reclaimed;
      if (ran > 1) {
        ++s.rerun_jobs;
        s.extra_runs += ran - 1;
      }
      if (ran > it.attempt) ++s.unexplained;
      if (it.state == ItemState::finished && ran == 0) ++s.finished_unrun;
      if (it.state != ItemState::finished) {
        failures_[std::string(to_string(it.state)) + ": " +
                  (it.error ? it.error->message : std::string())]++;
      }
    }
    for (const auto& kv : failures_) {
      std::printf("  %d item(s) ended %s\n", kv.second, kv.first.c_str());
    }
    for (const auto& kv : runs) {
      CHECK_MESSAGE(items.count(kv.first), "a job ran for unknown item " << kv.first);
    }
    CHECK(s.lost == 0);
    CHECK(s.unexplained == 0);
    CHECK(s.finished_unrun == 0);
    CHECK(s.kills >= kMinKills);
    CHECK(s.jobs >= 3000);
  }

  std::string uri_;
  bool restart_;
  TempDir dir_;
  std::string runs_log_;
  std::vector<pid_t> agents_;
  int agent_starts_ = 0;
  int agent_exits_ = 0;
  std::map<std::string, int> failures_;  // "state: reason" of items not finished
};

void report(const std::string& name, const Summary& s) {
  std::printf(
      "crash[%s]: jobs %d, agent kills %d, server restarts %d, finished %d, failed %d, "
      "stopped %d, items re-claimed after a lease expired %d, jobs re-run after lease "
      "expiry %d (%d extra runs), re-runs without an expiry %d, lost %d\n",
      name.c_str(), s.jobs, s.kills, s.server_restarts, s.finished, s.failed, s.stopped,
      s.reclaimed, s.rerun_jobs, s.extra_runs, s.unexplained, s.lost);
  std::fflush(stdout);
}

}  // namespace

TEST_CASE("crash: sqlite:// — agents SIGKILLed throughout; every item ends exactly once") {
  TempDir store;
  Run run("sqlite://" + store.path() + "/launch.db", false);
  report("sqlite", run.go());
}

TEST_CASE("crash: postgres:// — agents SIGKILLed, server restarted; every item ends once") {
  launch_test::FreshDatabase db;
  Run run(db.uri(), true);
  Summary s = run.go();
  report("postgres", s);
  CHECK(s.server_restarts == 1);
}
