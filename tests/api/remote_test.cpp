// The binaries through a launch server, as a team uses them: `launch login`
// stores a user's key, `launch push` sends the job (its author is that
// user), a `launch-agent` on a service account's key runs it, and `launch
// wait` / `launch logs` follow it from another home directory, through the
// server alone.
#include <sys/stat.h>

#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "api_client.hpp"
#include "support/child.hpp"
#include "support/launch_server.hpp"
#include "support/temp_dir.hpp"

using api_test::Api;
using launch_test::Child;
using launch_test::LaunchServer;
using launch_test::TempDir;

namespace {

const std::string kCli = LAUNCH_BINARY_DIR "/examples/launch/launch";
const std::string kAgent = LAUNCH_BINARY_DIR "/examples/launch-agent/launch-agent";

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Run {
  int rc;
  std::string out, err;
};

Run run(const TempDir& dir, const std::vector<std::string>& args,
        const std::map<std::string, std::string>& env) {
  std::vector<std::string> argv = {kCli};
  argv.insert(argv.end(), args.begin(), args.end());
  static int n = 0;
  std::string out = dir.path() + "/cli-" + std::to_string(++n) + ".out";
  std::string err = dir.path() + "/cli-" + std::to_string(n) + ".err";
  Child c(argv, env, out, err);
  int rc = c.wait();
  return {rc, slurp(out), slurp(err)};
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

TEST_CASE("remote: login, push, an agent on a service account key, wait and logs through the server") {
  TempDir dir("launch-api-remote");
  std::string server_home = dir.path() + "/server-home";
  // The server and its agent share a home (the agent's run logs are what
  // the server serves); the CLI has one of its own, with nothing in it.
  ::setenv("LAUNCH_HOME", server_home.c_str(), 1);
  LaunchServer server("sqlite://" + dir.path() + "/launch.db");
  Api api(server.url());
  std::string admin = server.admin_key();
  REQUIRE(api.call("POST", "/users", admin, R"({"name":"alice"})").status == 201);
  REQUIRE(api.call("PUT", "/teams/team/members/alice", admin, R"({"role":"admin"})").status == 204);
  REQUIRE(api.call("POST", "/teams/team/service-accounts", admin, R"({"name":"runner"})").status ==
          201);
  std::string alice = api.key_for_user(admin, "alice");
  std::string runner = api.key_for_sa(admin, "team", "runner");
  REQUIRE(api.call("POST", "/queues", alice,
                   R"({"entity":"team","name":"remote","resource":"local-process"})")
              .status == 201);

  std::map<std::string, std::string> cli_env = {{"HOME", dir.path() + "/cli-home"},
                                                {"XDG_CONFIG_HOME", ""},
                                                {"LAUNCH_HOME", dir.path() + "/cli-launch-home"},
                                                {"LAUNCH_API_KEY", ""},
                                                {"LAUNCH_QUEUE_URI", server.url()}};
  // A key the server refuses is not stored.
  Run refused = run(dir, {"login", "lk_aaaaaaaa_wrong"}, cli_env);
  CHECK(refused.rc == 1);
  CHECK(refused.err.find("unknown, revoked or expired") != std::string::npos);
  Run login = run(dir, {"login", alice}, cli_env);
  REQUIRE(login.rc == 0);
  std::string creds = dir.path() + "/cli-home/.config/launch/credentials";
  struct stat st {};
  REQUIRE(::stat(creds.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(slurp(creds).find(server.url() + " " + alice) != std::string::npos);

  Child agent({kAgent, "--uri", server.url(), "-q", "team/remote", "-e", "team"},
              {{"LAUNCH_API_KEY", runner}, {"LAUNCH_HOME", server_home}},
              dir.path() + "/agent.out", dir.path() + "/agent.err");

  Run pushed = run(dir,
                   {"push", "-q", "team/remote", "-d", "busybox", "-E",
                    R"(["/bin/sh","-c","echo hello-remote; echo to-stderr >&2"])"},
                   cli_env);
  REQUIRE(pushed.rc == 0);
  std::string id = trim(pushed.out);
  Run waited = run(dir, {"wait", id, "--timeout", "60"}, cli_env);
  INFO(slurp(dir.path() + "/agent.err"));
  CHECK(waited.rc == 0);
  Run logs = run(dir, {"logs", id}, cli_env);
  CHECK(logs.rc == 0);
  CHECK(logs.out.find("hello-remote") != std::string::npos);
  CHECK(logs.err.find("to-stderr") != std::string::npos);
  Run shown = run(dir, {"show", id, "--json"}, cli_env);
  CHECK(shown.out.find("\"author\":\"alice\"") != std::string::npos);
  CHECK(shown.out.find("\"state\":\"finished\"") != std::string::npos);
  // The agents page shows it under the team.
  Run agents = run(dir, {"agents", "--json"}, cli_env);
  CHECK(agents.out.find("\"entity\":\"team\"") != std::string::npos);
  agent.signal(SIGTERM);
  CHECK(agent.wait() == 0);
  ::unsetenv("LAUNCH_HOME");
}
