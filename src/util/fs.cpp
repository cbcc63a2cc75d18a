#include "util/fs.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include <fmt/format.h>

#include "launch/error.hpp"

namespace launch {
namespace util {

void make_directories(const std::string& path) {
  if (path.empty() || ::mkdir(path.c_str(), 0755) == 0 || errno == EEXIST) return;
  if (errno == ENOENT) {
    std::string parent = parent_path(path);
    if (!parent.empty() && parent != path) {
      make_directories(parent);
      if (::mkdir(path.c_str(), 0755) == 0 || errno == EEXIST) return;
    }
  }
  throw Error(Errc::io,
              fmt::format("cannot create directory {}: {}", path, std::strerror(errno)));
}

std::string parent_path(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return "";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string temp_directory() {
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp ? tmp : "/tmp";
}

TempDir::TempDir(const std::string& prefix) {
  std::string templ = temp_directory() + "/" + prefix + "XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    throw Error(Errc::io, fmt::format("cannot create a temporary directory \"{}\": {}", templ,
                                      std::strerror(errno)));
  }
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace util
}  // namespace launch
