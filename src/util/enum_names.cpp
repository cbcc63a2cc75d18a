#include "util/enum_names.hpp"

#include <fmt/format.h>

#include "launch/error.hpp"

namespace launch {
namespace util {

void throw_bad_enum(const char* what, const std::string& text, const std::string& choices) {
  throw Error(Errc::invalid, fmt::format("{} \"{}\": expected {}", what, text, choices));
}

}  // namespace util
}  // namespace launch
