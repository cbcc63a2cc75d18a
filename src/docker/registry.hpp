// Internal: what the Docker builders need from image registries: image
// references, credentials from the Docker config file, the engine's
// X-Registry-Auth header, and a registry v2 check for "is this tag there".
#ifndef LAUNCH_SRC_DOCKER_REGISTRY_HPP
#define LAUNCH_SRC_DOCKER_REGISTRY_HPP

#include <map>
#include <optional>
#include <string>

#include "http/auth.hpp"

namespace launch {
namespace docker {

// "127.0.0.1:5000/team/app:v1" -> registry "127.0.0.1:5000", repository
// "team/app", tag "v1". Without a registry part it is Docker Hub
// ("docker.io", "library/" added to one-part names); no tag is "latest".
struct ImageRef {
  std::string registry;
  std::string repository;
  std::string tag;
  std::string digest;  // "sha256:..." when given with @
  std::string str() const;  // registry/repository:tag (or @digest)
};
ImageRef parse_image_ref(const std::string& reference);

using Credentials = http::RegistryCredentials;

// The credentials for `registry` from the Docker config file, as the docker
// CLI finds them (credential helpers, the store, "auths"): see
// http::docker_credentials. nullopt when none.
std::optional<Credentials> registry_credentials(const std::string& registry);

// The engine's X-Registry-Auth value (base64url JSON: username and password,
// or an identity token), "" for anonymous.
std::string registry_auth_header(const std::string& registry);

// True when the registry already has `ref` (HEAD /v2/<repo>/manifests/<tag>),
// anonymously or with the config file's credentials (basic, or a bearer
// token from the registry's realm). Loopback registries are spoken to over
// http, others over https. Errc::io when the registry cannot be asked.
bool registry_has_manifest(const ImageRef& ref);

// What registry_has_manifest() reads from a registry's answers, apart for
// the fuzz harness: the parameters of a WWW-Authenticate challenge
// (`Bearer realm="...",service="...",scope="..."`), and the bearer token of
// a token server's JSON answer ("token", else "access_token"; "" when
// neither; Errc::invalid for an answer that is not a JSON object).
std::map<std::string, std::string> challenge_params(const std::string& header);
std::string token_from_answer(const std::string& body);

}  // namespace docker
}  // namespace launch

#endif
