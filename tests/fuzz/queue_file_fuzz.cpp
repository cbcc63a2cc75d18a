// Queue files, YAML or JSON, read the way `launch queue create -f` and
// launch_queue_create() read them (parse_queue), and the -R / --config text
// (config_to_json). A queue that is accepted must come back unchanged
// through its stored JSON form.
#include "fuzz_support.hpp"
#include "launch/queue.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input = fuzz::text(data, size);
  fuzz::refused([&] {
    launch::QueueDef q = launch::parse_queue(input, "fuzz", "queue file");
    std::string stored = launch::to_json(q);
    std::string again = launch::to_json(launch::queue_from_json(stored));
    if (again != stored) fuzz::broken("a queue changed through its JSON form", stored + "\n" + again);
  });
  fuzz::refused([&] { launch::config_to_json(input, "-R"); });
  return 0;
}
