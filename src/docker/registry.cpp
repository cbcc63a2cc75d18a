#include "docker/registry.hpp"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include <curl/curl.h>
#include <fmt/format.h>

#include "util/json.hpp"
#include "docker/engine.hpp"
#include "launch/error.hpp"
#include "util/base64.hpp"

namespace launch {
namespace docker {

// ---- references

std::string ImageRef::str() const {
  std::string out = registry + "/" + repository;
  if (!digest.empty()) return out + "@" + digest;
  return out + ":" + tag;
}

ImageRef parse_image_ref(const std::string& reference) {
  ImageRef ref;
  std::string rest = reference;
  auto at = rest.find('@');
  if (at != std::string::npos) {
    ref.digest = rest.substr(at + 1);
    rest = rest.substr(0, at);
  }
  auto slash = rest.find('/');
  if (slash != std::string::npos) {
    std::string first = rest.substr(0, slash);
    if (first.find('.') != std::string::npos || first.find(':') != std::string::npos ||
        first == "localhost") {
      ref.registry = first;
      rest = rest.substr(slash + 1);
    }
  }
  if (ref.registry.empty()) ref.registry = "docker.io";
  auto colon = rest.rfind(':');
  if (colon != std::string::npos) {
    ref.tag = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
  }
  if (ref.tag.empty() && ref.digest.empty()) ref.tag = "latest";
  if (ref.registry == "docker.io" && rest.find('/') == std::string::npos) {
    rest = "library/" + rest;
  }
  if (rest.empty()) {
    throw Error(Errc::invalid, fmt::format("image \"{}\": no repository name", reference));
  }
  ref.repository = rest;
  return ref;
}

// ---- credentials

namespace {

std::string config_path() {
  const char* dir = std::getenv("DOCKER_CONFIG");
  if (dir != nullptr && *dir != '\0') return std::string(dir) + "/config.json";
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : "") + "/.docker/config.json";
}

// "https://index.docker.io/v1/" -> "docker.io"; "http://h:5000/" -> "h:5000".
std::string normalize_registry(std::string key) {
  auto scheme = key.find("://");
  if (scheme != std::string::npos) key = key.substr(scheme + 3);
  auto slash = key.find('/');
  if (slash != std::string::npos) key = key.substr(0, slash);
  if (key == "index.docker.io" || key == "registry-1.docker.io") key = "docker.io";
  return key;
}

bool is_loopback(const std::string& registry) {
  std::string host = registry;
  if (!host.empty() && host[0] == '[') {
    host = host.substr(1, host.find(']') - 1);
  } else {
    auto colon = host.rfind(':');
    if (colon != std::string::npos) host = host.substr(0, colon);
  }
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

}  // namespace

std::optional<Credentials> registry_credentials(const std::string& registry) {
  std::string path = config_path();
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string what = "docker config " + path;
  auto doc = json::parse_object(ss.str(), what);
  auto auths = doc.FindMember("auths");
  if (auths == doc.MemberEnd() || !auths->value.IsObject()) return std::nullopt;
  std::string want = normalize_registry(registry);
  for (const auto& m : auths->value.GetObject()) {
    if (normalize_registry(m.name.GetString()) != want) continue;
    std::string ctx = what + ": auths." + m.name.GetString();
    Credentials c;
    std::string auth = json::get_string(m.value, "auth", ctx);
    if (!auth.empty()) {
      std::string plain = util::base64_decode(auth);
      auto colon = plain.find(':');
      if (colon == std::string::npos) {
        throw Error(Errc::invalid, fmt::format("{}: field \"auth\" must be base64 of "
                                               "user:password",
                                               ctx));
      }
      c.username = plain.substr(0, colon);
      c.password = plain.substr(colon + 1);
    } else {
      c.username = json::get_string(m.value, "username", ctx);
      c.password = json::get_string(m.value, "password", ctx);
    }
    if (c.username.empty()) return std::nullopt;
    return c;
  }
  return std::nullopt;
}

std::string registry_auth_header(const std::string& registry) {
  auto creds = registry_credentials(registry);
  if (!creds) return "";
  rapidjson::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  d.AddMember("username", json::str(creds->username, a), a);
  d.AddMember("password", json::str(creds->password, a), a);
  d.AddMember("serveraddress", json::str(registry, a), a);
  return util::base64url_encode(json::dump(d), true);
}

// ---- the v2 manifest check

namespace {

struct HttpAnswer {
  long status = 0;
  std::string www_authenticate;
  std::string body;
};

size_t collect_body(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

size_t collect_header(char* data, size_t size, size_t n, void* user) {
  std::string line(data, size * n);
  static const char kName[] = "www-authenticate:";
  if (line.size() > sizeof(kName) - 1) {
    std::string head = line.substr(0, sizeof(kName) - 1);
    for (auto& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (head == kName) {
      std::string v = line.substr(sizeof(kName) - 1);
      auto b = v.find_first_not_of(" \t");
      auto e = v.find_last_not_of(" \t\r\n");
      *static_cast<std::string*>(user) = b == std::string::npos ? "" : v.substr(b, e - b + 1);
    }
  }
  return size * n;
}

HttpAnswer http(const std::string& method, const std::string& url,
                const std::vector<std::string>& headers, const std::string& userpwd) {
  CURL* c = curl_easy_init();
  if (c == nullptr) throw Error(Errc::internal, "registry: curl_easy_init failed");
  HttpAnswer a;
  struct curl_slist* list = nullptr;
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &a.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &a.www_authenticate);
  if (method == "HEAD") curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  if (!userpwd.empty()) {
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(c, CURLOPT_USERPWD, userpwd.c_str());
  }
  CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a.status);
  curl_slist_free_all(list);
  curl_easy_cleanup(c);
  if (rc != CURLE_OK) {
    throw Error(Errc::io, fmt::format("registry: {} {}: {}", method, url, curl_easy_strerror(rc)));
  }
  return a;
}

// Bearer realm="https://auth/token",service="registry",scope="repository:x:pull"
std::map<std::string, std::string> challenge_params(const std::string& header) {
  std::map<std::string, std::string> out;
  auto space = header.find(' ');
  std::string rest = space == std::string::npos ? "" : header.substr(space + 1);
  std::size_t i = 0;
  while (i < rest.size()) {
    auto eq = rest.find('=', i);
    if (eq == std::string::npos) break;
    std::string key = rest.substr(i, eq - i);
    key.erase(0, key.find_first_not_of(" ,"));
    std::string value;
    std::size_t j = eq + 1;
    if (j < rest.size() && rest[j] == '"') {
      auto close = rest.find('"', j + 1);
      value = rest.substr(j + 1, close == std::string::npos ? std::string::npos : close - j - 1);
      j = close == std::string::npos ? rest.size() : close + 1;
    } else {
      auto comma = rest.find(',', j);
      value = rest.substr(j, comma == std::string::npos ? std::string::npos : comma - j);
      j = comma == std::string::npos ? rest.size() : comma;
    }
    out[key] = value;
    i = j + 1;
  }
  return out;
}

}  // namespace

bool registry_has_manifest(const ImageRef& ref) {
  std::string host = ref.registry == "docker.io" ? "registry-1.docker.io" : ref.registry;
  std::string scheme = is_loopback(ref.registry) ? "http" : "https";
  std::string url = fmt::format("{}://{}/v2/{}/manifests/{}", scheme, host, ref.repository,
                                ref.digest.empty() ? ref.tag : ref.digest);
  std::vector<std::string> headers = {
      "Accept: application/vnd.docker.distribution.manifest.v2+json, "
      "application/vnd.docker.distribution.manifest.list.v2+json, "
      "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"};
  auto creds = registry_credentials(ref.registry);
  std::string userpwd = creds ? creds->username + ":" + creds->password : "";
  HttpAnswer a = http("HEAD", url, headers, "");
  if (a.status == 401 && a.www_authenticate.rfind("Bearer", 0) == 0) {
    auto p = challenge_params(a.www_authenticate);
    std::string token_url = p["realm"] + "?service=" + url_encode(p["service"]) +
                            "&scope=" + url_encode(p["scope"].empty()
                                                       ? "repository:" + ref.repository + ":pull"
                                                       : p["scope"]);
    HttpAnswer t = http("GET", token_url, {}, userpwd);
    if (t.status != 200) {
      throw Error(Errc::io, fmt::format("registry {}: token request answered HTTP {}",
                                        ref.registry, t.status));
    }
    auto doc = json::parse_object(t.body, "registry token answer");
    std::string token = json::get_string(doc, "token", "registry token answer");
    if (token.empty()) token = json::get_string(doc, "access_token", "registry token answer");
    headers.push_back("Authorization: Bearer " + token);
    a = http("HEAD", url, headers, "");
  } else if (a.status == 401 && !userpwd.empty()) {
    a = http("HEAD", url, headers, userpwd);
  }
  if (a.status == 200) return true;
  if (a.status == 404) return false;
  throw Error(Errc::io, fmt::format("registry {}: HEAD {} answered HTTP {}", ref.registry, url,
                                    a.status));
}

}  // namespace docker
}  // namespace launch
