// core/image_uri: the one parser of image references and registry URIs.
#include <doctest/doctest.h>

#include "core/image_uri.hpp"
#include "launch/error.hpp"

using launch::Errc;
using launch::Error;
using launch::ImageUri;
using launch::RegistryKind;
using launch::parse_image_uri;
using launch::parse_repository_uri;

namespace {

std::string refusal(const std::string& text, const std::string& what = "builder.destination") {
  try {
    parse_repository_uri(text, what);
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid);
    return e.what();
  }
  FAIL("accepted " << text);
  return "";
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("image uri: docker's references") {
  ImageUri u = parse_image_uri("127.0.0.1:5000/team/app:v1");
  CHECK(u.registry == "127.0.0.1:5000");
  CHECK(u.repository == "team/app");
  CHECK(u.tag == "v1");
  CHECK(u.kind == RegistryKind::generic);
  u = parse_image_uri("busybox");
  CHECK(u.registry == "docker.io");
  CHECK(u.repository == "library/busybox");
  CHECK(u.tag.empty());
  u = parse_image_uri("localhost/app@sha256:abc");
  CHECK(u.registry == "localhost");
  CHECK(u.digest == "sha256:abc");
  CHECK(u.str() == "localhost/app@sha256:abc");
  u = parse_image_uri("[::1]:5000/a__b/c-d.e:1.0-rc_1");
  CHECK(u.registry == "[::1]:5000");
  CHECK(u.repository == "a__b/c-d.e");
  CHECK(u.tag == "1.0-rc_1");
  CHECK_THROWS_WITH_AS(parse_image_uri("Busybox"), doctest::Contains("image \"Busybox\""), Error);
  CHECK_THROWS_AS(parse_image_uri(""), Error);
  CHECK_THROWS_AS(parse_image_uri("a b"), Error);
  CHECK_THROWS_AS(parse_image_uri("app:"), Error);
  CHECK_THROWS_AS(parse_image_uri("app:-x"), Error);
  CHECK_THROWS_AS(parse_image_uri("a//b"), Error);
  CHECK_THROWS_AS(parse_image_uri("a/b@sha256:"), Error);
  CHECK_THROWS_AS(parse_image_uri("ex_ample.com/a"), Error);
  CHECK_THROWS_AS(parse_image_uri("host:port/a"), Error);
}

TEST_CASE("image uri: ECR, GAR and ACR are recognised from the host") {
  ImageUri u = parse_image_uri("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/train:v1");
  CHECK(u.kind == RegistryKind::ecr);
  CHECK(u.account == "123456789012");
  CHECK(u.region == "us-east-1");
  CHECK(u.repository == "team/train");
  CHECK(launch::registry_kind("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com") ==
        RegistryKind::ecr);
  CHECK(launch::registry_kind("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn") ==
        RegistryKind::ecr);
  CHECK(launch::registry_kind("12345.dkr.ecr.us-east-1.amazonaws.com") == RegistryKind::generic);
  u = parse_image_uri("europe-west4-docker.pkg.dev/proj/repo/img:1");
  CHECK(u.kind == RegistryKind::gar);
  CHECK(u.region == "europe-west4");
  CHECK(u.project == "proj");
  CHECK(launch::registry_kind("docker.pkg.dev") == RegistryKind::generic);
  CHECK(launch::registry_kind("a.b-docker.pkg.dev") == RegistryKind::generic);
  u = parse_image_uri("myreg.azurecr.io/team/app");
  CHECK(u.kind == RegistryKind::acr);
  CHECK(u.name == "myreg");
  CHECK(launch::registry_kind("a.b.azurecr.io") == RegistryKind::generic);
  CHECK(launch::registry_kind("ghcr.io") == RegistryKind::generic);
}

TEST_CASE("image uri: repositories to push to follow W&B's rules") {
  CHECK(parse_repository_uri("https://123456789012.dkr.ecr.us-east-1.amazonaws.com/repo/", "k")
            .str() == "123456789012.dkr.ecr.us-east-1.amazonaws.com/repo");
  CHECK(parse_repository_uri("us-central1-docker.pkg.dev/p/r/image", "k").kind ==
        RegistryKind::gar);
  CHECK(parse_repository_uri("jobs", "k").str() == "jobs");
  CHECK(parse_repository_uri("team/jobs", "k").registry.empty());
  CHECK(has(refusal("127.0.0.1:5000/jobs:v1"), "builder.destination \"127.0.0.1:5000/jobs:v1\": has the tag \"v1\""));
  CHECK(has(refusal("ghcr.io/a/b@sha256:00ff"), "has the digest"));
  CHECK(has(refusal("us-central1-docker.pkg.dev/p/r", "registry.uri"),
            "registry.uri \"us-central1-docker.pkg.dev/p/r\": names no image"));
  CHECK(has(refusal("https://myreg.azurecr.io"), "names a registry but no repository"));
  CHECK(has(refusal("123456789012.dkr.ecr.us-east-1.amazonaws.com/"), "no repository"));
  CHECK(has(refusal("s3://bucket/x"), "is no image URI"));
  CHECK(has(refusal("http://ghcr.io/a"), "is no image URI"));
  CHECK(has(refusal("my images"), "is no image URI"));
  CHECK(has(refusal(""), "is empty"));
}
