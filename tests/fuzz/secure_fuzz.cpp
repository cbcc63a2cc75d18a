// Secure-mode checks (core/secure) on a resolved config and a job's
// resource_args, and local-container's option allow-list.
#include "core/secure.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto parts = fuzz::split(fuzz::text(data, size), 2);
  launch::JobSpec spec;
  spec.entry_point = {"python", "train.py"};
  spec.resource_args = parts[1].empty() ? "{}" : parts[1];
  for (bool overridden : {false, true}) {
    fuzz::refused([&] {
      launch::check_secure_mode("local-container", parts[0], spec, overridden);
    });
  }
  fuzz::refused([&] { launch::check_container_options(parts[0]); });
  return 0;
}
