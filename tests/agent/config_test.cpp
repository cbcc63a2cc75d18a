// launch-config.yaml parsing and the environment layer.
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "helpers.hpp"
#include "launch/agent.hpp"
#include "launch/builder.hpp"
#include "launch/error.hpp"

using namespace launch;

namespace {

// Sets an environment variable for one scope.
struct EnvVar {
  std::string name;
  EnvVar(std::string n, const char* value) : name(std::move(n)) {
    if (value) {
      ::setenv(name.c_str(), value, 1);
    } else {
      ::unsetenv(name.c_str());
    }
  }
  ~EnvVar() { ::unsetenv(name.c_str()); }
};

}  // namespace

TEST_CASE("agent config: W&B keys and launch's own are read") {
  AgentConfig c = AgentConfig::from_yaml(R"(
entity: ml-team
queues: [gpu, other/cpu]
max_jobs: -1
secure_mode: true
verbosity: 2
stopped_run_timeout: 5
builder:
  type: noop
  destination: 127.0.0.1:5000/jobs
  build-context-store: s3://bucket
registry: {type: ecr, uri: 123456789012.dkr.ecr.us-east-1.amazonaws.com/x}
environment: {type: aws, region: us-east-1}
gpus: 2
log_format: json
queue_uri: memory://x
)",
                                         "cfg.yaml");
  CHECK(c.entity == "ml-team");
  CHECK(c.queues == std::vector<std::string>{"gpu", "other/cpu"});
  CHECK(c.max_jobs == -1);
  CHECK(c.secure_mode);
  CHECK(c.verbosity == 2);
  CHECK(c.stopped_run_timeout == 5);
  CHECK(c.builder.type == "noop");
  CHECK(c.builder.destination == "127.0.0.1:5000/jobs");
  CHECK(c.builder.build_context_store == "s3://bucket");
  CHECK(c.builder.registry.type == "ecr");
  CHECK(c.environment_type == "aws");
  CHECK(c.environment_region == "us-east-1");
  CHECK(c.gpus == 2);
  CHECK(c.log_format == "json");
  CHECK(c.queue_uri == "memory://x");
}

TEST_CASE("agent config: an empty file gives the defaults") {
  AgentConfig c = AgentConfig::from_yaml("", "empty.yaml");
  CHECK(c.max_jobs == 1);
  CHECK(c.builder.type == "noop");
  CHECK(c.queues.empty());
}

TEST_CASE("agent config: unknown keys name the file and the key") {
  CHECK_THROWS_WITH_AS(AgentConfig::from_yaml("entity: a\nmax_job: 3\n", "/etc/l.yaml"),
                       doctest::Contains("/etc/l.yaml: unknown key \"max_job\""), Error);
  CHECK_THROWS_WITH_AS(AgentConfig::from_yaml("builder: {type: docker, cache: x}\n", "f.yaml"),
                       doctest::Contains("f.yaml: unknown key \"builder.cache\""), Error);
}

TEST_CASE("agent config: wrong types name the file and the key") {
  CHECK_THROWS_WITH_AS(AgentConfig::from_yaml("max_jobs: lots\n", "f.yaml"),
                       doctest::Contains("f.yaml: field \"max_jobs\" must be an integer"),
                       Error);
  CHECK_THROWS_WITH_AS(AgentConfig::from_yaml("secure_mode: 3\n", "f.yaml"),
                       doctest::Contains("\"secure_mode\""), Error);
  CHECK_THROWS_WITH_AS(AgentConfig::from_yaml("builder: docker\n", "f.yaml"),
                       doctest::Contains("f.yaml: key \"builder\" must be a mapping"), Error);
  CHECK_THROWS_WITH_AS(AgentConfig::from_yaml("max_jobs: 0\n", "f.yaml"),
                       doctest::Contains("f.yaml: max_jobs 0"), Error);
  CHECK_THROWS_WITH_AS(AgentConfig::from_yaml("builder: {type: buildah}\n", "f.yaml"),
                       doctest::Contains("builder.type \"buildah\""), Error);
  CHECK_THROWS_WITH_AS(AgentConfig::from_yaml("entity: [a\n", "f.yaml"),
                       doctest::Contains("f.yaml"), Error);
}

