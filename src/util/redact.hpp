// Internal: secrets kept out of what is printed or logged.
#ifndef LAUNCH_SRC_UTIL_REDACT_HPP
#define LAUNCH_SRC_UTIL_REDACT_HPP

#include <string>

namespace launch {
namespace util {

// `uri` with the password of "scheme://user:PASSWORD@host..." and the
// value of a "password=" parameter (libpq's key=value form, or a query)
// replaced by "***"; anything else unchanged.
std::string mask_password(const std::string& uri);

}  // namespace util
}  // namespace launch

#endif
