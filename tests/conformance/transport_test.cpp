// The transport conformance suite: every case runs once per backend (see
// backends.cpp), each on a fresh store, through the public Transport API.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <set>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include "backends.hpp"
#include "launch/error.hpp"
#include "launch/transport.hpp"

using namespace launch;
using conformance::Fixture;
using conformance::for_each_transport;
using conformance::make_job;
using conformance::make_queue;

namespace {

Errc error_code(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.code();
  }
  FAIL("expected a launch::Error");
  return Errc::internal;
}

std::vector<std::string> ids_of(const std::vector<QueueItem>& items) {
  std::vector<std::string> ids;
  for (const auto& it : items) ids.push_back(it.id);
  return ids;
}

JobSpec job_with_priority(const std::string& name, Priority p) {
  JobSpec spec = make_job(name);
  spec.priority = p;
  return spec;
}

// Claims everything claimable from `queues` and returns the job names, in
// claim order.
std::vector<std::string> drain_names(Transport& t, const std::vector<QueueRef>& queues) {
  std::vector<std::string> names;
  while (auto item = t.claim(queues, "drainer")) names.push_back(item->spec.name);
  return names;
}

void sleep_past_lease() { std::this_thread::sleep_for(std::chrono::milliseconds(1100)); }

}  // namespace

TEST_CASE("conformance: a queue is FIFO") {
  for_each_transport([](Fixture& f) {
    Transport& t = *f.transport;
    t.create_queue(make_queue("fifo"));
    QueueRef q{"team", "fifo"};
    std::vector<std::string> pushed;
    for (int i = 0; i < 5; ++i) pushed.push_back(t.push(q, make_job("job-" + std::to_string(i))));
    std::set<std::string> unique(pushed.begin(), pushed.end());
    CHECK(unique.size() == pushed.size());

    for (int i = 0; i < 5; ++i) {
      auto item = t.claim({q}, "agent-1");
      REQUIRE(item);
      CHECK(item->id == pushed[static_cast<std::size_t>(i)]);
      CHECK(item->spec.name == "job-" + std::to_string(i));
      CHECK(item->state == ItemState::claimed);
      CHECK(item->priority == Priority::medium);
    }
    CHECK_FALSE(t.claim({q}, "agent-1"));
  });
}

TEST_CASE("conformance: priorities order claims, FIFO within one priority") {
  for_each_transport([](Fixture& f) {
    Transport& t = *f.transport;
    t.create_queue(make_queue("prio", true));
    QueueRef q{"team", "prio"};
    t.push(q, job_with_priority("low-1", Priority::low));
    t.push(q, make_job("medium-1"));  // no priority: medium
    t.push(q, job_with_priority("critical-1", Priority::critical));
    t.push(q, job_with_priority("high-1", Priority::high));
    t.push(q, job_with_priority("medium-2", Priority::medium));
    t.push(q, job_with_priority("critical-2", Priority::critical));
    t.push(q, job_with_priority("low-2", Priority::low));
    CHECK(drain_names(t, {q}) == std::vector<std::string>{"critical-1", "critical-2", "high-1",
                                                          "medium-1", "medium-2", "low-1",
                                                          "low-2"});
  });
}

TEST_CASE("conformance: a claim over several queues takes the best priority, then the oldest") {
  for_each_transport([](Fixture& f) {
    Transport& t = *f.transport;
    t.create_queue(make_queue("a", true));
    t.create_queue(make_queue("b", true));
    t.create_queue(make_queue("c", true));
    QueueRef a{"team", "a"}, b{"team", "b"}, c{"team", "c"};
    t.push(a, job_with_priority("a-low", Priority::low));
    t.push(b, job_with_priority("b-high", Priority::high));
    t.push(a, job_with_priority("a-high", Priority::high));
    t.push(c, job_with_priority("c-critical", Priority::critical));  // c is not asked for
    t.push(b, job_with_priority("b-low", Priority::low));
    CHECK(drain_names(t, {a, b}) ==
          std::vector<std::string>{"b-high", "a-high", "a-low", "b-low"});
    CHECK(drain_names(t, {c}) == std::vector<std::string>{"c-critical"});
  });
}

TEST_CASE("conformance: a priority on a queue without prioritization is refused") {
  for_each_transport([](Fixture& f) {
    Transport& t = *f.transport;
    t.create_queue(make_queue("plain"));
    QueueRef q{"team", "plain"};
    t.push(q, make_job("first"));
    CHECK(error_code([&] { t.push(q, job_with_priority("urgent", Priority::critical)); }) ==
          Errc::invalid);
    auto items = t.list({q, std::nullopt, "", 0});
    REQUIRE(items.size() == 1);
    CHECK(items[0].spec.name == "first");
  });
}

