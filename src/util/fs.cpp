#include "util/fs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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

void write_file_atomic(const std::string& path, const std::string& text) {
  std::string tmp = path + ".new";
  auto fail = [&](const char* what) {
    int saved = errno;
    ::unlink(tmp.c_str());
    throw Error(Errc::io, fmt::format("cannot {} {}: {}", what, path, std::strerror(saved)));
  };
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("write");
  const char* p = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      ::close(fd);
      fail("write");
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    fail("flush");
  }
  if (::close(fd) != 0) fail("write");
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("replace");
  // The rename itself reaches the disk with its directory.
  std::string dir = parent_path(path);
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

std::optional<std::string> read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw Error(Errc::io, fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  }
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int saved = errno;
      ::close(fd);
      throw Error(Errc::io, fmt::format("cannot read {}: {}", path, std::strerror(saved)));
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
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

bool write_fully(int fd, const char* data, std::size_t size) {
  while (fd >= 0 && size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return fd >= 0;
}

}  // namespace util
}  // namespace launch
