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
  Server() : dir_("launch-http-test") {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
      throw std::runtime_error("pipe failed");
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    // From the source tree's absolute path, not __FILE__ (which a compiler
    // cache may make relative to the build directory).
    std::string script = std::string(LAUNCH_TEST_SOURCE_DIR) + "/http/data/server.py";
    std::string d = dir_.path();
    char* argv[] = {const_cast<char*>("python3"), const_cast<char*>(script.c_str()),
                    const_cast<char*>(d.c_str()), nullptr};
    int rc = posix_spawnp(&pid_, "python3", &fa, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    if (rc != 0) throw std::runtime_error("cannot start python3 for the test server");
    stdin_ = in[1];
    std::string line;
    char c;
    while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
    close(out[0]);
    rapidjson::Document doc;
    doc.Parse(line.c_str());
    if (doc.HasParseError() || !doc.IsObject()) {
      stop();
      throw std::runtime_error("the test server did not start: \"" + line + "\"");
    }
    http_ = doc["http"].GetInt();
    https_ = doc["https"].GetInt();
    mtls_ = doc["mtls"].GetInt();
    unix_ = doc["unix"].GetString();
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

  launch_test::TempDir dir_;
  pid_t pid_ = -1;
  int stdin_ = -1;
  int http_ = 0, https_ = 0, mtls_ = 0;
  std::string unix_;
};

}  // namespace http_test

#endif
