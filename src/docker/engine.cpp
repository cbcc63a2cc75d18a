#include "docker/engine.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "launch/error.hpp"

namespace launch {
namespace docker {
namespace {

// The engine's errors: its own status mapping, kept as it was before the
// http client (401/403 do not come from a local engine).
Errc errc_for_status(long status) {
  switch (status) {
    case 400: return Errc::invalid;
    case 404: return Errc::not_found;
    case 409: return Errc::state;
    default: return Errc::io;
  }
}

[[noreturn]] void throw_engine(long status, const std::string& body, const std::string& what) {
  throw Error(errc_for_status(status), fmt::format("docker: {}: {} (HTTP {})", what,
                                                   http::server_message(body), status));
}

http::ClientOptions engine_options(const std::string& socket_path) {
  http::ClientOptions o;
  o.unix_socket = socket_path;
  o.connect_timeout_ms = 10000;
  return o;
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

void ProgressStream::line(const std::string& json_line) {
  if (json_line.empty()) return;
  json::Document d;
  try {
    d = json::parse(json_line, "docker progress");
  } catch (const Error&) {
    out_(json_line + "\n");
    return;
  }
  if (!d.IsObject()) {
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

Engine::Engine(std::string socket_path)
    : socket_path_(std::move(socket_path)),
      client_(std::make_unique<http::Client>(engine_options(socket_path_))) {}

Engine::Engine(const Engine& other)
    : socket_path_(other.socket_path_),
      version_(other.version_),
      client_(std::make_unique<http::Client>(engine_options(socket_path_))),
      abort_(nullptr) {}

Engine::~Engine() = default;

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

long Engine::perform(const std::string& method, const std::string& path,
                     const std::string& body, const std::string& content_type,
                     const std::vector<std::string>& headers,
                     const std::function<void(const char*, std::size_t)>& on_data,
                     const std::string& what, std::string* error_body) {
  bool ping = path == "/_ping";
  http::Request r;
  r.method = method;
  r.url = url(path, !ping);
  r.body = body;
  if (method == "POST") r.headers.add("Content-Type", content_type);
  for (const auto& h : headers) {
    auto colon = h.find(':');
    std::string value = colon == std::string::npos ? "" : h.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    r.headers.add(h.substr(0, colon), value);
  }
  http::Response answer;
  try {
    answer = on_data ? client_->stream(r, on_data, true) : client_->send(r, true);
  } catch (const http::HttpError& e) {
    if (e.status() != 0) throw;
    if (abort_ != nullptr && abort_->load()) {
      throw Error(Errc::io, fmt::format("docker: {}: cancelled", what));
    }
    throw Error(e.code(), fmt::format("docker: {}: cannot reach the engine at unix://{}: {}", what,
                                      socket_path_, e.server_message()));
  }
  if (ping && answer.status == 200) {
    std::string v = answer.headers.get("Api-Version").value_or("");
    if (v.empty()) v = "1.24";
    version_ = compare_api_versions(v, kMaxApiVersion) > 0 ? kMaxApiVersion : v;
  }
  *error_body = answer.status >= 400 ? std::move(answer.body) : std::string();
  return answer.status;
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
  auto doc = json::parse_object(body, "docker: create container answer");
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
  auto doc = json::parse_object(body, "docker: wait answer");
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
  return json::parse_object(r.body, "docker: inspect container answer");
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
  return json::parse_object(r.body, "docker: inspect image answer");
}

void Engine::remove_image(const std::string& reference, bool force) {
  stream("DELETE", "/images/" + reference + (force ? "?force=1" : ""), "", "application/json",
         {}, {}, "remove image " + reference);
}

json::Document Engine::info() {
  std::string body;
  stream("GET", "/info", "", "application/json", {},
         [&](const char* d, std::size_t n) { body.append(d, n); }, "info");
  return json::parse_object(body, "docker: info answer");
}

}  // namespace docker
}  // namespace launch
