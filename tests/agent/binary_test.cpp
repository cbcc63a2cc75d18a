// The launch-agent binary: configuration precedence, start-up errors, and
// (over a store shared between processes) SIGTERM drain and double SIGTERM.
#include <signal.h>
#include <unistd.h>

#include <map>
#include <memory>

#include "helpers.hpp"
#include "support/child.hpp"
#include "launch/launch.hpp"

using namespace launch;
using launch_test::TempDir;
using launch_test::slurp;

namespace {

using launch_test::Child;

// Starts argv with the current environment plus `env` (an empty value
// removes the variable), output to files in `dir`.
std::unique_ptr<Child> spawn(const TempDir& dir, const std::vector<std::string>& argv,
                             const std::map<std::string, std::string>& env,
                             const std::string& tag) {
  return std::make_unique<Child>(argv, env, dir / (tag + ".out"), dir / (tag + ".err"));
}

struct Result {
  int code;
  std::string out, err;
};

Result run(const TempDir& dir, std::vector<std::string> args,
           const std::map<std::string, std::string>& env = {}) {
  args.insert(args.begin(), launch_test::agent_binary());
  auto c = spawn(dir, args, env, "run");
  int code = c->wait();
  return Result{code, slurp(c->out_path()), slurp(c->err_path())};
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
  CHECK(r.code == 2);
  CHECK(r.err.find("launch-agent: " + cfg + ": unknown key \"max_jobz\"") != std::string::npos);
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
  CHECK(r.code == 2);
  CHECK(r.err.find("launch-agent: no queue to poll") != std::string::npos);
  // It says where it looked for a config file.
  CHECK(r.err.find(d / ".config/wandb/launch-config.yaml") != std::string::npos);
  r = run(d, {"-q", "q", "-j", "0", "--print-config"}, clean_env(d));
  CHECK(r.code == 2);
  CHECK(r.err.find("launch-agent: max_jobs 0") != std::string::npos);
  CHECK(launch_test::lines_of(r.err).size() == 1);
}

TEST_CASE("launch-agent: a memory:// store is refused, naming where it came from") {
  TempDir d;
  std::string cfg = d / "launch-config.yaml";
  launch_test::write_file(cfg, "entity: team\nqueues: [q]\nqueue_uri: memory://\n");
  auto env = clean_env(d);
  Result r = run(d, {"-c", cfg}, env);
  CHECK(r.code == 2);
  CHECK(r.err.find("launch-agent: " + cfg + ": queue_uri \"memory://\"") != std::string::npos);
  env["LAUNCH_QUEUE_URI"] = "memory://x";
  r = run(d, {"-q", "q"}, env);
  CHECK(r.code == 2);
  CHECK(r.err.find("launch-agent: LAUNCH_QUEUE_URI \"memory://x\"") != std::string::npos);
  r = run(d, {"-q", "q", "--uri", "memory://"}, clean_env(d));
  CHECK(r.code == 2);
  CHECK(r.err.find("launch-agent: --uri \"memory://\": a memory:// store lives only") !=
        std::string::npos);
  CHECK(launch_test::lines_of(r.err).size() == 1);
}

namespace {

// A queue in a SQLite store under `home`, shared with agent processes.
std::shared_ptr<Transport> shared_store(const TempDir& home) {
  auto t = open_transport("sqlite://" + home.path() + "/launch.db");
  QueueDef q;
  q.entity = "team";
  q.name = "q";
  t->create_queue(q);
  return t;
}

std::string push_sh(Transport& t, const std::string& script) {
  JobSpec s;
  s.name = "sig";
  s.author = "alice";
  s.entry_point = {"/bin/sh", "-c", script};
  return t.push(QueueRef{"team", "q"}, s);
}

void wait_for(const std::function<bool()>& cond) {
  launch_test::until(cond, [] { ::usleep(20000); });
}

}  // namespace

TEST_CASE("launch-agent: SIGTERM drains: the running job finishes, nothing new starts") {
  TempDir home;
  auto t = shared_store(home);
  std::string first = push_sh(*t, "echo started > " + (home / "started") + "; sleep 2");
  auto agent = spawn(home, {launch_test::agent_binary(), "-q", "q", "-e", "team"},
                      clean_env(home), "agent");
  wait_for([&] { return !slurp(home / "started").empty(); });
  wait_for([&] { return t->get(first).state == ItemState::running; });
  REQUIRE(::kill(agent->pid(), SIGTERM) == 0);
  std::string second = push_sh(*t, "true");
  int code = agent->wait();
  CHECK(code == 0);
  CHECK(t->get(first).state == ItemState::finished);
  CHECK(t->get(second).state == ItemState::pending);
  auto agents = t->list_agents();
  REQUIRE(agents.size() == 1);
  CHECK(agents[0].status == AgentStatus::stopped);
  // One line per transition in the agent's log.
  std::string log = slurp(agent->err_path());
  CHECK(log.find("item " + first + " (team/q) running") != std::string::npos);
  CHECK(log.find("item " + first + " (team/q) finished") != std::string::npos);
}

TEST_CASE("launch-agent: a second SIGTERM cancels running jobs and puts them back") {
  TempDir home;
  auto t = shared_store(home);
  std::string id = push_sh(*t, "echo $$ > " + (home / "pid") + "; exec sleep 60");
  auto agent = spawn(home,
                      {launch_test::agent_binary(), "-q", "q", "-e", "team", "--log-format",
                       "json", "-l", home / "agent.log"},
                      clean_env(home), "agent");
  wait_for([&] { return !slurp(home / "pid").empty(); });
  pid_t pgid = static_cast<pid_t>(std::stol(slurp(home / "pid")));
  // The job's process starts before the agent records the item running.
  wait_for([&] { return t->get(id).state == ItemState::running; });
  QueueItem before = t->get(id);
  REQUIRE(::kill(agent->pid(), SIGTERM) == 0);
  // Two signals sent before the first is handled would be one: the second
  // goes once the agent says it is draining.
  wait_for([&] { return slurp(home / "agent.log").find("draining: 1 running job") !=
                        std::string::npos; });
  REQUIRE(::kill(agent->pid(), SIGTERM) == 0);
  int code = agent->wait();
  CHECK(code == 0);
  QueueItem item = t->get(id);
  CHECK(item.state == ItemState::pending);
  CHECK(item.agent_id.empty());
  // Put back as it was: the same run id, its attempt counted.
  CHECK(item.run_id == before.run_id);
  CHECK(item.attempt == before.attempt);
  CHECK(item.attempt == 1);
  CHECK(::kill(-pgid, 0) == -1);
  // JSON lines in the log file, one per transition.
  std::string log = slurp(home / "agent.log");
  CHECK(log.find("\"item_id\":\"" + id + "\",\"queue\":\"team/q\",\"state\":\"running\"") !=
        std::string::npos);
  CHECK(log.find("\"item_id\":\"" + id + "\",\"queue\":\"team/q\",\"state\":\"pending\"") !=
        std::string::npos);
}

TEST_CASE("launch-agent: a job pushed by another process wakes the idle agent") {
  TempDir home;
  auto t = shared_store(home);
  auto agent = spawn(home, {launch_test::agent_binary(), "-q", "q", "-e", "team", "-j", "2"},
                      clean_env(home), "agent");
  wait_for([&] { return !t->list_agents().empty(); });
  std::string id = push_sh(*t, "exit 4");
  wait_for([&] { return is_terminal(t->get(id).state); });
  CHECK(t->get(id).state == ItemState::failed);
  CHECK(t->get(id).exit_code == 4);
  ::kill(agent->pid(), SIGTERM);
  CHECK(agent->wait() == 0);
}

TEST_CASE("the embedding example hands resolved jobs to its in-house runner") {
  TempDir d;
  auto c = spawn(d, {launch_test::binary_dir() + "/examples/embed/launch-embed-example"}, {},
                  "embed");
  CHECK(c->wait() == 0);
  std::string out = slurp(c->out_path());
  CHECK(out.find("scheduler got train    argv [python3 train.py] config "
                 "{\"partition\":\"gpu\",\"tag\":\"") != std::string::npos);
  CHECK(out.find("\"nodes\":2}") != std::string::npos);
  CHECK(out.find("scheduler got prepare  argv [python3 prepare.py] config "
                 "{\"partition\":\"cpu\"") != std::string::npos);
}

TEST_CASE("launch-agent: usage errors look and exit like launch's") {
  TempDir d;
  struct Case {
    std::vector<std::string> args;
    const char* says;
  };
  for (const Case& c : {Case{{"-q", "q", "--log-format", "xml"}, "--log-format"},
                        Case{{"--bogus"}, "--bogus"},
                        Case{{"-q", "q", "-j"}, "--max-jobs"},
                        Case{{"-q", "q", "-j", "many"}, "many"},
                        Case{{"-q"}, "--queue"}}) {
    CAPTURE(c.says);
    Result r = run(d, c.args, clean_env(d));
    CHECK(r.code == 2);
    CHECK(r.err.compare(0, 14, "launch-agent: ") == 0);
    CHECK(r.err.find(c.says) != std::string::npos);
    CHECK(launch_test::lines_of(r.err).size() == 1);
    CHECK(r.out.empty());
  }
  Result help = run(d, {"--help"}, clean_env(d));
  CHECK(help.code == 0);
  CHECK(help.out.find("launch-agent") != std::string::npos);
  CHECK(help.out.find("--print-config") != std::string::npos);
}

TEST_CASE("launch-agent: without -c it reads launch's file, else W&B's, and says which") {
  TempDir d;
  auto env = clean_env(d);
  std::string wandb_cfg = d / ".config/wandb/launch-config.yaml";
  std::string launch_cfg = d / ".config/launch/launch-config.yaml";
  ::mkdir((d / ".config").c_str(), 0755);
  ::mkdir((d / ".config/wandb").c_str(), 0755);
  // A W&B user's file: an entity and no queues polls "default".
  launch_test::write_file(wandb_cfg, "entity: wandb-team\nmax_jobs: 2\n");
  Result r = run(d, {"--print-config"}, env);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("\"config_file\": \"" + wandb_cfg + "\"") != std::string::npos);
  CHECK(r.out.find("\"entity\": \"wandb-team\"") != std::string::npos);
  CHECK(r.out.find("\"queues\": [\"default\"]") != std::string::npos);
  CHECK(r.out.find("\"max_jobs\": 2") != std::string::npos);

