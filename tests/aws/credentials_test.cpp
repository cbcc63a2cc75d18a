// AWS credentials from each source, against the test server (server.py),
// which checks every signature with botocore's signer.
#include <doctest/doctest.h>

#include <fstream>
#include <thread>

#include "aws_server.hpp"
#include "http/aws_credentials.hpp"
#include "http/client.hpp"
#include "launch/error.hpp"
#include "support/temp_dir.hpp"

namespace http = launch::http;
using aws_test::EnvScope;

namespace {

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

// The caller's ARN, as STS GetCallerIdentity reports it.
std::string caller_arn(const std::shared_ptr<http::AwsCredentialsProvider>& p) {
  http::Request r;
  r.method = "POST";
  r.url = http::aws_endpoint("STS", "sts", "us-east-1") + "/";
  r.headers.set("Content-Type", "application/x-www-form-urlencoded");
  r.body = "Action=GetCallerIdentity&Version=2011-06-15";
  http::SigV4Options o;
  o.region = "us-east-1";
  o.service = "sts";
  r.auth = std::make_shared<http::SigV4Auth>(p, o);
  http::Client c;
  return http::aws_xml_text(c.send(r).body, "Arn").value_or("");
}

int issued(const char* kind) {
  return aws_test::Server::get().state()["issued"][kind].GetInt();
}

}  // namespace

TEST_CASE("endpoints: AWS_ENDPOINT_URL_<SERVICE>, then AWS_ENDPOINT_URL, then AWS's") {
  EnvScope all{"AWS_ENDPOINT_URL", nullptr};
  EnvScope sm{"AWS_ENDPOINT_URL_SAGEMAKER", nullptr};
  CHECK(http::aws_endpoint("SAGEMAKER", "api.sagemaker", "eu-west-1") ==
        "https://api.sagemaker.eu-west-1.amazonaws.com");
  EnvScope all2{"AWS_ENDPOINT_URL", "http://127.0.0.1:9/"};
  CHECK(http::aws_endpoint("SAGEMAKER", "api.sagemaker", "eu-west-1") == "http://127.0.0.1:9");
  EnvScope sm2{"AWS_ENDPOINT_URL_SAGEMAKER", "http://127.0.0.1:10"};
  CHECK(http::aws_endpoint("SAGEMAKER", "api.sagemaker", "eu-west-1") == "http://127.0.0.1:10");
  CHECK(http::aws_endpoint("STS", "sts", "eu-west-1") == "http://127.0.0.1:9");
}

TEST_CASE("environment keys sign requests botocore accepts; a wrong secret gets 403") {
  aws_test::WithKeys env;
  auto p = http::default_aws_credentials();
  CHECK(p->describe().find("environment") != std::string::npos);
  CHECK(http::aws_account_id(p, "us-east-1") == "123456789012");
  CHECK(caller_arn(p) == "arn:aws:iam::123456789012:user/launch-test");

  EnvScope bad{"AWS_SECRET_ACCESS_KEY", "not-the-secret"};
  auto wrong = http::default_aws_credentials();
  try {
    http::aws_account_id(wrong, "us-east-1");
    FAIL("a wrong signature was accepted");
  } catch (const http::HttpError& e) {
    CHECK(e.status() == 403);
    CHECK(std::string(e.what()).find("signature we calculated does not match") !=
          std::string::npos);
  }
}

TEST_CASE("a lone AWS_ACCESS_KEY_ID is an error naming the missing variable") {
  aws_test::Environment env;
  EnvScope key{"AWS_ACCESS_KEY_ID", "AKID"};
  CHECK_THROWS_WITH(http::default_aws_credentials(), doctest::Contains("AWS_SECRET_ACCESS_KEY"));
}

TEST_CASE("no source at all is an error naming what was tried") {
  aws_test::Environment env;
  CHECK_THROWS_WITH(http::default_aws_credentials(), doctest::Contains("AWS_WEB_IDENTITY_TOKEN_FILE"));
}

TEST_CASE("profiles: static keys, and role_arn + source_profile through STS AssumeRole") {
  aws_test::Environment env;
  launch_test::TempDir dir("launch-aws-profile");
  write_file(dir / "credentials", std::string("[base]\naws_access_key_id = ") + aws_test::kAccessKey +
                                      "\naws_secret_access_key = " + aws_test::kSecretKey + "\n");
  write_file(dir / "config",
             "[default]\nregion = us-east-1\n\n[profile base]\nregion = us-east-1\n\n"
             "[profile ml]\nrole_arn = arn:aws:iam::123456789012:role/launch-agent\n"
             "source_profile = base\nrole_session_name = agent-7\n"
             "[profile loop]\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = loop2\n"
             "[profile loop2]\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = loop\n");
  EnvScope cfg{"AWS_CONFIG_FILE", dir / "config"};
  EnvScope crd{"AWS_SHARED_CREDENTIALS_FILE", dir / "credentials"};

  {
    EnvScope profile{"AWS_PROFILE", "base"};
    auto p = http::default_aws_credentials();
    CHECK(p->describe() == "profile base");
    CHECK(caller_arn(p) == "arn:aws:iam::123456789012:user/launch-test");
  }
  {
    EnvScope profile{"AWS_PROFILE", "ml"};
    int before = issued("sts");
    auto p = http::default_aws_credentials();
    CHECK(caller_arn(p) == "arn:aws:sts::123456789012:assumed-role/launch-agent/agent-7");
    CHECK(issued("sts") == before + 1);
  }
  {
    EnvScope profile{"AWS_PROFILE", "loop"};
    CHECK_THROWS_WITH(http::default_aws_credentials(), doctest::Contains("loop"));
  }
  {
    EnvScope profile{"AWS_PROFILE", "missing"};
    CHECK_THROWS_WITH(http::default_aws_credentials(), doctest::Contains("\"missing\""));
  }
}

