// What is particular to sqlite://: its URIs, its file, its schema versions.
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "backends.hpp"
#include "transport/sqlite_sql.hpp"
#include "launch/error.hpp"
#include "launch/transport.hpp"

using namespace launch;
using conformance::TempDir;

namespace {

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Runs `sql` on the file directly and returns the first column of its first
// row, as text.
std::string query(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
  std::string out;
  std::string all;
  while (sqlite3_step(s) == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(s, sqlite3_column_count(s) - 1);
    all += text ? reinterpret_cast<const char*>(text) : "";
    all += "\n";
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return all;
}

Errc open_error(const std::string& uri, std::string* message = nullptr) {
  try {
    open_transport(uri);
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.code();
  }
  FAIL("expected open_transport(\"" << uri << "\") to fail");
  return Errc::internal;
}

}  // namespace

TEST_CASE("sqlite: an absolute path, with its parent directories created") {
  TempDir dir;
  std::string path = dir.path() + "/a/b/launch.db";
  auto t = open_transport("sqlite://" + path);
  CHECK(t->uri() == "sqlite://" + path);
  CHECK(exists(path));
  CHECK(exists(path + "-wake"));
  CHECK(query(path, "PRAGMA journal_mode") == "wal\n");
}

TEST_CASE("sqlite: a relative path is resolved against the current directory") {
  TempDir dir;
  char old[4096];
  REQUIRE(::getcwd(old, sizeof old));
  REQUIRE(::chdir(dir.path().c_str()) == 0);
  std::shared_ptr<Transport> t;
  try {
    t = open_transport("sqlite://rel/launch.db");
  } catch (...) {
    REQUIRE(::chdir(old) == 0);
    throw;
  }
  REQUIRE(::chdir(old) == 0);
  CHECK(t->uri() == "sqlite://" + dir.path() + "/rel/launch.db");
  CHECK(exists(dir.path() + "/rel/launch.db"));
}

TEST_CASE("sqlite: malformed URIs are refused by name") {
  std::string msg;
  CHECK(open_error("sqlite://", &msg) == Errc::invalid);
  CHECK(msg.find("sqlite://") != std::string::npos);
  CHECK(open_error("sqlite:///tmp/dir/") == Errc::invalid);
  CHECK(open_error("sqlite:///tmp/launch.db?mode=ro") == Errc::invalid);
  CHECK(open_error("sqlite:///dev/null/launch.db") == Errc::io);
}

TEST_CASE("sqlite: items, queues and agents survive closing and reopening") {
  TempDir dir;
  std::string uri = "sqlite://" + dir.path() + "/launch.db";
  std::string id;
  {
    auto t = open_transport(uri);
    t->create_queue(conformance::make_queue("durable"));
    id = t->push({"team", "durable"}, conformance::make_job("kept"));
    t->add_warning(id, "a warning");
    AgentRecord a;
    a.id = "agent-1";
    a.queues = {"team/durable"};
    t->upsert_agent(a);
  }
  auto t = open_transport(uri);
  QueueItem item = t->get(id);
  CHECK(item.spec.name == "kept");
  CHECK(item.queue == QueueRef{"team", "durable"});
  CHECK(item.warnings == std::vector<std::string>{"a warning"});
  CHECK(t->get_queue({"team", "durable"}).name == "durable");
  REQUIRE(t->list_agents().size() == 1);
  CHECK(t->list_agents()[0].queues == std::vector<std::string>{"team/durable"});
}

TEST_CASE("sqlite: an item is a row with a column per field and its spec as JSON") {
  TempDir dir;
  std::string path = dir.path() + "/launch.db";
  auto t = open_transport("sqlite://" + path);
  t->create_queue(conformance::make_queue("cols"));
  std::string id = t->push({"team", "cols"}, conformance::make_job("x"));
  REQUIRE(t->claim({{"team", "cols"}}, "agent-1"));
  t->add_warning(id, "careful");
  auto col = [&](const std::string& c) {
    return query(path, "SELECT " + c + " FROM items WHERE id = " + id);
  };
  CHECK(col("queue") == "team/cols\n");
  CHECK(col("state") == "claimed\n");
  CHECK(col("agent_id") == "agent-1\n");
  CHECK(col("attempt") == "1\n");
  CHECK(col("warnings") == "[\"careful\"]\n");
  CHECK(col("exit_code IS NULL") == "1\n");
  std::string spec = col("spec");
  CHECK(spec.find("\"name\":\"x\"") != std::string::npos);
  CHECK(spec.find("state") == std::string::npos);
  CHECK(spec.find("agent-1") == std::string::npos);
}

TEST_CASE("sqlite: a claim reads the head of a queue off an index") {
  TempDir dir;
  std::string path = dir.path() + "/launch.db";
  open_transport("sqlite://" + path);
  // The statements the transport runs, their parameters unbound (NULL):
  // the plan does not depend on the values.
  std::string plan = query(path, std::string("EXPLAIN QUERY PLAN ") + sqlite_sql::kQueueHead);
  CHECK(plan.find("USING INDEX items_claim") != std::string::npos);
  CHECK(plan.find("TEMP B-TREE") == std::string::npos);  // no sort
  std::string lease_plan =
      query(path, std::string("EXPLAIN QUERY PLAN ") + sqlite_sql::kExpiredItems);
  CHECK(lease_plan.find("USING INDEX items_lease") != std::string::npos);
}

TEST_CASE("sqlite: a database from a newer launch is refused with the versions") {
  TempDir dir;
  std::string path = dir.path() + "/launch.db";
  open_transport("sqlite://" + path);
  query(path, "PRAGMA user_version = 99");
  std::string msg;
  CHECK(open_error("sqlite://" + path, &msg) == Errc::unsupported);
  CHECK(msg.find("schema version 99") != std::string::npos);
  CHECK(msg.find(path) != std::string::npos);
}

TEST_CASE("sqlite: processes opening a new file at once migrate it once") {
  TempDir dir;
  std::string path = dir.path() + "/launch.db";
  std::vector<pid_t> pids;
  for (int i = 0; i < 6; ++i) pids.push_back(conformance::spawn_worker({"open", "sqlite://" + path}));
  CHECK(conformance::wait_all(pids, std::chrono::seconds(60)) == std::vector<int>(6, 0));
  CHECK(query(path, "PRAGMA user_version") == "2\n");
  CHECK(query(path, "SELECT count(*) FROM sqlite_master WHERE name = 'items'") == "1\n");
  auto t = open_transport("sqlite://" + path);
  t->create_queue(conformance::make_queue("after"));
  CHECK(t->list_queues().size() == 1);
}

TEST_CASE("sqlite: item ids are never reused, even after the newest items are deleted") {
  TempDir dir;
  auto t = open_transport("sqlite://" + dir.path() + "/launch.db");
  t->create_queue(conformance::make_queue("ids"));
  std::string first = t->push({"team", "ids"}, conformance::make_job("x"));
  t->delete_queue({"team", "ids"}, QueueDelete::with_pending);
  t->create_queue(conformance::make_queue("ids"));
  std::string second = t->push({"team", "ids"}, conformance::make_job("y"));
  CHECK(std::stoll(second) > std::stoll(first));
}

TEST_CASE("sqlite: a file that is not a database is refused with its path") {
  TempDir dir;
  std::string path = dir.path() + "/launch.db";
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f);
    std::fputs("this is not an SQLite database, just some text that is long enough\n", f);
    std::fclose(f);
  }
  std::string msg;
  CHECK(open_error("sqlite://" + path, &msg) == Errc::io);
  CHECK(msg.find(path) != std::string::npos);
}
