// The job model: names, the state machine table, JSON forms, and the
// lifecycle functions every transport applies.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "launch/error.hpp"
#include "launch/job.hpp"
#include "launch/sys/lifecycle.hpp"
#include "unit/expect_error.hpp"

using namespace launch;
using launch_test::has;

namespace {

const ItemState kAll[] = {ItemState::pending,  ItemState::claimed, ItemState::running,
                          ItemState::stopping, ItemState::finished, ItemState::failed,
                          ItemState::stopped};

QueueDef queue(bool prioritization = false) {
  QueueDef q;
  q.entity = "team";
  q.name = "q";
  q.prioritization = prioritization;
  q.lease_seconds = 10;
  q.max_attempts = 2;
  return q;
}

QueueItem pending_item() {
  JobSpec spec;
  spec.name = "train";
  QueueItem it = lifecycle::make_pending(queue(), spec, 1000);
  it.id = "7";
  return it;
}

}  // namespace

TEST_CASE("job: enum names round-trip and bad names are refused by value") {
  for (ItemState s : kAll) CHECK(parse_item_state(to_string(s)) == s);
  CHECK(parse_priority("critical") == Priority::critical);
  CHECK(parse_priority("3") == Priority::low);
  CHECK(std::string(launch_test::error_message([] { parse_priority("urgent"); }, Errc::invalid))
            .find("\"urgent\"") != std::string::npos);
  CHECK(std::string(launch_test::error_message([] { parse_item_state("done"); }, Errc::invalid))
            .find("\"done\"") != std::string::npos);
  CHECK(parse_error_stage("build") == ErrorStage::build);
}

TEST_CASE("job: the transition table is exactly the one in DESIGN.md") {
  using S = ItemState;
  const std::vector<std::pair<S, S>> legal = {
      {S::pending, S::claimed},   {S::pending, S::stopped},   {S::claimed, S::running},
      {S::claimed, S::failed},    {S::claimed, S::stopping},  {S::claimed, S::pending},
      {S::running, S::finished},  {S::running, S::failed},    {S::running, S::stopping},
      {S::running, S::pending},   {S::stopping, S::stopped},  {S::stopping, S::finished},
      {S::stopping, S::failed}};
  for (S from : kAll) {
    for (S to : kAll) {
      bool expected = false;
      for (const auto& p : legal) expected = expected || (p.first == from && p.second == to);
      INFO(to_string(from) << " -> " << to_string(to));
      CHECK(can_transition(from, to) == expected);
    }
  }
  CHECK(is_terminal(S::finished));
  CHECK(is_terminal(S::failed));
  CHECK(is_terminal(S::stopped));
  CHECK_FALSE(is_terminal(S::stopping));
}

namespace {

// Every field of a spec, none at its default.
JobSpec full_spec(JobSource::Kind kind) {
  JobSpec s;
  s.name = "train";
  s.project = "proj";
  s.source.kind = kind;
  switch (kind) {
    case JobSource::Kind::image: s.source.image = "registry.local/train:1"; break;
    case JobSource::Kind::git:
      s.source.git_url = "/srv/repo.git";
      s.source.git_ref = "main";
      break;
    case JobSource::Kind::code: s.source.code_dir = "/src/train"; break;
    case JobSource::Kind::none: break;
  }
  s.entry_point = {"python", "train.py"};
  s.args = {"--epochs", "3"};
  s.env = {{"A", "1"}, {"B", "two words"}};
  s.run_config = R"({"lr":0.1,"layers":[1,2]})";
  s.resource_args = R"({"env":{"B":"2"}})";
  s.template_values = {{"gpus", "2"}, {"size", "m"}};
  s.priority = Priority::high;
  s.author = "ana";
  s.run_id = "abc12345";
  s.dockerfile = "docker/Dockerfile.gpu";
  return s;
}

void check_same(const JobSpec& r, const JobSpec& s) {
  CHECK(r.name == s.name);
  CHECK(r.project == s.project);
  CHECK(r.source.kind == s.source.kind);
  CHECK(r.source.image == s.source.image);
  CHECK(r.source.git_url == s.source.git_url);
  CHECK(r.source.git_ref == s.source.git_ref);
  CHECK(r.source.code_dir == s.source.code_dir);
  CHECK(r.entry_point == s.entry_point);
  CHECK(r.args == s.args);
  CHECK(r.env == s.env);
  CHECK(r.run_config == s.run_config);
  CHECK(r.resource_args == s.resource_args);
  CHECK(r.template_values == s.template_values);
  CHECK(r.priority == s.priority);
  CHECK(r.author == s.author);
  CHECK(r.run_id == s.run_id);
  CHECK(r.dockerfile == s.dockerfile);
}

// Every field of an item, none at its default.
QueueItem full_item() {
  QueueItem it;
  it.id = "42";
  it.queue = QueueRef{"team", "gpu"};
  it.spec = full_spec(JobSource::Kind::image);
  it.state = ItemState::failed;
  it.priority = Priority::critical;
  it.created_at = 1767225600001;
  it.updated_at = 1767225600005;
  it.started_at = 1767225600003;
  it.ended_at = 1767225600004;
  it.attempt = 2;
  it.resume_count = 1;
  it.lease_seconds = 45;
  it.max_attempts = 6;
  it.agent_id = "agent-host-9";
  it.lease_expires_at = 1767225645003;
  it.run_id = "r7xk2p0q";
  it.exit_code = 137;
  it.error = ItemError{ErrorStage::build, "no Dockerfile"};
  it.warnings = {"image is large", "slow registry"};
  return it;
}

}  // namespace

