// Template values, placeholders, deep merge and macros: how a queue's config
// and a job's overrides become the config a runner gets (template.hpp).
#include "launch/template.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <utility>

#include <fmt/format.h>

#include "util/json.hpp"
#include "core/template_value.hpp"
#include "launch/error.hpp"

namespace launch {
namespace tmpl {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The JSON number grammar, with an optional leading '+' and leading zeros
// allowed ("007"): [+-]? (digits [. digits*]? | . digits) ([eE] [+-]? digits)?
// `*integral_form` is set when there is neither a fraction nor an exponent.
bool number_grammar(const std::string& s, bool* integral_form) {
  std::size_t i = 0, n = s.size();
  if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
  std::size_t int_digits = 0, frac_digits = 0;
  while (i < n && is_digit(s[i])) ++i, ++int_digits;
  bool fraction = false;
  if (i < n && s[i] == '.') {
    fraction = true;
    ++i;
    while (i < n && is_digit(s[i])) ++i, ++frac_digits;
  }
  if (int_digits + frac_digits == 0) return false;
  bool exponent = false;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    exponent = true;
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    std::size_t exp_digits = 0;
    while (i < n && is_digit(s[i])) ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  *integral_form = !fraction && !exponent;
  return i == n;
}

// Integers beyond 2^53 cannot be told apart as doubles; refuse them rather
// than round silently.
constexpr double kMaxExactInteger = 9007199254740992.0;

std::string shown(const TypedValue& v, const std::string& text) {
  if (v.type == VarType::string) return fmt::format("\"{}\"", text);
  return text;
}

std::string enum_list(VarType type, const std::vector<std::string>& values) {
  std::string out;
  for (const auto& e : values) {
    if (!out.empty()) out += ", ";
    out += type == VarType::string ? fmt::format("\"{}\"", e) : e;
  }
  return out;
}

bool enum_contains(VarType type, const std::vector<std::string>& values,
                   const TypedValue& v) {
  for (const auto& e : values) {
    if (type == VarType::string) {
      if (e == v.text) return true;
      continue;
    }
    TypedValue ev;
    std::string why;
    // An enum value of the wrong type is QueueDef::validate()'s to report.
    if (parse_typed(type, e, &ev, &why) && ev.number == v.number) return true;
  }
  return false;
}

}  // namespace

std::string number_text(double d) {
  if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 1e15) {
    return fmt::format("{}", static_cast<long long>(d));
  }
  return json::dump(json::Value(d));
}

bool parse_typed(VarType type, const std::string& text, TypedValue* out, std::string* why) {
  out->type = type;
  if (type == VarType::string) {
    out->text = text;
    return true;
  }
  const char* kind = type == VarType::integer ? "an integer" : "a number";
  bool integral_form = false;
  if (!number_grammar(text, &integral_form)) {
    *why = fmt::format("is not {}", kind);
    return false;
  }
  if (type == VarType::integer && integral_form) {
    errno = 0;
    char* end = nullptr;
    long long i = std::strtoll(text.c_str(), &end, 10);
    if (errno == ERANGE || static_cast<double>(i) > kMaxExactInteger ||
        static_cast<double>(i) < -kMaxExactInteger) {
      *why = "is out of range for an integer";
      return false;
    }
    out->integer = i;
    out->number = static_cast<double>(i);
    out->text = fmt::format("{}", i);
    return true;
  }
  errno = 0;
  double d = std::strtod(text.c_str(), nullptr);
  if (!std::isfinite(d)) {
    *why = fmt::format("is out of range for {}", kind);
    return false;
  }
  if (d == 0) d = 0;  // no "-0"
  if (type == VarType::integer) {
    if (std::floor(d) != d) {
      *why = "is not an integer";
      return false;
    }
    if (std::fabs(d) > kMaxExactInteger) {
      *why = "is out of range for an integer";
      return false;
    }
    out->integer = static_cast<std::int64_t>(d);
    out->number = d;
    out->text = fmt::format("{}", out->integer);
    return true;
  }
  out->number = d;
  // Canonical text that reads back the same through JSON: an integral number
  // is written as an integer, anything else as RapidJSON writes doubles.
  if (std::floor(d) == d && std::fabs(d) <= kMaxExactInteger) {
    out->text = fmt::format("{}", static_cast<long long>(d));
  } else {
    out->text = json::dump(json::Value(d));
  }
  return true;
}

