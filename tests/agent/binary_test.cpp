// The launch-agent binary: configuration precedence, start-up errors, and
// (over a store shared between processes) SIGTERM drain and double SIGTERM.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>

#include "helpers.hpp"
#include "launch/launch.hpp"

extern char** environ;

using namespace launch;
using launch_test::TempDir;
using launch_test::slurp;

namespace {

struct Child {
  pid_t pid = -1;
  std::string out_path, err_path;
};

// Starts argv with the current environment plus `env` (an empty value
// removes the variable), output to files in `dir`.
Child spawn(const TempDir& dir, const std::vector<std::string>& argv,
            const std::map<std::string, std::string>& env, const std::string& tag) {
  std::map<std::string, std::string> all;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) all[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& kv : env) {
    if (kv.second.empty()) {
      all.erase(kv.first);
    } else {
      all[kv.first] = kv.second;
    }
  }
  std::vector<std::string> env_strings;
  for (const auto& kv : all) env_strings.push_back(kv.first + "=" + kv.second);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(&s[0]);
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(&a[0]);
  cargv.push_back(nullptr);
  Child c;
  c.out_path = dir / (tag + ".out");
  c.err_path = dir / (tag + ".err");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, c.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, c.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int rc = ::posix_spawn(&c.pid, cargv[0], &fa, nullptr, cargv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  REQUIRE(rc == 0);
  return c;
}

int wait_exit(Child& c) {
  int status = 0;
  REQUIRE(::waitpid(c.pid, &status, 0) == c.pid);
  c.pid = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

struct Result {
  int code;
  std::string out, err;
};

Result run(const TempDir& dir, std::vector<std::string> args,
           const std::map<std::string, std::string>& env = {}) {
  args.insert(args.begin(), launch_test::agent_binary());
  Child c = spawn(dir, args, env, "run");
  int code = wait_exit(c);
  return Result{code, slurp(c.out_path), slurp(c.err_path)};
}

// The environment a test agent runs in: nothing inherited that matters.
std::map<std::string, std::string> clean_env(const TempDir& home) {
  return {{"LAUNCH_HOME", home.path()},
          {"HOME", home.path()},
          {"XDG_CONFIG_HOME", ""},
          {"LAUNCH_ENTITY", ""},
          {"LAUNCH_MAX_JOBS", ""},
          {"LAUNCH_QUEUE_URI", ""}};
}

}  // namespace

TEST_CASE("launch-agent: a config file with an unknown key stops it, naming file and key") {
  TempDir d;
  std::string cfg = d / "launch-config.yaml";
  launch_test::write_file(cfg, "entity: team\nqueues: [q]\nmax_jobz: 2\n");
  Result r = run(d, {"-c", cfg}, clean_env(d));
  CHECK(r.code == 1);
  CHECK(r.err.find(cfg + ": unknown key \"max_jobz\"") != std::string::npos);
  CHECK(launch_test::lines_of(r.err).size() == 1);
}

TEST_CASE("launch-agent: settings go file < environment < flags") {
  TempDir d;
  std::string cfg = d / "launch-config.yaml";
  launch_test::write_file(cfg, "entity: file-team\nqueues: [fq]\nmax_jobs: 3\n");
  auto env = clean_env(d);

  Result r = run(d, {"-c", cfg, "--print-config"}, env);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("\"entity\": \"file-team\"") != std::string::npos);
  CHECK(r.out.find("\"max_jobs\": 3") != std::string::npos);
  CHECK(r.out.find("\"queues\": [\"fq\"]") != std::string::npos);

  env["LAUNCH_ENTITY"] = "env-team";
  env["LAUNCH_MAX_JOBS"] = "4";
  r = run(d, {"-c", cfg, "--print-config"}, env);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("\"entity\": \"env-team\"") != std::string::npos);
  CHECK(r.out.find("\"max_jobs\": 4") != std::string::npos);

  r = run(d, {"-c", cfg, "--print-config", "-e", "flag-team", "-j", "-1", "-q", "a", "-q",
              "b", "-v", "-v"},
          env);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("\"entity\": \"flag-team\"") != std::string::npos);
  CHECK(r.out.find("\"max_jobs\": -1") != std::string::npos);
  CHECK(r.out.find("\"queues\": [\"a\", \"b\"]") != std::string::npos);
  CHECK(r.out.find("\"verbosity\": 2") != std::string::npos);

  // The default path is read when -c is not given.
  std::string default_cfg = d / ".config/launch/launch-config.yaml";
  ::mkdir((d / ".config").c_str(), 0755);
  ::mkdir((d / ".config/launch").c_str(), 0755);
  launch_test::write_file(default_cfg, "entity: default-team\nqueues: [dq]\n");
  r = run(d, {"--print-config"}, clean_env(d));
  REQUIRE(r.code == 0);
  CHECK(r.out.find("\"entity\": \"default-team\"") != std::string::npos);
}

TEST_CASE("launch-agent: bad flags and missing queues fail with one clear line") {
  TempDir d;
  Result r = run(d, {"-e", "team"}, clean_env(d));
  CHECK(r.code == 1);
  CHECK(r.err.find("no queue to poll") != std::string::npos);
  r = run(d, {"-q", "q", "-j", "0", "--print-config"}, clean_env(d));
  CHECK(r.code == 1);
  CHECK(r.err.find("max_jobs 0") != std::string::npos);
  r = run(d, {"-q", "q", "--log-format", "xml"}, clean_env(d));
  CHECK(r.code != 0);
}
