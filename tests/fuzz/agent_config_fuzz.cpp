// launch-config.yaml, as launch-agent -c and launch_agent_create() read it
// (AgentConfig::from_yaml), and written back as JSON.
#include "fuzz_support.hpp"
#include "launch/agent.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input = fuzz::text(data, size);
  fuzz::refused([&] {
    launch::AgentConfig c = launch::AgentConfig::from_yaml(input, "launch-config.yaml");
    launch::to_json(c);
  });
  return 0;
}
