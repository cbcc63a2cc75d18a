// The processes of the crash test, other than launch-agent itself:
//
//   launch_crash_worker push URI QUEUE N RUNS_LOG IDS_FILE [EXIT_CODE [SECONDS]]
//       pushes N short local-process jobs onto QUEUE (entity/name); each job
//       appends its LAUNCH_ITEM_ID to RUNS_LOG when it runs, sleeps SECONDS
//       (a decimal; default none) and exits EXIT_CODE (default 0). Writes the id of every push that returned to
//       IDS_FILE, one a line.
//   launch_crash_worker broken-agent fail|stall URI QUEUE
//       a deliberately broken agent, only for proving that the crash test's
//       verdict catches one: `fail` fails every item it claims without
//       running it; `stall` starts every item it claims and never finishes
//       it (it keeps the leases alive). It registers with its pid so the
//       harness can name the items it held when it was killed.
//
// Exits 0 on success, 1 on an error (printed on stderr), 2 on bad usage.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "launch/error.hpp"
#include "launch/transport.hpp"

namespace {

int push(launch::Transport& t, const launch::QueueRef& q, int n, const std::string& runs_log,
         const std::string& ids_file, int exit_code, const std::string& seconds) {
  std::FILE* ids = std::fopen(ids_file.c_str(), "a");
  if (!ids) {
    std::perror(ids_file.c_str());
    return 1;
  }
  for (int i = 0; i < n; ++i) {
    launch::JobSpec spec;
    spec.name = "crash-" + std::to_string(i);
    spec.entry_point = {"/bin/sh", "-c",
                        "echo \"$LAUNCH_ITEM_ID\" >> \"$CRASH_RUNS_LOG\"; " +
                            (seconds.empty() ? "" : "sleep " + seconds + "; ") + "exit " +
                            std::to_string(exit_code)};
    spec.env["CRASH_RUNS_LOG"] = runs_log;
    std::string id = t.push(q, spec);
    std::fprintf(ids, "%s\n", id.c_str());
    std::fflush(ids);
  }
  std::fclose(ids);
  return 0;
}

int broken_agent(launch::Transport& t, const launch::QueueRef& q, bool stall) {
  launch::AgentRecord me;
  me.id = "broken-agent-" + std::to_string(::getpid());
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  me.host = host;
  me.pid = ::getpid();
  me.entity = q.entity;
  me.queues = {q.entity + "/" + q.name};
  me.max_jobs = 2;
  me.started_at = launch::now_ms();
  me.last_seen = me.started_at;
  t.upsert_agent(me);
  std::vector<std::string> held;
  for (;;) {
    t.heartbeat(me.id, held);
    if (stall && held.size() >= 2) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      continue;
    }
    auto item = t.claim({q}, me.id);
    if (!item) {
      t.wait_for_work(std::chrono::milliseconds(200));
      continue;
    }
    t.start(item->id, me.id, "");
    if (stall) {
      held.push_back(item->id);
    } else {
      t.finish(item->id, me.id, 1);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  try {
    if (a.size() >= 6 && a.size() <= 8 && a[0] == "push") {
      auto t = launch::open_transport(a[1]);
      return push(*t, launch::QueueRef::parse(a[2]), std::atoi(a[3].c_str()), a[4], a[5],
                  a.size() >= 7 ? std::atoi(a[6].c_str()) : 0, a.size() == 8 ? a[7] : "");
    }
    if (a.size() == 4 && a[0] == "broken-agent" && (a[1] == "fail" || a[1] == "stall")) {
      auto t = launch::open_transport(a[2]);
      return broken_agent(*t, launch::QueueRef::parse(a[3]), a[1] == "stall");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "launch_crash_worker %s: %s\n", a.empty() ? "" : a[0].c_str(),
                 e.what());
    return 1;
  }
  std::fprintf(stderr,
               "usage: launch_crash_worker push URI QUEUE N RUNS_LOG IDS_FILE [EXIT_CODE [SECONDS]]\n"
               "       launch_crash_worker broken-agent fail|stall URI QUEUE\n");
  return 2;
}
