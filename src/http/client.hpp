// Internal: launch's one HTTP client, over libcurl (the only user of libcurl
// in the library). Every HTTP speaker — the Docker engine and registries,
// and the cloud runners — goes through http::Client.
//
// A Client holds one curl handle, so connections are reused from one call to
// the next. Thread-safety: one Client per thread (or guard it with a mutex);
// the exception is abort(), which any thread may call at any time.
//
// Proxies: curl reads http_proxy / https_proxy / no_proxy by itself, and the
// Client leaves that on.
#ifndef LAUNCH_SRC_HTTP_CLIENT_HPP
#define LAUNCH_SRC_HTTP_CLIENT_HPP

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "launch/error.hpp"

namespace launch {
namespace http {

class Auth;

// Header fields in order; names compare case-insensitively.
class Headers {
 public:
  // Appends a field (a name may repeat).
  void add(std::string name, std::string value);
  // Replaces every field called `name` by one.
  void set(const std::string& name, std::string value);
  void remove(const std::string& name);
  // The first field called `name`.
  std::optional<std::string> get(const std::string& name) const;
  bool has(const std::string& name) const { return get(name).has_value(); }
  const std::vector<std::pair<std::string, std::string>>& fields() const { return fields_; }
  void clear() { fields_.clear(); }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

// Produces the request body piece by piece: fills at most `size` bytes of
// `buffer` and returns how many; 0 at the end.
using BodyReader = std::function<std::size_t(char* buffer, std::size_t size)>;

struct Request {
  std::string method = "GET";
  // Absolute ("https://host/path?q"). For a unix-socket Client the host is
  // ignored: "http://localhost/path".
  std::string url;
  Headers headers;
  // The body, from memory...
  std::string body;
  // ...or from a stream (then `body` must be empty). `body_size` is its
  // length when known; without it the body is sent chunked. A streamed body
  // cannot be sent twice, so such a request is not retried.
  BodyReader body_reader;
  std::optional<std::uint64_t> body_size;
  // Adds credentials just before each send (see auth.hpp).
  std::shared_ptr<const Auth> auth;
};

// One request as it goes out (one attempt, one redirect hop): what an Auth
// sees and adds its credentials to. A signer (SigV4) has all it needs:
// method, URL, headers, and the body when it is in memory.
struct Outgoing {
  std::string method;
  std::string url;
  Headers headers;
  const std::string* body = nullptr;  // nullptr when streamed (body_reader)
};

struct Response {
  long status = 0;
  Headers headers;
  std::string body;  // empty when the body was streamed to a callback
  // The request's method and its final URL (after redirects), without any
  // credentials: what error messages name.
  std::string method;
  std::string url;
  bool ok() const { return status >= 200 && status < 300; }
};

struct TlsOptions {
  // Trust: a CA bundle file, or PEM text. Neither: the system's store.
  std::string ca_file;
  std::string ca_pem;
  // A client certificate and key (PEM), each a file or PEM text.
  std::string cert_file;
  std::string cert_pem;
  std::string key_file;
  std::string key_pem;
  // Skips the server's certificate and name checks. Tests and nothing else.
  bool insecure_skip_verify = false;
};

struct ClientOptions {
  // Speak HTTP over this unix socket instead of TCP (the Docker engine).
  std::string unix_socket;
  TlsOptions tls;
  long connect_timeout_ms = 10000;
  // The whole exchange, body included; 0 = no limit (streams).
  long timeout_ms = 0;
  // A transfer that moves no byte either way for this long fails with
  // Errc::timeout; 0 = never. For streams that should never stall.
  long idle_timeout_ms = 0;
  // Extra attempts for an idempotent request (GET, HEAD, PUT, DELETE,
  // OPTIONS) whose connection failed or dropped, or that was answered 502,
  // 503 or 504. Never for POST or PATCH: those go out on a fresh connection,
  // so that curl cannot send them twice on a kept-alive one that died.
  int retries = 2;
  // POST and PATCH on a kept-alive connection too. curl sends a request
  // again by itself when a reused connection turns out dead; with a live
  // server that never happens (curl drops a connection idle for 118 s, a
  // launch server keeps one 120 s), but a server that dies having acted on
  // a request may see it twice. For a peer whose non-idempotent requests
  // are few or cannot be repeated safely, leave it off.
  bool reuse_connection_for_post = false;
  // The wait before retry n is retry_backoff_ms * 2^(n-1).
  long retry_backoff_ms = 200;
  int max_redirects = 10;
  // A buffered body larger than this fails the call (Errc::io).
  std::size_t max_body_bytes = std::size_t{64} << 20;
  // When it turns true, the transfer under way stops (Errc::io "cancelled").
  const std::atomic<bool>* abort_flag = nullptr;
  std::string user_agent;  // default "launch/<version>"
};

// Every failure of a call: a transport failure (status 0) or an answer
// >= 400. what() reads "METHOD URL: HTTP 404: <server message>" or
// "METHOD URL: <transport error>"; the URL carries no credentials.
class HttpError : public Error {
 public:
  HttpError(Errc code, const std::string& message, std::string method, std::string url,
            long status, std::string server_message)
      : Error(code, message),
        method_(std::move(method)),
        url_(std::move(url)),
        status_(status),
        server_message_(std::move(server_message)) {}
  const std::string& method() const { return method_; }
  const std::string& url() const { return url_; }
  long status() const { return status_; }
  const std::string& server_message() const { return server_message_; }

