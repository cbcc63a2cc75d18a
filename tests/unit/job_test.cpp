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

TEST_CASE("job: spec JSON round-trips and bad fields are named") {
  JobSpec s;
  s.name = "train";
  s.project = "proj";
  s.source.kind = JobSource::Kind::git;
  s.source.git_url = "/srv/repo.git";
  s.source.git_ref = "main";
  s.entry_point = {"python", "train.py"};
  s.args = {"--epochs", "3"};
  s.env = {{"A", "1"}};
  s.run_config = R"({"lr":0.1})";
  s.resource_args = R"({"env":{"B":"2"}})";
  s.template_values = {{"gpus", "2"}};
  s.priority = Priority::high;
  s.author = "ana";
  s.run_id = "abc12345";
  JobSpec r = job_spec_from_json(to_json(s));
  CHECK(r.name == s.name);
  CHECK(r.project == "proj");
  CHECK(r.source.kind == JobSource::Kind::git);
  CHECK(r.source.git_ref == "main");
  CHECK(r.entry_point == s.entry_point);
  CHECK(r.args == s.args);
  CHECK(r.env == s.env);
  CHECK(r.run_config == s.run_config);
  CHECK(r.resource_args == s.resource_args);
  CHECK(r.template_values == s.template_values);
  CHECK(r.priority == Priority::high);
  CHECK(r.run_id == "abc12345");

  // Numbers in template values are kept as their text.
  CHECK(job_spec_from_json(R"({"template_values":{"gpus":8}})").template_values.at("gpus") ==
        "8");
  std::string m = launch_test::error_message([] { job_spec_from_json(R"({"entry_point":"python x.py"})"); },
                             Errc::invalid);
  CHECK(m.find("entry_point") != std::string::npos);
  m = launch_test::error_message([] { job_spec_from_json(R"({"image":"a","code_dir":"/x"})"); }, Errc::invalid);
  CHECK(m.find("exactly one source") != std::string::npos);
  m = launch_test::error_message([] { job_spec_from_json(R"({"resource_args":[1]})"); }, Errc::invalid);
  CHECK(m.find("resource_args") != std::string::npos);
  m = launch_test::error_message([] { job_spec_from_json(R"({"nmae":"x"})"); }, Errc::invalid);
  CHECK(m.find("\"nmae\"") != std::string::npos);
  m = launch_test::error_message([] { job_spec_from_json(R"({"priority":"urgent"})"); }, Errc::invalid);
  CHECK(m.find("urgent") != std::string::npos);
  m = launch_test::error_message([] { job_spec_from_json("{not json"); }, Errc::invalid);
  CHECK(m.find("invalid JSON") != std::string::npos);
}

TEST_CASE("job: item JSON round-trips every field") {
  QueueItem it = pending_item();
  lifecycle::claim(it, "agent-1", 2000);
  lifecycle::start(it, "agent-1", "", 2500);
  lifecycle::finish(it, "agent-1", 3, 3000);
  it.warnings.push_back("careful");
  QueueItem r = queue_item_from_json(to_json(it));
  CHECK(r.id == "7");
  CHECK(r.queue.str() == "team/q");
  CHECK(r.state == ItemState::failed);
  CHECK(r.exit_code == 3);
  REQUIRE(r.error);
  CHECK(r.error->stage == ErrorStage::run);
  CHECK(r.error->message == "exited with code 3");
  CHECK(r.attempt == 1);
  CHECK(r.started_at == 2500);
  CHECK(r.ended_at == 3000);
  CHECK(r.run_id == it.run_id);
  CHECK(r.warnings == std::vector<std::string>{"careful"});
  CHECK(r.spec.name == "train");
  CHECK(to_json(r) == to_json(it));
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
