// GCP credentials against the test server: each ADC source found, its
// tokens accepted by the API and refreshed before they expire, and the
// errors naming the file and field.
#include <doctest/doctest.h>

#include <fstream>
#include <thread>

#include "gcp_server.hpp"
#include "http/gcp_credentials.hpp"
#include "launch/error.hpp"

using namespace launch;
using gcp_test::EnvScope;

namespace {

int issued(const char* source) {
  return gcp_test::Server::get().state()["issued"][source].GetInt();
}

// A call the API answers only for a valid token.
long list_jobs(const std::shared_ptr<http::GcpCredentials>& creds) {
  http::Client c;
  http::Request r;
  r.url = gcp_test::Server::get().url(
      "/v1/projects/launch-test-project/locations/us-central1/customJobs");
  r.auth = creds;
  return c.send(r, true).status;
}

}  // namespace

TEST_CASE("gcp: a service account key in GOOGLE_APPLICATION_CREDENTIALS: a signed JWT, a token") {
  gcp_test::WithServiceAccount env;
  gcp_test::NothingWrong clean;
  int before = issued("service_account");
  auto creds = http::default_gcp_credentials();
  CHECK(creds->describe().find("service account key") != std::string::npos);
  CHECK(creds->project() == "launch-test-project");
  CHECK(list_jobs(creds) == 200);
  CHECK(list_jobs(creds) == 200);
  CHECK(issued("service_account") == before + 1);  // cached
  clean.check();
}

TEST_CASE("gcp: a JWT signed with a key the server does not know is refused, naming the file") {
  gcp_test::Environment env;
  std::string path = env.service_account_file("rogue_key");
  auto creds = http::gcp_key_file_credentials(path);
  CHECK_THROWS_WITH(creds->token(), doctest::Contains("Invalid JWT Signature"));
  CHECK_THROWS_WITH(creds->token(), doctest::Contains(path.c_str()));
}

TEST_CASE("gcp: gcloud's ADC file with a user's refresh token") {
  gcp_test::Environment env;
  gcp_test::NothingWrong clean;
  env.authorized_user_file();
  int before = issued("authorized_user");
  auto creds = http::default_gcp_credentials();
  CHECK(creds->describe().find("authorized user") != std::string::npos);
  CHECK(creds->project() == "launch-test-project");  // quota_project_id
  CHECK(list_jobs(creds) == 200);
  CHECK(issued("authorized_user") == before + 1);
  clean.check();
}

TEST_CASE("gcp: a revoked refresh token: the token endpoint's error, naming the file") {
  gcp_test::Environment env;
  std::string path = env.authorized_user_file("1//revoked");
  auto creds = http::default_gcp_credentials();
  CHECK_THROWS_WITH(creds->token(), doctest::Contains("invalid_grant: Token has been expired or "
                                                      "revoked"));
  CHECK_THROWS_WITH(creds->token(), doctest::Contains(path.c_str()));
}

TEST_CASE("gcp: no key file: the metadata server's token and project") {
  gcp_test::Environment env;
  gcp_test::NothingWrong clean;
  int before = issued("metadata");
  auto creds = http::default_gcp_credentials();
  CHECK(creds->describe().find("metadata server") != std::string::npos);
  CHECK(creds->project() == "launch-meta-project");
  CHECK(list_jobs(creds) == 200);
  CHECK(issued("metadata") == before + 1);
  clean.check();
}

TEST_CASE("gcp: nothing to be found says where it looked") {
  gcp_test::Environment env;
  EnvScope nowhere{"GCE_METADATA_HOST", "127.0.0.1:1"};
  auto creds = http::default_gcp_credentials();
  CHECK_THROWS_WITH(creds->token(), doctest::Contains("GOOGLE_APPLICATION_CREDENTIALS is unset"));
  CHECK_THROWS_WITH(creds->token(), doctest::Contains(http::gcp_adc_path().c_str()));
  CHECK_THROWS_WITH(creds->token(), doctest::Contains("the GCE metadata server http://127.0.0.1:1"));
}

