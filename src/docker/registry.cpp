#include "docker/registry.hpp"

#include <map>
#include <memory>

#include <fmt/format.h>

#include "core/image_uri.hpp"
#include "http/auth.hpp"
#include "launch/features.h"
#if LAUNCH_FEATURE_AWS
#include "aws/ecr.hpp"
#endif
#include "http/client.hpp"
#include "launch/error.hpp"
#include "util/base64.hpp"
#include "util/json.hpp"

namespace launch {
namespace docker {

// ---- references

std::string ImageRef::str() const {
  std::string out = registry + "/" + repository;
  if (!digest.empty()) return out + "@" + digest;
  return out + ":" + tag;
}

ImageRef parse_image_ref(const std::string& reference) {
  ImageUri u = parse_image_uri(reference);
  ImageRef ref;
  ref.registry = u.registry;
  ref.repository = u.repository;
  ref.tag = u.tag;
  ref.digest = u.digest;
  if (ref.tag.empty() && ref.digest.empty()) ref.tag = "latest";
  return ref;
}

// ---- credentials

namespace {

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
#if LAUNCH_FEATURE_AWS
  // ECR: "AWS" and a GetAuthorizationToken token, no docker login needed.
  if (aws::parse_ecr_registry(registry)) return aws::ecr_credentials(registry);
#endif
  return http::docker_credentials(registry);
}

std::string registry_auth_header(const std::string& registry) {
  auto creds = registry_credentials(registry);
  if (!creds) return "";
  rapidjson::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  if (!creds->identity_token.empty()) {
    d.AddMember("identitytoken", json::str(creds->identity_token, a), a);
  } else {
    d.AddMember("username", json::str(creds->username, a), a);
    d.AddMember("password", json::str(creds->password, a), a);
  }
  d.AddMember("serveraddress", json::str(registry, a), a);
  return util::base64url_encode(json::dump(d), true);
}

// ---- the v2 manifest check

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

std::string token_from_answer(const std::string& body) {
  auto doc = json::parse_object(body, "registry token answer");
  std::string token = json::get_string(doc, "token", "registry token answer");
  if (token.empty()) token = json::get_string(doc, "access_token", "registry token answer");
  return token;
}

namespace {

// A bearer token from the registry's token server (the realm of its
// challenge), with the config's credentials when there are any: an identity
// token is an OAuth refresh token (POST), a user and password go as Basic.
std::string registry_token(http::Client& client, const ImageRef& ref,
                           const std::string& challenge,
                           const std::optional<Credentials>& creds) {
  auto p = challenge_params(challenge);
  std::string scope = p["scope"].empty() ? "repository:" + ref.repository + ":pull" : p["scope"];
  http::Request t;
  if (creds && !creds->identity_token.empty()) {
    t.method = "POST";
    t.url = p["realm"];
    t.headers.add("Content-Type", "application/x-www-form-urlencoded");
    t.body = "grant_type=refresh_token&client_id=launch&service=" + http::url_encode(p["service"]) +
             "&scope=" + http::url_encode(scope) +
             "&refresh_token=" + http::url_encode(creds->identity_token);
  } else {
    t.url = p["realm"] + "?service=" + http::url_encode(p["service"]) +
            "&scope=" + http::url_encode(scope);
    if (creds) t.auth = std::make_shared<http::BasicAuth>(creds->username, creds->password);
  }
  http::Response answer = client.send(t, true);
  if (answer.status != 200) {
    throw Error(Errc::io, fmt::format("registry {}: token request answered HTTP {}", ref.registry,
                                      answer.status));
  }
  return token_from_answer(answer.body);
}

}  // namespace

bool registry_has_manifest(const ImageRef& ref) {
#if LAUNCH_FEATURE_AWS
  if (ref.digest.empty() && aws::parse_ecr_registry(ref.registry)) {
    return aws::ecr_image_exists(ref.registry, ref.repository, ref.tag);
  }
#endif
  std::string host = ref.registry == "docker.io" ? "registry-1.docker.io" : ref.registry;
  std::string scheme = is_loopback(ref.registry) ? "http" : "https";
  http::Request head;
  head.method = "HEAD";
  head.url = fmt::format("{}://{}/v2/{}/manifests/{}", scheme, host, ref.repository,
                         ref.digest.empty() ? ref.tag : ref.digest);
  head.headers.add("Accept",
                   "application/vnd.docker.distribution.manifest.v2+json, "
                   "application/vnd.docker.distribution.manifest.list.v2+json, "
                   "application/vnd.oci.image.manifest.v1+json, "
                   "application/vnd.oci.image.index.v1+json");
  http::ClientOptions options;
  options.timeout_ms = 60000;
  http::Client client(options);
  auto creds = registry_credentials(ref.registry);
  http::Response a = client.send(head, true);
  std::string challenge = a.headers.get("WWW-Authenticate").value_or("");
  if (a.status == 401 && challenge.rfind("Bearer", 0) == 0) {
    head.auth = std::make_shared<http::BearerAuth>(registry_token(client, ref, challenge, creds));
    a = client.send(head, true);
  } else if (a.status == 401 && creds && !creds->username.empty()) {
    head.auth = std::make_shared<http::BasicAuth>(creds->username, creds->password);
    a = client.send(head, true);
  }
  if (a.status == 200) return true;
  if (a.status == 404) return false;
  throw Error(Errc::io, fmt::format("registry {}: HEAD {} answered HTTP {}", ref.registry,
                                    a.url, a.status));
}

}  // namespace docker
}  // namespace launch
