// Queue throughput and claim latency of the memory:// and sqlite:// transports.
//
//   queue_bench [--items N] [--procs P] [--dir DIR] [--deep D]
//
// For each transport it prints:
//   push/s                 one producer pushing N jobs
//   claim+complete/s       one consumer claiming, starting and finishing them
//   push/s xP, claim+complete/s xP
//                          the same split over P processes (sqlite://, each
//                          with its own connection; fork()ed) or P threads
//                          sharing one transport (memory://, in-process only)
//   claim p50/p99 @1k, @D  latency of one claim with 1,000 and D (default
//                          100,000) jobs pending
// It prints figures and asserts nothing.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "launch/transport.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// CPU seconds (user + system) used so far by this process and by its
// reaped children: on a machine shared with other work, ops per CPU-second
// says what one core would do, when wall-clock rates say little.
double cpu_seconds() {
  double total = 0;
  for (int who : {RUSAGE_SELF, RUSAGE_CHILDREN}) {
    struct rusage ru;
    ::getrusage(who, &ru);
    total += static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
             static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  }
  return total;
}

// A rate: per wall-clock second and per CPU second.
struct Rate {
  Clock::time_point wall0 = Clock::now();
  double cpu0 = cpu_seconds();
  void print(const char* what, double ops, const std::string& note = "") const {
    double wall = seconds_since(wall0);
    double cpu = cpu_seconds() - cpu0;
    std::printf("  %-30s %9.0f /s wall  %9.0f /s per CPU-second%s%s\n", what, ops / wall,
                cpu > 0 ? ops / cpu : 0.0, note.empty() ? "" : "  ", note.c_str());
  }
};

launch::JobSpec job(int i) {
  launch::JobSpec spec;
  spec.name = "bench-" + std::to_string(i);
  spec.source.kind = launch::JobSource::Kind::image;
  spec.source.image = "busybox:latest";
  spec.entry_point = {"true"};
  return spec;
}

launch::QueueRef make_queue(launch::Transport& t, const std::string& name) {
  launch::QueueDef q;
  q.entity = "bench";
  q.name = name;
  t.create_queue(q);
  return q.ref();
}

void push_n(launch::Transport& t, const launch::QueueRef& q, int n, int base) {
  for (int i = 0; i < n; ++i) t.push(q, job(base + i));
}

// Claims, starts and finishes until the queue is empty; returns how many.
int drain(launch::Transport& t, const launch::QueueRef& q, const std::string& agent) {
  int n = 0;
  while (auto item = t.claim({q}, agent)) {
    t.start(item->id, agent, "");
    t.finish(item->id, agent, 0);
    ++n;
  }
  return n;
}

// Runs fn(i) in P workers (forked processes, or threads when `threads`)
// until all are done.
void in_parallel(int workers, bool threads, const std::function<void(int)>& fn) {
  if (threads) {
    std::vector<std::thread> pool;
    for (int i = 0; i < workers; ++i) pool.emplace_back(fn, i);
    for (auto& th : pool) th.join();
    return;
  }
  std::vector<pid_t> pids;
  for (int i = 0; i < workers; ++i) {
    pid_t pid = ::fork();
    if (pid == 0) {
      int rc = 0;
      try {
        fn(i);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "worker %d: %s\n", i, e.what());
        rc = 1;
      }
      std::_Exit(rc);  // never run the parent's destructors here
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) ::waitpid(pid, nullptr, 0);
}

struct Latency {
  double p50_us = 0;
  double p99_us = 0;
};

// With `pending` jobs waiting, times `samples` claims (each claimed job is
// then finished, outside the timing).
Latency claim_latency(launch::Transport& t, const std::string& name, int pending, int samples) {
  launch::QueueRef q = make_queue(t, name);
  push_n(t, q, pending + samples, 0);
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(samples));
  for (int i = 0; i < samples; ++i) {
    auto t0 = Clock::now();
    auto item = t.claim({q}, "lat");
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    if (!item) break;
    t.start(item->id, "lat", "");
    t.finish(item->id, "lat", 0);
  }
  std::sort(us.begin(), us.end());
  Latency l;
  l.p50_us = us[us.size() / 2];
  l.p99_us = us[us.size() * 99 / 100];
  return l;
}

void bench(const std::string& uri, bool cross_process, int items, int procs, int deep) {
  std::printf("%s\n", uri.c_str());
  auto t = launch::open_transport(uri);

  launch::QueueRef q1 = make_queue(*t, "single");
  Rate push_rate;
  push_n(*t, q1, items, 0);
  push_rate.print("push", items);
  Rate claim_rate;
  int done = drain(*t, q1, "solo");
  claim_rate.print("claim+start+finish", done);

  // In parallel: a fork()ed worker opens its own transport; threads share t.
  launch::QueueRef q2 = make_queue(*t, "parallel");
  bool threads = !cross_process;
  auto handle = [&]() { return threads ? t : launch::open_transport(uri); };
  int per = items / procs;
  std::string how = std::to_string(procs) + (threads ? " threads" : " processes");
  Rate ppush_rate;
  in_parallel(procs, threads, [&](int i) { push_n(*handle(), q2, per, i * per); });
  ppush_rate.print("push, parallel", per * procs, how);
  Rate pclaim_rate;
  in_parallel(procs, threads, [&](int i) { drain(*handle(), q2, "agent-" + std::to_string(i)); });
  auto finished = t->list({q2, launch::ItemState::finished, "", 0}).size();
  pclaim_rate.print("claim+start+finish, parallel", per * procs,
                    how + ", " + std::to_string(finished) + " finished");

  int samples = 1000;
  Latency shallow = claim_latency(*t, "shallow", 1000, samples);
  Latency deep_l = claim_latency(*t, "deep", deep, samples);
  std::printf("  %-30s p50 %7.1f us  p99 %7.1f us\n", "claim, 1000 pending", shallow.p50_us,
              shallow.p99_us);
  std::printf("  %-30s p50 %7.1f us  p99 %7.1f us\n",
              ("claim, " + std::to_string(deep) + " pending").c_str(), deep_l.p50_us,
              deep_l.p99_us);
}

}  // namespace

int main(int argc, char** argv) {
  int items = 20000;
  int procs = 2;
  int deep = 100000;
  std::string dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--items") items = std::atoi(argv[i + 1]);
    else if (flag == "--procs") procs = std::atoi(argv[i + 1]);
    else if (flag == "--deep") deep = std::atoi(argv[i + 1]);
    else if (flag == "--dir") dir = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: queue_bench [--items N] [--procs P] [--deep D] [--dir DIR]\n");
      return 2;
    }
  }
  if (items <= 0 || procs <= 0 || deep <= 0) {
    std::fprintf(stderr, "queue_bench: --items, --procs and --deep must be positive\n");
    return 2;
  }
  bool own_dir = dir.empty();
  if (own_dir) {
    char tmpl[] = "/tmp/launch-bench-XXXXXX";
    if (!::mkdtemp(tmpl)) {
      std::perror("mkdtemp");
      return 1;
    }
    dir = tmpl;
  }
  std::printf("queue_bench: %d jobs, %d workers, %u hardware threads\n", items, procs,
              std::thread::hardware_concurrency());
  int rc = 0;
  try {
    bench("memory://", false, items, procs, deep);
    bench("sqlite://" + dir + "/bench.db", true, items, procs, deep);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "queue_bench: %s\n", e.what());
    rc = 1;
  }
  if (own_dir) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  return rc;
}
