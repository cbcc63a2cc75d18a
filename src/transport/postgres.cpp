// postgres:// — queues in a PostgreSQL database, shared by agents on many
// hosts. The URI is handed to libpq as is (postgres://user:pw@host:port/db?...).
//
// Layout. Every mutable field of an item is a column, so a claim is one
// UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED) statement; the job
// spec, which never changes after push, is JSON text. Tables are prefixed
// launch_ and created by the library (see kMigrations): the version lives in
// launch_schema and migrations run under pg_advisory_xact_lock, so agents
// starting together apply each step once.
//
// Wake-ups. Pushes and every update that leaves an item pending send
// NOTIFY launch_work in their own transaction. notify_fd() opens a second
// connection dedicated to LISTEN; the descriptor handed out is a dup of its
// socket kept at a fixed number across reconnects (dup2), so a caller may
// keep polling it.
//
// Lost connections. Every operation runs in with_retry(): when the server
// goes away (connection failure, admin/crash shutdown) the connection is
// dropped and the operation tried again on a fresh one, with exponential
// backoff, for up to kRetrySeconds; then Errc::io. The first retry of an
// operation logs one warning, later ones only at debug level. A connection
// the server refuses for a reason waiting does not cure (SQLSTATE class 28
// invalid authorization, 3D no such database, 3F no such schema, 42 no
// privilege; a password needed and not given) is not retried: Errc::io at
// once, with the server's words. A statement interrupted
// by a lost connection either committed or not, and the client cannot tell
// which, so every mutating operation carries a random token generated once
// per call and kept across its retries:
//   - push: the token is a key in launch_pushes (PRIMARY KEY), inserted in
//     the same statement as the item. A retry's insert conflicts and returns
//     the id already assigned, so the item is stored once.
//   - claim and update_item: the statement that changes the item also
//     pushes the token onto the item's recent_ops (its last 8 operations).
//     A retry first looks for the token there; if found, the operation
//     happened and the item is returned as it is.
//   - update_item writes with a compare-and-set on a per-item version, so
//     an old statement still in flight and its retry cannot both apply:
//     whichever comes second finds the version moved, reads again and then
//     finds the token. It also means a read-modify-write never overwrites a
//     concurrent writer: on a conflict it reads and applies fn again.
//   - finish_and_claim sends the finish's compare-and-set and the claim in
//     one pipeline, which the server runs as one transaction: the finish's
//     token on the item means both committed.
//   - create_queue keeps its token on the queue row; delete_queue and the
//     agent table writes are idempotent by nature.
// A claim whose answer was lost and that committed only after its retry
// had looked (the old statement was still queued on the server) leaves an
// item claimed by an agent that does not know it; its lease expires and it
// goes back to pending like any lost agent's item. Its job never ran.
// launch_pushes rows older than an hour are pruned by expire_leases().
#include <fcntl.h>
#include <poll.h>
#include <sys/random.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "builtins/factories.hpp"
#include "util/json.hpp"
#include "util/random.hpp"
#include "util/sha256.hpp"
#include "util/redact.hpp"
#include "launch/error.hpp"
#include "launch/log.hpp"
#include "launch/sys/record_transport.hpp"

namespace launch {
namespace {

// How long an operation keeps retrying a lost connection before Errc::io.
constexpr int kRetrySeconds = 60;
// launch_pushes rows older than this are pruned; far longer than any retry.
constexpr std::int64_t kPushKeysKeepMs = 3600 * 1000;
constexpr const char* kChannel = "launch_work";

// The schema, one step per version. Never edit a released step: append.
const char* const kMigrations[] = {
    // 1: queues, items, agents, push keys.
    R"sql(
CREATE TABLE launch_queues (
  entity text NOT NULL,
  name text NOT NULL,
  def text NOT NULL,
  created_at bigint NOT NULL,
  create_token text,
  PRIMARY KEY (entity, name));
CREATE TABLE launch_items (
  id bigserial PRIMARY KEY,
  entity text NOT NULL,
  queue text NOT NULL,
  state text NOT NULL,
  priority integer NOT NULL,
  spec text NOT NULL,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  started_at bigint NOT NULL DEFAULT 0,
  ended_at bigint NOT NULL DEFAULT 0,
  attempt integer NOT NULL DEFAULT 0,
  resume_count integer NOT NULL DEFAULT 0,
  lease_seconds integer NOT NULL,
  max_attempts integer NOT NULL,
  agent_id text NOT NULL DEFAULT '',
  lease_expires_at bigint NOT NULL DEFAULT 0,
  run_id text NOT NULL DEFAULT '',
  exit_code integer,
  error_stage text,
  error_message text,
  warnings text NOT NULL DEFAULT '[]',
  version bigint NOT NULL DEFAULT 0,
  recent_ops text[] NOT NULL DEFAULT '{}',
  FOREIGN KEY (entity, queue) REFERENCES launch_queues (entity, name));
CREATE INDEX launch_items_pending ON launch_items (entity, queue, priority, id)
  WHERE state = 'pending';
CREATE INDEX launch_items_leased ON launch_items (lease_expires_at)
  WHERE state IN ('claimed', 'running', 'stopping');
CREATE INDEX launch_items_queue ON launch_items (entity, queue, id);
CREATE TABLE launch_agents (
  id text PRIMARY KEY,
  host text NOT NULL,
  pid integer NOT NULL,
  version text NOT NULL,
  entity text NOT NULL,
  queues text NOT NULL,
  status text NOT NULL,
  max_jobs integer NOT NULL,
  running_jobs integer NOT NULL,
  started_at bigint NOT NULL,
  last_seen bigint NOT NULL);
CREATE TABLE launch_pushes (
  push_key text PRIMARY KEY,
  item_id bigint NOT NULL,
  at bigint NOT NULL);
)sql",
    // 2: pruning old push keys by age.
    R"sql(
CREATE INDEX launch_pushes_at ON launch_pushes (at);
)sql",
    // 3: a launch server's records (Transport::*_record).
    R"sql(
CREATE TABLE launch_records (
  kind text NOT NULL,
  key text NOT NULL,
  value text NOT NULL,
  PRIMARY KEY (kind, key));
)sql",
};
constexpr int kSchemaVersion = static_cast<int>(sizeof kMigrations / sizeof kMigrations[0]);
// Any fixed number: the advisory lock every migrating process takes.
constexpr const char* kMigrationLock = "7262160913412";

// The item columns, in the order row_to_item() reads them.
#define LAUNCH_ITEM_COLS                                                                 \
  "id, entity, queue, state, priority, spec, created_at, updated_at, started_at, "     \
  "ended_at, attempt, resume_count, lease_seconds, max_attempts, agent_id, "           \
  "lease_expires_at, run_id, exit_code, error_stage, error_message, warnings, version"

// The prepared statements, by name. Prepared on each connection on first use.
struct Statement {
  const char* name;
  const char* sql;
};

const Statement kGetItem = {"get_item",
                            "SELECT " LAUNCH_ITEM_COLS " FROM launch_items WHERE id = $1"};

// The item and its push key in one statement; a key already there (an
// earlier attempt committed) inserts nothing and returns that attempt's id.
const Statement kInsertItem = {
    "insert_item",
    "WITH k AS ("
    "  INSERT INTO launch_pushes (push_key, item_id, at) "
    "  VALUES ($10, nextval('launch_items_id_seq'), $5) "
    "  ON CONFLICT (push_key) DO NOTHING RETURNING item_id), "
    "ins AS ("
    "  INSERT INTO launch_items (id, entity, queue, state, priority, spec, created_at, "
    "    updated_at, lease_seconds, max_attempts, run_id, warnings) "
    "  SELECT item_id, $1, $2, 'pending', $3, $4, $5, $5, $6, $7, $8, $9 FROM k RETURNING id), "
    "n AS (SELECT pg_notify('launch_work', $1 || '/' || $2) FROM ins) "
    "SELECT id FROM ins WHERE (SELECT count(*) FROM n) >= 0 "
    "UNION ALL SELECT item_id FROM launch_pushes WHERE push_key = $10"};