TEST_CASE("job: spec JSON round-trips every field, for each kind of source") {
  for (auto kind : {JobSource::Kind::image, JobSource::Kind::git, JobSource::Kind::code,
                    JobSource::Kind::none}) {
    JobSpec s = full_spec(kind);
    std::string j = to_json(s);
    INFO(j);
    JobSpec r = job_spec_from_json(j);
    check_same(r, s);
    CHECK(to_json(r) == j);
  }
  // Written in full: an unset priority is null, empty strings are there.
  std::string bare = to_json(JobSpec{});
  CHECK(bare == R"({"name":"","project":"","entry_point":[],"args":[],"env":{},)"
                R"("run_config":{},"resource_args":{},"template_values":{},"priority":null,)"
                R"("author":"","run_id":"","dockerfile":""})");
  CHECK_FALSE(job_spec_from_json(bare).priority);
}

TEST_CASE("job: spec JSON accepts unknown fields and names bad ones") {
  JobSpec s = job_spec_from_json(R"({"name":"x","added_later":{"a":1},"image":"i"})");
  CHECK(s.name == "x");
  CHECK(s.source.kind == JobSource::Kind::image);
  // A spec has no required field: every one has a default.
  check_same(job_spec_from_json("{}"), JobSpec{});

  // Numbers in template values are kept as their text; a priority may be 0-3.
  CHECK(job_spec_from_json(R"({"template_values":{"gpus":8}})").template_values.at("gpus") ==
        "8");
  CHECK(job_spec_from_json(R"({"priority":0})").priority == Priority::critical);

  auto refused = [](const std::string& text) {
    return launch_test::error_message([&] { job_spec_from_json(text); }, Errc::invalid);
  };
  std::string m = refused(R"({"entry_point":"python x.py"})");
  CHECK(has(m, "job spec: field \"entry_point\" must be an array of strings"));
  CHECK(has(refused(R"({"name":7})"), "field \"name\" must be a string"));
  CHECK(has(refused(R"({"env":{"A":[1]}})"), "field \"env.A\""));
  CHECK(has(refused(R"({"run_config":"lr=1"})"), "field \"run_config\" must be an object"));
  CHECK(has(refused(R"({"resource_args":[1]})"), "resource_args"));
  CHECK(has(refused(R"({"priority":true})"), "field \"priority\""));
  m = refused(R"({"priority":"urgent"})");
  CHECK(has(m, "field \"priority\""));
  CHECK(has(m, "urgent"));
  CHECK(has(refused(R"({"image":"a","code_dir":"/x"})"), "exactly one source"));
  CHECK(has(refused("{not json"), "invalid JSON"));
  CHECK(has(refused("[1]"), "expected a JSON object"));
}

