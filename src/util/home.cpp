#include "launch/home.hpp"

#include <cstdlib>

#include "launch/error.hpp"
#include "util/user.hpp"

namespace launch {

std::string launch_home() {
  const char* home = std::getenv("LAUNCH_HOME");
  if (home != nullptr && *home) return home;
  std::string user_home = util::home_directory();
  if (user_home.empty()) {
    throw Error(Errc::invalid, "LAUNCH_HOME is not set and the home directory is unknown");
  }
  return user_home + "/.local/share/launch";
}

std::string os_user_name() { return util::os_user_name(); }

std::string run_directory(const std::string& home, const std::string& item_id) {
  return home + "/runs/" + item_id;
}

}  // namespace launch
