// The REST API over a Transport (launch/api.hpp). Each route is one
// Transport call; bodies go through the one JSON form of each type, and the
// small request bodies (an agent id, an exit code) through src/api/wire.
#include "launch/api.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "api/wire.hpp"
#include "core/json_fields.hpp"
#include "launch/error.hpp"
#include "launch/home.hpp"
#include "launch/job.hpp"
#include "launch/runner.hpp"
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

// An answer outside the Errc codes: 401 and 403.
struct Refusal {
  int status;
  const char* code;
  std::string message;
};

[[noreturn]] void forbid(const std::string& message) { throw Refusal{403, "forbidden", message}; }

std::string principal_json(const Principal& p, const std::vector<EntityAccess>& entities) {
  json::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  json::set(d, "name", json::str(p.display(), a), a);
  json::set(d, "kind",
            json::str(p.kind == Principal::Kind::user ? "user" : "service_account", a), a);
  json::set(d, "admin", json::Value(p.admin), a);
  json::Value list(rapidjson::kArrayType);
  for (const auto& e : entities) {
    json::Value o(rapidjson::kObjectType);
    o.AddMember("name", json::str(e.name, a), a);
    o.AddMember("kind", json::str(e.kind, a), a);
    o.AddMember("role", json::str(e.role, a), a);
    list.PushBack(o, a);
  }
  json::set(d, "entities", std::move(list), a);
  return json::dump(d);
}

