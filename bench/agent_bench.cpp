// agent_bench: what the agent costs, against a launch-agent process over the
// SQLite default. Prints figures, asserts nothing.
//
//   dispatch   latency from a push in this process to the job's process
//              running (the job is /bin/date +%s%N; its own clock reading is
//              the moment it ran), one job at a time, p50/p99 over N jobs
//   idle       CPU time an idle agent uses over S seconds, and its RSS
//   throughput /bin/true jobs per second with --max-jobs -1, beside a plain
//              posix_spawn + waitpid loop of /bin/true (the physical limit)
//
// Usage: agent_bench [--agent PATH] [--jobs N] [--idle-seconds S]
//                    [--throughput-jobs N] [--dir DIR (default /tmp)]
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "launch/launch.hpp"

extern char** environ;

namespace {

using clock_type = std::chrono::steady_clock;

std::int64_t realtime_ns() {
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string self_dir() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string p(buf, static_cast<std::size_t>(n));
  return p.substr(0, p.rfind('/'));
}

void remove_tree(const std::string& path) {
  // Only ever our own mkdtemp directory; no shell.
  pid_t pid;
  std::string p = path;
  char rm[] = "/bin/rm";
  char rf[] = "-rf";
  char* argv[] = {rm, rf, &p[0], nullptr};
  if (::posix_spawn(&pid, "/bin/rm", nullptr, nullptr, argv, environ) == 0) {
    int st;
    ::waitpid(pid, &st, 0);
  }
}

pid_t start_agent(const std::string& agent, const std::string& home, const std::string& jobs) {
  std::vector<std::string> args = {agent, "-q", "bench", "-e", "bench", "-j", jobs,
                                   "-l", home + "/agent.log"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(&a[0]);
  argv.push_back(nullptr);
  ::setenv("LAUNCH_HOME", home.c_str(), 1);
  ::unsetenv("LAUNCH_QUEUE_URI");
  pid_t pid;
  if (::posix_spawn(&pid, agent.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
    std::fprintf(stderr, "agent_bench: cannot start %s\n", agent.c_str());
    std::exit(1);
  }
  return pid;
}

void stop_agent(pid_t pid) {
  ::kill(pid, SIGTERM);
  int st;
  ::waitpid(pid, &st, 0);
}

void wait_registered(launch::Transport& t) {
  while (t.list_agents().empty() ||
         t.list_agents()[0].status == launch::AgentStatus::stopped) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// Where the throwaway stores go (--dir): the file system matters, as each
// job creates a directory and two log files.
std::string g_dir = "/tmp";

// Stores are removed only when every phase is over. Deleting thousands of
// run directories between phases would slow the next phase's file creation:
// ext4 without a journal (this VM's root) skips recently freed inodes when
// it allocates, walking past each one, for up to ~5 minutes after a mass
// delete. The same holds between two runs of this bench: leave a few
// minutes between them, or use --dir on tmpfs.
std::vector<std::string> g_stores;

struct Store {
  std::string home;
  std::shared_ptr<launch::Transport> t;
  explicit Store(const char* tag) {
    std::string tmpl = g_dir + "/launch-bench-" + tag + ".XXXXXX";
    home = ::mkdtemp(&tmpl[0]);
    t = launch::open_transport("sqlite://" + home + "/launch.db");
    launch::QueueDef q;
    q.entity = "bench";
    q.name = "bench";
    t->create_queue(q);
  }
  ~Store() {
    t.reset();
    g_stores.push_back(home);
  }
};

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  std::size_t i = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

void bench_dispatch(const std::string& agent, int jobs) {
  Store s("dispatch");
  pid_t pid = start_agent(agent, s.home, "1");
  wait_registered(*s.t);
  std::vector<double> ms;
  for (int i = 0; i < jobs; ++i) {
    launch::JobSpec spec;
    spec.entry_point = {"/bin/date", "+%s%N"};
    std::int64_t t0 = realtime_ns();
    std::string id = s.t->push(launch::QueueRef{"bench", "bench"}, spec);
    std::string out = launch::run_directory(s.home, id) + "/stdout.log";
    std::string text;
    for (;;) {
      text = slurp(out);
      if (!text.empty() && text.back() == '\n') break;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    ms.push_back(static_cast<double>(std::stoll(text) - t0) / 1e6);
    while (!launch::is_terminal(s.t->get(id).state)) {
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  }
  stop_agent(pid);
  std::printf("dispatch latency (push -> job running), %d jobs: p50 %.2f ms  p99 %.2f ms  "
              "max %.2f ms\n",
              jobs, percentile(ms, 50), percentile(ms, 99), percentile(ms, 100));
}

// utime + stime of a process, in clock ticks.
long long cpu_ticks(pid_t pid) {
  std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  std::istringstream in(stat.substr(stat.rfind(')') + 2));
  std::string field;
  long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stoll(field);
    if (i == 15) stime = std::stoll(field);
  }
  return utime + stime;
}

void bench_idle(const std::string& agent, int seconds) {
  Store s("idle");
  pid_t pid = start_agent(agent, s.home, "1");
  wait_registered(*s.t);
  long long before = cpu_ticks(pid);
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  long long used = cpu_ticks(pid) - before;
  double cpu_s = static_cast<double>(used) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  std::string status = slurp("/proc/" + std::to_string(pid) + "/status");
  auto field = [&](const char* name) {
    auto p = status.find(name);
    if (p == std::string::npos) return std::string("?");
    auto e = status.find('\n', p);
    std::string v = status.substr(p + std::strlen(name), e - p - std::strlen(name));
    v.erase(0, v.find_first_not_of(" \t"));
    return v;
  };
  std::printf("idle agent over %d s: CPU %.3f s (%.3f%%)  RSS %s  peak RSS %s\n", seconds,
              cpu_s, 100.0 * cpu_s / seconds, field("VmRSS:").c_str(),
              field("VmHWM:").c_str());
  stop_agent(pid);
}

double raw_spawn_rate(int jobs) {
  char arg0[] = "/bin/true";
  char* argv[] = {arg0, nullptr};
  auto t0 = clock_type::now();
  for (int i = 0; i < jobs; ++i) {
    pid_t pid;
    if (::posix_spawn(&pid, "/bin/true", nullptr, nullptr, argv, environ) != 0) break;
    int st;
    ::waitpid(pid, &st, 0);
  }
  double s = std::chrono::duration<double>(clock_type::now() - t0).count();
  return jobs / s;
}

// Seconds until `jobs` /bin/true jobs have finished. With `backlog`, they
// are all pushed before the agent starts (the clock starts with it);
// otherwise they are pushed while it runs (the clock starts at the first).
double run_true_jobs(const std::string& agent, int jobs, bool backlog, double* agent_cpu) {
  Store s(backlog ? "backlog" : "stream");
  auto push_all = [&] {
    std::string last;
    for (int i = 0; i < jobs; ++i) {
      launch::JobSpec spec;
      spec.entry_point = {"/bin/true"};
      last = s.t->push(launch::QueueRef{"bench", "bench"}, spec);
    }
    return last;
  };
  std::string last;
  pid_t pid;
  clock_type::time_point t0;
  if (backlog) {
    last = push_all();
    t0 = clock_type::now();
    pid = start_agent(agent, s.home, "-1");
  } else {
    pid = start_agent(agent, s.home, "-1");
    wait_registered(*s.t);
    t0 = clock_type::now();
    last = push_all();
  }
  // Cheap checks while it runs (the last item), a full count at the end.
  launch::ItemFilter f;
  f.state = launch::ItemState::finished;
  for (;;) {
    if (launch::is_terminal(s.t->get(last).state) &&
        static_cast<int>(s.t->list(f).size()) >= jobs) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  double secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  *agent_cpu = static_cast<double>(cpu_ticks(pid)) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  stop_agent(pid);
  return secs;
}

void bench_throughput(const std::string& agent, int jobs) {
  double raw = raw_spawn_rate(jobs);
  std::printf("posix_spawn+waitpid loop of /bin/true: %.0f /s\n", raw);
  for (bool backlog : {true, false}) {
    double cpu = 0;
    double secs = run_true_jobs(agent, jobs, backlog, &cpu);
    double rate = jobs / secs;
    std::printf("throughput, %d /bin/true jobs %s, --max-jobs -1: %.0f jobs/s "
                "(%.0f%% of the spawn loop; agent CPU %.2f ms/job)\n",
                jobs, backlog ? "queued before the agent starts" : "pushed while it runs",
                rate, 100.0 * rate / raw, 1000.0 * cpu / jobs);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string agent = self_dir() + "/../examples/launch-agent/launch-agent";
  int jobs = 200, idle_seconds = 60, throughput_jobs = 500;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--agent") {
      agent = next();
    } else if (a == "--jobs") {
      jobs = std::stoi(next());
    } else if (a == "--idle-seconds") {
      idle_seconds = std::stoi(next());
    } else if (a == "--throughput-jobs") {
      throughput_jobs = std::stoi(next());
    } else if (a == "--dir") {
      g_dir = next();
    } else {
      std::fprintf(stderr,
                   "usage: agent_bench [--agent PATH] [--jobs N] [--idle-seconds S] "
                   "[--throughput-jobs N] [--dir DIR]\n");
      return 2;
    }
  }
  std::printf("stores and run logs under %s\n", g_dir.c_str());
  int rc = 0;
  try {
    bench_dispatch(agent, jobs);
    bench_throughput(agent, throughput_jobs);
    bench_idle(agent, idle_seconds);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "agent_bench: %s\n", e.what());
    rc = 1;
  }
  for (const auto& home : g_stores) remove_tree(home);
  return rc;
}
