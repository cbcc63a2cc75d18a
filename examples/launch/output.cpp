// What the commands print: tables, times, the detail of an item or a queue.
// Their JSON is the library's to_json() of each.
#include <ctime>
#include <sstream>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "cli.hpp"

namespace cli {

namespace {

// The code point at text[pos], moving pos past it; a byte that does not
// start a well-formed sequence is taken alone (shown as one column, as
// terminals show U+FFFD for it).
char32_t next_code_point(const std::string& text, std::size_t& pos) {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  unsigned char lead = byte(pos);
  std::size_t len = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3
                                    : (lead >> 3) == 0x1E ? 4 : 0;
  if (len == 0 || pos + len > text.size()) {
    ++pos;
    return 0xFFFD;
  }
  char32_t c = len == 1 ? lead : lead & (0x7F >> len);
  for (std::size_t i = 1; i < len; ++i) {
    if ((byte(pos + i) & 0xC0) != 0x80) {
      ++pos;
      return 0xFFFD;
    }
    c = (c << 6) | (byte(pos + i) & 0x3F);
  }
  pos += len;
  return c;
}

// Columns a terminal gives `c`: none for combining marks and zero-width
// characters, two for East Asian wide and fullwidth forms and emoji, one
// otherwise. The ranges are the broad blocks of Unicode's
// EastAsianWidth W/F and general category Mn, enough for names and
// messages; an exotic character may be off by one column, never cut.
int columns(char32_t c) {
  struct Range {
    char32_t first, last;
  };
  static const Range kZero[] = {{0x0300, 0x036F}, {0x0483, 0x0489}, {0x0591, 0x05BD},
                                {0x0610, 0x061A}, {0x064B, 0x065F}, {0x0E31, 0x0E31},
                                {0x0E34, 0x0E3A}, {0x1AB0, 0x1AFF}, {0x1DC0, 0x1DFF},
                                {0x200B, 0x200F}, {0x20D0, 0x20FF}, {0xFE00, 0xFE0F},
                                {0xFE20, 0xFE2F}};
  static const Range kWide[] = {{0x1100, 0x115F},   {0x2E80, 0x303E},   {0x3041, 0x33FF},
                                {0x3400, 0x4DBF},   {0x4E00, 0x9FFF},   {0xA000, 0xA4CF},
                                {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},   {0xFE30, 0xFE4F},
                                {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},   {0x1F300, 0x1F64F},
                                {0x1F900, 0x1F9FF}, {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD}};
  for (const auto& r : kZero) {
    if (c >= r.first && c <= r.last) return 0;
  }
  for (const auto& r : kWide) {
    if (c >= r.first && c <= r.last) return 2;
  }
  return 1;
}

}  // namespace

std::size_t display_width(const std::string& text) {
  std::size_t width = 0;
  for (std::size_t pos = 0; pos < text.size();) width += columns(next_code_point(text, pos));
  return width;
}

std::string Table::str() const {
  std::vector<std::size_t> width(header_.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (std::size_t i = 0; i < row.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], display_width(row[i]));
    }
  };
  measure(header_);
  for (const auto& r : rows_) measure(r);
  std::ostringstream out;
  auto line = [&](const std::vector<std::string>& row) {
    std::string text;
    for (std::size_t i = 0; i < row.size() && i < width.size(); ++i) {
      text += row[i];
      if (i + 1 < row.size()) text += std::string(width[i] - display_width(row[i]) + 2, ' ');
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
  if (display_width(one_line) <= max) return one_line;
  // Cut on a character's boundary, leaving room for the "...".
  std::size_t room = max > 3 ? max - 3 : 0, used = 0, pos = 0;
  while (pos < one_line.size()) {
    std::size_t next = pos;
    int w = columns(next_code_point(one_line, next));
    if (used + w > room) break;
    used += w;
    pos = next;
  }
  return one_line.substr(0, pos) + "...";
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