json::Value key_value(const ApiKeyInfo& k, json::Allocator& a) {
  json::Value o(rapidjson::kObjectType);
  o.AddMember("prefix", json::str(k.prefix, a), a);
  o.AddMember("owner", json::str(k.owner_kind == Principal::Kind::user ? k.owner
                                                                       : k.owner + "@" + k.team,
                                 a),
              a);
  o.AddMember("owner_kind",
              json::str(k.owner_kind == Principal::Kind::user ? "user" : "service_account", a), a);
  o.AddMember("description", json::str(k.description, a), a);
  o.AddMember("created_at", json::Value(static_cast<int64_t>(k.created_at)), a);
  o.AddMember("expires_at", json::Value(static_cast<int64_t>(k.expires_at)), a);
  o.AddMember("revoked", json::Value(k.revoked), a);
  return o;
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

// GET /items/ID/logs: a piece of the run's log from `offset`.
Response read_log(Transport& store, const QueueItem& item, const Target& t) {
  std::string stream = query_value(t, "stream");
  if (stream.empty()) stream = "stdout";
  std::string offset_text = query_value(t, "offset");
  std::uint64_t offset =
      offset_text.empty() ? 0 : wire::parse_count(offset_text, "query parameter \"offset\"");
  Transport::LogChunk chunk = store.read_log(item.id, stream, offset);
  Response res;
  res.content_type = "text/plain; charset=utf-8";
  res.headers.emplace_back("X-Log-Offset", std::to_string(chunk.next_offset));
  res.headers.emplace_back("X-Log-Complete",
                           is_terminal(item.state) && chunk.data.empty() ? "true" : "false");
  res.body = std::move(chunk.data);
  return res;
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

struct Service::Caches {
  using Clock = std::chrono::steady_clock;
  std::mutex mu;
  // key -> its owner (or none), until when
  std::unordered_map<std::string, std::pair<std::optional<Principal>, Clock::time_point>> keys;
  // "kind/name/team|action|entity" -> decision, until when
  std::unordered_map<std::string, std::pair<Accounts::Decision, Clock::time_point>> decisions;
  std::unordered_map<std::string, std::string> item_entities;
  // For /metrics.
  std::map<std::pair<std::string, int>, std::uint64_t> requests;  // (method, status)
  struct Histogram {
    std::vector<double> bounds = {0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 3600};
    std::vector<std::uint64_t> counts = std::vector<std::uint64_t>(11, 0);
    std::uint64_t count = 0;
    double sum = 0;
  } claim_wait;
  void forget_accounts() {
    std::lock_guard<std::mutex> lock(mu);
    keys.clear();
    decisions.clear();
  }
};

Service::Service(std::shared_ptr<Transport> store, std::shared_ptr<Accounts> accounts)
    : store_(std::move(store)), accounts_(std::move(accounts)), caches_(new Caches) {
  if (!store_) throw Error(Errc::invalid, "api::Service: no store");
}

Service::~Service() = default;

std::string Service::item_entity(const std::string& item_id) const {
  {
    std::lock_guard<std::mutex> lock(caches_->mu);
    auto it = caches_->item_entities.find(item_id);
    if (it != caches_->item_entities.end()) return it->second;
  }
  QueueItem item = store_->get(item_id);
  remember_entity(item);
  return item.queue.entity;
}

void Service::remember_entity(const QueueItem& item) const {
  std::lock_guard<std::mutex> lock(caches_->mu);
  if (caches_->item_entities.size() >= kItemEntityCache) caches_->item_entities.clear();
  caches_->item_entities.emplace(item.id, item.queue.entity);
}

bool Service::authenticate(const std::string& authorization, Caller* caller,
                           Response* refusal) const {
  caller->reset();
  if (!accounts_) return true;
  const std::string bearer = "Bearer ";
  std::string key;
  if (authorization.compare(0, bearer.size(), bearer) == 0) key = authorization.substr(bearer.size());
  std::optional<Principal> p;
  if (!key.empty()) {
    auto now = Caches::Clock::now();
    bool cached = false;
    {
      std::lock_guard<std::mutex> lock(caches_->mu);
      auto it = caches_->keys.find(key);
      if (it != caches_->keys.end() && it->second.second > now) {
        p = it->second.first;
        cached = true;
      }
    }
    if (!cached) {
      p = accounts_->authenticate(key);
      std::lock_guard<std::mutex> lock(caches_->mu);
      if (caches_->keys.size() >= 4096) caches_->keys.clear();
      auto until = now + std::chrono::seconds(kAuthCacheSeconds);
      if (p && p->key_expires_at != 0) {  // never past the key's own expiry
        until = std::min(until, now + std::chrono::milliseconds(
                                          std::max<std::int64_t>(0, p->key_expires_at - now_ms())));
      }
      caches_->keys[key] = {p, until};
    }
  }
  if (!p) {
    refusal->status = 401;
    refusal->content_type = "application/json";
    refusal->body = wire::error_body_named(
        "unauthenticated", key.empty() ? "an API key is needed: Authorization: Bearer <key> "
                                         "(launch login, or LAUNCH_API_KEY)"
                                       : "the API key is unknown, revoked or expired");
    return false;
  }
  *caller = std::move(p);
  return true;
}

bool Service::may_see(const Caller& caller, const std::string& entity) const {
  if (!accounts_ || !caller || entity.empty()) return true;
  return decide(*caller, Action::see, entity) == Accounts::Decision::allow;
}

Accounts::Decision Service::decide(const Principal& p, Action action,
                                   const std::string& entity) const {
  if (p.admin) return Accounts::Decision::allow;
  std::string key = fmt::format("{}/{}/{}|{}|{}", static_cast<int>(p.kind), p.name, p.team,
                                static_cast<int>(action), entity);
  auto now = Caches::Clock::now();
  {
    std::lock_guard<std::mutex> lock(caches_->mu);
    auto it = caches_->decisions.find(key);
    if (it != caches_->decisions.end() && it->second.second > now) return it->second.first;
  }
  Accounts::Decision d = accounts_->decide(p, action, entity);
  std::lock_guard<std::mutex> lock(caches_->mu);
  if (caches_->decisions.size() >= 4096) caches_->decisions.clear();
  caches_->decisions[key] = {d, now + std::chrono::seconds(kAuthCacheSeconds)};
  return d;
}

void Service::require(const Caller& caller, Action action, const std::string& entity,
                      const std::string& hidden_message) const {
  if (!accounts_ || !caller) return;
  switch (decide(*caller, action, entity)) {
    case Accounts::Decision::allow: return;
    case Accounts::Decision::hidden: throw Error(Errc::not_found, hidden_message);
    case Accounts::Decision::forbidden:
      forbid(fmt::format("{} may not {} queues of \"{}\"", caller->display(),
                         action == Action::manage ? "create, change or delete"
                         : action == Action::push ? "push to"
                                                  : "work on",
                         entity));
  }
}

void Service::set_event_sink(std::function<void(const Event&)> sink) { sink_ = std::move(sink); }

void Service::emit(const std::string& type, const std::string& data,
                   const std::string& entity) const {
  if (sink_) sink_(Event{type, data, entity});
}

Response Service::handle(const Request& request) const {
  Response r;
  try {
    r = dispatch(request);
  } catch (const Refusal& e) {
    r.status = e.status;
    r.body = wire::error_body_named(e.code, e.message);
  } catch (const Error& e) {
    r = error_response(e.code(), e.what());
  } catch (const std::bad_alloc&) {
    r = error_response(Errc::io, "out of memory");
  } catch (const std::exception& e) {
    r = error_response(Errc::internal, e.what());
  }
  {
    // Only the methods the API knows, so a client cannot grow the table.
    static const char* const kMethods[] = {"GET", "POST", "PUT", "DELETE"};
    std::string method = "other";
    for (const char* m : kMethods) {
      if (request.method == m) method = m;
    }
    std::lock_guard<std::mutex> lock(caches_->mu);
    ++caches_->requests[{method, r.status}];
  }
  return r;
}

void Service::observe_claim(const QueueItem& item) const {
  double seconds = std::max<std::int64_t>(0, now_ms() - item.created_at) / 1000.0;
  std::lock_guard<std::mutex> lock(caches_->mu);
  auto& h = caches_->claim_wait;
  for (std::size_t i = 0; i < h.bounds.size(); ++i) {
    if (seconds <= h.bounds[i]) ++h.counts[i];
  }
  ++h.count;
  h.sum += seconds;
}

std::string Service::metrics() const {
  std::string out;
  auto label = [](const std::string& v) {
    std::string e;
    for (char c : v) {
      if (c == '\\' || c == '"') e += '\\';
      if (c == '\n') {
        e += "\\n";
        continue;
      }
      e += c;
    }
    return e;
  };
  out += "# HELP launch_items Items not yet ended, by queue and state.\n";
  out += "# TYPE launch_items gauge\n";
  for (ItemState st : {ItemState::pending, ItemState::claimed, ItemState::running,
                       ItemState::stopping}) {
    std::map<std::string, int> by_queue;
    for (const auto& q : store_->list_queues()) by_queue[q.ref().str()] = 0;
    for (const auto& it : store_->list({std::nullopt, st, "", 0})) ++by_queue[it.queue.str()];
    for (const auto& [q, n] : by_queue) {
      out += fmt::format("launch_items{{queue=\"{}\",state=\"{}\"}} {}\n", label(q),
                         to_string(st), n);
    }
  }
  out += "# HELP launch_agents Registered agents, by status.\n# TYPE launch_agents gauge\n";
  std::map<std::string, int> agents;
  for (AgentStatus st : {AgentStatus::polling, AgentStatus::running, AgentStatus::stopped,
                         AgentStatus::lost, AgentStatus::dead}) {
    agents[to_string(st)] = 0;
  }
  for (const auto& a : store_->list_agents()) ++agents[to_string(a.status)];
  for (const auto& [st, n] : agents) {
    out += fmt::format("launch_agents{{status=\"{}\"}} {}\n", st, n);
  }
  std::lock_guard<std::mutex> lock(caches_->mu);
  out += "# HELP launch_http_requests_total API requests answered, by method and status.\n";
  out += "# TYPE launch_http_requests_total counter\n";
  for (const auto& [k, n] : caches_->requests) {
    out += fmt::format("launch_http_requests_total{{method=\"{}\",code=\"{}\"}} {}\n",
                       k.first, k.second, n);
  }
  const auto& h = caches_->claim_wait;
  out += "# HELP launch_claim_wait_seconds From push to claim, for claims through this server.\n";
  out += "# TYPE launch_claim_wait_seconds histogram\n";
  for (std::size_t i = 0; i < h.bounds.size(); ++i) {
    out += fmt::format("launch_claim_wait_seconds_bucket{{le=\"{}\"}} {}\n", h.bounds[i],
                       h.counts[i]);
  }
  out += fmt::format("launch_claim_wait_seconds_bucket{{le=\"+Inf\"}} {}\n", h.count);
  out += fmt::format("launch_claim_wait_seconds_sum {}\n", h.sum);
  out += fmt::format("launch_claim_wait_seconds_count {}\n", h.count);
  return out;
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

  Caller caller;
  Response refusal;
  if (!authenticate(r.authorization, &caller, &refusal)) return refusal;
  auto queue_hidden = [](const QueueRef& ref) {
    return fmt::format("queue \"{}\" not found", ref.str());
  };
  auto item_hidden = [](const std::string& id) { return fmt::format("item {} not found", id); };
  // The item, if the caller may see it (else not found, as if it were not).
  auto visible_item = [&](const std::string& id) {
    QueueItem item = s.get(id);
    require(caller, Action::see, item.queue.entity, item_hidden(id));
    return item;
  };

  if (root == "me" && p.size() == 1) {
    require_method(r, "GET");
    if (!caller) {
      return ok("{\"name\":\"\",\"kind\":\"none\",\"admin\":true,\"entities\":[]}");
    }
    return ok(principal_json(*caller, accounts_->entities_of(*caller)));
  }

  if (root == "metrics" && p.size() == 1) {
    require_method(r, "GET");
    if (caller && !caller->admin) forbid(caller->display() + " is not a server admin");
    Response m;
    m.content_type = "text/plain; version=0.0.4; charset=utf-8";
    m.body = metrics();
    return m;
  }

  if (root == "resources" && p.size() == 1) {
    require_method(r, "GET");
    json::Document d(rapidjson::kObjectType);
    json::set(d, "resources", json::string_array(runner_names(), d.GetAllocator()),
              d.GetAllocator());
    return ok(json::dump(d));
  }

  if (root == "users" || root == "teams" || root == "keys") {
    if (!accounts_) {
      throw Error(Errc::unsupported, "this server runs without accounts");
    }
    return accounts_route(r, caller, p);
  }

  if (root == "queues") {
    if (p.size() == 1) {
      if (r.method == "GET") {
        std::vector<QueueDef> shown;
        for (auto& q : s.list_queues()) {
          if (may_see(caller, q.entity)) shown.push_back(std::move(q));
        }
        return ok(json_array(shown));
      }
      require_method(r, "POST");
      QueueDef q = queue_from_json(r.body);
      // A queue is for a runner this server knows (the agents that serve it
      // are built from the same library; a custom runner is registered here
      // too, or the queue is made on the store directly).
      auto runners = runner_names();
      if (std::find(runners.begin(), runners.end(), q.resource) == runners.end()) {
        std::string known;
        for (const auto& n : runners) known += (known.empty() ? "" : ", ") + n;
        throw Error(Errc::invalid, fmt::format("field \"resource\": \"{}\" is not a runner "
                                               "this server knows ({})",
                                               q.resource, known));
      }
      // A server admin may make queues for any name (an entity to come, a
      // migration); anyone else only for an entity that exists.
      if (accounts_ && caller && !caller->admin) {
        validate_name("entity", q.entity);
        std::string none = fmt::format("field \"entity\": no user or team \"{}\"", q.entity);
        if (!accounts_->entity_exists(q.entity)) throw Error(Errc::not_found, none);
        require(caller, Action::manage, q.entity, none);
      }
      s.create_queue(q);
      return ok(to_json(s.get_queue(q.ref())), 201);
    }
    if (p.size() < 3) no_route(r);
    QueueRef ref = QueueRef::parse(p[1] + "/" + p[2]);
    require(caller, Action::see, ref.entity, queue_hidden(ref));
    if (p.size() == 3) {
      if (r.method == "GET") return ok(to_json(s.get_queue(ref)));
      require_method(r, "DELETE");
      require(caller, Action::manage, ref.entity, queue_hidden(ref));
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
      require(caller, Action::push, ref.entity, queue_hidden(ref));
      JobSpec spec = job_spec_from_json(r.body);
      // The author is who pushed, whatever the spec says; a server admin
      // may push on someone's behalf (a migration), naming them.
      if (caller && !(caller->admin && !spec.author.empty())) spec.author = caller->display();
      std::string id = s.push(ref, spec);
      QueueItem item = s.get(id);
      remember_entity(item);
      emit("work", item_event(item), ref.entity);
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
          f.limit = static_cast<std::size_t>(wire::parse_count(v, "query parameter \"limit\""));
        } else {
          throw Error(Errc::invalid, fmt::format("query parameter \"{}\" is not known here", k));
        }
      }
      if (f.queue) require(caller, Action::see, f.queue->entity, queue_hidden(*f.queue));
      std::vector<QueueItem> items = s.list(f);
      if (accounts_ && caller && !f.queue) {
        std::map<std::string, bool> seen;
        std::vector<QueueItem> shown;
        for (auto& it : items) {
          auto [pos, fresh] = seen.emplace(it.queue.entity, false);
          if (fresh) pos->second = may_see(caller, it.queue.entity);
          if (pos->second) shown.push_back(std::move(it));
        }
        items = std::move(shown);
      }
      return ok(json_array(items));
    }
    const std::string& id = p[1];
    if (p.size() == 2) {
      require_method(r, "GET");
      return ok(to_json(visible_item(id)));
    }
    if (p.size() != 3) no_route(r);
    const std::string& verb = p[2];
    if (verb == "logs") {
      require_method(r, "GET");
      return read_log(s, visible_item(id), t);
    }
    require_method(r, "POST");
    const std::string entity = item_entity(id);
    require(caller, Action::see, entity, item_hidden(id));
    if (verb == "cancel") {
      require(caller, Action::push, entity, item_hidden(id));
      QueueItem item = s.cancel(id);
      emit("item", item_event(item), entity);
      return ok(to_json(item));
    }
    require(caller, Action::work, entity, item_hidden(id));
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
      for (const auto& q : call.queues) require(caller, Action::work, q.entity, queue_hidden(q));
      FinishAndClaim fc = s.finish_and_claim(id, call.agent_id, call.exit_code.value_or(0),
                                             call.queues);
      emit("item", item_event(fc.finished), entity);
      if (fc.next) {
        remember_entity(*fc.next);
        observe_claim(*fc.next);
        emit("item", item_event(*fc.next), fc.next->queue.entity);
      }
      return ok(wire::finish_and_claim_body(fc));
    } else if (verb == "fail") {
      item = s.fail(id, call.agent_id, call.error, call.exit_code);
    } else if (verb == "confirm-stopped") {
      item = s.confirm_stopped(id, call.agent_id);
    } else if (verb == "requeue") {
      item = s.requeue(id, call.agent_id, call.reason);
      emit("work", item_event(item), entity);
      return ok(to_json(item));
    } else {
      no_route(r);
    }
    emit("item", item_event(item), entity);
    return ok(to_json(item));
  }

  if (root == "claims" && p.size() == 1) {
    require_method(r, "POST");
    wire::AgentCall call = wire::read_agent_call(r.body, "claim");
    for (const auto& q : call.queues) require(caller, Action::work, q.entity, queue_hidden(q));
    auto item = s.claim(call.queues, call.agent_id);
    if (item) {
      remember_entity(*item);
      observe_claim(*item);
      emit("item", item_event(*item), item->queue.entity);
    }
    return ok(wire::claim_body(item));
  }

  if (root == "heartbeats" && p.size() == 1) {
    require_method(r, "POST");
    wire::AgentCall call = wire::read_agent_call(r.body, "heartbeat");
    if (accounts_ && caller) {
      // A heartbeat renews leases: only on items the caller may work on.
      for (const auto& id : call.items) {
        std::string entity;
        try {
          entity = item_entity(id);
        } catch (const Error& e) {
          if (e.code() != Errc::not_found) throw;  // gone: the store answers it as lost
          continue;
        }
        require(caller, Action::work, entity, item_hidden(id));
      }
    }
    return ok(to_json(s.heartbeat(call.agent_id, call.items)));
  }

  if (root == "leases" && p.size() == 2 && p[1] == "expire") {
    require_method(r, "POST");
    int moved = s.expire_leases();
    if (moved > 0) emit("work", "{}", "");
    return ok(fmt::format("{{\"moved\":{}}}", moved));
  }

  if (root == "agents") {
    if (p.size() == 1) {
      require_method(r, "GET");
      std::vector<AgentRecord> shown;
      for (auto& a : s.list_agents()) {
        if (may_see(caller, a.entity)) shown.push_back(std::move(a));
      }
      return ok(json_array(shown));
    }
    if (p.size() == 2) {
      require_method(r, "PUT");
      AgentRecord agent = agent_record_from_json(r.body);
      if (agent.id != p[1]) {
        throw Error(Errc::invalid, fmt::format("agent record: field \"id\" is \"{}\", but the "
                                               "path names agent \"{}\"",
                                               agent.id, p[1]));
      }
      // A service account's agent works for its team, whatever it calls
      // itself (launch-agent names the OS user when given no -e).
      if (caller && caller->kind == Principal::Kind::service_account) agent.entity = caller->team;
      if (accounts_ && caller) {
        if (!agent.entity.empty()) {
          require(caller, Action::work, agent.entity,
                  fmt::format("field \"entity\": no user or team \"{}\"", agent.entity));
        }
        for (const auto& q : agent.queues) {
          QueueRef ref = QueueRef::parse(q);
          require(caller, Action::work, ref.entity, queue_hidden(ref));
        }
      }
      s.upsert_agent(agent);
      return no_content();
    }
  }
  no_route(r);
}