TEST_CASE("job: item JSON round-trips every field") {
  QueueItem it = full_item();
  std::string j = to_json(it);
  INFO(j);
  QueueItem r = queue_item_from_json(j);
  CHECK(r.id == it.id);
  CHECK(r.queue == it.queue);
  check_same(r.spec, it.spec);
  CHECK(r.state == it.state);
  CHECK(r.priority == it.priority);
  CHECK(r.created_at == it.created_at);
  CHECK(r.updated_at == it.updated_at);
  CHECK(r.started_at == it.started_at);
  CHECK(r.ended_at == it.ended_at);
  CHECK(r.attempt == it.attempt);
  CHECK(r.resume_count == it.resume_count);
  CHECK(r.lease_seconds == it.lease_seconds);
  CHECK(r.max_attempts == it.max_attempts);
  CHECK(r.agent_id == it.agent_id);
  CHECK(r.lease_expires_at == it.lease_expires_at);
  CHECK(r.run_id == it.run_id);
  CHECK(r.exit_code == it.exit_code);
  REQUIRE(r.error);
  CHECK(r.error->stage == ErrorStage::build);
  CHECK(r.error->message == "no Dockerfile");
  CHECK(r.warnings == it.warnings);
  CHECK(to_json(r) == j);

  // An item through the lifecycle reads back the same too.
  QueueItem run = pending_item();
  lifecycle::claim(run, "agent-1", 2000);
  lifecycle::start(run, "agent-1", "", 2500);
  lifecycle::finish(run, "agent-1", 3, 3000);
  CHECK(to_json(queue_item_from_json(to_json(run))) == to_json(run));
  // No exit code and no error are written as null.
  QueueItem fresh = pending_item();
  CHECK(has(to_json(fresh), "\"exit_code\":null"));
  CHECK(has(to_json(fresh), "\"error\":null"));
  CHECK_FALSE(queue_item_from_json(to_json(fresh)).error);
}

TEST_CASE("job: item JSON accepts unknown fields, refuses missing and wrong ones by name") {
  QueueItem it = queue_item_from_json(
      R"({"id":"1","queue":"e/q","state":"running","added_later":[1],)"
      R"("spec":{"name":"n","added_later":true}})");
  CHECK(it.id == "1");
  CHECK(it.state == ItemState::running);
  CHECK(it.spec.name == "n");

  auto refused = [](const std::string& text) {
    return launch_test::error_message([&] { queue_item_from_json(text); }, Errc::invalid);
  };
  CHECK(has(refused(R"({"queue":"e/q","state":"pending"})"), "queue item: missing field \"id\""));
  CHECK(has(refused(R"({"id":"1","state":"pending"})"), "missing field \"queue\""));
  CHECK(has(refused(R"({"id":"1","queue":"e/q"})"), "missing field \"state\""));
  const std::string head = R"({"id":"1","queue":"e/q","state":"pending",)";
  CHECK(has(refused(R"({"id":1,"queue":"e/q","state":"pending"})"),
            "field \"id\" must be a string"));
  CHECK(has(refused(R"({"id":"1","queue":"e/q","state":"done"})"), "field \"state\""));
  CHECK(has(refused(R"({"id":"1","queue":"no such/q!","state":"pending"})"), "field \"queue\""));
  CHECK(has(refused(head + R"("attempt":"2"})"), "field \"attempt\" must be an integer"));
  CHECK(has(refused(head + R"("exit_code":"3"})"), "field \"exit_code\" must be an integer"));
  CHECK(has(refused(head + R"("lease_seconds":9999999999})"), "field \"lease_seconds\""));
  CHECK(has(refused(head + R"("error":"boom"})"), "field \"error\" must be an object"));
  CHECK(has(refused(head + R"("error":{"message":"m"}})"),
            "queue item: error: missing field \"stage\""));
  CHECK(has(refused(head + R"("error":{"stage":"deploy"}})"), "field \"stage\""));
  CHECK(has(refused(head + R"("warnings":"one"})"), "field \"warnings\""));
  CHECK(has(refused(head + R"("spec":[]})"), "queue item: spec"));
  CHECK(has(refused(head + R"("spec":{"args":"x"}})"), "queue item: spec: field \"args\""));
}

