// The http suite's test server (data/server.py), one per test binary: a
// child python3 on 127.0.0.1 with plain, TLS and mTLS ports and a unix
// socket, its certificates in a TempDir. It exits when its stdin closes,
// which happens when this process ends, however it ends.
#ifndef LAUNCH_TESTS_HTTP_SERVER_HPP
#define LAUNCH_TESTS_HTTP_SERVER_HPP

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>

#include <rapidjson/document.h>

#include "support/python_server.hpp"
#include "support/temp_dir.hpp"

extern char** environ;

namespace http_test {

class Server {
 public:
  static Server& get() {
    static Server server;
    return server;
  }

  const std::string& dir() const { return dir_.path(); }
  std::string http(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(http_) + path;
  }
  std::string https(const std::string& path) const {
    return "https://127.0.0.1:" + std::to_string(https_) + path;
  }
  std::string mtls(const std::string& path) const {
    return "https://127.0.0.1:" + std::to_string(mtls_) + path;
  }
  int http_port() const { return http_; }
  const std::string& unix_socket() const { return unix_; }
  std::string file(const std::string& name) const { return dir_ / name; }

 private:
  // From the source tree's absolute path, not __FILE__ (which a compiler
  // cache may make relative to the build directory).
  Server()
      : dir_("launch-http-test"),
        server_("the test server", std::string(LAUNCH_TEST_SOURCE_DIR) + "/http/data/server.py",
                {dir_.path()}),
        http_(server_.port("http")),
        https_(server_.port("https")),
        mtls_(server_.port("mtls")) {
    const auto& hello = server_.hello();
    if (!hello.HasMember("unix") || !hello["unix"].IsString()) {
      throw std::runtime_error("the test server: no \"unix\" in its first line");
    }
    unix_ = hello["unix"].GetString();
  }

  launch_test::TempDir dir_;
  launch_test::PythonServer server_;
  int http_ = 0, https_ = 0, mtls_ = 0;
  std::string unix_;
};

}  // namespace http_test

#endif