TEST_CASE("conformance: template values are checked at push; a refused push changes nothing") {
  for_each_transport([](Fixture& f) {
    Transport& t = *f.transport;
    QueueDef def = make_queue("gpu");
    def.config = R"({"env": {"GPUS": "{{gpus}}"}})";
    TemplateVariable gpus;
    gpus.type = VarType::integer;
    gpus.minimum = 1;
    gpus.maximum = 4;
    def.template_variables["gpus"] = gpus;
    t.create_queue(def);
    QueueRef q{"team", "gpu"};

    JobSpec missing = make_job("missing");
    CHECK(error_code([&] { t.push(q, missing); }) == Errc::invalid);
    JobSpec too_many = make_job("too-many");
    too_many.template_values["gpus"] = "8";
    CHECK(error_code([&] { t.push(q, too_many); }) == Errc::invalid);
    JobSpec not_a_number = make_job("nan");
    not_a_number.template_values["gpus"] = "many";
    CHECK(error_code([&] { t.push(q, not_a_number); }) == Errc::invalid);
    JobSpec unknown = make_job("unknown");
    unknown.template_values["gpus"] = "2";
    unknown.template_values["cpus"] = "2";
    CHECK(error_code([&] { t.push(q, unknown); }) == Errc::invalid);
    CHECK(t.list().empty());

    JobSpec good = make_job("good");
    good.template_values["gpus"] = "2";
    std::string id = t.push(q, good);
    QueueItem item = t.get(id);
    CHECK(item.spec.template_values == std::map<std::string, std::string>{{"gpus", "2"}});
    CHECK(t.list().size() == 1);
  });
}

TEST_CASE("conformance: pushed items keep their spec and get a run id") {
  for_each_transport([](Fixture& f) {
    Transport& t = *f.transport;
    t.create_queue(make_queue("spec"));
    QueueRef q{"team", "spec"};
    JobSpec spec = make_job("keep");
    spec.project = "vision";
    spec.args = {"--epochs", "3"};
    spec.env = {{"A", "1"}, {"B", "two"}};
    spec.run_config = R"({"lr":0.1})";
    spec.resource_args = R"({"env":{"X":"y"}})";
    std::string id = t.push(q, spec);
    QueueItem item = t.get(id);
    CHECK(item.id == id);
    CHECK(item.queue == q);
    CHECK(item.state == ItemState::pending);
    CHECK(item.spec.name == "keep");
    CHECK(item.spec.project == "vision");
    CHECK(item.spec.source.kind == JobSource::Kind::image);
    CHECK(item.spec.source.image == "busybox:latest");
    CHECK(item.spec.entry_point == std::vector<std::string>{"true"});
    CHECK(item.spec.args == std::vector<std::string>{"--epochs", "3"});
    CHECK(item.spec.env == spec.env);
    CHECK(item.spec.author == "alice");
    CHECK(item.run_id.size() == 8);
    CHECK(item.created_at > 0);
    CHECK(item.attempt == 0);
    CHECK(item.agent_id.empty());

    JobSpec resumed = make_job("resumed");
    resumed.run_id = "abcd1234";
    CHECK(t.get(t.push(q, resumed)).run_id == "abcd1234");
  });
}

namespace {

enum class Op { start, finish_ok, finish_error, fail, confirm_stopped, release, preempt, cancel };

const char* op_name(Op op) {
  switch (op) {
    case Op::start: return "start";
    case Op::finish_ok: return "finish(0)";
    case Op::finish_error: return "finish(3)";
    case Op::fail: return "fail";
    case Op::confirm_stopped: return "confirm_stopped";
    case Op::release: return "requeue(released)";
    case Op::preempt: return "requeue(preempted)";
    case Op::cancel: return "cancel";
  }
  return "?";
}

QueueItem apply(Transport& t, const std::string& id, const std::string& agent, Op op) {
  switch (op) {
    case Op::start: return t.start(id, agent, "");
    case Op::finish_ok: return t.finish(id, agent, 0);
    case Op::finish_error: return t.finish(id, agent, 3);
    case Op::fail: return t.fail(id, agent, ItemError{ErrorStage::build, "no Dockerfile"}, {});
    case Op::confirm_stopped: return t.confirm_stopped(id, agent);
    case Op::release: return t.requeue(id, agent, RequeueReason::released);
    case Op::preempt: return t.requeue(id, agent, RequeueReason::preempted);
    case Op::cancel: return t.cancel(id);
  }
  return {};
}

// Brings a fresh item of queue `q` to `state` through the API; the agent
// "agent-1" holds it when it has been claimed.
std::string item_in_state(Transport& t, const QueueRef& q, ItemState state) {
  std::string id = t.push(q, make_job("subject"));
  if (state == ItemState::pending) return id;
  if (state == ItemState::stopped) {
    t.cancel(id);
    return id;
  }
  auto claimed = t.claim({q}, "agent-1");
  REQUIRE(claimed);
  REQUIRE(claimed->id == id);
  if (state == ItemState::claimed) return id;
  t.start(id, "agent-1", "");
  switch (state) {
    case ItemState::stopping: t.cancel(id); break;
    case ItemState::finished: t.finish(id, "agent-1", 0); break;
    case ItemState::failed: t.finish(id, "agent-1", 1); break;
    default: break;
  }
  return id;
}

}  // namespace

