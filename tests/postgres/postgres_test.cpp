// postgres:// against a real server: schema migrations under concurrency,
// wake-ups through LISTEN/NOTIFY, lost connections and lost answers (each
// operation applied exactly once), a server restart, and three agent
// processes sharing one queue of 10,000 items.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "launch/error.hpp"
#include "launch/log.hpp"
#include "launch/transport.hpp"
#include "pg_support.hpp"
#include "support/temp_dir.hpp"

using namespace launch;
using launch_test::FreshDatabase;
using launch_test::LossyProxy;
using launch_test::pg_exec;

namespace {

QueueDef make_queue(const std::string& name, bool prioritization = false) {
  QueueDef q;
  q.entity = "team";
  q.name = name;
  q.prioritization = prioritization;
  q.lease_seconds = 30;
  q.max_attempts = 3;
  return q;
}

JobSpec job(const std::string& name) {
  JobSpec s;
  s.name = name;
  s.entry_point = {"/bin/true"};
  return s;
}

const QueueRef kQ{"team", "q"};

// Waits for a child and returns its exit code (-1 when it did not exit).
int wait_child(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Forked children: the ones not yet reaped are killed and reaped when this
// goes out of scope, so a failing REQUIRE leaks no process.
class Children {
 public:
  ~Children() {
    for (pid_t pid : pids_) {
      ::kill(pid, SIGKILL);
      wait_child(pid);
    }
  }
  void add(pid_t pid) { pids_.push_back(pid); }
  // Reaps them all: their exit codes, in order.
  std::vector<int> wait_all() {
    std::vector<int> codes;
    for (pid_t pid : pids_) codes.push_back(wait_child(pid));
    pids_.clear();
    return codes;
  }

 private:
  std::vector<pid_t> pids_;
};

// The library's log lines (debug level and above) while it lives:
// warnings() are those at warn level and above; wait_for blocks until a
// line contains a text.
class LogLines {
 public:
  LogLines() : old_level_(log_level()) {
    set_log_level(LogLevel::debug);
    set_log_sink([this](LogLevel level, const std::string& line) {
      std::lock_guard<std::mutex> lock(mu_);
      lines_.emplace_back(level, line);
      cv_.notify_all();
    });
  }
  ~LogLines() {
    set_log_sink(nullptr);
    set_log_level(old_level_);
  }
  std::vector<std::string> warnings() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    for (const auto& l : lines_) {
      if (l.first <= LogLevel::warn) out.push_back(l.second);
    }
    return out;
  }
  // False if none came within a minute (a safety net, not a measure).
  bool wait_for(const std::string& text) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(60), [&] {
      return std::any_of(lines_.begin(), lines_.end(), [&](const auto& l) {
        return l.second.find(text) != std::string::npos;
      });
    });
  }

 private:
  LogLevel old_level_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<LogLevel, std::string>> lines_;
};

// `uri` with its user replaced.
std::string with_user(const std::string& uri, const std::string& user) {
  auto scheme = uri.find("://");
  auto at = uri.find('@', scheme + 3);
  REQUIRE(at != std::string::npos);
  return uri.substr(0, scheme + 3) + user + uri.substr(at);
}

std::string open_refusal(const std::string& uri) {
  try {
    open_transport(uri);
  } catch (const Error& e) {
    CHECK(e.code() == Errc::io);
    return e.what();
  }
  FAIL("open_transport(" << uri << ") succeeded");
  return "";
}

}  // namespace

TEST_CASE("postgres: a role or a database that does not exist is refused at once, by name") {
  LogLines log;
  std::string role = open_refusal(with_user(launch_test::pg_uri(), "no_such_role"));
  CHECK(role.find("role \"no_such_role\" does not exist") != std::string::npos);
  CHECK(role.find("28000") != std::string::npos);
  CHECK(role.find("not retried") != std::string::npos);
  std::string db =
      open_refusal(launch_test::with_dbname(launch_test::pg_uri(), "no_such_database"));
  CHECK(db.find("database \"no_such_database\" does not exist") != std::string::npos);
  CHECK(db.find("3D000") != std::string::npos);
  // A schema that does not exist: the server takes the connection, then
  // refuses to create the tables anywhere.
  FreshDatabase fresh;
  std::string schema = open_refusal(fresh.uri() + "?options=-csearch_path%3Dno_such_schema");
  CHECK(schema.find("no schema has been selected") != std::string::npos);
  // None was retried: no "retrying" line, no "gave up".
  CHECK(log.warnings().empty());
  CHECK(schema.find("gave up") == std::string::npos);
  CHECK(role.find("gave up") == std::string::npos);
  CHECK(db.find("gave up") == std::string::npos);
}

