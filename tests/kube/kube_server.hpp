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
  Server() {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
      throw std::runtime_error("pipe failed");
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    std::string script = std::string(LAUNCH_TEST_DATA) + "/../kube/server.py";
    const char* argv[] = {"/usr/bin/python3", script.c_str(), dir_.path().c_str(), kToken, nullptr};
    int rc = posix_spawn(&pid_, argv[0], &fa, nullptr, const_cast<char**>(argv), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    if (rc != 0) throw std::runtime_error("cannot start /usr/bin/python3 for the test API server");
    stdin_ = in[1];
    std::string line;
    char c;
    while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
    close(out[0]);
    rapidjson::Document doc;
    doc.Parse(line.c_str());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("port")) {
      stop();
      throw std::runtime_error("the test API server did not start: \"" + line + "\"");
    }
    port_ = doc["port"].GetInt();
  }
  ~Server() { stop(); }
  void stop() {
    if (stdin_ >= 0) close(stdin_);
    stdin_ = -1;
    if (pid_ > 0) {
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    pid_ = -1;
  }

  launch_test::TempDir dir_{"launch-kube-server"};
  pid_t pid_ = -1;
  int stdin_ = -1;
  int port_ = 0;
};

}  // namespace kube_test

#endif
