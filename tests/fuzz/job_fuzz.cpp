// Job specs and queue items in their JSON form (what launch_queue_push()
// takes, what transports store): read, checked, and written back. What is
// read must come back unchanged through its JSON form.
#include "fuzz_support.hpp"
#include "launch/job.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input = fuzz::text(data, size);
  fuzz::refused([&] {
    launch::JobSpec spec = launch::job_spec_from_json(input);
    fuzz::refused([&] { spec.validate(); });
    std::string json = launch::to_json(spec);
    std::string again = launch::to_json(launch::job_spec_from_json(json));
    if (again != json) fuzz::broken("a job spec changed through its JSON form", json + "\n" + again);
  });
  fuzz::refused([&] {
    launch::QueueItem item = launch::queue_item_from_json(input);
    std::string json = launch::to_json(item);
    std::string again = launch::to_json(launch::queue_item_from_json(json));
    if (again != json) fuzz::broken("an item changed through its JSON form", json + "\n" + again);
  });
  return 0;
}
