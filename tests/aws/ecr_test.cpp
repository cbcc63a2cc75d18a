// ECR as a registry: GetAuthorizationToken as the registry's credentials
// (cached for the token's lifetime) and DescribeImages as "does the tag
// exist", through the same docker/registry.hpp calls every registry uses.
#include <doctest/doctest.h>

#include "aws/ecr.hpp"
#include "aws_server.hpp"
#include "launch/features.h"
#include "util/base64.hpp"
#if LAUNCH_FEATURE_DOCKER
#include "docker/registry.hpp"
#endif

namespace aws = launch::aws;

namespace {
constexpr const char* kHost = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

int calls_of(const char* op) {
  int n = 0;
  rapidjson::Document state = aws_test::Server::get().state();
  for (const auto& c : state["calls"].GetArray()) {
    n += std::string(c.GetString()) == op;
  }
  return n;
}
}  // namespace

TEST_CASE("ECR hosts are recognised, and nothing else") {
  auto r = aws::parse_ecr_registry(kHost);
  REQUIRE(r.has_value());
  CHECK(r->account == "123456789012");
  CHECK(r->region == "us-east-1");
  CHECK(aws::parse_ecr_registry("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com"));
  CHECK(aws::parse_ecr_registry("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"));
  CHECK_FALSE(aws::parse_ecr_registry("127.0.0.1:5000"));
  CHECK_FALSE(aws::parse_ecr_registry("12345.dkr.ecr.us-east-1.amazonaws.com"));
  CHECK_FALSE(aws::parse_ecr_registry("europe-docker.pkg.dev"));
}

TEST_CASE("ECR credentials: AWS and the authorization token, fetched once for its lifetime") {
  aws_test::WithKeys env;
  int before = calls_of("ecr.GetAuthorizationToken");
  auto c = aws::ecr_credentials(kHost);
  CHECK(c.username == "AWS");
  CHECK(c.password.size() == 64);
  auto again = aws::ecr_credentials(kHost);
  CHECK(again.password == c.password);
  CHECK(calls_of("ecr.GetAuthorizationToken") == before + 1);
#if LAUNCH_FEATURE_DOCKER
  // The engine's X-Registry-Auth for a push carries them, no docker login.
  std::string header = launch::docker::registry_auth_header(kHost);
  for (char& ch : header) ch = ch == '-' ? '+' : ch == '_' ? '/' : ch;
  std::string json = launch::util::base64_decode(header);
  CHECK(json.find("\"username\":\"AWS\"") != std::string::npos);
  CHECK(json.find(c.password) != std::string::npos);
  CHECK(calls_of("ecr.GetAuthorizationToken") == before + 1);
#endif
}

TEST_CASE("ECR: does the tag exist, by DescribeImages") {
  aws_test::WithKeys env;
  env.server.post("/_test/config", R"({"images": {"team/train": {"v1": "sha256:)" +
                                       std::string(64, 'a') + R"("}}})");
  CHECK(aws::ecr_image_exists(kHost, "team/train", "v1"));
  CHECK_FALSE(aws::ecr_image_exists(kHost, "team/train", "v2"));
  CHECK_FALSE(aws::ecr_image_exists(kHost, "team/none", "v1"));
#if LAUNCH_FEATURE_DOCKER
  auto ref = launch::docker::parse_image_ref(std::string(kHost) + "/team/train:v1");
  CHECK(launch::docker::registry_has_manifest(ref));
  ref.tag = "v9";
  CHECK_FALSE(launch::docker::registry_has_manifest(ref));
#endif
  CHECK(env.server.state()["invalid"].Size() == 0);
}
