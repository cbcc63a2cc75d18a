// The queue model: names, template variable schemas, queue files (YAML or
// JSON) and the JSON form the stores and the CLI use.
#include "launch/queue.hpp"

#include <cmath>
#include <optional>

#include <fmt/format.h>

#include "core/json_fields.hpp"
#include "core/resolve.hpp"
#include "util/json.hpp"
#include "core/template_value.hpp"
#include "launch/error.hpp"
#include "util/enum_names.hpp"
#include "util/limits.hpp"
#include "util/utf8.hpp"

namespace launch {
namespace {

bool is_name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '.' || c == '_' || c == '-';
}

// The keys of a queue file, in the order errors list them. `created_at` is
// accepted too (the JSON form carries it, so `queue show --json` output can
// be fed back) but ignored: the transport stamps it.
const char* const kQueueKeys[] = {"name",           "entity",        "resource",
                                  "config",         "template_variables",
                                  "prioritization", "lease_seconds", "max_attempts"};
const char* const kVariableKeys[] = {"type", "minimum", "maximum",
                                     "enum", "default", "description"};

template <std::size_t N>
bool known(const char* const (&keys)[N], const std::string& key) {
  for (const char* k : keys) {
    if (key == k) return true;
  }
  return false;
}

template <std::size_t N>
std::string key_list(const char* const (&keys)[N]) {
  std::string out;
  for (const char* k : keys) out += out.empty() ? std::string(k) : std::string(", ") + k;
  return out;
}

std::string member_name(const json::Value::Member& m) {
  return std::string(m.name.GetString(), m.name.GetStringLength());
}

// A scalar given for an enum value or a default, as text.
std::string scalar(const json::Value& v, const std::string& ctx, const char* field) {
  if (v.IsString() || v.IsNumber() || v.IsBool()) return json::scalar_text(v);
  throw Error(Errc::invalid, fmt::format("{}: field \"{}\" must be a string or a number, got "
                                         "{} {}",
                                         ctx, field, json::type_name(v), json::dump(v)));
}

// Integer "4.0" reads back as "4", number "0.50" as "0.5", so the JSON form
// round-trips. A value that does not parse is kept as given, for validate()
// to refuse with the text the user wrote.
std::string canonical(VarType type, const std::string& text) {
  tmpl::TypedValue v;
  std::string why;
  return tmpl::parse_typed(type, text, &v, &why) ? v.text : text;
}

TemplateVariable parse_variable(const json::Value& obj, const std::string& ctx, bool strict) {
  if (!obj.IsObject()) {
    throw Error(Errc::invalid, fmt::format("{}: expected a mapping of type, minimum, maximum, "
                                           "enum, default, description; got {} {}",
                                           ctx, json::type_name(obj), json::dump(obj)));
  }
  for (const auto& m : obj.GetObject()) {
    if (strict && !known(kVariableKeys, member_name(m))) {
      throw Error(Errc::invalid, fmt::format("{}: unknown key \"{}\" (expected one of {})", ctx,
                                             member_name(m), key_list(kVariableKeys)));
    }
  }
  TemplateVariable var;
  auto type = obj.FindMember("type");
  if (type == obj.MemberEnd() || type->value.IsNull()) {
    throw Error(Errc::invalid,
                fmt::format("{}: missing \"type\" (string, integer or number)", ctx));
  }
  std::string type_text = json::get_string(obj, "type", ctx);
  try {
    var.type = parse_var_type(type_text);
  } catch (const Error& e) {
    throw Error(e.code(), fmt::format("{}: {}", ctx, e.what()));
  }
  var.minimum = json::get_optional_number(obj, "minimum", ctx);
  var.maximum = json::get_optional_number(obj, "maximum", ctx);
  var.description = json::get_string(obj, "description", ctx);
  auto e = obj.FindMember("enum");
  if (e != obj.MemberEnd() && !e->value.IsNull()) {
    if (!e->value.IsArray()) {
      throw Error(Errc::invalid,
                  fmt::format("{}: field \"enum\" must be an array, got {} {}", ctx,
                              json::type_name(e->value), json::dump(e->value)));
    }
    for (const auto& v : e->value.GetArray()) {
      var.enum_values.push_back(canonical(var.type, scalar(v, ctx, "enum")));
    }
  }
  auto d = obj.FindMember("default");
  if (d != obj.MemberEnd() && !d->value.IsNull()) {
    var.default_value = canonical(var.type, scalar(d->value, ctx, "default"));
  }
  return var;
}

// The shared reader of queue files and the JSON form. `strict` refuses
// unknown keys (files); the JSON form read back from a store ignores them, so
// an older library can read what a newer one wrote.
QueueDef queue_from_object(const json::Value& obj, const std::string& source, bool strict) {
  if (!obj.IsObject()) {
    throw Error(Errc::invalid,
                fmt::format("{}: expected a mapping of queue fields ({}), got {} {}", source,
                            key_list(kQueueKeys), json::type_name(obj), json::dump(obj)));
  }
  for (const auto& m : obj.GetObject()) {
    std::string key = member_name(m);
    if (strict && key != "created_at" && !known(kQueueKeys, key)) {
      throw Error(Errc::invalid, fmt::format("{}: unknown key \"{}\" (expected one of {})",
                                             source, key, key_list(kQueueKeys)));
    }
  }
  QueueDef q;
  q.name = json::get_string(obj, "name", source);
  q.entity = json::get_string(obj, "entity", source);
  q.resource = json::get_string(obj, "resource", source, q.resource);
  auto config = obj.FindMember("config");
  if (config != obj.MemberEnd() && !config->value.IsNull()) {
    if (config->value.IsString()) {
      q.config = config_to_json(json::scalar_text(config->value), source + ": config");
    } else if (config->value.IsObject()) {
      q.config = json::dump(config->value);
    } else {
      throw Error(Errc::invalid,
                  fmt::format("{}: field \"config\" must be a mapping or a string holding "
                              "JSON or YAML, got {} {}",
                              source, json::type_name(config->value),
                              json::dump(config->value)));
    }
  }
  auto vars = obj.FindMember("template_variables");
  if (vars != obj.MemberEnd() && !vars->value.IsNull()) {
    if (!vars->value.IsObject()) {
      throw Error(Errc::invalid,
                  fmt::format("{}: field \"template_variables\" must be a mapping of variable "
                              "names to schemas, got {} {}",
                              source, json::type_name(vars->value), json::dump(vars->value)));
    }
    for (const auto& m : vars->value.GetObject()) {
      std::string name = member_name(m);
      q.template_variables[name] = parse_variable(
          m.value, fmt::format("{}: template_variables.{}", source, name), strict);
    }
  }
  q.prioritization = json::get_bool(obj, "prioritization", source, q.prioritization);
  q.lease_seconds = json::get_int32(obj, "lease_seconds", source, q.lease_seconds);
  q.max_attempts = json::get_int32(obj, "max_attempts", source, q.max_attempts);
  q.created_at = json::get_int(obj, "created_at", source, 0);
  return q;
}

// Every `{{name}}` in the config must name a declared variable, or no push
// could ever fill it.
void check_placeholders(const json::Value& v, const std::string& path, const QueueDef& q) {
  if (v.IsObject()) {
    for (const auto& m : v.GetObject()) check_placeholders(m.value, path + "." + member_name(m), q);
  } else if (v.IsArray()) {
    rapidjson::SizeType i = 0;
    for (const auto& e : v.GetArray()) check_placeholders(e, fmt::format("{}[{}]", path, i++), q);
  } else if (v.IsString()) {
    for (const auto& p : tmpl::find_placeholders(json::scalar_text(v))) {
      if (q.template_variables.count(p.name) == 0) {
        throw Error(Errc::invalid,
                    fmt::format("queue {}: {}: placeholder {{{{{}}}}} names no declared "
                                "template variable",
                                q.ref().str(), path, p.name));
      }
    }
  }
}

void validate_variable(const std::string& name, const TemplateVariable& var) {
  tmpl::check_variable_name(name);
  if (var.type == VarType::string && (var.minimum || var.maximum)) {
    throw Error(Errc::invalid,
                fmt::format("template variable \"{}\": {} {} applies only to integer and "
                            "number variables, not to a string",
                            name, var.minimum ? "minimum" : "maximum",
                            tmpl::number_text(var.minimum ? *var.minimum : *var.maximum)));
  }
  if (var.minimum && var.maximum && *var.minimum > *var.maximum) {
    throw Error(Errc::invalid,
                fmt::format("template variable \"{}\": minimum {} is above the maximum {}",
                            name, tmpl::number_text(*var.minimum),
                            tmpl::number_text(*var.maximum)));
  }
  // Each enum value must be of the type and within the bounds. Checked
  // against a copy without the enum, since the enum holds it by definition.
  TemplateVariable bounds = var;
  bounds.enum_values.clear();
  for (const auto& e : var.enum_values) tmpl::check_value(name, bounds, e, "enum value");
  if (var.default_value) tmpl::check_value(name, var, *var.default_value, "default");
}

}  // namespace

