#include "launch/error.hpp"
#include "launch/version.hpp"

namespace launch {

const char* to_string(Errc code) {
  switch (code) {
    case Errc::invalid: return "invalid";
    case Errc::not_found: return "not found";
    case Errc::exists: return "exists";
    case Errc::state: return "state";
    case Errc::io: return "io";
    case Errc::unsupported: return "unsupported";
    case Errc::timeout: return "timeout";
    case Errc::internal: return "internal";
    case Errc::user: return "user";
  }
  return "unknown";
}

const char* version() { return LAUNCH_VERSION_STRING; }
int version_number() { return LAUNCH_VERSION_NUMBER; }

}  // namespace launch
