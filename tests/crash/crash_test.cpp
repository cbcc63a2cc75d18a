// The crash test. Several producer processes push thousands of short
// local-process jobs while several launch-agent processes run them; while
// work is outstanding the harness SIGKILLs a random agent and starts a new
// one (and, on PostgreSQL, stops the server with -m immediate once and
// starts it again). Each job appends its item id to a log (O_APPEND), so the
// harness knows how many times each job's process ran; after each kill it
// records which items the killed agent held.
//
// The harness only observes (an Outcome); verdict() judges it and returns
// every violation:
//   - every pushed item exists once and is in a terminal state;
//   - every item not held by an agent when it was killed ends finished;
//   - every item that did not finish says why, and a "run lost" has a kill
//     behind it; failures are at most kills x max_jobs;
//   - a job ran more than once only when its lease expired (runs <= attempt);
//     a finished item's job ran;
//   - no agent exited on its own;
//   - at least the wanted kills (counted only while work was outstanding)
//     over at least the wanted number of jobs actually pushed.
// The same harness, small, with a deliberately broken agent must fail.
// Bounded in time: a run that has not settled by its deadline fails.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "launch/error.hpp"
#include "launch/transport.hpp"
#include "pg_support.hpp"
#include "support/temp_dir.hpp"
#ifdef LAUNCH_SERVER_BINARY
#include "support/launch_server.hpp"
#endif

extern char** environ;

using namespace launch;
using clock_type = std::chrono::steady_clock;