TEST_CASE("gcp: a 2-second token is refreshed before it expires, never used expired") {
  gcp_test::Environment env;
  gcp_test::NothingWrong clean;
  std::unique_ptr<EnvScope> adc;
  const char* source = "metadata";
  SUBCASE("service account") {
    adc = std::make_unique<EnvScope>("GOOGLE_APPLICATION_CREDENTIALS", env.service_account_file());
    source = "service_account";
  }
  SUBCASE("authorized user") {
    env.authorized_user_file();
    source = "authorized_user";
  }
  SUBCASE("metadata server") {}
  env.server.set_lifetime(2);
  int before = issued(source);
  auto creds = http::default_gcp_credentials();
  std::string first = creds->token();
  CHECK(creds->token() == first);
  CHECK(creds->fetches() == 1);
  // Every 100 ms for 4 s: renewed at 1.5 s of 2, so never refused.
  for (int i = 0; i < 40; ++i) {
    CHECK(list_jobs(creds) == 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  env.server.set_lifetime(3600);
  CHECK(creds->token() != first);
  CHECK(creds->fetches() >= 3);
  CHECK(issued(source) - before == creds->fetches());  // from the source this test meant
  clean.check();
}

TEST_CASE("gcp: threads asking at once share one fetch") {
  gcp_test::WithServiceAccount env;
  auto creds = http::default_gcp_credentials();
  std::vector<std::thread> threads;
  std::vector<std::string> tokens(8);
  for (int i = 0; i < 8; ++i) threads.emplace_back([&, i] { tokens[i] = creds->token(); });
  for (auto& t : threads) t.join();
  CHECK(creds->fetches() == 1);
  for (const auto& t : tokens) CHECK(t == tokens[0]);
}

TEST_CASE("gcp: a bad key file is refused naming the file and the field") {
  gcp_test::Environment env;
  std::string path = env.gcloud / "bad.json";
  auto write = [&](const std::string& text) { std::ofstream(path) << text; };
  write(R"({"type": "service_account", "private_key": "x", "token_uri": "http://127.0.0.1:1/"})");
  CHECK_THROWS_WITH(http::gcp_key_file_credentials(path),
                    doctest::Contains((path + ": client_email is missing").c_str()));
  write(R"({"type": "service_account", "client_email": "a@b", "private_key": 5})");
  CHECK_THROWS_WITH(http::gcp_key_file_credentials(path),
                    doctest::Contains((path + ": private_key must be a string").c_str()));
  write(R"({"type": "service_account", "client_email": "a@b", "private_key": "not pem"})");
  CHECK_THROWS_WITH(http::gcp_key_file_credentials(path)->token(),
                    doctest::Contains("private_key is not a PEM private key"));
  write(R"({"type": "external_account"})");
  CHECK_THROWS_WITH(http::gcp_key_file_credentials(path),
                    doctest::Contains((path + ": type \"external_account\" is not supported").c_str()));
  write(R"({"type": "authorized_user", "client_id": "c", "client_secret": "s"})");
  CHECK_THROWS_WITH(http::gcp_key_file_credentials(path),
                    doctest::Contains((path + ": refresh_token is missing").c_str()));
  write("{not json");
  CHECK_THROWS_WITH(http::gcp_key_file_credentials(path), doctest::Contains(path.c_str()));
  EnvScope missing{"GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/key.json"};
  CHECK_THROWS_WITH(http::default_gcp_credentials(),
                    doctest::Contains("GOOGLE_APPLICATION_CREDENTIALS names /nonexistent/key.json"));
}

TEST_CASE("gcp: the JWT's claims are what the token endpoint checks") {
  gcp_test::Environment env;
  // The right key, the wrong audience: the server names the claim.
  std::string jwt = http::gcp_service_account_jwt(
      env.server.hello("sa_key"), env.server.hello("sa_key_id"), env.server.hello("sa_email"),
      http::kGcpCloudPlatformScope, "https://elsewhere.example/token",
      std::chrono::system_clock::now(), "test");
  http::Client c;
  http::Request r;
  r.method = "POST";
  r.url = env.server.url("/token");
  r.headers.set("Content-Type", "application/x-www-form-urlencoded");
  r.body = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=" + jwt;
  auto resp = c.send(r, true);
  CHECK(resp.status == 400);
  CHECK(resp.body.find("aud") != std::string::npos);
  // An hour-old one: iat is not now.
  r.body = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=" +
           http::gcp_service_account_jwt(env.server.hello("sa_key"), env.server.hello("sa_key_id"),
                                         env.server.hello("sa_email"), http::kGcpCloudPlatformScope,
                                         env.server.url("/token"),
                                         std::chrono::system_clock::now() - std::chrono::hours(1),
                                         "test");
  resp = c.send(r, true);
  CHECK(resp.status == 400);
  CHECK(resp.body.find("iat") != std::string::npos);
  // And the right one is accepted.
  r.body = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=" +
           http::gcp_service_account_jwt(env.server.hello("sa_key"), env.server.hello("sa_key_id"),
                                         env.server.hello("sa_email"), http::kGcpCloudPlatformScope,
                                         env.server.url("/token"), std::chrono::system_clock::now(),
                                         "test");
  CHECK(c.send(r, true).status == 200);
}