TEST_CASE("conformance: every state transition, legal and illegal, through the API") {
  using S = ItemState;
  // From each state, what each operation by the holding agent gives:
  // the new state, or nullopt for Errc::state.
  struct Row {
    S from;
    Op op;
    std::optional<S> to;
  };
  const std::vector<Row> table = {
      {S::pending, Op::start, {}},           {S::pending, Op::finish_ok, {}},
      {S::pending, Op::finish_error, {}},    {S::pending, Op::fail, {}},
      {S::pending, Op::confirm_stopped, {}}, {S::pending, Op::release, {}},
      {S::pending, Op::preempt, {}},         {S::pending, Op::cancel, S::stopped},

      {S::claimed, Op::start, S::running},   {S::claimed, Op::finish_ok, {}},
      {S::claimed, Op::finish_error, {}},    {S::claimed, Op::fail, S::failed},
      {S::claimed, Op::confirm_stopped, {}}, {S::claimed, Op::release, S::pending},
      {S::claimed, Op::preempt, {}},         {S::claimed, Op::cancel, S::stopping},

      {S::running, Op::start, {}},           {S::running, Op::finish_ok, S::finished},
      {S::running, Op::finish_error, S::failed}, {S::running, Op::fail, S::failed},
      {S::running, Op::confirm_stopped, {}}, {S::running, Op::release, S::pending},
      {S::running, Op::preempt, S::pending}, {S::running, Op::cancel, S::stopping},

      {S::stopping, Op::start, {}},          {S::stopping, Op::finish_ok, S::finished},
      {S::stopping, Op::finish_error, S::failed}, {S::stopping, Op::fail, S::failed},
      {S::stopping, Op::confirm_stopped, S::stopped}, {S::stopping, Op::release, {}},
      {S::stopping, Op::preempt, {}},        {S::stopping, Op::cancel, S::stopping},
  };
  std::vector<Row> rows = table;
  for (S terminal : {S::finished, S::failed, S::stopped}) {
    for (Op op : {Op::start, Op::finish_ok, Op::finish_error, Op::fail, Op::confirm_stopped,
                  Op::release, Op::preempt, Op::cancel}) {
      rows.push_back({terminal, op, {}});
    }
  }

  for_each_transport([&](Fixture& f) {
    Transport& t = *f.transport;
    int n = 0;
    for (const Row& row : rows) {
      CAPTURE(to_string(row.from));
      CAPTURE(op_name(row.op));
      std::string name = "t" + std::to_string(n++);
      t.create_queue(make_queue(name));
      QueueRef q{"team", name};
      std::string id = item_in_state(t, q, row.from);
      QueueItem before = t.get(id);
      REQUIRE(before.state == row.from);
      if (row.to) {
        QueueItem after = apply(t, id, "agent-1", row.op);
        CHECK(after.state == *row.to);
        CHECK(t.get(id).state == *row.to);
      } else {
        CHECK(error_code([&] { apply(t, id, "agent-1", row.op); }) == Errc::state);
        QueueItem unchanged = t.get(id);
        CHECK(unchanged.state == row.from);
        CHECK(unchanged.updated_at == before.updated_at);
      }
    }
  });
}

TEST_CASE("conformance: only the holder of the lease acts on an item") {
  for_each_transport([](Fixture& f) {
    Transport& t = *f.transport;
    t.create_queue(make_queue("holder"));
    QueueRef q{"team", "holder"};
    std::string id = t.push(q, make_job("x"));
    REQUIRE(t.claim({q}, "agent-1"));
    CHECK(error_code([&] { t.start(id, "agent-2", ""); }) == Errc::state);
    t.start(id, "agent-1", "");
    CHECK(error_code([&] { t.finish(id, "agent-2", 0); }) == Errc::state);
    CHECK(error_code([&] { t.requeue(id, "agent-2", RequeueReason::released); }) == Errc::state);
    CHECK(t.get(id).state == ItemState::running);
    CHECK(t.get(id).agent_id == "agent-1");
  });
}

TEST_CASE("conformance: claim, start and end stamp the item") {
  for_each_transport([](Fixture& f) {
    Transport& t = *f.transport;
    t.create_queue(make_queue("stamps"));
    QueueRef q{"team", "stamps"};
    std::string id = t.push(q, make_job("x"));
    std::int64_t before = now_ms();
    auto claimed = t.claim({q}, "agent-1");
    REQUIRE(claimed);
    CHECK(claimed->agent_id == "agent-1");
    CHECK(claimed->attempt == 1);
    CHECK(claimed->lease_expires_at >= before + 30 * 1000);
    CHECK(t.list({q, ItemState::claimed, "agent-1", 0}).size() == 1);

    QueueItem running = t.start(id, "agent-1", "run12345");
    CHECK(running.run_id == "run12345");
    CHECK(running.started_at >= before);

    QueueItem failed = t.fail(id, "agent-1", ItemError{ErrorStage::run, "oom killed"}, 137);
    CHECK(failed.state == ItemState::failed);
    REQUIRE(failed.error);
    CHECK(failed.error->stage == ErrorStage::run);
    CHECK(failed.error->message == "oom killed");
    REQUIRE(failed.exit_code);
    CHECK(*failed.exit_code == 137);
    CHECK(failed.ended_at >= before);
    QueueItem stored = t.get(id);
    CHECK(stored.state == ItemState::failed);
    CHECK(stored.error->message == "oom killed");
    CHECK(stored.exit_code == std::optional<int>(137));

    std::string id2 = t.push(q, make_job("y"));
    REQUIRE(t.claim({q}, "agent-1"));
    t.start(id2, "agent-1", "");
    QueueItem done = t.finish(id2, "agent-1", 0);
    CHECK(done.state == ItemState::finished);
    CHECK(done.exit_code == std::optional<int>(0));
    CHECK_FALSE(done.error);
  });
}