TEST_CASE("lifecycle: push rules") {
  JobSpec spec;
  spec.priority = Priority::high;
  std::string m = launch_test::error_message([&] { lifecycle::make_pending(queue(false), spec, 1); },
                             Errc::invalid);
  CHECK(m.find("prioritization off") != std::string::npos);
  CHECK(m.find("high") != std::string::npos);
  QueueItem it = lifecycle::make_pending(queue(true), spec, 1);
  CHECK(it.priority == Priority::high);
  CHECK(it.state == ItemState::pending);
  CHECK(it.run_id.size() == 8);
  CHECK(it.spec.run_id == it.run_id);
  CHECK(it.lease_seconds == 10);
  spec.run_id = "keepthis";
  CHECK(lifecycle::make_pending(queue(true), spec, 1).run_id == "keepthis");
  CHECK(generate_run_id() != generate_run_id());
}

TEST_CASE("lifecycle: the happy path and the lease holder") {
  QueueItem it = pending_item();
  lifecycle::claim(it, "a", 2000);
  CHECK(it.state == ItemState::claimed);
  CHECK(it.attempt == 1);
  CHECK(it.lease_expires_at == 12000);
  std::string m = launch_test::error_message([&] { lifecycle::start(it, "b", "", 2100); }, Errc::state);
  CHECK(m.find("\"b\"") != std::string::npos);
  CHECK(m.find("held by \"a\"") != std::string::npos);
  lifecycle::start(it, "a", "", 2100);
  CHECK(it.state == ItemState::running);
  launch_test::error_message([&] { lifecycle::claim(it, "a", 2200); }, Errc::state);
  lifecycle::finish(it, "a", 0, 3000);
  CHECK(it.state == ItemState::finished);
  CHECK(it.exit_code == 0);
  CHECK_FALSE(it.error);
  CHECK(it.lease_expires_at == 0);
  m = launch_test::error_message([&] { lifecycle::cancel(it, 4000); }, Errc::state);
  CHECK(m.find("already finished") != std::string::npos);
  launch_test::error_message([&] { lifecycle::finish(it, "a", 0, 4000); }, Errc::state);
}

TEST_CASE("lifecycle: finish before start, fail, stopped are checked") {
  QueueItem it = pending_item();
  lifecycle::claim(it, "a", 2000);
  launch_test::error_message([&] { lifecycle::finish(it, "a", 0, 2100); }, Errc::state);
  launch_test::error_message([&] { lifecycle::confirm_stopped(it, "a", 2100); }, Errc::state);
  lifecycle::fail(it, "a", ItemError{ErrorStage::build, "no Dockerfile"}, std::nullopt, 2200);
  CHECK(it.state == ItemState::failed);
  CHECK(it.error->stage == ErrorStage::build);
  CHECK_FALSE(it.exit_code);
}

TEST_CASE("lifecycle: cancel at each state") {
  QueueItem p = pending_item();
  lifecycle::cancel(p, 1500);
  CHECK(p.state == ItemState::stopped);
  CHECK(p.ended_at == 1500);

  QueueItem c = pending_item();
  lifecycle::claim(c, "a", 2000);
  lifecycle::cancel(c, 2100);
  CHECK(c.state == ItemState::stopping);
  lifecycle::cancel(c, 2150);  // a second cancel changes nothing
  CHECK(c.state == ItemState::stopping);
  launch_test::error_message([&] { lifecycle::start(c, "a", "", 2200); }, Errc::state);
  lifecycle::confirm_stopped(c, "a", 2300);
  CHECK(c.state == ItemState::stopped);

  QueueItem r = pending_item();
  lifecycle::claim(r, "a", 2000);
  lifecycle::start(r, "a", "", 2000);
  lifecycle::cancel(r, 2100);
  CHECK(r.state == ItemState::stopping);
  // The run ended on its own before the cancel reached it.
  lifecycle::finish(r, "a", 0, 2200);
  CHECK(r.state == ItemState::finished);
}

