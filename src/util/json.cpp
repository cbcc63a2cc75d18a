#include "util/json.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <vector>

#include <fmt/format.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <yaml-cpp/yaml.h>

#include "launch/error.hpp"
#include "util/limits.hpp"

namespace launch {
namespace json {

namespace {

// Builds the Document through RapidJSON's iterative reader (no recursion
// for a crafted document to overflow), refusing nesting past the limit as
// it goes, and reading every number from its text: integers exactly,
// others with strtod (correctly rounded, so a number comes back the same
// from every store; RapidJSON's own full-precision path turns 9e308 into a
// tiny negative number), and anything that would be infinite refused.
class StrictHandler {
 public:
  explicit StrictHandler(Document& d) : d_(d) {}
  std::string error;

  bool Null() { return d_.Null(); }
  bool Bool(bool b) { return d_.Bool(b); }
  bool Int(int i) { return d_.Int(i); }
  bool Uint(unsigned u) { return d_.Uint(u); }
  bool Int64(int64_t i) { return d_.Int64(i); }
  bool Uint64(uint64_t u) { return d_.Uint64(u); }
  bool Double(double v) { return d_.Double(v); }
  bool String(const char* s, rapidjson::SizeType n, bool copy) { return d_.String(s, n, copy); }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) { return d_.Key(s, n, copy); }
  bool StartObject() { return enter() && d_.StartObject(); }
  bool EndObject(rapidjson::SizeType n) { --depth_; return d_.EndObject(n); }
  bool StartArray() { return enter() && d_.StartArray(); }
  bool EndArray(rapidjson::SizeType n) { --depth_; return d_.EndArray(n); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    std::string text(s, n);
    if (text.find_first_of(".eE") == std::string::npos) {
      errno = 0;
      char* end = nullptr;
      if (text[0] == '-') {
        long long v = std::strtoll(text.c_str(), &end, 10);
        if (errno == 0 && *end == '\0') return d_.Int64(v);
      } else {
        unsigned long long v = std::strtoull(text.c_str(), &end, 10);
        if (errno == 0 && *end == '\0') return d_.Uint64(v);
      }
    }
    double v = std::strtod(text.c_str(), nullptr);
    if (!std::isfinite(v)) {
      error = fmt::format("the number {} is too large to represent", text);
      return false;
    }
    return d_.Double(v);
  }

 private:
  bool enter() {
    if (++depth_ > limits::kMaxNesting) {
      error = fmt::format("JSON nests deeper than {} levels", limits::kMaxNesting);
      return false;
    }
    return true;
  }
  Document& d_;
  int depth_ = 0;
};

}  // namespace

namespace {

// json::parse(); a syntax error is left in `*syntax` (when given) instead
// of thrown, so a caller can try YAML next. A refused limit always throws.
Document parse_strict(const std::string& text, const std::string& what,
                      rapidjson::ParseResult* syntax) {
  Document d;
  std::string error;
  rapidjson::ParseResult result;
  auto generate = [&](Document& target) {
    StrictHandler h(target);
    rapidjson::Reader reader;
    rapidjson::StringStream in(text.c_str());
    result = reader.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseNumbersAsStringsFlag>(
        in, h);
    error = h.error;
    return !result.IsError();
  };
  d.Populate(generate);
  if (!error.empty()) throw Error(Errc::invalid, fmt::format("{}: {}", what, error));
  if (result.IsError() && syntax) {
    *syntax = result;
    return d;
  }
  if (result.IsError()) {
    throw Error(Errc::invalid,
                fmt::format("{}: invalid JSON at offset {}: {}", what, result.Offset(),
                            rapidjson::GetParseError_En(result.Code())));
  }
  return d;
}

}  // namespace

Document parse(const std::string& text, const std::string& what) {
  return parse_strict(text, what, nullptr);
}

Document parse_json_or_yaml(const std::string& text, const std::string& what) {
  auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && (text[first] == '{' || text[first] == '[')) {
    rapidjson::ParseResult syntax;
    Document d = parse_strict(text, what, &syntax);
    if (!syntax.IsError()) return d;
  }
  return parse(yaml_to_json(text, what), what);
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

// Converts a YAML tree, bounding its depth (an alias of its own enclosing
// node, `&a [*a]`, is infinitely deep) and the size it expands to (aliases
// of aliases grow exponentially), both through limits.hpp.
struct YamlConverter {
  const std::string& what;
  Allocator& a;
  std::size_t bytes = 0;

  void count(std::size_t n) {
    bytes += n;
    if (bytes > limits::kMaxYamlExpandedBytes) {
      throw Error(Errc::invalid,
                  fmt::format("{}: expands to more than {} bytes (through YAML aliases?)", what,
                              limits::kMaxYamlExpandedBytes));
    }
  }

  Value convert(const YAML::Node& n, int depth) {
    if (depth > limits::kMaxNesting) {
      throw Error(Errc::invalid,
                  fmt::format("{}: nests deeper than {} levels (a YAML alias inside the node "
                              "it names?) at line {}",
                              what, limits::kMaxNesting, n.Mark().line + 1));
    }
    switch (n.Type()) {
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        count(4);
        return Value();
      case YAML::NodeType::Scalar:
        count(n.Scalar().size() + 2);
        // A quoted scalar has the non-specific tag "!": it is always a string.
        if (n.Tag() == "!") return str(n.Scalar(), a);
        return plain_scalar(n.Scalar(), a);
      case YAML::NodeType::Sequence: {
        count(2);
        Value arr(rapidjson::kArrayType);
        for (const auto& e : n) arr.PushBack(convert(e, depth + 1), a);
        return arr;
      }
      case YAML::NodeType::Map: {
        count(2);
        Value obj(rapidjson::kObjectType);
        for (const auto& kv : n) {
          if (!kv.first.IsScalar()) {
            // The common case: `GPUS: {{gpus}}` unquoted is a map as a key.
            throw Error(Errc::invalid,
                        fmt::format("{}: line {}, column {}: a map key must be plain text; "
                                    "quote a template placeholder (\"{{{{var}}}}\")",
                                    what, kv.first.Mark().line + 1, kv.first.Mark().column + 1));
          }
          count(kv.first.Scalar().size() + 3);
          obj.AddMember(str(kv.first.Scalar(), a), convert(kv.second, depth + 1), a);
        }
        return obj;
      }
    }
    return Value();
  }
};

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
  YamlConverter converter{what, d.GetAllocator()};
  Value v = converter.convert(root, 0);
  return dump(v);
}

}  // namespace json
}  // namespace launch
