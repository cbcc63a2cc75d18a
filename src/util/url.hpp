// Internal: percent-encoding (RFC 3986) and the query strings built from it.
#ifndef LAUNCH_SRC_UTIL_URL_HPP
#define LAUNCH_SRC_UTIL_URL_HPP

#include <string>
#include <utility>
#include <vector>

namespace launch {
namespace util {

// Percent-encodes every byte but the unreserved ones (A-Z a-z 0-9 - _ . ~).
std::string percent_encode(const std::string& text);
// Undoes percent_encode (and '+' as a space, as forms write it). Throws
// Errc::invalid for a '%' not followed by two hex digits, naming `what`.
std::string percent_decode(const std::string& text, const std::string& what);

// "a=1&b=x%20y" -> {{"a","1"},{"b","x y"}}, in order; a name without '='
// has an empty value.
std::vector<std::pair<std::string, std::string>> parse_query(const std::string& query);

}  // namespace util
}  // namespace launch

#endif
