// launch_test::LaunchServer — a launch-server process serving a store, on a
// free loopback port, for tests of the http(s):// transport; and
// launch_test::TestCa, a CA and a server certificate for 127.0.0.1 made at
// test time with the openssl command. Both clean up after themselves (the
// server is killed and reaped, the files removed).
//
// The binary's path comes from LAUNCH_SERVER_BINARY (a compile definition
// the test's CMakeLists sets).
#ifndef LAUNCH_TESTS_SUPPORT_LAUNCH_SERVER_HPP
#define LAUNCH_TESTS_SUPPORT_LAUNCH_SERVER_HPP

#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "support/child.hpp"
#include "support/temp_dir.hpp"

namespace launch_test {

class TestCa {
 public:
  TestCa() : dir_("launch-test-ca") {
    std::string d = dir_.path();
    run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=launch-test-ca "
        "-keyout " + d + "/ca.key -out " + d + "/ca.pem");
    run("openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout " + d +
        "/server.key -out " + d + "/server.csr");
    {
      std::ofstream ext(d + "/ext.cnf");
      ext << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
    }
    run("openssl x509 -req -in " + d + "/server.csr -CA " + d + "/ca.pem -CAkey " + d +
        "/ca.key -CAcreateserial -days 2 -extfile " + d + "/ext.cnf -out " + d + "/server.pem");
  }
  std::string ca_file() const { return dir_.path() + "/ca.pem"; }
  std::string cert_file() const { return dir_.path() + "/server.pem"; }
  std::string key_file() const { return dir_.path() + "/server.key"; }

 private:
  static void run(const std::string& command) {
    if (std::system((command + " >/dev/null 2>&1").c_str()) != 0) {
      throw std::runtime_error("test CA: command failed: " + command);
    }
  }
  TempDir dir_;
};

class LaunchServer {
 public:
  // Serves `store_uri`; over HTTPS with `ca`'s server certificate when given.
  // Unless `init` is false, the store gets its first user first (`launch-server
  // init --admin admin --team team`), whose key admin_key() holds.
  explicit LaunchServer(std::string store_uri, const TestCa* ca = nullptr, bool init = true,
                        std::vector<std::string> extra_args = {})
      : store_uri_(std::move(store_uri)),
        ca_(ca),
        dir_("launch-test-server"),
        extra_args_(std::move(extra_args)) {
    if (init) admin_key_ = init_store(store_uri_, "admin", "team");
    start("127.0.0.1:0");
  }

  // `launch-server init` on `store_uri`: the key it printed.
  static std::string init_store(const std::string& store_uri, const std::string& admin,
                                const std::string& team) {
    TempDir dir("launch-test-init");
    std::vector<std::string> argv = {LAUNCH_SERVER_BINARY, "init", "--store", store_uri,
                                     "--admin", admin};
    if (!team.empty()) argv.insert(argv.end(), {"--team", team});
    Child init(argv, {}, dir.path() + "/out", dir.path() + "/err");
    int rc = init.wait();
    std::ifstream in(dir.path() + "/out");
    std::string line, key;
    while (std::getline(in, line)) {
      if (line.rfind("key: ", 0) == 0) key = line.substr(5);
    }
    if (rc != 0 || key.empty()) {
      std::ifstream err(dir.path() + "/err");
      std::stringstream text;
      text << err.rdbuf();
      throw std::runtime_error("launch-server init failed: " + text.str());
    }
    return key;
  }

  const std::string& admin_key() const { return admin_key_; }

  // The URL of the server ("http://127.0.0.1:PORT"), and the transport URI
  // for it (with ?ca= for HTTPS).
  const std::string& url() const { return url_; }
  std::string transport_uri() const { return ca_ ? url_ + "?ca=" + ca_->ca_file() : url_; }
  pid_t pid() const { return child_ ? child_->pid() : -1; }

  // SIGKILL, then the same store on the same port again.
  void restart() {
    kill();
    start(url_.substr(url_.find("://") + 3));
  }
  void kill() {
    if (child_) child_->signal(SIGKILL);
    child_.reset();
  }
  // SIGTERM; the exit code.
  int stop() {
    if (!child_) return -1;
    child_->signal(SIGTERM);
    int rc = child_->wait();
    child_.reset();
    return rc;
  }
  std::string log() const {
    std::ifstream in(dir_.path() + "/err");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  void start(const std::string& listen) {
    std::vector<std::string> argv = {LAUNCH_SERVER_BINARY, "--store", store_uri_, "--listen",
                                     listen, "--threads", "4"};
    if (ca_) {
      argv.insert(argv.end(), {"--tls-cert", ca_->cert_file(), "--tls-key", ca_->key_file()});
    }
    argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
    std::string out = dir_.path() + "/out", err = dir_.path() + "/err";
    // A restart may find the port still held for a moment by the dying one.
    for (int attempt = 0; attempt < 50; ++attempt) {
      child_ = std::make_unique<Child>(argv, std::map<std::string, std::string>{}, out, err);
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (std::chrono::steady_clock::now() < deadline) {
        std::ifstream in(out);
        std::string line;
        if (std::getline(in, line) && line.find("listening on ") != std::string::npos &&
            in.good()) {
          std::string rest = line.substr(line.find("listening on ") + 13);
          url_ = rest.substr(0, rest.find(' '));
          return;
        }
        siginfo_t info{};
        if (::waitid(P_PID, static_cast<id_t>(child_->pid()), &info,
                     WEXITED | WNOHANG | WNOWAIT) == 0 &&
            info.si_pid == child_->pid()) {
          break;  // it ended (the port was taken, say): start again
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      child_.reset();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    throw std::runtime_error("launch-server did not start: " + log());
  }

  std::string store_uri_;
  const TestCa* ca_;
  TempDir dir_;
  std::unique_ptr<Child> child_;
  std::string url_;
  std::string admin_key_;
  std::vector<std::string> extra_args_;
};

}  // namespace launch_test

#endif
