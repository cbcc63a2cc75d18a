// What the commands print: tables, times, the detail of an item or a queue.
// Their JSON is the library's to_json() of each.
#include <ctime>
#include <sstream>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "cli.hpp"

namespace cli {

std::string Table::str() const {
  std::vector<std::size_t> width(header_.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (std::size_t i = 0; i < row.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], row[i].size());
    }
  };
  measure(header_);
  for (const auto& r : rows_) measure(r);
  std::ostringstream out;
  auto line = [&](const std::vector<std::string>& row) {
    std::string text;
    for (std::size_t i = 0; i < row.size() && i < width.size(); ++i) {
      text += row[i];
      if (i + 1 < row.size()) text += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out << text << '\n';
  };
  line(header_);
  for (const auto& r : rows_) line(r);
  return out.str();
}

std::string age(std::int64_t since_ms, std::int64_t now_ms) {
  if (since_ms <= 0) return "-";
  std::int64_t s = (now_ms - since_ms) / 1000;
  if (s < 0) s = 0;
  if (s < 120) return std::to_string(s) + "s";
  if (s < 2 * 3600) return std::to_string(s / 60) + "m";
  if (s < 2 * 86400) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

std::string local_time(std::int64_t ms) {
  if (ms <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %z", &tm);
  return buf;
}

std::string shorten(const std::string& text, std::size_t max) {
  std::string one_line;
  for (char c : text) one_line += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  if (one_line.size() <= max) return one_line;
  return one_line.substr(0, max > 3 ? max - 3 : 0) + "...";
}

std::string json_array(const std::vector<std::string>& json_values) {
  std::string out = "[";
  for (std::size_t i = 0; i < json_values.size(); ++i) {
    if (i) out += ',';
    out += json_values[i];
  }
  return out + "]";
}

std::string json_string(const std::string& s) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  return buf.GetString();
}

namespace {

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

std::string argv_text(const std::vector<std::string>& argv) {
  std::vector<std::string> quoted;
  for (const auto& a : argv) quoted.push_back(json_string(a));
  return "[" + join(quoted, ", ") + "]";
}

std::string source_text(const launch::JobSource& s) {
  switch (s.kind) {
    case launch::JobSource::Kind::image: return "image " + s.image;
    case launch::JobSource::Kind::git:
      return "git " + s.git_url + (s.git_ref.empty() ? "" : " @ " + s.git_ref);
    case launch::JobSource::Kind::code: return "code " + s.code_dir;
    case launch::JobSource::Kind::none: break;
  }
  return "-";
}

void field(std::ostringstream& out, const char* name, const std::string& value) {
  std::string label = std::string(name) + ":";
  out << label << std::string(label.size() < 16 ? 16 - label.size() : 1, ' ')
      << (value.empty() ? "-" : value) << '\n';
}

}  // namespace

std::string item_details(const launch::QueueItem& item) {
  std::ostringstream out;
  const auto& spec = item.spec;
  std::int64_t now = launch::now_ms();
  field(out, "id", item.id);
  field(out, "queue", item.queue.str());
  field(out, "state", launch::to_string(item.state));
  field(out, "priority", launch::to_string(item.priority));
  field(out, "name", spec.name);
  field(out, "project", spec.project);
  field(out, "author", spec.author);
  field(out, "source", source_text(spec.source));
  if (!spec.dockerfile.empty()) field(out, "dockerfile", spec.dockerfile);
  field(out, "entry point", spec.entry_point.empty() ? "" : argv_text(spec.entry_point));
  field(out, "args", spec.args.empty() ? "" : argv_text(spec.args));
  for (const auto& [k, v] : spec.env) field(out, "env", k + "=" + v);
  for (const auto& [k, v] : spec.template_values) field(out, "set var", k + "=" + v);
  if (spec.run_config != "{}") field(out, "run config", spec.run_config);
  if (spec.resource_args != "{}") field(out, "resource args", spec.resource_args);
  field(out, "run id", item.run_id);
  field(out, "agent", item.agent_id);
  field(out, "attempt", std::to_string(item.attempt) + " of " +
                            std::to_string(item.max_attempts));
  if (item.resume_count) field(out, "resumed", std::to_string(item.resume_count));
  field(out, "created", local_time(item.created_at) + " (" + age(item.created_at, now) + " ago)");
  field(out, "started", local_time(item.started_at));
  field(out, "ended", local_time(item.ended_at));
  field(out, "exit code", item.exit_code ? std::to_string(*item.exit_code) : "");
  if (item.error) {
    field(out, "error", std::string(launch::to_string(item.error->stage)) + ": " +
                            item.error->message);
  }
  for (const auto& w : item.warnings) field(out, "warning", w);
  return out.str();
}

std::string queue_details(const launch::QueueDef& q) {
  std::ostringstream out;
  field(out, "queue", q.ref().str());
  field(out, "resource", q.resource);
  field(out, "prioritization", q.prioritization ? "on" : "off");
  field(out, "config", q.config);
  for (const auto& [name, var] : q.template_variables) {
    std::string rule = launch::to_string(var.type);
    auto num = [](double d) {
      std::ostringstream s;
      s << d;
      return s.str();
    };
    if (var.minimum) rule += ", minimum " + num(*var.minimum);
    if (var.maximum) rule += ", maximum " + num(*var.maximum);
    if (!var.enum_values.empty()) rule += ", one of " + join(var.enum_values, "|");
    if (var.default_value) rule += ", default " + *var.default_value;
    if (!var.description.empty()) rule += " (" + var.description + ")";
    field(out, "variable", name + ": " + rule);
  }
  field(out, "lease", std::to_string(q.lease_seconds) + "s, at most " +
                          std::to_string(q.max_attempts) + " attempts");
  field(out, "created", local_time(q.created_at));
  return out.str();
}

}  // namespace cli
