// The client's stored API keys (launch/api.hpp): one "SERVER_URL KEY" per
// line; '#' starts a comment.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "launch/api.hpp"
#include "launch/error.hpp"
#include "util/fs.hpp"

namespace launch {
namespace api {

namespace {

std::string normalized(std::string url) {
  std::size_t q = url.find('?');
  if (q != std::string::npos) url.resize(q);
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

std::vector<std::pair<std::string, std::string>> read_entries(const std::string& path) {
  std::vector<std::pair<std::string, std::string>> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string url, key;
    if (!(fields >> url >> key) || url[0] == '#') continue;
    out.emplace_back(url, key);
  }
  return out;
}

}  // namespace

std::string credentials_path() {
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  if (xdg && *xdg) return std::string(xdg) + "/launch/credentials";
  const char* home = std::getenv("HOME");
  if (!home || !*home) {
    throw Error(Errc::invalid, "no home directory (HOME) for ~/.config/launch/credentials");
  }
  return std::string(home) + "/.config/launch/credentials";
}

std::string api_key_for(const std::string& server_url) {
  if (const char* env = std::getenv("LAUNCH_API_KEY"); env && *env) return env;
  std::string path;
  try {
    path = credentials_path();
  } catch (const Error&) {
    return "";
  }
  std::string want = normalized(server_url);
  for (const auto& [url, key] : read_entries(path)) {
    if (normalized(url) == want) return key;
  }
  return "";
}

void store_api_key(const std::string& server_url, const std::string& key) {
  if (key.empty() || key.find_first_of(" \t\r\n") != std::string::npos) {
    throw Error(Errc::invalid, "API key: empty or holding white space");
  }
  std::string path = credentials_path();
  std::string dir = path.substr(0, path.rfind('/'));
  util::make_directories(dir);
  std::string want = normalized(server_url);
  std::string text = "# launch API keys, one \"SERVER_URL KEY\" a line (launch login)\n";
  for (const auto& [url, k] : read_entries(path)) {
    if (normalized(url) != want) text += url + " " + k + "\n";
  }
  text += want + " " + key + "\n";
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw Error(Errc::io, fmt::format("{}: {}", tmp, std::strerror(errno)));
  }
  bool ok = ::fchmod(fd, 0600) == 0 && util::write_fully(fd, text.data(), text.size()) &&
            ::fsync(fd) == 0;
  int saved = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) saved = errno;
    ::unlink(tmp.c_str());
    throw Error(Errc::io, fmt::format("{}: {}", path, std::strerror(saved)));
  }
}

}  // namespace api
}  // namespace launch
