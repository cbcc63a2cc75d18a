// Internal: SHA-256 (FIPS 180-4) for content hashes (image tags) and
// HMAC-SHA256 (RFC 2104) for request signatures.
#ifndef LAUNCH_SRC_UTIL_SHA256_HPP
#define LAUNCH_SRC_UTIL_SHA256_HPP

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace launch {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t size);
  void update(const std::string& s) { update(s.data(), s.size()); }
  // The 32-byte digest. Call once, after the last update().
  std::string digest();
  // The digest as 64 lowercase hex digits. Call once.
  std::string hex_digest();

 private:
  void block(const unsigned char* p);
  std::uint32_t h_[8];
  unsigned char buf_[64];
  std::size_t buf_len_ = 0;
  std::uint64_t total_ = 0;
};

std::string sha256(std::string_view data);      // 32 raw bytes
std::string sha256_hex(std::string_view data);  // 64 hex digits
// HMAC-SHA256 of `data` under `key`: 32 raw bytes.
std::string hmac_sha256(std::string_view key, std::string_view data);
// Lowercase hex of raw bytes.
std::string hex(std::string_view bytes);

}  // namespace launch

#endif
