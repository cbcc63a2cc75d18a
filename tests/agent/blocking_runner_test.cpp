// A runner whose calls block (a remote API behind a slow server) must not
// stall the agent: heartbeats, cancels and other items go on meanwhile.
// The test's runner blocks in submit or poll until the test opens a latch
// (at most 5 s); what the agent did meanwhile is checked against the
// runner's own record of whether the call had returned yet.
#include <dirent.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "helpers.hpp"
#include "launch/launch.hpp"

using namespace launch;
using launch_test::TempDir;
using std::chrono::milliseconds;

namespace {

class Latch {
 public:
  void open() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  // Until opened, or 5 s: the longest a call of the test's runner blocks.
  void wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(5), [this] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// What the runner saw, shared by the test and the agent's worker threads.
struct Record {
  bool block_submit = false;  // set before the agent starts
  bool block_first_poll = false;
  Latch submit_gate, poll_gate;
  std::atomic<int> submits_entered{0}, submits_returned{0};
  std::atomic<int> polls_blocked{0}, blocked_polls_returned{0};
  std::atomic<int> cancels{0}, runs_dropped{0};
  std::atomic<int> overlapping_calls{0};  // two calls on one run at once
  std::mutex mu;
  std::set<std::thread::id> call_threads;

  void saw_thread() {
    std::lock_guard<std::mutex> lock(mu);
    call_threads.insert(std::this_thread::get_id());
  }
};

Record* record = nullptr;

class SlowRun : public Run {
 public:
  explicit SlowRun(std::string id) : id_(std::move(id)) {}
  ~SlowRun() override { ++record->runs_dropped; }
  std::string id() const override { return id_; }

  RunStatus poll() override {
    Busy b(*this);
    RunStatus st;
    if (record->block_first_poll && polls_++ == 0) {
      ++record->polls_blocked;
      record->poll_gate.wait();
      ++record->blocked_polls_returned;
    }
    if (cancelled_) {
      st.phase = RunPhase::stopped;
    } else {
      st.phase = RunPhase::finished;
      st.exit_code = 0;
    }
    return st;
  }

  void cancel(milliseconds) override {
    Busy b(*this);
    cancelled_ = true;
    ++record->cancels;
  }

 private:
  // Counts a call that finds another still in progress on this run.
  struct Busy {
    SlowRun& r;
    explicit Busy(SlowRun& run) : r(run) {
      record->saw_thread();
      if (r.busy_.exchange(true)) ++record->overlapping_calls;
    }
    ~Busy() { r.busy_.store(false); }
  };
  std::string id_;
  std::atomic<bool> busy_{false};
  int polls_ = 0;
  bool cancelled_ = false;
};

class SlowRunner : public Runner {
 public:
  std::unique_ptr<Run> submit(const ResolvedJob& job) override {
    record->saw_thread();
    ++record->submits_entered;
    if (record->block_submit) record->submit_gate.wait();
    ++record->submits_returned;
    return std::make_unique<SlowRun>("slow-" + job.item.id);
  }
};

// Registers the runner for "slow" and the record it writes, for one test.
struct SlowResource {
  Record rec;
  SlowResource() {
    record = &rec;
    register_runner("slow", [](const RunnerContext&) { return std::make_unique<SlowRunner>(); });
  }
  ~SlowResource() { unregister_runner("slow"); }
};

std::size_t thread_count() {
  std::size_t n = 0;
  DIR* d = ::opendir("/proc/self/task");
  REQUIRE(d != nullptr);
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n;
}

struct Harness {
  TempDir home;
  std::shared_ptr<Transport> t = open_transport("memory://");
  std::vector<JobEvent> events;
  std::set<std::thread::id> event_threads;
  std::unique_ptr<Agent> agent;

  void make_queue(const std::string& name, const std::string& resource, int lease_seconds = 30) {
    QueueDef q;
    q.entity = "team";
    q.name = name;
    q.resource = resource;
    q.lease_seconds = lease_seconds;
    t->create_queue(q);
  }

