// Uses the installed library: opens an in-process transport, creates a queue
// from a queue file, pushes a job and reads it back. Exits non-zero, with
// the reason on stderr, if anything is off.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

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
    std::printf("launch %s: pushed %s to %s\n", launch::version(), id.c_str(),
                queue.ref().str().c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
  }
}