TEST_CASE("conformance: finish_and_claim ends the item, then claims the next") {
  for_each_transport([](Fixture& f) {
    Transport& t = *f.transport;
    t.create_queue(make_queue("chain"));
    QueueRef q{"team", "chain"};
    std::string a = t.push(q, make_job("a"));
    std::string b = t.push(q, make_job("b"));
    REQUIRE(t.claim({q}, "agent-1"));
    t.start(a, "agent-1", "run-a");

    FinishAndClaim r = t.finish_and_claim(a, "agent-1", 0, {q});
    CHECK(r.finished.id == a);
    CHECK(r.finished.state == ItemState::finished);
    CHECK(r.finished.exit_code == std::optional<int>(0));
    CHECK(t.get(a).state == ItemState::finished);
    REQUIRE(r.next);
    CHECK(r.next->id == b);
    CHECK(r.next->state == ItemState::claimed);
    CHECK(r.next->agent_id == "agent-1");
    CHECK(t.get(b).state == ItemState::claimed);

    // Nothing left to claim: the finish (a failure here) still stands.
    t.start(b, "agent-1", "");
    FinishAndClaim last = t.finish_and_claim(b, "agent-1", 3, {q});
    CHECK(last.finished.state == ItemState::failed);
    CHECK(last.finished.exit_code == std::optional<int>(3));
    CHECK_FALSE(last.next);
    CHECK(t.get(b).state == ItemState::failed);
  });
}

TEST_CASE("conformance: a refused finish_and_claim claims nothing") {
  for_each_transport([](Fixture& f) {
    Transport& t = *f.transport;
    t.create_queue(make_queue("refused"));
    QueueRef q{"team", "refused"};
    std::string a = t.push(q, make_job("a"));
    std::string b = t.push(q, make_job("b"));
    REQUIRE(t.claim({q}, "agent-1"));
    t.start(a, "agent-1", "");
    CHECK(error_code([&] { t.finish_and_claim(a, "agent-2", 0, {q}); }) == Errc::state);
    CHECK(t.get(a).state == ItemState::running);
    CHECK(t.get(b).state == ItemState::pending);
    t.finish(a, "agent-1", 0);
    CHECK(error_code([&] { t.finish_and_claim(a, "agent-1", 0, {q}); }) == Errc::state);
    CHECK(t.get(b).state == ItemState::pending);
  });
}

TEST_CASE("conformance: finish_and_claim after another handle wrote the item keeps that write") {
  for_each_transport(
      [](Fixture& f) {
        Transport& t = *f.transport;
        t.create_queue(make_queue("stale"));
        QueueRef q{"team", "stale"};
        std::string a = t.push(q, make_job("a"));
        std::string b = t.push(q, make_job("b"));
        REQUIRE(t.claim({q}, "agent-1"));
        t.start(a, "agent-1", "");
        // The first handle's copy of the item is now out of date.
        auto other = open_transport(f.uri);
        other->add_warning(a, "written elsewhere");
        FinishAndClaim r = t.finish_and_claim(a, "agent-1", 0, {q});
        CHECK(r.finished.state == ItemState::finished);
        CHECK(r.finished.warnings == std::vector<std::string>{"written elsewhere"});
        QueueItem stored = t.get(a);
        CHECK(stored.state == ItemState::finished);
        CHECK(stored.warnings == std::vector<std::string>{"written elsewhere"});
        REQUIRE(r.next);
        CHECK(r.next->id == b);
        CHECK(t.get(b).agent_id == "agent-1");
      },
      true);
}

TEST_CASE("conformance: requeue: released keeps the run; preempted resumes at most 5 times") {
  for_each_transport([](Fixture& f) {
    Transport& t = *f.transport;
    t.create_queue(make_queue("requeue", false, 30, 100));
    QueueRef q{"team", "requeue"};
    std::string id = t.push(q, make_job("x"));
    std::string run_id = t.get(id).run_id;

    REQUIRE(t.claim({q}, "agent-1"));
    QueueItem released = t.requeue(id, "agent-1", RequeueReason::released);
    CHECK(released.state == ItemState::pending);
    CHECK(released.agent_id.empty());
    CHECK(released.resume_count == 0);
    CHECK(released.run_id == run_id);

    for (int i = 1; i <= 5; ++i) {
      auto c = t.claim({q}, "agent-2");
      REQUIRE(c);
      CHECK(c->id == id);
      t.start(id, "agent-2", "");
      QueueItem back = t.requeue(id, "agent-2", RequeueReason::preempted);
      CHECK(back.state == ItemState::pending);
      CHECK(back.resume_count == i);
      CHECK(back.run_id == run_id);
    }
    REQUIRE(t.claim({q}, "agent-2"));
    t.start(id, "agent-2", "");
    QueueItem last = t.requeue(id, "agent-2", RequeueReason::preempted);
    CHECK(last.state == ItemState::failed);
    REQUIRE(last.error);
    CHECK(t.get(id).state == ItemState::failed);
    CHECK_FALSE(t.claim({q}, "agent-2"));
  });
}

