// Internal: every limit on input, in one place. Input past a limit is
// refused with an error that names the limit, never truncated, and never
// allowed to crash a process or grow its memory without bound.
#ifndef LAUNCH_SRC_UTIL_LIMITS_HPP
#define LAUNCH_SRC_UTIL_LIMITS_HPP

#include <cstddef>

namespace launch {
namespace limits {

// How deep JSON and YAML documents may nest (objects and arrays). Deeper
// documents are refused at parse, so nothing recursive ever sees one.
constexpr int kMaxNesting = 64;

// How large a YAML document may grow once its aliases are expanded (the
// "billion laughs" of a few hundred bytes that would expand to gigabytes).
constexpr std::size_t kMaxYamlExpandedBytes = 1u << 20;

}  // namespace limits
}  // namespace launch

#endif
