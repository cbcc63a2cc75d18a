#include "docker/engine.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include <curl/curl.h>
#include <fmt/format.h>

#include "launch/error.hpp"

namespace launch {
namespace docker {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// The engine's {"message": "..."} or, failing that, the body as it came.
std::string engine_message(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str(), body.size());
  if (!d.HasParseError() && d.IsObject()) {
    auto it = d.FindMember("message");
    if (it != d.MemberEnd() && it->value.IsString()) return it->value.GetString();
  }
  std::string text = body;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

Errc errc_for_status(long status) {
  switch (status) {
    case 400: return Errc::invalid;
    case 404: return Errc::not_found;
    case 409: return Errc::state;
    default: return Errc::io;
  }
}

[[noreturn]] void throw_engine(long status, const std::string& body, const std::string& what) {
  throw Error(errc_for_status(status),
              fmt::format("docker: {}: {} (HTTP {})", what, engine_message(body), status));
}

struct Transfer {
  CURL* curl = nullptr;
  const std::function<void(const char*, std::size_t)>* on_data = nullptr;
  std::string error_body;  // the body of a failed (>= 400) response
  const std::atomic<bool>* abort = nullptr;
};

size_t write_cb(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  long status = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  if (status >= 400 || t->on_data == nullptr) {
    t->error_body.append(data, size * n);
  } else {
    (*t->on_data)(data, size * n);
  }
  return size * n;
}

int progress_cb(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  return (t->abort != nullptr && t->abort->load()) ? 1 : 0;
}

std::string label_filters(const std::map<std::string, std::string>& labels) {
  rapidjson::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  rapidjson::Value list(rapidjson::kArrayType);
  for (const auto& kv : labels) {
    list.PushBack(json::str(kv.second.empty() ? kv.first : kv.first + "=" + kv.second, a), a);
  }
  d.AddMember("label", list, a);
  return json::dump(d);
}

}  // namespace

int compare_api_versions(const std::string& a, const std::string& b) {
  auto parts = [](const std::string& v) {
    long major = std::strtol(v.c_str(), nullptr, 10);
    auto dot = v.find('.');
    long minor = dot == std::string::npos ? 0 : std::strtol(v.c_str() + dot + 1, nullptr, 10);
    return std::make_pair(major, minor);
  };
  auto pa = parts(a), pb = parts(b);
  if (pa < pb) return -1;
  if (pb < pa) return 1;
  return 0;
}

std::string default_socket_path() {
  const char* host = std::getenv("DOCKER_HOST");
  if (host == nullptr || *host == '\0') return "/var/run/docker.sock";
  std::string h = host;
  if (h.rfind("unix://", 0) == 0) return h.substr(7);
  throw Error(Errc::unsupported,
              fmt::format("DOCKER_HOST \"{}\": only unix:// engine sockets are supported", h));
}

std::string url_encode(const std::string& text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// ---- framing and progress streams

void LogDemuxer::feed(const char* data, std::size_t size) {
  while (size > 0) {
    if (payload_left_ == 0) {
      std::size_t take = std::min(size, sizeof(header_) - header_have_);
      std::memcpy(header_ + header_have_, data, take);
      header_have_ += take;
      data += take;
      size -= take;
      if (header_have_ < sizeof(header_)) return;
      header_have_ = 0;
      stream_ = header_[0] == 2 ? 2 : 1;
      payload_left_ = (std::size_t{header_[4]} << 24) | (std::size_t{header_[5]} << 16) |
                      (std::size_t{header_[6]} << 8) | std::size_t{header_[7]};
      continue;
    }
    std::size_t take = std::min(size, payload_left_);
    sink_(stream_, data, take);
    payload_left_ -= take;
    data += take;
    size -= take;
  }
}

void LineSplitter::feed(const char* data, std::size_t size) {
  partial_.append(data, size);
  std::size_t start = 0;
  for (;;) {
    auto nl = partial_.find('\n', start);
    if (nl == std::string::npos) break;
    std::string line = partial_.substr(start, nl - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) sink_(line);
    start = nl + 1;
  }
  partial_.erase(0, start);
}

void LineSplitter::finish() {
  if (!partial_.empty()) sink_(partial_);
  partial_.clear();
}

void ProgressStream::line(const std::string& json_line) {
  rapidjson::Document d;
  d.Parse(json_line.c_str(), json_line.size());
  if (d.HasParseError() || !d.IsObject()) {
    out_(json_line + "\n");
    return;
  }
  auto text = [&](const char* key) -> std::string {
    auto it = d.FindMember(key);
    return it != d.MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
  };
  std::string err = text("error");
  if (err.empty()) {
    auto detail = d.FindMember("errorDetail");
    if (detail != d.MemberEnd() && detail->value.IsObject()) {
      auto m = detail->value.FindMember("message");
      if (m != detail->value.MemberEnd() && m->value.IsString()) err = m->value.GetString();
    }
  }
  if (!err.empty()) {
    error_ = err;
    out_("error: " + err + "\n");
    return;
  }
  auto aux = d.FindMember("aux");
  if (aux != d.MemberEnd() && aux->value.IsObject()) {
    auto id = aux->value.FindMember("ID");
    if (id != aux->value.MemberEnd() && id->value.IsString()) aux_id_ = id->value.GetString();
  }
  std::string s = text("stream");
  if (!s.empty()) {
    out_(s);
    return;
  }
  std::string status = text("status");
  if (status.empty()) return;
  std::string id = text("id");
  std::string progress = text("progress");
  std::string out = id.empty() ? status : id + ": " + status;
  if (!progress.empty()) out += " " + progress;
  out_(out + "\n");
}

// ---- the engine

Engine::Engine(std::string socket_path) : socket_path_(std::move(socket_path)) {
  global_init();
  curl_ = curl_easy_init();
  if (curl_ == nullptr) throw Error(Errc::internal, "docker: curl_easy_init failed");
}

Engine::Engine(const Engine& other)
    : socket_path_(other.socket_path_), version_(other.version_), abort_(nullptr) {
  curl_ = curl_easy_init();
  if (curl_ == nullptr) throw Error(Errc::internal, "docker: curl_easy_init failed");
}

Engine::~Engine() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

const std::string& Engine::api_version() {
  if (version_.empty()) negotiate();
  return version_;
}

void Engine::negotiate() {
  // perform() takes the version from the Api-Version header.
  stream("GET", "/_ping", "", "", {}, {}, "ping");
}

std::string Engine::url(const std::string& path, bool versioned) {
  if (!versioned) return "http://localhost" + path;
  return "http://localhost/v" + api_version() + path;
}

namespace {

struct HeaderCapture {
  std::string api_version;
};

size_t header_cb(char* data, size_t size, size_t n, void* user) {
  auto* h = static_cast<HeaderCapture*>(user);
  std::string line(data, size * n);
  static const char kName[] = "api-version:";
  if (line.size() > sizeof(kName) - 1) {
    bool match = true;
    for (std::size_t i = 0; i + 1 < sizeof(kName); ++i) {
      if (std::tolower(static_cast<unsigned char>(line[i])) != kName[i]) {
        match = false;
        break;
      }
    }
    if (match) {
      std::string v = line.substr(sizeof(kName) - 1);
      auto b = v.find_first_not_of(" \t");
      auto e = v.find_last_not_of(" \t\r\n");
      h->api_version = b == std::string::npos ? "" : v.substr(b, e - b + 1);
    }
  }
  return size * n;
}

}  // namespace

long Engine::perform(const std::string& method, const std::string& path,
                     const std::string& body, const std::string& content_type,
                     const std::vector<std::string>& headers,
                     const std::function<void(const char*, std::size_t)>& on_data,
                     const std::string& what, std::string* error_body) {
  bool ping = path == "/_ping";
  std::string target = url(path, !ping);
  CURL* c = static_cast<CURL*>(curl_);
  curl_easy_reset(c);
  Transfer t;
  t.curl = c;
  t.on_data = on_data ? &on_data : nullptr;
  t.abort = abort_;
  HeaderCapture hc;
  curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket_path_.c_str());
  curl_easy_setopt(c, CURLOPT_URL, target.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &hc);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  struct curl_slist* list = nullptr;
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  if (method == "POST") {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    list = curl_slist_append(list, ("Content-Type: " + content_type).c_str());
    list = curl_slist_append(list, "Expect:");
  } else if (method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  if (list != nullptr) curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(list);
  if (rc == CURLE_ABORTED_BY_CALLBACK) {
    throw Error(Errc::io, fmt::format("docker: {}: cancelled", what));
  }
  if (rc != CURLE_OK) {
    throw Error(Errc::io, fmt::format("docker: {}: cannot reach the engine at unix://{}: {}", what,
                                      socket_path_, curl_easy_strerror(rc)));
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (ping && status == 200) {
    std::string v = hc.api_version.empty() ? "1.24" : hc.api_version;
    version_ = compare_api_versions(v, kMaxApiVersion) > 0 ? kMaxApiVersion : v;
  }
  *error_body = std::move(t.error_body);
  return status;
}

long Engine::stream(const std::string& method, const std::string& path, const std::string& body,
                    const std::string& content_type, const std::vector<std::string>& headers,
                    const std::function<void(const char*, std::size_t)>& on_data,
                    const std::string& what) {
  std::string error_body;
  long status = perform(method, path, body, content_type, headers, on_data, what, &error_body);
  if (status >= 400) throw_engine(status, error_body, what);
  return status;
}

Response Engine::call(const std::string& method, const std::string& path,
                      const std::string& body, const std::string& content_type,
                      const std::vector<std::string>& headers) {
  Response r;
  std::function<void(const char*, std::size_t)> collect = [&](const char* d, std::size_t n) {
    r.body.append(d, n);
  };
  std::string error_body;
  r.status = perform(method, path, body, content_type, headers, collect, method + " " + path,
                     &error_body);
  if (r.status >= 400) r.body = std::move(error_body);
  return r;
}

// ---- containers

std::string Engine::create_container(const std::string& spec, const std::string& name,
                                     const std::string& platform) {
  std::string path = "/containers/create";
  std::string sep = "?";
  if (!name.empty()) {
    path += sep + "name=" + url_encode(name);
    sep = "&";
  }
  if (!platform.empty()) path += sep + "platform=" + url_encode(platform);
  std::string body;
  stream("POST", path, spec, "application/json", {},
         [&](const char* d, std::size_t n) { body.append(d, n); }, "create container");
  auto doc = json::parse(body, "docker: create container answer");
  return json::get_string(doc, "Id", "docker: create container answer");
}

void Engine::start_container(const std::string& id) {
  stream("POST", "/containers/" + id + "/start", "", "application/json", {}, {},
         "start container " + id);
}

WaitResult Engine::wait_container(const std::string& id) {
  std::string body;
  stream("POST", "/containers/" + id + "/wait?condition=not-running", "", "application/json", {},
         [&](const char* d, std::size_t n) { body.append(d, n); }, "wait for container " + id);
  auto doc = json::parse(body, "docker: wait answer");
  WaitResult w;
  w.exit_code = static_cast<int>(json::get_int(doc, "StatusCode", "docker: wait answer", -1));
  auto err = doc.FindMember("Error");
  if (err != doc.MemberEnd() && err->value.IsObject()) {
    w.error = json::get_string(err->value, "Message", "docker: wait answer");
  }
  return w;
}

void Engine::container_logs(const std::string& id, bool follow, const LogDemuxer::Sink& sink) {
  LogDemuxer demux(sink);
  stream("GET",
         "/containers/" + id + "/logs?stdout=1&stderr=1" + (follow ? "&follow=1" : ""), "",
         "application/json", {}, [&](const char* d, std::size_t n) { demux.feed(d, n); },
         "logs of container " + id);
}

void Engine::stop_container(const std::string& id, int timeout_seconds) {
  stream("POST", fmt::format("/containers/{}/stop?t={}", id, timeout_seconds), "",
         "application/json", {}, {}, "stop container " + id);
}

void Engine::kill_container(const std::string& id, const std::string& signal) {
  stream("POST", "/containers/" + id + "/kill?signal=" + url_encode(signal), "",
         "application/json", {}, {}, "kill container " + id);
}

void Engine::remove_container(const std::string& id, bool force) {
  stream("DELETE", "/containers/" + id + "?v=1" + (force ? "&force=1" : ""), "",
         "application/json", {}, {}, "remove container " + id);
}

std::optional<json::Document> Engine::inspect_container(const std::string& id) {
  Response r = call("GET", "/containers/" + id + "/json");
  if (r.status == 404) return std::nullopt;
  if (r.status >= 400) throw_engine(r.status, r.body, "inspect container " + id);
  return json::parse(r.body, "docker: inspect container answer");
}

std::vector<ContainerSummary> Engine::list_containers(
    const std::map<std::string, std::string>& labels) {
  std::string body;
  stream("GET", "/containers/json?all=1&filters=" + url_encode(label_filters(labels)), "",
         "application/json", {}, [&](const char* d, std::size_t n) { body.append(d, n); },
         "list containers");
  auto doc = json::parse(body, "docker: list containers answer");
  std::vector<ContainerSummary> out;
  if (!doc.IsArray()) return out;
  for (const auto& c : doc.GetArray()) {
    ContainerSummary s;
    s.id = json::get_string(c, "Id", "docker: container");
    s.state = json::get_string(c, "State", "docker: container");
    s.labels = json::get_string_map(c, "Labels", "docker: container");
    out.push_back(std::move(s));
  }
  return out;
}

// ---- images

std::string Engine::build_image(const std::string& context_tar, const BuildOptions& options,
                                const std::function<void(const std::string&)>& out) {
  std::string path = "/build?rm=1&forcerm=1&t=" + url_encode(options.tag);
  if (!options.dockerfile.empty()) path += "&dockerfile=" + url_encode(options.dockerfile);
  if (!options.platform.empty()) path += "&platform=" + url_encode(options.platform);
  if (!options.labels.empty()) {
    rapidjson::Document d(rapidjson::kObjectType);
    for (const auto& kv : options.labels) {
      d.AddMember(json::str(kv.first, d.GetAllocator()), json::str(kv.second, d.GetAllocator()),
                  d.GetAllocator());
    }
    path += "&labels=" + url_encode(json::dump(d));
  }
  ProgressStream progress(out);
  LineSplitter lines([&](const std::string& l) { progress.line(l); });
  stream("POST", path, context_tar, "application/x-tar", {},
         [&](const char* d, std::size_t n) { lines.feed(d, n); }, "build " + options.tag);
  lines.finish();
  if (!progress.error().empty()) {
    throw Error(Errc::io, fmt::format("docker: build {}: {}", options.tag, progress.error()));
  }
  return progress.aux_id();
}

namespace {

// "host:5000/repo:tag" -> ("host:5000/repo", "tag"); a digest stays whole.
std::pair<std::string, std::string> split_tag(const std::string& reference) {
  if (reference.find('@') != std::string::npos) return {reference, ""};
  auto slash = reference.rfind('/');
  auto colon = reference.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    return {reference.substr(0, colon), reference.substr(colon + 1)};
  }
  return {reference, ""};
}

std::vector<std::string> auth_header(const std::string& auth) {
  // Older engines refuse a push without the header; "{}" is anonymous.
  return {"X-Registry-Auth: " + (auth.empty() ? std::string("e30=") : auth)};
}

}  // namespace

void Engine::push_image(const std::string& reference, const std::string& auth,
                        const std::function<void(const std::string&)>& out) {
  auto rt = split_tag(reference);
  std::string path = "/images/" + rt.first + "/push";
  if (!rt.second.empty()) path += "?tag=" + url_encode(rt.second);
  ProgressStream progress(out);
  LineSplitter lines([&](const std::string& l) { progress.line(l); });
  stream("POST", path, "", "application/json", auth_header(auth),
         [&](const char* d, std::size_t n) { lines.feed(d, n); }, "push " + reference);
  lines.finish();
  if (!progress.error().empty()) {
    throw Error(Errc::io, fmt::format("docker: push {}: {}", reference, progress.error()));
  }
}

void Engine::pull_image(const std::string& reference, const std::string& auth,
                        const std::string& platform,
                        const std::function<void(const std::string&)>& out) {
  auto rt = split_tag(reference);
  std::string path = "/images/create?fromImage=" + url_encode(rt.first) +
                     "&tag=" + url_encode(rt.second.empty() ? "latest" : rt.second);
  if (!platform.empty()) path += "&platform=" + url_encode(platform);
  ProgressStream progress(out);
  LineSplitter lines([&](const std::string& l) { progress.line(l); });
  stream("POST", path, "", "application/json", auth_header(auth),
         [&](const char* d, std::size_t n) { lines.feed(d, n); }, "pull " + reference);
  lines.finish();
  if (!progress.error().empty()) {
    throw Error(Errc::io, fmt::format("docker: pull {}: {}", reference, progress.error()));
  }
}

std::optional<json::Document> Engine::inspect_image(const std::string& reference) {
  Response r = call("GET", "/images/" + reference + "/json");
  if (r.status == 404) return std::nullopt;
  if (r.status >= 400) throw_engine(r.status, r.body, "inspect image " + reference);
  return json::parse(r.body, "docker: inspect image answer");
}

void Engine::remove_image(const std::string& reference, bool force) {
  stream("DELETE", "/images/" + reference + (force ? "?force=1" : ""), "", "application/json",
         {}, {}, "remove image " + reference);
}

json::Document Engine::info() {
  std::string body;
  stream("GET", "/info", "", "application/json", {},
         [&](const char* d, std::size_t n) { body.append(d, n); }, "info");
  return json::parse(body, "docker: info answer");
}

}  // namespace docker
}  // namespace launch
