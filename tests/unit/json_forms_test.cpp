// The JSON forms of what agents exchange: the agent record and the heartbeat
// reply (transport.hpp) and the job event (agent.hpp). Each round-trips
// every field, reads documents with fields it does not know, and refuses a
// missing required field or a wrong type by name.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "launch/agent.hpp"
#include "launch/error.hpp"
#include "launch/transport.hpp"
#include "unit/expect_error.hpp"

using namespace launch;
using launch_test::has;

namespace {

template <typename Read>
std::string refused(Read read, const std::string& text) {
  return launch_test::error_message([&] { read(text); }, Errc::invalid);
}

}  // namespace

TEST_CASE("agent record JSON round-trips every field") {
  AgentRecord a;
  a.id = "gpu-box-4711";
  a.host = "gpu-box";
  a.pid = 4711;
  a.version = "1.2.3";
  a.entity = "ml-team";
  a.queues = {"ml-team/gpu", "ml-team/cpu"};
  a.status = AgentStatus::running;
  a.max_jobs = -1;
  a.running_jobs = 3;
  a.started_at = 1767225600001;
  a.last_seen = 1767225690002;
  std::string j = to_json(a);
  CHECK(j == R"({"id":"gpu-box-4711","host":"gpu-box","pid":4711,"version":"1.2.3",)"
             R"("entity":"ml-team","queues":["ml-team/gpu","ml-team/cpu"],"status":"running",)"
             R"("max_jobs":-1,"running_jobs":3,"started_at":1767225600001,)"
             R"("last_seen":1767225690002})");
  AgentRecord r = agent_record_from_json(j);
  CHECK(r.id == a.id);
  CHECK(r.host == a.host);
  CHECK(r.pid == a.pid);
  CHECK(r.version == a.version);
  CHECK(r.entity == a.entity);
  CHECK(r.queues == a.queues);
  CHECK(r.status == a.status);
  CHECK(r.max_jobs == a.max_jobs);
  CHECK(r.running_jobs == a.running_jobs);
  CHECK(r.started_at == a.started_at);
  CHECK(r.last_seen == a.last_seen);
  CHECK(to_json(r) == j);
}

TEST_CASE("agent record JSON: the judged statuses lost and dead round-trip") {
  for (AgentStatus st : {AgentStatus::lost, AgentStatus::dead}) {
    AgentRecord a;
    a.id = "a";
    a.status = st;
    std::string j = to_json(a);
    CHECK(j.find(std::string("\"status\":\"") + to_string(st) + "\"") != std::string::npos);
    CHECK(agent_record_from_json(j).status == st);
  }
}

TEST_CASE("agent record JSON: unknown fields read, missing and wrong ones named") {
  AgentRecord r = agent_record_from_json(R"({"id":"a","status":"stopped","gpus":[0,1]})");
  CHECK(r.id == "a");
  CHECK(r.status == AgentStatus::stopped);
  CHECK(r.max_jobs == 1);  // the default

  auto read = [](const std::string& t) { agent_record_from_json(t); };
  CHECK(has(refused(read, R"({"status":"polling"})"), "agent record: missing field \"id\""));
  CHECK(has(refused(read, R"({"id":"a"})"), "agent record: missing field \"status\""));
  CHECK(has(refused(read, R"({"id":"a","status":"asleep"})"), "field \"status\""));
  CHECK(has(refused(read, R"({"id":"a","status":"polling","pid":"12"})"),
            "field \"pid\" must be an integer"));
  CHECK(has(refused(read, R"({"id":"a","status":"polling","queues":"e/q"})"),
            "field \"queues\" must be an array of strings"));
  CHECK(has(refused(read, R"({"id":"a","status":"polling","max_jobs":1e12})"),
            "field \"max_jobs\" is out of range"));
  CHECK(has(refused(read, R"({"id":"a","status":"polling","last_seen":true})"),
            "field \"last_seen\""));
  CHECK(has(refused(read, "[]"), "agent record: expected a JSON object"));
}

