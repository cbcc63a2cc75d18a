// The aws suite's test server (server.py beside this file), one per test
// binary: a child /usr/bin/python3 (Debian's, which has python3-botocore)
// on 127.0.0.1, exiting when its stdin closes, which happens when this
// process ends, however it ends. EnvScope points the AWS endpoints at it.
#ifndef LAUNCH_TESTS_AWS_AWS_SERVER_HPP
#define LAUNCH_TESTS_AWS_AWS_SERVER_HPP

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

#include <rapidjson/document.h>

#include "http/client.hpp"
#include "support/env_scope.hpp"
#include "support/python_server.hpp"

extern char** environ;

namespace aws_test {

constexpr const char* kAccessKey = "AKIDLAUNCHTEST";
constexpr const char* kSecretKey = "launch/test/secret/key";
constexpr const char* kWebToken = "eyJ-web-identity-token";
constexpr const char* kContainerToken = "container-auth-token";

using EnvScope = launch_test::EnvScope;

class Server {
 public:
  static Server& get() {
    static Server server;
    return server;
  }
  std::string url(const std::string& path = "") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  // Temporary credentials issued from now on live this long.
  void set_lifetime(int seconds) { post("/_test/config", "{\"lifetime\":" + std::to_string(seconds) + "}"); }
  void post(const std::string& path, const std::string& body) {
    launch::http::Client c;
    launch::http::Request r;
    r.method = "POST";
    r.url = url(path);
    r.body = body;
    c.send(r);
  }
  // {"issued": {...}, "denied": [...], "invalid": [...], "calls": [...], "jobs": {...}}
  rapidjson::Document state() const {
    launch::http::Client c;
    launch::http::Request r;
    r.url = url("/_test/state");
    rapidjson::Document d;
    d.Parse(c.send(r).body.c_str());
    return d;
  }

 private:
  Server()
      : server_("the AWS test server", std::string(LAUNCH_TEST_DATA) + "/../aws/server.py",
                {kAccessKey, kSecretKey, kWebToken, kContainerToken}),
        port_(server_.port("port")) {}

  launch_test::PythonServer server_;
  int port_ = 0;
};

// Every AWS endpoint at the test server, a region, and no stray source of
// credentials from the machine running the tests.
struct Environment {
  Server& server = Server::get();
  EnvScope endpoint{"AWS_ENDPOINT_URL", server.url()};
  EnvScope region{"AWS_REGION", "us-east-1"};
  EnvScope no_config{"AWS_CONFIG_FILE", "/nonexistent/aws-config"};
  EnvScope no_creds{"AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials"};
  EnvScope no_profile{"AWS_PROFILE", nullptr};
  EnvScope no_key{"AWS_ACCESS_KEY_ID", nullptr};
  EnvScope no_secret{"AWS_SECRET_ACCESS_KEY", nullptr};
  EnvScope no_token{"AWS_SESSION_TOKEN", nullptr};
  EnvScope no_web{"AWS_WEB_IDENTITY_TOKEN_FILE", nullptr};
  EnvScope no_role{"AWS_ROLE_ARN", nullptr};
  EnvScope no_full{"AWS_CONTAINER_CREDENTIALS_FULL_URI", nullptr};
  EnvScope no_rel{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", nullptr};
  EnvScope no_imds{"AWS_EC2_METADATA_DISABLED", "true"};
};

// Long-term keys the server knows, in the environment.
struct WithKeys : Environment {
  EnvScope key{"AWS_ACCESS_KEY_ID", kAccessKey};
  EnvScope secret{"AWS_SECRET_ACCESS_KEY", kSecretKey};
};

}  // namespace aws_test

#endif
