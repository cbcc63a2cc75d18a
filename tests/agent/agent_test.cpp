// The agent end to end over the memory transport, with real processes.
#include <dirent.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <map>
#include <set>

#include "helpers.hpp"
#include "support/forwarding_transport.hpp"
#include "launch/launch.hpp"

using namespace launch;
using launch_test::TempDir;
using launch_test::slurp;
using std::chrono::milliseconds;

namespace {

struct Harness {
  TempDir home;
  std::shared_ptr<Transport> t = open_transport("memory://");
  std::vector<JobEvent> events;
  std::unique_ptr<Agent> agent;

  QueueDef make_queue(const std::string& name, const std::string& config = "{}",
                      bool prioritize = false) {
    QueueDef q;
    q.entity = "team";
    q.name = name;
    q.resource = "local-process";
    q.config = config;
    q.prioritization = prioritize;
    t->create_queue(q);
    return q;
  }

  Agent& start(AgentConfig c = {}) {
    c.entity = "team";
    c.launch_home = home.path();
    if (c.queues.empty()) c.queues = {"q"};
    if (c.gpus < 0) c.gpus = 0;
    c.stopped_run_timeout = 5;
    agent = std::make_unique<Agent>(c, t);
    agent->on_event([this](const JobEvent& e) { events.push_back(e); });
    return *agent;
  }

  std::string push(std::vector<std::string> argv, const std::string& queue = "q") {
    JobSpec s;
    s.name = "job";
    s.entry_point = std::move(argv);
    s.author = "alice";
    return t->push(QueueRef{"team", queue}, s);
  }

  std::string push_spec(JobSpec s, const std::string& queue = "q") {
    if (s.author.empty()) s.author = "alice";
    return t->push(QueueRef{"team", queue}, s);
  }

  void step() { agent->step(milliseconds(50)); }

  QueueItem wait_state(const std::string& id, ItemState state) {
    launch_test::until([&] { return t->get(id).state == state; }, [&] { step(); });
    return t->get(id);
  }

  QueueItem wait_end(const std::string& id) {
    launch_test::until([&] { return is_terminal(t->get(id).state); }, [&] { step(); });
    return t->get(id);
  }

  std::string log_of(const std::string& id, const std::string& file = "stdout.log") {
    return slurp(home / ("runs/" + id + "/" + file));
  }
};

std::vector<std::string> sh(const std::string& script) { return {"/bin/sh", "-c", script}; }

}  // namespace

TEST_CASE("agent: exit codes end items finished or failed with stage run") {
  Harness h;
  h.make_queue("q");
  h.start(AgentConfig{});
  std::string ok = h.push({"/bin/true"});
  std::string bad = h.push(sh("echo failing >&2; exit 3"));
  std::string killed = h.push(sh("kill -9 $$"));

  QueueItem i = h.wait_end(ok);
  CHECK(i.state == ItemState::finished);
  CHECK(i.exit_code == 0);
  i = h.wait_end(bad);
  CHECK(i.state == ItemState::failed);
  CHECK(i.exit_code == 3);
  REQUIRE(i.error);
  CHECK(i.error->stage == ErrorStage::run);
  CHECK(i.error->message == "exited with code 3");
  CHECK(h.log_of(bad, "stderr.log") == "failing\n");
  i = h.wait_end(killed);
  CHECK(i.state == ItemState::failed);
  REQUIRE(i.error);
  CHECK(i.error->message.find("killed by signal 9") != std::string::npos);

  // Every transition was reported, in order, for one item.
  std::vector<ItemState> seen;
  for (const auto& e : h.events) {
    if (e.item_id == ok) seen.push_back(e.state);
  }
  CHECK(seen == std::vector<ItemState>{ItemState::claimed, ItemState::running,
                                       ItemState::finished});
}

