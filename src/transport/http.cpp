// http:// and https:// — a launch server's store, through its REST API
// (launch/api.hpp, docs/api.md). Every Transport call is one request over
// http::Client; the answers are the library's one JSON form of each type,
// refusals carry the store's own error code and message, so a caller cannot
// tell this transport from the store behind the server.
//
//   http://HOST:PORT[/BASE][?ca=/path/ca.pem]
//
// `ca` (or $LAUNCH_CA_FILE) is the CA bundle that signed an https server's
// certificate; without it the system's store is trusted. The API key is
// api::api_key_for(the server): $LAUNCH_API_KEY, else what `launch login`
// stored.
//
// Wake-ups: notify_fd() is an eventfd fed by the server's event stream
// (GET /api/v1/events, server-sent events), read by a thread started on the
// first call to notify_fd(), reconnecting with backoff; each reconnect
// also fires it, as events may have been missed while it was away.
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "api/wire.hpp"
#include "builtins/factories.hpp"
#include "http/auth.hpp"
#include "http/client.hpp"
#include "launch/api.hpp"
#include "launch/error.hpp"
#include "util/url.hpp"

namespace launch {
namespace {

namespace wire = api::wire;

struct ServerUri {
  std::string base;     // "http://host:port/base" (no trailing '/', no query)
  std::string ca_file;  // ?ca=
};

ServerUri parse_server_uri(const std::string& uri) {
  std::size_t scheme_end = uri.find("://");
  std::string scheme = scheme_end == std::string::npos ? "" : uri.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") {
    throw Error(Errc::invalid, fmt::format("launch server URI \"{}\": expected http://HOST:PORT "
                                           "or https://HOST:PORT",
                                           uri));
  }
  ServerUri out;
  std::string rest = uri.substr(scheme_end + 3);
  std::size_t q = rest.find('?');
  if (q != std::string::npos) {
    for (const auto& [k, v] : util::parse_query(rest.substr(q + 1))) {
      if (k == "ca") {
        out.ca_file = v;
      } else {
        throw Error(Errc::invalid,
                    fmt::format("launch server URI \"{}\": unknown parameter \"{}\" (known: ca)",
                                uri, k));
      }
    }
    rest = rest.substr(0, q);
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  std::string host = rest.substr(0, rest.find('/'));
  if (host.empty() || host.find('@') != std::string::npos) {
    throw Error(Errc::invalid,
                fmt::format("launch server URI \"{}\": {}", uri,
                            host.empty() ? "no host" : "credentials belong in LAUNCH_API_KEY, "
                                                       "not in the URI"));
  }
  out.base = scheme + "://" + rest;
  if (out.ca_file.empty()) {
    if (const char* env = std::getenv("LAUNCH_CA_FILE")) out.ca_file = env;
  }
  return out;
}

class HttpTransport final : public Transport {
 public:
  explicit HttpTransport(std::string uri) : uri_(std::move(uri)), server_(parse_server_uri(uri_)) {
    options_.connect_timeout_ms = 10000;
    options_.timeout_ms = 120000;
    options_.tls.ca_file = server_.ca_file;
    // Every agent call is a POST: a fresh connection (and TLS handshake)
    // for each would cost more than the call. See ClientOptions.
    options_.reuse_connection_for_post = true;
    std::string key = api::api_key_for(server_.base);
    if (!key.empty()) auth_ = std::make_shared<http::BearerAuth>(key);
    // As every built-in transport does at open: a killed agent's items
    // come back after their lease even when no agent runs.
    expire_leases();
  }

  ~HttpTransport() override {
    if (events_thread_.joinable()) {
      {
        std::lock_guard<std::mutex> lock(events_mu_);
        stopping_ = true;
        if (events_client_) events_client_->abort();
      }
      events_cv_.notify_all();
      events_thread_.join();
    }
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }

  std::string uri() const override { return uri_; }

  // --- queues
  void create_queue(const QueueDef& queue) override {
    queue.validate();
    call("POST", "/queues", to_json(queue));
  }
  QueueDef get_queue(const QueueRef& ref) override {
    return queue_from_json(call("GET", queue_path(ref), ""));
  }
  std::vector<QueueDef> list_queues() override {
    std::vector<QueueDef> out;
    for (const auto& q : wire::array_elements(call("GET", "/queues", ""), "queue list")) {
      out.push_back(queue_from_json(q));
    }
    return out;
  }
  std::vector<std::string> delete_queue(const QueueRef& ref, QueueDelete mode) override {
    std::string path = queue_path(ref) + "?pending=" +
                       (mode == QueueDelete::with_pending ? "delete" : "refuse");
    return wire::deleted_from_body(call("DELETE", path, ""));
  }

