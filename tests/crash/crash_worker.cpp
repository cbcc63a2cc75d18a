// The processes of the crash test, other than launch-agent itself:
//
//   launch_crash_worker push URI QUEUE N RUNS_LOG IDS_FILE
//       pushes N short local-process jobs onto QUEUE (entity/name); each job
//       appends its LAUNCH_ITEM_ID to RUNS_LOG when it runs. Writes the id
//       of every push that returned to IDS_FILE, one a line.
//   launch_crash_worker agent URI QUEUE
//       a minimal agent (claim, start, run the argv, finish; expires leases
//       every second), used when launch-agent is not built.
//
// Exits 0 on success, 1 on an error (printed on stderr), 2 on bad usage.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "launch/error.hpp"
#include "launch/transport.hpp"

extern char** environ;

namespace {

int push(launch::Transport& t, const launch::QueueRef& q, int n, const std::string& runs_log,
         const std::string& ids_file) {
  std::FILE* ids = std::fopen(ids_file.c_str(), "a");
  if (!ids) {
    std::perror(ids_file.c_str());
    return 1;
  }
  for (int i = 0; i < n; ++i) {
    launch::JobSpec spec;
    spec.name = "crash-" + std::to_string(i);
    spec.entry_point = {"/bin/sh", "-c", "echo \"$LAUNCH_ITEM_ID\" >> \"$CRASH_RUNS_LOG\""};
    spec.env["CRASH_RUNS_LOG"] = runs_log;
    std::string id = t.push(q, spec);
    std::fprintf(ids, "%s\n", id.c_str());
    std::fflush(ids);
  }
  std::fclose(ids);
  return 0;
}

int run_job(const launch::QueueItem& item) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) env.push_back(*e);
  for (const auto& kv : item.spec.env) env.push_back(kv.first + "=" + kv.second);
  env.push_back("LAUNCH_ITEM_ID=" + item.id);
  env.push_back("LAUNCH_RUN_ID=" + item.run_id);
  std::vector<char*> envp, argv;
  for (auto& s : env) envp.push_back(&s[0]);
  envp.push_back(nullptr);
  std::vector<std::string> args = item.spec.entry_point;
  args.insert(args.end(), item.spec.args.begin(), item.spec.args.end());
  for (auto& s : args) argv.push_back(&s[0]);
  argv.push_back(nullptr);
  pid_t pid;
  if (posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), envp.data()) != 0) return 127;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

int agent(launch::Transport& t, const launch::QueueRef& q) {
  std::string id = "crash-agent-" + std::to_string(::getpid());
  auto next_expiry = std::chrono::steady_clock::now();
  for (;;) {
    if (std::chrono::steady_clock::now() >= next_expiry) {
      t.expire_leases();
      next_expiry = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    }
    auto item = t.claim({q}, id);
    if (!item) {
      t.wait_for_work(std::chrono::milliseconds(500));
      continue;
    }
    t.start(item->id, id, "");
    t.finish(item->id, id, run_job(*item));
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  try {
    if (a.size() == 6 && a[0] == "push") {
      auto t = launch::open_transport(a[1]);
      return push(*t, launch::QueueRef::parse(a[2]), std::atoi(a[3].c_str()), a[4], a[5]);
    }
    if (a.size() == 3 && a[0] == "agent") {
      auto t = launch::open_transport(a[1]);
      return agent(*t, launch::QueueRef::parse(a[2]));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "launch_crash_worker %s: %s\n", a.empty() ? "" : a[0].c_str(),
                 e.what());
    return 1;
  }
  std::fprintf(stderr,
               "usage: launch_crash_worker push URI QUEUE N RUNS_LOG IDS_FILE\n"
               "       launch_crash_worker agent URI QUEUE\n");
  return 2;
}