TEST_CASE("agent: args, env, run config, template values and macros reach the process") {
  Harness h;
  QueueDef q;
  q.entity = "team";
  q.name = "q";
  q.config = R"({"env": {"GREETING": "{{greeting}}", "RUN": "run-${run_id}",
                         "WHO": "${author}"}})";
  TemplateVariable var;
  var.type = VarType::string;
  var.default_value = "hi";
  q.template_variables["greeting"] = var;
  h.t->create_queue(q);
  TempDir work;
  h.start(AgentConfig{});

  JobSpec s;
  s.name = "env-job";
  s.entry_point = sh("echo \"$GREETING|$RUN|$WHO|$LAUNCH_RUN_ID|$LAUNCH_QUEUE|$LAUNCH_ENTITY|"
                     "$LAUNCH_AUTHOR|$LAUNCH_RESUME_COUNT|$LAUNCH_CONFIG|$MINE|$1|$(pwd)\"");
  s.args = {"sh", "arg one"};
  s.env = {{"MINE", "mine"}};
  s.run_config = R"({"lr":0.1})";
  s.template_values = {{"greeting", "hello"}};
  s.resource_args = R"({"working_dir": ")" + work.path() + R"("})";
  std::string id = h.push_spec(s);
  QueueItem item = h.wait_end(id);
  REQUIRE(item.state == ItemState::finished);
  CHECK(h.log_of(id) == "hello|run-" + item.run_id + "|alice|" + item.run_id +
                            "|team/q|team|alice|0|{\"lr\":0.1}|mine|arg one|" + work.path() +
                            "\n");

  // The default applies when the job gives no value.
  JobSpec d;
  d.entry_point = sh("echo \"$GREETING\"");
  std::string id2 = h.push_spec(d);
  REQUIRE(h.wait_end(id2).state == ItemState::finished);
  CHECK(h.log_of(id2) == "hi\n");
}

TEST_CASE("agent: never runs more than max_jobs at once, as the jobs see it") {
  Harness h;
  h.make_queue("q");
  TempDir d;
  AgentConfig c;
  c.max_jobs = 2;
  h.start(c);
  // Each job marks itself running, counts the running marks, and unmarks.
  std::string script = "touch " + d.path() + "/run.$$; ls " + d.path() +
                       " | grep -c '^run\\.' > " + d.path() + "/seen.$$; sleep 0.3; rm " +
                       d.path() + "/run.$$";
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(h.push(sh(script)));
  int most = 0;
  launch_test::until(
      [&] {
        most = std::max(most, h.agent->running_jobs());
        return std::all_of(ids.begin(), ids.end(),
                           [&](const std::string& id) { return is_terminal(h.t->get(id).state); });
      },
      [&] { h.step(); });
  CHECK(most <= 2);
  for (const auto& id : ids) CHECK(h.t->get(id).state == ItemState::finished);
  std::vector<std::string> seen_files;
  if (DIR* dir = ::opendir(d.path().c_str())) {
    while (struct dirent* e = ::readdir(dir)) {
      std::string n = e->d_name;
      if (n.rfind("seen.", 0) == 0) seen_files.push_back(n);
    }
    ::closedir(dir);
  }
  CHECK(seen_files.size() == 6);
  for (const auto& f : seen_files) {
    int n = std::stoi(slurp(d / f));
    CHECK(n >= 1);
    CHECK(n <= 2);
  }
}

namespace {

// Counts claims and finish_and_claim calls.
class CountingTransport final : public launch_test::ForwardingTransport {
 public:
  using ForwardingTransport::ForwardingTransport;
  int claims = 0, refills = 0, refilled = 0;

  std::optional<QueueItem> claim(const std::vector<QueueRef>& q, const std::string& a) override {
    ++claims;
    return t_->claim(q, a);
  }
  FinishAndClaim finish_and_claim(const std::string& i, const std::string& a, int code,
                                  const std::vector<QueueRef>& q) override {
    ++refills;
    FinishAndClaim r = t_->finish_and_claim(i, a, code, q);
    if (r.next) ++refilled;
    return r;
  }
};

}  // namespace

TEST_CASE("agent: a finished run's slot is refilled in the same transport call") {
  Harness h;
  auto counting = std::make_shared<CountingTransport>(h.t);
  h.t = counting;
  h.make_queue("q");
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(h.push({"/bin/true"}));
  AgentConfig c;
  c.max_jobs = 1;
  h.start(c);
  for (const auto& id : ids) CHECK(h.wait_end(id).state == ItemState::finished);
  // Items 2-4 came with the finish of the one before; the last finish found
  // nothing, and only the first item needed a claim of its own.
  CHECK(counting->refilled == 3);
  CHECK(counting->refills == 4);
  CHECK(counting->claims >= 1);
  std::vector<std::string> claimed;
  for (const auto& e : h.events) {
    if (e.state == ItemState::claimed) claimed.push_back(e.item_id);
  }
  CHECK(claimed == ids);
}

