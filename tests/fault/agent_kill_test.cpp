// SIGKILL of agents with local jobs running: the jobs live on under their
// supervisors, and whichever agent takes their items next follows them to
// their true ends — nothing runs twice, nothing is called lost, nothing is
// left behind.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "launch/launch.hpp"
#include "support/child.hpp"
#include "support/temp_dir.hpp"

using namespace launch;
using launch_test::Child;
using launch_test::TempDir;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void touch(const std::string& path) { std::ofstream(path) << ""; }

void until(const std::function<bool()>& done, const char* what,
           std::chrono::seconds limit = std::chrono::seconds(60)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "timed out: " << what);
    ::usleep(20000);
  }
}

struct Site {
  TempDir home, work;
  std::string uri = "sqlite://" + home / "launch.db";
  std::shared_ptr<Transport> t = open_transport(uri);
  int agents = 0;

  void queue(const std::string& name, int lease_seconds = 30) {
    QueueDef q;
    q.entity = "team";
    q.name = name;
    q.resource = "local-process";
    q.lease_seconds = lease_seconds;
    t->create_queue(q);
  }
  // A job that counts its runs in runs.<tag>, waits for `gate`, exits `code`.
  std::string push(const std::string& tag, const std::string& gate, int code) {
    JobSpec s;
    s.author = "alice";
    s.entry_point = {"/bin/sh", "-c",
                     "echo ran >> " + work / ("runs." + tag) + "; while [ ! -e " + work / gate +
                         " ]; do sleep 0.05; done; exit " + std::to_string(code)};
    return t->push(QueueRef{"team", "q"}, s);
  }
  int runs(const std::string& tag) {
    std::string text = slurp(work / ("runs." + tag));
    int n = 0;
    for (char c : text) n += c == '\n';
    return n;
  }
  std::unique_ptr<Child> agent(std::vector<std::string> args) {
    std::vector<std::string> argv = {LAUNCH_BINARY_DIR "/examples/launch-agent/launch-agent",
                                     "-e", "team"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string tag = "agent" + std::to_string(++agents);
    return std::make_unique<Child>(argv,
                                   std::map<std::string, std::string>{
                                       {"LAUNCH_HOME", home.path()},
                                       {"HOME", home.path()},
                                       {"LAUNCH_QUEUE_URI", uri},
                                       {"XDG_CONFIG_HOME", ""},
                                       {"LAUNCH_ENTITY", ""},
                                       {"LAUNCH_MAX_JOBS", ""}},
                                   work / (tag + ".out"), work / (tag + ".err"));
  }
  // The pids the run directory records: supervisor and job.
  std::vector<pid_t> pids_of(const std::string& item_id) {
    std::istringstream in(slurp(run_directory(home.path(), item_id) + "/supervisor"));
    long sup = 0, job = 0;
    in >> sup >> job;
    return {static_cast<pid_t>(sup), static_cast<pid_t>(job)};
  }
  bool all(const std::vector<std::string>& ids, const std::function<bool(const QueueItem&)>& f) {
    for (const auto& id : ids) {
      if (!f(t->get(id))) return false;
    }
    return true;
  }
};

// Running, not a zombie: an orphan that ended waits for init to reap it.
bool alive(pid_t pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  auto paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

}  // namespace

TEST_CASE("fault: after SIGKILL of its agent, a job runs on and ends with its own exit code") {
  Site s;
  s.queue("q");
  // Three jobs end while no agent follows them, three after the restart.
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    ids.push_back(s.push(std::to_string(i), i < 3 ? "go.early" : "go.late", i));
  }
  auto a = s.agent({"-q", "q", "-j", "6"});
  until([&] { return s.all(ids, [](const QueueItem& i) { return i.state == ItemState::running; }); },
        "six running items");
  std::vector<std::vector<pid_t>> pids;
  for (const auto& id : ids) pids.push_back(s.pids_of(id));
  a->signal(SIGKILL);
  CHECK(a->wait() == 128 + SIGKILL);
  for (const auto& p : pids) {
    CHECK(alive(p[0]));  // the supervisor
    CHECK(alive(p[1]));  // the job
  }
  touch(s.work / "go.early");
  until([&] { return !alive(pids[0][0]) && !alive(pids[1][0]) && !alive(pids[2][0]); },
        "the early jobs to end");

  auto b = s.agent({"-q", "q", "-j", "6"});
  // It follows the three that live on; then they are let go.
  until([&] {
    std::string err = slurp(b->err_path());
    int n = 0;
    for (auto p = err.find("following its run"); p != std::string::npos;
         p = err.find("following its run", p + 1)) {
      ++n;
    }
    return n >= 3;
  }, "the restarted agent to follow its runs");
  touch(s.work / "go.late");
  until([&] { return s.all(ids, [](const QueueItem& i) { return is_terminal(i.state); }); },
        "every item to end");
  for (int i = 0; i < 6; ++i) {
    QueueItem item = s.t->get(ids[i]);
    INFO("item " << ids[i] << " job " << i);
    CHECK(item.exit_code == i);
    CHECK(item.attempt == 1);
    if (i == 0) {
      CHECK(item.state == ItemState::finished);
    } else {
      CHECK(item.state == ItemState::failed);
      REQUIRE(item.error);
      CHECK(item.error->message == "exited with code " + std::to_string(i));
    }
    CHECK(s.runs(std::to_string(i)) == 1);
  }
  b->signal(SIGTERM);
  CHECK(b->wait() == 0);
  for (const auto& p : pids) {
    CHECK_FALSE(alive(p[0]));
    CHECK_FALSE(alive(p[1]));
  }
}

