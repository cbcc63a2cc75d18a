#include "http/auth.hpp"

#include <cstdlib>
#include <sstream>

#include <fmt/format.h>

#include "launch/error.hpp"
#include "util/base64.hpp"
#include "util/fs.hpp"
#include "util/json.hpp"
#include "util/process.hpp"

namespace launch {
namespace http {

void BasicAuth::apply(Outgoing& request) const {
  request.headers.set("Authorization",
                      "Basic " + util::base64_encode(username_ + ":" + password_));
}

void BearerAuth::apply(Outgoing& request) const {
  std::string token = source_ ? source_() : token_;
  request.headers.set("Authorization", "Bearer " + token);
}

// ---- the Docker config file

std::string docker_config_path() {
  const char* dir = std::getenv("DOCKER_CONFIG");
  if (dir != nullptr && *dir != '\0') return std::string(dir) + "/config.json";
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : "") + "/.docker/config.json";
}

std::string normalize_registry(const std::string& server) {
  std::string key = server;
  auto scheme = key.find("://");
  if (scheme != std::string::npos) key = key.substr(scheme + 3);
  auto slash = key.find('/');
  if (slash != std::string::npos) key = key.substr(0, slash);
  if (key == "index.docker.io" || key == "registry-1.docker.io") key = "docker.io";
  return key;
}

namespace {

// The name a credential helper knows a registry by: Docker Hub's legacy
// index URL, as the docker CLI stores it, else the host as written.
std::string helper_server(const std::string& registry) {
  return normalize_registry(registry) == "docker.io" ? "https://index.docker.io/v1/" : registry;
}

// `docker-credential-<helper> get`, exactly as the docker CLI runs it.
std::optional<RegistryCredentials> from_helper(const std::string& helper,
                                               const std::string& registry) {
  std::string program = "docker-credential-" + helper;
  std::string server = helper_server(registry);
  util::ProcessOptions po;
  po.input = server;
  po.stderr_mode = util::StderrMode::capture;
  po.timeout = std::chrono::milliseconds(60000);
  util::ProcessResult r = util::run_process({program, "get"}, po);
  if (r.status != 0) {
    std::string said = r.out + r.err;
    // The helper protocol's "nothing stored for this server".
    if (said.find("credentials not found") != std::string::npos) return std::nullopt;
    while (!said.empty() && (said.back() == '\n' || said.back() == '\r')) said.pop_back();
    throw Error(Errc::io, fmt::format("docker credential helper {} get {}: exit status {}: {}",
                                      program, server, r.status, said));
  }
  std::string what = fmt::format("docker credential helper {} answer for {}", program, server);
  auto doc = json::parse_object(r.out, what);
  std::string user = json::get_string(doc, "Username", what);
  std::string secret = json::get_string(doc, "Secret", what);
  if (user.empty() && secret.empty()) return std::nullopt;
  RegistryCredentials c;
  if (user == "<token>") {
    c.identity_token = secret;
  } else {
    c.username = user;
    c.password = secret;
  }
  return c;
}

}  // namespace

std::optional<RegistryCredentials> docker_credentials(const std::string& registry) {
  std::string path = docker_config_path();
  std::optional<std::string> text = util::read_file(path);
  if (!text) return std::nullopt;
  std::string what = "docker config " + path;
  auto doc = json::parse_object(*text, what);
  std::string want = normalize_registry(registry);

  // A helper for this registry, else the default store; when one is set the
  // docker CLI asks it alone.
  std::string helper;
  auto helpers = doc.FindMember("credHelpers");
  if (helpers != doc.MemberEnd() && helpers->value.IsObject()) {
    for (const auto& m : helpers->value.GetObject()) {
      if (normalize_registry(m.name.GetString()) != want) continue;
      helper = json::get_string(helpers->value, m.name.GetString(), what + ": credHelpers");
    }
  }
  if (helper.empty()) helper = json::get_string(doc, "credsStore", what);
  if (!helper.empty()) return from_helper(helper, registry);

  auto auths = doc.FindMember("auths");
  if (auths == doc.MemberEnd() || !auths->value.IsObject()) return std::nullopt;
  for (const auto& m : auths->value.GetObject()) {
    if (normalize_registry(m.name.GetString()) != want) continue;
    std::string ctx = what + ": auths." + m.name.GetString();
    RegistryCredentials c;
    std::string auth = json::get_string(m.value, "auth", ctx);
    if (!auth.empty()) {
      std::string plain = util::base64_decode(auth);
      auto colon = plain.find(':');
      if (colon == std::string::npos) {
        throw Error(Errc::invalid,
                    fmt::format("{}: field \"auth\" must be base64 of user:password", ctx));
      }
      c.username = plain.substr(0, colon);
      c.password = plain.substr(colon + 1);
    } else {
      c.username = json::get_string(m.value, "username", ctx);
      c.password = json::get_string(m.value, "password", ctx);
    }
    c.identity_token = json::get_string(m.value, "identitytoken", ctx);
    if (c.username.empty() && c.identity_token.empty()) return std::nullopt;
    return c;
  }
  return std::nullopt;
}

DockerConfigAuth::DockerConfigAuth(const std::string& registry)
    : credentials_(docker_credentials(registry)) {}

void DockerConfigAuth::apply(Outgoing& request) const {
  if (!credentials_ || credentials_->username.empty()) return;
  BasicAuth(credentials_->username, credentials_->password).apply(request);
}

}  // namespace http
}  // namespace launch
