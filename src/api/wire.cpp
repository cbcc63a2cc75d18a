#include "api/wire.hpp"

#include <climits>
#include <regex>

#include <fmt/format.h>

#include "core/json_fields.hpp"
#include "util/enum_names.hpp"
#include "util/json.hpp"

namespace launch {
namespace api {
namespace wire {

namespace {

const util::EnumName<Errc> kErrcNames[] = {
    {Errc::invalid, "invalid"},         {Errc::not_found, "not_found"}, {Errc::exists, "exists"},
    {Errc::state, "state"},             {Errc::io, "io"},               {Errc::unsupported, "unsupported"},
    {Errc::timeout, "timeout"},         {Errc::internal, "internal"},   {Errc::user, "user"}};

const util::EnumName<RequeueReason> kReasons[] = {{RequeueReason::released, "released"},
                                                  {RequeueReason::preempted, "preempted"}};

Errc errc_for_http_status(long status) {
  if (status == 400 || status == 413 || status == 422 || status == 401 || status == 403) {
    return Errc::invalid;
  }
  if (status == 404 || status == 410) return Errc::not_found;
  if (status == 409) return Errc::state;
  if (status == 408 || status == 504) return Errc::timeout;
  if (status == 501 || status == 405) return Errc::unsupported;
  return Errc::io;
}

std::optional<QueueItem> optional_item(const json::Value& obj, const char* key,
                                       const std::string& ctx) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull()) return std::nullopt;
  try {
    return queue_item_from_json(json::dump(it->value));
  } catch (const Error& e) {
    throw Error(e.code(), fmt::format("{}: field \"{}\": {}", ctx, key, e.what()));
  }
}

// The key must be there, null or not: an answer without it is not "none".
void require_present(const json::Value& obj, const char* key, const std::string& ctx) {
  if (!obj.HasMember(key)) {
    throw Error(Errc::invalid, fmt::format("{}: missing field \"{}\"", ctx, key));
  }
}

}  // namespace

std::string field_of(const std::string& message) {
  static const std::regex named("field \"([^\"]+)\"");
  static const std::regex variable("template variable \"([^\"]+)\"(?:: (minimum|maximum|enum|default|type|description))?");
  std::smatch m;
  if (std::regex_search(message, m, named)) return m[1].str();
  if (std::regex_search(message, m, variable)) {
    return "template_variables." + m[1].str() + (m[2].matched ? "." + m[2].str() : "");
  }
  if (message.find("queue name") != std::string::npos) return "name";
  if (message.find("entity") != std::string::npos) return "entity";
  if (message.find("config") != std::string::npos) return "config";
  if (message.find("resource") != std::string::npos) return "resource";
  return "";
}

const char* errc_name(Errc code) { return util::enum_name(kErrcNames, code, "internal"); }

std::string error_body(Errc code, const std::string& message) {
  return error_body_named(errc_name(code), message);
}

std::string error_body_named(const std::string& code, const std::string& message) {
  json::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  json::Value e(rapidjson::kObjectType);
  e.AddMember("code", json::str(code, a), a);
  e.AddMember("message", json::str(message, a), a);
  std::string field = field_of(message);
  e.AddMember("field", field.empty() ? json::Value() : json::str(field, a), a);
  d.AddMember("error", e, a);
  return json::dump(d);
}

Error error_from_body(long status, const std::string& body) {
  try {
    json::Document d = json::parse_object(body, "error answer");
    auto e = d.FindMember("error");
    if (e != d.MemberEnd() && e->value.IsObject()) {
      std::string code = json::get_string(e->value, "code", "error answer");
      std::string message = json::get_string(e->value, "message", "error answer");
      const Errc* c = util::enum_find(kErrcNames, code);
      return Error(c ? *c : errc_for_http_status(status), message);
    }
  } catch (const Error&) {
    // not our error body: a proxy's page, say
  }
  std::string text = body.substr(0, body.find('\n'));
  if (text.size() > 300) text.resize(300);
  return Error(errc_for_http_status(status),
               fmt::format("launch server answered HTTP {}{}{}", status, text.empty() ? "" : ": ",
                           text));
}

AgentCall read_agent_call(const std::string& body, const std::string& verb) {
  const std::string ctx = verb + " request";
  json::Document d = json::parse_object(body, ctx);
  AgentCall c;
  json::require(d, "agent_id", ctx);
  c.agent_id = json::get_string(d, "agent_id", ctx);
  if (verb == "start") {
    json::require(d, "run_id", ctx);
    c.run_id = json::get_string(d, "run_id", ctx);
  }
  if (verb == "finish" || verb == "finish-and-claim") json::require(d, "exit_code", ctx);
  if (d.HasMember("exit_code") && !d["exit_code"].IsNull()) {
    c.exit_code = json::get_int32(d, "exit_code", ctx, 0);
  }
  if (verb == "fail") {
    json::require(d, "error", ctx);
    c.error = json::item_error_from(d["error"], ctx + ": error");
  }
  if (verb == "requeue") {
    json::require(d, "reason", ctx);
    c.reason = json::get_enum(d, "reason", ctx, "released", parse_requeue_reason);
  }
  if (verb == "claim" || verb == "finish-and-claim") {
    json::require(d, "queues", ctx);
    for (const auto& q : json::get_string_array(d, "queues", ctx)) {
      try {
        c.queues.push_back(QueueRef::parse(q));
      } catch (const Error& e) {
        throw Error(e.code(), fmt::format("{}: field \"queues\": {}", ctx, e.what()));
      }
    }
  }
  if (verb == "heartbeat") {
    json::require(d, "items", ctx);
    c.items = json::get_string_array(d, "items", ctx);
  }
  return c;
}

std::string agent_call_body(const AgentCall& c, const std::string& verb) {
  json::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  json::set(d, "agent_id", json::str(c.agent_id, a), a);
  if (verb == "start") json::set(d, "run_id", json::str(c.run_id, a), a);
  if (c.exit_code) json::set(d, "exit_code", json::Value(*c.exit_code), a);
  if (verb == "fail") json::set(d, "error", json::item_error_value(c.error, a), a);
  if (verb == "requeue") json::set(d, "reason", json::str(to_string(c.reason), a), a);
  if (verb == "claim" || verb == "finish-and-claim") {
    std::vector<std::string> queues;
    for (const auto& q : c.queues) queues.push_back(q.str());
    json::set(d, "queues", json::string_array(queues, a), a);
  }
  if (verb == "heartbeat") json::set(d, "items", json::string_array(c.items, a), a);
  return json::dump(d);
}

std::string read_warning(const std::string& body) {
  const std::string ctx = "warning request";
  json::Document d = json::parse_object(body, ctx);
  json::require(d, "message", ctx);
  return json::get_string(d, "message", ctx);
}

std::string warning_body(const std::string& message) {
  json::Document d(rapidjson::kObjectType);
  json::set(d, "message", json::str(message, d.GetAllocator()), d.GetAllocator());
  return json::dump(d);
}

std::string claim_body(const std::optional<QueueItem>& item) {
  return "{\"item\":" + (item ? to_json(*item) : std::string("null")) + "}";
}

std::optional<QueueItem> claim_from_body(const std::string& body) {
  json::Document d = json::parse_object(body, "claim answer");
  require_present(d, "item", "claim answer");
  return optional_item(d, "item", "claim answer");
}

std::string finish_and_claim_body(const FinishAndClaim& fc) {
  return "{\"finished\":" + to_json(fc.finished) +
         ",\"next\":" + (fc.next ? to_json(*fc.next) : std::string("null")) + "}";
}

FinishAndClaim finish_and_claim_from_body(const std::string& body) {
  const std::string ctx = "finish-and-claim answer";
  json::Document d = json::parse_object(body, ctx);
  json::require(d, "finished", ctx);
  require_present(d, "next", ctx);
  FinishAndClaim fc;
  fc.finished = queue_item_from_json(json::dump(d["finished"]));
  fc.next = optional_item(d, "next", ctx);
  return fc;
}

std::vector<std::string> deleted_from_body(const std::string& body) {
  const std::string ctx = "delete answer";
  json::Document d = json::parse_object(body, ctx);
  json::require(d, "deleted", ctx);
  return json::get_string_array(d, "deleted", ctx);
}

int moved_from_body(const std::string& body) {
  const std::string ctx = "expire answer";
  json::Document d = json::parse_object(body, ctx);
  json::require(d, "moved", ctx);
  return json::get_int32(d, "moved", ctx, 0);
}

std::vector<std::string> array_elements(const std::string& body, const std::string& what) {
  json::Document d = json::parse(body, what);
  if (!d.IsArray()) {
    throw Error(Errc::invalid, fmt::format("{}: expected a JSON array, got {}", what,
                                           json::type_name(d)));
  }
  std::vector<std::string> out;
  out.reserve(d.Size());
  for (const auto& v : d.GetArray()) out.push_back(json::dump(v));
  return out;
}

std::uint64_t parse_count(const std::string& text, const std::string& what) {
  if (text.empty() || text.size() > 18 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    throw Error(Errc::invalid,
                fmt::format("{}: \"{}\" is not a count (0 to 18 digits)", what, text));
  }
  return static_cast<std::uint64_t>(std::stoull(text));
}

const char* to_string(RequeueReason why) { return util::enum_name(kReasons, why, "released"); }

RequeueReason parse_requeue_reason(const std::string& text) {
  return util::enum_parse(kReasons, text, "requeue reason");
}

}  // namespace wire
}  // namespace api
}  // namespace launch
