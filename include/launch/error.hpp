// launch — errors.
//
// Every failure in the C++ API is a launch::Error: a code (one of a few
// families a caller may want to branch on) and a message that names the
// offending field and value. The C ABI maps the codes one to one onto
// LAUNCH_E* (launch.h).
#ifndef LAUNCH_ERROR_HPP
#define LAUNCH_ERROR_HPP

#include <stdexcept>
#include <string>

#include "launch/export.h"

namespace launch {

enum class Errc {
  invalid = -1,      // bad input: a field, a value, a file, a flag
  not_found = -2,    // no such queue, item, agent, runner, scheme
  exists = -3,       // already exists (a queue of that name)
  state = -4,        // an illegal state transition, or a lost lease
  io = -5,           // the store, the network, a process, a file
  unsupported = -6,  // a feature this transport/runner does not have
  timeout = -7,      // a deadline passed
  internal = -8,     // a bug in launch
  user = -9,         // a user callback (custom runner, event hook) failed
};

LAUNCH_EXPORT const char* to_string(Errc code);

class LAUNCH_EXPORT Error : public std::runtime_error {
 public:
  Error(Errc code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  Errc code() const noexcept { return code_; }

 private:
  Errc code_;
};

}  // namespace launch

#endif
