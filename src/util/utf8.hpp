// Internal: UTF-8 text, one code point at a time, and text made safe to
// print in an error message.
#ifndef LAUNCH_SRC_UTIL_UTF8_HPP
#define LAUNCH_SRC_UTIL_UTF8_HPP

#include <cstddef>
#include <optional>
#include <string>

namespace launch {
namespace util {

// Decodes the code point that starts at text[pos] and moves pos past it.
// Empty (pos unchanged) when the bytes there are not well-formed UTF-8: a
// stray continuation byte, a sequence cut short, an overlong form, a
// surrogate or a value past U+10FFFF.
std::optional<char32_t> utf8_next(const std::string& text, std::size_t& pos);

// "U+00E9".
std::string code_point_name(char32_t c);

// True for what a terminal would act on rather than show: C0 and C1
// controls, DEL, and the bidirectional overrides and isolates.
bool is_control(char32_t c);

// `text` for an error message: every well-formed, visible character as it
// is; controls as \u{...} and bytes that are not UTF-8 as \xNN, so a
// message never carries half a character or a terminal escape.
std::string printable(const std::string& text);

// Checks that `value` is text: well-formed UTF-8, no controls, at most
// `max_chars` characters (code points). Errc::invalid naming `field`, the
// value (printable()) and what is wrong: the byte offset, the character, the
// length.
void check_text(const std::string& field, const std::string& value, std::size_t max_chars);

}  // namespace util
}  // namespace launch

#endif
