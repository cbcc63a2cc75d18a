// The Conan test package: the library links and works (an in-process
// queue takes a job).
#include <cstdio>
#include <exception>
#include <string>

#include <launch/launch.hpp>

int main() {
  try {
    auto transport = launch::open_transport("memory://");
    launch::QueueDef queue;
    queue.entity = "conan";
    queue.name = "test";
    transport->create_queue(queue);
    launch::JobSpec spec;
    spec.entry_point = {"true"};
    std::string id = transport->push(queue.ref(), spec);
    std::printf("launch %s: pushed %s to %s\n", launch::version(), id.c_str(),
                queue.ref().str().c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "test_package: %s\n", e.what());
    return 1;
  }
}