  // launch's own file wins when both are there.
  ::mkdir((d / ".config/launch").c_str(), 0755);
  launch_test::write_file(launch_cfg, "entity: launch-team\nqueues: [lq]\n");
  r = run(d, {"--print-config"}, env);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("\"config_file\": \"" + launch_cfg + "\"") != std::string::npos);
  CHECK(r.out.find("\"entity\": \"launch-team\"") != std::string::npos);

  // XDG_CONFIG_HOME moves launch's file, not W&B's (W&B reads ~/.config/wandb).
  env["XDG_CONFIG_HOME"] = d / "xdg";
  r = run(d, {"--print-config"}, env);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("\"config_file\": \"" + wandb_cfg + "\"") != std::string::npos);

  // A refused W&B file names that file, the key and the value.
  launch_test::write_file(wandb_cfg, "entity: t\nbuilder: {type: kaniko}\n");
  r = run(d, {"--print-config"}, env);
  CHECK(r.code == 2);
  CHECK(r.err.find("launch-agent: " + wandb_cfg + ": builder.type \"kaniko\"") !=
        std::string::npos);

  // The agent's log says which file it read: one info line.
  TempDir home;
  auto t = shared_store(home);
  auto agent_env = clean_env(home);
  std::string cfg = home / "agent.yaml";
  launch_test::write_file(cfg, "entity: team\nqueues: [q]\n");
  std::string id = push_sh(*t, "true");
  auto agent = spawn(home, {launch_test::agent_binary(), "-c", cfg}, agent_env, "agent");
  wait_for([&] { return t->get(id).state == ItemState::finished; });
  ::kill(agent->pid(), SIGTERM);
  CHECK(agent->wait() == 0);
  std::string log = slurp(agent->err_path());
  std::size_t said = 0;
  for (const auto& line : launch_test::lines_of(log)) {
    if (line.find("read config from " + cfg) != std::string::npos) ++said;
  }
  CHECK(said == 1);
}