TEST_CASE("postgres: a server that is not up yet is waited for, saying so once") {
  FreshDatabase db;
  open_transport(db.uri());  // the schema exists: the open below only connects
  LogLines log;
  launch_test::stop_server_immediate();
  std::shared_ptr<Transport> t;
  std::string failure;
  std::thread opener([&] {
    try {
      t = open_transport(db.uri());
    } catch (const std::exception& e) {
      failure = e.what();
    }
  });
  // The first refusal is said; the second is only a debug line.
  bool retried = log.wait_for("retrying in");
  launch_test::start_server();
  opener.join();
  CHECK(retried);
  CHECK(failure.empty());
  CHECK(t);
  auto lines = log.warnings();
  std::string all;
  for (const auto& l : lines) all += l + "\n";
  INFO(all);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].find("postgres open") != std::string::npos);
  CHECK(lines[0].find("Connection refused") != std::string::npos);
}

TEST_CASE("postgres: the scheme and its alias open the same store") {
  FreshDatabase db;
  auto a = open_transport(db.uri());
  std::string alias = "postgresql" + db.uri().substr(db.uri().find("://"));
  auto b = open_transport(alias);
  a->create_queue(make_queue("q"));
  CHECK(b->get_queue(kQ).name == "q");
}

TEST_CASE("postgres: a malformed URI is refused as invalid") {
  try {
    open_transport("postgres://host:notaport:x/db?nosuchoption=1");
    FAIL("expected Errc::invalid");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid);
    CHECK(std::string(e.what()).find("transport URI") != std::string::npos);
  }
}

TEST_CASE("postgres: processes opening a fresh database together create the schema once") {
  FreshDatabase db;
  Children kids;
  for (int i = 0; i < 6; ++i) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int code = 0;
      try {
        auto t = open_transport(db.uri());
        t->list_queues();
      } catch (...) {
        code = 1;
      }
      _exit(code);
    }
    kids.add(pid);
  }
  for (int code : kids.wait_all()) CHECK(code == 0);
  CHECK(pg_exec(db.uri(), "SELECT version FROM launch_schema") == "3");
  CHECK(pg_exec(db.uri(), "SELECT count(*) FROM launch_schema") == "1");
}

TEST_CASE("postgres: an older schema is migrated forward; a newer one is refused") {
  FreshDatabase db;
  open_transport(db.uri());
  // Make it look like a version-1 database: step 2 is the push keys' index,
  // step 3 the records table.
  pg_exec(db.uri(),
          "DROP INDEX launch_pushes_at; DROP TABLE launch_records; "
          "UPDATE launch_schema SET version = 1");
  open_transport(db.uri());
  CHECK(pg_exec(db.uri(), "SELECT version FROM launch_schema") == "3");
  CHECK(pg_exec(db.uri(), "SELECT count(*) FROM pg_indexes WHERE indexname = 'launch_pushes_at'") ==
        "1");
  CHECK(pg_exec(db.uri(), "SELECT count(*) FROM pg_tables WHERE tablename = 'launch_records'") ==
        "1");

  pg_exec(db.uri(), "UPDATE launch_schema SET version = 99");
  try {
    open_transport(db.uri());
    FAIL("expected Errc::unsupported");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::unsupported);
    CHECK(std::string(e.what()).find("99") != std::string::npos);
  }
}

TEST_CASE("postgres: claim takes the highest priority first, then the oldest") {
  FreshDatabase db;
  auto t = open_transport(db.uri());
  t->create_queue(make_queue("q", true));
  JobSpec low = job("low"), high = job("high"), crit = job("crit");
  low.priority = Priority::low;
  high.priority = Priority::high;
  crit.priority = Priority::critical;
  std::string a = t->push(kQ, low), b = t->push(kQ, high), c = t->push(kQ, job("medium")),
              d = t->push(kQ, crit), e = t->push(kQ, high);

  auto first = t->claim({kQ}, "agent-1");
  REQUIRE(first);
  CHECK(first->id == d);
  CHECK(first->state == ItemState::claimed);
  CHECK(first->agent_id == "agent-1");
  CHECK(first->attempt == 1);
  CHECK(first->lease_expires_at >= first->updated_at + 30 * 1000);
  std::vector<std::string> order;
  while (auto it = t->claim({kQ}, "agent-1")) order.push_back(it->id);
  CHECK(order == std::vector<std::string>{b, e, c, a});
}

