// Uses the installed library: opens an in-process transport, creates a queue
// from a queue file, pushes a job and reads it back. Exits non-zero, with
// the reason on stderr, if anything is off.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include <launch/features.h>
#include <launch/launch.hpp>

int main() {
  try {
    // The header and the library must be the same version.
    if (std::strcmp(launch::version(), LAUNCH_VERSION_STRING) != 0) {
      std::fprintf(stderr, "header %s, library %s\n", LAUNCH_VERSION_STRING, launch::version());
      return 1;
    }
    auto transport = launch::open_transport("memory://");
    launch::QueueDef queue = launch::parse_queue(R"(name: gpu
entity: ml-team
resource: local-process
config: {env: {GPUS: "{{gpus}}"}}
template_variables:
  gpus: {type: integer, minimum: 1, maximum: 4, default: 1}
)");
    transport->create_queue(queue);

    launch::JobSpec spec;
    spec.name = "hello";
    spec.entry_point = {"echo", "hello"};
    spec.template_values = {{"gpus", "2"}};
    std::string id = transport->push(queue.ref(), spec);

    launch::QueueItem item = transport->get(id);
    if (item.state != launch::ItemState::pending || item.queue != queue.ref()) {
      std::fprintf(stderr, "pushed item %s is %s on %s\n", id.c_str(),
                   launch::to_string(item.state), item.queue.str().c_str());
      return 1;
    }

    // The installed launch/features.h describes the installed library: a
    // backend it says is left out is not registered.
    bool container = false;
    for (const auto& name : launch::runner_names()) {
      if (name == "local-container") container = true;
    }
    if (container != (LAUNCH_FEATURE_DOCKER == 1)) {
      std::fprintf(stderr, "features.h: LAUNCH_FEATURE_DOCKER %d, but local-container is %s\n",
                   LAUNCH_FEATURE_DOCKER, container ? "registered" : "not registered");
      return 1;
    }
    std::printf("launch %s: pushed %s to %s (postgres %d, http %d, docker %d, openssl %d)\n",
                launch::version(), id.c_str(), queue.ref().str().c_str(), LAUNCH_FEATURE_POSTGRES,
                LAUNCH_FEATURE_HTTP, LAUNCH_FEATURE_DOCKER, LAUNCH_FEATURE_OPENSSL);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
  }
}
