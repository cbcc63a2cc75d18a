// Internal: the one parser of image references and registry URIs. The
// agent's config (builder.destination, registry.uri), the Docker client
// (docker/registry) and ECR's credentials (aws/ecr) all read images through
// it, so each registry kind is recognised in one place:
//
//   ecr      <12-digit account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]/<repository>
//   gar      <region>-docker.pkg.dev/<project>/<repository>/<image>
//   acr      <name>.azurecr.io/<repository>
//   generic  any other registry (host[:port]), or Docker Hub when the
//            reference names no registry
//
// The grammar is Docker's: the first path component is a registry when it
// holds a '.' or a ':' or is "localhost"; path components are lowercase
// letters and digits separated by '.', '_', '__' or dashes; a tag is up to
// 128 of [A-Za-z0-9_.-] and does not start with '.' or '-'; a digest is
// ALGORITHM:HEX.
#ifndef LAUNCH_SRC_CORE_IMAGE_URI_HPP
#define LAUNCH_SRC_CORE_IMAGE_URI_HPP

#include <optional>
#include <string>

namespace launch {

enum class RegistryKind { generic, ecr, gar, acr };
const char* to_string(RegistryKind kind);

struct ImageUri {
  RegistryKind kind = RegistryKind::generic;
  std::string registry;    // host[:port]; "docker.io" when the text names none
  std::string repository;  // the path under the registry
  std::string tag;         // "" when none was given
  std::string digest;      // "sha256:..." when given with '@'
  // What the registry's host (and, for GAR, the path) says:
  std::string account;     // ecr: the 12-digit account
  std::string region;      // ecr, gar: the region
  std::string project;     // gar: the project
  std::string name;        // acr: the registry's name

  // registry/repository[:tag][@digest]
  std::string str() const;
};

// ECR, GAR, ACR or generic, from a host alone ("host[:port]"); fills the
// host's parts (account, region, name) into `out` when given.
RegistryKind registry_kind(const std::string& host, ImageUri* out = nullptr);

// An image reference as `docker pull` takes it ("busybox",
// "127.0.0.1:5000/team/app:v1", "ghcr.io/o/app@sha256:..."). Without a
// registry it is Docker Hub's, "library/" added to one-part names. The tag
// stays "" when none is given. Errc::invalid naming `what` and the text
// when it is no image reference.
ImageUri parse_image_uri(const std::string& text, const std::string& what = "image");

// A repository images are pushed to (builder.destination, registry.uri),
// by W&B Launch's rules: an "https://" prefix and a trailing '/' are
// dropped; no tag or digest (the builder tags each image with its content
// hash); ECR and ACR need a repository, GAR needs
// <project>/<repository>/<image>. Errc::invalid naming `what` (the key) and
// the text. The result's str() is the normalised URI.
ImageUri parse_repository_uri(const std::string& text, const std::string& what);

}  // namespace launch

#endif
