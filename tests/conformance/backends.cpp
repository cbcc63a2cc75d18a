#include "backends.hpp"

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include <doctest/doctest.h>
#include <sqlite3.h>

#include "launch/features.h"
#if LAUNCH_FEATURE_POSTGRES
#include "pg_support.hpp"
#endif
#ifdef LAUNCH_SERVER_BINARY
#include "support/launch_server.hpp"
#endif

extern char** environ;

namespace conformance {

namespace {

// A named store, so that opening `uri` again reaches it (as another
// handle of sqlite:// or postgres:// does); a fresh name for each case.
struct MemoryFixture : Fixture {
  MemoryFixture() {
    static int count = 0;
    uri = "memory://conformance-" + std::to_string(++count);
    transport = launch::open_transport(uri);
  }
};

struct SqliteFixture : Fixture {
  TempDir dir;
  SqliteFixture() {
    uri = "sqlite://" + dir.path() + "/launch.db";
    transport = launch::open_transport(uri);
  }
  ~SqliteFixture() override { transport.reset(); }
};

#if LAUNCH_FEATURE_POSTGRES
// A database of its own on the server of LAUNCH_TEST_PG_URI (fails, naming
// the variable, when it is not set), dropped afterwards.
struct PostgresFixture : Fixture {
  launch_test::FreshDatabase db;
  PostgresFixture() {
    uri = db.uri();
    transport = launch::open_transport(uri);
  }
  ~PostgresFixture() override { transport.reset(); }
};
#endif

#ifdef LAUNCH_SERVER_BINARY
// A launch-server process serving a fresh SQLite store; the transport is
// its client (http://, or https:// with a CA made once per test process).
// Made on first use, removed when the test process exits.
launch_test::TestCa& test_ca() {
  static launch_test::TestCa ca;
  return ca;
}

struct ServerFixture : Fixture {
  TempDir dir;
  std::string store_uri;
  std::unique_ptr<launch_test::LaunchServer> server;
  explicit ServerFixture(bool tls) {
    store_uri = "sqlite://" + dir.path() + "/launch.db";
    server = std::make_unique<launch_test::LaunchServer>(store_uri, tls ? &test_ca() : nullptr);
    uri = server->transport_uri();
    // The server admin's key, for this process and the workers it starts.
    ::setenv("LAUNCH_API_KEY", server->admin_key().c_str(), 1);
    transport = launch::open_transport(uri);
  }
  ~ServerFixture() override {
    transport.reset();
    server.reset();
    ::unsetenv("LAUNCH_API_KEY");
  }
};
#endif

void sqlite_update_file(const std::string& store_uri, const std::string& item_id,
                        const std::string& set);

#ifdef LAUNCH_SERVER_BINARY
// The row is changed behind the server's back, and the server restarted on
// its port, so that what it reads next is the damaged row (as a server that
// starts on a damaged disk would), not what it remembers.
void server_update_row(Fixture& f, const std::string& item_id, const std::string& set) {
  auto& sf = static_cast<ServerFixture&>(f);
  sqlite_update_file(sf.store_uri, item_id, set);
  sf.server->restart();
}
#endif

// Through SQLite's own library, on the file `store_uri` names.
void sqlite_update_file(const std::string& store_uri, const std::string& item_id,
                        const std::string& set) {
  std::string path = store_uri.substr(std::string("sqlite://").size());
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  std::string sql = "UPDATE items SET " + set + " WHERE id = " + item_id;
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string message = err ? err : "";
  sqlite3_free(err);
  int changed = sqlite3_changes(db);
  sqlite3_close(db);
  INFO(sql << ": " << message);
  REQUIRE(rc == SQLITE_OK);
  REQUIRE(changed == 1);
}

void sqlite_update_row(Fixture& f, const std::string& item_id, const std::string& set) {
  sqlite_update_file(f.uri, item_id, set);
}

}  // namespace

const std::vector<Backend>& backends() {
  static const std::vector<Backend> all = {
      {"memory", false, [] { return std::make_unique<MemoryFixture>(); }, nullptr},
      {"sqlite", true, [] { return std::make_unique<SqliteFixture>(); }, sqlite_update_row},
#if LAUNCH_FEATURE_POSTGRES
      {"postgres", true, [] { return std::make_unique<PostgresFixture>(); },
       [](Fixture& f, const std::string& item_id, const std::string& set) {
         launch_test::pg_exec(f.uri, "UPDATE launch_items SET " + set + " WHERE id = " + item_id);
       }},
#endif
#ifdef LAUNCH_SERVER_BINARY
      {"http", true, [] { return std::make_unique<ServerFixture>(false); },
       server_update_row},
      {"https", true, [] { return std::make_unique<ServerFixture>(true); },
       server_update_row},
#endif
  };
  return all;
}

void for_each_transport_with_rows(const std::function<void(Fixture&, const RowUpdate&)>& body) {
  for (const Backend& b : backends()) {
    if (!b.update_row) continue;
    SUBCASE(b.name.c_str()) {
      std::unique_ptr<Fixture> f = b.open();
      Fixture& fixture = *f;
      body(fixture, [&](const std::string& id, const std::string& set) {
        b.update_row(fixture, id, set);
      });
    }
  }
}

std::string sql_literal(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

void for_each_transport(const std::function<void(Fixture&)>& body, bool cross_process_only) {
  for (const Backend& b : backends()) {
    if (cross_process_only && !b.cross_process) continue;
    SUBCASE(b.name.c_str()) {
      std::unique_ptr<Fixture> f = b.open();
      body(*f);
    }
  }
}

launch::QueueDef make_queue(const std::string& name, bool prioritized, int lease_seconds,
                            int max_attempts) {
  launch::QueueDef q;
  q.entity = "team";
  q.name = name;
  q.resource = "local-process";
  q.prioritization = prioritized;
  q.lease_seconds = lease_seconds;
  q.max_attempts = max_attempts;
  return q;
}

launch::JobSpec make_job(const std::string& name) {
  launch::JobSpec spec;
  spec.name = name;
  spec.source.kind = launch::JobSource::Kind::image;
  spec.source.image = "busybox:latest";
  spec.entry_point = {"true"};
  spec.author = "alice";
  return spec;
}

pid_t spawn_worker(const std::vector<std::string>& args) {
  std::vector<std::string> all = {LAUNCH_QUEUE_WORKER};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ);
  if (rc != 0) throw std::runtime_error(std::string("posix_spawn: ") + std::strerror(rc));
  return pid;
}

std::vector<int> wait_all(const std::vector<pid_t>& pids, std::chrono::seconds timeout) {
  std::vector<int> codes(pids.size(), -1);
  std::vector<bool> done(pids.size(), false);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::size_t left = pids.size();
  while (left > 0 && std::chrono::steady_clock::now() < deadline) {
    for (std::size_t i = 0; i < pids.size(); ++i) {
      if (done[i]) continue;
      int status = 0;
      if (::waitpid(pids[i], &status, WNOHANG) == pids[i]) {
        done[i] = true;
        --left;
        codes[i] = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
    }
    if (left > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (std::size_t i = 0; i < pids.size(); ++i) {
    if (done[i]) continue;
    ::kill(pids[i], SIGKILL);
    ::waitpid(pids[i], nullptr, 0);
  }
  return codes;
}

bool readable_within(int fd, std::chrono::milliseconds timeout) {
  struct pollfd p = {fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(timeout.count())) == 1 && (p.revents & POLLIN);
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

}  // namespace conformance