TEST_CASE("conformance: an expired lease goes back to pending, then fails after max_attempts") {
  for_each_transport([](Fixture& f) {
    Transport& t = *f.transport;
    t.create_queue(make_queue("lease", false, 1, 2));
    QueueRef q{"team", "lease"};
    std::string id = t.push(q, make_job("x"));
    std::string run_id = t.get(id).run_id;

    REQUIRE(t.claim({q}, "agent-1"));
    t.start(id, "agent-1", "");
    CHECK(t.expire_leases() == 0);  // not yet
    sleep_past_lease();
    t.drain_notify();
    CHECK(t.expire_leases() == 1);
    // Work came back: waiting agents are woken.
    CHECK(conformance::readable_within(t.notify_fd(), std::chrono::seconds(5)));
    QueueItem again = t.get(id);
    CHECK(again.state == ItemState::pending);
    CHECK(again.attempt == 1);
    CHECK(again.agent_id.empty());
    CHECK(again.run_id == run_id);
    CHECK_FALSE(again.warnings.empty());
    // The lost agent learns it, and can no longer act on the item.
    HeartbeatReply reply = t.heartbeat("agent-1", {id});
    CHECK(reply.lost == std::vector<std::string>{id});
    CHECK(error_code([&] { t.finish(id, "agent-1", 0); }) == Errc::state);

    auto second = t.claim({q}, "agent-2");
    REQUIRE(second);
    CHECK(second->attempt == 2);
    sleep_past_lease();
    CHECK(t.expire_leases() == 1);
    QueueItem failed = t.get(id);
    CHECK(failed.state == ItemState::failed);
    REQUIRE(failed.error);
    CHECK(failed.error->stage == ErrorStage::agent);
    CHECK(t.expire_leases() == 0);
  });
}

TEST_CASE("conformance: opening a store puts the items of a vanished agent back") {
  for_each_transport([](Fixture& f) {
    Transport& t = *f.transport;
    t.create_queue(make_queue("orphans", false, 1, 3));
    QueueRef q{"team", "orphans"};
    std::string id = t.push(q, make_job("x"));
    REQUIRE(t.claim({q}, "killed-agent"));
    t.start(id, "killed-agent", "");
    // Its agent is gone and no other agent runs: a later open (a CLI
    // command, say) is what moves the item, without calling expire_leases.
    auto reopened = open_transport(f.uri);
    CHECK(t.get(id).state == ItemState::running);  // the lease still holds
    sleep_past_lease();
    reopened = open_transport(f.uri);
    QueueItem back = reopened->get(id);
    CHECK(back.state == ItemState::pending);
    CHECK(back.agent_id.empty());
    REQUIRE(back.warnings.size() == 1);
    CHECK(back.warnings[0].find("killed-agent") != std::string::npos);
    CHECK(t.get(id).state == ItemState::pending);
  });
}

TEST_CASE("conformance: a stopping item whose lease expires ends stopped") {
  for_each_transport([](Fixture& f) {
    Transport& t = *f.transport;
    t.create_queue(make_queue("stop-lease", false, 1, 3));
    QueueRef q{"team", "stop-lease"};
    std::string id = t.push(q, make_job("x"));
    REQUIRE(t.claim({q}, "agent-1"));
    t.start(id, "agent-1", "");
    CHECK(t.cancel(id).state == ItemState::stopping);
    sleep_past_lease();
    CHECK(t.expire_leases() == 1);
    CHECK(t.get(id).state == ItemState::stopped);
  });
}

TEST_CASE("conformance: heartbeats renew leases and carry cancels and losses") {
  for_each_transport([](Fixture& f) {
    Transport& t = *f.transport;
    t.create_queue(make_queue("beat"));
    QueueRef q{"team", "beat"};
    std::string a = t.push(q, make_job("a"));
    std::string b = t.push(q, make_job("b"));
    std::string c = t.push(q, make_job("c"));
    REQUIRE(t.claim({q}, "agent-1"));
    REQUIRE(t.claim({q}, "agent-1"));
    REQUIRE(t.claim({q}, "agent-2"));
    t.start(a, "agent-1", "");
    std::int64_t lease_a = t.get(a).lease_expires_at;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));

    HeartbeatReply quiet = t.heartbeat("agent-1", {a, b});
    CHECK(quiet.cancel_requested.empty());
    CHECK(quiet.lost.empty());
    CHECK(t.get(a).lease_expires_at > lease_a);

    t.cancel(b);
    HeartbeatReply reply = t.heartbeat("agent-1", {a, b, c, "999999"});
    CHECK(reply.cancel_requested == std::vector<std::string>{b});
    // c is agent-2's; 999999 does not exist.
    CHECK(reply.lost == std::vector<std::string>{c, "999999"});
    CHECK(t.get(c).agent_id == "agent-2");
    CHECK(t.confirm_stopped(b, "agent-1").state == ItemState::stopped);
  });
}

