#include "util/user.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>

namespace launch {
namespace util {

std::string os_user_name() {
  if (const struct passwd* pw = ::getpwuid(::geteuid())) {
    if (pw->pw_name != nullptr && *pw->pw_name) return pw->pw_name;
  }
  const char* user = std::getenv("USER");
  return user != nullptr ? user : "";
}

std::string home_directory() {
  const char* home = std::getenv("HOME");
  if (home != nullptr && *home) return home;
  if (const struct passwd* pw = ::getpwuid(::geteuid())) {
    if (pw->pw_dir != nullptr) return pw->pw_dir;
  }
  return "";
}

std::string host_name() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

}  // namespace util
}  // namespace launch
