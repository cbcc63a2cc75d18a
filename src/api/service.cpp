// The REST API over a Transport (launch/api.hpp). Each route is one
// Transport call; bodies go through the one JSON form of each type, and the
// small request bodies (an agent id, an exit code) through src/api/wire.
#include "launch/api.hpp"

#include <new>
#include <regex>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "api/wire.hpp"
#include "core/json_fields.hpp"
#include "launch/error.hpp"
#include "launch/job.hpp"
#include "launch/queue.hpp"
#include "util/json.hpp"
#include "util/url.hpp"

namespace launch {
namespace api {

namespace {

// A request's path split at '/', after the prefix; and its query.
struct Target {
  std::vector<std::string> parts;
  std::vector<std::pair<std::string, std::string>> query;
};

Target split_target(const std::string& target) {
  Target t;
  std::string path = target, query;
  std::size_t q = target.find('?');
  if (q != std::string::npos) {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  const std::string prefix = kPrefix;
  if (path.compare(0, prefix.size(), prefix) != 0 ||
      (path.size() > prefix.size() && path[prefix.size()] != '/')) {
    throw Error(Errc::not_found, fmt::format("no such route: {}", path));
  }
  std::size_t pos = prefix.size();
  while (pos < path.size()) {
    std::size_t next = path.find('/', pos + 1);
    if (next == std::string::npos) next = path.size();
    // Empty segments are kept: "/items/" names the item "", which no store
    // has, not the list.
    t.parts.push_back(util::percent_decode(path.substr(pos + 1, next - pos - 1), "path"));
    pos = next;
  }
  t.query = util::parse_query(query);
  return t;
}

std::string query_value(const Target& t, const std::string& name) {
  for (const auto& [k, v] : t.query) {
    if (k == name) return v;
  }
  return "";
}

template <typename T>
std::string json_array(const std::vector<T>& values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    out += to_json(values[i]);
  }
  return out + "]";
}

std::string string_array(const std::vector<std::string>& values) {
  json::Document d(rapidjson::kArrayType);
  for (const auto& v : values) d.PushBack(json::str(v, d.GetAllocator()), d.GetAllocator());
  return json::dump(d);
}

Response ok(std::string body, int status = 200) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response no_content() {
  Response r;
  r.status = 204;
  r.content_type.clear();
  return r;
}

std::string item_event(const QueueItem& item) {
  json::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  json::set(d, "id", json::str(item.id, a), a);
  json::set(d, "state", json::str(to_string(item.state), a), a);
  json::set(d, "queue", json::str(item.queue.str(), a), a);
  return json::dump(d);
}

[[noreturn]] void no_route(const Request& r) {
  throw Error(Errc::not_found, fmt::format("no such route: {} {}", r.method, r.target));
}

void require_method(const Request& r, const char* method) {
  if (r.method != method) {
    throw Error(Errc::unsupported,
                fmt::format("{} {}: method not allowed here (use {})", r.method, r.target, method));
  }
}

}  // namespace

int status_for(Errc code) {
  switch (code) {
    case Errc::invalid: return 400;
    case Errc::not_found: return 404;
    case Errc::exists: return 409;
    case Errc::state: return 409;
    case Errc::unsupported: return 501;
    case Errc::timeout: return 504;
    case Errc::io: return 503;
    default: return 500;
  }
}

Response error_response(Errc code, const std::string& message) {
  Response r;
  r.status = status_for(code);
  r.body = wire::error_body(code, message);
  return r;
}

Service::Service(std::shared_ptr<Transport> store) : store_(std::move(store)) {
  if (!store_) throw Error(Errc::invalid, "api::Service: no store");
}

void Service::set_event_sink(std::function<void(const Event&)> sink) { sink_ = std::move(sink); }

void Service::emit(const std::string& type, const std::string& data) const {
  if (sink_) sink_(Event{type, data});
}

Response Service::handle(const Request& request) const {
  try {
    return dispatch(request);
  } catch (const Error& e) {
    return error_response(e.code(), e.what());
  } catch (const std::bad_alloc&) {
    return error_response(Errc::io, "out of memory");
  } catch (const std::exception& e) {
    return error_response(Errc::internal, e.what());
  }
}

Response Service::dispatch(const Request& r) const {
  Target t = split_target(r.target);
  const auto& p = t.parts;
  Transport& s = *store_;
  if (p.empty()) no_route(r);
  const std::string& root = p[0];

  if (root == "health" && p.size() == 1) {
    require_method(r, "GET");
    return ok("{\"status\":\"ok\"}");
  }

  if (root == "queues") {
    if (p.size() == 1) {
      if (r.method == "GET") return ok(json_array(s.list_queues()));
      require_method(r, "POST");
      QueueDef q = queue_from_json(r.body);
      s.create_queue(q);
      return ok(to_json(s.get_queue(q.ref())), 201);
    }
    if (p.size() < 3) no_route(r);
    QueueRef ref = QueueRef::parse(p[1] + "/" + p[2]);
    if (p.size() == 3) {
      if (r.method == "GET") return ok(to_json(s.get_queue(ref)));
      require_method(r, "DELETE");
      std::string pending = query_value(t, "pending");
      QueueDelete mode = QueueDelete::if_no_pending;
      if (pending == "delete") {
        mode = QueueDelete::with_pending;
      } else if (!pending.empty() && pending != "refuse") {
        throw Error(Errc::invalid, fmt::format("query parameter \"pending\": \"{}\" is neither "
                                               "\"refuse\" nor \"delete\"",
                                               pending));
      }
      auto deleted = s.delete_queue(ref, mode);
      return ok("{\"deleted\":" + string_array(deleted) + "}");
    }
    if (p.size() == 4 && p[3] == "items") {
      require_method(r, "POST");
      JobSpec spec = job_spec_from_json(r.body);
      std::string id = s.push(ref, spec);
      QueueItem item = s.get(id);
      emit("work", item_event(item));
      return ok(to_json(item), 201);
    }
    no_route(r);
  }

  if (root == "items") {
    if (p.size() == 1) {
      require_method(r, "GET");
      ItemFilter f;
      for (const auto& [k, v] : t.query) {
        if (k == "queue") {
          f.queue = QueueRef::parse(v);
        } else if (k == "state") {
          f.state = parse_item_state(v);
        } else if (k == "agent_id") {
          f.agent_id = v;
        } else if (k == "limit") {
          f.limit = wire::parse_count(v, "query parameter \"limit\"");
        } else {
          throw Error(Errc::invalid, fmt::format("query parameter \"{}\" is not known here", k));
        }
      }
      return ok(json_array(s.list(f)));
    }
    const std::string& id = p[1];
    if (p.size() == 2) {
      require_method(r, "GET");
      return ok(to_json(s.get(id)));
    }
    if (p.size() != 3) no_route(r);
    const std::string& verb = p[2];
    require_method(r, "POST");
    if (verb == "cancel") {
      QueueItem item = s.cancel(id);
      emit("item", item_event(item));
      return ok(to_json(item));
    }
    if (verb == "warnings") {
      s.add_warning(id, wire::read_warning(r.body));
      return no_content();
    }
    wire::AgentCall call = wire::read_agent_call(r.body, verb);
    QueueItem item;
    if (verb == "start") {
      item = s.start(id, call.agent_id, call.run_id);
    } else if (verb == "finish") {
      item = s.finish(id, call.agent_id, call.exit_code.value_or(0));
    } else if (verb == "finish-and-claim") {
      FinishAndClaim fc = s.finish_and_claim(id, call.agent_id, call.exit_code.value_or(0),
                                             call.queues);
      emit("item", item_event(fc.finished));
      if (fc.next) emit("item", item_event(*fc.next));
      return ok(wire::finish_and_claim_body(fc));
    } else if (verb == "fail") {
      item = s.fail(id, call.agent_id, call.error, call.exit_code);
    } else if (verb == "confirm-stopped") {
      item = s.confirm_stopped(id, call.agent_id);
    } else if (verb == "requeue") {
      item = s.requeue(id, call.agent_id, call.reason);
      emit("work", item_event(item));
      return ok(to_json(item));
    } else {
      no_route(r);
    }
    emit("item", item_event(item));
    return ok(to_json(item));
  }

  if (root == "claims" && p.size() == 1) {
    require_method(r, "POST");
    wire::AgentCall call = wire::read_agent_call(r.body, "claim");
    auto item = s.claim(call.queues, call.agent_id);
    if (item) emit("item", item_event(*item));
    return ok(wire::claim_body(item));
  }

  if (root == "heartbeats" && p.size() == 1) {
    require_method(r, "POST");
    wire::AgentCall call = wire::read_agent_call(r.body, "heartbeat");
    return ok(to_json(s.heartbeat(call.agent_id, call.items)));
  }

  if (root == "leases" && p.size() == 2 && p[1] == "expire") {
    require_method(r, "POST");
    int moved = s.expire_leases();
    if (moved > 0) emit("work", "{}");
    return ok(fmt::format("{{\"moved\":{}}}", moved));
  }

  if (root == "agents") {
    if (p.size() == 1) {
      require_method(r, "GET");
      return ok(json_array(s.list_agents()));
    }
    if (p.size() == 2) {
      require_method(r, "PUT");
      AgentRecord agent = agent_record_from_json(r.body);
      if (agent.id != p[1]) {
        throw Error(Errc::invalid, fmt::format("agent record: field \"id\" is \"{}\", but the "
                                               "path names agent \"{}\"",
                                               agent.id, p[1]));
      }
      s.upsert_agent(agent);
      return no_content();
    }
  }
  no_route(r);
}

}  // namespace api
}  // namespace launch
