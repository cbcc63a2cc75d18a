// The kube suite's test API server (server.py beside this file), one per
// test binary: a child /usr/bin/python3 serving HTTPS on 127.0.0.1 with a
// CA it makes at start in a temporary directory; it exits when its stdin
// closes, which happens when this process ends, however it ends.
#ifndef LAUNCH_TESTS_KUBE_KUBE_SERVER_HPP
#define LAUNCH_TESTS_KUBE_KUBE_SERVER_HPP

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
#include "support/temp_dir.hpp"

extern char** environ;

namespace kube_test {

constexpr const char* kToken = "launch-test-token";

using EnvScope = launch_test::EnvScope;

class Server {
 public:
  static Server& get() {
    static Server server;
    return server;
  }
  std::string url(const std::string& path = "") const {
    return "https://127.0.0.1:" + std::to_string(port_) + path;
  }
  // ca.crt, client.crt, client.key.
  std::string file(const std::string& name) const { return dir_ / name; }

  launch::http::Client client() const {
    launch::http::ClientOptions o;
    o.tls.ca_file = file("ca.crt");
    return launch::http::Client(o);
  }
  launch::http::Response post(const std::string& path, const std::string& body) const {
    launch::http::ClientOptions o;
    o.tls.ca_file = file("ca.crt");
    launch::http::Client c(o);
    launch::http::Request r;
    r.method = "POST";
    r.url = url(path);
    r.body = body;
    r.headers.set("Content-Type", "application/json");
    r.headers.set("Authorization", std::string("Bearer ") + kToken);
    return c.send(r, true);
  }
  rapidjson::Document state() const {
    launch::http::ClientOptions o;
    o.tls.ca_file = file("ca.crt");
    launch::http::Client c(o);
    launch::http::Request r;
    r.url = url("/_test/state");
    rapidjson::Document d;
    d.Parse(c.send(r).body.c_str());
    return d;
  }
  // A kubeconfig for it, with a bearer token.
  std::string kubeconfig(const std::string& token = kToken) const {
    return "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: " +
           url() + "\n    certificate-authority: " + file("ca.crt") +
           "\nusers:\n- name: test\n  user:\n    token: " + token +
           "\ncontexts:\n- name: test\n  context: {cluster: test, user: test}\n"
           "current-context: test\n";
  }

 private:
  Server()
      : server_("the test API server", std::string(LAUNCH_TEST_DATA) + "/../kube/server.py",
                {dir_.path(), kToken}),
        port_(server_.port("port")) {}

  launch_test::TempDir dir_{"launch-kube-server"};
  launch_test::PythonServer server_;
  int port_ = 0;
};

}  // namespace kube_test

#endif