TEST_CASE("agent: higher priority runs first, FIFO within a priority") {
  Harness h;
  h.make_queue("q", "{}", true);
  TempDir d;
  std::string order = d / "order";
  auto job = [&](const std::string& name, Priority p) {
    JobSpec s;
    s.name = name;
    s.entry_point = sh("echo " + name + " >> " + order);
    s.priority = p;
    return h.push_spec(s);
  };
  std::vector<std::string> ids = {job("low", Priority::low), job("medium1", Priority::medium),
                                  job("critical", Priority::critical),
                                  job("medium2", Priority::medium), job("high", Priority::high)};
  h.start(AgentConfig{});  // max_jobs 1: one at a time
  for (const auto& id : ids) h.wait_end(id);
  CHECK(launch_test::lines_of(slurp(order)) ==
        std::vector<std::string>{"critical", "high", "medium1", "medium2", "low"});
}

TEST_CASE("agent: cancel of a running job stops its process group and the item") {
  Harness h;
  h.make_queue("q");
  TempDir d;
  h.start(AgentConfig{});
  h.step();  // the agent is up and idle when the job arrives
  std::string id = h.push(sh("sleep 60 & echo $$ > " + (d / "pid") + "; wait"));
  h.wait_state(id, ItemState::running);
  launch_test::until([&] { return !slurp(d / "pid").empty(); }, [&] { h.step(); });
  pid_t pgid = static_cast<pid_t>(std::stol(slurp(d / "pid")));
  REQUIRE(::kill(-pgid, 0) == 0);
  auto cancelled_at = std::chrono::steady_clock::now();
  h.t->cancel(id);
  QueueItem item = h.wait_end(id);
  CHECK(item.state == ItemState::stopped);
  // The agent heartbeats every second while it holds an item, from its
  // first claim on, so the cancel reaches it at that pace, not at the idle
  // agent's 10 s one. (A bound on the schedule, far above the 1 s pace.)
  CHECK(std::chrono::steady_clock::now() - cancelled_at < std::chrono::seconds(5));
  CHECK(::kill(-pgid, 0) == -1);
  CHECK(errno == ESRCH);
  bool saw_stopping = std::any_of(h.events.begin(), h.events.end(), [&](const JobEvent& e) {
    return e.item_id == id && e.state == ItemState::stopping;
  });
  CHECK(saw_stopping);
}

TEST_CASE("agent: timeout_seconds fails the job with the reason") {
  Harness h;
  h.make_queue("q", R"({"timeout_seconds": 1})");
  h.start(AgentConfig{});
  std::string id = h.push({"/bin/sleep", "60"});
  QueueItem item = h.wait_end(id);
  CHECK(item.state == ItemState::failed);
  REQUIRE(item.error);
  CHECK(item.error->stage == ErrorStage::run);
  CHECK(item.error->message == "timed out after 1s");
}

TEST_CASE("agent: queues are polled in turn (round robin), also when a finish claims the next") {
  // a holds 3 items, b 1, c 2, pushed a's first: one queue's backlog must
  // not starve the others, whether the agent claims many at once (-1) or
  // refills one slot as each run finishes (1, finish_and_claim).
  for (int max_jobs : {-1, 1}) {
    CAPTURE(max_jobs);
    Harness h;
    for (const char* q : {"a", "b", "c"}) h.make_queue(q);
    std::map<std::string, std::string> queue_of;
    for (const auto& [queue, count] : {std::pair{"a", 3}, {"b", 1}, {"c", 2}}) {
      for (int i = 0; i < count; ++i) queue_of[h.push({"/bin/true"}, queue)] = queue;
    }
    AgentConfig c;
    c.queues = {"a", "b", "c"};
    c.max_jobs = max_jobs;
    h.start(c);
    for (const auto& kv : queue_of) h.wait_end(kv.first);
    std::string order;
    for (const auto& e : h.events) {
      if (e.state == ItemState::running) order += queue_of.at(e.item_id);
    }
    CHECK(order == "abcaca");
    for (const auto& kv : queue_of) CHECK(h.t->get(kv.first).state == ItemState::finished);
  }
}

