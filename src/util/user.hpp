// Internal: who and where this process runs.
#ifndef LAUNCH_SRC_UTIL_USER_HPP
#define LAUNCH_SRC_UTIL_USER_HPP

#include <string>

namespace launch {
namespace util {

// The name of the user this process acts as (the effective uid, which is
// the one whose files it writes), else $USER. "" when neither tells.
std::string os_user_name();
// $HOME, else the effective user's home directory. "" when unknown.
std::string home_directory();
// gethostname(), "localhost" when it fails.
std::string host_name();

}  // namespace util
}  // namespace launch

#endif
