#include "agent/report_journal.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/json_fields.hpp"
#include "launch/error.hpp"
#include "util/enum_names.hpp"
#include "util/fs.hpp"
#include "util/json.hpp"

namespace launch {

namespace {

constexpr util::EnumName<PendingReport::Kind> kKinds[] = {
    {PendingReport::Kind::finish, "finish"},
    {PendingReport::Kind::fail, "fail"},
    {PendingReport::Kind::confirm_stopped, "confirm_stopped"},
    {PendingReport::Kind::requeue, "requeue"},
};
constexpr util::EnumName<RequeueReason> kReasons[] = {
    {RequeueReason::released, "released"},
    {RequeueReason::preempted, "preempted"},
};

std::string line_of(const PendingReport& r) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("kind");
  w.String(util::enum_name(kKinds, r.kind, "finish"));
  w.Key("item_id");
  w.String(r.item_id);
  if (r.exit_code) {
    w.Key("exit_code");
    w.Int(*r.exit_code);
  }
  if (r.kind == PendingReport::Kind::fail) {
    w.Key("stage");
    w.String(to_string(r.error.stage));
    w.Key("error");
    w.String(r.error.message);
  }
  if (r.kind == PendingReport::Kind::requeue) {
    w.Key("reason");
    w.String(util::enum_name(kReasons, r.reason, "released"));
  }
  if (!r.message.empty()) {
    w.Key("message");
    w.String(r.message);
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

PendingReport report_of(const std::string& line, const std::string& ctx) {
  json::Document d = json::parse_object(line, ctx);
  PendingReport r;
  r.kind = json::get_enum(d, "kind", ctx, "finish", [](const std::string& t) {
    return util::enum_parse(kKinds, t, "kind");
  });
  json::require(d, "item_id", ctx);
  r.item_id = json::get_string(d, "item_id", ctx);
  if (d.HasMember("exit_code")) r.exit_code = json::get_int32(d, "exit_code", ctx, 0);
  r.error.stage = json::get_enum(d, "stage", ctx, "agent", parse_error_stage);
  r.error.message = json::get_string(d, "error", ctx);
  r.reason = json::get_enum(d, "reason", ctx, "released", [](const std::string& t) {
    return util::enum_parse(kReasons, t, "reason");
  });
  r.message = json::get_string(d, "message", ctx);
  if (r.kind == PendingReport::Kind::finish && !r.exit_code) {
    throw Error(Errc::invalid, fmt::format("{}: a finish needs \"exit_code\"", ctx));
  }
  return r;
}

}  // namespace

QueueItem PendingReport::deliver(Transport& t, const std::string& agent_id) const {
  switch (kind) {
    case Kind::finish: return t.finish(item_id, agent_id, exit_code.value_or(0));
    case Kind::fail: return t.fail(item_id, agent_id, error, exit_code);
    case Kind::confirm_stopped: return t.confirm_stopped(item_id, agent_id);
    case Kind::requeue: return t.requeue(item_id, agent_id, reason);
  }
  throw Error(Errc::internal, "unknown report kind");
}

bool report_may_heal(Errc code) { return code == Errc::io || code == Errc::timeout; }

ReportJournal::ReportJournal(std::string path, std::string* warning) : path_(std::move(path)) {
  if (path_.empty()) return;
  std::optional<std::string> text;
  try {
    text = util::read_file(path_);
  } catch (const Error& e) {
    if (warning) *warning = e.what();
    return;
  }
  if (!text) return;
  std::size_t start = 0, line_no = 0;
  try {
    while (start < text->size()) {
      std::size_t end = text->find('\n', start);
      if (end == std::string::npos) end = text->size();
      ++line_no;
      std::string line = text->substr(start, end - start);
      start = end + 1;
      if (line.empty()) continue;
      reports_.push_back(report_of(line, fmt::format("{}:{}", path_, line_no)));
    }
  } catch (const Error& e) {
    // Kept for a person to read; the reports before the bad line stand.
    std::string bad = path_ + ".bad";
    std::rename(path_.c_str(), bad.c_str());
    if (warning) {
      *warning = fmt::format("{} (the journal was moved to {}; {} reports before it kept)",
                             e.what(), bad, reports_.size());
    }
    save();
  }
}

bool ReportJournal::holds(const std::string& item_id) const {
  for (const auto& r : reports_) {
    if (r.item_id == item_id) return true;
  }
  return false;
}

std::optional<std::string> ReportJournal::push(PendingReport r) {
  reports_.push_back(std::move(r));
  return save();
}

std::optional<std::string> ReportJournal::pop() {
  if (!reports_.empty()) reports_.pop_front();
  return save();
}

std::optional<std::string> ReportJournal::save() {
  if (path_.empty()) return std::nullopt;
  try {
    if (reports_.empty()) {
      if (std::remove(path_.c_str()) != 0 && errno != ENOENT) {
        return fmt::format("cannot remove {}: {}", path_, std::strerror(errno));
      }
      return std::nullopt;
    }
    std::string text;
    for (const auto& r : reports_) text += line_of(r) + "\n";
    util::write_file_atomic(path_, text);
  } catch (const Error& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

}  // namespace launch
