// Internal: base64 (RFC 4648 section 4) and base64url (section 5).
#ifndef LAUNCH_SRC_UTIL_BASE64_HPP
#define LAUNCH_SRC_UTIL_BASE64_HPP

#include <string>
#include <string_view>

namespace launch {
namespace util {

// Padded with '=', as HTTP Basic auth and the Docker config file want it.
std::string base64_encode(std::string_view data);
// The URL-safe alphabet; unpadded unless `pad` (JWTs are unpadded, the
// Docker Engine's X-Registry-Auth header is padded).
std::string base64url_encode(std::string_view data, bool pad = false);
// Either alphabet, padded or not; line breaks are skipped. Errc::invalid
// naming the character for anything else.
std::string base64_decode(std::string_view text);

}  // namespace util
}  // namespace launch

#endif