namespace {
// Polls `sql` (a count) on `uri` until it is not 0.
void until_pg(const std::string& uri, const std::string& sql) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (pg_exec(uri, sql) == "0") {
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "timed out: " << sql);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}
}  // namespace

TEST_CASE("postgres: a claim skips an item locked by another transaction") {
  FreshDatabase db;
  auto t = open_transport(db.uri());
  t->create_queue(make_queue("q"));
  std::string a = t->push(kQ, job("a")), b = t->push(kQ, job("b"));
  // A second session holds a row lock on the oldest item for a while.
  std::thread holder([&] {
    pg_exec(db.uri(), "BEGIN; SELECT 1 FROM launch_items WHERE id = " + a +
                          " FOR UPDATE; SELECT pg_sleep(1.5); COMMIT;");
  });
  // The holder sleeps only after its FOR UPDATE has taken the lock.
  until_pg(db.uri(),
           "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
           "wait_event = 'PgSleep'");
  auto got = t->claim({kQ}, "agent-1");
  holder.join();
  REQUIRE(got);
  CHECK(got->id == b);
  auto next = t->claim({kQ}, "agent-1");
  REQUIRE(next);
  CHECK(next->id == a);
}

TEST_CASE("postgres: a push wakes an agent waiting on notify_fd") {
  FreshDatabase db;
  auto agent = open_transport(db.uri());
  auto producer = open_transport(db.uri());
  producer->create_queue(make_queue("q"));
  REQUIRE(agent->notify_fd() >= 0);
  agent->drain_notify();
  CHECK_FALSE(agent->wait_for_work(std::chrono::milliseconds(200)));
  std::thread push([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    producer->push(kQ, job("x"));
  });
  bool woken = agent->wait_for_work(std::chrono::seconds(10));
  push.join();
  CHECK(woken);
  auto it = agent->claim({kQ}, "agent-1");
  REQUIRE(it);
  // A requeue wakes too.
  agent->drain_notify();
  agent->requeue(it->id, "agent-1", RequeueReason::released);
  CHECK(agent->wait_for_work(std::chrono::seconds(10)));
}

TEST_CASE("postgres: a push whose answer was lost is stored once, under one id") {
  FreshDatabase db;
  open_transport(db.uri())->create_queue(make_queue("q"));
  LossyProxy proxy(db.uri());
  auto t = open_transport(proxy.uri());
  proxy.lose_answer_to("insert_item");
  std::string id = t->push(kQ, job("once"));
  CHECK(proxy.lost() == 1);
  auto items = t->list({});
  REQUIRE(items.size() == 1);
  CHECK(items[0].id == id);
  CHECK(items[0].spec.name == "once");
}

TEST_CASE("postgres: a claim whose answer was lost returns that item, claimed once") {
  FreshDatabase db;
  auto direct = open_transport(db.uri());
  direct->create_queue(make_queue("q"));
  std::string a = direct->push(kQ, job("a")), b = direct->push(kQ, job("b"));
  LossyProxy proxy(db.uri());
  auto t = open_transport(proxy.uri());
  // One queue and several queues take different statements.
  proxy.lose_answer_to("claim_one");
  auto got = t->claim({kQ}, "agent-1");
  CHECK(proxy.lost() == 1);
  REQUIRE(got);
  CHECK(got->id == a);
  CHECK(got->attempt == 1);
  CHECK(direct->get(b).state == ItemState::pending);

  direct->create_queue(make_queue("other"));
  proxy.lose_answer_to("claim");
  auto second = t->claim({QueueRef{"team", "other"}, kQ}, "agent-1");
  CHECK(proxy.lost() == 2);
  REQUIRE(second);
  CHECK(second->id == b);
  CHECK(second->attempt == 1);
  CHECK(direct->list({kQ, ItemState::claimed, "agent-1", 0}).size() == 2);
}

