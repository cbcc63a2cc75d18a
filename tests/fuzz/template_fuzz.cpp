// Template values and filling (launch/template.hpp): a queue file, then
// after a NUL byte the values as key=value lines.
#include "fuzz_support.hpp"
#include "launch/queue.hpp"
#include "launch/template.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto parts = fuzz::split(fuzz::text(data, size), 2);
  launch::QueueDef q;
  if (fuzz::refused([&] { q = launch::parse_queue(parts[0], "fuzz", "queue file"); })) {
    // Not a queue: the text as a stored config alone, without its checks.
    q.entity = "fuzz";
    q.name = "q";
    q.config = parts[0];
  }
  auto values = fuzz::lines_map(parts[1]);
  fuzz::refused([&] { launch::validate_template_values(q, values); });
  fuzz::refused([&] { launch::fill_template(q, values); });
  return 0;
}
