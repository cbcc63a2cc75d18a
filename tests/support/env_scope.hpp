// Tests only: an environment variable set (or unset, for nullptr) for a
// scope, and put back as it was when the scope ends.
#ifndef LAUNCH_TESTS_SUPPORT_ENV_SCOPE_HPP
#define LAUNCH_TESTS_SUPPORT_ENV_SCOPE_HPP

#include <cstdlib>
#include <string>

namespace launch_test {

class EnvScope {
 public:
  EnvScope(const char* name, const char* value) : name_(name) {
    const char* old = std::getenv(name);
    had_ = old != nullptr;
    if (had_) old_ = old;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  EnvScope(const char* name, const std::string& value) : EnvScope(name, value.c_str()) {}
  ~EnvScope() {
    if (had_) {
      ::setenv(name_.c_str(), old_.c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  EnvScope(const EnvScope&) = delete;
  EnvScope& operator=(const EnvScope&) = delete;

 private:
  std::string name_;
  bool had_ = false;
  std::string old_;
};

}  // namespace launch_test

#endif
