// The local-container runner against the real dockerd.
#include <doctest/doctest.h>

#include <poll.h>

#include <string>
#include <thread>

#include "util/json.hpp"
#include "docker/engine.hpp"
#include "helpers.hpp"
#include "launch/error.hpp"
#include "launch/runner.hpp"
#include "runner/local_container.hpp"

using launch::Errc;
using launch::Error;
using launch::RunPhase;
namespace docker = launch::docker;

namespace {

std::unique_ptr<launch::Runner> runner(const std::string& home = "") {
  launch::RunnerContext ctx;
  ctx.agent_id = "agent-test";
  ctx.launch_home = home;
  return launch::make_runner("local-container", ctx);
}

void check_refused(const std::string& config, const std::string& option) {
  auto job = dtest::make_job("unused:latest", {"true"}, config);
  try {
    launch::plan_container(job);
    FAIL("accepted " << config);
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid);
    CHECK_MESSAGE(std::string(e.what()).find("\"" + option + "\"") != std::string::npos,
                  e.what());
  }
}

}  // namespace

TEST_CASE("local-container maps the allow-listed options onto the container") {
  auto job = dtest::make_job("img:1", {"python", "train.py", "--lr", "0.1"},
                             R"({"env": {"A": "from-config", "B": 2}, "cpus": 1.5,
                                 "memory": "512m", "shm-size": "64mb", "pids-limit": 100,
                                 "ulimit": ["nofile=1024:2048", "nproc=50"],
                                 "workdir": "/work", "name": "job-x", "platform": "linux/amd64",
                                 "gpus": "device=0,2"})");
  job.env = {{"A", "from-job"}, {"LAUNCH_RUN_ID", "r1"}};
  auto plan = launch::plan_container(job);
  CHECK(plan.name == "job-x");
  CHECK(plan.platform == "linux/amd64");
  auto d = launch::json::parse(plan.spec, "spec");
  CHECK(std::string(d["Image"].GetString()) == "img:1");
  CHECK(launch::json::dump(d["Entrypoint"]) == R"(["python"])");
  CHECK(launch::json::dump(d["Cmd"]) == R"(["train.py","--lr","0.1"])");
  CHECK(launch::json::dump(d["Env"]) == R"(["A=from-job","B=2","LAUNCH_RUN_ID=r1"])");
  CHECK(std::string(d["WorkingDir"].GetString()) == "/work");
  CHECK(std::string(d["Labels"]["launch.item-id"].GetString()) == job.item.id);
  CHECK(std::string(d["Labels"]["launch.queue"].GetString()) == job.queue.ref().str());
  CHECK(std::string(d["Labels"]["launch.agent"].GetString()) == "agent-test");
  const auto& h = d["HostConfig"];
  CHECK(h["NanoCpus"].GetInt64() == 1500000000);
  CHECK(h["Memory"].GetInt64() == 512 * 1024 * 1024);
  CHECK(h["ShmSize"].GetInt64() == 64 * 1024 * 1024);
  CHECK(h["PidsLimit"].GetInt64() == 100);
  CHECK(launch::json::dump(h["Ulimits"]) ==
        R"([{"Name":"nofile","Soft":1024,"Hard":2048},{"Name":"nproc","Soft":50,"Hard":50}])");
  CHECK(launch::json::dump(h["DeviceRequests"][0]["DeviceIDs"]) == R"(["0","2"])");
  CHECK_FALSE(h.HasMember("NetworkMode"));  // the engine's default network

  // The agent's GPU pool decides which devices, over the config's count.
  job.config = R"({"gpus": "all"})";
  job.gpus = {1};
  d = launch::json::parse(launch::plan_container(job).spec, "spec");
  CHECK(launch::json::dump(d["HostConfig"]["DeviceRequests"][0]["DeviceIDs"]) == R"(["1"])");
  job.gpus.clear();
  d = launch::json::parse(launch::plan_container(job).spec, "spec");
  CHECK(d["HostConfig"]["DeviceRequests"][0]["Count"].GetInt64() == -1);
  job.config = R"({"gpus": 2, "env": ["X=1=2"]})";
  d = launch::json::parse(launch::plan_container(job).spec, "spec");
  CHECK(d["HostConfig"]["DeviceRequests"][0]["Count"].GetInt64() == 2);
  CHECK(launch::json::dump(d["Env"]) == R"(["A=from-job","LAUNCH_RUN_ID=r1","X=1=2"])");
}

