#include "util/json.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <yaml-cpp/yaml.h>

#include "launch/error.hpp"

namespace launch {
namespace json {

Document parse(const std::string& text, const std::string& what) {
  Document d;
  d.Parse(text.c_str(), text.size());
  if (d.HasParseError()) {
    throw Error(Errc::invalid,
                fmt::format("{}: invalid JSON at offset {}: {}", what, d.GetErrorOffset(),
                            rapidjson::GetParseError_En(d.GetParseError())));
  }
  return d;
}

Document parse_object(const std::string& text, const std::string& what) {
  Document d = parse(text.empty() ? std::string("{}") : text, what);
  if (!d.IsObject()) {
    throw Error(Errc::invalid, fmt::format("{}: expected a JSON object, got {} {}", what,
                                           type_name(d), dump(d)));
  }
  return d;
}

std::string dump(const Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

std::string scalar_text(const Value& v) {
  if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
  return dump(v);
}

const char* type_name(const Value& v) {
  switch (v.GetType()) {
    case rapidjson::kNullType: return "null";
    case rapidjson::kFalseType:
    case rapidjson::kTrueType: return "boolean";
    case rapidjson::kObjectType: return "object";
    case rapidjson::kArrayType: return "array";
    case rapidjson::kStringType: return "string";
    case rapidjson::kNumberType: return "number";
  }
  return "value";
}

namespace {

[[noreturn]] void wrong_type(const std::string& ctx, const char* key, const char* expected,
                             const Value& got) {
  throw Error(Errc::invalid, fmt::format("{}: field \"{}\" must be {}, got {} {}", ctx, key,
                                         expected, type_name(got), dump(got)));
}

const Value* member(const Value& obj, const char* key) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull()) return nullptr;
  return &it->value;
}

}  // namespace

std::string get_string(const Value& obj, const char* key, const std::string& ctx,
                       const std::string& def) {
  const Value* v = member(obj, key);
  if (!v) return def;
  if (!v->IsString()) wrong_type(ctx, key, "a string", *v);
  return std::string(v->GetString(), v->GetStringLength());
}

std::optional<std::int64_t> get_optional_int(const Value& obj, const char* key,
                                             const std::string& ctx) {
  const Value* v = member(obj, key);
  if (!v) return std::nullopt;
  if (v->IsInt64()) return v->GetInt64();
  if (v->IsDouble() && std::floor(v->GetDouble()) == v->GetDouble() &&
      std::fabs(v->GetDouble()) < 9.0e15) {
    return static_cast<std::int64_t>(v->GetDouble());
  }
  wrong_type(ctx, key, "an integer", *v);
}

std::int64_t get_int(const Value& obj, const char* key, const std::string& ctx,
                     std::int64_t def) {
  auto v = get_optional_int(obj, key, ctx);
  return v ? *v : def;
}

std::optional<double> get_optional_number(const Value& obj, const char* key,
                                          const std::string& ctx) {
  const Value* v = member(obj, key);
  if (!v) return std::nullopt;
  if (!v->IsNumber()) wrong_type(ctx, key, "a number", *v);
  return v->GetDouble();
}

bool get_bool(const Value& obj, const char* key, const std::string& ctx, bool def) {
  const Value* v = member(obj, key);
  if (!v) return def;
  if (!v->IsBool()) wrong_type(ctx, key, "true or false", *v);
  return v->GetBool();
}

std::vector<std::string> get_string_array(const Value& obj, const char* key,
                                          const std::string& ctx) {
  std::vector<std::string> out;
  const Value* v = member(obj, key);
  if (!v) return out;
  if (!v->IsArray()) wrong_type(ctx, key, "an array of strings", *v);
  for (const auto& e : v->GetArray()) {
    if (!e.IsString()) wrong_type(ctx, key, "an array of strings", *v);
    out.emplace_back(e.GetString(), e.GetStringLength());
  }
  return out;
}

std::map<std::string, std::string> get_string_map(const Value& obj, const char* key,
                                                  const std::string& ctx) {
  std::map<std::string, std::string> out;
  const Value* v = member(obj, key);
  if (!v) return out;
  if (!v->IsObject()) wrong_type(ctx, key, "an object", *v);
  for (const auto& m : v->GetObject()) {
    if (m.value.IsObject() || m.value.IsArray() || m.value.IsNull()) {
      throw Error(Errc::invalid,
                  fmt::format("{}: field \"{}.{}\" must be a string or number, got {}", ctx,
                              key, m.name.GetString(), dump(m.value)));
    }
    out[std::string(m.name.GetString(), m.name.GetStringLength())] = scalar_text(m.value);
  }
  return out;
}

std::string get_raw(const Value& obj, const char* key, const std::string& ctx,
                    bool require_object) {
  const Value* v = member(obj, key);
  if (!v) return "{}";
  if (require_object && !v->IsObject()) wrong_type(ctx, key, "an object", *v);
  return dump(*v);
}

Value str(const std::string& s, Allocator& a) {
  return Value(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), a);
}

