// sqlite:// — the embedded default transport: one SQLite file shared by
// every process on the machine.
//
//   sqlite:///abs/path/launch.db   everything after "sqlite://" is the path;
//   sqlite://rel/path/launch.db    a relative path is resolved against the
//                                  current directory when the transport opens.
// Missing parent directories are created.
//
// Storage. An item is one row with a column per field, and its spec as JSON
// text: each field has one place. The spec, the queue, created_at and the
// lease policy are fixed at push; every other column is rewritten by each
// transition, and the spec never is (so a transition costs no JSON work,
// and a parsed spec may be kept in memory by id). The database runs in
// WAL mode with synchronous=NORMAL; every write is one BEGIN IMMEDIATE
// transaction, retried while another process holds the write lock.
//
// Schema. PRAGMA user_version is the schema version; kMigrations lists the
// steps from each version to the next, applied in order inside one write
// transaction, so processes opening a fresh file at once migrate it once.
// A file from a newer launch is refused.
//
// Wake-ups. After committing a push, a requeue or a lease expiry back to
// pending, a writer touches the sidecar file "<db>-wake" (futimens); every
// transport on that file watches it with inotify (IN_ATTRIB, and IN_MODIFY
// for anyone who writes to it instead), so notify_fd() turns
// readable in every process without polling. Heartbeats do not touch it.
//
// Thread safety: one connection behind one mutex.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "builtins/factories.hpp"
#include "transport/sqlite_sql.hpp"
#include "launch/error.hpp"
#include "launch/log.hpp"
#include "launch/sys/record_transport.hpp"
#include "util/fs.hpp"
#include "util/json.hpp"

namespace launch {
namespace {

// A statement waits up to kBusyTimeoutMs for another process's lock (see
// busy_wait); BEGIN IMMEDIATE is retried until kLockDeadline, then fails.
constexpr int kBusyTimeoutMs = 5000;
constexpr auto kLockDeadline = std::chrono::seconds(60);

// Schema steps: kMigrations[v] takes a database from version v to v+1.
// Append only; never edit a step that has shipped.
const char* const kMigrations[] = {
    // 0 -> 1
    "CREATE TABLE queues ("
    "  entity TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  body TEXT NOT NULL,"  // to_json(QueueDef); entity/name are its key
    "  PRIMARY KEY (entity, name)"
    ") WITHOUT ROWID;"
    "CREATE TABLE items ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"  // never reused
    "  queue TEXT NOT NULL,"                   // entity/name
    "  state TEXT NOT NULL,"
    "  priority INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  started_at INTEGER NOT NULL,"
    "  ended_at INTEGER NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  resume_count INTEGER NOT NULL,"
    "  lease_seconds INTEGER NOT NULL,"
    "  max_attempts INTEGER NOT NULL,"
    "  agent_id TEXT NOT NULL,"
    "  lease_expires_at INTEGER NOT NULL,"
    "  run_id TEXT NOT NULL,"
    "  exit_code INTEGER,"    // NULL: none
    "  error_stage TEXT,"     // NULL: no error
    "  error_message TEXT,"
    "  warnings TEXT NOT NULL,"  // JSON array of strings
    "  spec TEXT NOT NULL"       // to_json(JobSpec)
    ");"
    // claim: the first pending item of a queue is the first entry here.
    "CREATE INDEX items_claim ON items (queue, priority, id) WHERE state = 'pending';"
    "CREATE INDEX items_lease ON items (lease_expires_at)"
    "  WHERE state IN ('claimed', 'running', 'stopping');"
    // By queue (then id, as every index ends with the rowid), for listing
    // and deleting one; no state change rewrites it.
    "CREATE INDEX items_queue ON items (queue);"
    "CREATE TABLE agents ("
    "  id TEXT PRIMARY KEY,"
    "  host TEXT NOT NULL,"
    "  pid INTEGER NOT NULL,"
    "  version TEXT NOT NULL,"
    "  entity TEXT NOT NULL,"
    "  queues TEXT NOT NULL,"  // JSON array of entity/name
    "  status TEXT NOT NULL,"
    "  max_jobs INTEGER NOT NULL,"
    "  running_jobs INTEGER NOT NULL,"
    "  started_at INTEGER NOT NULL,"
    "  last_seen INTEGER NOT NULL"
    ") WITHOUT ROWID;",
    // 1 -> 2: a launch server's records (Transport::*_record).
    "CREATE TABLE records ("
    "  kind TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  PRIMARY KEY (kind, key)"
    ") WITHOUT ROWID;",
};
constexpr int kSchemaVersion = static_cast<int>(sizeof(kMigrations) / sizeof(kMigrations[0]));

// Every column of an item, in the order item_from_row reads them.
#define LAUNCH_ITEM_COLUMNS                                                              \
  "id, queue, state, priority, created_at, updated_at, started_at, ended_at, attempt, " \
  "resume_count, lease_seconds, max_attempts, agent_id, lease_expires_at, run_id, "     \
  "exit_code, error_stage, error_message, warnings, spec"

// Parsed specs kept per process (specs never change, ids are never reused),
// so the start and end of a claimed item skip parsing it again.
constexpr std::size_t kSpecCacheSize = 4096;

std::string text_column(sqlite3_stmt* s, int col) {
  const unsigned char* p = sqlite3_column_text(s, col);
  return p ? std::string(reinterpret_cast<const char*>(p),
                         static_cast<std::size_t>(sqlite3_column_bytes(s, col)))
           : std::string();
}

// A cached prepared statement in use: reset and unbound when it goes.
class Stmt {
 public:
  Stmt(sqlite3* db, sqlite3_stmt* s, const std::string& path) : db_(db), s_(s), path_(path) {}
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }

