// DockerConfigAuth: the Docker config file's auths, credHelpers and
// credsStore, with a real credential helper program on PATH.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <rapidjson/document.h>

#include "http/auth.hpp"
#include "http/client.hpp"
#include "launch/error.hpp"
#include "server.hpp"
#include "support/env_scope.hpp"
#include "support/temp_dir.hpp"

using launch::Errc;
using launch::Error;
namespace http = launch::http;

namespace {

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

using launch_test::EnvScope;

// A docker config dir with a credential helper `docker-credential-test` on
// PATH. The helper records each server it is asked about in `asked`.
struct Config {
  launch_test::TempDir dir{"launch-http-dockercfg"};
  EnvScope config{"DOCKER_CONFIG", dir.path()};
  EnvScope path{"PATH", dir.path() + ":" + std::getenv("PATH")};

  Config() {
    std::string helper = dir / "docker-credential-test";
    write_file(helper,
               "#!/bin/sh\n"
               "[ \"$1\" = get ] || exit 3\n"
               "read server\n"
               "echo \"$server\" >> \"$(dirname \"$0\")/asked\"\n"
               "case \"$server\" in\n"
               "  reg.helper.example) echo '{\"ServerURL\":\"reg.helper.example\","
               "\"Username\":\"helper-user\",\"Secret\":\"helper-pass\"}' ;;\n"
               "  https://index.docker.io/v1/) echo '{\"Username\":\"<token>\","
               "\"Secret\":\"refresh-me\"}' ;;\n"
               "  broken.example) echo 'the keychain is locked' >&2; exit 2 ;;\n"
               "  *) echo 'credentials not found in native keychain'; exit 1 ;;\n"
               "esac\n");
    chmod(helper.c_str(), 0755);
  }
  void write(const std::string& json) { write_file(dir / "config.json", json); }
  std::string asked() { return read_file(dir / "asked"); }
};

}  // namespace

TEST_CASE("DockerConfigAuth reads auths: base64 auth, username/password, identitytoken") {
  Config cfg;
  cfg.write(R"({"auths": {
      "https://reg.example:5000/v1/": {"auth": "dXNlcjpwYXNz"},
      "other.example": {"username": "u2", "password": "p2"},
      "token.example": {"identitytoken": "refresh"}}})");
  auto c = http::docker_credentials("reg.example:5000");
  REQUIRE(c.has_value());
  CHECK(c->username == "user");
  CHECK(c->password == "pass");
  c = http::docker_credentials("other.example");
  REQUIRE(c.has_value());
  CHECK(c->username == "u2");
  CHECK(c->password == "p2");
  c = http::docker_credentials("token.example");
  REQUIRE(c.has_value());
  CHECK(c->username.empty());
  CHECK(c->identity_token == "refresh");
  CHECK_FALSE(http::docker_credentials("nowhere.example").has_value());

  // As an Auth: Basic with the file's user and password.
  http::Client client;
  http::Request r;
  r.url = http_test::Server::get().http("/echo");
  r.auth = std::make_shared<http::DockerConfigAuth>("reg.example:5000");
  rapidjson::Document d;
  d.Parse(client.send(r).body.c_str());
  CHECK(std::string(d["headers"]["authorization"].GetString()) == "Basic dXNlcjpwYXNz");
  // Without credentials it adds nothing.
  r.auth = std::make_shared<http::DockerConfigAuth>("nowhere.example");
  d.Parse(client.send(r).body.c_str());
  CHECK_FALSE(d["headers"].HasMember("authorization"));

  cfg.write(R"({"auths": {"bad.example": {"auth": "bm9jb2xvbg=="}}})");
  try {
    http::docker_credentials("bad.example");
    FAIL("an auth without a colon was accepted");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid);
    CHECK(std::string(e.what()).find(cfg.dir / "config.json") != std::string::npos);
    CHECK(std::string(e.what()).find("auths.bad.example") != std::string::npos);
  }
}

TEST_CASE("DockerConfigAuth asks credHelpers, then credsStore, as the docker CLI does") {
  Config cfg;
  cfg.write(R"({"credHelpers": {"reg.helper.example": "test", "broken.example": "test",
                                "gone.example": "absent"},
               "auths": {"reg.helper.example": {"auth": "dXNlcjpwYXNz"}}})");
  auto c = http::docker_credentials("reg.helper.example");
  REQUIRE(c.has_value());
  CHECK(c->username == "helper-user");
  CHECK(c->password == "helper-pass");
  CHECK(cfg.asked() == "reg.helper.example\n");
  // No helper for this registry and no store: the auths entry... of which
  // there is none.
  CHECK_FALSE(http::docker_credentials("plain.example").has_value());

  try {
    http::docker_credentials("broken.example");
    FAIL("a failing helper was ignored");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::io);
    CHECK(std::string(e.what()).find("docker-credential-test") != std::string::npos);
    CHECK(std::string(e.what()).find("the keychain is locked") != std::string::npos);
  }
  try {
    http::docker_credentials("gone.example");
    FAIL("a missing helper was ignored");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::io);
    CHECK(std::string(e.what()).find("docker-credential-absent") != std::string::npos);
  }

  cfg.write(R"({"credsStore": "test", "auths": {"docker.io": {"auth": "dXNlcjpwYXNz"}}})");
  c = http::docker_credentials("docker.io");
  REQUIRE(c.has_value());
  CHECK(c->identity_token == "refresh-me");
  CHECK(c->username.empty());
  CHECK_FALSE(http::docker_credentials("unknown.example").has_value());
  CHECK(cfg.asked() ==
        "reg.helper.example\nbroken.example\nhttps://index.docker.io/v1/\nunknown.example\n");
}
