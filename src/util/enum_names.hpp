// Internal: the names of an enum's values, in one table per enum, so that
// to_string() and parse() cannot disagree and every refusal reads the same:
//   state "done": expected pending, claimed, running, stopping, finished, failed or stopped
#ifndef LAUNCH_SRC_UTIL_ENUM_NAMES_HPP
#define LAUNCH_SRC_UTIL_ENUM_NAMES_HPP

#include <cstddef>
#include <string>

namespace launch {
namespace util {

template <typename E>
struct EnumName {
  E value;
  const char* name;
};

// "a, b or c" from the table's names.
template <typename E, std::size_t N>
std::string enum_choices(const EnumName<E> (&table)[N]) {
  std::string out;
  for (std::size_t i = 0; i < N; ++i) {
    if (i > 0) out += i + 1 == N ? " or " : ", ";
    out += table[i].name;
  }
  return out;
}

// The value's name; `fallback` for a value outside the table (a cast int).
template <typename E, std::size_t N>
const char* enum_name(const EnumName<E> (&table)[N], E value, const char* fallback) {
  for (const auto& e : table) {
    if (e.value == value) return e.name;
  }
  return fallback;
}

// The value named `text`, or nullptr.
template <typename E, std::size_t N>
const E* enum_find(const EnumName<E> (&table)[N], const std::string& text) {
  for (const auto& e : table) {
    if (text == e.name) return &e.value;
  }
  return nullptr;
}

// Throws Errc::invalid: `what "text": expected a, b or c`.
[[noreturn]] void throw_bad_enum(const char* what, const std::string& text,
                                 const std::string& choices);

template <typename E, std::size_t N>
E enum_parse(const EnumName<E> (&table)[N], const std::string& text, const char* what) {
  if (const E* e = enum_find(table, text)) return *e;
  throw_bad_enum(what, text, enum_choices(table));
}

}  // namespace util
}  // namespace launch

#endif