TEST_CASE("agent config: a missing file is an io error naming it") {
  CHECK_THROWS_WITH_AS(AgentConfig::from_file("/no/such/launch-config.yaml"),
                       doctest::Contains("/no/such/launch-config.yaml"), Error);
}

TEST_CASE("agent config: the environment overrides the file") {
  AgentConfig c = AgentConfig::from_yaml("entity: file-team\nmax_jobs: 3\n", "f.yaml");
  {
    EnvVar e("LAUNCH_ENTITY", "env-team");
    EnvVar j("LAUNCH_MAX_JOBS", "4");
    c.apply_environment();
  }
  CHECK(c.entity == "env-team");
  CHECK(c.max_jobs == 4);
  EnvVar bad("LAUNCH_MAX_JOBS", "many");
  CHECK_THROWS_WITH_AS(c.apply_environment(), doctest::Contains("LAUNCH_MAX_JOBS=\"many\""),
                       Error);
}

namespace {

std::vector<std::string> yaml_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".yaml") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace

TEST_CASE("agent config: every W&B-style config in tests/data/agent-configs/valid loads") {
  auto files = yaml_files(std::string(LAUNCH_TEST_DATA) + "/agent-configs/valid");
  REQUIRE(files.size() >= 10);
  // A build without the docker builder refuses builder.type docker, by name.
  auto names = builder_names();
  bool docker = std::find(names.begin(), names.end(), "docker") != names.end();
  for (const auto& f : files) {
    CAPTURE(f);
    std::ifstream in(f);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!docker && text.find("type: docker") != std::string::npos) {
      CHECK_THROWS_WITH_AS(AgentConfig::from_file(f),
                           doctest::Contains("builder.type \"docker\": the docker builder is "
                                             "not available in this build"),
                           Error);
      continue;
    }
    CHECK_NOTHROW(AgentConfig::from_file(f));
  }
}

TEST_CASE("agent config: every config in tests/data/agent-configs/invalid is refused naming its key") {
  auto files = yaml_files(std::string(LAUNCH_TEST_DATA) + "/agent-configs/invalid");
  REQUIRE(files.size() >= 20);
  const std::string marker = "# refused: ";
  for (const auto& f : files) {
    CAPTURE(f);
    std::string line = first_line(f);
    REQUIRE(line.compare(0, marker.size(), marker) == 0);
    std::string expected = line.substr(marker.size());
    try {
      AgentConfig::from_file(f);
      FAIL("loaded: " << f);
    } catch (const Error& e) {
      CHECK(e.code() == Errc::invalid);
      std::string what = e.what();
      CAPTURE(what);
      CHECK(what.compare(0, f.size() + 2, f + ": ") == 0);
      CHECK(what.find(expected) != std::string::npos);
    }
  }
}

TEST_CASE("agent config: W&B's meaning of the keys it shares") {
  std::string dir = std::string(LAUNCH_TEST_DATA) + "/agent-configs/valid/";
  // An entity and no queues: the queue "default".
  CHECK(AgentConfig::from_file(dir + "entity-only.yaml").queues ==
        std::vector<std::string>{"default"});
  CHECK(AgentConfig::from_yaml("entity: t\nqueues: []\n", "f").queues ==
        std::vector<std::string>{"default"});
  // No entity: nothing to poll yet (-q gives it).
  CHECK(AgentConfig::from_file(dir + "comments-only.yaml").queues.empty());
  // URIs are parsed once and kept normalised.
  AgentConfig aws = AgentConfig::from_yaml(
      "environment: {type: aws, region: us-east-1}\n"
      "builder: {destination: 'https://123456789012.dkr.ecr.us-east-1.amazonaws.com/images/'}\n",
      "aws.yaml");
  CHECK(aws.builder.destination == "123456789012.dkr.ecr.us-east-1.amazonaws.com/images");
  CHECK(aws.environment_region == "us-east-1");
  AgentConfig gcp = AgentConfig::from_yaml(
      "registry: {type: gcr, uri: 'https://us-central1-docker.pkg.dev/p/repo/image'}\n",
      "gcp.yaml");
  CHECK(gcp.builder.registry.uri == "us-central1-docker.pkg.dev/p/repo/image");
  AgentConfig generic = AgentConfig::from_file(dir + "noop-secure.yaml");
  CHECK(generic.source == dir + "noop-secure.yaml");
  generic = AgentConfig::from_yaml("registry: {uri: localhost:5000/team/jobs/}\n", "g.yaml");
  CHECK(generic.builder.registry.uri == "localhost:5000/team/jobs");
}