// Users, teams, service accounts and keys (launch/accounts.hpp).
Response Service::accounts_route(const Request& r, const Caller& caller,
                                 const std::vector<std::string>& p) const {
  // A change (a revoked key, a member removed) holds at once here.
  if (r.method != "GET") caches_->forget_accounts();
  Accounts& acc = *accounts_;
  const Principal& me = *caller;
  const std::string& root = p[0];
  auto body = [&](const char* what) { return json::parse_object(r.body, what); };
  auto team_hidden = [](const std::string& team) { return fmt::format("team \"{}\" not found", team); };
  auto require_team = [&](const std::string& team, Action action) {
    if (!acc.team_exists(team)) throw Error(Errc::not_found, team_hidden(team));
    require(caller, action, team, team_hidden(team));
  };

  if (root == "users" && p.size() == 1) {
    if (!me.admin) forbid(me.display() + " is not a server admin");
    if (r.method == "GET") {
      json::Document d(rapidjson::kArrayType);
      auto& a = d.GetAllocator();
      for (const auto& u : acc.list_users()) {
        json::Value o(rapidjson::kObjectType);
        o.AddMember("name", json::str(u.name, a), a);
        o.AddMember("admin", json::Value(u.admin), a);
        o.AddMember("created_at", json::Value(static_cast<int64_t>(u.created_at)), a);
        d.PushBack(o, a);
      }
      return ok(json::dump(d));
    }
    require_method(r, "POST");
    json::Document d = body("user");
    json::require(d, "name", "user");
    UserRecord u = acc.create_user(json::get_string(d, "name", "user"),
                                   json::get_bool(d, "admin", "user"));
    return ok(fmt::format("{{\"name\":\"{}\",\"admin\":{}}}", u.name, u.admin ? "true" : "false"),
              201);
  }

  if (root == "teams") {
    if (p.size() == 1) {
      if (r.method == "GET") {
        std::vector<std::string> shown;
        for (const auto& team : acc.list_teams()) {
          if (may_see(caller, team)) shown.push_back(team);
        }
        return ok(string_array(shown));
      }
      require_method(r, "POST");
      if (me.kind != Principal::Kind::user) forbid("a service account cannot create teams");
      json::Document d = body("team");
      json::require(d, "name", "team");
      std::string name = json::get_string(d, "name", "team");
      acc.create_team(name, me.name);
      return ok(fmt::format("{{\"name\":\"{}\"}}", name), 201);
    }
    const std::string& team = p[1];
    if (p.size() == 3 && p[2] == "members") {
      require_method(r, "GET");
      require_team(team, Action::see);
      json::Document d(rapidjson::kArrayType);
      auto& a = d.GetAllocator();
      for (const auto& m : acc.members(team)) {
        json::Value o(rapidjson::kObjectType);
        o.AddMember("user", json::str(m.user, a), a);
        o.AddMember("role", json::str(to_string(m.role), a), a);
        d.PushBack(o, a);
      }
      return ok(json::dump(d));
    }
    if (p.size() == 4 && p[2] == "members") {
      require_team(team, Action::manage);
      if (r.method == "DELETE") {
        acc.remove_member(team, p[3]);
        return no_content();
      }
      require_method(r, "PUT");
      json::Document d = body("membership");
      acc.set_member(team, p[3], json::get_enum(d, "role", "membership", "member", parse_team_role));
      return no_content();
    }
    if (p.size() == 3 && p[2] == "service-accounts") {
      if (r.method == "GET") {
        require_team(team, Action::see);
        json::Document d(rapidjson::kArrayType);
        auto& a = d.GetAllocator();
        for (const auto& sa : acc.service_accounts(team)) d.PushBack(json::str(sa.name, a), a);
        return ok(json::dump(d));
      }
      require_method(r, "POST");
      require_team(team, Action::manage);
      json::Document d = body("service account");
      json::require(d, "name", "service account");
      ServiceAccount sa = acc.create_service_account(team, json::get_string(d, "name", "service account"));
      return ok(fmt::format("{{\"team\":\"{}\",\"name\":\"{}\"}}", sa.team, sa.name), 201);
    }
    no_route(r);
  }

  // keys: a user's own; a team admin's for the team's service accounts;
  // a server admin's for anyone.
  auto may_manage_key = [&](const ApiKeyInfo& k) {
    if (me.admin) return true;
    if (me.kind != Principal::Kind::user) return false;
    if (k.owner_kind == Principal::Kind::user) return k.owner == me.name;
    return acc.role_of(k.team, me.name) == TeamRole::admin;
  };
  if (root == "keys" && p.size() == 1) {
    if (r.method == "GET") {
      json::Document d(rapidjson::kArrayType);
      auto& a = d.GetAllocator();
      for (const auto& k : acc.list_keys()) {
        if (may_manage_key(k)) d.PushBack(key_value(k, a), a);
      }
      return ok(json::dump(d));
    }
    require_method(r, "POST");
    if (me.kind != Principal::Kind::user) forbid("a service account cannot make keys");
    const std::string ctx = "key request";
    json::Document d = r.body.empty() ? json::parse_object("{}", ctx) : body(ctx.c_str());
    std::string sa = json::get_string(d, "service_account", ctx);
    std::string team = json::get_string(d, "team", ctx);
    std::string user = json::get_string(d, "user", ctx, me.name);
    std::int64_t expires_at = 0;
    if (auto in = json::get_optional_int(d, "expires_in_seconds", ctx)) {
      if (*in <= 0 || *in > 10LL * 365 * 24 * 3600) {
        throw Error(Errc::invalid, fmt::format("{}: field \"expires_in_seconds\": {} is not 1 "
                                               "to 315360000 (ten years)",
                                               ctx, *in));
      }
      expires_at = now_ms() + *in * 1000;
    }
    std::string description = json::get_string(d, "description", ctx);
    NewApiKey k;
    if (!sa.empty()) {
      if (team.empty()) {
        throw Error(Errc::invalid, ctx + ": field \"team\" is needed with \"service_account\"");
      }
      require_team(team, Action::manage);
      k = acc.create_key(Principal::Kind::service_account, sa, team, description, expires_at);
    } else {
      if (user != me.name && !me.admin) forbid(me.display() + " may make keys for itself only");
      k = acc.create_key(Principal::Kind::user, user, "", description, expires_at);
    }
    json::Document out(rapidjson::kObjectType);
    auto& a = out.GetAllocator();
    out.AddMember("key", json::str(k.key, a), a);
    out.AddMember("info", key_value(k.info, a), a);
    return ok(json::dump(out), 201);
  }
  if (root == "keys" && p.size() == 2) {
    require_method(r, "DELETE");
    auto k = acc.find_key(p[1]);
    if (!k || !may_manage_key(*k)) {
      throw Error(Errc::not_found, fmt::format("key \"{}\" not found", p[1]));
    }
    acc.revoke_key(p[1]);
    return no_content();
  }
  no_route(r);
}

}  // namespace api
}  // namespace launch