  Agent& start(std::vector<std::string> queues, int max_jobs) {
    AgentConfig c;
    c.entity = "team";
    c.launch_home = home.path();
    c.queues = std::move(queues);
    c.max_jobs = max_jobs;
    c.gpus = 0;
    c.stopped_run_timeout = 5;
    agent = std::make_unique<Agent>(c, t);
    agent->on_event([this](const JobEvent& e) {
      events.push_back(e);
      event_threads.insert(std::this_thread::get_id());
    });
    return *agent;
  }

  std::string push(const std::string& queue, std::vector<std::string> argv = {"/bin/true"}) {
    JobSpec s;
    s.name = "job";
    s.author = "alice";
    s.entry_point = std::move(argv);
    return t->push(QueueRef{"team", queue}, s);
  }

  void step() { agent->step(milliseconds(50)); }

  void until(const std::function<bool()>& done) {
    launch_test::until(done, [&] { step(); });
  }

  ItemState state(const std::string& id) { return t->get(id).state; }

  bool saw(const std::string& id, ItemState s) const {
    for (const auto& e : events) {
      if (e.item_id == id && e.state == s) return true;
    }
    return false;
  }
};

}  // namespace

TEST_CASE("blocking runner: a blocked submit holds up neither heartbeats nor other cancels") {
  SlowResource slow;
  slow.rec.block_submit = true;
  Harness h;
  h.make_queue("q", "local-process", /*lease_seconds=*/2);
  h.make_queue("s", "slow");
  std::thread::id loop_thread = std::this_thread::get_id();
  h.start({"q", "s"}, 3);
  // Two local jobs running: one to keep (its lease must be renewed), one
  // to cancel.
  std::string kept = h.push("q", {"/bin/sleep", "60"});
  std::string cancelled = h.push("q", {"/bin/sleep", "60"});
  h.until([&] {
    return h.state(kept) == ItemState::running && h.state(cancelled) == ItemState::running;
  });
  std::string blocked = h.push("s");
  h.until([&] { return slow.rec.submits_entered.load() == 1; });

  // While the submit is blocked: the kept item's lease is renewed past the
  // expiry it had then, and the cancelled one ends stopped.
  std::int64_t lease_then = h.t->get(kept).lease_expires_at;
  h.t->cancel(cancelled);
  h.until([&] {
    return h.state(cancelled) == ItemState::stopped && now_ms() > lease_then + 200 &&
           h.t->get(kept).lease_expires_at > lease_then;
  });
  CHECK(slow.rec.submits_returned.load() == 0);
  h.t->expire_leases();  // the lease it had when the submit began has run out
  CHECK(h.state(kept) == ItemState::running);
  CHECK(h.state(blocked) == ItemState::claimed);
  CHECK(slow.rec.submits_returned.load() == 0);

  slow.rec.submit_gate.open();
  h.until([&] { return is_terminal(h.state(blocked)); });
  CHECK(h.state(blocked) == ItemState::finished);
  CHECK(h.saw(blocked, ItemState::running));
  CHECK(slow.rec.cancels.load() == 0);
  CHECK(slow.rec.overlapping_calls.load() == 0);
  // The runner was called off the loop's thread; every event came on it.
  CHECK(slow.rec.call_threads.count(loop_thread) == 0);
  CHECK(h.event_threads == std::set<std::thread::id>{loop_thread});

  h.t->cancel(kept);
  h.until([&] { return h.state(kept) == ItemState::stopped; });
}

TEST_CASE("blocking runner: a blocked poll does not hold up other items") {
  SlowResource slow;
  slow.rec.block_first_poll = true;
  Harness h;
  h.make_queue("q", "local-process");
  h.make_queue("s", "slow");
  h.start({"s", "q"}, 2);
  std::string polled = h.push("s");
  h.until([&] { return slow.rec.polls_blocked.load() == 1; });
  CHECK(h.state(polled) == ItemState::running);
  // Other jobs are claimed, run and end while that poll is blocked.
  std::string a = h.push("q");
  std::string b = h.push("q", {"/bin/sh", "-c", "exit 3"});
  h.until([&] { return is_terminal(h.state(a)) && is_terminal(h.state(b)); });
  CHECK(slow.rec.blocked_polls_returned.load() == 0);
  CHECK(h.state(a) == ItemState::finished);
  CHECK(h.state(b) == ItemState::failed);

  slow.rec.poll_gate.open();
  h.until([&] { return is_terminal(h.state(polled)); });
  CHECK(h.state(polled) == ItemState::finished);
  CHECK(slow.rec.overlapping_calls.load() == 0);
}

TEST_CASE("blocking runner: cancelled while submitting, the new run is cancelled and ends stopped") {
  SlowResource slow;
  slow.rec.block_submit = true;
  Harness h;
  h.make_queue("s", "slow");
  h.start({"s"}, 1);
  std::string id = h.push("s");
  h.until([&] { return slow.rec.submits_entered.load() == 1; });
  h.t->cancel(id);
  // The agent hears of the cancel while the submit is still blocked.
  h.until([&] { return h.saw(id, ItemState::stopping); });
  CHECK(slow.rec.submits_returned.load() == 0);
  slow.rec.submit_gate.open();
  h.until([&] { return is_terminal(h.state(id)); });
  CHECK(h.state(id) == ItemState::stopped);
  CHECK(slow.rec.cancels.load() == 1);
  CHECK_FALSE(h.saw(id, ItemState::running));
  CHECK(slow.rec.overlapping_calls.load() == 0);
}

TEST_CASE("blocking runner: drain, then cancel, while a submit is in flight") {
  SlowResource slow;
  slow.rec.block_submit = true;
  Harness h;
  h.make_queue("s", "slow");
  h.start({"s"}, 1);
  std::string id = h.push("s");
  h.until([&] { return slow.rec.submits_entered.load() == 1; });

  SUBCASE("drain: the submitted job runs to its end") {
    h.agent->stop(StopMode::drain);
    h.step();
    CHECK(h.agent->running_jobs() == 1);  // still held: a drain waits for it
    slow.rec.submit_gate.open();
    while (h.agent->step(milliseconds(50))) {
    }
    CHECK(h.state(id) == ItemState::finished);
    CHECK(slow.rec.cancels.load() == 0);
  }
  SUBCASE("a second stop: the new run is cancelled and the item goes back") {
    h.agent->stop(StopMode::drain);
    h.agent->stop(StopMode::drain);
    h.step();
    CHECK(slow.rec.submits_returned.load() == 0);
    slow.rec.submit_gate.open();
    while (h.agent->step(milliseconds(50))) {
    }
    CHECK(slow.rec.cancels.load() == 1);
    QueueItem item = h.t->get(id);
    CHECK(item.state == ItemState::pending);
    CHECK(item.agent_id.empty());
  }
  CHECK(slow.rec.runs_dropped.load() == 1);
}

TEST_CASE("blocking runner: an agent destroyed mid-submit waits for it and drops the run") {
  SlowResource slow;
  slow.rec.block_submit = true;
  std::size_t threads_before = thread_count();
  {
    Harness h;
    h.make_queue("s", "slow");
    h.start({"s"}, 1);
    h.push("s");
    h.until([&] { return slow.rec.submits_entered.load() == 1; });
    CHECK(thread_count() > threads_before);  // the call is on a worker
    // The latch opens from another thread, whether before or while the
    // agent's destructor waits for the call.
    std::thread opener([&] { slow.rec.submit_gate.open(); });
    h.agent.reset();
    opener.join();
    CHECK(slow.rec.submits_returned.load() == 1);
    CHECK(slow.rec.runs_dropped.load() == 1);
  }
  CHECK(thread_count() == threads_before);
}
