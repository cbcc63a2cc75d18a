#include "http/client.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include <curl/curl.h>
#include <fmt/format.h>

#include "http/auth.hpp"
#include "launch/error.hpp"
#include "launch/version.hpp"
#include "util/json.hpp"
#include "util/url.hpp"

namespace launch {
namespace http {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool iequals(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

bool idempotent(const std::string& method) {
  return method == "GET" || method == "HEAD" || method == "PUT" || method == "DELETE" ||
         method == "OPTIONS";
}

// A connection that failed, or dropped before a whole answer came: worth
// another try for an idempotent request.
bool retryable(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

bool retryable(long status) { return status == 502 || status == 503 || status == 504; }

// A parsed URL (curl's own parser, so we judge a URL as curl will use it).
class Url {
 public:
  explicit Url(const std::string& url) : h_(curl_url()) {
    if (h_ == nullptr) throw Error(Errc::internal, "http: curl_url failed");
    ok_ = curl_url_set(h_, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK;
  }
  ~Url() { curl_url_cleanup(h_); }
  Url(const Url&) = delete;
  Url& operator=(const Url&) = delete;
  bool ok() const { return ok_; }
  std::string part(CURLUPart what, unsigned flags = 0) const {
    char* out = nullptr;
    if (curl_url_get(h_, what, &out, flags) != CURLUE_OK || out == nullptr) return "";
    std::string s = out;
    curl_free(out);
    return s;
  }
  void clear(CURLUPart what) { curl_url_set(h_, what, nullptr, 0); }
  // scheme://host:port, host lower-cased, the default port made explicit.
  std::string origin() const {
    std::string host = part(CURLUPART_HOST);
    for (auto& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return part(CURLUPART_SCHEME) + "://" + host + ":" + part(CURLUPART_PORT, CURLU_DEFAULT_PORT);
  }

 private:
  CURLU* h_;
  bool ok_ = false;
};

bool has_userinfo(const std::string& url) {
  Url u(url);
  return u.ok() && (!u.part(CURLUPART_USER).empty() || !u.part(CURLUPART_PASSWORD).empty());
}

struct Slist {
  curl_slist* list = nullptr;
  ~Slist() { curl_slist_free_all(list); }
  void add(const std::string& line) {
    curl_slist* next = curl_slist_append(list, line.c_str());
    if (next == nullptr) throw Error(Errc::internal, "http: out of memory");
    list = next;
  }
};

}  // namespace

// ---- headers

void Headers::add(std::string name, std::string value) {
  fields_.emplace_back(std::move(name), std::move(value));
}

void Headers::set(const std::string& name, std::string value) {
  remove(name);
  add(name, std::move(value));
}

void Headers::remove(const std::string& name) {
  fields_.erase(std::remove_if(fields_.begin(), fields_.end(),
                               [&](const auto& f) { return iequals(f.first, name); }),
                fields_.end());
}

std::optional<std::string> Headers::get(const std::string& name) const {
  for (const auto& f : fields_) {
    if (iequals(f.first, name)) return f.second;
  }
  return std::nullopt;
}

// ---- helpers

Errc errc_for_status(long status) {
  switch (status) {
    case 400:
    case 401:
    case 403:
    case 422:
      return Errc::invalid;
    case 404:
    case 410:
      return Errc::not_found;
    case 409:
      return Errc::state;
    case 408:
    case 504:
      return Errc::timeout;
    case 501:
      return Errc::unsupported;
    default:
      return Errc::io;
  }
}

std::string server_message(const std::string& body) {
  constexpr std::size_t kMax = 300;
  std::string text;
  // Through the one parser, so a server's crafted body meets its limits.
  json::Document d;
  bool parsed = true;
  try {
    d = json::parse(body, "response");
  } catch (const Error&) {
    parsed = false;
  }
  if (parsed && d.IsObject()) {
    for (const char* key : {"message", "error"}) {
      auto it = d.FindMember(key);
      if (it == d.MemberEnd()) continue;
      if (it->value.IsString()) {
        text = it->value.GetString();
        break;
      }
      if (it->value.IsObject()) {
        auto m = it->value.FindMember("message");
        if (m != it->value.MemberEnd() && m->value.IsString()) {
          text = m->value.GetString();
          break;
        }
      }
    }
  }
  if (text.empty()) {
    std::string t = trim(body);
    text = t.substr(0, t.find('\n'));
  }
  text = trim(text);
  if (text.size() > kMax) text = text.substr(0, kMax) + "...";
  return text;
}

std::string redact_url(const std::string& url) {
  Url u(url);
  if (!u.ok()) return url.substr(0, url.find('@') == std::string::npos ? url.size() : 0);
  u.clear(CURLUPART_USER);
  u.clear(CURLUPART_PASSWORD);
  u.clear(CURLUPART_OPTIONS);
  std::string out = u.part(CURLUPART_URL);
  return out.empty() ? url : out;
}

HttpError status_error(const Response& r) {
  std::string message = server_message(r.body);
  std::string text = fmt::format("{} {}: HTTP {}", r.method, r.url, r.status);
  if (!message.empty()) text += ": " + message;
  return HttpError(errc_for_status(r.status), text, r.method, r.url, r.status, message);
}

std::string url_encode(const std::string& text) { return util::percent_encode(text); }

void LineSplitter::feed(const char* data, std::size_t size) {
  partial_.append(data, size);
  std::size_t start = 0;
  for (;;) {
    auto nl = partial_.find('\n', start);
    if (nl == std::string::npos) break;
    std::string line = partial_.substr(start, nl - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    start = nl + 1;
    sink_(line);
  }
  partial_.erase(0, start);
}

void LineSplitter::finish() {
  if (partial_.empty()) return;
  std::string line = std::move(partial_);
  partial_.clear();
  if (!line.empty() && line.back() == '\r') line.pop_back();
  sink_(line);
}

// ---- the client

// One attempt's result: the answer, or the transport failure.
struct Client::Outcome {
  Response response;
  CURLcode rc = CURLE_OK;
  std::string error;         // curl's detail for rc
  std::string redirect_url;  // absolute, for a 3xx with a Location
  bool delivered = false;    // some of the body went to the sink
  bool too_large = false;
  std::exception_ptr sink_error;
};

namespace {

struct Transfer {
  const Client::ChunkSink* sink = nullptr;
  Response* response = nullptr;
  std::size_t max_body = 0;
  bool* delivered = nullptr;
  bool* too_large = nullptr;
  std::exception_ptr* sink_error = nullptr;
  const std::atomic<bool>* abort_a = nullptr;
  const std::atomic<bool>* abort_b = nullptr;
  // When a byte last moved either way: the idle timeout's clock.
  std::chrono::steady_clock::time_point last_activity = std::chrono::steady_clock::now();
  curl_off_t moved = 0;
};

size_t header_cb(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  t->last_activity = std::chrono::steady_clock::now();
  std::string line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    // A new status line (after a 100 Continue, say): its headers start over.
    t->response->headers.clear();
    auto sp = line.find(' ');
    t->response->status = sp == std::string::npos ? 0 : std::strtol(line.c_str() + sp + 1, nullptr, 10);
    return size * n;
  }
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    t->response->headers.add(trim(line.substr(0, colon)), trim(line.substr(colon + 1)));
  }
  return size * n;
}

size_t write_cb(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::size_t len = size * n;
  t->last_activity = std::chrono::steady_clock::now();
  long status = t->response->status;
  // Error and redirect bodies are kept for the message, never streamed.
  if (t->sink == nullptr || status >= 300) {
    if (t->response->body.size() + len > t->max_body) {
      *t->too_large = true;
      return 0;
    }
    t->response->body.append(data, len);
    return len;
  }
  try {
    *t->delivered = true;
    (*t->sink)(data, len);
  } catch (...) {
    // An exception must not unwind through curl: keep it for after.
    *t->sink_error = std::current_exception();
    return 0;
  }
  return len;
}

int progress_cb(void* user, curl_off_t, curl_off_t dlnow, curl_off_t, curl_off_t ulnow) {
  auto* t = static_cast<Transfer*>(user);
  if (dlnow + ulnow != t->moved) {
    t->moved = dlnow + ulnow;
    t->last_activity = std::chrono::steady_clock::now();
  }
  bool stop = (t->abort_a != nullptr && t->abort_a->load()) ||
              (t->abort_b != nullptr && t->abort_b->load());
  return stop ? 1 : 0;
}

struct ReadState {
  const BodyReader* reader = nullptr;
  std::exception_ptr* error = nullptr;
};

size_t read_cb(char* buffer, size_t size, size_t n, void* user) {
  auto* r = static_cast<ReadState*>(user);
  try {
    return (*r->reader)(buffer, size * n);
  } catch (...) {
    *r->error = std::current_exception();
    return CURL_READFUNC_ABORT;
  }
}

}  // namespace

Client::Client(ClientOptions options) : options_(std::move(options)) {
  global_init();
  easy_ = curl_easy_init();
  multi_ = curl_multi_init();
  if (easy_ == nullptr || multi_ == nullptr) {
    curl_easy_cleanup(static_cast<CURL*>(easy_));
    curl_multi_cleanup(static_cast<CURLM*>(multi_));
    throw Error(Errc::internal, "http: cannot make a curl handle");
  }
  if (options_.user_agent.empty()) options_.user_agent = "launch/" LAUNCH_VERSION_STRING;
}

Client::~Client() {
  curl_easy_cleanup(static_cast<CURL*>(easy_));
  curl_multi_cleanup(static_cast<CURLM*>(multi_));
}

void Client::abort() {
  abort_.store(true);
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
}

void Client::reset_abort() { abort_.store(false); }

bool Client::aborted() const {
  return abort_.load() || (options_.abort_flag != nullptr && options_.abort_flag->load());
}

Response Client::send(const Request& request, bool accept_errors) {
  return run(request, nullptr, accept_errors);
}

Response Client::stream(const Request& request, const ChunkSink& sink, bool accept_errors) {
  return run(request, &sink, accept_errors);
}

Response Client::stream_lines(const Request& request, const LineSink& sink) {
  LineSplitter lines(sink);
  ChunkSink chunks = [&](const char* d, std::size_t n) { lines.feed(d, n); };
  Response r = run(request, &chunks, false);
  lines.finish();
  return r;
}

void Client::backoff(int retry, const std::string& method, const std::string& url) {
  long ms = options_.retry_backoff_ms;
  for (int i = 1; i < retry && ms < 30000; ++i) ms *= 2;
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < until) {
    if (aborted()) throw HttpError(Errc::io, fmt::format("{} {}: cancelled", method, url), method, url, 0, "");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

Response Client::run(const Request& request, const ChunkSink* sink, bool accept_errors) {
  if (request.method.empty()) throw Error(Errc::invalid, "http: a request needs a method");
  if (request.url.empty()) throw Error(Errc::invalid, "http: a request needs a url");
  if (request.body_reader && !request.body.empty()) {
    throw Error(Errc::invalid, fmt::format("http: {} {}: give the body from memory or from a "
                                           "stream, not both",
                                           request.method, redact_url(request.url)));
  }
  std::string method = request.method;
  std::string url = request.url;
  bool with_body = !request.body.empty() || static_cast<bool>(request.body_reader);
  const bool credentials = request.auth != nullptr || request.headers.has("Authorization") ||
                           has_userinfo(request.url);
  int redirects = 0;
  int retry = 0;
  for (;;) {
    Outgoing out;
    out.method = method;
    out.url = url;
    out.headers = request.headers;
    out.body = request.body_reader ? nullptr : &request.body;
    if (!with_body) {
      out.body = nullptr;
      // A redirect turned the request into a GET: what described the body goes.
      if (method != request.method) out.headers.remove("Content-Type");
    }
    if (request.auth != nullptr) request.auth->apply(out);
    std::string shown = redact_url(url);
    if (aborted()) {
      throw HttpError(Errc::io, fmt::format("{} {}: cancelled", method, shown), method, shown, 0, "");
    }
    Outcome o = attempt(out, request, sink);
    if (o.sink_error) std::rethrow_exception(o.sink_error);
    o.response.method = method;
    o.response.url = shown;
    bool replayable = !request.body_reader || !with_body;
    bool may_retry = idempotent(method) && replayable && !o.delivered && retry < options_.retries;
    if (o.rc != CURLE_OK) {
      if (o.rc == CURLE_ABORTED_BY_CALLBACK) {
        throw HttpError(Errc::io, fmt::format("{} {}: cancelled", method, shown), method, shown, 0, "");
      }
      if (o.too_large) {
        throw HttpError(Errc::io,
                        fmt::format("{} {}: the answer is larger than {} bytes", method, shown,
                                    options_.max_body_bytes),
                        method, shown, o.response.status, "");
      }
      if (may_retry && retryable(o.rc)) {
        backoff(++retry, method, shown);
        continue;
      }
      Errc code = o.rc == CURLE_OPERATION_TIMEDOUT ? Errc::timeout : Errc::io;
      std::string where = options_.unix_socket.empty() ? shown : shown + " (unix socket " + options_.unix_socket + ")";
      throw HttpError(code, fmt::format("{} {}: {}", method, where, o.error), method, shown, 0, o.error);
    }
    long status = o.response.status;
    if (retryable(status) && may_retry) {
      backoff(++retry, method, shown);
      continue;
    }
    bool redirect = (status == 301 || status == 302 || status == 303 || status == 307 ||
                     status == 308) && !o.redirect_url.empty();
    if (redirect) {
      if (++redirects > options_.max_redirects) {
        throw HttpError(Errc::io, fmt::format("{} {}: more than {} redirects", method, shown,
                                              options_.max_redirects),
                        method, shown, status, "");
      }
      Url from(url), to(o.redirect_url);
      if (!to.ok()) {
        throw HttpError(Errc::io, fmt::format("{} {}: redirect to an invalid URL \"{}\"", method,
                                              shown, redact_url(o.redirect_url)),
                        method, shown, status, "");
      }
      if (credentials && from.origin() != to.origin()) {
        throw HttpError(Errc::invalid,
                        fmt::format("{} {}: refused to follow the redirect to {}: the request "
                                    "carries credentials, which are not sent to another host",
                                    method, shown, redact_url(o.redirect_url)),
                        method, shown, status, "");
      }
      bool to_get = status == 303 ? method != "HEAD" : (status <= 302 && method == "POST");
      if (to_get) {
        method = "GET";
        with_body = false;
      } else if (with_body && request.body_reader) {
        throw HttpError(Errc::unsupported,
                        fmt::format("{} {}: cannot follow a {} redirect: the body was streamed "
                                    "and cannot be sent again",
                                    method, shown, status),
                        method, shown, status, "");
      }
      url = o.redirect_url;
      retry = 0;
      continue;
    }
    if (status >= 400 && !accept_errors) throw status_error(o.response);
    return std::move(o.response);
  }
}

Client::Outcome Client::attempt(const Outgoing& out, const Request& request, const ChunkSink* sink) {
  CURL* c = static_cast<CURL*>(easy_);
  CURLM* m = static_cast<CURLM*>(multi_);
  Outcome o;
  // reset() keeps the connection cache: the next call reuses the connection.
  curl_easy_reset(c);
  char errbuf[CURL_ERROR_SIZE] = {0};
  Transfer t;
  t.sink = sink;
  t.response = &o.response;
  t.max_body = options_.max_body_bytes;
  t.delivered = &o.delivered;
  t.too_large = &o.too_large;
  t.sink_error = &o.sink_error;
  t.abort_a = &abort_;
  t.abort_b = options_.abort_flag;
  ReadState rs{&request.body_reader, &o.sink_error};

  curl_easy_setopt(c, CURLOPT_URL, out.url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, options_.connect_timeout_ms);
  // A kept-alive connection idle this long is not reused (curl's default,
  // set here because reuse_connection_for_post relies on it).
  curl_easy_setopt(c, CURLOPT_MAXAGE_CONN, 118L);
  if (options_.timeout_ms > 0) curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, options_.timeout_ms);
  if (!options_.unix_socket.empty()) {
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, options_.unix_socket.c_str());
  }
  const TlsOptions& tls = options_.tls;
  if (!tls.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, tls.ca_file.c_str());
  curl_blob ca{const_cast<char*>(tls.ca_pem.data()), tls.ca_pem.size(), CURL_BLOB_COPY};
  if (!tls.ca_pem.empty()) curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &ca);
  if (!tls.cert_file.empty()) curl_easy_setopt(c, CURLOPT_SSLCERT, tls.cert_file.c_str());
  curl_blob cert{const_cast<char*>(tls.cert_pem.data()), tls.cert_pem.size(), CURL_BLOB_COPY};
  if (!tls.cert_pem.empty()) curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &cert);
  if (!tls.cert_file.empty() || !tls.cert_pem.empty()) {
    curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
  }
  if (!tls.key_file.empty()) curl_easy_setopt(c, CURLOPT_SSLKEY, tls.key_file.c_str());
  curl_blob key{const_cast<char*>(tls.key_pem.data()), tls.key_pem.size(), CURL_BLOB_COPY};
  if (!tls.key_pem.empty()) curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &key);
  if (!tls.key_file.empty() || !tls.key_pem.empty()) {
    curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
  }
  if (tls.insecure_skip_verify) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);

  Slist headers;
  for (const auto& f : out.headers.fields()) headers.add(f.first + ": " + f.second);
  // No "Expect: 100-continue" round trip before a large body.
  headers.add("Expect:");
  bool streamed = out.body == nullptr && request.body_reader && out.method != "GET" &&
                  out.method != "HEAD";
  if (out.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (out.body != nullptr && !out.body->empty()) {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, out.body->data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(out.body->size()));
    if (!out.headers.has("Content-Type")) headers.add("Content-Type:");
  } else if (streamed) {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(c, CURLOPT_READDATA, &rs);
    curl_off_t size = request.body_size ? static_cast<curl_off_t>(*request.body_size) : -1;
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, size);
    if (!request.body_size) headers.add("Transfer-Encoding: chunked");
    if (!out.headers.has("Content-Type")) headers.add("Content-Type:");
  } else if (out.method == "POST") {
    // An empty POST: curl would otherwise wait for a body.
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(0));
    if (!out.headers.has("Content-Type")) headers.add("Content-Type:");
  } else {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  }
  bool posting = out.method != "HEAD" && ((out.body != nullptr && !out.body->empty()) ||
                                          streamed || out.method == "POST");
  if (posting ? out.method != "POST" : (out.method != "GET" && out.method != "HEAD")) {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, out.method.c_str());
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.list);
  // curl sends a request again by itself when a reused connection turns out
  // dead, even a POST the server may have acted on; a fresh connection for
  // the non-idempotent methods makes "never retried" true.
  if (!idempotent(out.method) && !options_.reuse_connection_for_post) {
    curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
  }

  curl_multi_add_handle(m, c);
  CURLcode rc = CURLE_OK;
  bool done = false;
  while (!done) {
    int running = 0;
    CURLMcode mc = curl_multi_perform(m, &running);
    if (mc != CURLM_OK) {
      rc = CURLE_FAILED_INIT;
      std::snprintf(errbuf, sizeof(errbuf), "%s", curl_multi_strerror(mc));
      break;
    }
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(m, &queued)) {
      if (msg->msg == CURLMSG_DONE && msg->easy_handle == c) {
        rc = msg->data.result;
        done = true;
      }
    }
    if (done) break;
    if (aborted()) {
      rc = CURLE_ABORTED_BY_CALLBACK;
      break;
    }
    long idle = options_.idle_timeout_ms;
    if (idle > 0 && std::chrono::steady_clock::now() - t.last_activity >
                        std::chrono::milliseconds(idle)) {
      rc = CURLE_OPERATION_TIMEDOUT;
      std::snprintf(errbuf, sizeof(errbuf), "no data moved for %ld ms", idle);
      break;
    }
    // abort() wakes the poll at once; an outside abort flag and the idle
    // clock are looked at between polls.
    int wait_ms = options_.abort_flag != nullptr ? 100 : 1000;
    if (idle > 0) wait_ms = static_cast<int>(std::min<long>(wait_ms, std::max<long>(idle / 4, 10)));
    curl_multi_poll(m, nullptr, 0, wait_ms, nullptr);
  }
  curl_multi_remove_handle(m, c);
  o.rc = rc;
  if (rc != CURLE_OK) {
    o.error = errbuf[0] != '\0' ? std::string(errbuf) : curl_easy_strerror(rc);
    while (!o.error.empty() && (o.error.back() == '\n' || o.error.back() == '\r')) o.error.pop_back();
    return o;
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &o.response.status);
  char* location = nullptr;
  if (curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &location) == CURLE_OK && location != nullptr) {
    o.redirect_url = location;
  }
  return o;
}

}  // namespace http
}  // namespace launch
