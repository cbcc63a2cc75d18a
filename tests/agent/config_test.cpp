// launch-config.yaml parsing and the environment layer.
#include <cstdlib>

#include "helpers.hpp"
#include "launch/agent.hpp"
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
  type: docker
  destination: 127.0.0.1:5000/jobs
  build-context-store: s3://bucket
registry: {type: ecr, uri: 1234.dkr.ecr.us-east-1.amazonaws.com/x}
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
  CHECK(c.builder.type == "docker");
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
