// What every unit suite checks about a refusal: that it throws
// launch::Error with the right code, and what its message names.
#ifndef LAUNCH_TESTS_UNIT_EXPECT_ERROR_HPP
#define LAUNCH_TESTS_UNIT_EXPECT_ERROR_HPP

#include <doctest/doctest.h>

#include <string>

#include "launch/error.hpp"

namespace launch_test {

// Runs `f`, which must throw launch::Error with `code`; returns its message.
template <typename F>
std::string error_message(F f, launch::Errc code) {
  try {
    f();
  } catch (const launch::Error& e) {
    CHECK(e.code() == code);
    return e.what();
  }
  FAIL("expected launch::Error(" << launch::to_string(code) << ")");
  return "";
}

// The same for the most common refusal, bad input.
template <typename F>
std::string invalid(F f) {
  return error_message(f, launch::Errc::invalid);
}

inline bool has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace launch_test

#endif
