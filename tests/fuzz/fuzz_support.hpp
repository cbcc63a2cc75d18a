// What the harnesses share: the input as text, split into parts, and the
// rule they all check: the library may refuse an input (launch::Error),
// never crash, abort, leak or throw anything else.
#ifndef LAUNCH_TESTS_FUZZ_FUZZ_SUPPORT_HPP
#define LAUNCH_TESTS_FUZZ_FUZZ_SUPPORT_HPP

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "launch/error.hpp"

namespace fuzz {

inline std::string text(const std::uint8_t* data, std::size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

// The input cut at its first `parts - 1` NUL bytes into `parts` pieces
// (missing ones empty), so one input can carry a queue file and a job, or
// a base and an overlay, and C strings never hold a NUL.
inline std::vector<std::string> split(const std::string& s, std::size_t parts) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (out.size() + 1 < parts) {
    auto nul = s.find('\0', start);
    if (nul == std::string::npos) break;
    out.push_back(s.substr(start, nul - start));
    start = nul + 1;
  }
  out.push_back(start <= s.size() ? s.substr(start) : "");
  while (out.size() < parts) out.emplace_back();
  for (auto& p : out) p.erase(std::remove(p.begin(), p.end(), '\0'), p.end());
  return out;
}

// "key=value" lines as a map (template values, macros).
inline std::map<std::string, std::string> lines_map(const std::string& s) {
  std::map<std::string, std::string> out;
  std::size_t i = 0;
  while (i <= s.size()) {
    auto nl = s.find('\n', i);
    std::string line = s.substr(i, nl == std::string::npos ? std::string::npos : nl - i);
    auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
    if (nl == std::string::npos) break;
    i = nl + 1;
  }
  return out;
}

// Runs `f`; a refusal by the library is a fine outcome. Anything else that
// escapes (std::bad_alloc, a YAML or std exception) reaches libFuzzer as an
// uncaught exception, which is a crash.
template <typename F>
bool refused(F f) {
  try {
    f();
    return false;
  } catch (const launch::Error&) {
    return true;
  }
}

// A property the harness checks failed: a crash libFuzzer reports.
[[noreturn]] inline void broken(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz: %s\n%s\n", what, detail.c_str());
  std::abort();
}

}  // namespace fuzz

#endif
