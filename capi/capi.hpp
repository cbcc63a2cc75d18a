// Internal to the C ABI: the handle structs and the guard that keeps every
// exception on this side of extern "C".
#ifndef LAUNCH_CAPI_CAPI_HPP
#define LAUNCH_CAPI_CAPI_HPP

#include <memory>
#include <new>
#include <string>

#include "launch/agent.hpp"
#include "launch/error.hpp"
#include "launch/launch.h"
#include "launch/transport.hpp"

struct launch_transport {
  std::shared_ptr<launch::Transport> rep;
};

struct launch_agent {
  std::unique_ptr<launch::Agent> rep;
};

namespace launch {
namespace capi {

// Sets the calling thread's last error. Never throws.
void set_error(const char* message) noexcept;
void set_error(const std::string& message) noexcept;

// Sets "<function>: <argument> is NULL" and returns LAUNCH_EINVALID.
int null_argument(const char* function, const char* argument) noexcept;

// A malloc'd copy of `s`, for the caller to launch_free(). Throws bad_alloc.
char* dup(const std::string& s);

// Stores `s` in `*out` when `out` is not NULL.
inline void put(char** out, const std::string& s) {
  if (out) *out = dup(s);
}
inline void clear(char** out) noexcept {
  if (out) *out = nullptr;
}

// The Errc a C status code stands for (Errc::user for anything unknown).
Errc errc_from_code(int code) noexcept;

// Runs `body` (returning an int status) and turns any exception into the
// matching LAUNCH_E* code with its message.
template <typename Body>
int guard(Body&& body) noexcept {
  try {
    return body();
  } catch (const Error& e) {
    set_error(e.what());
    return static_cast<int>(e.code());
  } catch (const std::bad_alloc&) {
    set_error("out of memory");
    return LAUNCH_EINTERNAL;
  } catch (const std::exception& e) {
    set_error(std::string("internal error: ") + e.what());
    return LAUNCH_EINTERNAL;
  } catch (...) {
    set_error("internal error: an unknown exception");
    return LAUNCH_EINTERNAL;
  }
}

}  // namespace capi
}  // namespace launch

#endif
