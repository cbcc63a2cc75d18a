#include "pg_support.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>

#include <fmt/format.h>

extern char** environ;

namespace launch_test {

std::string pg_uri() {
  const char* uri = std::getenv("LAUNCH_TEST_PG_URI");
  if (!uri || !*uri) {
    throw std::runtime_error(
        "LAUNCH_TEST_PG_URI is not set: start PostgreSQL with "
        "eval \"$(scripts/services start DIR)\" or run scripts/test");
  }
  return uri;
}

std::string with_dbname(const std::string& uri, const std::string& dbname) {
  auto scheme = uri.find("://");
  auto query = uri.find('?', scheme == std::string::npos ? 0 : scheme + 3);
  std::string head = uri.substr(0, query), tail = query == std::string::npos ? "" : uri.substr(query);
  auto slash = head.find('/', scheme + 3);
  if (slash != std::string::npos) head.erase(slash);
  return head + "/" + dbname + tail;
}

namespace {

std::map<std::string, std::string> conninfo(const std::string& uri) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(uri.c_str(), &err);
  if (!opts) {
    std::string msg = err ? err : "?";
    PQfreemem(err);
    throw std::runtime_error("bad URI " + uri + ": " + msg);
  }
  std::map<std::string, std::string> out;
  for (PQconninfoOption* o = opts; o->keyword; ++o) {
    if (o->val) out[o->keyword] = o->val;
  }
  PQconninfoFree(opts);
  return out;
}

std::string env_or_throw(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) {
    throw std::runtime_error(std::string(name) +
                             " is not set: scripts/services start exports it");
  }
  return v;
}

}  // namespace

std::string pg_exec(const std::string& uri, const std::string& sql) {
  PGconn* c = PQconnectdb(uri.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(c);
    PQfinish(c);
    throw std::runtime_error("connect " + uri + ": " + msg);
  }
  PGresult* r = PQexec(c, sql.c_str());
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    std::string msg = PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(c);
    throw std::runtime_error(sql + ": " + msg);
  }
  std::string out = st == PGRES_TUPLES_OK && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
  PQclear(r);
  PQfinish(c);
  return out;
}

FreshDatabase::FreshDatabase() {
  static std::atomic<int> n{0};
  std::mt19937 rng(std::random_device{}());
  name_ = fmt::format("launch_t{}_{}_{}", ::getpid(), n++, rng() % 100000);
  pg_exec(pg_uri(), "CREATE DATABASE " + name_);
  uri_ = with_dbname(pg_uri(), name_);
}

FreshDatabase::~FreshDatabase() {
  try {
    pg_exec(pg_uri(), "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (const std::exception&) {
    // the server may be down after a failed restart test; nothing to do
  }
}

int run_quiet(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  // pg_ctl's server outlives it: it must not hold our pipes or sockets.
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

namespace {

std::vector<std::string> pg_ctl(const std::vector<std::string>& args) {
  std::vector<std::string> argv;
  if (::geteuid() == 0) argv = {"runuser", "-u", "postgres", "--"};
  argv.push_back(env_or_throw("LAUNCH_TEST_PG_BINDIR") + "/pg_ctl");
  argv.push_back("-D");
  argv.push_back(env_or_throw("LAUNCH_TEST_PG_DATA"));
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

}  // namespace

void stop_server_immediate() {
  if (run_quiet(pg_ctl({"-m", "immediate", "-w", "stop"})) != 0) {
    throw std::runtime_error("pg_ctl stop -m immediate failed");
  }
}

void start_server() {
  std::string data = env_or_throw("LAUNCH_TEST_PG_DATA");
  std::string log = data.substr(0, data.find_last_of('/')) + "/postgres.log";
  if (run_quiet(pg_ctl({"-l", log, "-w", "-t", "60", "start"})) != 0) {
    throw std::runtime_error("pg_ctl start failed (see " + log + ")");
  }
}

void restart_server(int down_ms) {
  stop_server_immediate();
  std::this_thread::sleep_for(std::chrono::milliseconds(down_ms));
  start_server();
}

// --- LossyProxy

LossyProxy::LossyProxy(const std::string& target_uri) {
  auto info = conninfo(target_uri);
  host_ = info.count("hostaddr") ? info["hostaddr"] : info["host"];
  if (host_.empty() || host_[0] == '/') host_ = "127.0.0.1";
  target_port_ = info.count("port") ? std::atoi(info["port"].c_str()) : 5432;

  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 16) != 0) {
    throw std::runtime_error("proxy: cannot listen");
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  if (::pipe2(wake_, O_CLOEXEC) != 0) throw std::runtime_error("proxy: pipe");
  std::string user = info.count("user") ? info["user"] : "postgres";
  std::string db = info.count("dbname") ? info["dbname"] : user;
  uri_ = fmt::format("postgres://{}@127.0.0.1:{}/{}?sslmode=disable&gssencmode=disable", user,
                     ntohs(addr.sin_port), db);
  thread_ = std::thread([this] { run(); });
}

LossyProxy::~LossyProxy() {
  char c = 'q';
  (void)!::write(wake_[1], &c, 1);
  thread_.join();
  ::close(listen_fd_);
  ::close(wake_[0]);
  ::close(wake_[1]);
}

void LossyProxy::lose_answer_to(const std::string& statement) {
  std::lock_guard<std::mutex> lock(mu_);
  armed_ = statement;
}

namespace {

// One proxied connection. Reads both directions message by message (the
// client's first message, the startup packet, has no type byte).
struct Pair {
  int client = -1;
  int server = -1;
  std::string from_client;  // bytes not yet parsed into whole messages
  std::string from_server;
  bool startup_done = false;
  bool doomed = false;  // the answer to the armed statement is to be lost
};

std::uint32_t be32(const std::string& s, std::size_t at) {
  return (static_cast<std::uint32_t>(static_cast<unsigned char>(s[at])) << 24) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 1])) << 16) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 2])) << 8) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 3]));
}

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

}  // namespace

