// Test support for the PostgreSQL suites: the server the test command
// started (LAUNCH_TEST_PG_URI), a fresh database per test, restarting the
// server, and a proxy that loses the server's answers on purpose.
#ifndef LAUNCH_TESTS_PG_SUPPORT_HPP
#define LAUNCH_TESTS_PG_SUPPORT_HPP

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace launch_test {

// LAUNCH_TEST_PG_URI; throws (failing the test) with a clear message when
// it is not set.
std::string pg_uri();

// `uri` with its database name replaced by `dbname`.
std::string with_dbname(const std::string& uri, const std::string& dbname);

// Runs SQL on `uri`, returning the first column of the first row ("" when
// none). Throws on error.
std::string pg_exec(const std::string& uri, const std::string& sql);

// A database created for one test and dropped (with its connections) when
// this goes out of scope.
class FreshDatabase {
 public:
  FreshDatabase();
  ~FreshDatabase();
  FreshDatabase(const FreshDatabase&) = delete;
  FreshDatabase& operator=(const FreshDatabase&) = delete;
  const std::string& uri() const { return uri_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::string uri_;
};

// Stops the server at once (pg_ctl stop -m immediate, like a crash) and
// starts it again, using LAUNCH_TEST_PG_BINDIR and LAUNCH_TEST_PG_DATA.
// `down_ms`: how long it stays down.
void restart_server(int down_ms);
void stop_server_immediate();
void start_server();

// Runs argv (no shell) and waits; returns its exit status (-1: not run).
// Its stdout/stderr go to /dev/null; descriptors above 2 are not inherited.
int run_quiet(const std::vector<std::string>& argv);

// A TCP proxy on 127.0.0.1 in front of the server that, when armed, lets
// one execution of a named prepared statement through and then cuts the
// connection just before the server's answer reaches the client: the
// statement has committed, the client cannot know it. Its URI disables
// SSL so the protocol can be read.
class LossyProxy {
 public:
  explicit LossyProxy(const std::string& target_uri);
  ~LossyProxy();
  LossyProxy(const LossyProxy&) = delete;
  LossyProxy& operator=(const LossyProxy&) = delete;

  std::string uri() const { return uri_; }
  // The next Bind of `statement` has its answer lost.
  void lose_answer_to(const std::string& statement);
  // How many answers were lost so far.
  int lost() const { return lost_.load(); }
  // How many Sync messages clients sent: one per round trip of the
  // extended protocol (a statement, or a whole pipeline).
  int syncs() const { return syncs_.load(); }

 private:
  void run();

  std::string uri_;
  std::string host_;
  int target_port_ = 0;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::mutex mu_;
  std::string armed_;
  std::atomic<int> lost_{0};
  std::atomic<int> syncs_{0};
  std::thread thread_;
};

}  // namespace launch_test

#endif
