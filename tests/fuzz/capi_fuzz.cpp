// The C ABI's text functions against a private memory:// store: a queue
// file (launch_queue_create), then after a NUL byte a job spec pushed to
// the queue it made and to a queue with template variables
// (launch_queue_push), then the lists that read them back. Any return code
// is fine; LAUNCH_EINTERNAL (which launch.h says is a bug) is a crash here.
#include <cstring>
#include <string>

#include "fuzz_support.hpp"
#include "launch/launch.h"
#include "rapidjson/document.h"

namespace {

void check(int rc, const char* call) {
  if (rc == LAUNCH_EINTERNAL) fuzz::broken(call, launch_last_error());
}

// "entity/name" of the queue launch_queue_create() returned.
std::string queue_ref(const char* json) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(json);
  if (!d.IsObject() || !d.HasMember("entity") || !d.HasMember("name") ||
      !d["entity"].IsString() || !d["name"].IsString()) {
    fuzz::broken("launch_queue_create returned no entity and name", json);
  }
  return std::string(d["entity"].GetString()) + "/" + d["name"].GetString();
}

const char* const kTemplatedQueue =
    "entity: fuzz\n"
    "name: templated\n"
    "resource: local-process\n"
    "config: {env: {N: '{{n}}'}}\n"
    "template_variables:\n"
    "  n: {type: integer, minimum: 0, maximum: 8, default: 1}\n";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto parts = fuzz::split(fuzz::text(data, size), 2);
  launch_transport* t = nullptr;
  if (launch_transport_open(&t, "memory://") != LAUNCH_OK) {
    fuzz::broken("memory:// did not open", launch_last_error());
  }
  check(launch_queue_create(t, kTemplatedQueue, nullptr), "launch_queue_create (templated)");

  char* out = nullptr;
  int rc = launch_queue_create(t, parts[0].c_str(), &out);
  check(rc, "launch_queue_create");
  std::string created;
  if (rc == LAUNCH_OK) created = queue_ref(out);
  launch_free(out);

  for (const std::string& queue : {std::string("fuzz/templated"), created}) {
    if (queue.empty()) continue;
    char* id = nullptr;
    check(launch_queue_push(t, queue.c_str(), parts[1].c_str(), &id), "launch_queue_push");
    launch_free(id);
  }
  out = nullptr;
  check(launch_item_list(t, nullptr, nullptr, &out), "launch_item_list");
  launch_free(out);
  out = nullptr;
  check(launch_queue_list(t, &out), "launch_queue_list");
  launch_free(out);
  launch_transport_close(t);
  return 0;
}