TEST_CASE("agent: resolve and submit failures end the item at stage agent") {
  Harness h;
  QueueDef q;
  q.entity = "team";
  q.name = "q";
  q.resource = "no-such-runner";
  h.t->create_queue(q);
  h.make_queue("q2", R"({"gpus": 1})");
  // Passes the runner's checks at queue create; refused at submit.
  h.make_queue("q3", R"({"working_dir": "/no/such/dir"})");
  h.make_queue("q4", "{}");
  AgentConfig c;
  c.queues = {"q", "q2", "q3", "q4"};
  c.max_jobs = -1;
  h.start(c);
  std::string a = h.push({"/bin/true"}, "q");
  std::string b = h.push({"/bin/true"}, "q2");
  std::string e = h.push({"/no/such/program"}, "q4");
  std::string f = h.push({"/bin/true"}, "q3");
  QueueItem ia = h.wait_end(a);
  CHECK(ia.state == ItemState::failed);
  REQUIRE(ia.error);
  CHECK(ia.error->stage == ErrorStage::agent);
  CHECK(ia.error->message.find("no-such-runner") != std::string::npos);
  QueueItem ib = h.wait_end(b);
  REQUIRE(ib.error);
  CHECK(ib.error->stage == ErrorStage::agent);
  CHECK(ib.error->message.find("gpus 1: this agent has 0 GPUs") != std::string::npos);
  // A program that does not exist: refused at submit, naming it and why.
  QueueItem ie = h.wait_end(e);
  CHECK(ie.state == ItemState::failed);
  REQUIRE(ie.error);
  CHECK(ie.error->stage == ErrorStage::agent);
  CHECK(ie.error->message.find("cannot start \"/no/such/program\": No such file or directory") !=
        std::string::npos);
  CHECK_FALSE(ie.exit_code);
  QueueItem iff = h.wait_end(f);
  REQUIRE(iff.error);
  CHECK(iff.error->message.find("working_dir \"/no/such/dir\"") != std::string::npos);
}

TEST_CASE("agent: GPUs from the pool are never shared between two jobs") {
  Harness h;
  h.make_queue("q", R"({"gpus": 1})");
  TempDir d;
  AgentConfig c;
  c.gpus = 2;
  c.max_jobs = -1;
  h.start(c);
  // mkdir fails when another job holds the same device: the job fails.
  std::string script = "mkdir " + d.path() + "/gpu$CUDA_VISIBLE_DEVICES || exit 9; sleep 0.3; "
                       "rmdir " + d.path() + "/gpu$CUDA_VISIBLE_DEVICES; echo $CUDA_VISIBLE_DEVICES";
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(h.push(sh(script)));
  std::set<std::string> devices;
  for (const auto& id : ids) {
    CHECK(h.wait_end(id).state == ItemState::finished);
    devices.insert(h.log_of(id));
  }
  CHECK(devices == std::set<std::string>{"0\n", "1\n"});
}

TEST_CASE("agent: stop(drain) lets the running job finish and claims nothing more") {
  Harness h;
  h.make_queue("q");
  h.start(AgentConfig{});
  std::string id = h.push({"/bin/sleep", "0.5"});
  h.wait_state(id, ItemState::running);
  h.agent->stop(StopMode::drain);
  std::string later = h.push({"/bin/true"});
  while (h.agent->step(milliseconds(50))) {
  }
  CHECK(h.t->get(id).state == ItemState::finished);
  CHECK(h.t->get(later).state == ItemState::pending);
  auto agents = h.t->list_agents();
  REQUIRE(agents.size() == 1);
  CHECK(agents[0].status == AgentStatus::stopped);
  CHECK(agents[0].id == h.agent->id());
}

TEST_CASE("agent: a second stop cancels running jobs and puts their items back") {
  Harness h;
  h.make_queue("q");
  TempDir d;
  h.start(AgentConfig{});
  std::string id = h.push(sh("echo $$ > " + (d / "pid") + "; exec sleep 60"));
  h.wait_state(id, ItemState::running);
  launch_test::until([&] { return !slurp(d / "pid").empty(); }, [&] { h.step(); });
  pid_t pgid = static_cast<pid_t>(std::stol(slurp(d / "pid")));
  h.agent->stop(StopMode::drain);
  h.agent->stop(StopMode::drain);
  while (h.agent->step(milliseconds(50))) {
  }
  QueueItem item = h.t->get(id);
  CHECK(item.state == ItemState::pending);
  CHECK(item.agent_id.empty());
  CHECK(::kill(-pgid, 0) == -1);
}

TEST_CASE("agent: registers itself and reports running while it holds jobs") {
  Harness h;
  h.make_queue("q");
  h.start(AgentConfig{});
  std::string id = h.push({"/bin/sleep", "0.3"});
  h.wait_state(id, ItemState::running);
  auto agents = h.t->list_agents();
  REQUIRE(agents.size() == 1);
  CHECK(agents[0].status == AgentStatus::running);
  CHECK(agents[0].queues == std::vector<std::string>{"team/q"});
  h.wait_end(id);
  launch_test::until([&] { return h.t->list_agents()[0].status == AgentStatus::polling; },
                     [&] { h.step(); });
  CHECK(h.t->list_agents()[0].running_jobs == 0);
}