void LossyProxy::run() {
  std::vector<std::unique_ptr<Pair>> pairs;
  auto close_pair = [](Pair& p) {
    ::close(p.client);
    ::close(p.server);
    p.client = p.server = -1;
  };
  for (;;) {
    std::vector<pollfd> fds = {{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    for (auto& p : pairs) {
      fds.push_back({p->client, POLLIN, 0});
      fds.push_back({p->server, POLLIN, 0});
    }
    if (::poll(fds.data(), fds.size(), -1) < 0) continue;
    if (fds[0].revents) break;
    if (fds[1].revents & POLLIN) {
      int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) {
        int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<std::uint16_t>(target_port_));
        ::inet_pton(AF_INET, host_.c_str(), &addr.sin_addr);
        if (::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
          ::close(server);
          ::close(client);
        } else {
          auto p = std::make_unique<Pair>();
          p->client = client;
          p->server = server;
          pairs.push_back(std::move(p));
        }
      }
      continue;  // the pair list changed: rebuild the poll set
    }
    char buf[65536];
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      Pair& p = *pairs[i];
      short crev = fds[2 + 2 * i].revents, srev = fds[3 + 2 * i].revents;
      if (p.client >= 0 && crev) {
        ssize_t n = ::read(p.client, buf, sizeof buf);
        if (n <= 0) {
          close_pair(p);
          continue;
        }
        p.from_client.append(buf, static_cast<std::size_t>(n));
        // Look at each whole message for a Bind of the armed statement.
        for (;;) {
          std::size_t head = p.startup_done ? 1 : 0;
          if (p.from_client.size() < head + 4) break;
          std::size_t len = be32(p.from_client, head) + head;
          if (p.from_client.size() < len) break;
          if (p.startup_done && p.from_client[0] == 'S') syncs_++;
          if (p.startup_done && p.from_client[0] == 'B') {
            // Bind: portal name, then statement name, both NUL-terminated.
            std::string body = p.from_client.substr(5, len - 5);
            std::size_t portal_end = body.find('\0');
            std::string stmt = body.substr(portal_end + 1, body.find('\0', portal_end + 1) -
                                                               portal_end - 1);
            std::lock_guard<std::mutex> lock(mu_);
            if (!armed_.empty() && stmt == armed_) {
              p.doomed = true;
              armed_.clear();
            }
          }
          p.startup_done = true;
          p.from_client.erase(0, len);
        }
        if (!write_all(p.server, buf, static_cast<std::size_t>(n))) close_pair(p);
      }
      if (p.server >= 0 && srev) {
        ssize_t n = ::read(p.server, buf, sizeof buf);
        if (n <= 0) {
          close_pair(p);
          continue;
        }
        if (!p.doomed) {
          if (!write_all(p.client, buf, static_cast<std::size_t>(n))) close_pair(p);
          continue;
        }
        // Hold every answer back until ReadyForQuery: by then the
        // statement has committed. Then cut both sides.
        p.from_server.append(buf, static_cast<std::size_t>(n));
        bool ready = false;
        std::size_t at = 0;
        while (p.from_server.size() >= at + 5) {
          std::size_t len = be32(p.from_server, at + 1) + 1;
          if (p.from_server.size() < at + len) break;
          if (p.from_server[at] == 'Z') ready = true;
          at += len;
        }
        if (ready) {
          close_pair(p);
          lost_++;
        }
      }
    }
    for (std::size_t i = pairs.size(); i-- > 0;) {
      if (pairs[i]->client < 0) pairs.erase(pairs.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
  for (auto& p : pairs) {
    if (p->client >= 0) close_pair(*p);
  }
}

}  // namespace launch_test
