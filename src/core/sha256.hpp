// Internal: SHA-256 (FIPS 180-4), for content hashes (image tags).
#ifndef LAUNCH_SRC_CORE_SHA256_HPP
#define LAUNCH_SRC_CORE_SHA256_HPP

#include <cstddef>
#include <cstdint>
#include <string>

namespace launch {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t size);
  void update(const std::string& s) { update(s.data(), s.size()); }
  // The digest as 64 lowercase hex digits. Call once.
  std::string hex_digest();

 private:
  void block(const unsigned char* p);
  std::uint32_t h_[8];
  unsigned char buf_[64];
  std::size_t buf_len_ = 0;
  std::uint64_t total_ = 0;
};

std::string sha256_hex(const std::string& data);

}  // namespace launch

#endif