// The compare-and-set write of every mutable column ($1 id, $2 the version
// read, $20 the op token, pushed onto the item's recent_ops).
#define LAUNCH_ITEM_CAS                                                                    \
  "UPDATE launch_items SET state = $3, priority = $4, spec = COALESCE($5, spec), "       \
  "  updated_at = $6, started_at = $7, ended_at = $8, attempt = $9, resume_count = $10, " \
  "  lease_seconds = $11, max_attempts = $12, agent_id = $13, lease_expires_at = $14, "   \
  "  run_id = $15, exit_code = $16, error_stage = $17, error_message = $18, "            \
  "  warnings = $19, version = version + 1, recent_ops = ($20::text || recent_ops)[1:8] " \
  "WHERE id = $1 AND version = $2"

// LAUNCH_ITEM_CAS for an item that ends up pending: wakes agents too.
const Statement kUpdateItem = {
    "update_item",
    "WITH u AS (" LAUNCH_ITEM_CAS " RETURNING id, entity, queue, state), "
    "n AS (SELECT pg_notify('launch_work', entity || '/' || queue) FROM u "
    "      WHERE state = 'pending') "
    "SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM n)"};

// The same write for an item that does not end up pending (start, finish,
// heartbeat...): nobody needs waking, so a plain UPDATE without the NOTIFY
// branch and counting subqueries; its row count says whether the version
// matched.
const Statement kUpdateQuiet = {"update_quiet", LAUNCH_ITEM_CAS};

// lifecycle::claim in SQL: claimed, this agent, attempt+1, a fresh lease,
// updated_at. One round trip; SKIP LOCKED lets concurrent claimers pass each
// other. $1/$2: the queues' entities and names as arrays.
const Statement kClaim = {
    "claim",
    "WITH u AS ("
    "  UPDATE launch_items SET state = 'claimed', agent_id = $3, attempt = attempt + 1, "
    "    lease_expires_at = $4 + lease_seconds::bigint * 1000, updated_at = $4, "
    "    version = version + 1, recent_ops = ($5::text || recent_ops)[1:8] "
    "  WHERE state = 'pending' AND id = ("
    "    SELECT p.id FROM unnest($1::text[], $2::text[]) AS q(entity, name) "
    "    CROSS JOIN LATERAL ("
    "      SELECT id, priority FROM launch_items "
    "      WHERE state = 'pending' AND entity = q.entity AND queue = q.name "
    "      ORDER BY priority, id LIMIT 1 FOR UPDATE SKIP LOCKED) p "
    "    ORDER BY p.priority, p.id LIMIT 1) "
    "  RETURNING " LAUNCH_ITEM_COLS ") "
    "SELECT " LAUNCH_ITEM_COLS " FROM u"};

// Did the operation with token $2 reach item $1?
// The same for one queue ($1/$2 its entity and name): the common case (an
// agent polls its queues in turn), without the unnest, join and sort.
const Statement kClaimOne = {
    "claim_one",
    "WITH u AS ("
    "  UPDATE launch_items SET state = 'claimed', agent_id = $3, attempt = attempt + 1, "
    "    lease_expires_at = $4 + lease_seconds::bigint * 1000, updated_at = $4, "
    "    version = version + 1, recent_ops = ($5::text || recent_ops)[1:8] "
    "  WHERE state = 'pending' AND id = ("
    "    SELECT id FROM launch_items "
    "    WHERE state = 'pending' AND entity = $1 AND queue = $2 "
    "    ORDER BY priority, id LIMIT 1 FOR UPDATE SKIP LOCKED) "
    "  RETURNING " LAUNCH_ITEM_COLS ") "
    "SELECT " LAUNCH_ITEM_COLS " FROM u"};

const Statement kOpOnItem = {"op_on_item",
                             "SELECT 1 FROM launch_items WHERE id = $1 AND $2 = ANY(recent_ops)"};

// The item a claim with token $1 took, if it still holds it (off the index
// of leased items: only consulted when a claim's answer was lost).
const Statement kClaimedByOp = {
    "claimed_by_op",
    "SELECT " LAUNCH_ITEM_COLS " FROM launch_items "
    "WHERE state IN ('claimed', 'running', 'stopping') AND lease_expires_at > 0 "
    "AND $1 = ANY(recent_ops) AND agent_id = $2"};

const Statement kExpired = {
    "expired",
    "SELECT id FROM launch_items WHERE state IN ('claimed', 'running', 'stopping') "
    "AND lease_expires_at > 0 AND lease_expires_at < $1 ORDER BY id"};

const Statement kPruneOps = {"prune_pushes", "DELETE FROM launch_pushes WHERE at < $1"};

const Statement kTouchAgent = {"touch_agent",
                               "UPDATE launch_agents SET last_seen = $2 WHERE id = $1"};

const Statement kUpsertAgent = {
    "upsert_agent",
    "INSERT INTO launch_agents (id, host, pid, version, entity, queues, status, max_jobs, "
    "  running_jobs, started_at, last_seen) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
    "ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid, "
    "  version = EXCLUDED.version, entity = EXCLUDED.entity, queues = EXCLUDED.queues, "
    "  status = EXCLUDED.status, max_jobs = EXCLUDED.max_jobs, "
    "  running_jobs = EXCLUDED.running_jobs, started_at = EXCLUDED.started_at, "
    "  last_seen = EXCLUDED.last_seen"};

const Statement kListAgents = {
    "list_agents",
    "SELECT id, host, pid, version, entity, queues, status, max_jobs, running_jobs, "
    "started_at, last_seen FROM launch_agents ORDER BY id"};

const Statement kGetRecord = {
    "get_record", "SELECT value FROM launch_records WHERE kind = $1 AND key = $2"};
const Statement kInsertRecord = {
    "insert_record",
    "INSERT INTO launch_records (kind, key, value) VALUES ($1, $2, $3) "
    "ON CONFLICT DO NOTHING RETURNING key"};
const Statement kReplaceRecord = {
    "replace_record",
    "UPDATE launch_records SET value = $4 WHERE kind = $1 AND key = $2 AND value = $3 "
    "RETURNING key"};
const Statement kDeleteRecord = {
    "delete_record", "DELETE FROM launch_records WHERE kind = $1 AND key = $2 RETURNING key"};
const Statement kListRecords = {
    "list_records", "SELECT key, value FROM launch_records WHERE kind = $1 ORDER BY key"};

const Statement kCreateQueue = {
    "create_queue",
    "WITH ins AS (INSERT INTO launch_queues (entity, name, def, created_at, create_token) "
    "  VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING create_token) "
    "SELECT create_token FROM ins "
    "UNION ALL SELECT create_token FROM launch_queues WHERE entity = $1 AND name = $2"};

const Statement kLockQueue = {
    "lock_queue", "SELECT 1 FROM launch_queues WHERE entity = $1 AND name = $2 FOR UPDATE"};

const Statement kBusyItems = {
    "busy_items",
    "SELECT id, state FROM launch_items WHERE entity = $1 AND queue = $2 "
    "AND state IN ('claimed', 'running', 'stopping') ORDER BY id LIMIT 1 FOR UPDATE"};

const Statement kDeleteItems = {
    "delete_items",
    "DELETE FROM launch_items WHERE entity = $1 AND queue = $2 "
    "AND state NOT IN ('claimed', 'running', 'stopping') RETURNING id, state"};

const Statement kDeleteQueue = {"delete_queue",
                                "DELETE FROM launch_queues WHERE entity = $1 AND name = $2"};