  Stmt& bind(int i, const std::string& v) {
    check(sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Stmt& bind(int i, std::int64_t v) {
    check(sqlite3_bind_int64(s_, i, v));
    return *this;
  }
  Stmt& bind(int i, int v) { return bind(i, static_cast<std::int64_t>(v)); }
  Stmt& bind_null(int i) {
    check(sqlite3_bind_null(s_, i));
    return *this;
  }

  // True while there is a row.
  bool step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    check(rc);
    return false;
  }
  void run() {
    while (step()) {
    }
  }
  int rc_step() { return sqlite3_step(s_); }

  std::string text(int col) const { return text_column(s_, col); }
  std::int64_t int64(int col) const { return sqlite3_column_int64(s_, col); }
  bool is_null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  sqlite3_stmt* raw() const { return s_; }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) {
      throw Error(Errc::io, fmt::format("sqlite database {}: {}", path_, sqlite3_errmsg(db_)));
    }
  }

  sqlite3* db_;
  sqlite3_stmt* s_;
  const std::string& path_;
};

// "sqlite://PATH" -> the absolute path of the database file.
std::string path_from_uri(const std::string& uri) {
  const std::string prefix = "sqlite://";
  if (uri.compare(0, prefix.size(), prefix) != 0) {
    throw Error(Errc::invalid, fmt::format("transport URI \"{}\": expected sqlite://PATH", uri));
  }
  std::string path = uri.substr(prefix.size());
  if (path.empty() || path.back() == '/') {
    throw Error(Errc::invalid,
                fmt::format("transport URI \"{}\": no database file; expected "
                            "sqlite:///path/launch.db",
                            uri));
  }
  if (path.find('?') != std::string::npos || path.find('#') != std::string::npos) {
    throw Error(Errc::invalid,
                fmt::format("transport URI \"{}\": sqlite:// takes no query or fragment", uri));
  }
  if (path[0] != '/') {
    char buf[4096];
    if (!::getcwd(buf, sizeof buf)) {
      throw Error(Errc::io, fmt::format("transport URI \"{}\": cannot read the current "
                                        "directory: {}",
                                        uri, std::strerror(errno)));
    }
    path = std::string(buf) + "/" + path;
  }
  return path;
}

class SqliteTransport final : public RecordTransport {
 public:
  explicit SqliteTransport(const std::string& uri);
  ~SqliteTransport() override;

  std::string uri() const override { return "sqlite://" + path_; }

  void create_queue(const QueueDef& queue) override;
  QueueDef get_queue(const QueueRef& ref) override;
  std::vector<QueueDef> list_queues() override;
  std::vector<std::string> delete_queue(const QueueRef& ref, QueueDelete mode) override;

  QueueItem get(const std::string& item_id) override;
  std::vector<QueueItem> list(const ItemFilter& filter) override;
  std::optional<QueueItem> claim(const std::vector<QueueRef>& queues,
                                 const std::string& agent_id) override;

  void upsert_agent(const AgentRecord& agent) override;
  std::vector<AgentRecord> list_agents() override;

  std::optional<std::string> get_record(const std::string& kind,
                                        const std::string& key) override;
  bool insert_record(const std::string& kind, const std::string& key,
                     const std::string& value) override;
  bool replace_record(const std::string& kind, const std::string& key,
                      const std::string& expected, const std::string& value) override;
  bool delete_record(const std::string& kind, const std::string& key) override;
  std::vector<std::pair<std::string, std::string>> list_records(
      const std::string& kind) override;

  int notify_fd() override { return inotify_fd_; }
  void drain_notify() override;

 protected:
  std::string insert_item(const QueueRef& queue, QueueItem& item) override;
  QueueItem update_item(const std::string& item_id,
                        const std::function<void(QueueItem&)>& fn) override;
  std::vector<std::string> expired_item_ids(std::int64_t now) override;
  void touch_agent(const std::string& agent_id, std::int64_t now) override;