  // --- items, as a producer sees them
  std::string push(const QueueRef& queue, const JobSpec& spec) override {
    return queue_item_from_json(call("POST", queue_path(queue) + "/items", to_json(spec))).id;
  }
  QueueItem cancel(const std::string& item_id) override {
    return queue_item_from_json(call("POST", item_path(item_id) + "/cancel", "{}"));
  }
  QueueItem get(const std::string& item_id) override {
    return queue_item_from_json(call("GET", item_path(item_id), ""));
  }
  std::vector<QueueItem> list(const ItemFilter& f) override {
    std::vector<std::string> params;
    if (f.queue) params.push_back("queue=" + util::percent_encode(f.queue->str()));
    if (f.state) params.push_back(std::string("state=") + to_string(*f.state));
    if (!f.agent_id.empty()) params.push_back("agent_id=" + util::percent_encode(f.agent_id));
    if (f.limit) params.push_back("limit=" + std::to_string(f.limit));
    std::string path = "/items";
    for (std::size_t i = 0; i < params.size(); ++i) path += (i ? "&" : "?") + params[i];
    std::vector<QueueItem> out;
    for (const auto& it : wire::array_elements(call("GET", path, ""), "item list")) {
      out.push_back(queue_item_from_json(it));
    }
    return out;
  }

  // --- items, as an agent sees them
  std::optional<QueueItem> claim(const std::vector<QueueRef>& queues,
                                 const std::string& agent_id) override {
    wire::AgentCall c;
    c.agent_id = agent_id;
    c.queues = queues;
    return wire::claim_from_body(call("POST", "/claims", wire::agent_call_body(c, "claim")));
  }
  QueueItem start(const std::string& item_id, const std::string& agent_id,
                  const std::string& run_id) override {
    wire::AgentCall c;
    c.agent_id = agent_id;
    c.run_id = run_id;
    return item_call(item_id, "start", c);
  }
  HeartbeatReply heartbeat(const std::string& agent_id,
                           const std::vector<std::string>& item_ids) override {
    wire::AgentCall c;
    c.agent_id = agent_id;
    c.items = item_ids;
    return heartbeat_reply_from_json(
        call("POST", "/heartbeats", wire::agent_call_body(c, "heartbeat")));
  }
  QueueItem finish(const std::string& item_id, const std::string& agent_id,
                   int exit_code) override {
    wire::AgentCall c;
    c.agent_id = agent_id;
    c.exit_code = exit_code;
    return item_call(item_id, "finish", c);
  }
  FinishAndClaim finish_and_claim(const std::string& item_id, const std::string& agent_id,
                                  int exit_code, const std::vector<QueueRef>& queues) override {
    wire::AgentCall c;
    c.agent_id = agent_id;
    c.exit_code = exit_code;
    c.queues = queues;
    return wire::finish_and_claim_from_body(
        call("POST", item_path(item_id) + "/finish-and-claim",
             wire::agent_call_body(c, "finish-and-claim")));
  }
  QueueItem fail(const std::string& item_id, const std::string& agent_id, const ItemError& error,
                 std::optional<int> exit_code) override {
    wire::AgentCall c;
    c.agent_id = agent_id;
    c.error = error;
    c.exit_code = exit_code;
    return item_call(item_id, "fail", c);
  }
  QueueItem confirm_stopped(const std::string& item_id, const std::string& agent_id) override {
    wire::AgentCall c;
    c.agent_id = agent_id;
    return item_call(item_id, "confirm-stopped", c);
  }
  QueueItem requeue(const std::string& item_id, const std::string& agent_id,
                    RequeueReason why) override {
    wire::AgentCall c;
    c.agent_id = agent_id;
    c.reason = why;
    return item_call(item_id, "requeue", c);
  }
  void add_warning(const std::string& item_id, const std::string& message) override {
    call("POST", item_path(item_id) + "/warnings", wire::warning_body(message));
  }
  int expire_leases() override {
    return wire::moved_from_body(call("POST", "/leases/expire", "{}"));
  }

  // --- agents
  void upsert_agent(const AgentRecord& agent) override {
    call("PUT", "/agents/" + util::percent_encode(agent.id), to_json(agent));
  }
  std::vector<AgentRecord> list_agents() override {
    std::vector<AgentRecord> out;
    for (const auto& a : wire::array_elements(call("GET", "/agents", ""), "agent list")) {
      out.push_back(agent_record_from_json(a));
    }
    return out;
  }

  LogChunk read_log(const std::string& item_id, const std::string& stream,
                    std::uint64_t offset) override {
    std::string path = item_path(item_id) + "/logs?stream=" + util::percent_encode(stream) +
                       "&offset=" + std::to_string(offset);
    http::Response res = exchange("GET", path, "");
    LogChunk out;
    out.data = std::move(res.body);
    out.next_offset = offset + out.data.size();
    if (auto next = res.headers.get("X-Log-Offset")) {
      out.next_offset = wire::parse_count(*next, "X-Log-Offset");
    }
    return out;
  }

  // --- wake-ups
  int notify_fd() override {
    std::unique_lock<std::mutex> lock(events_mu_);
    if (wake_fd_ < 0) {
      wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      if (wake_fd_ < 0) throw Error(Errc::io, "http transport: eventfd failed");
      events_thread_ = std::thread([this] { follow_events(); });
    }
    // Events from now on are not missed: the stream is open (or the first
    // attempt failed, and the reconnect will fire the descriptor).
    events_cv_.wait_for(lock, std::chrono::seconds(5), [this] { return first_attempt_done_; });
    return wake_fd_;
  }
  // Opens the event stream when it is not open yet: what the caller
  // drains now, it must not miss later.
  void drain_notify() override {
    std::uint64_t n;
    (void)!::read(notify_fd(), &n, sizeof n);
  }

