// The JSON forms of what agents exchange with a store and their hosts: the
// agent's record (transport.hpp), a heartbeat's answer (transport.hpp) and a
// job event (agent.hpp). Every field is written; readers accept fields they
// do not know and refuse a missing required one or a wrong type by name.
// An agent record's status is one of AgentStatus's five names, lost and
// dead included (what a store judged of it when it was listed).
#include <fmt/format.h>

#include "util/json.hpp"
#include "core/json_fields.hpp"
#include "launch/agent.hpp"
#include "launch/error.hpp"
#include "launch/transport.hpp"

namespace launch {

using json::Value;

std::string to_json(const AgentRecord& r) {
  json::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  json::set(d, "id", json::str(r.id, a), a);
  json::set(d, "host", json::str(r.host, a), a);
  json::set(d, "pid", Value(r.pid), a);
  json::set(d, "version", json::str(r.version, a), a);
  json::set(d, "entity", json::str(r.entity, a), a);
  json::set(d, "queues", json::string_array(r.queues, a), a);
  json::set(d, "status", Value(to_string(r.status), a), a);
  json::set(d, "max_jobs", Value(r.max_jobs), a);
  json::set(d, "running_jobs", Value(r.running_jobs), a);
  json::set(d, "started_at", Value(static_cast<int64_t>(r.started_at)), a);
  json::set(d, "last_seen", Value(static_cast<int64_t>(r.last_seen)), a);
  return json::dump(d);
}

AgentRecord agent_record_from_json(const std::string& text) {
  const std::string ctx = "agent record";
  json::Document d = json::parse_object(text, ctx);
  for (const char* key : {"id", "status"}) json::require(d, key, ctx);
  AgentRecord r;
  r.id = json::get_string(d, "id", ctx);
  r.host = json::get_string(d, "host", ctx);
  r.pid = json::get_int32(d, "pid", ctx, r.pid);
  r.version = json::get_string(d, "version", ctx);
  r.entity = json::get_string(d, "entity", ctx);
  r.queues = json::get_string_array(d, "queues", ctx);
  r.status = json::get_enum(d, "status", ctx, "", parse_agent_status);
  r.max_jobs = json::get_int32(d, "max_jobs", ctx, r.max_jobs);
  r.running_jobs = json::get_int32(d, "running_jobs", ctx, r.running_jobs);
  r.started_at = json::get_int(d, "started_at", ctx);
  r.last_seen = json::get_int(d, "last_seen", ctx);
  return r;
}

std::string to_json(const HeartbeatReply& r) {
  json::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  json::set(d, "cancel_requested", json::string_array(r.cancel_requested, a), a);
  json::set(d, "lost", json::string_array(r.lost, a), a);
  return json::dump(d);
}

HeartbeatReply heartbeat_reply_from_json(const std::string& text) {
  const std::string ctx = "heartbeat reply";
  json::Document d = json::parse_object(text, ctx);
  // Both lists are required: a reply that lacks one is not "nothing to do".
  for (const char* key : {"cancel_requested", "lost"}) json::require(d, key, ctx);
  HeartbeatReply r;
  r.cancel_requested = json::get_string_array(d, "cancel_requested", ctx);
  r.lost = json::get_string_array(d, "lost", ctx);
  return r;
}

std::string to_json(const JobEvent& e) {
  json::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  json::set(d, "item_id", json::str(e.item_id, a), a);
  json::set(d, "queue", json::str(e.queue.str(), a), a);
  json::set(d, "state", Value(to_string(e.state), a), a);
  json::set(d, "run_id", json::str(e.run_id, a), a);
  json::set(d, "exit_code", e.exit_code ? Value(*e.exit_code) : Value(), a);
  json::set(d, "message", json::str(e.message, a), a);
  return json::dump(d);
}

JobEvent job_event_from_json(const std::string& text) {
  const std::string ctx = "job event";
  json::Document d = json::parse_object(text, ctx);
  for (const char* key : {"item_id", "queue", "state"}) json::require(d, key, ctx);
  JobEvent e;
  e.item_id = json::get_string(d, "item_id", ctx);
  e.queue = json::get_enum(d, "queue", ctx, "",
                           [](const std::string& t) { return QueueRef::parse(t); });
  e.state = json::get_enum(d, "state", ctx, "", parse_item_state);
  e.run_id = json::get_string(d, "run_id", ctx);
  if (d.HasMember("exit_code") && !d["exit_code"].IsNull()) {
    e.exit_code = json::get_int32(d, "exit_code", ctx, 0);
  }
  e.message = json::get_string(d, "message", ctx);
  return e;
}

}  // namespace launch