 private:
  // A write transaction (BEGIN IMMEDIATE), rolled back unless committed.
  class Txn {
   public:
    explicit Txn(SqliteTransport& t) : t_(t) { t_.begin_immediate(); }
    Txn(const Txn&) = delete;
    Txn& operator=(const Txn&) = delete;
    ~Txn() {
      if (!done_) sqlite3_exec(t_.db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    void commit() {
      int rc = t_.stmt("COMMIT").rc_step();
      if (rc != SQLITE_DONE) t_.fail_sql("COMMIT");
      done_ = true;
    }

   private:
    SqliteTransport& t_;
    bool done_ = false;
  };

  [[noreturn]] void fail_sql(const std::string& what) const;
  void exec(const char* sql);
  Stmt stmt(const char* sql);
  // Errc::not_found unless the queue exists. Call with mu_ held.
  void require_queue(const QueueRef& ref);
  void begin_immediate();
  void configure();
  void migrate();
  void open_wake_file();
  void wake();

  // An item as read from its row. When the row cannot be read, `item` is
  // what could be, quarantined (lifecycle::quarantine), and `unreadable` is
  // set with `stored_state` the state column's text: record_quarantine()
  // writes the failure.
  struct Loaded {
    QueueItem item;
    bool unreadable = false;
    std::string stored_state;
  };
  std::optional<Loaded> load(std::int64_t id);
  void store(const QueueItem& item);
  Loaded item_from_row(const Stmt& s);
  // Writes a quarantined item's failure (in a write transaction), unless its
  // state column changed since it was read.
  void record_quarantine(const Loaded& row);
  // record_quarantine() for the rows a read found, each in its own
  // transaction; a failure (a read-only file) is logged, the item is still
  // shown failed.
  void record_quarantines(const std::vector<Loaded>& rows);

  std::string path_;
  std::mutex mu_;
  sqlite3* db_ = nullptr;
  std::unordered_map<const char*, sqlite3_stmt*> stmts_;  // keyed by the SQL literal
  std::unordered_map<std::int64_t, JobSpec> specs_;       // by item id, see kSpecCacheSize
  std::chrono::steady_clock::time_point busy_since_;  // for busy_wait
  int wake_fd_ = -1;     // the sidecar file, touched after writes that bring work
  int inotify_fd_ = -1;  // watches it
};

SqliteTransport::SqliteTransport(const std::string& uri) : path_(path_from_uri(uri)) {
  try {
    util::make_directories(util::parent_path(path_));
  } catch (const Error& e) {
    throw Error(Errc::io, fmt::format("sqlite database {}: {}", path_, e.what()));
  }
  int rc = sqlite3_open_v2(path_.c_str(), &db_,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    throw Error(Errc::io, fmt::format("sqlite database {}: cannot open: {}", path_, msg));
  }
  try {
    configure();
    migrate();
    open_wake_file();
  } catch (...) {
    if (inotify_fd_ >= 0) ::close(inotify_fd_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
    for (auto& kv : stmts_) sqlite3_finalize(kv.second);
    sqlite3_close(db_);
    throw;
  }
  // Items of agents that went away come back whenever anyone opens the
  // file, not only when an agent starts. A failure here (a read-only file)
  // leaves them for the next writer.
  try {
    expire_leases();
  } catch (const Error& e) {
    log(LogLevel::warn, fmt::format("sqlite database {}: cannot expire leases: {}", path_,
                                    e.what()));
  }
}

SqliteTransport::~SqliteTransport() {
  for (auto& kv : stmts_) sqlite3_finalize(kv.second);
  sqlite3_close(db_);
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void SqliteTransport::fail_sql(const std::string& what) const {
  throw Error(Errc::io, fmt::format("sqlite database {}: {}: {}", path_, what,
                                    sqlite3_errmsg(db_)));
}

void SqliteTransport::exec(const char* sql) {
  if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) fail_sql(sql);
}

Stmt SqliteTransport::stmt(const char* sql) {
  auto it = stmts_.find(sql);
  if (it == stmts_.end()) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
      fail_sql(fmt::format("cannot prepare \"{}\"", sql));
    }
    it = stmts_.emplace(sql, s).first;
  }
  return Stmt(db_, it->second, path_);
}

// The busy handler already waits kBusyTimeoutMs for the write lock, but
// SQLite returns SQLITE_BUSY at once in a few WAL cases (another connection
// recovering the WAL, say), so keep trying until a deadline.
void SqliteTransport::begin_immediate() {
  auto deadline = std::chrono::steady_clock::now() + kLockDeadline;
  for (int delay_ms = 1;; delay_ms = std::min(delay_ms * 2, 50)) {
    int rc = stmt("BEGIN IMMEDIATE").rc_step();
    if (rc == SQLITE_DONE) return;
    if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) fail_sql("BEGIN IMMEDIATE");
    if (std::chrono::steady_clock::now() >= deadline) {
      throw Error(Errc::timeout,
                  fmt::format("sqlite database {}: the write lock stayed busy for {} s", path_,
                              std::chrono::duration_cast<std::chrono::seconds>(kLockDeadline)
                                  .count()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  }
}

// SQLite's own busy timeout sleeps in steps of milliseconds; our write
// transactions last tens of microseconds, so poll the lock finely first.
int busy_wait(void* since_ptr, int count) {
  auto* since = static_cast<std::chrono::steady_clock::time_point*>(since_ptr);
  auto now = std::chrono::steady_clock::now();
  if (count == 0) *since = now;
  if (now - *since > std::chrono::milliseconds(kBusyTimeoutMs)) return 0;
  ::usleep(count < 20 ? 20 : count < 100 ? 200 : 2000);
  return 1;
}

void SqliteTransport::configure() {
  sqlite3_busy_handler(db_, busy_wait, &busy_since_);
  // Switching to WAL needs a moment of exclusive access; a process opening
  // the file at the same time may get SQLITE_BUSY without the busy handler.
  auto deadline = std::chrono::steady_clock::now() + kLockDeadline;
  for (;;) {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v2(db_, "PRAGMA journal_mode = WAL", -1, &s, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_step(s);
    std::string mode = rc == SQLITE_ROW ? text_column(s, 0) : std::string();
    sqlite3_finalize(s);
    if (rc == SQLITE_ROW && mode == "wal") break;
    if (rc == SQLITE_ROW) {
      throw Error(Errc::io, fmt::format("sqlite database {}: cannot use WAL mode (journal "
                                        "mode stays \"{}\")",
                                        path_, mode));
    }
    if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) fail_sql("PRAGMA journal_mode");
    if (std::chrono::steady_clock::now() >= deadline) fail_sql("PRAGMA journal_mode");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  exec("PRAGMA synchronous = NORMAL");
}

int user_version(sqlite3* db) {
  sqlite3_stmt* s = nullptr;
  int v = -1;
  if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, nullptr) == SQLITE_OK &&
      sqlite3_step(s) == SQLITE_ROW) {
    v = sqlite3_column_int(s, 0);
  }
  sqlite3_finalize(s);
  return v;
}

void SqliteTransport::migrate() {
  auto refuse_newer = [&](int v) {
    throw Error(Errc::unsupported,
                fmt::format("sqlite database {}: schema version {} is newer than this launch "
                            "supports ({}); use a newer launch or another file",
                            path_, v, kSchemaVersion));
  };
  int v = user_version(db_);
  if (v < 0) fail_sql("cannot read PRAGMA user_version");
  if (v > kSchemaVersion) refuse_newer(v);
  if (v == kSchemaVersion) return;

  // Another process may be migrating too: take the write lock, then look
  // again.
  Txn txn(*this);
  v = user_version(db_);
  if (v < 0) fail_sql("cannot read PRAGMA user_version");
  if (v > kSchemaVersion) refuse_newer(v);
  for (; v < kSchemaVersion; ++v) {
    if (sqlite3_exec(db_, kMigrations[v], nullptr, nullptr, nullptr) != SQLITE_OK) {
      fail_sql(fmt::format("schema migration {} -> {}", v, v + 1));
    }
  }
  exec(fmt::format("PRAGMA user_version = {}", kSchemaVersion).c_str());
  txn.commit();
}

void SqliteTransport::open_wake_file() {
  std::string wake_path = path_ + "-wake";
  // Read-only: closing a descriptor opened for writing would itself look
  // like a wake-up (IN_CLOSE_WRITE) to everybody; futimens needs only write
  // permission on the file, not a writable descriptor.
  wake_fd_ = ::open(wake_path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
  if (wake_fd_ < 0) {
    throw Error(Errc::io, fmt::format("sqlite database {}: cannot open {}: {}", path_, wake_path,
                                      std::strerror(errno)));
  }
  // Without a watch (the per-user inotify limit, say) the transport still
  // works: notify_fd() is -1 and agents poll on their timer.
  int err = 0;
  inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ < 0) {
    err = errno;
  } else if (::inotify_add_watch(inotify_fd_, wake_path.c_str(), IN_ATTRIB | IN_MODIFY) < 0) {
    err = errno;
    ::close(inotify_fd_);
    inotify_fd_ = -1;
  }
  if (inotify_fd_ < 0) {
    log(LogLevel::warn, fmt::format("sqlite database {}: cannot watch {} ({}); agents will "
                                    "poll for work instead of being woken",
                                    path_, wake_path, std::strerror(err)));
  }
}

// Best effort: a missed touch delays an agent until its next timed poll,
// it loses nothing.
void SqliteTransport::wake() { ::futimens(wake_fd_, nullptr); }

void SqliteTransport::drain_notify() {
  if (inotify_fd_ < 0) return;
  alignas(struct inotify_event) char buf[4096];
  while (::read(inotify_fd_, buf, sizeof buf) > 0) {
  }
}

// --- items

std::string warnings_json(const std::vector<std::string>& warnings) {
  if (warnings.empty()) return "[]";
  json::Document d;
  return json::dump(json::string_array(warnings, d.GetAllocator()));
}

// A priority column holds 0-3; anything else is a damaged row.
Priority priority_from_column(std::int64_t v) {
  if (v < 0 || v > 3) throw Error(Errc::invalid, fmt::format("priority {} is not 0-3", v));
  return static_cast<Priority>(v);
}

SqliteTransport::Loaded SqliteTransport::item_from_row(const Stmt& s) {
  Loaded row;
  QueueItem& item = row.item;
  std::int64_t id = s.int64(0);
  item.id = std::to_string(id);
  // The queue and the scalar columns read as they are, whatever they hold
  // (a queue's name is checked when it is created, not on every read).
  std::string queue = s.text(1);
  std::size_t slash = queue.find('/');
  item.queue = slash == std::string::npos
                   ? QueueRef{"", queue}
                   : QueueRef{queue.substr(0, slash), queue.substr(slash + 1)};
  item.created_at = s.int64(4);
  item.updated_at = s.int64(5);
  item.started_at = s.int64(6);
  item.ended_at = s.int64(7);
  item.attempt = static_cast<int>(s.int64(8));
  item.resume_count = static_cast<int>(s.int64(9));
  item.lease_seconds = static_cast<int>(s.int64(10));
  item.max_attempts = static_cast<int>(s.int64(11));
  item.agent_id = s.text(12);
  item.lease_expires_at = s.int64(13);
  item.run_id = s.text(14);
  try {
    item.state = parse_item_state(s.text(2));
    item.priority = priority_from_column(s.int64(3));
    if (!s.is_null(15)) item.exit_code = static_cast<int>(s.int64(15));
    if (!s.is_null(16)) item.error = ItemError{parse_error_stage(s.text(16)), s.text(17)};
    std::string warnings = s.text(18);
    if (warnings != "[]") {
      json::Document d = json::parse("{\"warnings\":" + warnings + "}", "item warnings");
      item.warnings = json::get_string_array(d, "warnings", "item");
    }
    auto cached = specs_.find(id);
    if (cached != specs_.end()) {
      item.spec = cached->second;
    } else {
      item.spec = job_spec_from_json(s.text(19));
      if (specs_.size() >= kSpecCacheSize) specs_.clear();
      specs_.emplace(id, item.spec);
    }
  } catch (const Error& e) {
    row.unreadable = true;
    row.stored_state = s.text(2);
    try {
      item.state = parse_item_state(row.stored_state);
    } catch (const Error&) {
      item.state = ItemState::pending;  // unknown: not ended
    }
    item.spec = JobSpec{};
    item.exit_code.reset();
    item.error.reset();
    item.warnings.clear();
    row.unreadable = lifecycle::quarantine(item, e.what(), now_ms());
    if (!row.unreadable) row.stored_state.clear();
  }
  return row;
}

std::optional<SqliteTransport::Loaded> SqliteTransport::load(std::int64_t id) {
  auto s = stmt("SELECT " LAUNCH_ITEM_COLUMNS " FROM items WHERE id = ?");
  s.bind(1, id);
  if (!s.step()) return std::nullopt;
  return item_from_row(s);
}

void SqliteTransport::record_quarantine(const Loaded& row) {
  const QueueItem& it = row.item;
  auto s = stmt(
      "UPDATE items SET state = ?, updated_at = ?, ended_at = ?, lease_expires_at = ?, "
      "error_stage = ?, error_message = ? WHERE id = ? AND state = ?");
  s.bind(1, std::string(to_string(it.state)))
      .bind(2, it.updated_at)
      .bind(3, it.ended_at)
      .bind(4, it.lease_expires_at)
      .bind(5, std::string(to_string(it.error->stage)))
      .bind(6, it.error->message)
      .bind(7, static_cast<std::int64_t>(std::stoll(it.id)))
      .bind(8, row.stored_state);
  s.run();
  log(LogLevel::warn, fmt::format("sqlite database {}: item {} failed: {}", path_, it.id,
                                  it.error->message));
}

void SqliteTransport::record_quarantines(const std::vector<Loaded>& rows) {
  for (const Loaded& row : rows) {
    try {
      Txn txn(*this);
      record_quarantine(row);
      txn.commit();
    } catch (const Error& e) {
      log(LogLevel::warn, fmt::format("sqlite database {}: item {} is unreadable and could "
                                      "not be marked failed: {}",
                                      path_, row.item.id, e.what()));
    }
  }
}

// Writes what a transition may change; the spec, queue, created_at and
// lease policy stay as pushed.
void SqliteTransport::store(const QueueItem& item) {
  auto s = stmt(
      "UPDATE items SET state = ?, priority = ?, updated_at = ?, started_at = ?, ended_at = ?, "
      "attempt = ?, resume_count = ?, agent_id = ?, lease_expires_at = ?, run_id = ?, "
      "exit_code = ?, error_stage = ?, error_message = ?, warnings = ? WHERE id = ?");
  s.bind(1, std::string(to_string(item.state)))
      .bind(2, static_cast<int>(item.priority))
      .bind(3, item.updated_at)
      .bind(4, item.started_at)
      .bind(5, item.ended_at)
      .bind(6, item.attempt)
      .bind(7, item.resume_count)
      .bind(8, item.agent_id)
      .bind(9, item.lease_expires_at)
      .bind(10, item.run_id);
  if (item.exit_code) {
    s.bind(11, *item.exit_code);
  } else {
    s.bind_null(11);
  }
  if (item.error) {
    s.bind(12, std::string(to_string(item.error->stage))).bind(13, item.error->message);
  } else {
    s.bind_null(12).bind_null(13);
  }
  s.bind(14, warnings_json(item.warnings)).bind(15, static_cast<std::int64_t>(std::stoll(item.id)));
  s.run();
}

// Item ids are the decimal rowids; anything else names no item.
std::optional<std::int64_t> parse_id(const std::string& item_id) {
  if (item_id.empty() || item_id.size() > 18) return std::nullopt;
  std::int64_t v = 0;
  for (char c : item_id) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

Error no_item(const std::string& item_id) {
  return Error(Errc::not_found, fmt::format("item \"{}\": no such item", item_id));
}

Error no_queue(const QueueRef& ref) {
  return Error(Errc::not_found, fmt::format("queue \"{}\": no such queue", ref.str()));
}

void SqliteTransport::require_queue(const QueueRef& ref) {
  auto s = stmt("SELECT 1 FROM queues WHERE entity = ? AND name = ?");
  s.bind(1, ref.entity).bind(2, ref.name);
  if (!s.step()) throw no_queue(ref);
}

std::string SqliteTransport::insert_item(const QueueRef& queue, QueueItem& item) {
  std::string spec = to_json(item.spec);  // before the lock
  std::string warnings = warnings_json(item.warnings);
  std::lock_guard<std::mutex> lock(mu_);
  {
    Txn txn(*this);
    require_queue(queue);
    auto s = stmt(
        "INSERT INTO items (queue, state, priority, created_at, updated_at, started_at, "
        "ended_at, attempt, resume_count, lease_seconds, max_attempts, agent_id, "
        "lease_expires_at, run_id, exit_code, error_stage, error_message, warnings, spec) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, ?, ?)");
    s.bind(1, queue.str())
        .bind(2, std::string(to_string(item.state)))
        .bind(3, static_cast<int>(item.priority))
        .bind(4, item.created_at)
        .bind(5, item.updated_at)
        .bind(6, item.started_at)
        .bind(7, item.ended_at)
        .bind(8, item.attempt)
        .bind(9, item.resume_count)
        .bind(10, item.lease_seconds)
        .bind(11, item.max_attempts)
        .bind(12, item.agent_id)
        .bind(13, item.lease_expires_at)
        .bind(14, item.run_id)
        .bind(15, warnings)
        .bind(16, spec);
    s.run();
    item.id = std::to_string(sqlite3_last_insert_rowid(db_));
    item.queue = queue;
    txn.commit();
  }
  wake();
  return item.id;
}

QueueItem SqliteTransport::update_item(const std::string& item_id,
                                       const std::function<void(QueueItem&)>& fn) {
  auto id = parse_id(item_id);
  if (!id) throw no_item(item_id);
  std::lock_guard<std::mutex> lock(mu_);
  QueueItem item;
  bool woke_work = false;
  {
    Txn txn(*this);
    auto loaded = load(*id);
    if (!loaded) throw no_item(item_id);
    if (loaded->unreadable) record_quarantine(*loaded);
    item = std::move(loaded->item);
    ItemState before = item.state;
    try {
      fn(item);
    } catch (...) {
      // The quarantine stands whatever the transition thought of it.
      if (loaded->unreadable) txn.commit();
      throw;
    }
    store(item);
    txn.commit();
    woke_work = item.state == ItemState::pending && before != ItemState::pending;
  }
  if (woke_work) wake();
  return item;
}

std::vector<std::string> SqliteTransport::expired_item_ids(std::int64_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto s = stmt(sqlite_sql::kExpiredItems);
  s.bind(1, now);
  std::vector<std::string> ids;
  while (s.step()) ids.push_back(std::to_string(s.int64(0)));
  return ids;
}

QueueItem SqliteTransport::get(const std::string& item_id) {
  auto id = parse_id(item_id);
  if (!id) throw no_item(item_id);
  std::lock_guard<std::mutex> lock(mu_);
  auto row = load(*id);
  if (!row) throw no_item(item_id);
  if (row->unreadable) record_quarantines({*row});
  return std::move(row->item);
}

std::vector<QueueItem> SqliteTransport::list(const ItemFilter& filter) {
  std::string sql = "SELECT " LAUNCH_ITEM_COLUMNS " FROM items WHERE 1";
  if (filter.queue) sql += " AND queue = ?";
  if (filter.state) sql += " AND state = ?";
  if (!filter.agent_id.empty()) sql += " AND agent_id = ?";
  sql += filter.limit ? " ORDER BY id DESC LIMIT ?" : " ORDER BY id";

  std::lock_guard<std::mutex> lock(mu_);
  std::vector<QueueItem> items;
  std::vector<Loaded> unreadable;
  {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) {
      fail_sql("cannot prepare the item list");
    }
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> owner(raw, sqlite3_finalize);
    Stmt s(db_, raw, path_);
    int i = 1;
    if (filter.queue) s.bind(i++, filter.queue->str());
    if (filter.state) s.bind(i++, std::string(to_string(*filter.state)));
    if (!filter.agent_id.empty()) s.bind(i++, filter.agent_id);
    if (filter.limit) {
      s.bind(i++, static_cast<std::int64_t>(std::min<std::size_t>(
                      filter.limit, std::numeric_limits<std::int64_t>::max())));
    }
    while (s.step()) {
      Loaded row = item_from_row(s);
      if (row.unreadable) unreadable.push_back(row);
      // Failed just now: no longer in the state asked for.
      if (filter.state && row.item.state != *filter.state) continue;
      items.push_back(std::move(row.item));
    }
  }
  // After the read statement is done with the file.
  record_quarantines(unreadable);
  if (filter.limit) std::reverse(items.begin(), items.end());
  return items;
}

std::optional<QueueItem> SqliteTransport::claim(const std::vector<QueueRef>& queues,
                                                const std::string& agent_id) {
  std::lock_guard<std::mutex> lock(mu_);
  Txn txn(*this);
  // A head that cannot be read is failed and passed by: the next one is
  // the head then.
  for (;;) {
    std::int64_t best_id = 0;
    std::int64_t best_priority = 0;
    for (const QueueRef& q : queues) {
      auto s = stmt(sqlite_sql::kQueueHead);
      s.bind(1, q.str());
      if (!s.step()) continue;
      std::int64_t id = s.int64(0), priority = s.int64(1);
      if (best_id == 0 || priority < best_priority ||
          (priority == best_priority && id < best_id)) {
        best_id = id;
        best_priority = priority;
      }
    }
    if (best_id == 0) {
      txn.commit();  // keeps the quarantines made on the way, if any
      return std::nullopt;
    }
    auto row = load(best_id);
    if (!row) fail_sql("claimed item vanished");
    if (row->unreadable) {
      record_quarantine(*row);
      continue;
    }
    lifecycle::claim(row->item, agent_id, now_ms());
    store(row->item);
    txn.commit();
    return std::move(row->item);
  }
}

// --- queues

void SqliteTransport::create_queue(const QueueDef& queue) {
  queue.validate();
  QueueDef q = queue;
  q.created_at = now_ms();
  std::string body = to_json(q);
  std::lock_guard<std::mutex> lock(mu_);
  Txn txn(*this);
  auto s = stmt("INSERT INTO queues (entity, name, body) VALUES (?, ?, ?)");
  s.bind(1, q.entity).bind(2, q.name).bind(3, body);
  int rc = s.rc_step();
  if ((rc & 0xff) == SQLITE_CONSTRAINT) {
    throw Error(Errc::exists, fmt::format("queue \"{}\": already exists", q.ref().str()));
  }
  if (rc != SQLITE_DONE) fail_sql(fmt::format("cannot create queue \"{}\"", q.ref().str()));
  txn.commit();
}

QueueDef SqliteTransport::get_queue(const QueueRef& ref) {
  std::lock_guard<std::mutex> lock(mu_);
  auto s = stmt("SELECT body FROM queues WHERE entity = ? AND name = ?");
  s.bind(1, ref.entity).bind(2, ref.name);
  if (!s.step()) throw no_queue(ref);
  return queue_from_json(s.text(0));
}

std::vector<QueueDef> SqliteTransport::list_queues() {
  std::lock_guard<std::mutex> lock(mu_);
  auto s = stmt("SELECT body FROM queues ORDER BY entity, name");
  std::vector<QueueDef> out;
  while (s.step()) out.push_back(queue_from_json(s.text(0)));
  return out;
}

std::vector<std::string> SqliteTransport::delete_queue(const QueueRef& ref, QueueDelete mode) {
  std::lock_guard<std::mutex> lock(mu_);
  Txn txn(*this);
  require_queue(ref);
  {
    auto s = stmt(
        "SELECT count(*) FROM items WHERE queue = ? "
        "AND state IN ('claimed', 'running', 'stopping')");
    s.bind(1, ref.str());
    s.step();
    if (std::int64_t busy = s.int64(0)) {
      throw Error(Errc::state,
                  fmt::format("queue \"{}\": cannot delete it while {} item(s) are claimed, "
                              "running or stopping",
                              ref.str(), busy));
    }
  }
  std::vector<std::string> ids;
  std::size_t pending = 0;
  {
    auto s = stmt("SELECT id, state = 'pending' FROM items WHERE queue = ? ORDER BY id");
    s.bind(1, ref.str());
    while (s.step()) {
      ids.push_back(s.text(0));
      pending += s.int64(1) != 0;
    }
  }
  lifecycle::check_delete_pending(ref, mode, pending);
  stmt("DELETE FROM items WHERE queue = ?").bind(1, ref.str()).run();
  stmt("DELETE FROM queues WHERE entity = ? AND name = ?").bind(1, ref.entity).bind(2, ref.name).run();
  txn.commit();
  return ids;
}

// --- agents

void SqliteTransport::touch_agent(const std::string& agent_id, std::int64_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  Txn txn(*this);
  stmt("UPDATE agents SET last_seen = ? WHERE id = ?").bind(1, now).bind(2, agent_id).run();
  txn.commit();
}

std::optional<std::string> SqliteTransport::get_record(const std::string& kind,
                                                       const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto s = stmt("SELECT value FROM records WHERE kind = ? AND key = ?");
  s.bind(1, kind).bind(2, key);
  if (!s.step()) return std::nullopt;
  return s.text(0);
}

bool SqliteTransport::insert_record(const std::string& kind, const std::string& key,
                                    const std::string& value) {
  std::lock_guard<std::mutex> lock(mu_);
  Txn txn(*this);
  auto s = stmt("INSERT INTO records (kind, key, value) VALUES (?, ?, ?) ON CONFLICT DO NOTHING");
  s.bind(1, kind).bind(2, key).bind(3, value);
  s.run();
  bool inserted = sqlite3_changes(db_) == 1;
  txn.commit();
  return inserted;
}

bool SqliteTransport::replace_record(const std::string& kind, const std::string& key,
                                     const std::string& expected, const std::string& value) {
  std::lock_guard<std::mutex> lock(mu_);
  Txn txn(*this);
  auto s = stmt("UPDATE records SET value = ? WHERE kind = ? AND key = ? AND value = ?");
  s.bind(1, value).bind(2, kind).bind(3, key).bind(4, expected);
  s.run();
  bool replaced = sqlite3_changes(db_) == 1;
  txn.commit();
  return replaced;
}

bool SqliteTransport::delete_record(const std::string& kind, const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  Txn txn(*this);
  auto s = stmt("DELETE FROM records WHERE kind = ? AND key = ?");
  s.bind(1, kind).bind(2, key);
  s.run();
  bool deleted = sqlite3_changes(db_) == 1;
  txn.commit();
  return deleted;
}

std::vector<std::pair<std::string, std::string>> SqliteTransport::list_records(
    const std::string& kind) {
  std::lock_guard<std::mutex> lock(mu_);
  auto s = stmt("SELECT key, value FROM records WHERE kind = ? ORDER BY key");
  s.bind(1, kind);
  std::vector<std::pair<std::string, std::string>> out;
  while (s.step()) out.emplace_back(s.text(0), s.text(1));
  return out;
}

void SqliteTransport::upsert_agent(const AgentRecord& agent) {
  if (agent.id.empty()) throw Error(Errc::invalid, "agent id: must not be empty");
  json::Document d;
  json::Value queues = json::string_array(agent.queues, d.GetAllocator());
  std::string queues_json = json::dump(queues);
  std::int64_t now = now_ms();
  std::lock_guard<std::mutex> lock(mu_);
  Txn txn(*this);
  auto s = stmt(
      "INSERT INTO agents (id, host, pid, version, entity, queues, status, max_jobs, "
      "running_jobs, started_at, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
      "ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, "
      "version = excluded.version, entity = excluded.entity, queues = excluded.queues, "
      "status = excluded.status, max_jobs = excluded.max_jobs, "
      "running_jobs = excluded.running_jobs, started_at = excluded.started_at, "
      "last_seen = excluded.last_seen");
  s.bind(1, agent.id)
      .bind(2, agent.host)
      .bind(3, agent.pid)
      .bind(4, agent.version)
      .bind(5, agent.entity)
      .bind(6, queues_json)
      .bind(7, std::string(to_string(agent.status)))
      .bind(8, agent.max_jobs)
      .bind(9, agent.running_jobs)
      .bind(10, agent.started_at)
      .bind(11, agent.last_seen ? agent.last_seen : now);
  s.run();
  txn.commit();
}

std::vector<AgentRecord> SqliteTransport::list_agents() {
  std::lock_guard<std::mutex> lock(mu_);
  auto s = stmt(
      "SELECT id, host, pid, version, entity, queues, status, max_jobs, running_jobs, "
      "started_at, last_seen FROM agents ORDER BY id");
  std::vector<AgentRecord> out;
  std::int64_t now = now_ms();
  while (s.step()) {
    AgentRecord a;
    a.id = s.text(0);
    a.host = s.text(1);
    a.pid = static_cast<int>(s.int64(2));
    a.version = s.text(3);
    a.entity = s.text(4);
    json::Document d = json::parse(s.text(5), "agent queues");
    for (const auto& v : d.GetArray()) a.queues.push_back(json::scalar_text(v));
    a.status = parse_agent_status(s.text(6));
    a.max_jobs = static_cast<int>(s.int64(7));
    a.running_jobs = static_cast<int>(s.int64(8));
    a.started_at = s.int64(9);
    a.last_seen = s.int64(10);
    lifecycle::judge_agent(a, now);
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace

std::shared_ptr<Transport> open_sqlite_transport(const std::string& uri) {
  return std::make_shared<SqliteTransport>(uri);
}

}  // namespace launch