const Statement kGetQueue = {"get_queue",
                             "SELECT def, created_at FROM launch_queues "
                             "WHERE entity = $1 AND name = $2"};

const Statement kListQueues = {"list_queues",
                               "SELECT def, created_at FROM launch_queues ORDER BY entity, name"};

// The server went away (or is shutting down) mid-operation: whether the
// last statement committed is unknown. Caught by with_retry().
struct ConnectionLost {
  std::string message;
};

// Owns a PGresult.
class Result {
 public:
  explicit Result(PGresult* r = nullptr) : r_(r) {}
  Result(Result&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  Result& operator=(Result&& o) noexcept {
    std::swap(r_, o.r_);
    return *this;
  }
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  ~Result() { PQclear(r_); }

  int rows() const { return PQntuples(r_); }
  bool null(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
  std::string text(int row, int col) const { return PQgetvalue(r_, row, col); }
  std::int64_t num(int row, int col) const { return std::strtoll(PQgetvalue(r_, row, col), nullptr, 10); }
  PGresult* get() const { return r_; }

 private:
  PGresult* r_;
};

// A statement's parameters: the texts it owns, and SQL NULLs.
class Params {
 public:
  Params& add(std::string text) {
    texts_.push_back(std::move(text));
    nulls_.push_back(false);
    return *this;
  }
  Params& add_null() {
    texts_.emplace_back();
    nulls_.push_back(true);
    return *this;
  }
  // Valid while this object lives unchanged.
  std::vector<const char*> get() const {
    std::vector<const char*> out;
    for (std::size_t i = 0; i < texts_.size(); ++i) {
      out.push_back(nulls_[i] ? nullptr : texts_[i].c_str());
    }
    return out;
  }

 private:
  std::vector<std::string> texts_;
  std::vector<bool> nulls_;
};

// SQLSTATEs that mean the server, not the statement, failed: the
// connection is gone or about to be (class 08; admin, crash or startup
// shutdown: 57P01-57P03).
bool is_connection_state(const std::string& sqlstate) {
  return sqlstate.compare(0, 2, "08") == 0 || sqlstate == "57P01" || sqlstate == "57P02" ||
         sqlstate == "57P03";
}

// Connection failures that waiting does not cure: the server answered, and
// its answer is about who we are or what we asked for.
bool never_heals(const std::string& sqlstate) {
  for (const char* cls : {"28", "3D", "3F", "42"}) {
    if (sqlstate.compare(0, 2, cls) == 0) return true;
  }
  return false;
}

// libpq's connection error, said in verbose mode ("...failed: FATAL:
// 3D000: database "x" does not exist\nLOCATION: ..."): the SQLSTATE it
// carries ("" when the server sent none: refused, unreachable, timed out),
// and the message as the default mode says it.
struct ConnectFailure {
  std::string sqlstate;
  std::string message;
};

ConnectFailure parse_connect_failure(const std::string& verbose) {
  ConnectFailure f;
  auto is_code_char = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'); };
  std::string text;
  std::size_t start = 0;
  while (start < verbose.size()) {
    std::size_t end = verbose.find('\n', start);
    if (end == std::string::npos) end = verbose.size();
    std::string line = verbose.substr(start, end - start);
    start = end + 1;
    if (line.compare(0, 9, "LOCATION:") == 0) continue;
    // "<severity>:  XXXXX: message": take the code out.
    std::size_t at = line.find(":  ");
    if (at != std::string::npos && line.size() >= at + 10 && line[at + 8] == ':' &&
        line[at + 9] == ' ' &&
        std::all_of(line.begin() + static_cast<std::ptrdiff_t>(at + 3),
                    line.begin() + static_cast<std::ptrdiff_t>(at + 8), is_code_char)) {
      if (f.sqlstate.empty()) f.sqlstate = line.substr(at + 3, 5);
      line.erase(at + 3, 7);
    }
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.pop_back();
    if (line.empty()) continue;
    if (!text.empty()) text += ' ';
    std::size_t lead = line.find_first_not_of(" \t");
    text += line.substr(lead);
  }
  f.message = text;
  return f;
}

// libpq's connect_timeout of a connection being made, in seconds (0: none;
// libpq reads 1 as 2).
int connect_timeout_seconds(PGconn* pg) {
  int out = 0;
  if (PQconninfoOption* opts = PQconninfo(pg)) {
    for (PQconninfoOption* o = opts; o->keyword; ++o) {
      if (std::strcmp(o->keyword, "connect_timeout") == 0 && o->val) out = std::atoi(o->val);
    }
    PQconninfoFree(opts);
  }
  return out == 1 ? 2 : std::max(out, 0);
}

class Conn {
 public:
  explicit Conn(PGconn* pg) : pg_(pg) {}
  ~Conn() { PQfinish(pg_); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  PGconn* pg() const { return pg_; }

  // Runs a prepared statement (preparing it on this connection first).
  // NULL entries of `params` are SQL NULLs.
  Result run(const Statement& st, const std::vector<const char*>& params) {
    prepare(st);
    return check(Result(PQexecPrepared(pg_, st.name, static_cast<int>(params.size()),
                                       params.data(), nullptr, nullptr, 0)),
                 st.name);
  }

  // Runs prepared statements in one round trip (libpq's pipeline mode) and
  // one implicit transaction: they commit together, and an error aborts the
  // ones after it. One Result per statement, checked in order.
  using Step = std::pair<const Statement*, std::vector<const char*>>;
  std::vector<Result> run_pipeline(const std::vector<Step>& steps) {
    for (const auto& s : steps) prepare(*s.first);
    if (PQenterPipelineMode(pg_) != 1) throw ConnectionLost{"cannot enter pipeline mode"};
    for (const auto& s : steps) {
      if (PQsendQueryPrepared(pg_, s.first->name, static_cast<int>(s.second.size()),
                              s.second.data(), nullptr, nullptr, 0) != 1) {
        throw ConnectionLost{fmt::format("{}: {}", s.first->name, PQerrorMessage(pg_))};
      }
    }
    if (PQpipelineSync(pg_) != 1) throw ConnectionLost{"pipeline sync failed"};
    std::vector<Result> out;
    for (std::size_t i = 0; i < steps.size(); ++i) {
      out.emplace_back(PQgetResult(pg_));
      if (!out.back().get()) break;   // the connection failed
      PQclear(PQgetResult(pg_));      // the null that ends each statement's results
    }
    if (out.size() == steps.size() && out.back().get()) {
      Result sync(PQgetResult(pg_));
      if (sync.get() && PQresultStatus(sync.get()) == PGRES_PIPELINE_SYNC) {
        PQexitPipelineMode(pg_);
      }
    }
    // A connection left in pipeline mode is not pooled again (release()).
    for (std::size_t i = 0; i < steps.size(); ++i) {
      if (i == out.size()) throw ConnectionLost{"connection lost in a pipeline"};
      out[i] = check(std::move(out[i]), steps[i].first->name);
    }
    return out;
  }

  // Runs plain SQL text (one or more statements, no parameters).
  Result exec(const char* sql, const char* what) { return check(Result(PQexec(pg_, sql)), what); }

  // Throws ConnectionLost when the server went away, else an Error with the
  // server's SQLSTATE in `sqlstate_`.
  Result check(Result r, const char* what) {
    ExecStatusType st = r.get() ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
    const char* code = r.get() ? PQresultErrorField(r.get(), PG_DIAG_SQLSTATE) : nullptr;
    last_sqlstate_ = code ? code : "";
    std::string msg = r.get() ? PQresultErrorMessage(r.get()) : PQerrorMessage(pg_);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    if (PQstatus(pg_) == CONNECTION_BAD || is_connection_state(last_sqlstate_) || !r.get()) {
      throw ConnectionLost{fmt::format("{}: {}", what, msg)};
    }
    throw Error(Errc::io, fmt::format("postgres: {}: {}", what, msg));
  }

  const std::string& last_sqlstate() const { return last_sqlstate_; }

 private:
  void prepare(const Statement& st) {
    if (prepared_.count(st.name)) return;
    check(Result(PQprepare(pg_, st.name, st.sql, 0, nullptr)), st.name);
    prepared_.insert(st.name);
  }

  PGconn* pg_;
  std::set<std::string> prepared_;
  std::string last_sqlstate_;
};

// 128 random bits from the kernel for each token: a process-local
// generator would repeat its sequence in every child of a fork.
std::string random_token() { return hex(util::random_bytes(16)); }

// A text[] literal: {"a","b"} with " and \ escaped.
std::string text_array(const std::vector<std::string>& v) {
  std::string out = "{";
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : v[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

std::string warnings_json(const std::vector<std::string>& w) {
  json::Document d;
  d.SetObject();
  json::Value arr = json::string_array(w, d.GetAllocator());
  return json::dump(arr);
}

std::vector<std::string> warnings_from_json(const std::string& text) {
  json::Document d = json::parse("{\"w\":" + text + "}", "item warnings");
  return json::get_string_array(d, "w", "item warnings");
}

// An item id is the row's bigserial; anything else names no item.
std::optional<std::int64_t> parse_id(const std::string& id) {
  if (id.empty() || id.size() > 18) return std::nullopt;
  for (char c : id) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  return std::strtoll(id.c_str(), nullptr, 10);
}

// An item as read from its row. When the row cannot be read, `item` is
// what could be, quarantined (lifecycle::quarantine), and `unreadable` is
// set: record_quarantine() writes the failure.
struct ItemRow {
  QueueItem item;
  std::int64_t version = 0;
  bool unreadable = false;
};

ItemRow row_to_item(const Result& r, int row) {
  ItemRow out;
  QueueItem& it = out.item;
  it.id = r.text(row, 0);
  it.queue = QueueRef{r.text(row, 1), r.text(row, 2)};
  // The integer columns are typed by the server and always read.
  it.created_at = r.num(row, 6);
  it.updated_at = r.num(row, 7);
  it.started_at = r.num(row, 8);
  it.ended_at = r.num(row, 9);
  it.attempt = static_cast<int>(r.num(row, 10));
  it.resume_count = static_cast<int>(r.num(row, 11));
  it.lease_seconds = static_cast<int>(r.num(row, 12));
  it.max_attempts = static_cast<int>(r.num(row, 13));
  it.agent_id = r.text(row, 14);
  it.lease_expires_at = r.num(row, 15);
  it.run_id = r.text(row, 16);
  if (!r.null(row, 17)) it.exit_code = static_cast<int>(r.num(row, 17));
  out.version = r.num(row, 21);
  try {
    it.state = parse_item_state(r.text(row, 3));
    std::int64_t priority = r.num(row, 4);
    if (priority < 0 || priority > 3) {
      throw Error(Errc::invalid, fmt::format("priority {} is not 0-3", priority));
    }
    it.priority = static_cast<Priority>(priority);
    if (!r.null(row, 18)) {
      it.error = ItemError{parse_error_stage(r.text(row, 18)), r.text(row, 19)};
    }
    it.warnings = warnings_from_json(r.text(row, 20));
    it.spec = job_spec_from_json(r.text(row, 5));
  } catch (const Error& e) {
    try {
      it.state = parse_item_state(r.text(row, 3));
    } catch (const Error&) {
      it.state = ItemState::pending;  // unknown: not ended
    }
    it.spec = JobSpec{};
    it.exit_code.reset();
    it.error.reset();
    it.warnings.clear();
    out.unreadable = lifecycle::quarantine(it, e.what(), now_ms());
  }
  return out;
}

// Records the failure of a quarantined item, unless someone wrote the row
// since it was read; its unreadable columns stay as they are.
const Statement kQuarantine = {
    "quarantine",
    "UPDATE launch_items SET state = $3, updated_at = $4, ended_at = $5, "
    "  lease_expires_at = 0, error_stage = $6, error_message = $7, version = version + 1 "
    "WHERE id = $1 AND version = $2"};

void record_quarantine(Conn& c, ItemRow& row) {
  const QueueItem& it = row.item;
  std::string version = std::to_string(row.version), updated = std::to_string(it.updated_at),
              ended = std::to_string(it.ended_at);
  Result r = c.run(kQuarantine, {it.id.c_str(), version.c_str(), to_string(it.state),
                                 updated.c_str(), ended.c_str(), to_string(it.error->stage),
                                 it.error->message.c_str()});
  if (std::strcmp(PQcmdTuples(r.get()), "1") == 0) {
    row.version += 1;
    log(LogLevel::warn, fmt::format("postgres: item {} failed: {}", it.id, it.error->message));
  }
  row.unreadable = false;
}

// record_quarantine() for the rows a read found; a failure (a read-only
// role) is logged, the items are still shown failed.
void record_quarantines(Conn& c, std::vector<ItemRow>& rows) {
  for (ItemRow& row : rows) {
    try {
      record_quarantine(c, row);
    } catch (const Error& e) {
      log(LogLevel::warn, fmt::format("postgres: item {} is unreadable and could not be "
                                      "marked failed: {}",
                                      row.item.id, e.what()));
    }
  }
}

class PostgresTransport final : public RecordTransport {
 public:
  explicit PostgresTransport(std::string uri) : uri_(std::move(uri)) {
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(uri_.c_str(), &err);
    if (!opts) {
      std::string msg = err ? err : "out of memory";
      PQfreemem(err);
      while (!msg.empty() && msg.back() == '\n') msg.pop_back();
      throw Error(Errc::invalid, fmt::format("transport URI \"{}\": {}", util::mask_password(uri_), msg));
    }
    PQconninfoFree(opts);
    with_retry("open", [&](Conn& c, bool) { migrate(c); });
    // Items of agents that went away come back whenever anyone opens the
    // store, not only when an agent starts.
    try {
      expire_leases();
    } catch (const Error& e) {
      log(LogLevel::warn, fmt::format("postgres: cannot expire leases: {}", e.what()));
    }
  }

  ~PostgresTransport() override {
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }

  std::string uri() const override { return uri_; }

  // --- queues

  void create_queue(const QueueDef& queue) override {
    queue.validate();
    QueueDef q = queue;
    q.created_at = now_ms();
    std::string def = to_json(q), at = std::to_string(q.created_at), token = random_token();
    with_retry("create_queue", [&](Conn& c, bool) {
      Result r = c.run(kCreateQueue, {q.entity.c_str(), q.name.c_str(), def.c_str(),
                                      at.c_str(), token.c_str()});
      // The first row is ours when we inserted it (now or on an earlier
      // attempt whose answer was lost); a different token: someone else's.
      if (r.rows() == 0 || r.text(0, 0) != token) {
        throw Error(Errc::exists, fmt::format("queue \"{}\" already exists", q.ref().str()));
      }
    });
  }

  QueueDef get_queue(const QueueRef& ref) override {
    QueueDef out;
    with_retry("get_queue", [&](Conn& c, bool) {
      Result r = c.run(kGetQueue, {ref.entity.c_str(), ref.name.c_str()});
      if (r.rows() == 0) {
        throw Error(Errc::not_found, fmt::format("queue \"{}\" does not exist", ref.str()));
      }
      out = queue_from_row(r, 0);
    });
    return out;
  }

  std::vector<QueueDef> list_queues() override {
    std::vector<QueueDef> out;
    with_retry("list_queues", [&](Conn& c, bool) {
      Result r = c.run(kListQueues, {});
      out.clear();
      for (int i = 0; i < r.rows(); ++i) out.push_back(queue_from_row(r, i));
    });
    return out;
  }

  std::vector<std::string> delete_queue(const QueueRef& ref, QueueDelete mode) override {
    std::vector<std::string> ids;
    with_retry("delete_queue", [&](Conn& c, bool retrying) {
      ids.clear();
      Transaction tx(c);
      Result q = c.run(kLockQueue, {ref.entity.c_str(), ref.name.c_str()});
      if (q.rows() == 0) {
        // An earlier attempt deleted it and its answer was lost: so were
        // the ids of what it deleted, and none are returned.
        if (retrying) return;
        throw Error(Errc::not_found, fmt::format("queue \"{}\" does not exist", ref.str()));
      }
      Result busy = c.run(kBusyItems, {ref.entity.c_str(), ref.name.c_str()});
      if (busy.rows() > 0) {
        throw Error(Errc::state, fmt::format("queue \"{}\": item {} is {}; cancel it or let "
                                             "it end before deleting the queue",
                                             ref.str(), busy.text(0, 0), busy.text(0, 1)));
      }
      // A claim racing with us can only take a pending row we have not
      // locked yet; the delete below waits for it and then skips the row
      // (no longer pending-or-terminal), and the queue's key is still in
      // use, so the final delete fails and everything rolls back.
      // The queue row is locked: no push can add an item until we commit,
      // so the pending items counted are the ones deleted.
      Result deleted = c.run(kDeleteItems, {ref.entity.c_str(), ref.name.c_str()});
      std::size_t pending = 0;
      for (int row = 0; row < deleted.rows(); ++row) {
        ids.push_back(deleted.text(row, 0));
        pending += deleted.text(row, 1) == "pending";
      }
      lifecycle::check_delete_pending(ref, mode, pending);
      try {
        c.run(kDeleteQueue, {ref.entity.c_str(), ref.name.c_str()});
      } catch (const Error&) {
        if (c.last_sqlstate() != "23503") throw;
        throw Error(Errc::state, fmt::format("queue \"{}\": an item was claimed while it was "
                                             "being deleted; try again once it ends",
                                             ref.str()));
      }
      tx.commit();
    });
    std::sort(ids.begin(), ids.end(), [](const std::string& a, const std::string& b) {
      return a.size() != b.size() ? a.size() < b.size() : a < b;
    });
    return ids;
  }

  // --- items

  std::optional<QueueItem> claim(const std::vector<QueueRef>& queues,
                                 const std::string& agent_id) override {
    if (agent_id.empty()) throw Error(Errc::invalid, "claim: agent id is empty");
    if (queues.empty()) return std::nullopt;
    std::string token = random_token();
    std::optional<QueueItem> out;
    with_retry("claim", [&](Conn& c, bool retrying) {
      out.reset();
      if (retrying && (out = claimed_by(c, token, agent_id))) return;  // an earlier attempt committed
      // A claimed item that cannot be read is failed; then claim again.
      for (bool skipped = true; skipped; token = random_token()) {
        auto st = claim_statement(queues, agent_id, token);
        out = claimed(c, c.run(*st.first, st.second.get()), skipped);
        if (!skipped) return;
      }
    });
    return out;
  }

  // The finish CAS and the claim in one pipeline, when this process holds
  // the item's current row (it claimed or wrote it last); otherwise, or when
  // the finish is refused on that copy, finish() and claim() one by one.
  FinishAndClaim finish_and_claim(const std::string& item_id, const std::string& agent_id,
                                  int exit_code, const std::vector<QueueRef>& queues) override {
    ItemRow row;
    if (queues.empty() || agent_id.empty() || !cached_row(item_id, row)) {
      return Transport::finish_and_claim(item_id, agent_id, exit_code, queues);
    }
    QueueItem it = row.item;
    try {
      lifecycle::finish(it, agent_id, exit_code, now_ms());
    } catch (const Error&) {
      return Transport::finish_and_claim(item_id, agent_id, exit_code, queues);
    }
    std::string finish_token = random_token(), claim_token = random_token();
    Params fp = cas_params(row.version, row.item, it, finish_token);
    FinishAndClaim out;
    bool finished = false;
    bool skipped = false;  // the claimed item could not be read
    with_retry("finish_and_claim", [&](Conn& c, bool retrying) {
      out.next.reset();
      // Both statements share one transaction: the finish's token on the
      // item says the claim committed too.
      if (retrying && op_on_item(c, item_id, finish_token)) {
        finished = true;
        out.next = claimed_by(c, claim_token, agent_id);
        return;
      }
      auto claim = claim_statement(queues, agent_id, claim_token);
      std::vector<Result> r =
          c.run_pipeline({{&cas_statement(it), fp.get()}, {claim.first, claim.second.get()}});
      finished = cas_applied(it, r[0]);
      out.next = claimed(c, r[1], skipped);
    });
    if (finished) {
      remember(it, row.version + 1);
      out.finished = it;
      if (skipped) out.next = claim(queues, agent_id);
      return out;
    }
    // Someone wrote the item since this process did (or an attempt of ours
    // committed after its retry looked): the usual read-modify-write, unless
    // the item already carries our token.
    forget(item_id);
    try {
      bool ours = false;
      with_retry("finish", [&](Conn& c, bool) {
        ours = op_on_item(c, item_id, finish_token);
        if (ours) out.finished = load(c, item_id).item;
      });
      if (!ours) out.finished = finish(item_id, agent_id, exit_code);
    } catch (...) {
      // A refused finish claims nothing: hand the claimed item back.
      if (out.next) {
        try {
          requeue(out.next->id, agent_id, RequeueReason::released);
        } catch (const Error&) {
          // Its lease expires instead.
        }
      }
      throw;
    }
    return out;
  }

  QueueItem get(const std::string& item_id) override {
    QueueItem out;
    with_retry("get", [&](Conn& c, bool) {
      std::vector<ItemRow> row = {load(c, item_id)};
      if (row[0].unreadable) record_quarantines(c, row);
      out = row[0].item;
    });
    return out;
  }

  std::vector<QueueItem> list(const ItemFilter& f) override {
    std::string where = "TRUE";
    std::vector<std::string> values;
    auto param = [&](const std::string& v) {
      values.push_back(v);
      return fmt::format("${}", values.size());
    };
    if (f.queue) {
      where += " AND entity = " + param(f.queue->entity);
      where += " AND queue = " + param(f.queue->name);
    }
    if (f.state) where += " AND state = " + param(to_string(*f.state));
    if (!f.agent_id.empty()) where += " AND agent_id = " + param(f.agent_id);
    std::string sql = "SELECT " LAUNCH_ITEM_COLS " FROM launch_items WHERE " + where;
    if (f.limit) {
      sql = fmt::format("SELECT * FROM ({} ORDER BY id DESC LIMIT {}) newest ORDER BY id", sql,
                        f.limit);
    } else {
      sql += " ORDER BY id";
    }
    std::vector<const char*> params;
    for (const auto& v : values) params.push_back(v.c_str());
    std::vector<QueueItem> out;
    with_retry("list", [&](Conn& c, bool) {
      Result r = c.check(Result(PQexecParams(c.pg(), sql.c_str(),
                                             static_cast<int>(params.size()), nullptr,
                                             params.data(), nullptr, nullptr, 0)),
                         "list");
      out.clear();
      std::vector<ItemRow> unreadable;
      for (int i = 0; i < r.rows(); ++i) {
        ItemRow row = row_to_item(r, i);
        if (row.unreadable) unreadable.push_back(row);
        // Failed just now: no longer in the state asked for.
        if (f.state && row.item.state != *f.state) continue;
        out.push_back(row.item);
      }
      record_quarantines(c, unreadable);
    });
    return out;
  }

  // --- agents

  void upsert_agent(const AgentRecord& agent) override {
    if (agent.id.empty()) throw Error(Errc::invalid, "agent id is empty");
    AgentRecord a = agent;
    if (a.last_seen == 0) a.last_seen = now_ms();
    json::Document d;
    d.SetObject();
    json::Value qs = json::string_array(a.queues, d.GetAllocator());
    std::string queues = json::dump(qs), pid = std::to_string(a.pid),
                max_jobs = std::to_string(a.max_jobs), running = std::to_string(a.running_jobs),
                started = std::to_string(a.started_at), seen = std::to_string(a.last_seen);
    with_retry("upsert_agent", [&](Conn& c, bool) {
      c.run(kUpsertAgent, {a.id.c_str(), a.host.c_str(), pid.c_str(), a.version.c_str(),
                           a.entity.c_str(), queues.c_str(), to_string(a.status),
                           max_jobs.c_str(), running.c_str(), started.c_str(), seen.c_str()});
    });
  }

  // A retried write whose first attempt committed finds its own result:
  // the record holding the value it wrote (insert, replace) or gone (delete).
  std::optional<std::string> get_record(const std::string& kind,
                                        const std::string& key) override {
    std::optional<std::string> out;
    with_retry("get_record", [&](Conn& c, bool) {
      Result r = c.run(kGetRecord, {kind.c_str(), key.c_str()});
      out.reset();
      if (r.rows() == 1) out = r.text(0, 0);
    });
    return out;
  }
  bool insert_record(const std::string& kind, const std::string& key,
                     const std::string& value) override {
    bool done = false;
    with_retry("insert_record", [&](Conn& c, bool retrying) {
      done = c.run(kInsertRecord, {kind.c_str(), key.c_str(), value.c_str()}).rows() == 1;
      if (!done && retrying) {
        Result r = c.run(kGetRecord, {kind.c_str(), key.c_str()});
        done = r.rows() == 1 && r.text(0, 0) == value;
      }
    });
    return done;
  }
  bool replace_record(const std::string& kind, const std::string& key,
                      const std::string& expected, const std::string& value) override {
    bool done = false;
    with_retry("replace_record", [&](Conn& c, bool retrying) {
      done = c.run(kReplaceRecord, {kind.c_str(), key.c_str(), expected.c_str(), value.c_str()})
                 .rows() == 1;
      if (!done && retrying) {
        Result r = c.run(kGetRecord, {kind.c_str(), key.c_str()});
        done = r.rows() == 1 && r.text(0, 0) == value;
      }
    });
    return done;
  }
  bool delete_record(const std::string& kind, const std::string& key) override {
    bool done = false;
    with_retry("delete_record", [&](Conn& c, bool retrying) {
      done = c.run(kDeleteRecord, {kind.c_str(), key.c_str()}).rows() == 1 || retrying;
    });
    return done;
  }
  std::vector<std::pair<std::string, std::string>> list_records(
      const std::string& kind) override {
    std::vector<std::pair<std::string, std::string>> out;
    with_retry("list_records", [&](Conn& c, bool) {
      Result r = c.run(kListRecords, {kind.c_str()});
      out.clear();
      for (int i = 0; i < r.rows(); ++i) out.emplace_back(r.text(i, 0), r.text(i, 1));
    });
    return out;
  }

  std::vector<AgentRecord> list_agents() override {
    std::vector<AgentRecord> out;
    std::int64_t now = now_ms();
    with_retry("list_agents", [&](Conn& c, bool) {
      Result r = c.run(kListAgents, {});
      out.clear();
      for (int i = 0; i < r.rows(); ++i) {
        AgentRecord a;
        a.id = r.text(i, 0);
        a.host = r.text(i, 1);
        a.pid = static_cast<int>(r.num(i, 2));
        a.version = r.text(i, 3);
        a.entity = r.text(i, 4);
        json::Document d = json::parse("{\"q\":" + r.text(i, 5) + "}", "agent queues");
        a.queues = json::get_string_array(d, "q", "agent queues");
        a.status = parse_agent_status(r.text(i, 6));
        a.max_jobs = static_cast<int>(r.num(i, 7));
        a.running_jobs = static_cast<int>(r.num(i, 8));
        a.started_at = r.num(i, 9);
        a.last_seen = r.num(i, 10);
        lifecycle::judge_agent(a, now);
        out.push_back(a);
      }
    });
    return out;
  }

  // --- wake-ups

  int notify_fd() override {
    std::lock_guard<std::mutex> lock(listen_mu_);
    if (listen_fd_ < 0) {
      try {
        connect_listener();
      } catch (const ConnectionLost& e) {
        throw Error(Errc::io, fmt::format("postgres: LISTEN connection: {}", e.message));
      }
    }
    return listen_fd_;
  }

  void drain_notify() override {
    std::lock_guard<std::mutex> lock(listen_mu_);
    if (!listener_) {
      // Not listening yet: start now, so a push from here on wakes the fd.
      try {
        connect_listener();
      } catch (const ConnectionLost& e) {
        log(LogLevel::debug, fmt::format("postgres: LISTEN connect failed: {}", e.message));
      } catch (const Error& e) {
        log(LogLevel::warn, fmt::format("postgres: LISTEN connect refused: {}", e.what()));
      }
      return;
    }
    if (PQconsumeInput(listener_->pg()) == 1 && PQstatus(listener_->pg()) == CONNECTION_OK) {
      while (PGnotify* n = PQnotifies(listener_->pg())) PQfreemem(n);
      listen_backoff_ms_ = 0;
      return;
    }
    // The server went away: its socket stays readable, so reconnect here,
    // pausing between failed attempts rather than spinning the caller. A
    // push missed meanwhile is found by the claim the caller makes next.
    if (listen_backoff_ms_ > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(listen_backoff_ms_));
    }
    listen_backoff_ms_ = std::min(std::max(listen_backoff_ms_ * 2, 50), 1000);
    try {
      connect_listener();
      listen_backoff_ms_ = 0;
    } catch (const ConnectionLost& e) {
      log(LogLevel::debug, fmt::format("postgres: LISTEN reconnect failed: {}", e.message));
    } catch (const Error& e) {
      log(LogLevel::warn, fmt::format("postgres: LISTEN reconnect refused: {}", e.what()));
    }
  }

 protected:
  std::string insert_item(const QueueRef& queue, QueueItem& item) override {
    std::string priority = std::to_string(static_cast<int>(item.priority)),
                spec = to_json(item.spec), created = std::to_string(item.created_at),
                lease = std::to_string(item.lease_seconds),
                attempts = std::to_string(item.max_attempts),
                warnings = warnings_json(item.warnings), key = item.run_id + "-" + random_token();
    with_retry("push", [&](Conn& c, bool) {
      Result r;
      try {
        r = c.run(kInsertItem, {queue.entity.c_str(), queue.name.c_str(), priority.c_str(),
                                spec.c_str(), created.c_str(), lease.c_str(), attempts.c_str(),
                                item.run_id.c_str(), warnings.c_str(), key.c_str()});
      } catch (const Error&) {
        if (c.last_sqlstate() != "23503") throw;
        throw Error(Errc::not_found, fmt::format("queue \"{}\" does not exist", queue.str()));
      }
      if (r.rows() == 0) throw Error(Errc::internal, "push: no id returned");
      item.id = r.text(0, 0);
    });
    return item.id;
  }

  QueueItem update_item(const std::string& item_id,
                        const std::function<void(QueueItem&)>& fn) override {
    std::string token = random_token();
    QueueItem out;
    bool use_cache = true;
    with_retry("update", [&](Conn& c, bool retrying) {
      bool in_doubt = retrying;
      for (;;) {
        if (in_doubt && op_on_item(c, item_id, token)) {
          out = load(c, item_id).item;  // an earlier attempt committed
          return;
        }
        // The copy this process last wrote saves a read; the version check
        // of store() catches it being stale, and a lifecycle refusal on it
        // is confirmed on a fresh read before it is believed.
        ItemRow row;
        bool cached = use_cache && !in_doubt && cached_row(item_id, row);
        use_cache = false;
        if (!cached) row = load(c, item_id);
        // The quarantine stands whatever the transition thinks of it.
        if (row.unreadable) record_quarantine(c, row);
        QueueItem it = row.item;
        try {
          fn(it);
        } catch (const Error&) {
          if (!cached) throw;
          continue;
        }
        if (store(c, row.version, row.item, it, token)) {
          remember(it, row.version + 1);
          out = it;
          return;
        }
        // Someone wrote the item since we read it (perhaps our own lost
        // attempt, committed late): look again.
        forget(item_id);
      }
    });
    return out;
  }

  std::vector<std::string> expired_item_ids(std::int64_t now) override {
    std::vector<std::string> out;
    std::string at = std::to_string(now), old = std::to_string(now - kPushKeysKeepMs);
    with_retry("expired", [&](Conn& c, bool) {
      Result r = c.run(kExpired, {at.c_str()});
      out.clear();
      for (int i = 0; i < r.rows(); ++i) out.push_back(r.text(i, 0));
      if (now - last_prune_ms_.load() > 60 * 1000) {
        c.run(kPruneOps, {old.c_str()});
        last_prune_ms_ = now;
      }
    });
    return out;
  }

  void touch_agent(const std::string& agent_id, std::int64_t now) override {
    std::string at = std::to_string(now);
    with_retry("touch_agent",
               [&](Conn& c, bool) { c.run(kTouchAgent, {agent_id.c_str(), at.c_str()}); });
  }

 private:
  // BEGIN now, ROLLBACK unless commit() is called.
  class Transaction {
   public:
    explicit Transaction(Conn& c) : c_(c) { c_.exec("BEGIN", "begin"); }
    ~Transaction() {
      if (!done_ && PQstatus(c_.pg()) == CONNECTION_OK) {
        PQclear(PQexec(c_.pg(), "ROLLBACK"));
      }
    }
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    void commit() {
      c_.exec("COMMIT", "commit");
      done_ = true;
    }

   private:
    Conn& c_;
    bool done_ = false;
  };

  static QueueDef queue_from_row(const Result& r, int row) {
    QueueDef q = queue_from_json(r.text(row, 0));
    q.created_at = r.num(row, 1);
    return q;
  }

  static ItemRow load(Conn& c, const std::string& item_id) {
    auto id = parse_id(item_id);
    if (id) {
      std::string key = std::to_string(*id);
      Result r = c.run(kGetItem, {key.c_str()});
      if (r.rows() > 0) return row_to_item(r, 0);
    }
    throw Error(Errc::not_found, fmt::format("item \"{}\" does not exist", item_id));
  }

  static bool op_on_item(Conn& c, const std::string& item_id, const std::string& token) {
    auto id = parse_id(item_id);
    if (!id) return false;
    std::string key = std::to_string(*id);
    return c.run(kOpOnItem, {key.c_str(), token.c_str()}).rows() > 0;
  }

  // The compare-and-set write of update_item, in three parts so that
  // finish_and_claim() can send it in a pipeline: its statement, its
  // parameters, and whether it applied (false: the version moved).
  static const Statement& cas_statement(const QueueItem& it) {
    return it.state == ItemState::pending ? kUpdateItem : kUpdateQuiet;
  }

  static Params cas_params(std::int64_t version, const QueueItem& before, const QueueItem& it,
                           const std::string& token) {
    std::string spec_after = to_json(it.spec);
    Params p;
    p.add(before.id).add(std::to_string(version)).add(to_string(it.state));
    p.add(std::to_string(static_cast<int>(it.priority)));
    if (spec_after != to_json(before.spec)) {
      p.add(std::move(spec_after));
    } else {
      p.add_null();
    }
    p.add(std::to_string(it.updated_at)).add(std::to_string(it.started_at));
    p.add(std::to_string(it.ended_at)).add(std::to_string(it.attempt));
    p.add(std::to_string(it.resume_count)).add(std::to_string(it.lease_seconds));
    p.add(std::to_string(it.max_attempts)).add(it.agent_id);
    p.add(std::to_string(it.lease_expires_at)).add(it.run_id);
    if (it.exit_code) {
      p.add(std::to_string(*it.exit_code));
    } else {
      p.add_null();
    }
    if (it.error) {
      p.add(to_string(it.error->stage)).add(it.error->message);
    } else {
      p.add_null().add_null();
    }
    p.add(warnings_json(it.warnings)).add(token);
    return p;
  }

  static bool cas_applied(const QueueItem& it, const Result& r) {
    if (it.state == ItemState::pending) return r.num(0, 0) == 1;
    return std::strcmp(PQcmdTuples(r.get()), "1") == 0;
  }

  static bool store(Conn& c, std::int64_t version, const QueueItem& before, const QueueItem& it,
                    const std::string& token) {
    Params p = cas_params(version, before, it, token);
    return cas_applied(it, c.run(cas_statement(it), p.get()));
  }

  // The claim statement for `queues` and its parameters, as of now.
  static std::pair<const Statement*, Params> claim_statement(const std::vector<QueueRef>& queues,
                                                             const std::string& agent_id,
                                                             const std::string& token) {
    Params p;
    const Statement* st = &kClaimOne;
    if (queues.size() == 1) {
      p.add(queues[0].entity).add(queues[0].name);
    } else {
      std::vector<std::string> entities, names;
      for (const auto& q : queues) {
        entities.push_back(q.entity);
        names.push_back(q.name);
      }
      p.add(text_array(entities)).add(text_array(names));
      st = &kClaim;
    }
    p.add(agent_id).add(std::to_string(now_ms())).add(token);
    return {st, std::move(p)};
  }

  // The item a claim statement returned, remembered for the agent's next
  // write to it.
  // One that cannot be read is failed instead (`skipped` set): the caller
  // claims again.
  std::optional<QueueItem> claimed(Conn& c, const Result& r, bool& skipped) {
    skipped = false;
    if (r.rows() == 0) return std::nullopt;
    ItemRow row = row_to_item(r, 0);
    if (row.unreadable) {
      record_quarantine(c, row);
      skipped = true;
      return std::nullopt;
    }
    remember(row.item, row.version);
    return row.item;
  }

  // The item a claim with `token` took, if that claim committed (and the
  // item can be read).
  static std::optional<QueueItem> claimed_by(Conn& c, const std::string& token,
                                             const std::string& agent_id) {
    Result done = c.run(kClaimedByOp, {token.c_str(), agent_id.c_str()});
    if (done.rows() == 0) return std::nullopt;
    ItemRow row = row_to_item(done, 0);
    if (row.unreadable) {
      record_quarantine(c, row);
      return std::nullopt;
    }
    return row.item;
  }

  // The items this process claimed or wrote last, with their row version:
  // the agent's next write to an item (start, finish, heartbeat) then needs
  // no read. Bounded: dropped wholesale when it grows past kCacheMax.
  static constexpr std::size_t kCacheMax = 4096;

  bool cached_row(const std::string& id, ItemRow& row) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(id);
    if (it == cache_.end()) return false;
    row = it->second;
    return true;
  }

  void remember(const QueueItem& item, std::int64_t version) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() >= kCacheMax) cache_.clear();
    cache_[item.id] = ItemRow{item, version};
  }

  void forget(const std::string& id) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    cache_.erase(id);
  }

