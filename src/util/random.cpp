#include "util/random.hpp"

#include <sys/random.h>

#include <cerrno>
#include <cstring>

#include "launch/error.hpp"

namespace launch {
namespace util {

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = ::getrandom(&out[got], n - got, 0);
    if (r < 0 && errno != EINTR) {
      throw Error(Errc::io, std::string("getrandom failed: ") + std::strerror(errno));
    }
    if (r > 0) got += static_cast<std::size_t>(r);
  }
  return out;
}

}  // namespace util
}  // namespace launch