 private:
  std::string method_;
  std::string url_;
  long status_;
  std::string server_message_;
};

// 400/422 -> invalid, 401/403 -> invalid (credentials or rights: the
// caller's configuration), 404/410 -> not_found, 409 -> state, 408/504 ->
// timeout, 501 -> unsupported, anything else -> io.
Errc errc_for_status(long status);

// What a server said in an error body: a JSON object's "message" or "error"
// (a string, or an object with a "message"), else the body's first line;
// at most 300 characters.
std::string server_message(const std::string& body);

// The error for an answer >= 400.
HttpError status_error(const Response& response);

// `url` without userinfo ("https://user:pw@h/" -> "https://h/").
std::string redact_url(const std::string& url);

// Percent-encodes a query or path component (RFC 3986 unreserved kept).
std::string url_encode(const std::string& text);

// Splits a chunked body into lines ('\n', a trailing '\r' dropped), handing
// each complete one, empty ones too, to `sink`; finish() hands over a last
// unterminated line.
class LineSplitter {
 public:
  explicit LineSplitter(std::function<void(const std::string&)> sink) : sink_(std::move(sink)) {}
  void feed(const char* data, std::size_t size);
  void finish();

 private:
  std::function<void(const std::string&)> sink_;
  std::string partial_;
};

class Client {
 public:
  using ChunkSink = std::function<void(const char* data, std::size_t size)>;
  using LineSink = std::function<void(const std::string& line)>;

  explicit Client(ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const ClientOptions& options() const { return options_; }
  // Replaces options().abort_flag; not while a call is under way.
  void set_abort_flag(const std::atomic<bool>* flag) { options_.abort_flag = flag; }

  // Sends `request` and buffers the answer. An answer >= 400 throws
  // HttpError, unless `accept_errors`, when it is returned like any other.
  Response send(const Request& request, bool accept_errors = false);

  // Sends `request` and hands the body to `sink` as it arrives. An answer
  // >= 400 is not streamed: it is buffered and thrown as HttpError (or,
  // with `accept_errors`, returned with its body). A successful Response
  // has the status and headers, no body.
  Response stream(const Request& request, const ChunkSink& sink, bool accept_errors = false);

  // As stream(), one line at a time (without "\n" or "\r\n"), for watch
  // streams and server-sent events; a last unterminated line comes at the
  // end. Empty lines are delivered too (SSE separates events with them).
  Response stream_lines(const Request& request, const LineSink& sink);

  // Stops the transfer under way promptly (it throws Errc::io
  // "cancelled"). Safe from any thread. It stays in force, refusing every
  // later call, until reset_abort(): an abort that lands between two calls
  // is not lost.
  void abort();
  void reset_abort();

 private:
  struct Outcome;
  Response run(const Request& request, const ChunkSink* sink, bool accept_errors);
  Outcome attempt(const Outgoing& out, const Request& request, const ChunkSink* sink);
  bool aborted() const;
  void backoff(int retry, const std::string& method, const std::string& url);

  ClientOptions options_;
  void* multi_ = nullptr;  // CURLM*
  void* easy_ = nullptr;   // CURL*
  std::atomic<bool> abort_{false};
};

}  // namespace http
}  // namespace launch

#endif