  std::unique_ptr<Conn> connect() {
    // Defaults first: values in the URI override them.
    const char* keys[] = {"application_name", "connect_timeout", "keepalives_idle",
                          "keepalives_interval", "keepalives_count", "options", "dbname",
                          nullptr};
    const char* values[] = {"launch", "10", "30", "10", "3", "-c client_min_messages=warning",
                            uri_.c_str(), nullptr};
    auto c = std::make_unique<Conn>(PQconnectStartParams(keys, values, 1));
    if (!c->pg()) throw ConnectionLost{"out of memory"};
    // Verbose while connecting, so that a refusal carries its SQLSTATE.
    PQsetErrorVerbosity(c->pg(), PQERRORS_VERBOSE);
    // Server notices (a shutdown warning, say) go to the library's log, not
    // straight to stderr.
    PQsetNoticeProcessor(
        c->pg(),
        [](void*, const char* message) {
          std::string m = message;
          while (!m.empty() && m.back() == '\n') m.pop_back();
          log(LogLevel::debug, "postgres: " + m);
        },
        nullptr);
    finish_connecting(c->pg());
    if (PQstatus(c->pg()) != CONNECTION_OK) {
      ConnectFailure f = parse_connect_failure(PQerrorMessage(c->pg()));
      if (never_heals(f.sqlstate) || PQconnectionNeedsPassword(c->pg())) {
        throw Error(Errc::io,
                    fmt::format("postgres {}: the server refused the connection: {}{} (not "
                                "retried: waiting does not cure this)",
                                util::mask_password(uri_), f.message,
                                f.sqlstate.empty() ? "" : " [SQLSTATE " + f.sqlstate + "]"));
      }
      throw ConnectionLost{fmt::format("connect: {}", f.message)};
    }
    PQsetErrorVerbosity(c->pg(), PQERRORS_DEFAULT);
    return c;
  }