// Names are text: read as UTF-8, so that a refusal shows the name and the
// character it stumbled on whole, never half a multi-byte sequence.
void validate_name(const std::string& field, const std::string& value) {
  if (value.empty()) {
    throw Error(Errc::invalid, fmt::format("{} is empty (use 1-{} characters of "
                                           "[A-Za-z0-9._-])",
                                           field, limits::kMaxNameChars));
  }
  const std::string shown = util::printable(value);
  std::size_t count = 0;
  std::optional<char32_t> bad;
  std::string bad_text;
  for (std::size_t pos = 0; pos < value.size();) {
    std::size_t at = pos;
    auto c = util::utf8_next(value, pos);
    if (!c) {
      throw Error(Errc::invalid,
                  fmt::format("{} \"{}\": not UTF-8 text (byte 0x{:02X} at offset {})", field,
                              shown, static_cast<unsigned char>(value[at]), at));
    }
    ++count;
    if (!bad && !(*c < 0x80 && is_name_char(static_cast<char>(*c)))) {
      bad = c;
      bad_text = value.substr(at, pos - at);
    }
  }
  if (count > limits::kMaxNameChars) {
    throw Error(Errc::invalid, fmt::format("{} \"{}\" is {} characters long; at most {} are "
                                           "allowed",
                                           field, shown, count, limits::kMaxNameChars));
  }
  if (bad) {
    std::string which = util::is_control(*bad)
                            ? util::code_point_name(*bad)
                            : fmt::format("'{}' ({})", bad_text, util::code_point_name(*bad));
    throw Error(Errc::invalid,
                fmt::format("{} \"{}\": character {} is not allowed (use [A-Za-z0-9._-])",
                            field, shown, which));
  }
  // A command line would read a leading dash as an option: the CLI could
  // create such a queue and never show it again.
  if (value[0] == '-') {
    throw Error(Errc::invalid, fmt::format("{} \"{}\" must not start with '-'", field, shown));
  }
  // "." and ".." match the character set but mean something else in a path
  // or a URL (the HTTP transport, the CLI's log directories).
  if (value == "." || value == "..") {
    throw Error(Errc::invalid, fmt::format("{} \"{}\" is not allowed", field, value));
  }
}