TEST_CASE("fault: another agent that takes the item after its lease follows the live run") {
  Site s;
  s.queue("q", 1);
  s.queue("other");
  std::string id = s.push("x", "go", 3);
  auto a = s.agent({"-q", "q"});
  until([&] { return s.t->get(id).state == ItemState::running; }, "a running item");
  std::string first_agent = s.t->get(id).agent_id;
  std::vector<pid_t> pids = s.pids_of(id);
  a->signal(SIGKILL);
  a->wait();
  // Another id (another queue list), same host and home.
  auto b = s.agent({"-q", "q", "-q", "other"});
  until([&] {
    QueueItem i = s.t->get(id);
    return i.state == ItemState::running && i.agent_id != first_agent;
  }, "the second agent to hold the item");
  CHECK(alive(pids[1]));
  CHECK(s.runs("x") == 1);
  touch(s.work / "go");
  until([&] { return is_terminal(s.t->get(id).state); }, "the item to end");
  QueueItem item = s.t->get(id);
  CHECK(item.state == ItemState::failed);
  CHECK(item.exit_code == 3);
  CHECK(item.attempt == 2);
  CHECK(s.runs("x") == 1);
  b->signal(SIGTERM);
  CHECK(b->wait() == 0);
  CHECK_FALSE(alive(pids[0]));
  CHECK_FALSE(alive(pids[1]));
}

namespace {

// Live (not zombie) processes other than this one whose environment holds
// `marker`: what a test's agents, supervisors and jobs leave running.
std::vector<pid_t> processes_marked(const std::string& marker) {
  std::vector<pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = static_cast<pid_t>(std::stol(name));
    if (pid == ::getpid()) continue;
    std::string env = slurp("/proc/" + name + "/environ");
    if (env.find(marker) != std::string::npos && alive(pid)) out.push_back(pid);
  }
  return out;
}

}  // namespace

// The fault run: two agents with 20 s local jobs, SIGKILLed 40
// times while the jobs run. Each job takes a per-item lock directory for
// its whole life (a second copy alive at once finds it taken and says so).
TEST_CASE("fault: 40 SIGKILLs of agents with 20 s local jobs; one run each, true exit codes") {
  constexpr int kJobs = 12, kAgents = 2, kKills = 40;
  Site s;
  s.queue("q");
  std::vector<std::string> ids;
  std::vector<int> codes;
  for (int i = 0; i < kJobs; ++i) {
    int code = i % 4 == 3 ? i : 0;  // most finish; some fail with their own code
    JobSpec spec;
    spec.author = "alice";
    spec.env["FAULT_MARKER"] = s.work.path();
    std::string lock = s.work / ("live." + std::to_string(i));
    spec.entry_point = {"/bin/sh", "-c",
                        "mkdir " + lock + " || echo " + std::to_string(i) + " >> " +
                            s.work / "twice" + "; echo ran >> " +
                            s.work / ("runs." + std::to_string(i)) + "; sleep 20; rmdir " + lock +
                            "; exit " + std::to_string(code)};
    ids.push_back(s.t->push(QueueRef{"team", "q"}, spec));
    codes.push_back(code);
  }
  std::vector<std::unique_ptr<Child>> agents;
  for (int a = 0; a < kAgents; ++a) agents.push_back(s.agent({"-q", "q", "-j", "6"}));
  until([&] { return s.all(ids, [](const QueueItem& i) { return i.state == ItemState::running; }); },
        "every item running");
  // The scan that proves nothing is left at the end sees the jobs now.
  CHECK(processes_marked(s.work.path()).size() >= static_cast<std::size_t>(kJobs));
  CHECK_FALSE(processes_marked(s.home.path()).empty());  // agents, supervisors
  // Kills only while the jobs run; one agent at a time, its successor
  // started at once (same home, so it may take the killed one's id).
  int kills = 0;
  for (int k = 0; k < kKills; ++k) {
    if (s.all(ids, [](const QueueItem& i) { return is_terminal(i.state); })) break;
    auto& victim = agents[static_cast<std::size_t>(k % kAgents)];
    victim->signal(SIGKILL);
    CHECK(victim->wait() == 128 + SIGKILL);
    ++kills;
    victim = s.agent({"-q", "q", "-j", "6"});
    // The successor is up (registered) before the next kill.
    pid_t pid = victim->pid();
    until([&] {
      for (const auto& r : s.t->list_agents()) {
        if (r.pid == pid) return true;
      }
      return false;
    }, "the new agent to register");
    ::usleep(200000);  // paces the kills: 40 of them within the jobs. 20 s
  }
  CHECK(kills == kKills);
  until([&] { return s.all(ids, [](const QueueItem& i) { return is_terminal(i.state); }); },
        "every item to end", std::chrono::seconds(120));
  for (int i = 0; i < kJobs; ++i) {
    QueueItem item = s.t->get(ids[static_cast<std::size_t>(i)]);
    INFO("item " << item.id << " job " << i);
    CHECK(item.state == (codes[i] == 0 ? ItemState::finished : ItemState::failed));
    CHECK(item.exit_code == codes[i]);
    if (codes[i] != 0) {
      REQUIRE(item.error);
      CHECK(item.error->message == "exited with code " + std::to_string(codes[i]));
    }
    CHECK(s.runs(std::to_string(i)) == 1);
  }
  CHECK(slurp(s.work / "twice").empty());
  for (auto& a : agents) {
    a->signal(SIGTERM);
    CHECK(a->wait() == 0);
  }
  CHECK(processes_marked(s.work.path()).empty());
  CHECK(processes_marked(s.home.path()).empty());
}
