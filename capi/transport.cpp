// Transports, queues, items and registered agents: thin calls into launch::Transport, with
// JSON text in and out.
#include <string>
#include <vector>

#include "capi.hpp"
#include "launch/job.hpp"
#include "launch/queue.hpp"
#include "launch/transport.hpp"

namespace {

using launch::capi::clear;
using launch::capi::guard;
using launch::capi::null_argument;
using launch::capi::put;

// Joins JSON values into one JSON array.
template <typename T>
std::string json_array(const std::vector<T>& values) {
  std::string out = "[";
  for (const auto& v : values) {
    if (out.size() > 1) out += ',';
    out += launch::to_json(v);
  }
  out += ']';
  return out;
}

launch::QueueRef queue_ref(const char* text) { return launch::QueueRef::parse(text); }

}  // namespace

extern "C" {

int launch_transport_open(launch_transport** out, const char* uri) {
  if (!out) return null_argument("launch_transport_open", "out");
  *out = nullptr;
  return guard([&] {
    std::string u = uri && *uri ? std::string(uri) : launch::default_transport_uri();
    auto handle = std::make_unique<launch_transport>();
    handle->rep = launch::open_transport(u);
    *out = handle.release();
    return LAUNCH_OK;
  });
}

void launch_transport_close(launch_transport* transport) { delete transport; }

int launch_queue_create(launch_transport* transport, const char* text, char** queue_json_out) {
  clear(queue_json_out);
  if (!transport) return null_argument("launch_queue_create", "transport");
  if (!text) return null_argument("launch_queue_create", "text");
  return guard([&] {
    launch::QueueDef def = launch::parse_queue(text);
    transport->rep->create_queue(def);
    if (queue_json_out) put(queue_json_out, launch::to_json(transport->rep->get_queue(def.ref())));
    return LAUNCH_OK;
  });
}

int launch_queue_get(launch_transport* transport, const char* queue, char** queue_json_out) {
  clear(queue_json_out);
  if (!transport) return null_argument("launch_queue_get", "transport");
  if (!queue) return null_argument("launch_queue_get", "queue");
  if (!queue_json_out) return null_argument("launch_queue_get", "queue_json_out");
  return guard([&] {
    put(queue_json_out, launch::to_json(transport->rep->get_queue(queue_ref(queue))));
    return LAUNCH_OK;
  });
}

int launch_queue_list(launch_transport* transport, char** queues_json_out) {
  clear(queues_json_out);
  if (!transport) return null_argument("launch_queue_list", "transport");
  if (!queues_json_out) return null_argument("launch_queue_list", "queues_json_out");
  return guard([&] {
    put(queues_json_out, json_array(transport->rep->list_queues()));
    return LAUNCH_OK;
  });
}

int launch_queue_delete(launch_transport* transport, const char* queue) {
  if (!transport) return null_argument("launch_queue_delete", "transport");
  if (!queue) return null_argument("launch_queue_delete", "queue");
  return guard([&] {
    transport->rep->delete_queue(queue_ref(queue), launch::QueueDelete::with_pending);
    return LAUNCH_OK;
  });
}

int launch_queue_push(launch_transport* transport, const char* queue, const char* job_json,
                      char** item_id_out) {
  clear(item_id_out);
  if (!transport) return null_argument("launch_queue_push", "transport");
  if (!queue) return null_argument("launch_queue_push", "queue");
  if (!job_json) return null_argument("launch_queue_push", "job_json");
  return guard([&] {
    launch::JobSpec spec = launch::job_spec_from_json(job_json);
    std::string id = transport->rep->push(queue_ref(queue), spec);
    put(item_id_out, id);
    return LAUNCH_OK;
  });
}

int launch_item_get(launch_transport* transport, const char* item_id, char** item_json_out) {
  clear(item_json_out);
  if (!transport) return null_argument("launch_item_get", "transport");
  if (!item_id) return null_argument("launch_item_get", "item_id");
  if (!item_json_out) return null_argument("launch_item_get", "item_json_out");
  return guard([&] {
    put(item_json_out, launch::to_json(transport->rep->get(item_id)));
    return LAUNCH_OK;
  });
}

int launch_item_list(launch_transport* transport, const char* queue, const char* state,
                     char** items_json_out) {
  clear(items_json_out);
  if (!transport) return null_argument("launch_item_list", "transport");
  if (!items_json_out) return null_argument("launch_item_list", "items_json_out");
  return guard([&] {
    launch::ItemFilter filter;
    if (queue) filter.queue = queue_ref(queue);
    if (state) filter.state = launch::parse_item_state(state);
    put(items_json_out, json_array(transport->rep->list(filter)));
    return LAUNCH_OK;
  });
}

int launch_item_cancel(launch_transport* transport, const char* item_id, char** item_json_out) {
  clear(item_json_out);
  if (!transport) return null_argument("launch_item_cancel", "transport");
  if (!item_id) return null_argument("launch_item_cancel", "item_id");
  return guard([&] {
    launch::QueueItem item = transport->rep->cancel(item_id);
    put(item_json_out, launch::to_json(item));
    return LAUNCH_OK;
  });
}

int launch_agent_list(launch_transport* transport, char** agents_json_out) {
  clear(agents_json_out);
  if (!transport) return null_argument("launch_agent_list", "transport");
  if (!agents_json_out) return null_argument("launch_agent_list", "agents_json_out");
  return guard([&] {
    put(agents_json_out, json_array(transport->rep->list_agents()));
    return LAUNCH_OK;
  });
}

}  // extern "C"