TEST_CASE("conformance: agents register, update and heartbeat") {
  for_each_transport([](Fixture& f) {
    Transport& t = *f.transport;
    CHECK(t.list_agents().empty());
    AgentRecord a;
    a.id = "agent-1";
    a.host = "box";
    a.pid = 42;
    a.version = "0.1.0";
    a.entity = "team";
    a.queues = {"team/gpu", "team/cpu"};
    a.status = AgentStatus::polling;
    a.max_jobs = 4;
    a.started_at = 1000;
    t.upsert_agent(a);
    AgentRecord b = a;
    b.id = "agent-0";
    b.queues = {};
    t.upsert_agent(b);

    auto agents = t.list_agents();
    REQUIRE(agents.size() == 2);
    const AgentRecord& got = agents[0].id == "agent-1" ? agents[0] : agents[1];
    CHECK(got.host == "box");
    CHECK(got.pid == 42);
    CHECK(got.version == "0.1.0");
    CHECK(got.entity == "team");
    CHECK(got.queues == std::vector<std::string>{"team/gpu", "team/cpu"});
    CHECK(got.status == AgentStatus::polling);
    CHECK(got.max_jobs == 4);
    CHECK(got.started_at == 1000);
    CHECK(got.last_seen > 0);

    a.status = AgentStatus::running;
    a.running_jobs = 2;
    a.last_seen = 0;
    t.upsert_agent(a);
    agents = t.list_agents();
    REQUIRE(agents.size() == 2);
    const AgentRecord& updated = agents[0].id == "agent-1" ? agents[0] : agents[1];
    CHECK(updated.status == AgentStatus::running);
    CHECK(updated.running_jobs == 2);

    std::int64_t seen = updated.last_seen;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    t.heartbeat("agent-1", {});
    agents = t.list_agents();
    const AgentRecord& beat = agents[0].id == "agent-1" ? agents[0] : agents[1];
    CHECK(beat.last_seen > seen);
    // A heartbeat from an agent that never registered registers nothing.
    t.heartbeat("ghost", {});
    CHECK(t.list_agents().size() == 2);
  });
}

namespace {

std::string this_host() {
  char buf[256] = {0};
  REQUIRE(::gethostname(buf, sizeof buf - 1) == 0);
  return buf;
}

// The pid of a process that has come and gone.
int gone_pid() {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) ::_exit(0);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return static_cast<int>(pid);
}

AgentRecord agent_at(const std::string& id, const std::string& host, int pid,
                     AgentStatus status, std::int64_t last_seen) {
  AgentRecord a;
  a.id = id;
  a.host = host;
  a.pid = pid;
  a.status = status;
  a.last_seen = last_seen;
  return a;
}

AgentStatus status_of(Transport& t, const std::string& id) {
  for (const auto& a : t.list_agents()) {
    if (a.id == id) return a.status;
  }
  FAIL("no agent " << id);
  return AgentStatus::stopped;
}

}  // namespace

TEST_CASE("conformance: an agent gone quiet lists as lost; one whose pid is gone here, dead") {
  for_each_transport([](Fixture& f) {
    Transport& t = *f.transport;
    std::int64_t now = now_ms();
    std::int64_t stale = now - (kAgentLeaseSeconds + 5) * 1000;
    std::int64_t recent = now - 5 * 1000;
    int me = static_cast<int>(::getpid());
    t.upsert_agent(agent_at("alive-here", this_host(), me, AgentStatus::running, now));
    t.upsert_agent(agent_at("killed-here", this_host(), gone_pid(), AgentStatus::running, now));
    t.upsert_agent(agent_at("quiet-there", "other-host", me, AgentStatus::polling, stale));
    t.upsert_agent(agent_at("fine-there", "other-host", me, AgentStatus::running, recent));
    t.upsert_agent(agent_at("stopped-there", "other-host", me, AgentStatus::stopped, stale));
    t.upsert_agent(agent_at("stopped-here", this_host(), gone_pid(), AgentStatus::stopped, now));

    CHECK(status_of(t, "alive-here") == AgentStatus::running);
    CHECK(status_of(t, "killed-here") == AgentStatus::dead);  // at once, not after the lease
    CHECK(status_of(t, "quiet-there") == AgentStatus::lost);
    CHECK(status_of(t, "fine-there") == AgentStatus::running);
    // An agent that said it stopped has stopped, whatever its age.
    CHECK(status_of(t, "stopped-there") == AgentStatus::stopped);
    CHECK(status_of(t, "stopped-here") == AgentStatus::stopped);

    // A lost agent that heartbeats again is back to what it reported.
    t.heartbeat("quiet-there", {});
    CHECK(status_of(t, "quiet-there") == AgentStatus::polling);
  });
}

TEST_CASE("conformance: warnings accumulate on an item") {
  for_each_transport([](Fixture& f) {
    Transport& t = *f.transport;
    t.create_queue(make_queue("warn"));
    QueueRef q{"team", "warn"};
    std::string id = t.push(q, make_job("x"));
    t.add_warning(id, "image is large");
    t.add_warning(id, "slow registry");
    CHECK(t.get(id).warnings == std::vector<std::string>{"image is large", "slow registry"});
    CHECK(t.get(id).state == ItemState::pending);
    CHECK(error_code([&] { t.add_warning("999999", "nobody"); }) == Errc::not_found);
  });
}