TEST_CASE("launch-agent: --print-config prints every setting, secrets masked") {
  TempDir d;
  std::string cfg = d / "launch-config.yaml";
  launch_test::write_file(cfg,
                          "entity: team\nqueues: [q]\nsecure_mode: true\nstopped_run_timeout: 9\n"
                          "builder: {destination: https://ghcr.io/team/jobs/}\n"
                          "registry: {type: acr, uri: team.azurecr.io/jobs}\n"
                          "environment: {type: aws, region: eu-west-1}\n"
                          "queue_uri: postgres://launch:pg-secret@127.0.0.1:5432/launch\n");
  Result r = run(d, {"-c", cfg, "--print-config"}, clean_env(d));
  REQUIRE(r.code == 0);
  for (const char* part :
       {"\"secure_mode\": true", "\"stopped_run_timeout\": 9", "\"max_schedulers\": 1",
        "\"destination\": \"ghcr.io/team/jobs\"", "\"uri\": \"team.azurecr.io/jobs\"",
        "\"region\": \"eu-west-1\"", "\"gpus\": -1", "\"launch_home\": \"",
        "\"queue_uri\": \"postgres://launch:***@127.0.0.1:5432/launch\""}) {
    CAPTURE(part);
    CHECK(r.out.find(part) != std::string::npos);
  }
  CHECK(r.out.find("pg-secret") == std::string::npos);
  CHECK(r.err.empty());
}

TEST_CASE("launch-agent: -v adds debug lines for polls and claims, -vv trace") {
  TempDir home;
  auto t = shared_store(home);
  auto run_one = [&](const std::vector<std::string>& extra) {
    std::string id = push_sh(*t, "true");
    std::vector<std::string> args = {launch_test::agent_binary(), "-q", "q", "-e", "team"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto agent = spawn(home, args, clean_env(home), "agent");
    wait_for([&] { return t->get(id).state == ItemState::finished; });
    ::kill(agent->pid(), SIGTERM);
    CHECK(agent->wait() == 0);
    return std::make_pair(id, slurp(agent->err_path()));
  };
  auto quiet = run_one({});
  CHECK(quiet.second.find("poll team/q") == std::string::npos);
  auto verbose = run_one({"-v"});
  CHECK(verbose.second.find("poll team/q: claimed item " + verbose.first) != std::string::npos);
  auto json = run_one({"-vv", "--log-format", "json"});
  CHECK(json.second.find("\"level\":\"debug\"") != std::string::npos);
  CHECK(json.second.find("poll team/q: claimed item " + json.first) != std::string::npos);

  Result r = run(home, {"-q", "q", "-vv", "--print-config"}, clean_env(home));
  CHECK(r.out.find("\"verbosity\": 2") != std::string::npos);
}