TEST_CASE("postgres: a finish whose answer was lost succeeds once") {
  FreshDatabase db;
  auto direct = open_transport(db.uri());
  direct->create_queue(make_queue("q"));
  std::string id = direct->push(kQ, job("a"));
  LossyProxy proxy(db.uri());
  auto t = open_transport(proxy.uri());
  REQUIRE(t->claim({kQ}, "agent-1"));
  t->start(id, "agent-1", "");
  // Writes that leave the item pending wake agents (update_item); the others
  // (start, finish, warn...) take the plain update_quiet. Both are covered.
  proxy.lose_answer_to("update_quiet");
  // Without the operation's token the retry would find the item finished
  // and refuse the transition.
  QueueItem done = t->finish(id, "agent-1", 0);
  CHECK(proxy.lost() == 1);
  CHECK(done.state == ItemState::finished);
  CHECK(direct->get(id).state == ItemState::finished);
  // warn is not idempotent by nature: a lost answer must not add it twice.
  proxy.lose_answer_to("update_quiet");
  t->add_warning(id, "note");
  CHECK(proxy.lost() == 2);
  CHECK(direct->get(id).warnings == std::vector<std::string>{"note"});

  // A requeue (back to pending) whose answer was lost: pending once, and the
  // attempt it used is not counted twice.
  std::string other = direct->push(kQ, job("b"));
  auto claimed = t->claim({kQ}, "agent-1");
  REQUIRE(claimed);
  CHECK(claimed->id == other);
  proxy.lose_answer_to("update_item");
  QueueItem back = t->requeue(other, "agent-1", RequeueReason::released);
  CHECK(proxy.lost() == 3);
  CHECK(back.state == ItemState::pending);
  QueueItem stored = direct->get(other);
  CHECK(stored.state == ItemState::pending);
  CHECK(stored.attempt == back.attempt);
  CHECK(stored.agent_id.empty());
}

TEST_CASE("postgres: finish_and_claim is one round trip; with its answer lost it ends and claims once") {
  FreshDatabase db;
  auto direct = open_transport(db.uri());
  direct->create_queue(make_queue("q"));
  std::string a = direct->push(kQ, job("a")), b = direct->push(kQ, job("b"));
  LossyProxy proxy(db.uri());
  auto t = open_transport(proxy.uri());
  REQUIRE(t->claim({kQ}, "agent-1"));
  t->start(a, "agent-1", "");
  // One round trip when nothing goes wrong.
  std::string c = direct->push(kQ, job("c"));
  int syncs = proxy.syncs();
  FinishAndClaim first = t->finish_and_claim(a, "agent-1", 0, {kQ});
  CHECK(proxy.syncs() - syncs == 1);
  REQUIRE(first.next);
  CHECK(first.next->id == b);
  a = b;
  b = c;
  t->start(a, "agent-1", "");
  // The finish and the claim travel in one pipeline: its answer (after the
  // commit of both) is lost. The retry must find both done, not redo them.
  proxy.lose_answer_to("update_quiet");
  FinishAndClaim r = t->finish_and_claim(a, "agent-1", 0, {kQ});
  CHECK(proxy.lost() == 1);
  CHECK(r.finished.state == ItemState::finished);
  REQUIRE(r.next);
  CHECK(r.next->id == b);
  CHECK(r.next->attempt == 1);
  CHECK(direct->get(a).state == ItemState::finished);
  QueueItem stored = direct->get(b);
  CHECK(stored.state == ItemState::claimed);
  CHECK(stored.attempt == 1);
  CHECK(stored.agent_id == "agent-1");
  // The connection that lost its answer mid-pipeline is not reused broken.
  t->start(b, "agent-1", "");
  CHECK(t->finish(b, "agent-1", 0).state == ItemState::finished);
}

TEST_CASE("postgres: a queue created with a lost answer exists once; a second create is refused") {
  FreshDatabase db;
  open_transport(db.uri());
  LossyProxy proxy(db.uri());
  auto t = open_transport(proxy.uri());
  proxy.lose_answer_to("create_queue");
  t->create_queue(make_queue("q"));
  CHECK(proxy.lost() == 1);
  CHECK(t->list_queues().size() == 1);
  try {
    t->create_queue(make_queue("q"));
    FAIL("expected Errc::exists");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::exists);
  }
}

