// Internal: how the local-container runner turns a resolved job into a
// Docker Engine container, exposed for tests.
//
// The resource config takes only these Docker options (DESIGN.md's
// allow-list): env, gpus, cpus, memory, shm-size, ulimit, workdir, name,
// platform, pids-limit. Any other key is Errc::invalid naming it.
#ifndef LAUNCH_SRC_RUNNER_LOCAL_CONTAINER_HPP
#define LAUNCH_SRC_RUNNER_LOCAL_CONTAINER_HPP

#include <cstdint>
#include <string>

#include "launch/runner.hpp"

namespace launch {

// The labels every container of ours carries.
constexpr const char* kLabelItemId = "launch.item-id";
constexpr const char* kLabelQueue = "launch.queue";
constexpr const char* kLabelAgent = "launch.agent";
constexpr const char* kLabelRunId = "launch.run-id";

struct ContainerPlan {
  std::string spec;  // the JSON body of POST /containers/create
  std::string name;  // "" = the engine picks one
  std::string platform;
};

// Errc::invalid naming the option for anything outside the allow-list or a
// value of the wrong shape.
ContainerPlan plan_container(const ResolvedJob& job);

// "512m", "2g", "1.5G", "1024", "64mb" -> bytes (Docker's units, base 1024).
// Errc::invalid naming `field` and the text.
std::int64_t parse_byte_size(const std::string& text, const std::string& field);

}  // namespace launch

#endif