TEST_CASE("agent: a restarted agent keeps its id and ends the runs it lost") {
  Harness h;
  h.make_queue("q");
  std::string first_id;
  std::string id = h.push({"/bin/true"});
  {
    Agent& a = h.start(AgentConfig{});
    first_id = a.id();
    // As if the agent had claimed and started it, then died.
    REQUIRE(h.t->claim({QueueRef{"team", "q"}}, first_id));
    h.t->start(id, first_id, "");
    h.agent.reset();
  }
  Agent& b = h.start(AgentConfig{});
  CHECK(b.id() == first_id);
  QueueItem item = h.wait_end(id);
  CHECK(item.state == ItemState::failed);
  REQUIRE(item.error);
  CHECK(item.error->stage == ErrorStage::agent);
  CHECK(item.error->message == "agent restarted; run lost");

  // Two live agents never share an id.
  Agent other(b.config(), h.t);
  CHECK(other.id() != b.id());

  // Nor do two agents with different homes (their locks cannot see each
  // other), even once the first has stopped.
  TempDir home2;
  AgentConfig c2 = b.config();
  c2.launch_home = home2.path();
  std::string first = b.id();
  h.agent.reset();
  Agent elsewhere(c2, h.t);
  CHECK(elsewhere.id() != first);
}

namespace {

using launch_test::ImagedRunner;

}  // namespace

TEST_CASE("agent: runners that need an image get one from the builder, or fail at build") {
  Harness h;
  static std::vector<ResolvedJob> seen;
  static int builds = 0;
  seen.clear();
  register_runner("imaged", [](const RunnerContext&) {
    return std::make_unique<ImagedRunner>(&seen);
  });
  // The builder runs on a worker thread; this one fails for one job.
  // Not "kaniko": that name must stay unregistered (the config refuses it
  // until the kaniko builder lands).
  register_builder("fake-remote", [](const BuilderConfig& c) {
    struct Fake : Builder {
      std::string destination;
      BuildResult build(const BuildRequest& r) override {
        ++builds;
        if (r.item.spec.name == "broken") throw Error(Errc::io, "no Dockerfile in the context");
        BuildResult out;
        out.image = destination + ":" + r.item.run_id;
        return out;
      }
    };
    auto b = std::make_unique<Fake>();
    b->destination = c.destination;
    return b;
  });
  QueueDef q;
  q.entity = "team";
  q.name = "q";
  q.resource = "imaged";
  q.config = R"({"image": "${image_uri}"})";
  h.t->create_queue(q);
  AgentConfig c;
  c.builder.type = "fake-remote";
  c.builder.destination = "registry.local/jobs";
  h.start(c);

  JobSpec good;
  good.name = "good";
  good.source.kind = JobSource::Kind::code;
  good.source.code_dir = "/src";
  JobSpec broken = good;
  broken.name = "broken";
  std::string g = h.push_spec(good);
  std::string b = h.push_spec(broken);
  QueueItem gi = h.wait_end(g);
  QueueItem bi = h.wait_end(b);
  CHECK(gi.state == ItemState::finished);
  CHECK(bi.state == ItemState::failed);
  REQUIRE(bi.error);
  CHECK(bi.error->stage == ErrorStage::build);
  CHECK(bi.error->message == "no Dockerfile in the context");
  CHECK(builds == 2);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].image == "registry.local/jobs:" + gi.run_id);
  CHECK(seen[0].config == R"({"image":"registry.local/jobs:)" + gi.run_id + R"("})");
}

TEST_CASE("agent: secure mode refuses a dangerous override at stage agent") {
  Harness h;
  // A runner whose check_config takes anything, as a Kubernetes one takes
  // `privileged` (local-process would refuse the option at push).
  static std::vector<ResolvedJob> seen;
  seen.clear();
  register_runner("takes-anything", [](const RunnerContext&) {
    return std::make_unique<launch_test::RecordingRunner>(&seen);
  });
  QueueDef q;
  q.entity = "team";
  q.name = "q";
  q.resource = "takes-anything";
  h.t->create_queue(q);
  AgentConfig c;
  c.secure_mode = true;
  h.start(c);
  JobSpec s;
  s.entry_point = {"/bin/true"};
  s.resource_args = R"({"privileged": true})";
  std::string id = h.push_spec(s);
  QueueItem item = h.wait_end(id);
  CHECK(item.state == ItemState::failed);
  REQUIRE(item.error);
  CHECK(item.error->stage == ErrorStage::agent);
  CHECK(item.error->message.find("secure_mode") != std::string::npos);
  CHECK(item.error->message.find("privileged") != std::string::npos);
  CHECK(seen.empty());
  unregister_runner("takes-anything");
}
