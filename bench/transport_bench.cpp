// Transport throughput and dispatch latency, for any transport URIs given:
//
//   transport_bench [--items N] [--samples N] [--rounds N] URI...
//   e.g. transport_bench sqlite:///tmp/bench.db postgres://launch@127.0.0.1:55432/launch
//
// For each URI, on a queue of its own (deleted afterwards):
//   push/s                   one producer pushing N items;
//   cycles/s, 1 and 4 agents agent processes (fork, each with its own
//                            transport) running claim -> start ->
//                            finish_and_claim -> start -> ... as an agent
//                            does, until N items are done; each measured --rounds
//                            times (default 5) on a fresh queue: the median,
//                            then the lowest and highest round;
//   dispatch latency         an agent process blocked in wait_for_work();
//                            the time from just before push() returns to
//                            just after the agent's claim() returns.
// Prints figures; asserts nothing.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <string>
#include <vector>

#include "launch/error.hpp"
#include "launch/transport.hpp"

using namespace launch;

namespace {

double now_s() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

JobSpec job(const std::string& name) {
  JobSpec s;
  s.name = name;
  s.entry_point = {"/bin/true"};
  return s;
}

QueueRef make_queue(Transport& t, const std::string& tag) {
  QueueDef q;
  q.entity = "bench";
  q.name = tag + "-" + std::to_string(::getpid());
  t.create_queue(q);
  return q.ref();
}

int wait_all(const std::vector<pid_t>& kids) {
  int failed = 0;
  for (pid_t pid : kids) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
  }
  return failed;
}

double bench_push(Transport& t, const QueueRef& q, int n) {
  double t0 = now_s();
  for (int i = 0; i < n; ++i) t.push(q, job("push"));
  return n / (now_s() - t0);
}

// N items pushed beforehand; `agents` processes claim, start and finish
// (finishing one item claims the next) until the queue is empty. Returns cycles per second.
double bench_cycles(const std::string& uri, Transport& t, int agents, int n) {
  QueueRef q = make_queue(t, "cycle" + std::to_string(agents));
  for (int i = 0; i < n; ++i) t.push(q, job("cycle"));
  int go[2];
  if (::pipe(go) != 0) return 0;
  std::vector<pid_t> kids;
  for (int a = 0; a < agents; ++a) {
    pid_t pid = fork();
    if (pid == 0) {
      ::close(go[1]);
      int code = 0;
      try {
        auto mine = open_transport(uri);
        std::string agent = "bench-" + std::to_string(a);
        char c;
        if (::read(go[0], &c, 1) < 0) _exit(1);  // start together
        // As an agent does: the end of one job claims the next.
        auto it = mine->claim({q}, agent);
        while (it) {
          mine->start(it->id, agent, "");
          it = mine->finish_and_claim(it->id, agent, 0, {q}).next;
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "agent %d: %s\n", a, e.what());
        code = 1;
      }
      _exit(code);
    }
    kids.push_back(pid);
  }
  ::close(go[0]);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // let them connect
  double t0 = now_s();
  ::close(go[1]);
  int failed = wait_all(kids);
  double rate = n / (now_s() - t0);
  if (failed) std::fprintf(stderr, "%d agent(s) failed\n", failed);
  t.delete_queue(q, QueueDelete::with_pending);
  return rate;
}

struct Latency {
  double p50 = 0, p95 = 0, p99 = 0;
};

Latency bench_latency(const std::string& uri, Transport& t, int samples) {
  QueueRef q = make_queue(t, "latency");
  int out[2];
  if (::pipe(out) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    ::close(out[0]);
    try {
      auto mine = open_transport(uri);
      mine->notify_fd();  // listening before the first push
      if (::write(out[1], "r", 1) != 1) _exit(1);
      for (int got = 0; got < samples;) {
        auto it = mine->claim({q}, "latency");
        if (!it) {
          mine->wait_for_work(std::chrono::milliseconds(1000));
          continue;
        }
        double at = now_s();
        if (::write(out[1], &at, sizeof at) != sizeof at) _exit(1);
        mine->start(it->id, "latency", "");
        mine->finish(it->id, "latency", 0);
        ++got;
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "latency agent: %s\n", e.what());
      _exit(1);
    }
    _exit(0);
  }
  ::close(out[1]);
  char ready;
  if (::read(out[0], &ready, 1) != 1) return {};
  std::vector<double> ms;
  for (int i = 0; i < samples; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the agent is asleep again
    double pushed = now_s();
    t.push(q, job("latency"));
    double claimed;
    if (::read(out[0], &claimed, sizeof claimed) != sizeof claimed) break;
    ms.push_back((claimed - pushed) * 1000);
  }
  ::close(out[0]);
  wait_all({pid});
  t.delete_queue(q, QueueDelete::with_pending);
  std::sort(ms.begin(), ms.end());
  Latency l;
  if (ms.empty()) return l;
  auto at = [&](double f) { return ms[std::min(ms.size() - 1, static_cast<std::size_t>(f * ms.size()))]; };
  l.p50 = at(0.50);
  l.p95 = at(0.95);
  l.p99 = at(0.99);
  return l;
}

// `rounds` runs of bench_cycles: "median (min-max)".
std::string cycles_figure(const std::string& uri, Transport& t, int agents, int n, int rounds) {
  std::vector<double> r;
  for (int i = 0; i < rounds; ++i) r.push_back(bench_cycles(uri, t, agents, n));
  std::sort(r.begin(), r.end());
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.0f (%.0f-%.0f)", r[r.size() / 2], r.front(), r.back());
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  int items = 5000, samples = 200, rounds = 5;
  std::vector<std::string> uris;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--items" && i + 1 < argc) {
      items = std::atoi(argv[++i]);
    } else if (a == "--samples" && i + 1 < argc) {
      samples = std::atoi(argv[++i]);
    } else if (a == "--rounds" && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else {
      uris.push_back(a);
    }
  }
  if (uris.empty()) {
    std::fprintf(stderr, "usage: transport_bench [--items N] [--samples N] [--rounds N] URI...\n");
    return 2;
  }
  std::printf("%-10s %8s %20s %20s %8s %8s %8s\n", "transport", "push/s", "cycles/s 1ag",
              "cycles/s 4ag", "p50 ms", "p95 ms", "p99 ms");
  for (const auto& uri : uris) {
    try {
      auto t = open_transport(uri);
      QueueRef q = make_queue(*t, "push");
      double push = bench_push(*t, q, items);
      t->delete_queue(q, QueueDelete::with_pending);
      std::string one = cycles_figure(uri, *t, 1, items, rounds);
      std::string four = cycles_figure(uri, *t, 4, items, rounds);
      Latency l = bench_latency(uri, *t, samples);
      std::string scheme = uri.substr(0, uri.find("://"));
      std::printf("%-10s %8.0f %20s %20s %8.2f %8.2f %8.2f\n", scheme.c_str(), push, one.c_str(),
                  four.c_str(), l.p50, l.p95, l.p99);
      std::fflush(stdout);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: %s\n", uri.c_str(), e.what());
      return 1;
    }
  }
  return 0;
}
