// Internal: what the JSON forms of the public types (to_json and the
// *_from_json readers of job.hpp, queue.hpp, transport.hpp, agent.hpp) share
// on top of the field readers of json.hpp: required fields, int-sized
// fields and enum fields, each refused with an error that names the field.
#ifndef LAUNCH_SRC_CORE_JSON_FIELDS_HPP
#define LAUNCH_SRC_CORE_JSON_FIELDS_HPP

#include <climits>
#include <cstdint>
#include <string>

#include <fmt/format.h>

#include "util/json.hpp"
#include "launch/error.hpp"
#include "launch/job.hpp"

namespace launch {
namespace json {

// Errc::invalid "<ctx>: missing field \"key\"" unless `obj` has `key` (a
// null counts as missing).
inline void require(const Value& obj, const char* key, const std::string& ctx) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull()) {
    throw Error(Errc::invalid, fmt::format("{}: missing field \"{}\"", ctx, key));
  }
}

// get_int(), and the value must fit an int.
inline int get_int32(const Value& obj, const char* key, const std::string& ctx, int def) {
  std::int64_t v = get_int(obj, key, ctx, def);
  if (v < INT_MIN || v > INT_MAX) {
    throw Error(Errc::invalid, fmt::format("{}: field \"{}\" is out of range: {}", ctx, key, v));
  }
  return static_cast<int>(v);
}

// A string field read with `parse` (parse_item_state, ...); its refusal is
// prefixed with ctx and the field.
template <typename Parse>
auto get_enum(const Value& obj, const char* key, const std::string& ctx,
              const std::string& def, Parse parse) -> decltype(parse(def)) {
  std::string text = get_string(obj, key, ctx, def);
  try {
    return parse(text);
  } catch (const Error& e) {
    throw Error(e.code(), fmt::format("{}: field \"{}\": {}", ctx, key, e.what()));
  }
}

// An ItemError's one JSON form, {"stage", "message"}: in an item's
// "error" and in the body of a fail request to a launch server.
Value item_error_value(const ItemError& error, Allocator& a);
ItemError item_error_from(const Value& v, const std::string& ctx);

}  // namespace json
}  // namespace launch

#endif
