// The gcp suite's test server (server.py beside this file), one per test
// binary: a child /usr/bin/python3 on 127.0.0.1 that checks CustomJobs
// against the aiplatform protos of tests/node/aiplatform (scripts/setup
// installs them), exiting when its stdin closes. Environment points every
// Google endpoint at it and hides the machine's own credentials.
#ifndef LAUNCH_TESTS_GCP_GCP_SERVER_HPP
#define LAUNCH_TESTS_GCP_GCP_SERVER_HPP

#include <fstream>
#include <string>

#include <doctest/doctest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "http/client.hpp"
#include "support/env_scope.hpp"
#include "support/python_server.hpp"
#include "support/temp_dir.hpp"

namespace gcp_test {

using EnvScope = launch_test::EnvScope;

inline std::string proto_dir() {
  return std::string(LAUNCH_TEST_SOURCE_DIR) +
         "/node/aiplatform/node_modules/@google-cloud/aiplatform/build/protos/google/cloud/"
         "aiplatform/v1";
}

class Server {
 public:
  static Server& get() {
    static Server server;
    return server;
  }
  std::string url(const std::string& path = "") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::string hello(const char* key) const { return server_.hello()[key].GetString(); }

  // Tokens issued from now on live this long.
  void set_lifetime(int seconds) {
    post("/_test/config", "{\"lifetime\":" + std::to_string(seconds) + "}");
  }
  std::string post(const std::string& path, const std::string& body) {
    launch::http::Client c;
    launch::http::Request r;
    r.method = "POST";
    r.url = url(path);
    r.body = body;
    return c.send(r).body;
  }
  // {"issued": {...}, "denied": [...], "invalid": [...], "calls": [...],
  //  "bodies": [...], "jobs": {id: job}}
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
      : server_("the GCP test server", std::string(LAUNCH_TEST_SOURCE_DIR) + "/gcp/server.py",
                {proto_dir()}),
        port_(server_.port("port")) {}

  launch_test::PythonServer server_;
  int port_ = 0;
};

inline std::string json_text(const std::string& s) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  return b.GetString();
}

// Every Google endpoint at the test server, and no stray credentials or
// project from the machine running the tests (an empty gcloud config dir).
struct Environment {
  Server& server = Server::get();
  launch_test::TempDir gcloud{"launch-gcloud"};
  EnvScope no_adc{"GOOGLE_APPLICATION_CREDENTIALS", nullptr};
  EnvScope config{"CLOUDSDK_CONFIG", gcloud.path()};
  EnvScope metadata{"GCE_METADATA_HOST", "127.0.0.1:" + server.url().substr(17)};
  EnvScope aiplatform{"CLOUDSDK_API_ENDPOINT_OVERRIDES_AIPLATFORM", server.url("/")};
  EnvScope logging{"CLOUDSDK_API_ENDPOINT_OVERRIDES_LOGGING", server.url("/")};
  EnvScope no_project{"GOOGLE_CLOUD_PROJECT", nullptr};
  EnvScope no_core_project{"CLOUDSDK_CORE_PROJECT", nullptr};
  EnvScope no_region{"GOOGLE_CLOUD_REGION", nullptr};
  EnvScope no_compute_region{"CLOUDSDK_COMPUTE_REGION", nullptr};

  // A service-account key file (the server's key, or its "rogue_key", one
  // it does not know) with token_uri at the server.
  std::string service_account_file(const char* key = "sa_key") {
    std::string path = gcloud / (std::string(key) + ".json");
    std::ofstream(path) << "{\"type\": \"service_account\", \"project_id\": "
                        << json_text(server.hello("project"))
                        << ", \"private_key_id\": " << json_text(server.hello("sa_key_id"))
                        << ", \"private_key\": " << json_text(server.hello(key))
                        << ", \"client_email\": " << json_text(server.hello("sa_email"))
                        << ", \"client_id\": \"1234567890\", \"token_uri\": "
                        << json_text(server.url("/token")) << "}\n";
    return path;
  }
  // gcloud's ADC file for a user (gcloud auth application-default login).
  std::string authorized_user_file(const std::string& refresh_token = "") {
    std::string path = gcloud / "application_default_credentials.json";
    std::ofstream(path) << "{\"type\": \"authorized_user\", \"client_id\": "
                        << json_text(server.hello("client_id")) << ", \"client_secret\": "
                        << json_text(server.hello("client_secret")) << ", \"refresh_token\": "
                        << json_text(refresh_token.empty() ? server.hello("refresh_token")
                                                           : refresh_token)
                        << ", \"quota_project_id\": " << json_text(server.hello("project"))
                        << ", \"token_uri\": " << json_text(server.url("/token")) << "}\n";
    return path;
  }
};

// A service account key in GOOGLE_APPLICATION_CREDENTIALS.
struct WithServiceAccount : Environment {
  EnvScope adc{"GOOGLE_APPLICATION_CREDENTIALS", service_account_file()};
};

// Fails the test for every 401/403 and every 400 the server answered since
// it was made.
struct NothingWrong {
  Server& server = Server::get();
  rapidjson::SizeType denied = server.state()["denied"].Size();
  rapidjson::SizeType invalid = server.state()["invalid"].Size();
  void check() {
    auto st = server.state();
    for (auto i = denied; i < st["denied"].Size(); ++i) {
      FAIL_CHECK("401/403: " << std::string(st["denied"][i].GetString()));
    }
    for (auto i = invalid; i < st["invalid"].Size(); ++i) {
      FAIL_CHECK("400: " << std::string(st["invalid"][i].GetString()));
    }
  }
};

}  // namespace gcp_test

#endif