TEST_CASE("local-container refuses options outside the allow-list, naming them") {
  check_refused(R"({"volumes": ["/:/host"]})", "volumes");
  check_refused(R"({"privileged": true})", "privileged");
  check_refused(R"({"cap-add": ["SYS_ADMIN"]})", "cap-add");
  check_refused(R"({"network": "host"})", "network");
  check_refused(R"({"memory": "lots"})", "memory");
  check_refused(R"({"gpus": "some"})", "gpus");
  check_refused(R"({"ulimit": ["nofile"]})", "ulimit");
  check_refused(R"({"pids-limit": "x"})", "pids-limit");
  CHECK(launch::parse_byte_size("1.5g", "m") == 1610612736);
  CHECK(launch::parse_byte_size("1024", "m") == 1024);
  CHECK_THROWS_AS(launch::parse_byte_size("12q", "m"), Error);
}

TEST_CASE("a forbidden option creates no container") {
  auto job = dtest::make_job(dtest::busybox_image(), {"true"}, R"({"privileged": true})");
  try {
    runner()->submit(job);
    FAIL("submitted");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid);
    CHECK(std::string(e.what()).find("\"privileged\"") != std::string::npos);
  }
  docker::Engine engine;
  CHECK(engine.list_containers({{launch::kLabelItemId, job.item.id}}).empty());
}

TEST_CASE("a container job runs: logs demultiplexed into the item, exit code, removal") {
  auto r = runner();
  CHECK(r->needs_image());
  auto job = dtest::make_job(dtest::busybox_image(),
                             {"sh", "-c", "echo \"out $A $B\"; echo err >&2; pwd; exit 0"},
                             R"({"env": {"A": "cfg", "B": "cfg"}, "workdir": "/tmp"})");
  job.env["B"] = "job";
  auto run = r->submit(job);
  std::string id = run->id();
  CHECK(run->wait_fd() >= 0);
  struct pollfd p = {run->wait_fd(), POLLIN, 0};
  // The descriptor wakes the agent when the run has ended.
  REQUIRE(::poll(&p, 1, 60000) == 1);
  auto s = dtest::wait_end(*run);
  CHECK(s.phase == RunPhase::finished);
  REQUIRE(s.exit_code.has_value());
  CHECK(*s.exit_code == 0);
  CHECK(dtest::read_file(job.log_dir + "/stdout.log") == "out cfg job\n/tmp\n");
  CHECK(dtest::read_file(job.log_dir + "/stderr.log") == "err\n");
  docker::Engine engine;
  CHECK_FALSE(engine.inspect_container(id));
}

TEST_CASE("the container's limits are what the config asked for") {
  auto job = dtest::make_job(dtest::busybox_image(), {"sleep", "30"},
                             R"({"memory": "64m", "cpus": 0.5, "pids-limit": 64,
                                 "ulimit": {"nofile": "512:1024"}})");
  auto run = runner()->submit(job);
  docker::Engine engine;
  auto doc = engine.inspect_container(run->id());
  REQUIRE(doc.has_value());
  const auto& h = (*doc)["HostConfig"];
  CHECK(h["Memory"].GetInt64() == 64 * 1024 * 1024);
  CHECK(h["NanoCpus"].GetInt64() == 500000000);
  CHECK(h["PidsLimit"].GetInt64() == 64);
  // The engine's default network, never the host's.
  std::string network = h["NetworkMode"].GetString();
  CHECK(network != "host");
  CHECK(std::string(h["Ulimits"][0]["Name"].GetString()) == "nofile");
  run->cancel(std::chrono::milliseconds(0));
  CHECK(dtest::wait_end(*run).phase == RunPhase::stopped);
}