namespace {

// Which agent the harness runs.
enum class AgentKind {
  launch_agent,  // the real one
  fails_all,     // broken: fails every item without running it
  stalls,        // broken: starts every item and never finishes it
};

struct Options {
  int producers = 3;
  int jobs_per_producer = 1000;
  int job_exit_code = 0;  // what every job exits with
  std::string job_seconds = "0";  // how long every job sleeps first
  int agents = 4;
  int max_jobs = 2;
  int min_kills = 20;
  int lease_seconds = 3;
  std::chrono::milliseconds kill_every{200};
  std::chrono::seconds deadline{600};
  AgentKind agent = AgentKind::launch_agent;
  // Called once, when half the jobs have ended: the store's server is
  // stopped hard and started again (PostgreSQL, or a launch server).
  std::function<void()> restart_server;
};

struct KillRecord {
  pid_t pid = 0;
  std::string agent_id;        // empty: it had not registered
  std::set<std::string> held;  // its non-terminal items, just before and after
};

struct AgentExit {
  pid_t pid = 0;
  int status = 0;
  std::string log;  // the end of its log (the directory goes with the run)
};

// Everything the harness saw; verdict() judges it.
struct Outcome {
  Options options;
  bool settled = false;
  int producer_failures = 0;
  std::vector<std::string> pushed;            // ids, as the producers wrote them
  std::map<std::string, QueueItem> items;     // the store's items at the end
  std::map<std::string, int> runs;            // item id -> times its job ran
  std::vector<KillRecord> kills;              // each made while work was outstanding
  std::vector<AgentExit> agent_exits;         // agents that exited on their own
  int server_restarts = 0;
};

struct Summary {
  int jobs = 0;
  int kills = 0;
  int held_at_kills = 0;  // items held by a killed agent (with repeats)
  int rerun_jobs = 0;     // jobs whose process ran more than once
  int extra_runs = 0;     // runs beyond the first, all after a lease expiry
  int reclaimed = 0;      // items claimed more than once (a lease expired)
  int finished = 0, failed = 0, stopped = 0;
  int not_terminal = 0;
  int agent_exits = 0;
  int server_restarts = 0;
  std::map<std::string, int> endings;  // "state: reason" of items not finished
};

Summary summarize(const Outcome& o) {
  Summary s;
  s.jobs = static_cast<int>(o.pushed.size());
  s.kills = static_cast<int>(o.kills.size());
  for (const auto& k : o.kills) s.held_at_kills += static_cast<int>(k.held.size());
  s.agent_exits = static_cast<int>(o.agent_exits.size());
  s.server_restarts = o.server_restarts;
  for (const auto& id : o.pushed) {
    auto found = o.items.find(id);
    if (found == o.items.end() || !is_terminal(found->second.state)) {
      ++s.not_terminal;
      continue;
    }
    const QueueItem& it = found->second;
    auto r = o.runs.find(id);
    int ran = r == o.runs.end() ? 0 : r->second;
    if (it.state == ItemState::finished) ++s.finished;
    if (it.state == ItemState::failed) ++s.failed;
    if (it.state == ItemState::stopped) ++s.stopped;
    if (it.attempt > 1) ++s.reclaimed;
    if (ran > 1) {
      ++s.rerun_jobs;
      s.extra_runs += ran - 1;
    }
    if (it.state != ItemState::finished) {
      s.endings[std::string(to_string(it.state)) + ": " +
                (it.error ? it.error->message : std::string("(no reason)"))]++;
    }
  }
  return s;
}

// Every way the outcome breaks the crash test's claims; empty: it holds.
std::vector<std::string> verdict(const Outcome& o) {
  std::vector<std::string> v;
  auto say = [&v](const std::string& text) { v.push_back(text); };
  const Options& opt = o.options;
  if (!o.settled) say("the run did not settle within its deadline");
  if (o.producer_failures > 0) say(std::to_string(o.producer_failures) + " producer(s) failed");
  int wanted = opt.producers * opt.jobs_per_producer;
  if (static_cast<int>(o.pushed.size()) < wanted) {
    say("only " + std::to_string(o.pushed.size()) + " of " + std::to_string(wanted) +
        " jobs were pushed");
  }
  if (static_cast<int>(o.kills.size()) < opt.min_kills) {
    say("only " + std::to_string(o.kills.size()) + " agent kills while work was outstanding (" +
        std::to_string(opt.min_kills) + " wanted)");
  }
  for (const auto& e : o.agent_exits) {
    std::string how = WIFSIGNALED(e.status)
                          ? "killed by signal " + std::to_string(WTERMSIG(e.status)) + " (" +
                                strsignal(WTERMSIG(e.status)) + ")"
                          : "exit code " + std::to_string(WEXITSTATUS(e.status));
    say("agent " + std::to_string(e.pid) + " exited on its own (" + how +
        "; its log ends: " + e.log + ")");
  }
  std::set<std::string> held_at_a_kill;
  for (const auto& k : o.kills) held_at_a_kill.insert(k.held.begin(), k.held.end());

  std::set<std::string> pushed;
  int not_terminal = 0, unfinished_unkilled = 0, silent = 0, lost_unkilled = 0;
  int unexplained_reruns = 0, finished_unrun = 0, not_finished = 0;
  std::string example;
  for (const auto& id : o.pushed) {
    if (!pushed.insert(id).second) say("push returned id " + id + " twice");
    auto found = o.items.find(id);
    if (found == o.items.end()) {
      say("pushed item " + id + " is not in the store");
      continue;
    }
    const QueueItem& it = found->second;
    auto r = o.runs.find(id);
    int ran = r == o.runs.end() ? 0 : r->second;
    if (ran > it.attempt) ++unexplained_reruns;
    if (!is_terminal(it.state)) {
      ++not_terminal;
      if (example.empty()) example = id + " is " + to_string(it.state);
      continue;
    }
    if (it.state == ItemState::finished) {
      if (ran == 0) ++finished_unrun;
      continue;
    }
    ++not_finished;
    bool killed = held_at_a_kill.count(id) > 0;
    std::string why = it.error ? it.error->message : "";
    if (why.empty()) ++silent;
    if (!killed) {
      ++unfinished_unkilled;
      if (why.find("run lost") != std::string::npos) ++lost_unkilled;
      if (example.empty()) example = id + " ended " + to_string(it.state) + ": " + why;
    }
  }
  if (o.items.size() != pushed.size()) {
    say("the store holds " + std::to_string(o.items.size()) + " items, " +
        std::to_string(pushed.size()) + " were pushed");
  }
  for (const auto& kv : o.runs) {
    if (!o.items.count(kv.first)) say("a job ran for unknown item " + kv.first);
  }
  if (not_terminal) say(std::to_string(not_terminal) + " item(s) not in a terminal state");
  if (unfinished_unkilled) {
    say(std::to_string(unfinished_unkilled) +
        " item(s) no killed agent held did not finish (e.g. " + example + ")");
  }
  if (lost_unkilled) {
    say(std::to_string(lost_unkilled) + " \"run lost\" failure(s) without an agent kill behind");
  }
  if (silent) say(std::to_string(silent) + " item(s) ended without saying why");
  int bound = static_cast<int>(o.kills.size()) * opt.max_jobs;
  if (not_finished > bound) {
    say(std::to_string(not_finished) + " item(s) did not finish, more than kills x max_jobs = " +
        std::to_string(bound));
  }
  if (unexplained_reruns) {
    say(std::to_string(unexplained_reruns) + " job(s) ran more often than their item was claimed");
  }
  if (finished_unrun) say(std::to_string(finished_unrun) + " item(s) finished but never ran");
  return v;
}

bool has(const std::vector<std::string>& violations, const std::string& part) {
  return std::any_of(violations.begin(), violations.end(),
                     [&](const std::string& s) { return s.find(part) != std::string::npos; });
}

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

// Reaps pid: true when it has exited (its wait status in *status).
bool reaped(pid_t pid, bool block, int* status) {
  pid_t r;
  do {
    r = waitpid(pid, status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  return r == pid;
}

// The last lines of a file, at most about 4,000 characters.
std::string log_tail(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  return text.size() > 4000 ? text.substr(text.size() - 4000) : text;
}

std::vector<std::string> lines_of(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

class Run {
 public:
  Run(std::string uri, Options options) : uri_(std::move(uri)) { o_.options = options; }
  ~Run() {
    // A failed REQUIRE leaves no process behind.
    stop_agents();
    for (auto pid : producers_) {
      int st = 0;
      ::kill(pid, SIGKILL);
      reaped(pid, true, &st);
    }
  }

  Outcome go() {
    const Options& opt = o_.options;
    auto t = open_transport(uri_);
    QueueDef q;
    q.entity = "team";
    q.name = "crash";
    q.lease_seconds = opt.lease_seconds;
    q.max_attempts = 50;
    t->create_queue(q);
    runs_log_ = dir_ / "runs.log";

    for (int a = 0; a < opt.agents; ++a) agents_.push_back(start_agent());
    for (int p = 0; p < opt.producers; ++p) {
      producers_.push_back(spawn({LAUNCH_CRASH_WORKER, "push", uri_, "team/crash",
                                  std::to_string(opt.jobs_per_producer), runs_log_,
                                  dir_ / ("ids-" + std::to_string(p)),
                                  std::to_string(opt.job_exit_code), opt.job_seconds},
                                 {}, dir_ / ("producer-" + std::to_string(p) + ".log")));
    }

    std::mt19937 rng(std::random_device{}());
    auto deadline = clock_type::now() + opt.deadline;
    auto next_kill = clock_type::now() + opt.kill_every;
    while (clock_type::now() < deadline) {
      reap_producers();
      reap_agents();
      int total = 0, terminal = 0;
      count(*t, &total, &terminal);
      bool outstanding = !producers_.empty() || terminal < total;
      if (!outstanding) {
        o_.settled = true;
        break;
      }
      if (opt.restart_server && o_.server_restarts == 0 &&
          terminal >= opt.producers * opt.jobs_per_producer / 2) {
        opt.restart_server();
        ++o_.server_restarts;
      }
      if (clock_type::now() >= next_kill) {
        kill_one(*t, agents_[rng() % agents_.size()]);
        next_kill = clock_type::now() + opt.kill_every;
      }
      try {
        t->wait_for_work(std::chrono::milliseconds(50));
      } catch (const Error&) {
        // The server is restarting.
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    reap_producers();
    reap_agents();
    stop_agents();
    // Settled: every item is terminal, so every job that ran wrote its line
    // before its item ended.
    for (int p = 0; p < opt.producers; ++p) {
      for (auto& id : lines_of(dir_ / ("ids-" + std::to_string(p)))) o_.pushed.push_back(id);
    }
    for (auto& id : lines_of(runs_log_)) o_.runs[id]++;
    for (auto& it : t->list({QueueRef{"team", "crash"}, std::nullopt, "", 0})) {
      o_.items[it.id] = it;
    }
    return o_;
  }

 private:
  void count(Transport& t, int* total, int* terminal) {
    for (;;) {
      try {
        *total = *terminal = 0;
        for (const auto& it : t.list({QueueRef{"team", "crash"}, std::nullopt, "", 0})) {
          ++*total;
          *terminal += is_terminal(it.state) ? 1 : 0;
        }
        return;
      } catch (const Error&) {
        // The server is restarting; ask again.
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  }

  std::set<std::string> held_by(Transport& t, const std::string& agent_id) {
    std::set<std::string> out;
    if (agent_id.empty()) return out;
    for (const auto& it : t.list({QueueRef{"team", "crash"}, std::nullopt, agent_id, 0})) {
      if (!is_terminal(it.state)) out.insert(it.id);
    }
    return out;
  }

  std::string agent_id_of(Transport& t, pid_t pid) {
    std::string id;
    std::int64_t started = -1;
    for (const auto& a : t.list_agents()) {
      if (a.pid == pid && a.started_at > started) {
        id = a.id;
        started = a.started_at;
      }
    }
    return id;
  }

  void kill_one(Transport& t, pid_t& victim) {
    KillRecord k;
    k.pid = victim;
    try {
      k.agent_id = agent_id_of(t, victim);
      k.held = held_by(t, k.agent_id);
    } catch (const Error&) {
      // The server is restarting: no kill this time.
      return;
    }
    ::kill(victim, SIGKILL);
    int st = 0;
    reaped(victim, true, &st);
    for (;;) {
      try {
        if (k.agent_id.empty()) k.agent_id = agent_id_of(t, victim);
        auto after = held_by(t, k.agent_id);
        k.held.insert(after.begin(), after.end());
        break;
      } catch (const Error&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    o_.kills.push_back(k);
    victim = start_agent();
  }

  void reap_producers() {
    for (auto it = producers_.begin(); it != producers_.end();) {
      int st = 0;
      if (reaped(*it, false, &st)) {
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) ++o_.producer_failures;
        it = producers_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // An agent that exits on its own is a violation; it is replaced so the
  // run goes on and the rest of the outcome is still observed.
  void reap_agents() {
    for (std::size_t i = 0; i < agents_.size(); ++i) {
      int st = 0;
      if (reaped(agents_[i], false, &st)) {
        o_.agent_exits.push_back({agents_[i], st, log_tail(agent_logs_[agents_[i]])});
        agents_[i] = start_agent();
      }
    }
  }

  pid_t start_agent() {
    int n = agent_starts_++;
    // One LAUNCH_HOME, as on one host: the agents' id locks live there, so
    // live agents get distinct ids and a restarted one may take a dead one's.
    std::string home = dir_ / "home";
    std::string log = dir_ / ("agent-" + std::to_string(n) + ".log");
    std::vector<std::string> env = {"LAUNCH_QUEUE_URI=" + uri_, "LAUNCH_HOME=" + home};
    pid_t pid = -1;
    switch (o_.options.agent) {
      case AgentKind::launch_agent:
        pid = spawn({LAUNCH_AGENT_BIN, "-q", "team/crash", "--max-jobs",
                     std::to_string(o_.options.max_jobs), "-e", "team"},
                    env, log);
        break;
      case AgentKind::fails_all:
        pid = spawn({LAUNCH_CRASH_WORKER, "broken-agent", "fail", uri_, "team/crash"}, env, log);
        break;
      case AgentKind::stalls:
        pid = spawn({LAUNCH_CRASH_WORKER, "broken-agent", "stall", uri_, "team/crash"}, env, log);
        break;
    }
    agent_logs_[pid] = log;
    return pid;
  }

  void stop_agents() {
    for (auto pid : agents_) ::kill(pid, SIGTERM);
    auto until = clock_type::now() + std::chrono::seconds(15);
    for (auto pid : agents_) {
      int st = 0;
      while (!reaped(pid, false, &st) && clock_type::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (clock_type::now() >= until) {
        ::kill(pid, SIGKILL);
        reaped(pid, true, &st);
      }
    }
    agents_.clear();
  }

  std::string uri_;
  Outcome o_;
  launch_test::TempDir dir_{"launch-crash"};
  std::string runs_log_;
  std::vector<pid_t> agents_, producers_;
  std::map<pid_t, std::string> agent_logs_;
  int agent_starts_ = 0;
};

void report(const std::string& name, const Outcome& o, const std::vector<std::string>& v) {
  Summary s = summarize(o);
  std::printf(
      "crash[%s]: jobs pushed %d, agent kills while work was outstanding %d (holding %d "
      "items), server restarts %d, finished %d, failed %d, stopped %d, not terminal %d, items "
      "re-claimed after a lease expired %d, jobs re-run after lease expiry %d (%d extra runs), "
      "agents that exited on their own %d\n",
      name.c_str(), s.jobs, s.kills, s.held_at_kills, s.server_restarts, s.finished, s.failed,
      s.stopped, s.not_terminal, s.reclaimed, s.rerun_jobs, s.extra_runs, s.agent_exits);
  for (const auto& kv : s.endings) {
    std::printf("  %d item(s) ended %s\n", kv.second, kv.first.c_str());
  }
  for (const auto& text : v) std::printf("  violation: %s\n", text.c_str());
  std::fflush(stdout);
}

void check_holds(const std::string& name, const Outcome& o) {
  auto v = verdict(o);
  report(name, o, v);
  CHECK_MESSAGE(v.empty(), v.size() << " violation(s); the first: " << (v.empty() ? "" : v[0]));
}

// The broken-agent runs: small and quick.
Options small(AgentKind agent) {
  Options o;
  o.producers = 2;
  o.jobs_per_producer = 30;  // 60 jobs, 4 at once, for about 3 s
  o.job_seconds = "0.2";
  o.agents = 2;
  o.min_kills = 3;
  o.kill_every = std::chrono::milliseconds(300);
  o.deadline = std::chrono::seconds(20);
  o.agent = agent;
  return o;
}

std::string sqlite_uri(const launch_test::TempDir& d) { return "sqlite://" + d / "launch.db"; }

}  // namespace

TEST_CASE("crash: sqlite:// — agents SIGKILLed throughout; every item ends exactly once") {
  launch_test::TempDir store("launch-crash-store");
  Run run(sqlite_uri(store), Options{});
  check_holds("sqlite", run.go());
}

TEST_CASE("crash: postgres:// — agents SIGKILLed, server restarted; every item ends once") {
  launch_test::FreshDatabase db;
  Options opt;
  opt.restart_server = [] { launch_test::restart_server(1000); };
  Run run(db.uri(), opt);
  Outcome o = run.go();
  check_holds("postgres", o);
  CHECK(o.server_restarts == 1);
}

#ifdef LAUNCH_SERVER_BINARY
// Through a launch server on PostgreSQL: producers and agents are its
// clients, agents are SIGKILLed throughout and the launch server itself is
// SIGKILLed once and started again on its port.
static void crash_through_server(const char* name, const launch_test::TestCa* ca) {
  launch_test::FreshDatabase db;
  launch_test::LaunchServer server(db.uri(), ca);
  ::setenv("LAUNCH_API_KEY", server.admin_key().c_str(), 1);
  Options opt;
  opt.restart_server = [&server] { server.restart(); };
  Run run(server.transport_uri(), opt);
  Outcome o = run.go();
  ::unsetenv("LAUNCH_API_KEY");
  check_holds(name, o);
  CHECK(o.server_restarts == 1);
}

TEST_CASE("crash: http:// — agents SIGKILLed, the launch server killed and restarted") {
  crash_through_server("http", nullptr);
}

TEST_CASE("crash: https:// — the same over TLS, with a CA made for the test") {
  launch_test::TestCa ca;
  crash_through_server("https", &ca);
}
#endif

// The harness at the broken-agent runs' size, with the real agent: nothing
// to report, so what the broken runs report comes from their agent.
TEST_CASE("crash: the small run with launch-agent holds") {
  launch_test::TempDir store("launch-crash-store");
  Run run(sqlite_uri(store), small(AgentKind::launch_agent));
  check_holds("small", run.go());
}

TEST_CASE("crash: the verdict catches jobs that all fail") {
  launch_test::TempDir store("launch-crash-store");
  Options opt = small(AgentKind::launch_agent);
  opt.job_exit_code = 1;
  Run run(sqlite_uri(store), opt);
  Outcome o = run.go();
  auto v = verdict(o);
  report("every job exits 1", o, v);
  CHECK(has(v, "no killed agent held did not finish"));
  CHECK(has(v, "more than kills x max_jobs"));
}

TEST_CASE("crash: the verdict catches an agent that fails every item") {
  launch_test::TempDir store("launch-crash-store");
  Run run(sqlite_uri(store), small(AgentKind::fails_all));
  Outcome o = run.go();
  auto v = verdict(o);
  report("agent fails all", o, v);
  CHECK(has(v, "no killed agent held did not finish"));
  CHECK(has(v, "more than kills x max_jobs"));
}

TEST_CASE("crash: the verdict catches an agent that never finishes an item") {
  launch_test::TempDir store("launch-crash-store");
  Options opt = small(AgentKind::stalls);
  opt.deadline = std::chrono::seconds(10);
  Run run(sqlite_uri(store), opt);
  Outcome o = run.go();
  auto v = verdict(o);
  report("agent never finishes", o, v);
  CHECK(has(v, "did not settle"));
  CHECK(has(v, "not in a terminal state"));
}

TEST_CASE("crash: the verdict catches an agent that exits on its own") {
  Outcome o;
  o.options = small(AgentKind::launch_agent);
  o.settled = true;
  o.agent_exits.push_back({1234, 0, "agent-0.log"});
  CHECK(has(verdict(o), "exited on its own"));
}
