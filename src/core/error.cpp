#include "launch/error.hpp"
#include "launch/version.hpp"
#include "util/enum_names.hpp"

namespace launch {

const char* to_string(Errc code) {
  static const util::EnumName<Errc> names[] = {
      {Errc::invalid, "invalid"}, {Errc::not_found, "not found"},
      {Errc::exists, "exists"},   {Errc::state, "state"},
      {Errc::io, "io"},           {Errc::unsupported, "unsupported"},
      {Errc::timeout, "timeout"}, {Errc::internal, "internal"},
      {Errc::user, "user"}};
  return util::enum_name(names, code, "unknown");
}

const char* version() { return LAUNCH_VERSION_STRING; }
int version_number() { return LAUNCH_VERSION_NUMBER; }

}  // namespace launch