TEST_CASE("a container on the test engine has no network but loopback") {
  // What docs/docker.md promises of the suite's engine (no bridge): the job
  // sees one interface, lo, so nothing it runs can reach beyond it.
  auto job = dtest::make_job(dtest::busybox_image(), {"ls", "/sys/class/net"});
  auto run = runner()->submit(job);
  auto s = dtest::wait_end(*run);
  CHECK(s.phase == RunPhase::finished);
  CHECK(dtest::read_file(job.log_dir + "/stdout.log") == "lo\n");
}

TEST_CASE("a failing job fails with its exit code") {
  auto job = dtest::make_job(dtest::busybox_image(), {"sh", "-c", "echo bad >&2; exit 7"});
  auto run = runner()->submit(job);
  auto s = dtest::wait_end(*run);
  CHECK(s.phase == RunPhase::failed);
  REQUIRE(s.exit_code.has_value());
  CHECK(*s.exit_code == 7);
  CHECK(s.message.find("7") != std::string::npos);
  CHECK(dtest::read_file(job.log_dir + "/stderr.log") == "bad\n");
}

TEST_CASE("a job whose command cannot start fails at submit with the engine's message") {
  auto job = dtest::make_job(dtest::busybox_image(), {"/no/such/program"});
  try {
    runner()->submit(job);
    FAIL("submitted");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("/no/such/program") != std::string::npos);
  }
  docker::Engine engine;
  CHECK(engine.list_containers({{launch::kLabelItemId, job.item.id}}).empty());
}

TEST_CASE("cancel stops the container (TERM, then KILL after the grace) and removes it") {
  auto r = runner();
  // Ignores SIGTERM, so only the KILL after the grace ends it.
  auto job = dtest::make_job(dtest::busybox_image(),
                             {"sh", "-c", "trap '' TERM; echo started; while :; do sleep 1; done"});
  auto run = r->submit(job);
  std::string id = run->id();
  for (int i = 0; i < 200 && dtest::read_file(job.log_dir + "/stdout.log").empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(dtest::read_file(job.log_dir + "/stdout.log") == "started\n");
  run->cancel(std::chrono::milliseconds(300));
  auto s = dtest::wait_end(*run);
  CHECK(s.phase == RunPhase::stopped);
  docker::Engine engine;
  CHECK_FALSE(engine.inspect_container(id));
  CHECK(engine.list_containers({{launch::kLabelItemId, job.item.id}}).empty());
}

TEST_CASE("a restarted agent finds its container by label and follows it to its end") {
  std::string home = dtest::make_temp_dir("launch-home-");
  auto job = dtest::make_job(dtest::busybox_image(),
                             {"sh", "-c", "echo one; sleep 2; echo two; exit 5"});
  job.log_dir = home + "/runs/" + job.item.id;
  // What a killed agent leaves: its container, running, with its labels.
  docker::Engine engine;
  auto plan = launch::plan_container(job);
  std::string id = engine.create_container(plan.spec);
  engine.start_container(id);
  auto second = runner(home);
  auto run = second->reattach(job.item, job.queue);
  REQUIRE(run != nullptr);
  CHECK(run->id() == id);
  auto s = dtest::wait_end(*run);
  CHECK(s.phase == RunPhase::failed);
  REQUIRE(s.exit_code.has_value());
  CHECK(*s.exit_code == 5);
  CHECK(dtest::read_file(job.log_dir + "/stdout.log") == "one\ntwo\n");
  CHECK_FALSE(engine.inspect_container(id));
  // Nothing left to find.
  auto other = dtest::make_job(dtest::busybox_image(), {"true"});
  CHECK(second->reattach(other.item, other.queue) == nullptr);
}

TEST_CASE("a run handle dropped before its end takes its container with it") {
  auto job = dtest::make_job(dtest::busybox_image(), {"sleep", "60"});
  std::string id;
  {
    auto run = runner()->submit(job);
    id = run->id();
  }
  docker::Engine engine;
  CHECK_FALSE(engine.inspect_container(id));
}
