// launch — the library's version, defined in one place (CMakeLists.txt
// generates nothing: this header is the source of truth and CMake reads it).
#ifndef LAUNCH_VERSION_HPP
#define LAUNCH_VERSION_HPP

#define LAUNCH_VERSION_MAJOR 0
#define LAUNCH_VERSION_MINOR 1
#define LAUNCH_VERSION_PATCH 0
#define LAUNCH_VERSION_STRING "0.1.0"
#define LAUNCH_VERSION_NUMBER \
  (LAUNCH_VERSION_MAJOR * 10000 + LAUNCH_VERSION_MINOR * 100 + LAUNCH_VERSION_PATCH)

#ifdef __cplusplus
#include "launch/export.h"

namespace launch {
// The version of the library actually linked, to compare with the macros
// above (a header/library mismatch shows up here).
LAUNCH_EXPORT const char* version();
LAUNCH_EXPORT int version_number();
}  // namespace launch
#endif

#endif