Value string_array(const std::vector<std::string>& v, Allocator& a) {
  Value arr(rapidjson::kArrayType);
  for (const auto& s : v) arr.PushBack(str(s, a), a);
  return arr;
}

Value string_map(const std::map<std::string, std::string>& m, Allocator& a) {
  Value obj(rapidjson::kObjectType);
  for (const auto& kv : m) obj.AddMember(str(kv.first, a), str(kv.second, a), a);
  return obj;
}

Value raw(const std::string& text, const std::string& what, Allocator& a) {
  Document d = parse_object(text, what);
  return Value(d, a);
}

void set(Value& obj, const char* key, Value v, Allocator& a) {
  auto it = obj.FindMember(key);
  if (it != obj.MemberEnd()) {
    it->value = v;
  } else {
    obj.AddMember(Value(key, a), v, a);
  }
}

namespace {

Value plain_scalar(const std::string& s, Allocator& a) {
  if (s == "~" || s == "null" || s == "Null" || s == "NULL" || s.empty()) return Value();
  if (s == "true" || s == "True" || s == "TRUE") return Value(true);
  if (s == "false" || s == "False" || s == "FALSE") return Value(false);
  const char* b = s.c_str();
  char* end = nullptr;
  errno = 0;
  long long i = std::strtoll(b, &end, 10);
  if (*end == '\0' && errno == 0 && end != b) return Value(static_cast<int64_t>(i));
  errno = 0;
  double d = std::strtod(b, &end);
  if (*end == '\0' && errno == 0 && end != b && std::isfinite(d) &&
      s.find_first_of("xXnN") == std::string::npos) {
    return Value(d);
  }
  return str(s, a);
}

Value from_yaml(const YAML::Node& n, Allocator& a) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return Value();
    case YAML::NodeType::Scalar:
      // A quoted scalar has the non-specific tag "!": it is always a string.
      if (n.Tag() == "!") return str(n.Scalar(), a);
      return plain_scalar(n.Scalar(), a);
    case YAML::NodeType::Sequence: {
      Value arr(rapidjson::kArrayType);
      for (const auto& e : n) arr.PushBack(from_yaml(e, a), a);
      return arr;
    }
    case YAML::NodeType::Map: {
      Value obj(rapidjson::kObjectType);
      for (const auto& kv : n) {
        obj.AddMember(str(kv.first.as<std::string>(), a), from_yaml(kv.second, a), a);
      }
      return obj;
    }
  }
  return Value();
}

}  // namespace

std::string yaml_to_json(const std::string& text, const std::string& what) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error(Errc::invalid, fmt::format("{}: {} at line {}, column {}", what, e.msg,
                                           e.mark.line + 1, e.mark.column + 1));
  }
  Document d;
  Value v = from_yaml(root, d.GetAllocator());
  return dump(v);
}

}  // namespace json
}  // namespace launch