TEST_CASE("agent config: validate() refuses what the file would, for configs built in code") {
  AgentConfig c;
  c.queues = {"q"};
  c.builder.destination = "127.0.0.1:5000/jobs:v2";
  CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("builder.destination \"127.0.0.1:5000/jobs:v2\""),
                       Error);
  c.builder.destination.clear();
  c.builder.type = "kaniko";
  CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("not available in this build"), Error);
  c.builder.type = "noop";
  c.environment_type = "aws";
  CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("environment.region"), Error);
  c.environment_region = "eu-west-1";
  CHECK_NOTHROW(c.validate());
}

TEST_CASE("agent config: the default file is launch's, else W&B's") {
  launch_test::TempDir home;
  EnvVar h("HOME", home.path().c_str());
  EnvVar x("XDG_CONFIG_HOME", nullptr);
  std::string ours = home / ".config/launch/launch-config.yaml";
  std::string wandb = home / ".config/wandb/launch-config.yaml";
  CHECK(AgentConfig::default_paths() == std::vector<std::string>{ours, wandb});
  CHECK(AgentConfig::find_default_file().empty());
  std::filesystem::create_directories(home / ".config/wandb");
  launch_test::write_file(wandb, "entity: w\n");
  CHECK(AgentConfig::find_default_file() == wandb);
  std::filesystem::create_directories(home / ".config/launch");
  launch_test::write_file(ours, "entity: l\n");
  CHECK(AgentConfig::find_default_file() == ours);
  {
    EnvVar xdg("XDG_CONFIG_HOME", (home / "xdg").c_str());
    CHECK(AgentConfig::default_paths() ==
          std::vector<std::string>{home / "xdg/launch/launch-config.yaml", wandb});
    CHECK(AgentConfig::find_default_file() == wandb);
  }
}

TEST_CASE("agent config: to_json shows every key, a password masked") {
  AgentConfig c = AgentConfig::from_yaml(
      "entity: t\nqueues: [a, b]\nqueue_uri: postgres://launch:s3cret@db:5432/launch\n"
      "builder: {destination: 127.0.0.1:5000/jobs}\n",
      "f.yaml");
  std::string j = to_json(c);
  CAPTURE(j);
  for (const char* key :
       {"\"config_file\"", "\"entity\": \"t\"", "\"queues\": [\"a\", \"b\"]", "\"max_jobs\": 1",
        "\"max_schedulers\": 1", "\"secure_mode\": false", "\"verbosity\": 0",
        "\"stopped_run_timeout\": 60", "\"destination\": \"127.0.0.1:5000/jobs\"",
        "\"build-context-store\"", "\"kaniko-image\"", "\"registry\"", "\"environment\"",
        "\"region\"", "\"gpus\": -1", "\"log_format\": \"text\"", "\"launch_home\"",
        "\"queue_uri\": \"postgres://launch:***@db:5432/launch\""}) {
    CHECK(j.find(key) != std::string::npos);
  }
  CHECK(j.find("s3cret") == std::string::npos);
  c.queue_uri = "postgresql://db/launch?user=l&password=hunter2&sslmode=require";
  j = to_json(c);
  CHECK(j.find("hunter2") == std::string::npos);
  CHECK(j.find("password=***&sslmode=require") != std::string::npos);
}