TEST_CASE("heartbeat reply JSON round-trips every field") {
  HeartbeatReply h;
  h.cancel_requested = {"3", "9"};
  h.lost = {"12"};
  std::string j = to_json(h);
  CHECK(j == R"({"cancel_requested":["3","9"],"lost":["12"]})");
  HeartbeatReply r = heartbeat_reply_from_json(j);
  CHECK(r.cancel_requested == h.cancel_requested);
  CHECK(r.lost == h.lost);
  CHECK(to_json(HeartbeatReply{}) == R"({"cancel_requested":[],"lost":[]})");
}

TEST_CASE("heartbeat reply JSON: unknown fields read, missing and wrong ones named") {
  HeartbeatReply r =
      heartbeat_reply_from_json(R"({"cancel_requested":["1"],"lost":[],"renewed":["2"]})");
  CHECK(r.cancel_requested == std::vector<std::string>{"1"});
  auto read = [](const std::string& t) { heartbeat_reply_from_json(t); };
  CHECK(has(refused(read, R"({"lost":[]})"),
            "heartbeat reply: missing field \"cancel_requested\""));
  CHECK(has(refused(read, R"({"cancel_requested":[]})"), "missing field \"lost\""));
  CHECK(has(refused(read, R"({"cancel_requested":[1],"lost":[]})"),
            "field \"cancel_requested\" must be an array of strings"));
  CHECK(has(refused(read, R"({"cancel_requested":[],"lost":{}})"), "field \"lost\""));
}

TEST_CASE("job event JSON round-trips every field") {
  JobEvent e;
  e.item_id = "17";
  e.queue = QueueRef{"team", "gpu"};
  e.state = ItemState::failed;
  e.run_id = "k2m9x0pq";
  e.exit_code = 3;
  e.message = "run: exited with code 3";
  std::string j = to_json(e);
  CHECK(j == R"({"item_id":"17","queue":"team/gpu","state":"failed","run_id":"k2m9x0pq",)"
             R"("exit_code":3,"message":"run: exited with code 3"})");
  JobEvent r = job_event_from_json(j);
  CHECK(r.item_id == e.item_id);
  CHECK(r.queue == e.queue);
  CHECK(r.state == e.state);
  CHECK(r.run_id == e.run_id);
  CHECK(r.exit_code == e.exit_code);
  CHECK(r.message == e.message);
  CHECK(to_json(r) == j);

  // No exit code: null, and read back as none.
  e.exit_code.reset();
  CHECK(has(to_json(e), "\"exit_code\":null"));
  CHECK_FALSE(job_event_from_json(to_json(e)).exit_code);
}

TEST_CASE("job event JSON: unknown fields read, missing and wrong ones named") {
  JobEvent e = job_event_from_json(
      R"({"item_id":"1","queue":"e/q","state":"running","time":"2026-12-01T00:00:00Z"})");
  CHECK(e.state == ItemState::running);
  CHECK(e.message.empty());

  auto read = [](const std::string& t) { job_event_from_json(t); };
  CHECK(has(refused(read, R"({"queue":"e/q","state":"running"})"),
            "job event: missing field \"item_id\""));
  CHECK(has(refused(read, R"({"item_id":"1","state":"running"})"), "missing field \"queue\""));
  CHECK(has(refused(read, R"({"item_id":"1","queue":"e/q"})"), "missing field \"state\""));
  CHECK(has(refused(read, R"({"item_id":"1","queue":"e/q","state":"asleep"})"),
            "field \"state\""));
  CHECK(has(refused(read, R"({"item_id":"1","queue":"bad queue!","state":"running"})"),
            "field \"queue\""));
  CHECK(has(refused(read, R"({"item_id":"1","queue":"e/q","state":"failed","exit_code":"3"})"),
            "field \"exit_code\" must be an integer"));
  CHECK(has(refused(read, R"({"item_id":"1","queue":"e/q","state":"failed","message":{}})"),
            "field \"message\" must be a string"));
}
