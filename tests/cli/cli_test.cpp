// End-to-end tests of the `launch` command line. Each test runs the built
// binary as a subprocess against a sqlite store in a fresh LAUNCH_HOME and
// checks its stdout, stderr and exit code. Where an agent would act (claim,
// start, finish), the test opens the same store through the library and
// plays the agent.
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include "core/resolve.hpp"
#include "launch/features.h"
#include "launch/launch.hpp"
#include "support/temp_dir.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;

const std::string kLaunch = std::string(LAUNCH_BINARY_DIR) + "/examples/launch/launch";
const std::string kAgent = "agent-test";

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A running `launch`: stdout and stderr captured through pipes, stdin
// /dev/null, working directory `cwd`. finish() collects it.
class Process {
 public:
  Process(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
          const std::string& cwd) {
    int out[2], err[2];
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(err, O_CLOEXEC) == 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());

    std::vector<std::string> argv_s = {kLaunch};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_s;
    for (const auto& [k, v] : env) env_s.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& e : env_s) envp.push_back(e.data());
    envp.push_back(nullptr);

    int rc = posix_spawn(&pid_, kLaunch.c_str(), &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    ::close(err[1]);
    out_ = out[0];
    err_ = err[0];
    if (rc != 0) pid_ = -1;
    REQUIRE_MESSAGE(rc == 0, "cannot start " << kLaunch << ": " << std::strerror(rc));
  }
  ~Process() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      finish();
    }
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Reads its stdout until `text` has appeared (a handshake: it has got
  // that far); finish() still returns all of it. False if stdout closed.
  bool await_out(const std::string& text) {
    while (early_out_.find(text) == std::string::npos) {
      char buf[4096];
      ssize_t n = ::read(out_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      early_out_.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  }

  Result finish() {
    Result r;
    r.out = early_out_;
    struct pollfd fds[2] = {{out_, POLLIN, 0}, {err_, POLLIN, 0}};
    std::string* sinks[2] = {&r.out, &r.err};
    int open = 2;
    while (open > 0) {
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      for (int i = 0; i < 2; ++i) {
        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        char buf[4096];
        ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
        if (n > 0) {
          sinks[i]->append(buf, static_cast<std::size_t>(n));
        } else if (n == 0 || errno != EINTR) {
          ::close(fds[i].fd);
          fds[i].fd = -1;
          --open;
        }
      }
    }
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  int err_ = -1;
  std::string early_out_;
};

// A temporary HOME and LAUNCH_HOME with a sqlite store, removed at the end.
// `env` is the environment every `launch` of this test gets: the test's own
// minus every LAUNCH_* variable, plus the sandbox's.
class Sandbox {
 public:
  Sandbox() {
    dir = launch_test::temp_base() + "/launch-cli-test.XXXXXX";
    REQUIRE(::mkdtemp(&dir[0]) != nullptr);
    home = dir + "/launch-home";
    uri = "sqlite://" + home + "/launch.db";
    for (char** e = environ; *e; ++e) {
      std::string kv = *e;
      auto eq = kv.find('=');
      if (eq == std::string::npos) continue;
      std::string key = kv.substr(0, eq);
      if (key.rfind("LAUNCH_", 0) == 0 || key == "XDG_CONFIG_HOME") continue;
      env[key] = kv.substr(eq + 1);
    }
    env["HOME"] = dir;  // so ~/.config/launch/launch-config.yaml is ours
    env["LAUNCH_HOME"] = home;
    env["LAUNCH_QUEUE_URI"] = uri;
    env["LAUNCH_ENTITY"] = "team";
  }
  ~Sandbox() {
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  Result run(const std::vector<std::string>& args) {
    return Process(args, env, dir).finish();
  }
  std::unique_ptr<Process> start(const std::vector<std::string>& args) {
    return std::make_unique<Process>(args, env, dir);
  }
  // Runs `launch` and requires success; returns its stdout.
  std::string ok(const std::vector<std::string>& args) {
    Result r = run(args);
    INFO("launch " << join(args) << "\nstderr: " << r.err);
    REQUIRE(r.code == 0);
    return r.out;
  }
  // Pushes and returns the new item's id.
  std::string push(const std::vector<std::string>& args) {
    std::vector<std::string> full = {"push"};
    full.insert(full.end(), args.begin(), args.end());
    std::string out = ok(full);
    REQUIRE(out.size() > 1);
    REQUIRE(out.back() == '\n');
    return out.substr(0, out.size() - 1);
  }
  void write(const std::string& relative, const std::string& text) {
    fs::path p = fs::path(dir) / relative;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary | std::ios::app) << text;
  }
  launch::Transport& store() {
    if (!store_) store_ = launch::open_transport(uri);
    return *store_;
  }
  static std::string join(const std::vector<std::string>& args) {
    std::string s;
    for (const auto& a : args) s += (s.empty() ? "" : " ") + a;
    return s;
  }

  std::string dir;
  std::string home;
  std::string uri;
  std::map<std::string, std::string> env;

 private:
  std::shared_ptr<launch::Transport> store_;
};

// A failure: non-zero, nothing on stdout, one line on stderr that starts
// with "launch: " and names every one of `words`.
void check_failure(const Result& r, const std::vector<std::string>& words) {
  INFO("stdout: " << r.out);
  INFO("stderr: " << r.err);
  CHECK(r.code != 0);
  CHECK(r.out.empty());
  CHECK(r.err.rfind("launch: ", 0) == 0);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(!r.err.empty());
  if (!r.err.empty()) CHECK(r.err.back() == '\n');
  for (const auto& w : words) {
    INFO("expected in stderr: " << w);
    CHECK(contains(r.err, w));
  }
}

std::unique_ptr<rapidjson::Document> parse_json(const std::string& text) {
  auto doc = std::make_unique<rapidjson::Document>();
  doc->Parse(text.c_str(), text.size());
  INFO("JSON: " << text);
  REQUIRE_FALSE(doc->HasParseError());
  return doc;
}

std::string user_name() {
  const passwd* pw = getpwuid(geteuid());
  REQUIRE(pw != nullptr);
  return pw->pw_name;
}

std::size_t line_count(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

const char* kGpuQueue =
    "name: gpu\n"
    "resource: local-process\n"
    "config: {env: {GPUS: \"{{gpus}}\"}}\n"
    "template_variables:\n"
    "  gpus: {type: integer, minimum: 1, maximum: 4, default: 1}\n";

// Claims `id` (the oldest pending item of `queue`) and starts it, as an
// agent would.
void claim_and_start(launch::Transport& t, const std::string& queue, const std::string& id) {
  auto item = t.claim({launch::QueueRef::parse(queue)}, kAgent);
  REQUIRE(item.has_value());
  REQUIRE(item->id == id);
  t.start(id, kAgent, item->run_id.empty() ? launch::generate_run_id() : item->run_id);
}

// A library agent stepping in a thread of the test, on the sandbox's store;
// stopped (its runs cancelled) and joined when it goes out of scope.
class AgentThread {
 public:
  AgentThread(Sandbox& sb, const std::vector<std::string>& queues) {
    launch::AgentConfig cfg;
    cfg.entity = "team";
    cfg.queues = queues;
    cfg.max_jobs = 2;
    cfg.gpus = 0;
    cfg.launch_home = sb.home;
    launch::set_log_level(launch::LogLevel::warn);  // its transitions are not the test's
    agent_ = std::make_unique<launch::Agent>(cfg, launch::open_transport(sb.uri));
    thread_ = std::thread([this] {
      try {
        while (agent_->step(std::chrono::milliseconds(100))) {
        }
      } catch (const std::exception& e) {
        error_ = e.what();
      }
    });
  }
  ~AgentThread() {
    agent_->stop(launch::StopMode::cancel);
    thread_.join();
  }
  AgentThread(const AgentThread&) = delete;
  AgentThread& operator=(const AgentThread&) = delete;
  const std::string& error() const { return error_; }

 private:
  std::unique_ptr<launch::Agent> agent_;
  std::thread thread_;
  std::string error_;
};

// Polls the store until `id` is in `state` (at most 30 s).
void await_state(launch::Transport& t, const std::string& id, launch::ItemState state) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (t.get(id).state != state && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE(launch::to_string(t.get(id).state) == std::string(launch::to_string(state)));
}

}  // namespace

TEST_SUITE("cli") {

TEST_CASE("a push above a template variable's maximum is refused and leaves the queue as it was") {
  Sandbox sb;
  sb.write("gpu.yaml", kGpuQueue);
  sb.ok({"queue", "create", "-f", "gpu.yaml"});
  std::string before = sb.ok({"list", "-q", "gpu"});
  std::string queue_before = sb.ok({"queue", "show", "gpu", "--json"});

  Result r = sb.run({"push", "-q", "gpu", "--set-var", "gpus=8", "-E", "/bin/true"});
  check_failure(r, {"gpus", "8", "4", "maximum"});

  CHECK(sb.ok({"list", "-q", "gpu"}) == before);
  CHECK(sb.ok({"list", "--json"}) == "[]\n");
  CHECK(sb.ok({"queue", "show", "gpu", "--json"}) == queue_before);
  CHECK(sb.store().list().empty());

  std::string id = sb.push({"-q", "gpu", "--set-var", "gpus=4", "-E", "/bin/true"});
  auto item = sb.store().get(id);
  CHECK(item.spec.template_values.at("gpus") == "4");
  CHECK(item.queue.str() == "team/gpu");
}

TEST_CASE("push prints the new item's id alone and stores every option") {
  Sandbox sb;
  sb.ok({"queue", "create", "jobs", "-r", "local-process"});
  sb.env["LAUNCH_AUTHOR"] = "alice";
  sb.write("res.yaml", "env:\n  FROM_FILE: 'yes'\n");
  fs::create_directories(fs::path(sb.dir) / "code");

  Result r = sb.run({"push", "-q", "jobs", "--name", "train", "-p", "vision", "--env", "A=1",
                     "--env", "B=x=y", "-R", "@res.yaml", "-c",
                     "{\"overrides\": {\"run_config\": {\"lr\": 0.5}}}", "--code",
                     "code", "-E", "[\"python\", \"train.py\"]", "--", "--epochs", "3", "-q"});
  INFO("stderr: " << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.err.empty());
  REQUIRE(line_count(r.out) == 1);
  std::string id = r.out.substr(0, r.out.size() - 1);
  CHECK(!id.empty());
  CHECK(id.find(' ') == std::string::npos);

  auto item = sb.store().get(id);
  const auto& spec = item.spec;
  CHECK(item.queue.str() == "team/jobs");
  CHECK(item.state == launch::ItemState::pending);
  CHECK(spec.name == "train");
  CHECK(spec.project == "vision");
  CHECK(spec.author == "alice");
  CHECK(spec.env == std::map<std::string, std::string>{{"A", "1"}, {"B", "x=y"}});
  CHECK(contains(spec.resource_args, "FROM_FILE"));
  CHECK(contains(spec.run_config, "\"lr\""));
  CHECK(spec.source.kind == launch::JobSource::Kind::code);
  CHECK(spec.source.code_dir == sb.dir + "/code");
  CHECK(spec.entry_point == std::vector<std::string>{"python", "train.py"});
  CHECK(spec.args == std::vector<std::string>{"--epochs", "3", "-q"});

  std::string image = sb.push({"-q", "jobs", "-d", "alpine:3", "-E", "/bin/echo", "--", "hi"});
  auto img = sb.store().get(image);
  CHECK(img.spec.source.kind == launch::JobSource::Kind::image);
  CHECK(img.spec.source.image == "alpine:3");
  CHECK(img.spec.entry_point == std::vector<std::string>{"/bin/echo"});
  CHECK(img.spec.args == std::vector<std::string>{"hi"});
  CHECK(img.spec.author == "alice");

  sb.env.erase("LAUNCH_AUTHOR");
  std::string git = sb.push({"-q", "jobs", "--git", "https://example.com/r.git", "--ref", "v1"});
  auto g = sb.store().get(git);
  CHECK(g.spec.source.kind == launch::JobSource::Kind::git);
  CHECK(g.spec.source.git_url == "https://example.com/r.git");
  CHECK(g.spec.source.git_ref == "v1");
  CHECK(g.spec.author == user_name());

  auto json = parse_json(sb.ok({"push", "-q", "jobs", "-E", "/bin/true", "--json"}));
  REQUIRE(json->IsObject());
  REQUIRE(json->HasMember("id"));
  CHECK(sb.store().get((*json)["id"].GetString()).spec.entry_point ==
        std::vector<std::string>{"/bin/true"});

  check_failure(sb.run({"push", "-q", "jobs", "-d", "alpine", "--git", "https://x/y.git"}),
                {"--git"});
  check_failure(sb.run({"push", "-q", "jobs", "--code", "no-such-dir"}), {"no-such-dir"});
  check_failure(sb.run({"push", "-q", "jobs", "-E", "[\"a\", 1]"}), {"-E"});
  check_failure(sb.run({"push", "-q", "jobs", "-R", "[1]"}), {"-R"});
  check_failure(sb.run({"push", "-q", "jobs", "-c", "@missing.json"}), {"missing.json"});
  CHECK(sb.store().list().size() == 4);
}

TEST_CASE("queue create from flags, YAML and JSON files; queue list, show and delete") {
  Sandbox sb;
  CHECK(sb.ok({"queue", "create", "a", "-r", "local-process", "--config",
               "{\"env\": {\"X\": \"1\"}}", "--prioritize"}) == "created queue team/a\n");
  sb.write("cfg.yaml", "env:\n  Y: '2'\n");
  sb.ok({"queue", "create", "other/b", "-r", "local-container", "--config", "cfg.yaml"});
  sb.write("c.yaml", std::string(kGpuQueue) + "entity: ml\n");
  sb.ok({"queue", "create", "-f", "c.yaml"});
  sb.write("d.json",
           "{\"name\": \"d\", \"resource\": \"kubernetes\", \"prioritization\": true,"
           " \"config\": {\"spec\": {\"x\": 1}}}");
  auto created = parse_json(sb.ok({"queue", "create", "-f", "d.json", "--json"}));
  CHECK(std::string((*created)["name"].GetString()) == "d");
  CHECK(std::string((*created)["entity"].GetString()) == "team");

  auto a = sb.store().get_queue(launch::QueueRef::parse("team/a"));
  CHECK(a.resource == "local-process");
  CHECK(a.prioritization);
  CHECK(contains(a.config, "\"X\""));
  auto b = sb.store().get_queue(launch::QueueRef::parse("other/b"));
  CHECK(b.resource == "local-container");
  CHECK(!b.prioritization);
  CHECK(contains(b.config, "\"Y\""));
  auto c = sb.store().get_queue(launch::QueueRef::parse("ml/gpu"));
  REQUIRE(c.template_variables.count("gpus") == 1);
  CHECK(c.template_variables.at("gpus").maximum == 4.0);
  auto d = sb.store().get_queue(launch::QueueRef::parse("team/d"));
  CHECK(d.resource == "kubernetes");
  CHECK(d.prioritization);

  auto list = parse_json(sb.ok({"queue", "list", "--json"}));
  REQUIRE(list->IsArray());
  CHECK(list->Size() == 4);
  std::string table = sb.ok({"queue", "list"});
  CHECK(line_count(table) == 5);
  for (const char* q : {"team/a", "other/b", "ml/gpu", "team/d"}) CHECK(contains(table, q));

  std::string shown = sb.ok({"queue", "show", "ml/gpu"});
  CHECK(contains(shown, "ml/gpu"));
  CHECK(contains(shown, "gpus"));
  auto shown_json = parse_json(sb.ok({"queue", "show", "a", "--json"}));
  CHECK(std::string((*shown_json)["resource"].GetString()) == "local-process");

  check_failure(sb.run({"queue", "create", "a", "-r", "local-process"}), {"team/a"});
  check_failure(sb.run({"queue", "create", "e"}), {"-r"});
  check_failure(sb.run({"queue", "create", "e", "-r", "local-process", "--config", "[1, 2]"}),
                {"--config"});
  check_failure(sb.run({"queue", "create", "bad name", "-r", "local-process"}), {"bad name"});
  check_failure(sb.run({"queue", "create", "-f", "nothere.yaml"}), {"nothere.yaml"});
  sb.write("bad.yaml", "name: z\nresource: local-process\ncolour: blue\n");
  check_failure(sb.run({"queue", "create", "-f", "bad.yaml"}), {"colour"});

  CHECK(sb.ok({"queue", "delete", "other/b"}) == "deleted queue other/b and its 0 items\n");
  CHECK(parse_json(sb.ok({"queue", "list", "--json"}))->Size() == 3);
  check_failure(sb.run({"queue", "show", "other/b"}), {"other/b"});
  check_failure(sb.run({"queue", "delete", "other/b"}), {"other/b"});
}

TEST_CASE("list filters by queue and state, newest last") {
  Sandbox sb;
  sb.ok({"queue", "create", "a", "-r", "local-process"});
  sb.ok({"queue", "create", "b", "-r", "local-process"});
  std::string a1 = sb.push({"-q", "a", "--name", "first", "-E", "/bin/true"});
  std::string b1 = sb.push({"-q", "b", "-E", "/bin/true"});
  std::string a2 = sb.push({"-q", "team/a", "--name", "second", "-E", "/bin/true"});
  sb.ok({"cancel", a1});

  auto ids = [&](const std::vector<std::string>& args) {
    std::vector<std::string> full = {"list", "--json"};
    full.insert(full.end(), args.begin(), args.end());
    auto doc = parse_json(sb.ok(full));
    std::vector<std::string> out;
    for (const auto& v : doc->GetArray()) out.push_back(v["id"].GetString());
    return out;
  };
  CHECK(ids({}) == std::vector<std::string>{a1, b1, a2});
  CHECK(ids({"-q", "a"}) == std::vector<std::string>{a1, a2});
  CHECK(ids({"-q", "team/b"}) == std::vector<std::string>{b1});
  CHECK(ids({"--state", "stopped"}) == std::vector<std::string>{a1});
  CHECK(ids({"--state", "pending", "-q", "a"}) == std::vector<std::string>{a2});
  CHECK(ids({"--state", "finished"}).empty());
  CHECK(ids({"-n", "2"}) == std::vector<std::string>{b1, a2});

  std::string table = sb.ok({"list"});
  REQUIRE(line_count(table) == 4);
  CHECK(contains(table, "STATE"));
  std::string last = table.substr(table.rfind('\n', table.size() - 2) + 1);
  CHECK(contains(last, a2));
  CHECK(contains(last, "second"));
  CHECK(contains(last, "pending"));
  CHECK(contains(sb.ok({"list", "--state", "stopped"}), "stopped"));

  check_failure(sb.run({"list", "--state", "sleeping"}), {"--state", "sleeping"});
  check_failure(sb.run({"list", "-q", "nosuch"}), {"nosuch"});
}

TEST_CASE("list cuts and pads names by the columns a terminal shows, never inside a character") {
  Sandbox sb;
  sb.ok({"queue", "create", "q", "-r", "local-process"});
  // 40 two-byte characters: 80 bytes, 40 columns; 20 wide characters: 40
  // columns; a combining accent takes none.
  std::string accented, wide;
  for (int i = 0; i < 40; ++i) accented += "\u00e9";
  for (int i = 0; i < 20; ++i) wide += "\u65e5";
  std::string combining = "e\u0301te";
  std::string a = sb.push({"-q", "q", "--name", accented, "-E", "/bin/true"});
  std::string w = sb.push({"-q", "q", "--name", wide, "-E", "/bin/true"});
  std::string c = sb.push({"-q", "q", "--name", combining, "-E", "/bin/true"});

  std::string table = sb.ok({"list"});
  std::vector<std::string> lines;
  for (std::size_t start = 0; start < table.size();) {
    std::size_t end = table.find('\n', start);
    lines.push_back(table.substr(start, end - start));
    start = end + 1;
  }
  REQUIRE(lines.size() == 4);
  // 29 characters and "..." (32 columns); wide ones: 14 (28 columns) and "...".
  std::string accented_cut, wide_cut;
  for (int i = 0; i < 29; ++i) accented_cut += "\u00e9";
  for (int i = 0; i < 14; ++i) wide_cut += "\u65e5";
  CHECK(contains(lines[1], accented_cut + "...  "));
  CHECK_FALSE(contains(lines[1], accented_cut + "\u00e9"));
  CHECK(contains(lines[2], wide_cut + "...  "));
  CHECK(contains(lines[3], combining + " "));
  // The RUN column starts at the same terminal column on every line.
  auto column_of = [](const std::string& line, const std::string& part) {
    std::size_t at = line.find(part);
    REQUIRE(at != std::string::npos);
    // Columns of what precedes it: characters, plus one for each wide one,
    // less one for each combining accent.
    std::string before = line.substr(0, at);
    std::size_t columns = 0;
    for (unsigned char b : before) columns += (b & 0xC0) != 0x80;
    for (std::size_t p = before.find("\u65e5"); p != std::string::npos;
         p = before.find("\u65e5", p + 1)) {
      ++columns;
    }
    for (std::size_t p = before.find("\u0301"); p != std::string::npos;
         p = before.find("\u0301", p + 1)) {
      --columns;
    }
    return columns;
  };
  std::size_t run_column = column_of(lines[0], "RUN");
  for (const auto& [line, id] : {std::pair{lines[1], a}, {lines[2], w}, {lines[3], c}}) {
    auto item = parse_json(sb.ok({"show", id, "--json"}));
    CHECK(column_of(line, (*item)["run_id"].GetString()) == run_column);
  }
}

TEST_CASE("show and cancel an item") {
  Sandbox sb;
  sb.ok({"queue", "create", "a", "-r", "local-process"});
  std::string id = sb.push({"-q", "a", "--name", "job", "-E", "/bin/true", "--", "x"});

  std::string shown = sb.ok({"show", id});
  CHECK(contains(shown, id));
  CHECK(contains(shown, "pending"));
  CHECK(contains(shown, "team/a"));
  CHECK(contains(shown, "/bin/true"));
  auto json = parse_json(sb.ok({"show", id, "--json"}));
  CHECK(std::string((*json)["id"].GetString()) == id);
  CHECK(std::string((*json)["state"].GetString()) == "pending");

  CHECK(sb.ok({"cancel", id}) == id + " stopped\n");
  CHECK(sb.store().get(id).state == launch::ItemState::stopped);
  check_failure(sb.run({"cancel", id}), {id});

  // A running item goes to stopping; its agent finishes the stop.
  std::string running = sb.push({"-q", "a", "-E", "/bin/true"});
  claim_and_start(sb.store(), "team/a", running);
  auto cancelled = parse_json(sb.ok({"cancel", running, "--json"}));
  CHECK(std::string((*cancelled)["state"].GetString()) == "stopping");
  CHECK(sb.store().heartbeat(kAgent, {running}).cancel_requested ==
        std::vector<std::string>{running});
}

TEST_CASE("bad input gets one clear line naming the field and the value") {
  Sandbox sb;
  sb.ok({"queue", "create", "plain", "-r", "local-process"});
  sb.ok({"queue", "create", "ranked", "-r", "local-process", "--prioritize"});

  check_failure(sb.run({"push", "-q", "nosuch", "-E", "/bin/true"}), {"nosuch"});
  check_failure(sb.run({"push", "-q", "ranked", "-P", "urgent"}), {"-P", "urgent"});
  check_failure(sb.run({"push", "-q", "plain", "-P", "high"}), {"priority", "team/plain"});
  check_failure(sb.run({"push", "-q", "plain", "--set-var", "gpus"}), {"--set-var", "gpus"});
  check_failure(sb.run({"push", "-q", "plain", "--set-var", "=4"}), {"--set-var", "=4"});
  check_failure(sb.run({"push", "-q", "plain", "--env", "NOVALUE"}), {"--env", "NOVALUE"});
  check_failure(sb.run({"push", "-q", "plain", "--set-var", "gpus=2"}), {"gpus"});
  CHECK(sb.store().list().empty());

  for (const char* cmd : {"show", "cancel", "wait", "logs"}) {
    INFO(cmd);
    check_failure(sb.run({cmd, "no-such-item"}), {"no-such-item"});
  }

  Result usage = sb.run({"push", "-E", "/bin/true"});
  check_failure(usage, {"--queue"});
  CHECK(usage.code == 2);
  check_failure(sb.run({"frobnicate"}), {"frobnicate"});
  check_failure(sb.run({"list", "--", "x"}), {"--"});

  std::string id = sb.push({"-q", "ranked", "-P", "critical", "-E", "/bin/true"});
  CHECK(sb.store().get(id).priority == launch::Priority::critical);
}

TEST_CASE("the entity is -e, else LAUNCH_ENTITY, else the config file's, else the user name") {
  Sandbox sb;
  const std::string user = user_name();
  for (const std::string& e : std::vector<std::string>{"flag-ent", "env-ent", "file-ent", "other-ent", user}) {
    sb.ok({"queue", "create", e + "/q", "-r", "local-process"});
  }
  sb.write(".config/launch/launch-config.yaml", "entity: file-ent\nmax_jobs: 2\n");
  auto entity_of_q = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"queue", "show", "q", "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto doc = parse_json(sb.ok(args));
    return std::string((*doc)["entity"].GetString());
  };

  sb.env["LAUNCH_ENTITY"] = "env-ent";
  CHECK(entity_of_q({"-e", "flag-ent"}) == "flag-ent");
  CHECK(entity_of_q({}) == "env-ent");
  sb.env.erase("LAUNCH_ENTITY");
  CHECK(entity_of_q({}) == "file-ent");
  sb.write("elsewhere.yaml", "entity: other-ent\n");
  sb.env["LAUNCH_CONFIG_FILE"] = sb.dir + "/elsewhere.yaml";
  CHECK(entity_of_q({}) == "other-ent");
  sb.env.erase("LAUNCH_CONFIG_FILE");
  fs::remove(fs::path(sb.dir) / ".config/launch/launch-config.yaml");
  CHECK(entity_of_q({}) == user);

  // push and queue create resolve the same way.
  sb.env["LAUNCH_ENTITY"] = "env-ent";
  std::string id = sb.push({"-q", "q", "-e", "flag-ent", "-E", "/bin/true"});
  CHECK(sb.store().get(id).queue.str() == "flag-ent/q");
  id = sb.push({"-q", "q", "-E", "/bin/true"});
  CHECK(sb.store().get(id).queue.str() == "env-ent/q");
  sb.write("gpu.yaml", kGpuQueue);
  sb.ok({"queue", "create", "-f", "gpu.yaml"});
  CHECK(sb.store().get_queue(launch::QueueRef::parse("env-ent/gpu")).name == "gpu");
  sb.write("ml.yaml", std::string(kGpuQueue) + "entity: ml\n");
  check_failure(sb.run({"queue", "create", "-f", "ml.yaml", "-e", "flag-ent"}), {"ml", "flag-ent"});

  sb.write(".config/launch/launch-config.yaml", "entity: file-ent\nflavour: x\n");
  sb.env.erase("LAUNCH_ENTITY");
  check_failure(sb.run({"queue", "show", "q"}), {"flavour"});
}

TEST_CASE("wait blocks until the item ends and exits with the job's code") {
  Sandbox sb;
  sb.ok({"queue", "create", "a", "-r", "local-process"});
  auto& t = sb.store();
  std::string failed = sb.push({"-q", "a", "-E", "/bin/false"});
  std::string finished = sb.push({"-q", "a", "-E", "/bin/true"});
  std::string crashed = sb.push({"-q", "a", "-E", "/bin/true"});
  std::string cancelled = sb.push({"-q", "a", "-E", "/bin/true"});
  std::string pending = sb.push({"-q", "a", "-E", "/bin/true"});

  claim_and_start(t, "team/a", failed);
  t.finish(failed, kAgent, 3);
  Result r = sb.run({"wait", failed});
  CHECK(r.code == 3);
  CHECK(contains(r.out, "failed"));

  // Started before the job ends: it must still be waiting when it does.
  auto waiter = sb.start({"wait", finished});
  claim_and_start(t, "team/a", finished);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  t.finish(finished, kAgent, 0);
  r = waiter->finish();
  CHECK(r.code == 0);
  CHECK(r.out == finished + " finished (exit code 0)\n");

  claim_and_start(t, "team/a", crashed);
  t.fail(crashed, kAgent, launch::ItemError{launch::ErrorStage::run, "lost the node"});
  r = sb.run({"wait", crashed, "--json"});
  CHECK(r.code == 1);
  auto json = parse_json(r.out);
  CHECK(std::string((*json)["state"].GetString()) == "failed");

  sb.ok({"cancel", cancelled});
  CHECK(sb.run({"wait", cancelled}).code == 130);

  r = sb.run({"wait", pending, "--timeout", "0.3"});
  CHECK(r.code == 124);
  CHECK(contains(r.err, pending));
}

TEST_CASE("logs prints the run's files and follows them until the item ends") {
  Sandbox sb;
  sb.ok({"queue", "create", "a", "-r", "local-process"});
  std::string done = sb.push({"-q", "a", "-E", "/bin/true"});
  std::string runs = "launch-home/runs/";
  sb.write(runs + done + "/build.log", "building\n");
  sb.write(runs + done + "/stdout.log", "hello out\n");
  sb.write(runs + done + "/stderr.log", "hello err\n");
  Result r = sb.run({"logs", done});
  CHECK(r.code == 0);
  CHECK(r.out == "building\nhello out\n");
  CHECK(r.err == "hello err\n");
  auto json = parse_json(sb.ok({"logs", done, "--json"}));
  CHECK(std::string((*json)["stdout"].GetString()) == "hello out\n");
  CHECK(std::string((*json)["stderr"].GetString()) == "hello err\n");

  std::string quiet = sb.push({"-q", "a", "-E", "/bin/true"});
  CHECK(sb.ok({"logs", quiet}).empty());

  std::string live = sb.push({"-q", "a", "-E", "/bin/true"});
  auto& t = sb.store();
  t.cancel(done);
  t.cancel(quiet);
  claim_and_start(t, "team/a", live);
  sb.write(runs + live + "/stdout.log", "first\n");
  auto follower = sb.start({"logs", live, "-f"});
  REQUIRE(follower->await_out("first\n"));  // it is following
  sb.write(runs + live + "/stdout.log", "second\n");
  sb.write(runs + live + "/stderr.log", "warning\n");
  t.finish(live, kAgent, 0);
  r = follower->finish();
  CHECK(r.code == 0);
  CHECK(r.out == "first\nsecond\n");
  CHECK(r.err == "warning\n");
}

TEST_CASE("with a library agent running the jobs: logs -f, wait and cancel see them through") {
  Sandbox sb;
  sb.ok({"queue", "create", "q", "-r", "local-process"});
  std::string failing = sb.push(
      {"-q", "q", "-E", "/bin/sh", "--", "-c", "echo hello; echo oops >&2; sleep 0.5; exit 3"});
  auto follower = sb.start({"logs", failing, "-f"});
  auto waiter = sb.start({"wait", failing});
  std::string sleeper = sb.push({"-q", "q", "-E", "/bin/sh", "--", "-c", "echo up; sleep 60"});

  AgentThread agent(sb, {"team/q"});
  Result logs = follower->finish();
  CHECK(logs.code == 0);
  CHECK(logs.out == "hello\n");
  CHECK(logs.err == "oops\n");
  Result waited = waiter->finish();
  CHECK(waited.code == 3);
  CHECK(contains(waited.out, "failed"));
  CHECK(contains(sb.ok({"list", "--state", "failed"}), failing));

  await_state(sb.store(), sleeper, launch::ItemState::running);
  CHECK(contains(sb.ok({"agents"}), "team/q"));
  CHECK(sb.ok({"cancel", sleeper}) == sleeper + " stopping\n");
  CHECK(sb.run({"wait", sleeper}).code == 130);
  CHECK(agent.error().empty());
}

TEST_CASE("agents lists the registered agents") {
  Sandbox sb;
  CHECK(line_count(sb.ok({"agents"})) == 1);
  launch::AgentRecord a;
  a.id = "agent-7";
  a.host = "box";
  a.pid = 42;
  a.version = launch::version();
  a.entity = "team";
  a.queues = {"team/a", "team/b"};
  a.status = launch::AgentStatus::running;
  a.max_jobs = 2;
  a.running_jobs = 1;
  a.started_at = a.last_seen = launch::now_ms();
  sb.store().upsert_agent(a);

  std::string table = sb.ok({"agents"});
  CHECK(line_count(table) == 2);
  for (const char* part : {"agent-7", "box", "42", "running", "team/a,team/b", "1/2"}) {
    INFO(part);
    CHECK(contains(table, part));
  }
  // --json: the library's one form of an agent record, as an array.
  std::string json_text = sb.ok({"agents", "--json"});
  CHECK(json_text == "[" + launch::to_json(a) + "]\n");
  auto json = parse_json(json_text);
  REQUIRE(json->IsArray());
  REQUIRE(json->Size() == 1);
  CHECK(std::string((*json)[0]["id"].GetString()) == "agent-7");
  CHECK((*json)[0]["max_jobs"].GetInt() == 2);
}

TEST_CASE("agents shows an agent killed here as dead and one gone quiet as lost") {
  Sandbox sb;
  char host[256] = {0};
  REQUIRE(::gethostname(host, sizeof host - 1) == 0);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(0);
  REQUIRE(::waitpid(child, nullptr, 0) == child);
  launch::AgentRecord killed;
  killed.id = "killed-here";
  killed.host = host;
  killed.pid = static_cast<int>(child);  // gone: as after kill -9
  killed.status = launch::AgentStatus::running;
  killed.last_seen = launch::now_ms();
  sb.store().upsert_agent(killed);
  launch::AgentRecord quiet = killed;
  quiet.id = "quiet-there";
  quiet.host = "another-host";
  quiet.last_seen = launch::now_ms() - (launch::kAgentLeaseSeconds + 60) * 1000;
  sb.store().upsert_agent(quiet);

  std::string table = sb.ok({"agents"});
  INFO(table);
  CHECK(contains(table, "dead"));
  CHECK(contains(table, "lost"));
  CHECK_FALSE(contains(table, "running"));
  auto json = parse_json(sb.ok({"agents", "--json"}));
  REQUIRE(json->IsArray());
  REQUIRE(json->Size() == 2);
  for (const auto& a : json->GetArray()) {
    std::string id = a["id"].GetString(), status = a["status"].GetString();
    CHECK(status == (id == "killed-here" ? "dead" : "lost"));
  }
}

TEST_CASE("--version, and the default store under LAUNCH_HOME") {
  Sandbox sb;
  Result v = sb.run({"--version"});
  CHECK(v.code == 0);
  CHECK(contains(v.out, LAUNCH_VERSION_STRING));

  sb.env.erase("LAUNCH_QUEUE_URI");
  sb.ok({"queue", "create", "z", "-r", "local-process"});
  CHECK(fs::exists(sb.home + "/launch.db"));
  CHECK(sb.store().get_queue(launch::QueueRef::parse("team/z")).name == "z");

  sb.env["LAUNCH_QUEUE_URI"] = "sqlite://" + sb.dir + "/elsewhere.db";
  check_failure(sb.run({"queue", "show", "z"}), {"team/z"});
  CHECK(fs::exists(sb.dir + "/elsewhere.db"));
}

TEST_CASE("memory:// is refused: nothing would outlive the command") {
  Sandbox sb;
  sb.env["LAUNCH_QUEUE_URI"] = "memory://";
  check_failure(sb.run({"queue", "create", "m", "-r", "local-process"}),
                {"LAUNCH_QUEUE_URI", "memory://", "outlive"});
  check_failure(sb.run({"queue", "list"}), {"memory://"});
  sb.env["LAUNCH_QUEUE_URI"] = sb.uri;
  check_failure(sb.run({"--uri", "memory://x", "queue", "list"}), {"--uri", "memory://x"});
  check_failure(sb.run({"queue", "list", "--uri", "memory://"}), {"--uri"});
  // --uri names the store, over LAUNCH_QUEUE_URI.
  std::string other = "sqlite://" + sb.dir + "/other.db";
  sb.ok({"--uri", other, "queue", "create", "elsewhere", "-r", "local-process"});
  CHECK(launch::open_transport(other)->list_queues().size() == 1);
  CHECK(sb.store().list_queues().empty());
  // Usage errors and --help still need no store.
  CHECK(sb.run({"queue", "create", "--help"}).code == 0);
}

TEST_CASE("-E refuses a shell string, with a hint to give argv") {
  Sandbox sb;
  sb.ok({"queue", "create", "jobs", "-r", "local-process"});
  check_failure(sb.run({"push", "-q", "jobs", "-E", "python train.py"}),
                {"-E \"python train.py\"", "never a shell string",
                 "'[\"python\", \"train.py\"]'"});
  check_failure(sb.run({"push", "-q", "jobs", "-c",
                        "{\"overrides\": {\"entry_point\": \"python train.py\"}}"}),
                {"never a shell string"});
  CHECK(sb.store().list().empty());
  // A program alone, or argv as JSON, is taken.
  auto one = sb.store().get(sb.push({"-q", "jobs", "-E", "python", "--", "train.py"}));
  auto two = sb.store().get(sb.push({"-q", "jobs", "-E", "[\"python\", \"train.py\"]"}));
  CHECK(one.spec.entry_point == std::vector<std::string>{"python"});
  CHECK(one.spec.args == std::vector<std::string>{"train.py"});
  CHECK(two.spec.entry_point == std::vector<std::string>{"python", "train.py"});
}

TEST_CASE("queue create refuses what the queue's runner would refuse, naming the option") {
  Sandbox sb;
  check_failure(sb.run({"queue", "create", "a", "-r", "local-process", "--config",
                        "{\"partition\": \"gpu\"}"}),
                {"team/a", "unknown option \"partition\""});
  check_failure(sb.run({"queue", "create", "c", "-r", "local-process", "--config",
                        "{\"kubernetes\": {\"spec\": {}}}"}),
                {"key \"kubernetes\"", "local-process"});
  CHECK(sb.store().list_queues().empty());
  // W&B's resource-keyed shape of the same queue's config is taken.
  sb.ok({"queue", "create", "p", "-r", "local-process", "--config",
         "{\"local-process\": {\"env\": {\"A\": \"1\"}}}"});
  // And a push's resource_args are checked at push, merged over it.
  check_failure(sb.run({"push", "-q", "p", "-E", "true", "-R", "{\"partition\": \"gpu\"}"}),
                {"team/p", "\"partition\""});
  check_failure(sb.run({"push", "-q", "p", "-E", "true", "-R",
                        "{\"local-container\": {\"memory\": \"1g\"}}"}),
                {"key \"local-container\"", "local-process"});
  CHECK(sb.store().list().empty());
}

#if LAUNCH_FEATURE_DOCKER
// The local-container runner (and so its checks) is built with docker only.
TEST_CASE("queue create and push refuse what local-container would refuse") {
  Sandbox sb;
  check_failure(sb.run({"queue", "create", "b", "-r", "local-container", "--config",
                        "{\"privileged\": true}"}),
                {"team/b", "option \"privileged\" is not allowed"});
  sb.write("q.yaml", "name: d\nresource: local-container\nconfig: {volumes: ['/:/host']}\n");
  check_failure(sb.run({"queue", "create", "-f", "q.yaml"}), {"q.yaml", "\"volumes\""});
  CHECK(sb.store().list_queues().empty());
  sb.ok({"queue", "create", "e", "-r", "local-container", "--config",
         "{\"local-container\": {\"memory\": \"1g\"}}"});
  check_failure(sb.run({"push", "-q", "e", "-d", "alpine:3", "-R", "{\"privileged\": true}"}),
                {"team/e", "\"privileged\""});
  check_failure(sb.run({"push", "-q", "e", "-d", "alpine:3", "-R",
                        "{\"local-process\": {\"env\": {}}}"}),
                {"key \"local-process\"", "local-container"});
  CHECK(sb.store().list().empty());
}
#endif

TEST_CASE("queue delete refuses unended items without --force; --force removes them and logs") {
  Sandbox sb;
  sb.ok({"queue", "create", "q", "-r", "local-process"});
  sb.ok({"queue", "create", "other", "-r", "local-process"});
  std::string done = sb.push({"-q", "q", "-E", "/bin/true"});
  std::string waiting = sb.push({"-q", "q", "-E", "/bin/true"});
  std::string kept = sb.push({"-q", "other", "-E", "/bin/true"});
  sb.store().cancel(done);  // terminal
  for (const auto& id : {done, waiting, kept}) {
    fs::create_directories(launch::run_directory(sb.home, id));
    std::ofstream(launch::run_directory(sb.home, id) + "/stdout.log") << "out\n";
  }

  check_failure(sb.run({"queue", "delete", "q"}),
                {"team/q", "has 1 item not yet ended", "1 pending", "--force"});
  CHECK(sb.store().list().size() == 3);
  CHECK(fs::exists(launch::run_directory(sb.home, waiting)));

  // An item an agent is running is not deleted under it, --force or not.
  std::string later = sb.push({"-q", "q", "-E", "/bin/true"});
  claim_and_start(sb.store(), "team/q", waiting);
  check_failure(sb.run({"queue", "delete", "q", "--force"}),
                {"team/q", "1 item claimed or running"});
  sb.store().cancel(waiting);
  sb.store().confirm_stopped(waiting, kAgent);

  CHECK(sb.ok({"queue", "delete", "q", "--force"}) == "deleted queue team/q and its 3 items\n");
  check_failure(sb.run({"queue", "show", "q"}), {"team/q"});
  CHECK(sb.store().list().size() == 1);
  for (const auto& id : {done, waiting, later}) {
    CHECK_FALSE(fs::exists(launch::run_directory(sb.home, id)));
  }
  CHECK(fs::exists(launch::run_directory(sb.home, kept) + "/stdout.log"));

  // Nothing left to end: no --force needed; --json says how many went.
  sb.store().cancel(kept);
  auto json = parse_json(sb.ok({"queue", "delete", "other", "--json"}));
  CHECK(std::string((*json)["deleted"].GetString()) == "team/other");
  CHECK((*json)["items"].GetInt() == 1);
}

namespace {

// What an agent would hand the runner for `id`, resolved from the store.
std::string resolved(Sandbox& sb, const std::string& id) {
  auto item = sb.store().get(id);
  auto queue = sb.store().get_queue(item.queue);
  item.run_id = "r1";  // the one difference between two pushes of one job
  return launch::resolve_config(queue, item, launch::MacroContext{"img:1", nullptr},
                                launch::SecureMode{});
}

// The fields of a spec a user gives, as one comparable text.
std::string given(const launch::JobSpec& s) {
  launch::JobSpec copy = s;
  copy.run_id.clear();
  copy.resource_args = "{}";  // compared resolved, above
  return launch::to_json(copy);
}

}  // namespace

TEST_CASE("push -c takes W&B's launch config; the same job in W&B's shapes and ours resolves "
          "to the same config") {
  Sandbox sb;
  sb.env["LAUNCH_AUTHOR"] = "alice";
  struct Case {
    const char* resource;
    const char* config;
    const char* resource_args;
  };
  const Case cases[] = {
      {"local-process", R"({"env": {"A": "a"}, "timeout_seconds": 60})",
       R"({"env": {"B": "b"}, "working_dir": "/tmp"})"},
      {"local-container", R"({"memory": "1g", "env": {"A": "a"}})",
       R"({"cpus": 2, "env": {"B": "b"}})"},
  };
  for (const auto& c : cases) {
    INFO(c.resource);
    std::string r = c.resource;
    std::string ours = "ours-" + r, wandbs = "wandb-" + r;
    sb.ok({"queue", "create", ours, "-r", r, "--config", c.config});
    sb.ok({"queue", "create", wandbs, "-r", r, "--config",
           "{\"" + r + "\": " + c.config + "}"});

    // launch's own shapes: flags.
    std::string a = sb.push({"-q", ours, "--name", "train", "-p", "vision", "-d", "alpine:3",
                             "-E", "[\"python\", \"train.py\"]", "-R", c.resource_args, "-c",
                             "{\"overrides\": {\"run_config\": {\"lr\": 0.5}}}", "--",
                             "--epochs", "3"});
    // W&B's: a `wandb launch -c` file, its resource_args keyed by resource.
    std::string file = "{\"name\": \"train\", \"project\": \"vision\", \"entity\": \"team\", "
                       "\"resource\": \"" + r + "\", "
                       "\"docker\": {\"docker_image\": \"alpine:3\"}, "
                       "\"overrides\": {\"entry_point\": [\"python\", \"train.py\"], "
                       "\"args\": [\"--epochs\", \"3\"], \"run_config\": {\"lr\": 0.5}}, "
                       "\"resource_args\": {\"" + r + "\": " + c.resource_args + "}}";
    sb.write(r + ".json", file);
    std::string by_path = sb.push({"-q", wandbs, "-c", r + ".json"});
    std::string by_at = sb.push({"-q", wandbs, "-c", "@" + r + ".json"});
    std::string inline_json = sb.push({"-q", wandbs, "-c", file});

    auto mine = sb.store().get(a);
    for (const auto& id : {by_path, by_at, inline_json}) {
      auto theirs = sb.store().get(id);
      CHECK(given(theirs.spec) == given(mine.spec));
      CHECK(resolved(sb, id) == resolved(sb, a));
    }
    // Resolved as the queue's config with the overrides merged in.
    CHECK(contains(resolved(sb, a), "\"B\":\"b\""));
    CHECK(contains(resolved(sb, a), "\"A\":\"a\""));
  }
  // The flags win over the file.
  std::string over = sb.push({"-q", "wandb-local-process", "-c", "local-process.json", "--name",
                              "other", "-E", "/bin/true", "--", "x"});
  auto o = sb.store().get(over);
  CHECK(o.spec.name == "other");
  CHECK(o.spec.entry_point == std::vector<std::string>{"/bin/true"});
  CHECK(o.spec.args == std::vector<std::string>{"x"});
  CHECK(o.spec.project == "vision");
  // A file's git repository and version; --ref wins over the version.
  std::string git = sb.push({"-q", "wandb-local-process", "-c",
                             R"({"git": {"repo": "https://example.com/r.git", "version": "v1"},)"
                             R"( "overrides": {"entry_point": ["/bin/true"]}})",
                             "--ref", "v2"});
  auto g = sb.store().get(git);
  CHECK(g.spec.source.kind == launch::JobSource::Kind::git);
  CHECK(g.spec.source.git_url == "https://example.com/r.git");
  CHECK(g.spec.source.git_ref == "v2");
}

TEST_CASE("push -c refuses what it cannot take, naming the key") {
  Sandbox sb;
  sb.ok({"queue", "create", "jobs", "-r", "local-process"});
  // The old reading of -c (a bare run config) now names the key.
  check_failure(sb.run({"push", "-q", "jobs", "-c", "{\"lr\": 0.5}"}),
                {"unknown key \"lr\"", "overrides.run_config"});
  check_failure(sb.run({"push", "-q", "jobs", "-c", "{\"overrides\": {\"colour\": 1}}"}),
                {"overrides.colour"});
  check_failure(sb.run({"push", "-q", "jobs", "-c", "{\"job\": \"team/p/job:v1\"}"}),
                {"job", "not supported"});
  check_failure(sb.run({"push", "-q", "jobs", "-c", "{\"resource\": \"kubernetes\"}"}),
                {"resource \"kubernetes\"", "local-process"});
  check_failure(sb.run({"push", "-q", "jobs", "-c", "{\"overrides\": {\"args\": \"--x\"}}"}),
                {"overrides.args", "a list of strings"});
  check_failure(sb.run({"push", "-q", "jobs", "-c",
                        "{\"resource_args\": {\"kubernetes\": {}}}"}),
                {"key \"kubernetes\""});
  check_failure(sb.run({"push", "-q", "jobs", "-c", "nothere.json"}), {"-c"});
  CHECK(sb.store().list().empty());
  // The file's entity names the queue's when neither -e nor the queue does.
  sb.ok({"queue", "create", "ml/jobs", "-r", "local-process"});
  std::string id = sb.push({"-q", "jobs", "-c", "{\"entity\": \"ml\", \"overrides\": "
                                              "{\"entry_point\": [\"/bin/true\"]}}"});
  CHECK(sb.store().get(id).queue.str() == "ml/jobs");
}

}  // TEST_SUITE