QueueRef QueueRef::parse(const std::string& text, const std::string& default_entity) {
  QueueRef ref;
  auto slash = text.find('/');
  if (slash == std::string::npos) {
    ref.name = text;
    ref.entity = default_entity;
    if (ref.entity.empty()) {
      // Name the queue first: a bad name is the likelier mistake.
      try {
        validate_name("queue name", ref.name);
      } catch (const Error& e) {
        throw Error(Errc::invalid,
                    fmt::format("queue \"{}\": {}", util::printable(text), e.what()));
      }
      throw Error(Errc::invalid, fmt::format("queue \"{}\": no entity given; write "
                                             "ENTITY/NAME or set a default entity",
                                             util::printable(text)));
    }
  } else {
    ref.entity = text.substr(0, slash);
    ref.name = text.substr(slash + 1);
  }
  try {
    validate_name("entity", ref.entity);
    validate_name("queue name", ref.name);
  } catch (const Error& e) {
    throw Error(Errc::invalid, fmt::format("queue \"{}\": {}", util::printable(text), e.what()));
  }
  return ref;
}

namespace {

const util::EnumName<VarType> kVarTypes[] = {
    {VarType::string, "string"}, {VarType::integer, "integer"}, {VarType::number, "number"}};

}  // namespace

const char* to_string(VarType t) { return util::enum_name(kVarTypes, t, "string"); }

VarType parse_var_type(const std::string& text) {
  return util::enum_parse(kVarTypes, text, "template variable type");
}

