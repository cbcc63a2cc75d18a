#include "util/redact.hpp"

#include <cctype>

namespace launch {
namespace util {

std::string mask_password(const std::string& uri) {
  std::string out = uri;
  auto scheme = out.find("://");
  if (scheme != std::string::npos) {
    auto start = scheme + 3;
    auto end = out.find_first_of("/?#", start);
    auto at = out.rfind('@', end == std::string::npos ? std::string::npos : end);
    if (at != std::string::npos && at >= start) {
      auto colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  const std::string key = "password=";
  for (std::size_t p = out.find(key); p != std::string::npos; p = out.find(key, p + 1)) {
    if (p > 0 && (std::isalnum(static_cast<unsigned char>(out[p - 1])) || out[p - 1] == '_')) {
      continue;
    }
    auto value = p + key.size();
    auto end = out.find_first_of("& ", value);
    if (end == std::string::npos) end = out.size();
    out.replace(value, end - value, "***");
  }
  return out;
}

}  // namespace util
}  // namespace launch
