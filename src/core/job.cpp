// The job model: names of enums, the state machine's table, JobSpec checks
// and the JSON forms of specs and items.
#include "launch/job.hpp"

#include <chrono>
#include <random>

#include <fmt/format.h>

#include "core/json_fields.hpp"
#include "util/json.hpp"
#include "launch/error.hpp"
#include "util/enum_names.hpp"
#include "util/limits.hpp"
#include "util/utf8.hpp"

namespace launch {

namespace {

const util::EnumName<Priority> kPriorities[] = {{Priority::critical, "critical"},
                                                {Priority::high, "high"},
                                                {Priority::medium, "medium"},
                                                {Priority::low, "low"}};
const util::EnumName<ItemState> kItemStates[] = {
    {ItemState::pending, "pending"},   {ItemState::claimed, "claimed"},
    {ItemState::running, "running"},   {ItemState::stopping, "stopping"},
    {ItemState::finished, "finished"}, {ItemState::failed, "failed"},
    {ItemState::stopped, "stopped"}};
const util::EnumName<ErrorStage> kErrorStages[] = {
    {ErrorStage::agent, "agent"}, {ErrorStage::build, "build"}, {ErrorStage::run, "run"}};

}  // namespace

const char* to_string(Priority p) { return util::enum_name(kPriorities, p, "medium"); }

Priority parse_priority(const std::string& text) {
  // The numbers are W&B's: 0 (critical) to 3 (low).
  if (text.size() == 1 && text[0] >= '0' && text[0] <= '3') {
    return static_cast<Priority>(text[0] - '0');
  }
  if (const Priority* p = util::enum_find(kPriorities, text)) return *p;
  util::throw_bad_enum("priority", text, util::enum_choices(kPriorities) + " (or 0-3)");
}

const char* to_string(ItemState s) { return util::enum_name(kItemStates, s, "pending"); }

ItemState parse_item_state(const std::string& text) {
  return util::enum_parse(kItemStates, text, "state");
}

bool is_terminal(ItemState s) {
  return s == ItemState::finished || s == ItemState::failed || s == ItemState::stopped;
}

bool can_transition(ItemState from, ItemState to) {
  using S = ItemState;
  switch (from) {
    case S::pending:
      return to == S::claimed || to == S::stopped;
    case S::claimed:
      return to == S::running || to == S::failed || to == S::stopping || to == S::pending;
    case S::running:
      return to == S::finished || to == S::failed || to == S::stopping || to == S::pending;
    case S::stopping:
      // A run may end on its own while its cancel is on the way.
      return to == S::stopped || to == S::finished || to == S::failed;
    case S::finished:
    case S::failed:
    case S::stopped:
      return false;
  }
  return false;
}

const char* to_string(ErrorStage s) { return util::enum_name(kErrorStages, s, "agent"); }

ErrorStage parse_error_stage(const std::string& text) {
  return util::enum_parse(kErrorStages, text, "error stage");
}

void JobSpec::validate() const {
  switch (source.kind) {
    case JobSource::Kind::image:
      if (source.image.empty()) throw Error(Errc::invalid, "job spec: image is empty");
      break;
    case JobSource::Kind::git:
      if (source.git_url.empty()) throw Error(Errc::invalid, "job spec: git_url is empty");
      break;
    case JobSource::Kind::code:
      if (source.code_dir.empty()) throw Error(Errc::invalid, "job spec: code_dir is empty");
      break;
    case JobSource::Kind::none:
      break;
  }
  util::check_text("job spec: name", name, limits::kMaxJobNameChars);
  for (std::size_t i = 0; i < entry_point.size(); ++i) {
    if (entry_point[i].empty() && i == 0) {
      throw Error(Errc::invalid, "job spec: entry_point[0] (the program) is empty");
    }
  }
  for (const auto& kv : env) {
    if (kv.first.empty() || kv.first.find('=') != std::string::npos) {
      throw Error(Errc::invalid,
                  fmt::format("job spec: env name \"{}\" must be non-empty and without '='",
                              kv.first));
    }
  }
  json::parse_object(run_config, "job spec: run_config");
  json::parse_object(resource_args, "job spec: resource_args");
}

namespace {

using json::Allocator;
using json::Value;

// Every field is written, empty or not, except the source: only the keys of
// its kind (image; git_url and git_ref; code_dir), so exactly one is there.
Value spec_value(const JobSpec& s, Allocator& a) {
  Value o(rapidjson::kObjectType);
  o.AddMember("name", json::str(s.name, a), a);
  o.AddMember("project", json::str(s.project, a), a);
  switch (s.source.kind) {
    case JobSource::Kind::image:
      o.AddMember("image", json::str(s.source.image, a), a);
      break;
    case JobSource::Kind::git:
      o.AddMember("git_url", json::str(s.source.git_url, a), a);
      o.AddMember("git_ref", json::str(s.source.git_ref, a), a);
      break;
    case JobSource::Kind::code:
      o.AddMember("code_dir", json::str(s.source.code_dir, a), a);
      break;
    case JobSource::Kind::none:
      break;
  }
  o.AddMember("entry_point", json::string_array(s.entry_point, a), a);
  o.AddMember("args", json::string_array(s.args, a), a);
  o.AddMember("env", json::string_map(s.env, a), a);
  o.AddMember("run_config", json::raw(s.run_config, "job spec: run_config", a), a);
  o.AddMember("resource_args", json::raw(s.resource_args, "job spec: resource_args", a), a);
  o.AddMember("template_values", json::string_map(s.template_values, a), a);
  if (s.priority) {
    o.AddMember("priority", json::str(to_string(*s.priority), a), a);
  } else {
    o.AddMember("priority", Value(), a);  // none given: the queue's default
  }
  o.AddMember("author", json::str(s.author, a), a);
  o.AddMember("run_id", json::str(s.run_id, a), a);
  o.AddMember("dockerfile", json::str(s.dockerfile, a), a);
  return o;
}

// Fields it does not know are ignored, so a newer writer's documents still
// read.
JobSpec spec_from_value(const Value& v, const std::string& ctx) {
  if (!v.IsObject()) {
    throw Error(Errc::invalid, fmt::format("{}: expected a JSON object, got {} {}", ctx,
                                           json::type_name(v), json::dump(v)));
  }
  JobSpec s;
  s.name = json::get_string(v, "name", ctx);
  s.project = json::get_string(v, "project", ctx);
  std::string image = json::get_string(v, "image", ctx);
  std::string git_url = json::get_string(v, "git_url", ctx);
  std::string code_dir = json::get_string(v, "code_dir", ctx);
  int sources = !image.empty() + !git_url.empty() + !code_dir.empty();
  if (sources > 1) {
    throw Error(Errc::invalid,
                fmt::format("{}: give exactly one source: image, git_url or code_dir", ctx));
  }
  if (!image.empty()) {
    s.source.kind = JobSource::Kind::image;
    s.source.image = image;
  } else if (!git_url.empty()) {
    s.source.kind = JobSource::Kind::git;
    s.source.git_url = git_url;
    s.source.git_ref = json::get_string(v, "git_ref", ctx);
  } else if (!code_dir.empty()) {
    s.source.kind = JobSource::Kind::code;
    s.source.code_dir = code_dir;
  }
  s.entry_point = json::get_string_array(v, "entry_point", ctx);
  s.args = json::get_string_array(v, "args", ctx);
  s.env = json::get_string_map(v, "env", ctx);
  s.run_config = json::get_raw(v, "run_config", ctx);
  s.resource_args = json::get_raw(v, "resource_args", ctx);
  s.template_values = json::get_string_map(v, "template_values", ctx);
  auto pri = v.FindMember("priority");
  if (pri != v.MemberEnd() && !pri->value.IsNull()) {
    if (!pri->value.IsString() && !pri->value.IsInt()) {
      throw Error(Errc::invalid,
                  fmt::format("{}: field \"priority\" must be a name or 0-3, got {} {}", ctx,
                              json::type_name(pri->value), json::dump(pri->value)));
    }
    try {
      s.priority = parse_priority(json::scalar_text(pri->value));
    } catch (const Error& e) {
      throw Error(e.code(), fmt::format("{}: field \"priority\": {}", ctx, e.what()));
    }
  }
  s.author = json::get_string(v, "author", ctx);
  s.run_id = json::get_string(v, "run_id", ctx);
  s.dockerfile = json::get_string(v, "dockerfile", ctx);
  return s;
}

}  // namespace

std::string to_json(const JobSpec& spec) {
  json::Document d;
  return json::dump(spec_value(spec, d.GetAllocator()));
}

JobSpec job_spec_from_json(const std::string& text) {
  json::Document d = json::parse(text, "job spec");
  JobSpec s = spec_from_value(d, "job spec");
  s.validate();
  return s;
}

std::string to_json(const QueueItem& it) {
  json::Document d;
  auto& a = d.GetAllocator();
  Value o(rapidjson::kObjectType);
  o.AddMember("id", json::str(it.id, a), a);
  o.AddMember("queue", json::str(it.queue.str(), a), a);
  o.AddMember("state", json::str(to_string(it.state), a), a);
  o.AddMember("priority", json::str(to_string(it.priority), a), a);
  o.AddMember("created_at", Value(static_cast<int64_t>(it.created_at)), a);
  o.AddMember("updated_at", Value(static_cast<int64_t>(it.updated_at)), a);
  o.AddMember("started_at", Value(static_cast<int64_t>(it.started_at)), a);
  o.AddMember("ended_at", Value(static_cast<int64_t>(it.ended_at)), a);
  o.AddMember("attempt", it.attempt, a);
  o.AddMember("resume_count", it.resume_count, a);
  o.AddMember("lease_seconds", it.lease_seconds, a);
  o.AddMember("max_attempts", it.max_attempts, a);
  o.AddMember("agent_id", json::str(it.agent_id, a), a);
  o.AddMember("lease_expires_at", Value(static_cast<int64_t>(it.lease_expires_at)), a);
  o.AddMember("run_id", json::str(it.run_id, a), a);
  if (it.exit_code) {
    o.AddMember("exit_code", *it.exit_code, a);
  } else {
    o.AddMember("exit_code", Value(), a);
  }
  o.AddMember("error", it.error ? json::item_error_value(*it.error, a) : Value(), a);
  o.AddMember("warnings", json::string_array(it.warnings, a), a);
  o.AddMember("spec", spec_value(it.spec, a), a);
  return json::dump(o);
}

QueueItem queue_item_from_json(const std::string& text) {
  const std::string ctx = "queue item";
  json::Document d = json::parse_object(text, ctx);
  for (const char* key : {"id", "queue", "state"}) json::require(d, key, ctx);
  QueueItem it;
  it.id = json::get_string(d, "id", ctx);
  it.queue = json::get_enum(d, "queue", ctx, "", [](const std::string& t) {
    return QueueRef::parse(t);
  });
  it.state = json::get_enum(d, "state", ctx, "pending", parse_item_state);
  it.priority = json::get_enum(d, "priority", ctx, "medium", parse_priority);
  it.created_at = json::get_int(d, "created_at", ctx);
  it.updated_at = json::get_int(d, "updated_at", ctx);
  it.started_at = json::get_int(d, "started_at", ctx);
  it.ended_at = json::get_int(d, "ended_at", ctx);
  it.attempt = json::get_int32(d, "attempt", ctx, 0);
  it.resume_count = json::get_int32(d, "resume_count", ctx, 0);
  it.lease_seconds = json::get_int32(d, "lease_seconds", ctx, it.lease_seconds);
  it.max_attempts = json::get_int32(d, "max_attempts", ctx, it.max_attempts);
  it.agent_id = json::get_string(d, "agent_id", ctx);
  it.lease_expires_at = json::get_int(d, "lease_expires_at", ctx);
  it.run_id = json::get_string(d, "run_id", ctx);
  if (d.HasMember("exit_code") && !d["exit_code"].IsNull()) {
    it.exit_code = json::get_int32(d, "exit_code", ctx, 0);
  }
  auto err = d.FindMember("error");
  if (err != d.MemberEnd() && !err->value.IsNull()) {
    if (!err->value.IsObject()) {
      throw Error(Errc::invalid, fmt::format("{}: field \"error\" must be an object or null, "
                                             "got {} {}",
                                             ctx, json::type_name(err->value),
                                             json::dump(err->value)));
    }
    it.error = json::item_error_from(err->value, ctx + ": error");
  }
  it.warnings = json::get_string_array(d, "warnings", ctx);
  auto spec = d.FindMember("spec");
  if (spec != d.MemberEnd()) it.spec = spec_from_value(spec->value, ctx + ": spec");
  return it;
}

namespace json {

Value item_error_value(const ItemError& error, Allocator& a) {
  Value e(rapidjson::kObjectType);
  e.AddMember("stage", str(to_string(error.stage), a), a);
  e.AddMember("message", str(error.message, a), a);
  return e;
}

ItemError item_error_from(const Value& v, const std::string& ctx) {
  if (!v.IsObject()) {
    throw Error(Errc::invalid, fmt::format("{} must be an object, got {} {}", ctx, type_name(v),
                                           dump(v)));
  }
  require(v, "stage", ctx);
  ItemError e;
  e.stage = get_enum(v, "stage", ctx, "agent", parse_error_stage);
  e.message = get_string(v, "message", ctx);
  return e;
}

}  // namespace json

std::string generate_run_id() {
  static thread_local std::mt19937_64 rng{std::random_device{}() ^
                                          static_cast<std::uint64_t>(now_ms())};
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string id(8, 'a');
  for (char& c : id) c = alphabet[rng() % 36];
  return id;
}

std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace launch