TEST_CASE("conformance: list filters by queue, state and agent; limit keeps the newest") {
  for_each_transport([](Fixture& f) {
    Transport& t = *f.transport;
    t.create_queue(make_queue("one"));
    t.create_queue(make_queue("two"));
    QueueRef one{"team", "one"}, two{"team", "two"};
    std::vector<std::string> ids;
    for (int i = 0; i < 4; ++i) ids.push_back(t.push(one, make_job("one-" + std::to_string(i))));
    for (int i = 0; i < 3; ++i) ids.push_back(t.push(two, make_job("two-" + std::to_string(i))));
    REQUIRE(t.claim({one}, "agent-1"));  // ids[0]
    REQUIRE(t.claim({two}, "agent-2"));  // ids[4]
    t.cancel(ids[1]);

    CHECK(ids_of(t.list()) == ids);
    CHECK(ids_of(t.list({one, std::nullopt, "", 0})) ==
          std::vector<std::string>{ids[0], ids[1], ids[2], ids[3]});
    CHECK(ids_of(t.list({std::nullopt, ItemState::pending, "", 0})) ==
          std::vector<std::string>{ids[2], ids[3], ids[5], ids[6]});
    CHECK(ids_of(t.list({one, ItemState::pending, "", 0})) ==
          std::vector<std::string>{ids[2], ids[3]});
    CHECK(ids_of(t.list({std::nullopt, std::nullopt, "agent-2", 0})) ==
          std::vector<std::string>{ids[4]});
    CHECK(ids_of(t.list({std::nullopt, ItemState::stopped, "", 0})) ==
          std::vector<std::string>{ids[1]});
    CHECK(ids_of(t.list({std::nullopt, std::nullopt, "", 3})) ==
          std::vector<std::string>{ids[4], ids[5], ids[6]});
    CHECK(ids_of(t.list({one, ItemState::pending, "", 1})) == std::vector<std::string>{ids[3]});
    CHECK(ids_of(t.list({std::nullopt, std::nullopt, "", 100})) == ids);
    CHECK(t.list({QueueRef{"team", "none"}, std::nullopt, "", 0}).empty());
  });
}

TEST_CASE("conformance: queues are created, read, listed and deleted") {
  for_each_transport([](Fixture& f) {
    Transport& t = *f.transport;
    QueueDef def = make_queue("crud", true, 45, 7);
    def.resource = "local-container";
    def.config = R"({"env":{"A":"{{a}}"}})";
    TemplateVariable a;
    a.type = VarType::integer;
    a.minimum = 1;
    a.maximum = 9;
    def.template_variables["a"] = a;
    std::int64_t before = now_ms();
    t.create_queue(def);
    CHECK(error_code([&] { t.create_queue(def); }) == Errc::exists);
    CHECK(error_code([&] { t.create_queue(make_queue("bad name!")); }) == Errc::invalid);

    QueueDef got = t.get_queue({"team", "crud"});
    CHECK(got.entity == "team");
    CHECK(got.name == "crud");
    CHECK(got.resource == "local-container");
    CHECK(got.prioritization);
    CHECK(got.lease_seconds == 45);
    CHECK(got.max_attempts == 7);
    CHECK(got.created_at >= before);
    REQUIRE(got.template_variables.count("a") == 1);
    CHECK(got.template_variables["a"].type == VarType::integer);
    CHECK(got.template_variables["a"].maximum == std::optional<double>(9));
    CHECK(got.config.find("{{a}}") != std::string::npos);

    t.create_queue(make_queue("another"));
    QueueDef other_entity = make_queue("crud");
    other_entity.entity = "bob";
    t.create_queue(other_entity);
    std::vector<std::string> names;
    for (const auto& qd : t.list_queues()) names.push_back(qd.ref().str());
    std::sort(names.begin(), names.end());
    CHECK(names == std::vector<std::string>{"bob/crud", "team/another", "team/crud"});

    CHECK(error_code([&] { t.get_queue({"team", "none"}); }) == Errc::not_found);
    CHECK(error_code([&] { t.delete_queue({"team", "none"}, QueueDelete::with_pending); }) ==
          Errc::not_found);
    CHECK(error_code([&] { t.push({"team", "none"}, make_job("x")); }) == Errc::not_found);
    CHECK_FALSE(t.claim({{"team", "none"}}, "agent-1"));  // nothing to claim there
  });
}

TEST_CASE("conformance: a queue is not deleted while an item is claimed, running or stopping") {
  for_each_transport([](Fixture& f) {
    Transport& t = *f.transport;
    t.create_queue(make_queue("busy"));
    t.create_queue(make_queue("other"));
    QueueRef q{"team", "busy"};
    std::string pending = t.push(q, make_job("waiting"));
    std::string other = t.push({"team", "other"}, make_job("elsewhere"));
    std::string busy = t.push(q, make_job("busy"));
    t.cancel(pending);  // stopped: terminal, does not block
    std::string waiting = t.push(q, make_job("waiting-2"));
    auto claimed = t.claim({q}, "agent-1");
    REQUIRE(claimed);
    REQUIRE(claimed->id == busy);

    auto del = [&] { t.delete_queue(q, QueueDelete::with_pending); };
    CHECK(error_code(del) == Errc::state);
    t.start(busy, "agent-1", "");
    CHECK(error_code(del) == Errc::state);
    t.cancel(busy);
    CHECK(error_code(del) == Errc::state);
    CHECK(t.get_queue(q).name == "busy");
    CHECK(t.list({q, std::nullopt, "", 0}).size() == 3);

    t.confirm_stopped(busy, "agent-1");
    // Without with_pending, the one pending item refuses it, naming the
    // count, and nothing changes.
    try {
      t.delete_queue(q, QueueDelete::if_no_pending);
      FAIL("deleted a queue with a pending item");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::state);
      CHECK(std::string(e.what()).find("1 pending item;") != std::string::npos);
    }
    CHECK(t.list({q, std::nullopt, "", 0}).size() == 3);
    // With it, the pending item goes too, and every id deleted is returned.
    std::vector<std::string> deleted = t.delete_queue(q, QueueDelete::with_pending);
    std::vector<std::string> expected = {pending, busy, waiting};
    std::sort(deleted.begin(), deleted.end());
    std::sort(expected.begin(), expected.end());
    CHECK(deleted == expected);
    CHECK(error_code([&] { t.get_queue(q); }) == Errc::not_found);
    CHECK(error_code([&] { t.get(busy); }) == Errc::not_found);
    CHECK(error_code([&] { t.get(waiting); }) == Errc::not_found);
    CHECK(t.list({q, std::nullopt, "", 0}).empty());
    CHECK(t.get(other).state == ItemState::pending);

    // The name can be used again, and starts empty.
    t.create_queue(make_queue("busy"));
    CHECK(t.list({q, std::nullopt, "", 0}).empty());
    std::string fresh = t.push(q, make_job("fresh"));
    CHECK(fresh != busy);
    CHECK(fresh != waiting);
    // Ended items never block, whatever the mode.
    t.cancel(fresh);
    CHECK(t.delete_queue(q, QueueDelete::if_no_pending) == std::vector<std::string>{fresh});
    CHECK(error_code([&] { t.get_queue(q); }) == Errc::not_found);
  });
}

