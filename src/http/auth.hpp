// Internal: the seam that adds credentials to a request. An Auth sees each
// request just before it goes out (every retry, every same-host redirect)
// and adds headers; a signer such as SigV4 computes them from the method,
// URL, headers and body.
//
// Credentials never follow a redirect to another host: the Client refuses
// such a redirect (see client.hpp).
#ifndef LAUNCH_SRC_HTTP_AUTH_HPP
#define LAUNCH_SRC_HTTP_AUTH_HPP

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "http/client.hpp"

namespace launch {
namespace http {

class Auth {
 public:
  virtual ~Auth() = default;
  // Adds credentials to `request`. Throws launch::Error when it cannot
  // (a token source failed).
  virtual void apply(Outgoing& request) const = 0;
};

// Authorization: Basic base64(user:password).
class BasicAuth : public Auth {
 public:
  BasicAuth(std::string username, std::string password)
      : username_(std::move(username)), password_(std::move(password)) {}
  void apply(Outgoing& request) const override;

 private:
  std::string username_;
  std::string password_;
};

// Authorization: Bearer <token>, a fixed token or one asked of `source` for
// each request (the source caches and refreshes as it sees fit).
class BearerAuth : public Auth {
 public:
  using TokenSource = std::function<std::string()>;
  explicit BearerAuth(std::string token) : token_(std::move(token)) {}
  explicit BearerAuth(TokenSource source) : source_(std::move(source)) {}
  void apply(Outgoing& request) const override;

 private:
  std::string token_;
  TokenSource source_;
};

// A registry's credentials as the docker CLI keeps them.
struct RegistryCredentials {
  std::string username;
  std::string password;
  // An OAuth refresh token for the registry's token server (then username
  // and password are empty).
  std::string identity_token;
};

// The Docker config file: $DOCKER_CONFIG/config.json, else
// ~/.docker/config.json.
std::string docker_config_path();

// "https://index.docker.io/v1/" -> "docker.io"; "http://h:5000/x" -> "h:5000".
std::string normalize_registry(const std::string& server);

// The credentials for `registry` ("127.0.0.1:5000", "docker.io"), looked up
// as the docker CLI does: a credHelpers entry for the registry, else the
// credsStore, runs `docker-credential-<name> get` (the server on stdin,
// {"Username","Secret"} on stdout; Username "<token>" means Secret is an
// identity token); else the "auths" entry ("auth" = base64 of user:password,
// or "username"/"password", and "identitytoken"). nullopt when there are
// none. Errc::invalid naming the file for a malformed file; Errc::io naming
// the helper when a helper fails other than "not found".
std::optional<RegistryCredentials> docker_credentials(const std::string& registry);

// Basic auth with the Docker config's credentials for a registry, looked up
// once, when made. Adds nothing when there are none (or only an identity
// token, which is for the token server: see docker/registry.cpp).
class DockerConfigAuth : public Auth {
 public:
  explicit DockerConfigAuth(const std::string& registry);
  const std::optional<RegistryCredentials>& credentials() const { return credentials_; }
  void apply(Outgoing& request) const override;

 private:
  std::optional<RegistryCredentials> credentials_;
};

}  // namespace http
}  // namespace launch

#endif
