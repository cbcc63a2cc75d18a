// A producer or consumer run as its own OS process by the multi-process
// tests:
//
//   launch_queue_worker push URI QUEUE N PREFIX
//       pushes N jobs named PREFIX-0 .. PREFIX-(N-1) onto QUEUE (entity/name)
//   launch_queue_worker claim URI QUEUE OUT DONE MODE
//       claims, starts and ends jobs until the file DONE exists and nothing is
//       left to claim; writes the ids it claimed to OUT, one a line. MODE
//       `all` finishes every job with exit code 0; `parity` gives jobs whose
//       number is odd exit code 1 (so they end failed)
//   launch_queue_worker open URI
//       opens the transport (creating or migrating its store) and exits
//
// Exits 0 on success, 1 on an error (printed on stderr), 2 on bad usage.
// Every run ends within 120 s: an alarm kills a worker that hangs.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

#include "launch/transport.hpp"

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: launch_queue_worker push URI QUEUE N PREFIX\n"
               "       launch_queue_worker claim URI QUEUE OUT DONE all|parity\n"
               "       launch_queue_worker open URI\n");
  return 2;
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

int push(launch::Transport& t, const launch::QueueRef& queue, int n, const std::string& prefix) {
  for (int i = 0; i < n; ++i) {
    launch::JobSpec spec;
    spec.name = prefix + "-" + std::to_string(i);
    spec.source.kind = launch::JobSource::Kind::image;
    spec.source.image = "busybox:latest";
    spec.entry_point = {"true"};
    t.push(queue, spec);
  }
  return 0;
}

int claim(launch::Transport& t, const launch::QueueRef& queue, const std::string& out,
          const std::string& done, bool parity) {
  std::string agent = "worker-" + std::to_string(::getpid());
  std::vector<std::string> ids;
  for (;;) {
    // Look for DONE before claiming: once the producers are done, an empty
    // claim means the queue is drained.
    bool producers_done = file_exists(done);
    auto item = t.claim({queue}, agent);
    if (item) {
      ids.push_back(item->id);
      t.start(item->id, agent, item->run_id);
      int code = 0;
      if (parity) {
        const std::string& name = item->spec.name;
        code = (name.back() - '0') % 2;
      }
      t.finish(item->id, agent, code);
      continue;
    }
    if (producers_done) break;
    t.wait_for_work(std::chrono::milliseconds(100));
    t.drain_notify();
  }
  std::ofstream f(out);
  for (const auto& id : ids) f << id << '\n';
  f.close();
  return f ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  ::alarm(120);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() < 2) return usage();
  try {
    auto t = launch::open_transport(args[1]);
    if (args[0] == "open" && args.size() == 2) return 0;
    if (args[0] == "push" && args.size() == 5) {
      return push(*t, launch::QueueRef::parse(args[2]), std::stoi(args[3]), args[4]);
    }
    if (args[0] == "claim" && args.size() == 6 && (args[5] == "all" || args[5] == "parity")) {
      return claim(*t, launch::QueueRef::parse(args[2]), args[3], args[4], args[5] == "parity");
    }
    return usage();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "launch_queue_worker %s: %s\n", args[0].c_str(), e.what());
    return 1;
  }
}
