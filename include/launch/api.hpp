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
// and state 409, unsupported 501, timeout 504, io 503, anything else 500).
//
// Thread safety: handle() may be called from several threads at once.
#ifndef LAUNCH_API_HPP
#define LAUNCH_API_HPP

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

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
// How many event streams (GET /api/v1/events) one server keeps open.
constexpr std::size_t kMaxEventStreams = 1024;
// An event stream sends a comment line this often, so proxies and clients
// can tell a quiet stream from a dead one.
constexpr int kEventKeepaliveSeconds = 15;

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query: "/api/v1/items?state=pending"
  std::string body;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// What changed in the store, as the event stream (server-sent events)
// names it: "work" (an item may be claimable: a push, a requeue, an
// expired lease) and "item" (an item changed; data: {"id", "state"}).
struct Event {
  std::string type;
  std::string data;  // JSON
};

class LAUNCH_EXPORT Service {
 public:
  explicit Service(std::shared_ptr<Transport> store);
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Answers one request; never throws (a bug is a 500 with its message).
  Response handle(const Request& request) const;

  // Called, on the handling thread, for each event a handled request
  // caused. Set before the first handle().
  void set_event_sink(std::function<void(const Event&)> sink);

  Transport& store() const { return *store_; }

 private:
  Response dispatch(const Request& request) const;
  void emit(const std::string& type, const std::string& data) const;

  std::shared_ptr<Transport> store_;
  std::function<void(const Event&)> sink_;
};

// The answer for a refusal: the status for `code` and the error body.
LAUNCH_EXPORT Response error_response(Errc code, const std::string& message);
// The status for an error code, as above.
LAUNCH_EXPORT int status_for(Errc code);

}  // namespace api
}  // namespace launch

#endif
