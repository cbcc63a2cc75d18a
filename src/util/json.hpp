// Internal: the one JSON library (RapidJSON) behind small helpers, so every
// parse error and every wrong-typed field reads the same way.
#ifndef LAUNCH_SRC_UTIL_JSON_HPP
#define LAUNCH_SRC_UTIL_JSON_HPP

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <rapidjson/document.h>

namespace launch {
namespace json {

using Value = rapidjson::Value;
using Document = rapidjson::Document;
using Allocator = Document::AllocatorType;

// Parses `text`; Errc::invalid "<what>: invalid JSON at offset N: <reason>".
Document parse(const std::string& text, const std::string& what);
// As parse(), and the value must be an object ("<what>: expected a JSON object").
Document parse_object(const std::string& text, const std::string& what);
// Compact JSON text of `v`.
std::string dump(const Value& v);
// A readable rendering of a scalar for error messages: strings unquoted.
std::string scalar_text(const Value& v);
// The JSON type name of `v`: object, array, string, number, boolean, null.
const char* type_name(const Value& v);

// Field readers for an object `obj`. `ctx` prefixes errors ("job spec").
// Missing fields give `def`; a field of the wrong type is Errc::invalid
// naming ctx, the key, the expected type and the value.
std::string get_string(const Value& obj, const char* key, const std::string& ctx,
                       const std::string& def = "");
std::int64_t get_int(const Value& obj, const char* key, const std::string& ctx,
                     std::int64_t def = 0);
std::optional<std::int64_t> get_optional_int(const Value& obj, const char* key,
                                             const std::string& ctx);
std::optional<double> get_optional_number(const Value& obj, const char* key,
                                          const std::string& ctx);
bool get_bool(const Value& obj, const char* key, const std::string& ctx, bool def = false);
std::vector<std::string> get_string_array(const Value& obj, const char* key,
                                          const std::string& ctx);
// An object of scalars; numbers and booleans are kept as their JSON text.
std::map<std::string, std::string> get_string_map(const Value& obj, const char* key,
                                                  const std::string& ctx);
// A nested object or array as JSON text ("{}" when missing; an object is
// required when `require_object`).
std::string get_raw(const Value& obj, const char* key, const std::string& ctx,
                    bool require_object = true);

// Builders.
Value str(const std::string& s, Allocator& a);
Value string_array(const std::vector<std::string>& v, Allocator& a);
Value string_map(const std::map<std::string, std::string>& m, Allocator& a);
// Parses `text` (an object) and returns it as a Value owned by `a`.
Value raw(const std::string& text, const std::string& what, Allocator& a);
void set(Value& obj, const char* key, Value v, Allocator& a);

// YAML (a superset of JSON) to JSON. Plain scalars that read as integers,
// floats, booleans or null become those; quoted scalars stay strings.
// Errc::invalid "<what>: <yaml error> at line L, column C".
std::string yaml_to_json(const std::string& text, const std::string& what);

// A document that is JSON or YAML (queue files, -R and --config text): a
// text that starts with '{' or '[' is read as JSON first, so JSON beyond
// what YAML's parser takes (keys over 1,024 characters) is read; when it is
// not valid JSON, or starts otherwise, it is read as YAML. A limit refused
// while reading it as JSON (nesting, a number too large) is the error.
Document parse_json_or_yaml(const std::string& text, const std::string& what);

}  // namespace json
}  // namespace launch

#endif