 private:
  static std::string queue_path(const QueueRef& ref) {
    return "/queues/" + util::percent_encode(ref.entity) + "/" + util::percent_encode(ref.name);
  }
  static std::string item_path(const std::string& id) {
    return "/items/" + util::percent_encode(id);
  }

  QueueItem item_call(const std::string& item_id, const std::string& verb,
                      const wire::AgentCall& c) {
    return queue_item_from_json(
        call("POST", item_path(item_id) + "/" + verb, wire::agent_call_body(c, verb)));
  }

  http::Request request(const std::string& method, const std::string& path,
                        const std::string& body) const {
    http::Request r;
    r.method = method;
    r.url = server_.base + api::kPrefix + path;
    r.body = body;
    if (!body.empty()) r.headers.set("Content-Type", "application/json");
    r.auth = auth_;
    return r;
  }

  // One request on a client of the pool; the answer, or the Error the
  // server's refusal stands for.
  http::Response exchange(const std::string& method, const std::string& path,
                          const std::string& body) {
    std::unique_ptr<http::Client> client = take_client();
    http::Response res;
    try {
      res = client->send(request(method, path, body), /*accept_errors=*/true);
    } catch (const http::HttpError& e) {
      throw Error(e.code(), fmt::format("launch server {}: {}", server_.base, e.what()));
    }
    give_back(std::move(client));
    if (res.status >= 400) throw wire::error_from_body(res.status, res.body);
    return res;
  }
  std::string call(const std::string& method, const std::string& path, const std::string& body) {
    return exchange(method, path, body).body;
  }

  std::unique_ptr<http::Client> take_client() {
    {
      std::lock_guard<std::mutex> lock(pool_mu_);
      if (!pool_.empty()) {
        auto c = std::move(pool_.back());
        pool_.pop_back();
        return c;
      }
    }
    return std::make_unique<http::Client>(options_);
  }
  void give_back(std::unique_ptr<http::Client> client) {
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (pool_.size() < 8) pool_.push_back(std::move(client));
  }

  void wake() {
    std::uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
  }

  void first_attempt_done() {
    {
      std::lock_guard<std::mutex> lock(events_mu_);
      if (first_attempt_done_) return;
      first_attempt_done_ = true;
    }
    events_cv_.notify_all();
  }

  void follow_events() {
    http::ClientOptions opts = options_;
    opts.timeout_ms = 0;
    // The server sends a comment every kEventKeepaliveSeconds: a stream
    // silent for three of them is dead.
    opts.idle_timeout_ms = 3L * api::kEventKeepaliveSeconds * 1000;
    opts.retries = 0;
    long backoff_ms = 100;
    bool was_connected = false;
    while (true) {
      {
        std::lock_guard<std::mutex> lock(events_mu_);
        if (stopping_) return;
        events_client_ = std::make_unique<http::Client>(opts);
      }
      bool connected = false;
      std::string event;
      try {
        http::Request r = request("GET", "/events", "");
        r.headers.set("Accept", "text/event-stream");
        events_client_->stream_lines(r, [&](const std::string& line) {
          if (!connected) {
            connected = true;
            backoff_ms = 100;
            // After a reconnect: whatever came while we were away. (Before
            // the first connection nobody was waiting.)
            if (was_connected) wake();
            was_connected = true;
            first_attempt_done();
          }
          if (line.rfind("event:", 0) == 0) {
            event = line.substr(6);
            event.erase(0, event.find_first_not_of(' '));
          } else if (line.empty()) {
            if (event == "work") wake();
            event.clear();
          }
        });
      } catch (const Error&) {
        // the server went away or refused: back off and reconnect
      }
      first_attempt_done();
      std::unique_lock<std::mutex> lock(events_mu_);
      events_client_.reset();
      if (events_cv_.wait_for(lock, std::chrono::milliseconds(backoff_ms),
                              [this] { return stopping_; })) {
        return;
      }
      backoff_ms = std::min<long>(backoff_ms * 2, 5000);
    }
  }

  const std::string uri_;
  const ServerUri server_;
  http::ClientOptions options_;
  std::shared_ptr<const http::Auth> auth_;

  std::mutex pool_mu_;
  std::vector<std::unique_ptr<http::Client>> pool_;

  std::mutex events_mu_;
  std::condition_variable events_cv_;
  std::unique_ptr<http::Client> events_client_;
  std::thread events_thread_;
  bool stopping_ = false;
  bool first_attempt_done_ = false;
  int wake_fd_ = -1;
};

}  // namespace

std::shared_ptr<Transport> open_http_transport(const std::string& uri) {
  return std::make_shared<HttpTransport>(uri);
}

}  // namespace launch
