// Internal: random bytes from the kernel (getrandom), for tokens and keys.
#ifndef LAUNCH_SRC_UTIL_RANDOM_HPP
#define LAUNCH_SRC_UTIL_RANDOM_HPP

#include <cstddef>
#include <string>

namespace launch {
namespace util {

// `n` bytes; Errc::io when the kernel gives none.
std::string random_bytes(std::size_t n);

}  // namespace util
}  // namespace launch

#endif
