// Internal: Amazon ECR as an image registry. Its registry credentials are
// "AWS" and a GetAuthorizationToken token (12 hours long, cached for its
// lifetime and fetched again before it ends); "does the tag exist" is
// DescribeImages. docker/registry.cpp uses both for ECR hosts, so the
// docker builder's push and its skip-when-present check work unchanged.
#ifndef LAUNCH_SRC_AWS_ECR_HPP
#define LAUNCH_SRC_AWS_ECR_HPP

#include <chrono>
#include <optional>
#include <string>

#include "http/auth.hpp"
#include "util/json.hpp"

namespace launch {
namespace aws {

struct EcrRegistry {
  std::string account;  // 12 digits
  std::string region;
};

// "123456789012.dkr.ecr.us-east-1.amazonaws.com" (also -fips, and .cn)
// -> {account, region}; nullopt for any other host (core/image_uri's
// registry_kind tells).
std::optional<EcrRegistry> parse_ecr_registry(const std::string& host);

// The registry's credentials (username "AWS"), from the cache while the
// token has more than a quarter of its life (at most 5 minutes) left.
// Thread-safe. Throws launch::Error when ECR refuses.
http::RegistryCredentials ecr_credentials(const std::string& host);

// True when `repository` has `tag` (DescribeImages); false for an unknown
// tag or repository.
bool ecr_image_exists(const std::string& host, const std::string& repository,
                      const std::string& tag);

// A GetAuthorizationToken answer read: the first authorizationData's
// user:password (base64) and its expiresAt (epoch seconds; `now` + 1 hour
// without one). Errc::io naming the answer when it holds neither.
struct EcrToken {
  http::RegistryCredentials creds;
  std::chrono::system_clock::time_point expires;
};
EcrToken ecr_token_from_answer(const json::Value& answer,
                               std::chrono::system_clock::time_point now);

// How many tokens were fetched from ECR (tests).
int ecr_token_fetches();

}  // namespace aws
}  // namespace launch

#endif
