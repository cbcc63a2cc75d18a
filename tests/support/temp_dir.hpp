// launch_test::TempDir — the test suites' one temporary directory: made with
// mkdtemp under $TMPDIR (or /tmp), removed with everything in it when it goes
// out of scope, so no test leaves a directory behind.
//
// tests/support holds only headers; it is not a suite of its own.
#ifndef LAUNCH_TESTS_SUPPORT_TEMP_DIR_HPP
#define LAUNCH_TESTS_SUPPORT_TEMP_DIR_HPP

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace launch_test {

// $TMPDIR, or /tmp when it is unset or empty: where every test's
// temporary files go.
inline std::string temp_base() {
  const char* base = std::getenv("TMPDIR");
  return base && *base ? base : "/tmp";
}

class TempDir {
 public:
  // `prefix` names the directory's owner: $TMPDIR/<prefix>.XXXXXX.
  explicit TempDir(const std::string& prefix = "launch-test") {
    std::string tmpl = temp_base() + "/" + prefix + ".XXXXXX";
    if (!::mkdtemp(&tmpl[0])) {
      throw std::runtime_error("mkdtemp " + tmpl + ": " + std::strerror(errno));
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace launch_test

#endif
