// Internal: a Docker Engine API client over the engine's unix socket, a thin
// user of http::Client. Never the docker CLI.
//
// The API version is negotiated once per Engine with /_ping (the engine's
// Api-Version header, capped to the newest version we speak). Every failed
// call throws launch::Error carrying the engine's own message:
// 404 -> Errc::not_found, 409 -> Errc::state, 400 -> Errc::invalid, other
// failures -> Errc::io.
//
// Not thread-safe: one Engine per thread. Copying one gives a new connection
// that keeps the negotiated version (cheap: no second /_ping).
#ifndef LAUNCH_SRC_DOCKER_ENGINE_HPP
#define LAUNCH_SRC_DOCKER_ENGINE_HPP

#include <atomic>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "http/client.hpp"
#include "util/json.hpp"

namespace launch {
namespace docker {

// The newest Engine API version this client speaks.
constexpr const char* kMaxApiVersion = "1.41";

// Compares "1.41" with "1.9" as numbers: <0, 0, >0.
int compare_api_versions(const std::string& a, const std::string& b);

// The engine socket: DOCKER_HOST when it is unix://PATH (Errc::unsupported
// for any other scheme), else /var/run/docker.sock.
std::string default_socket_path();

struct Response {
  long status = 0;
  std::string body;
};

// Undoes the engine's 8-byte stream framing (non-TTY logs and attach):
// [stream, 0, 0, 0, size as big-endian uint32] then `size` bytes. Feed it
// any chunks; it calls `sink(stream, data, size)` for each payload piece
// (stream 1 = stdout, 2 = stderr).
class LogDemuxer {
 public:
  using Sink = std::function<void(int stream, const char* data, std::size_t size)>;
  explicit LogDemuxer(Sink sink) : sink_(std::move(sink)) {}
  void feed(const char* data, std::size_t size);

 private:
  Sink sink_;
  unsigned char header_[8] = {};
  std::size_t header_have_ = 0;
  std::size_t payload_left_ = 0;
  int stream_ = 1;
};

using http::LineSplitter;

// The JSON-lines progress stream of build, push and pull. Each line is
// rendered as text for the log (`stream` text as is; `status` with its
// id/progress), `aux.ID` is kept, and an `error` line is remembered: the
// engine answers 200 and reports a failed build or push in the stream.
class ProgressStream {
 public:
  explicit ProgressStream(std::function<void(const std::string& text)> out) : out_(std::move(out)) {}
  void line(const std::string& json_line);
  const std::string& error() const { return error_; }
  const std::string& aux_id() const { return aux_id_; }

 private:
  std::function<void(const std::string&)> out_;
  std::string error_;
  std::string aux_id_;
};

struct ContainerSummary {
  std::string id;
  std::string state;  // created, running, exited, ...
  std::map<std::string, std::string> labels;
};

struct WaitResult {
  int exit_code = -1;
  std::string error;  // the engine's error for the wait, when any
};

struct BuildOptions {
  std::string tag;         // repository:tag for the result
  std::string dockerfile;  // path inside the context
  std::string platform;
  std::map<std::string, std::string> labels;
};

class Engine {
 public:
  explicit Engine(std::string socket_path = default_socket_path());
  Engine(const Engine& other);
  Engine& operator=(const Engine&) = delete;
  ~Engine();

  const std::string& socket_path() const { return socket_path_; }
  // The negotiated version (pings the engine the first time).
  const std::string& api_version();

  // When set, long calls (streams, wait) give up once it becomes true
  // (within a tenth of a second) and throw Errc::io "cancelled".
  void set_abort_flag(const std::atomic<bool>* flag) {
    abort_ = flag;
    client_->set_abort_flag(flag);
  }

  // --- raw calls; `path` is unversioned ("/containers/json?all=1").
  // An HTTP failure is returned as a status with the engine's body.
  Response call(const std::string& method, const std::string& path,
                const std::string& body = std::string(),
                const std::string& content_type = "application/json",
                const std::vector<std::string>& headers = {});
  // Streams the body to `on_data` as it arrives; returns the status. A
  // failed status (>= 400) throws with the engine's message.
  long stream(const std::string& method, const std::string& path, const std::string& body,
              const std::string& content_type, const std::vector<std::string>& headers,
              const std::function<void(const char*, std::size_t)>& on_data,
              const std::string& what);

  // --- containers
  // `spec` is the JSON body of POST /containers/create. Returns the id.
  std::string create_container(const std::string& spec, const std::string& name = "",
                               const std::string& platform = "");
  void start_container(const std::string& id);
  // Blocks until the container is not running.
  WaitResult wait_container(const std::string& id);
  // Streams the container's output (stdout and stderr, demultiplexed) until
  // it ends (follow) or the current end.
  void container_logs(const std::string& id, bool follow, const LogDemuxer::Sink& sink);
  void stop_container(const std::string& id, int timeout_seconds);
  // Errc::state when the container is not running.
  void kill_container(const std::string& id, const std::string& signal);
  // force: kill it first when running. Also removes its anonymous volumes.
  void remove_container(const std::string& id, bool force);
  // nullopt when there is no such container.
  std::optional<json::Document> inspect_container(const std::string& id);
  // Every container (running or not) carrying all of `labels` (a value of
  // "" matches any value).
  std::vector<ContainerSummary> list_containers(const std::map<std::string, std::string>& labels);

  // --- images
  // Builds from a tar context; build output goes to `out` line by line.
  // Returns the image id. A failed build is Errc::io with the builder's
  // error.
  std::string build_image(const std::string& context_tar, const BuildOptions& options,
                          const std::function<void(const std::string&)>& out);
  // `auth` is an X-Registry-Auth value (see registry.hpp); "" = anonymous.
  void push_image(const std::string& reference, const std::string& auth,
                  const std::function<void(const std::string&)>& out);
  void pull_image(const std::string& reference, const std::string& auth,
                  const std::string& platform,
                  const std::function<void(const std::string&)>& out);
  std::optional<json::Document> inspect_image(const std::string& reference);
  void remove_image(const std::string& reference, bool force);
  // GET /info.
  json::Document info();

 private:
  std::string url(const std::string& path, bool versioned);
  // Transport failures throw; an HTTP failure returns its status and leaves
  // its body in *error_body.
  long perform(const std::string& method, const std::string& path, const std::string& body,
               const std::string& content_type, const std::vector<std::string>& headers,
               const std::function<void(const char*, std::size_t)>& on_data,
               const std::string& what, std::string* error_body);
  void negotiate();

  std::string socket_path_;
  std::string version_;
  std::unique_ptr<http::Client> client_;
  const std::atomic<bool>* abort_ = nullptr;
};

// Percent-encodes a query value.
using http::url_encode;

}  // namespace docker
}  // namespace launch

#endif