TEST_CASE("lifecycle: requeue keeps the run id; preemption is bounded") {
  QueueItem it = pending_item();
  std::string run_id = it.run_id;
  lifecycle::claim(it, "a", 2000);
  lifecycle::requeue(it, "a", RequeueReason::released, 2100);
  CHECK(it.state == ItemState::pending);
  CHECK(it.agent_id.empty());
  CHECK(it.run_id == run_id);
  for (int i = 1; i <= lifecycle::kMaxResumes; ++i) {
    lifecycle::claim(it, "a", 3000 + i);
    launch_test::error_message(
        [&] { lifecycle::requeue(it, "a", RequeueReason::preempted, 3000); }, Errc::state);
    lifecycle::start(it, "a", "", 3000 + i);
    lifecycle::requeue(it, "a", RequeueReason::preempted, 3000 + i);
    CHECK(it.state == ItemState::pending);
    CHECK(it.resume_count == i);
    CHECK(it.run_id == run_id);
  }
  lifecycle::claim(it, "a", 4000);
  lifecycle::start(it, "a", "", 4000);
  lifecycle::requeue(it, "a", RequeueReason::preempted, 4001);
  CHECK(it.state == ItemState::failed);
  CHECK(it.error->message.find("preempted 6 times") != std::string::npos);
}

TEST_CASE("lifecycle: leases renew, expire to pending, then fail") {
  QueueItem it = pending_item();  // lease 10 s, max_attempts 2
  lifecycle::claim(it, "a", 0);
  CHECK_FALSE(lifecycle::lease_expired(it, 9000));
  CHECK(lifecycle::renew(it, "a", 5000));
  CHECK(it.lease_expires_at == 15000);
  CHECK_FALSE(lifecycle::renew(it, "b", 5000));
  CHECK_FALSE(lifecycle::expire(it, 14000));
  CHECK(lifecycle::expire(it, 15001));
  CHECK(it.state == ItemState::pending);
  CHECK(it.warnings.size() == 1);
  CHECK_FALSE(lifecycle::renew(it, "a", 16000));  // the agent lost it
  lifecycle::claim(it, "b", 20000);
  CHECK(it.attempt == 2);
  CHECK(lifecycle::expire(it, 31000));
  CHECK(it.state == ItemState::failed);
  CHECK(it.error->stage == ErrorStage::agent);
  CHECK(it.error->message.find("attempt 2 of 2") != std::string::npos);

  QueueItem s = pending_item();
  lifecycle::claim(s, "a", 0);
  lifecycle::cancel(s, 1);
  CHECK(lifecycle::expire(s, 20000));
  CHECK(s.state == ItemState::stopped);
}

TEST_CASE("job: a name is UTF-8 text of at most 128 characters, shown whole") {
  JobSpec s;
  s.name = "训练-é-🚀";
  s.validate();
  std::string long_name;
  for (int i = 0; i < 128; ++i) long_name += "é";  // 256 bytes, 128 characters
  s.name = long_name;
  s.validate();
  s.name += "é";
  std::string m = launch_test::invalid([&] { s.validate(); });
  CHECK(has(m, "job spec: name \"" + s.name + "\" is 129 characters long; at most 128"));
  s.name = "ab\xE9";  // Latin-1, not UTF-8
  m = launch_test::invalid([&] { s.validate(); });
  CHECK(has(m, "job spec: name \"ab\\xE9\": not UTF-8 text (byte 0xE9 at offset 2)"));
  s.name = "bell\a";
  m = launch_test::invalid([&] { s.validate(); });
  CHECK(has(m, "control character U+0007"));
}

TEST_CASE("lifecycle: an unreadable item fails at stage agent, an ended one keeps its state") {
  QueueItem it;
  it.id = "7";
  it.state = ItemState::pending;
  CHECK(lifecycle::quarantine(it, "job spec: invalid JSON", 1000));
  CHECK(it.state == ItemState::failed);
  REQUIRE(it.error);
  CHECK(it.error->stage == ErrorStage::agent);
  CHECK(it.error->message == "unreadable item: job spec: invalid JSON");
  CHECK(it.ended_at == 1000);

  QueueItem done;
  done.state = ItemState::finished;
  done.ended_at = 5;
  CHECK_FALSE(lifecycle::quarantine(done, "bad", 1000));
  CHECK(done.state == ItemState::finished);
  CHECK(done.ended_at == 5);
  REQUIRE(done.error);
  CHECK(done.error->message == "unreadable item: bad");
}
