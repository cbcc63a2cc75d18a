// Status codes, the per-thread last error, version and memory.
#include <cstdlib>
#include <cstring>

#include "capi.hpp"
#include "launch/version.hpp"

namespace launch {
namespace capi {
namespace {

thread_local std::string last_error;

}  // namespace

void set_error(const char* message) noexcept {
  try {
    last_error.assign(message ? message : "");
  } catch (...) {
    // Keeping the old message is better than crossing extern "C".
  }
}

void set_error(const std::string& message) noexcept { set_error(message.c_str()); }

int null_argument(const char* function, const char* argument) noexcept {
  try {
    set_error(std::string(function) + ": " + argument + " is NULL");
  } catch (...) {
    set_error("an argument is NULL");
  }
  return LAUNCH_EINVALID;
}

char* dup(const std::string& s) {
  auto* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (!p) throw std::bad_alloc();
  std::memcpy(p, s.c_str(), s.size() + 1);
  return p;
}

Errc errc_from_code(int code) noexcept {
  if (code <= LAUNCH_EINVALID && code >= LAUNCH_EUSER) return static_cast<Errc>(code);
  return Errc::user;
}

}  // namespace capi
}  // namespace launch

extern "C" {

const char* launch_last_error(void) { return launch::capi::last_error.c_str(); }

int launch_error_set(int code, const char* message) {
  launch::capi::set_error(message);
  return code;
}

const char* launch_error_name(int code) {
  switch (code) {
    case LAUNCH_OK: return "ok";
    case LAUNCH_EINVALID: return "invalid";
    case LAUNCH_ENOTFOUND: return "not_found";
    case LAUNCH_EEXISTS: return "exists";
    case LAUNCH_ESTATE: return "state";
    case LAUNCH_EIO: return "io";
    case LAUNCH_EUNSUPPORTED: return "unsupported";
    case LAUNCH_ETIMEOUT: return "timeout";
    case LAUNCH_EINTERNAL: return "internal";
    case LAUNCH_EUSER: return "user";
    default: return "unknown";
  }
}

void launch_free(void* ptr) { std::free(ptr); }

const char* launch_version(void) { return launch::version(); }

int launch_version_number(void) { return launch::version_number(); }

}  // extern "C"