void QueueDef::validate() const {
  validate_name("entity", entity);
  validate_name("queue name", name);
  const std::string q = "queue " + ref().str();
  if (resource.empty()) {
    throw Error(Errc::invalid, fmt::format("{}: resource is empty (e.g. local-process, "
                                           "local-container, kubernetes)",
                                           q));
  }
  json::Document d = json::parse_object(config, q + ": config");
  if (lease_seconds < 1) {
    throw Error(Errc::invalid,
                fmt::format("{}: lease_seconds {} must be at least 1", q, lease_seconds));
  }
  if (max_attempts < 1) {
    throw Error(Errc::invalid,
                fmt::format("{}: max_attempts {} must be at least 1", q, max_attempts));
  }
  for (const auto& var : template_variables) {
    try {
      validate_variable(var.first, var.second);
    } catch (const Error& e) {
      throw Error(e.code(), fmt::format("{}: {}", q, e.what()));
    }
  }
  check_placeholders(d, "config", *this);
  check_resource_config(*this);
}

QueueDef parse_queue(const std::string& text, const std::string& default_entity,
                     const std::string& source) {
  json::Document d = json::parse_json_or_yaml(text, source);
  QueueDef q = queue_from_object(d, source, true);
  if (d.IsObject() && !d.HasMember("name")) {
    throw Error(Errc::invalid, fmt::format("{}: missing \"name\"", source));
  }
  if (q.entity.empty()) q.entity = default_entity;
  if (q.entity.empty()) {
    throw Error(Errc::invalid,
                fmt::format("{}: no \"entity\" given and no default entity", source));
  }
  q.created_at = 0;
  try {
    q.validate();
  } catch (const Error& e) {
    throw Error(e.code(), fmt::format("{}: {}", source, e.what()));
  }
  return q;
}

std::string config_to_json(const std::string& text, const std::string& field) {
  json::Document d = json::parse_json_or_yaml(text, field);
  if (d.IsNull()) return "{}";  // an empty document
  if (!d.IsObject()) {
    throw Error(Errc::invalid, fmt::format("{}: expected a mapping (a JSON object), got {} {}",
                                           field, json::type_name(d), json::dump(d)));
  }
  return json::dump(d);
}

std::string to_json(const QueueDef& q) {
  json::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  json::set(d, "entity", json::str(q.entity, a), a);
  json::set(d, "name", json::str(q.name, a), a);
  json::set(d, "resource", json::str(q.resource, a), a);
  json::set(d, "config", json::raw(q.config, "queue " + q.ref().str() + ": config", a), a);
  json::Value vars(rapidjson::kObjectType);
  for (const auto& kv : q.template_variables) {
    const TemplateVariable& var = kv.second;
    // Enum values and the default are written typed (8, not "8") when they
    // read as their type; otherwise as the text they hold.
    auto typed = [&](const std::string& text) {
      tmpl::TypedValue v;
      std::string why;
      if (tmpl::parse_typed(var.type, text, &v, &why)) return tmpl::to_json_value(v, a);
      return json::str(text, a);
    };
    json::Value o(rapidjson::kObjectType);
    json::set(o, "type", json::Value(to_string(var.type), a), a);
    auto bound = [](double b) {
      // 4, not 4.0: integral bounds read as integers.
      if (std::floor(b) == b && std::fabs(b) < 9.0e15) {
        return json::Value(static_cast<int64_t>(b));
      }
      return json::Value(b);
    };
    if (var.minimum) json::set(o, "minimum", bound(*var.minimum), a);
    if (var.maximum) json::set(o, "maximum", bound(*var.maximum), a);
    if (!var.enum_values.empty()) {
      json::Value e(rapidjson::kArrayType);
      for (const auto& v : var.enum_values) e.PushBack(typed(v), a);
      json::set(o, "enum", std::move(e), a);
    }
    if (var.default_value) json::set(o, "default", typed(*var.default_value), a);
    if (!var.description.empty()) json::set(o, "description", json::str(var.description, a), a);
    vars.AddMember(json::str(kv.first, a), o, a);
  }
  json::set(d, "template_variables", std::move(vars), a);
  json::set(d, "prioritization", json::Value(q.prioritization), a);
  json::set(d, "lease_seconds", json::Value(q.lease_seconds), a);
  json::set(d, "max_attempts", json::Value(q.max_attempts), a);
  json::set(d, "created_at", json::Value(static_cast<int64_t>(q.created_at)), a);
  return json::dump(d);
}

QueueDef queue_from_json(const std::string& text) {
  const std::string ctx = "queue JSON";
  json::Document d = json::parse_object(text, ctx);
  for (const char* key : {"entity", "name", "resource"}) json::require(d, key, ctx);
  return queue_from_object(d, ctx, false);
}

}  // namespace launch