TEST_CASE("postgres: operations ride through a server restart; the listener comes back") {
  FreshDatabase db;
  auto t = open_transport(db.uri());
  t->create_queue(make_queue("q"));
  std::string before = t->push(kQ, job("before"));
  REQUIRE(t->notify_fd() >= 0);

  // An operation started while the server is down waits for it: the
  // server comes back once the push has said it is retrying.
  std::string during;
  {
    LogLines log;
    launch_test::stop_server_immediate();
    std::thread pusher([&] { during = t->push(kQ, job("during")); });
    bool retried = log.wait_for("retrying in");
    launch_test::start_server();
    pusher.join();
    CHECK(retried);
  }
  CHECK_FALSE(during.empty());

  // The LISTEN socket saw the server go: draining reconnects it, and a
  // later push wakes it again.
  for (int i = 0; i < 50 && t->wait_for_work(std::chrono::milliseconds(100)); ++i) {
  }
  auto other = open_transport(db.uri());
  other->push(kQ, job("after"));
  CHECK(t->wait_for_work(std::chrono::seconds(10)));

  std::vector<std::string> names;
  for (const auto& it : t->list({})) names.push_back(it.spec.name);
  CHECK(names == std::vector<std::string>{"before", "during", "after"});
}

TEST_CASE("postgres: delete_queue refuses while items are held and removes the rest") {
  FreshDatabase db;
  auto t = open_transport(db.uri());
  t->create_queue(make_queue("q"));
  std::string a = t->push(kQ, job("a"));
  t->push(kQ, job("b"));
  REQUIRE(t->claim({kQ}, "agent-1"));
  try {
    t->delete_queue(kQ, QueueDelete::with_pending);
    FAIL("expected Errc::state");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::state);
    CHECK(std::string(e.what()).find(a) != std::string::npos);
  }
  CHECK(t->list({}).size() == 2);
  t->fail(a, "agent-1", ItemError{ErrorStage::agent, "gave up"});
  t->delete_queue(kQ, QueueDelete::with_pending);
  CHECK(t->list({}).empty());
  CHECK(t->list_queues().empty());
  try {
    t->push(kQ, job("c"));
    FAIL("expected Errc::not_found");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::not_found);
  }
}

TEST_CASE("postgres: three agent processes share 10,000 items; each ends exactly once") {
  FreshDatabase db;
  auto producer = open_transport(db.uri());
  producer->create_queue(make_queue("q"));
  constexpr int kItems = 10000, kAgents = 3;
  std::string dir = launch_test::temp_base() + "/launch-pg-agents.XXXXXX";
  REQUIRE(mkdtemp(&dir[0]) != nullptr);

  Children kids;
  for (int a = 0; a < kAgents; ++a) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // A child: its own transport, hence its own connections.
      int code = 0;
      try {
        auto t = open_transport(db.uri());
        std::string agent = "agent-" + std::to_string(a);
        std::ofstream out(dir + "/" + agent);
        for (;;) {
          auto it = t->claim({kQ}, agent);
          if (!it) {
            t->wait_for_work(std::chrono::milliseconds(200));
            continue;
          }
          t->start(it->id, agent, "");
          t->finish(it->id, agent, 0);
          if (it->spec.name == "stop") break;
          out << it->id << "\n";
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "agent %d: %s\n", a, e.what());
        code = 1;
      }
      _exit(code);
    }
    kids.add(pid);
  }
  std::set<std::string> pushed;
  for (int i = 0; i < kItems; ++i) pushed.insert(producer->push(kQ, job("job")));
  for (int a = 0; a < kAgents; ++a) producer->push(kQ, job("stop"));
  for (int code : kids.wait_all()) CHECK(code == 0);

  std::map<std::string, int> done;
  std::size_t total = 0;
  for (int a = 0; a < kAgents; ++a) {
    std::string path = dir + "/agent-" + std::to_string(a), line;
    std::ifstream in(path);
    std::size_t mine = 0;
    while (std::getline(in, line)) {
      done[line]++;
      ++mine;
    }
    total += mine;
    MESSAGE("agent-" << a << " finished " << mine << " items");
    std::remove(path.c_str());
  }
  ::rmdir(dir.c_str());
  CHECK(total == static_cast<std::size_t>(kItems));
  CHECK(done.size() == static_cast<std::size_t>(kItems));
  int twice = 0;
  for (const auto& kv : done) twice += kv.second > 1 ? 1 : 0;
  CHECK(twice == 0);
  std::size_t finished = 0, other = 0;
  for (const auto& it : producer->list({})) {
    if (it.spec.name != "job") continue;
    CHECK(pushed.count(it.id) == 1);
    if (it.state == ItemState::finished && it.attempt == 1) {
      ++finished;
    } else {
      ++other;
    }
  }
  CHECK(finished == static_cast<std::size_t>(kItems));
  CHECK(other == 0);
}