  // The rest of PQconnectdbParams: drives PQconnectPoll until the
  // connection is made or has failed, within libpq's connect_timeout.
  static void finish_connecting(PGconn* pg) {
    if (PQstatus(pg) == CONNECTION_BAD) return;
    int timeout_s = connect_timeout_seconds(pg);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
      struct pollfd p = {PQsocket(pg), static_cast<short>(st == PGRES_POLLING_READING ? POLLIN
                                                                                      : POLLOUT),
                         0};
      int wait_ms = -1;
      if (timeout_s > 0) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) throw ConnectionLost{"connect: timeout expired"};
        wait_ms = static_cast<int>(left.count());
      }
      int rc = ::poll(&p, 1, wait_ms);
      if (rc < 0 && errno != EINTR) {
        throw ConnectionLost{fmt::format("connect: poll: {}", std::strerror(errno))};
      }
      if (rc == 0) throw ConnectionLost{"connect: timeout expired"};
      if (rc > 0) st = PQconnectPoll(pg);
    }
  }

  // Runs `op` on a pooled connection. When the connection is lost, drops
  // it, waits (50 ms doubling to 2 s) and calls `op` again on a new one with
  // `retrying` set, until kRetrySeconds have passed. `op` must be safe to
  // call again: see the file comment for how each operation is.
  template <typename Op>
  void with_retry(const char* what, Op&& op) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kRetrySeconds);
    int backoff_ms = 50;
    bool retrying = false;
    for (;;) {
      std::string failure;
      std::unique_ptr<Conn> c;
      try {
        c = acquire();
        op(*c, retrying);
      } catch (const ConnectionLost& e) {
        failure = e.message.empty() ? "connection lost" : e.message;
        // The server went away: the pooled connections went with it.
        std::lock_guard<std::mutex> lock(pool_mu_);
        pool_.clear();
      } catch (...) {
        if (c) release(std::move(c));
        throw;
      }
      if (failure.empty()) {
        release(std::move(c));
        return;
      }
      if (std::chrono::steady_clock::now() + std::chrono::milliseconds(backoff_ms) > deadline) {
        throw Error(Errc::io, fmt::format("postgres {}: {} (gave up after {} s of retries)",
                                          what, failure, kRetrySeconds));
      }
      // One line says the store is away; each further attempt only at
      // debug level.
      if (!retrying) {
        log(LogLevel::warn, fmt::format("postgres {}: {}; retrying for up to {} s", what,
                                        failure, kRetrySeconds));
      } else {
        log(LogLevel::debug, fmt::format("postgres {}: {}; retrying in {} ms", what, failure,
                                         backoff_ms));
      }
      retrying = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
      backoff_ms = std::min(backoff_ms * 2, 2000);
    }
  }

  // A connection goes back to the pool when it is healthy and outside any
  // transaction (a statement that failed on its own leaves it so).
  std::unique_ptr<Conn> acquire() {
    {
      std::lock_guard<std::mutex> lock(pool_mu_);
      if (!pool_.empty()) {
        auto c = std::move(pool_.back());
        pool_.pop_back();
        return c;
      }
    }
    return connect();
  }

  void release(std::unique_ptr<Conn> c) {
    if (PQstatus(c->pg()) != CONNECTION_OK || PQtransactionStatus(c->pg()) != PQTRANS_IDLE ||
        PQpipelineStatus(c->pg()) != PQ_PIPELINE_OFF) {
      return;
    }
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (pool_.size() < 8) pool_.push_back(std::move(c));
  }

  // Schema creation and upgrades, serialized across processes by an
  // advisory lock held until COMMIT.
  void migrate(Conn& c) {
    Transaction tx(c);
    c.exec(fmt::format("SELECT pg_advisory_xact_lock({})", kMigrationLock).c_str(),
           "migration lock");
    c.exec("CREATE TABLE IF NOT EXISTS launch_schema (version integer NOT NULL)",
           "schema table");
    Result r = c.exec("SELECT version FROM launch_schema", "schema version");
    int version = r.rows() > 0 ? static_cast<int>(r.num(0, 0)) : 0;
    if (r.rows() == 0) c.exec("INSERT INTO launch_schema VALUES (0)", "schema version");
    if (version > kSchemaVersion) {
      throw Error(Errc::unsupported,
                  fmt::format("postgres: database schema version {} is newer than this "
                              "library's ({}); upgrade launch",
                              version, kSchemaVersion));
    }
    for (int v = version; v < kSchemaVersion; ++v) {
      c.exec(kMigrations[v], "migration");
      c.exec(fmt::format("UPDATE launch_schema SET version = {}", v + 1).c_str(),
             "schema version");
    }
    tx.commit();
  }

  // Opens (or reopens) the LISTEN connection and points listen_fd_ at its
  // socket. Called with listen_mu_ held.
  void connect_listener() {
    std::unique_ptr<Conn> c = connect();
    c->exec(fmt::format("LISTEN {}", kChannel).c_str(), "listen");
    if (PQsetnonblocking(c->pg(), 1) != 0) throw ConnectionLost{"cannot set non-blocking"};
    int sock = PQsocket(c->pg());
    if (listen_fd_ < 0) {
      listen_fd_ = ::fcntl(sock, F_DUPFD_CLOEXEC, 0);
      if (listen_fd_ < 0) throw Error(Errc::io, "postgres: cannot dup the LISTEN socket");
    } else if (::dup3(sock, listen_fd_, O_CLOEXEC) < 0) {
      throw Error(Errc::io, "postgres: cannot dup the LISTEN socket");
    }
    listener_ = std::move(c);
  }

  std::string uri_;
  std::mutex pool_mu_;
  std::vector<std::unique_ptr<Conn>> pool_;
  std::atomic<std::int64_t> last_prune_ms_{0};
  std::mutex cache_mu_;
  std::map<std::string, ItemRow> cache_;

  std::mutex listen_mu_;
  std::unique_ptr<Conn> listener_;
  int listen_fd_ = -1;  // ours: a dup of listener_'s socket, stable across reconnects
  int listen_backoff_ms_ = 0;
};

}  // namespace

std::shared_ptr<Transport> open_postgres_transport(const std::string& uri) {
  return std::make_shared<PostgresTransport>(uri);
}

}  // namespace launch