TypedValue check_value(const std::string& name, const TemplateVariable& var,
                       const std::string& text, const char* what) {
  TypedValue v;
  std::string why;
  if (!parse_typed(var.type, text, &v, &why)) {
    throw Error(Errc::invalid, fmt::format("template variable \"{}\": {} \"{}\" {}", name,
                                           what, text, why));
  }
  if (var.type != VarType::string) {
    if (var.minimum && v.number < *var.minimum) {
      throw Error(Errc::invalid,
                  fmt::format("template variable \"{}\": {} {} is below the minimum {}", name,
                              what, text, number_text(*var.minimum)));
    }
    if (var.maximum && v.number > *var.maximum) {
      throw Error(Errc::invalid,
                  fmt::format("template variable \"{}\": {} {} is above the maximum {}", name,
                              what, text, number_text(*var.maximum)));
    }
  }
  if (!var.enum_values.empty() && !enum_contains(var.type, var.enum_values, v)) {
    throw Error(Errc::invalid,
                fmt::format("template variable \"{}\": {} {} is not one of {}", name, what,
                            shown(v, text), enum_list(var.type, var.enum_values)));
  }
  return v;
}

json::Value to_json_value(const TypedValue& v, json::Allocator& a) {
  switch (v.type) {
    case VarType::integer:
      return json::Value(static_cast<int64_t>(v.integer));
    case VarType::number:
      if (std::floor(v.number) == v.number && std::fabs(v.number) <= kMaxExactInteger) {
        return json::Value(static_cast<int64_t>(v.number));
      }
      return json::Value(v.number);
    case VarType::string:
      break;
  }
  return json::str(v.text, a);
}

namespace {

bool is_name_start(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
bool is_name_char(char c) {
  return is_name_start(c) || is_digit(c) || c == '.' || c == '-';
}

}  // namespace

void check_variable_name(const std::string& name) {
  if (name.empty()) {
    throw Error(Errc::invalid, "template variable name is empty");
  }
  if (name.size() > 64) {
    throw Error(Errc::invalid,
                fmt::format("template variable \"{}\": the name is longer than 64 characters",
                            name));
  }
  if (!is_name_start(name[0])) {
    throw Error(Errc::invalid,
                fmt::format("template variable \"{}\": a name starts with a letter or '_'",
                            name));
  }
  for (char c : name) {
    if (!is_name_char(c)) {
      throw Error(Errc::invalid,
                  fmt::format("template variable \"{}\": character '{}' is not allowed in a "
                              "name (use [A-Za-z0-9_.-])",
                              name, c));
    }
  }
}

std::vector<Placeholder> find_placeholders(const std::string& s) {
  std::vector<Placeholder> out;
  std::size_t pos = 0;
  while ((pos = s.find("{{", pos)) != std::string::npos) {
    std::size_t i = pos + 2;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    std::size_t name_begin = i;
    if (i < s.size() && is_name_start(s[i])) {
      while (i < s.size() && is_name_char(s[i])) ++i;
    }
    std::size_t name_end = i;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    if (name_end > name_begin && s.compare(i, 2, "}}") == 0) {
      out.push_back({pos, i + 2, s.substr(name_begin, name_end - name_begin)});
      pos = i + 2;
    } else {
      ++pos;  // "{{{x}}}": the placeholder may start one brace later
    }
  }
  return out;
}

}  // namespace tmpl

