// launch — the launch server's REST API, as a function from a request to
// its answer.
//
// `launch-server` (examples/launch-server) is this Service behind an
// HTTP/1.1 listener; an embedding program can mount the same Service in a
// server of its own. The http(s):// transport is its client: every
// Transport operation is one request, so an agent or a CLI on another
// machine works on the server's store as if it had opened it itself.
//
// The routes, their bodies and their answers are described in docs/api.md
// (and docs/openapi.yaml). Bodies are the library's one JSON form of each
// type (to_json of QueueDef, JobSpec, QueueItem, AgentRecord,
// HeartbeatReply); a refusal is
//   {"error": {"code": "<Errc name>", "message": "...", "field": "..."}}
// with the status that fits its code (invalid 400, not_found 404, exists
// and state 409, unsupported 501, timeout 504, io 503, anything else 500),
// and "unauthenticated" 401 and "forbidden" 403 for the access rules of
// launch/accounts.hpp.
//
// Thread safety: handle() may be called from several threads at once.
#ifndef LAUNCH_API_HPP
#define LAUNCH_API_HPP

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "launch/accounts.hpp"
#include "launch/error.hpp"
#include "launch/export.h"
#include "launch/transport.hpp"

namespace launch {
namespace api {

// The routes' common prefix.
constexpr const char* kPrefix = "/api/v1";

// What a server accepts, in one place (the listener enforces them before a
// request reaches the Service).
constexpr std::size_t kMaxRequestBodyBytes = std::size_t{8} << 20;
constexpr std::size_t kMaxRequestHeaderBytes = std::size_t{16} << 10;
// A request must arrive whole within this long of its first byte (a client
// that sends a byte a minute holds nothing for long).
constexpr int kRequestReadSeconds = 30;
// A kept-alive connection with no request for this long is closed.
constexpr int kIdleConnectionSeconds = 120;
// How long a server remembers who a key belongs to, and what they may do.
constexpr int kAuthCacheSeconds = 2;
// How many items' entities a server remembers (an item never moves).
constexpr std::size_t kItemEntityCache = 1 << 16;
// How many event streams (GET /api/v1/events) one server keeps open.
constexpr std::size_t kMaxEventStreams = 1024;
// An event stream sends a comment line this often, so proxies and clients
// can tell a quiet stream from a dead one.
constexpr int kEventKeepaliveSeconds = 15;

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query: "/api/v1/items?state=pending"
  std::string body;
  std::string authorization;  // the Authorization header: "Bearer lk_..."
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // more fields
};

// What changed in the store, as the event stream (server-sent events)
// names it: "work" (an item may be claimable: a push, a requeue, an
// expired lease) and "item" (an item changed; data: {"id", "state"}).
struct Event {
  std::string type;
  std::string data;    // JSON
  std::string entity;  // whose queue it concerns; "" for anyone's
};

// A caller as the Service knows it: the key's owner, or nobody when the
// Service runs without accounts (an embedding that does its own checks).
using Caller = std::optional<Principal>;

class LAUNCH_EXPORT Service {
 public:
  // Without `accounts`, every request may do everything: for a Service
  // mounted behind checks of the embedding program's own. launch-server
  // always gives one, and then every route but /health needs a key
  // (401 without one, or with a key unknown, revoked or expired).
  explicit Service(std::shared_ptr<Transport> store, std::shared_ptr<Accounts> accounts = nullptr);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Answers one request; never throws (a bug is a 500 with its message).
  Response handle(const Request& request) const;

  // Called, on the handling thread, for each event a handled request
  // caused. Set before the first handle().
  void set_event_sink(std::function<void(const Event&)> sink);

  Transport& store() const { return *store_; }
  Accounts* accounts() const { return accounts_.get(); }

  // The caller of a request with this Authorization header, or the 401
  // to answer (in `refusal`). Without accounts: an empty Caller. A key's
  // owner is remembered for kAuthCacheSeconds; a revocation or a change of
  // membership made through this Service takes effect at once, one made
  // through another server of the same store within that time.
  bool authenticate(const std::string& authorization, Caller* caller, Response* refusal) const;
  // The Prometheus text (GET /api/v1/metrics, and /metrics on
  // launch-server; server admins only): items not yet ended by queue and
  // state, agents by status, requests answered by method and status, and
  // the wait from push to claim for claims made through this Service.
  std::string metrics() const;

  // Whether `caller` may see events about `entity`'s queues.
  bool may_see(const Caller& caller, const std::string& entity) const;

 private:
  Response dispatch(const Request& request) const;
  Response accounts_route(const Request& request, const Caller& caller,
                          const std::vector<std::string>& parts) const;
  void emit(const std::string& type, const std::string& data, const std::string& entity) const;
  // Throws the not-found or forbidden answer unless `caller` may.
  void require(const Caller& caller, Action action, const std::string& entity,
               const std::string& hidden_message) const;

  Accounts::Decision decide(const Principal& p, Action action, const std::string& entity) const;
  // The entity of an item's queue (an item never moves), remembered.
  std::string item_entity(const std::string& item_id) const;
  void remember_entity(const QueueItem& item) const;
  void observe_claim(const QueueItem& item) const;

  std::shared_ptr<Transport> store_;
  std::shared_ptr<Accounts> accounts_;
  std::function<void(const Event&)> sink_;
  struct Caches;
  std::unique_ptr<Caches> caches_;
};

// --- API keys on the client side.
// $XDG_CONFIG_HOME/launch/credentials, else ~/.config/launch/credentials:
// one "SERVER_URL KEY" per line, as `launch login` writes it, mode 0600.
LAUNCH_EXPORT std::string credentials_path();
// The key the http(s):// transport sends to `server_url`
// ("https://host:port"): $LAUNCH_API_KEY when set, else the one stored for
// that server; "" for none.
LAUNCH_EXPORT std::string api_key_for(const std::string& server_url);
// Stores `key` for `server_url`, replacing one stored before: the file
// written whole beside the old one, mode 0600, then renamed over it.
LAUNCH_EXPORT void store_api_key(const std::string& server_url, const std::string& key);

// The answer for a refusal: the status for `code` and the error body.
LAUNCH_EXPORT Response error_response(Errc code, const std::string& message);
// The status for an error code, as above.
LAUNCH_EXPORT int status_for(Errc code);

}  // namespace api
}  // namespace launch

#endif