TEST_CASE("conformance: unknown item ids are not found") {
  for_each_transport([](Fixture& f) {
    Transport& t = *f.transport;
    for (std::string id : {"999999", "0", "", "abc", "12abc", "-1"}) {
      CAPTURE(id);
      CHECK(error_code([&] { t.get(id); }) == Errc::not_found);
      CHECK(error_code([&] { t.cancel(id); }) == Errc::not_found);
      CHECK(error_code([&] { t.start(id, "agent-1", ""); }) == Errc::not_found);
      CHECK(error_code([&] { t.finish(id, "agent-1", 0); }) == Errc::not_found);
    }
  });
}

TEST_CASE("conformance: notify_fd wakes on a push and a requeue, not on a heartbeat") {
  for_each_transport([](Fixture& f) {
    Transport& t = *f.transport;
    int fd = t.notify_fd();
    REQUIRE(fd >= 0);
    t.create_queue(make_queue("wake"));
    QueueRef q{"team", "wake"};
    t.drain_notify();
    CHECK_FALSE(conformance::readable_within(fd, std::chrono::milliseconds(0)));

    std::string id = t.push(q, make_job("x"));
    CHECK(conformance::readable_within(fd, std::chrono::seconds(5)));
    t.drain_notify();
    CHECK_FALSE(conformance::readable_within(fd, std::chrono::milliseconds(0)));

    REQUIRE(t.claim({q}, "agent-1"));
    t.heartbeat("agent-1", {id});
    t.start(id, "agent-1", "");
    CHECK_FALSE(conformance::readable_within(fd, std::chrono::milliseconds(50)));

    t.requeue(id, "agent-1", RequeueReason::released);
    CHECK(t.wait_for_work(std::chrono::seconds(5)));
  });
}

TEST_CASE("conformance: another handle on the same store sees and wakes the first") {
  for_each_transport(
      [](Fixture& f) {
        Transport& t = *f.transport;
        t.create_queue(make_queue("shared"));
        QueueRef q{"team", "shared"};
        auto other = open_transport(f.uri);
        t.drain_notify();
        std::string id = other->push(q, make_job("from-other"));
        CHECK(conformance::readable_within(t.notify_fd(), std::chrono::seconds(5)));
        auto item = t.claim({q}, "agent-1");
        REQUIRE(item);
        CHECK(item->id == id);
        CHECK(other->get(id).state == ItemState::claimed);
      },
      true);
}

TEST_CASE("conformance: threads sharing one transport push and claim each item once") {
  for_each_transport([](Fixture& f) {
    Transport& t = *f.transport;
    t.create_queue(make_queue("threads"));
    QueueRef q{"team", "threads"};
    const int kPushers = 2, kPerPusher = 150, kClaimers = 2;
    std::atomic<int> pushers_left{kPushers};
    std::vector<std::vector<std::string>> claimed(kClaimers);
    std::vector<std::thread> threads;
    for (int p = 0; p < kPushers; ++p) {
      threads.emplace_back([&, p] {
        for (int i = 0; i < kPerPusher; ++i) {
          t.push(q, make_job("p" + std::to_string(p) + "-" + std::to_string(i)));
        }
        --pushers_left;
      });
    }
    for (int c = 0; c < kClaimers; ++c) {
      threads.emplace_back([&, c] {
        std::string agent = "agent-" + std::to_string(c);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
        while (std::chrono::steady_clock::now() < deadline) {
          bool producers_done = pushers_left == 0;
          auto item = t.claim({q}, agent);
          if (!item) {
            if (producers_done) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            continue;
          }
          claimed[static_cast<std::size_t>(c)].push_back(item->id);
          t.start(item->id, agent, "");
          t.finish(item->id, agent, 0);
        }
      });
    }
    for (auto& th : threads) th.join();
    std::set<std::string> all;
    std::size_t claims = 0;
    for (const auto& ids : claimed) {
      claims += ids.size();
      all.insert(ids.begin(), ids.end());
    }
    CHECK(claims == kPushers * kPerPusher);
    CHECK(all.size() == kPushers * kPerPusher);
    CHECK(t.list({q, ItemState::finished, "", 0}).size() == kPushers * kPerPusher);
  });
}