namespace {

using Resolved = std::map<std::string, tmpl::TypedValue>;

// Checks every value and every default; returns each declared variable's
// typed value.
Resolved resolve_values(const QueueDef& queue,
                        const std::map<std::string, std::string>& values) {
  for (const auto& kv : values) {
    if (queue.template_variables.count(kv.first) == 0) {
      std::string declared;
      for (const auto& var : queue.template_variables) {
        declared += declared.empty() ? var.first : ", " + var.first;
      }
      throw Error(Errc::invalid,
                  fmt::format("template variable \"{}\": value \"{}\" given, but queue {} "
                              "declares no such variable (declared: {})",
                              kv.first, kv.second, queue.ref().str(),
                              declared.empty() ? "none" : declared));
    }
  }
  Resolved out;
  for (const auto& var : queue.template_variables) {
    auto it = values.find(var.first);
    if (it != values.end()) {
      out[var.first] = tmpl::check_value(var.first, var.second, it->second, "value");
    } else if (var.second.default_value) {
      out[var.first] =
          tmpl::check_value(var.first, var.second, *var.second.default_value, "default");
    } else {
      throw Error(Errc::invalid, fmt::format("template variable \"{}\" has no value and no "
                                             "default",
                                             var.first));
    }
  }
  return out;
}

// Placeholders are filled in values only, never in keys: a key is a field
// name the runner reads, and a typed value cannot be a key anyway.
void fill(json::Value& v, const std::string& path, const Resolved& values,
          const QueueDef& queue, json::Allocator& a) {
  if (v.IsObject()) {
    for (auto& m : v.GetObject()) {
      fill(m.value, path + "." + std::string(m.name.GetString(), m.name.GetStringLength()),
           values, queue, a);
    }
    return;
  }
  if (v.IsArray()) {
    rapidjson::SizeType i = 0;
    for (auto& e : v.GetArray()) fill(e, fmt::format("{}[{}]", path, i++), values, queue, a);
    return;
  }
  if (!v.IsString()) return;
  std::string s(v.GetString(), v.GetStringLength());
  auto found = tmpl::find_placeholders(s);
  if (found.empty()) return;
  for (const auto& p : found) {
    if (values.count(p.name) == 0) {
      throw Error(Errc::invalid,
                  fmt::format("queue {}: {}: placeholder {{{{{}}}}} names no declared "
                              "template variable",
                              queue.ref().str(), path, p.name));
    }
  }
  if (found.size() == 1 && found[0].begin == 0 && found[0].end == s.size()) {
    v = tmpl::to_json_value(values.at(found[0].name), a);
    return;
  }
  std::string out;
  std::size_t last = 0;
  for (const auto& p : found) {
    out.append(s, last, p.begin - last);
    out += values.at(p.name).text;
    last = p.end;
  }
  out.append(s, last, std::string::npos);
  v = json::str(out, a);
}

bool is_macro_start(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
bool is_macro_char(char c) { return is_macro_start(c) || (c >= '0' && c <= '9'); }

// One pass: a replacement is never scanned again, so a value holding "${x}"
// stays as it is.
std::string expand_string(const std::string& s, const std::map<std::string, std::string>& macros,
                          const EnvLookup& env) {
  std::string out;
  std::size_t pos = 0;
  while (true) {
    std::size_t start = s.find("${", pos);
    if (start == std::string::npos) break;
    std::size_t i = start + 2;
    if (i < s.size() && is_macro_start(s[i])) {
      while (i < s.size() && is_macro_char(s[i])) ++i;
    }
    if (i == start + 2 || i >= s.size() || s[i] != '}') {
      out.append(s, pos, start + 2 - pos);
      pos = start + 2;
      continue;
    }
    std::string name = s.substr(start + 2, i - start - 2);
    out.append(s, pos, start - pos);
    auto it = macros.find(name);
    std::string value;
    if (it != macros.end()) {
      out += it->second;
    } else if (env && env(name, &value)) {
      out += value;
    } else {
      out.append(s, start, i + 1 - start);
    }
    pos = i + 1;
  }
  out.append(s, pos, std::string::npos);
  return out;
}

}  // namespace

namespace tmpl {

json::Document filled_config(const QueueDef& queue,
                             const std::map<std::string, std::string>& values) {
  // The values are checked before the config is parsed, so a bad value is
  // reported as such even when the config is broken too.
  Resolved resolved = resolve_values(queue, values);
  json::Document d =
      json::parse_object(queue.config, fmt::format("queue {}: config", queue.ref().str()));
  fill(d, "config", resolved, queue, d.GetAllocator());
  return d;
}

void merge(json::Value& base, const json::Value& overlay, json::Allocator& a) {
  if (!base.IsObject() || !overlay.IsObject()) {
    base.CopyFrom(overlay, a);
    return;
  }
  for (const auto& m : overlay.GetObject()) {
    auto it = base.FindMember(m.name);
    if (it == base.MemberEnd()) {
      base.AddMember(json::Value(m.name, a), json::Value(m.value, a), a);
    } else {
      merge(it->value, m.value, a);
    }
  }
}

// Macros, like placeholders, are expanded in values only, never in keys.
void expand(json::Value& v, const std::map<std::string, std::string>& macros,
            const EnvLookup& env, json::Allocator& a) {
  if (v.IsObject()) {
    for (auto& m : v.GetObject()) expand(m.value, macros, env, a);
  } else if (v.IsArray()) {
    for (auto& e : v.GetArray()) expand(e, macros, env, a);
  } else if (v.IsString()) {
    std::string s(v.GetString(), v.GetStringLength());
    if (s.find("${") == std::string::npos) return;
    v = json::str(expand_string(s, macros, env), a);
  }
}

namespace {

bool holds_placeholder(const json::Value& v) {
  return v.IsString() && !find_placeholders(json::scalar_text(v)).empty();
}

}  // namespace

void drop_placeholders(json::Value& v) {
  if (v.IsObject()) {
    for (auto m = v.MemberBegin(); m != v.MemberEnd();) {
      if (holds_placeholder(m->value)) {
        m = v.EraseMember(m);
      } else {
        drop_placeholders(m->value);
        ++m;
      }
    }
  } else if (v.IsArray()) {
    for (auto e = v.Begin(); e != v.End();) {
      if (holds_placeholder(*e)) {
        e = v.Erase(e);
      } else {
        drop_placeholders(*e);
        ++e;
      }
    }
  }
}

json::Document parse_any(const std::string& text, const std::string& what) {
  return json::parse(text.empty() ? std::string("{}") : text, what);
}

}  // namespace tmpl

void validate_template_values(const QueueDef& queue,
                              const std::map<std::string, std::string>& values) {
  resolve_values(queue, values);
}

std::string fill_template(const QueueDef& queue,
                          const std::map<std::string, std::string>& values) {
  return json::dump(tmpl::filled_config(queue, values));
}

std::string deep_merge(const std::string& base_json, const std::string& overlay_json) {
  json::Document base = tmpl::parse_any(base_json, "deep merge: base");
  json::Document overlay = tmpl::parse_any(overlay_json, "deep merge: overlay");
  tmpl::merge(base, overlay, base.GetAllocator());
  return json::dump(base);
}

std::string expand_macros(const std::string& json,
                          const std::map<std::string, std::string>& macros,
                          const EnvLookup& env) {
  json::Document d = tmpl::parse_any(json, "macro expansion");
  tmpl::expand(d, macros, env, d.GetAllocator());
  return json::dump(d);
}

bool process_env(const std::string& name, std::string* value) {
  const char* v = std::getenv(name.c_str());
  if (!v) return false;
  *value = v;
  return true;
}

}  // namespace launch
