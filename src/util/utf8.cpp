#include "util/utf8.hpp"

#include <cstdint>

#include <fmt/format.h>

#include "launch/error.hpp"

namespace launch {
namespace util {

std::optional<char32_t> utf8_next(const std::string& text, std::size_t& pos) {
  if (pos >= text.size()) return std::nullopt;
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  unsigned char b0 = byte(pos);
  if (b0 < 0x80) {
    ++pos;
    return b0;
  }
  std::size_t len;
  char32_t c;
  char32_t min;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, c = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, c = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, c = b0 & 0x07, min = 0x10000;
  } else {
    return std::nullopt;
  }
  if (pos + len > text.size()) return std::nullopt;
  for (std::size_t i = 1; i < len; ++i) {
    unsigned char b = byte(pos + i);
    if ((b & 0xC0) != 0x80) return std::nullopt;
    c = (c << 6) | (b & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return std::nullopt;
  pos += len;
  return c;
}

std::string code_point_name(char32_t c) {
  return fmt::format("U+{:04X}", static_cast<std::uint32_t>(c));
}

bool is_control(char32_t c) {
  return c < 0x20 || (c >= 0x7F && c <= 0x9F) || (c >= 0x202A && c <= 0x202E) ||
         (c >= 0x2066 && c <= 0x2069);
}

std::string printable(const std::string& text) {
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t at = pos;
    auto c = utf8_next(text, pos);
    if (!c) {
      out += fmt::format("\\x{:02X}", static_cast<unsigned char>(text[pos]));
      ++pos;
    } else if (is_control(*c)) {
      out += fmt::format("\\u{{{:04X}}}", static_cast<std::uint32_t>(*c));
    } else {
      out.append(text, at, pos - at);
    }
  }
  return out;
}

void check_text(const std::string& field, const std::string& value, std::size_t max_chars) {
  std::size_t count = 0;
  for (std::size_t pos = 0; pos < value.size();) {
    std::size_t at = pos;
    auto c = utf8_next(value, pos);
    if (!c) {
      throw Error(Errc::invalid,
                  fmt::format("{} \"{}\": not UTF-8 text (byte 0x{:02X} at offset {})", field,
                              printable(value), static_cast<unsigned char>(value[at]), at));
    }
    if (is_control(*c)) {
      throw Error(Errc::invalid, fmt::format("{} \"{}\": control character {} is not allowed",
                                             field, printable(value), code_point_name(*c)));
    }
    ++count;
  }
  if (count > max_chars) {
    throw Error(Errc::invalid,
                fmt::format("{} \"{}\" is {} characters long; at most {} are allowed", field,
                            printable(value), count, max_chars));
  }
}

}  // namespace util
}  // namespace launch