TEST_CASE("web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, as EKS sets them") {
  aws_test::Environment env;
  launch_test::TempDir dir("launch-aws-web");
  write_file(dir / "token", std::string(aws_test::kWebToken) + "\n");
  EnvScope file{"AWS_WEB_IDENTITY_TOKEN_FILE", dir / "token"};
  EnvScope role{"AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/irsa-role"};
  EnvScope session{"AWS_ROLE_SESSION_NAME", "pod-1"};
  int before = issued("web");
  auto p = http::default_aws_credentials();
  CHECK(caller_arn(p) == "arn:aws:sts::123456789012:assumed-role/irsa-role/pod-1");
  CHECK(issued("web") == before + 1);

  write_file(dir / "token", "a-token-the-server-refuses");
  auto refused = http::default_aws_credentials();
  CHECK_THROWS_WITH(caller_arn(refused), doctest::Contains("web identity token is not valid"));
}

TEST_CASE("container credentials: AWS_CONTAINER_CREDENTIALS_FULL_URI with its token file") {
  aws_test::Environment env;
  launch_test::TempDir dir("launch-aws-container");
  write_file(dir / "token", aws_test::kContainerToken);
  EnvScope uri{"AWS_CONTAINER_CREDENTIALS_FULL_URI", env.server.url("/container-credentials")};
  EnvScope tok{"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", dir / "token"};
  auto p = http::default_aws_credentials();
  CHECK(caller_arn(p) == "arn:aws:sts::123456789012:assumed-role/launch-test-role/task");

  write_file(dir / "token", "wrong");
  auto refused = http::aws_container_credentials();
  CHECK_THROWS_WITH(refused->credentials(), doctest::Contains("401"));
}

TEST_CASE("EC2 IMDSv2: a session token first, then the role's credentials") {
  aws_test::Environment env;
  EnvScope on{"AWS_EC2_METADATA_DISABLED", nullptr};
  EnvScope at{"AWS_EC2_METADATA_SERVICE_ENDPOINT", env.server.url()};
  auto p = http::default_aws_credentials();
  CHECK(p->describe().find("EC2 instance metadata") != std::string::npos);
  CHECK(caller_arn(p) == "arn:aws:sts::123456789012:assumed-role/launch-test-role/i-0123");
}

TEST_CASE("2-second credentials are refreshed before they expire, so no request is refused") {
  aws_test::Environment env;
  launch_test::TempDir dir("launch-aws-refresh");
  write_file(dir / "token", aws_test::kContainerToken);
  EnvScope uri{"AWS_CONTAINER_CREDENTIALS_FULL_URI", env.server.url("/container-credentials")};
  EnvScope tok{"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", dir / "token"};
  env.server.set_lifetime(2);
  auto p = std::dynamic_pointer_cast<http::RefreshingAwsCredentials>(http::aws_container_credentials());
  REQUIRE(p != nullptr);
  std::size_t denied_before = env.server.state()["denied"].Size();
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  int calls = 0;
  while (std::chrono::steady_clock::now() < end) {
    CHECK(caller_arn(p).find("assumed-role") != std::string::npos);
    ++calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  env.server.set_lifetime(3600);
  CHECK(calls > 10);
  // 5 s of 2-second credentials: fetched at least 3 times, never refused.
  CHECK(p->fetches() >= 3);
  CHECK(env.server.state()["denied"].Size() == denied_before);
}

TEST_CASE("a default profile with only a region leaves the chain to the next source") {
  aws_test::Environment env;
  launch_test::TempDir dir("launch-aws-region-only");
  write_file(dir / "config", "[default]\nregion = us-east-1\n");
  write_file(dir / "token", aws_test::kContainerToken);
  EnvScope cfg{"AWS_CONFIG_FILE", dir / "config"};
  EnvScope uri{"AWS_CONTAINER_CREDENTIALS_FULL_URI", env.server.url("/container-credentials")};
  EnvScope tok{"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", dir / "token"};
  auto p = http::default_aws_credentials();
  CHECK(p->describe().find("container credentials") != std::string::npos);
}

TEST_CASE("a failed refresh keeps the credentials in hand until they expire") {
  aws_test::Environment env;
  launch_test::TempDir dir("launch-aws-refresh-fail");
  write_file(dir / "token", aws_test::kContainerToken);
  EnvScope uri{"AWS_CONTAINER_CREDENTIALS_FULL_URI", env.server.url("/container-credentials")};
  EnvScope tok{"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", dir / "token"};
  env.server.set_lifetime(3);  // 2 to 3 s, as the server sends whole seconds
  auto p = http::aws_container_credentials();
  auto first = p->credentials();
  env.server.set_lifetime(3600);
  write_file(dir / "token", "revoked");
  // Past the refresh point (a quarter of the life, >= 0.5 s, before the
  // expiry), before the expiry.
  std::this_thread::sleep_until(*first.expiration - std::chrono::milliseconds(300));
  CHECK(p->credentials().access_key_id == first.access_key_id);
  std::this_thread::sleep_until(*first.expiration + std::chrono::milliseconds(100));
  CHECK_THROWS_WITH(p->credentials(), doctest::Contains("401"));
}
