// End to end: agents (in-process, and the launch-agent binary) take jobs
// from a sqlite:// store and run them in containers on the real dockerd,
// building and pushing to the registry at $LAUNCH_TEST_REGISTRY.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "util/json.hpp"
#include "builder/source.hpp"
#include "docker/engine.hpp"
#include "helpers.hpp"
#include "launch/agent.hpp"
#include "launch/error.hpp"
#include "launch/transport.hpp"
#include "runner/local_container.hpp"
#include "support/child.hpp"
#include "util/process.hpp"


using launch::ItemState;
namespace docker = launch::docker;
namespace util = launch::util;

namespace {

const char* kEntity = "launch-test";

// One store and LAUNCH_HOME shared by the agents of a test.
struct World {
  std::string home = dtest::make_temp_dir("launch-e2e-");
  std::string uri = "sqlite://" + home + "/launch.db";
  std::shared_ptr<launch::Transport> transport = launch::open_transport(uri);

  launch::QueueRef queue(const std::string& name, const std::string& config = "{}") {
    launch::QueueDef q;
    q.entity = kEntity;
    q.name = name;
    q.resource = "local-container";
    q.config = config;
    transport->create_queue(q);
    return q.ref();
  }

  launch::AgentConfig agent_config(const launch::QueueRef& q, const std::string& builder,
                                   const std::string& destination = "") {
    launch::AgentConfig c;
    c.entity = kEntity;
    c.queues = {q.str()};
    c.queue_uri = uri;
    c.launch_home = home;
    c.gpus = 0;
    c.stopped_run_timeout = 1;
    c.builder.type = builder;
    c.builder.destination = destination;
    return c;
  }

  launch::QueueItem item(const std::string& id) { return transport->get(id); }

  std::string log(const std::string& id, const std::string& name) {
    return dtest::read_file(home + "/runs/" + id + "/" + name);
  }
};

launch::JobSpec image_job(const std::string& image, std::vector<std::string> entry) {
  launch::JobSpec s;
  s.name = "e2e";
  s.author = "tester";
  s.source.kind = launch::JobSource::Kind::image;
  s.source.image = image;
  s.entry_point = std::move(entry);
  return s;
}

launch::JobSpec code_job(const std::string& dir) {
  launch::JobSpec s;
  s.name = "e2e-code";
  s.author = "tester";
  s.source.kind = launch::JobSource::Kind::code;
  s.source.code_dir = dir;
  return s;
}

// Steps `agent` until the item has ended; returns it.
launch::QueueItem run_to_end(World& w, launch::Agent& agent, const std::string& id,
                             std::chrono::seconds limit = std::chrono::seconds(180)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    auto item = w.item(id);
    if (launch::is_terminal(item.state)) return item;
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                    "item " << id << " still " << launch::to_string(item.state));
    agent.step(std::chrono::milliseconds(100));
  }
}

void step_until(launch::Agent& agent, const std::function<bool()>& done,
                std::chrono::seconds limit = std::chrono::seconds(120)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "timed out waiting");
    agent.step(std::chrono::milliseconds(100));
  }
}

bool has_container(const std::string& item_id, const std::string& state = "") {
  docker::Engine engine;
  for (const auto& c : engine.list_containers({{launch::kLabelItemId, item_id}})) {
    if (state.empty() || c.state == state) return true;
  }
  return false;
}

void stop_agent(launch::Agent& agent) {
  agent.stop(launch::StopMode::drain);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (agent.step(std::chrono::milliseconds(100))) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
  }
}

std::string code_dir(const std::string& message) {
  std::string dir = dtest::make_temp_dir("launch-e2e-code-");
  dtest::write_file(dir + "/Dockerfile", "FROM " + dtest::busybox_image() +
                                             "\nCOPY run.sh /run.sh\n"
                                             "ENTRYPOINT [\"sh\", \"/run.sh\"]\n");
  dtest::write_file(dir + "/run.sh", "echo " + message + "\n", true);
  return dir;
}

std::string image_id(const std::string& image) {
  docker::Engine engine;
  auto doc = engine.inspect_image(image);
  return doc ? (*doc)["Id"].GetString() : "";
}

}  // namespace

TEST_CASE("e2e: an image job runs in a container and its stdout is the item's log") {
  World w;
  auto q = w.queue("img-" + dtest::run_token(), R"({"env": {"FROM_QUEUE": "q"}})");
  launch::Agent agent(w.agent_config(q, "noop"), w.transport);
  auto spec = image_job(dtest::busybox_image(),
                        {"sh", "-c", "echo hello from $LAUNCH_QUEUE $FROM_QUEUE; echo oops >&2"});
  std::string id = w.transport->push(q, spec);
  auto item = run_to_end(w, agent, id);
  CHECK(item.state == ItemState::finished);
  REQUIRE(item.exit_code.has_value());
  CHECK(*item.exit_code == 0);
  CHECK(w.log(id, "stdout.log") == "hello from " + q.str() + " q\n");
  CHECK(w.log(id, "stderr.log") == "oops\n");
  CHECK_FALSE(has_container(id));
  stop_agent(agent);

  // What a user sees: `launch logs ITEM`.
  util::ProcessOptions options;
  options.extra_env = {"LAUNCH_HOME=" + w.home, "LAUNCH_QUEUE_URI=" + w.uri};
  util::ProcessResult r = util::run_process(
      {std::string(LAUNCH_BINARY_DIR) + "/examples/launch/launch", "logs", id}, options);
  const std::string& out = r.out;
  CHECK_MESSAGE(r.status == 0, out);
  CHECK_MESSAGE(out.find("hello from " + q.str() + " q\n") != std::string::npos, out);
  CHECK(out.find("oops\n") != std::string::npos);
}

TEST_CASE("e2e: code is built and pushed, pulled back by a second agent with noop, and a "
          "second push of the same code skips the build") {
  World w;
  std::string dest = dtest::test_destination();
  auto q_build = w.queue("build-" + dtest::run_token());
  auto q_noop = w.queue("noop-" + dtest::run_token());
  launch::Agent builder(w.agent_config(q_build, "docker", dest), w.transport);
  std::string dir = code_dir("from-built-code");

  std::string first = w.transport->push(q_build, code_job(dir));
  auto item = run_to_end(w, builder, first);
  CHECK_MESSAGE(item.state == ItemState::finished, (item.error ? item.error->message : ""));
  CHECK(w.log(first, "stdout.log") == "from-built-code\n");
  std::string build_log = w.log(first, "build.log");
  auto tag_at = build_log.find(dest + ":");
  REQUIRE(tag_at != std::string::npos);
  std::string image = build_log.substr(tag_at, dest.size() + 33);
  dtest::track_image(image);
  std::string built_id = image_id(image);
  REQUIRE_FALSE(built_id.empty());

  // The second agent only pulls: the image is gone from the engine first.
  docker::Engine engine;
  engine.remove_image(image, false);
  launch::Agent puller(w.agent_config(q_noop, "noop"), w.transport);
  std::string second = w.transport->push(q_noop, image_job(image, {}));
  item = run_to_end(w, puller, second);
  CHECK(item.state == ItemState::finished);
  CHECK(w.log(second, "stdout.log") == "from-built-code\n");
  CHECK(w.log(second, "build.log").find("pulling " + image) != std::string::npos);
  CHECK(image_id(image) == built_id);

  // Same code again: no build. The engine gets the registry's image back,
  // the very one built first (a rebuild would carry a new id).
  engine.remove_image(image, false);
  std::string third = w.transport->push(q_build, code_job(dir));
  item = run_to_end(w, builder, third);
  CHECK(item.state == ItemState::finished);
  CHECK(w.log(third, "stdout.log") == "from-built-code\n");
  CHECK(image_id(image) == built_id);
  stop_agent(builder);
  stop_agent(puller);
}

TEST_CASE("e2e: a failing build ends the item failed at stage build with the build's error") {
  World w;
  auto q = w.queue("badbuild-" + dtest::run_token());
  launch::Agent agent(w.agent_config(q, "docker"), w.transport);
  std::string dir = dtest::make_temp_dir("launch-e2e-bad-");
  dtest::write_file(dir + "/Dockerfile", "FROM " + dtest::busybox_image() + "\nRUN exit 9\n");
  std::string id = w.transport->push(q, code_job(dir));
  auto item = run_to_end(w, agent, id);
  CHECK(item.state == ItemState::failed);
  REQUIRE(item.error.has_value());
  CHECK(item.error->stage == launch::ErrorStage::build);
  CHECK_MESSAGE(item.error->message.find("non-zero code: 9") != std::string::npos,
                item.error->message);
  CHECK(w.log(id, "build.log").find("non-zero code: 9") != std::string::npos);
  stop_agent(agent);
}

TEST_CASE("e2e: a job from a git source builds from a local bare repository") {
  World w;
  dtest::GitRepo repo("launch-e2e-git-");
  dtest::write_file(repo.work + "/Dockerfile",
                    "FROM " + dtest::busybox_image() + "\nCOPY run.sh /run.sh\n");
  dtest::write_file(repo.work + "/run.sh", "echo from-git \"$@\"\n", true);
  repo.git({"add", "."});
  repo.git({"commit", "--quiet", "-m", "one"});
  repo.git({"tag", "v1"});
  repo.git({"push", "--quiet", repo.bare, "HEAD:refs/heads/main", "v1"});
  auto q = w.queue("git-" + dtest::run_token());
  launch::Agent agent(w.agent_config(q, "docker"), w.transport);
  launch::JobSpec spec;
  spec.name = "e2e-git";
  spec.author = "tester";
  spec.source.kind = launch::JobSource::Kind::git;
  spec.source.git_url = repo.bare;
  spec.source.git_ref = "v1";
  spec.entry_point = {"sh", "/run.sh"};
  spec.args = {"at", "v1"};
  std::string id = w.transport->push(q, spec);
  auto item = run_to_end(w, agent, id);
  CHECK_MESSAGE(item.state == ItemState::finished, (item.error ? item.error->message : ""));
  CHECK(w.log(id, "stdout.log") == "from-git at v1\n");
  std::string build_log = w.log(id, "build.log");
  auto at = build_log.find("launch-build:");
  REQUIRE(at != std::string::npos);
  dtest::track_image(build_log.substr(at, 13 + 32));
  stop_agent(agent);
}

TEST_CASE("e2e: cancel stops the container and leaves none behind") {
  World w;
  auto q = w.queue("cancel-" + dtest::run_token());
  launch::Agent agent(w.agent_config(q, "noop"), w.transport);
  std::string id = w.transport->push(
      q, image_job(dtest::busybox_image(), {"sh", "-c", "echo up; while :; do sleep 1; done"}));
  step_until(agent, [&] { return w.log(id, "stdout.log") == "up\n"; });
  CHECK(has_container(id, "running"));
  w.transport->cancel(id);
  auto item = run_to_end(w, agent, id);
  CHECK(item.state == ItemState::stopped);
  CHECK_FALSE(has_container(id));
  stop_agent(agent);
}

TEST_CASE("e2e: cancel during a build stops the build; the item ends stopped, nothing is run") {
  World w;
  auto q = w.queue("cancel-build-" + dtest::run_token());
  launch::Agent agent(w.agent_config(q, "docker"), w.transport);
  std::string dir = dtest::make_temp_dir("launch-e2e-slow-");
  // A build step that would take a minute; it says when it has begun.
  dtest::write_file(dir + "/Dockerfile", "FROM " + dtest::busybox_image() +
                                             "\nRUN echo slow-step-begun && sleep 60\n");
  std::string id = w.transport->push(q, code_job(dir));
  step_until(agent, [&] {
    return w.log(id, "build.log").find("slow-step-begun") != std::string::npos;
  });
  std::string build_log = w.log(id, "build.log");
  auto at = build_log.find("launch-build:");
  REQUIRE(at != std::string::npos);
  std::string image = build_log.substr(at, 13 + 32);
  dtest::track_image(image);
  w.transport->cancel(id);
  auto item = run_to_end(w, agent, id);
  CHECK(item.state == ItemState::stopped);
  CHECK_FALSE(item.error.has_value());
  CHECK_FALSE(has_container(id));
  // Had the build been waited for, it would have ended, a minute later,
  // with the image tagged: it was stopped instead.
  CHECK(image_id(image).empty());
  CHECK(w.log(id, "stdout.log").empty());
  stop_agent(agent);
}

TEST_CASE("e2e: a forbidden option is refused at push, naming it, and nothing runs") {
  World w;
  auto q = w.queue("forbidden-" + dtest::run_token(), R"({"memory": "64m"})");
  auto spec = image_job(dtest::busybox_image(), {"true"});
  spec.resource_args = R"({"cap-add": ["SYS_ADMIN"]})";
  std::string message;
  try {
    w.transport->push(q, spec);
  } catch (const launch::Error& e) {
    CHECK(e.code() == launch::Errc::invalid);
    message = e.what();
  }
  CHECK(message.find("\"cap-add\"") != std::string::npos);
  launch::ItemFilter f;
  f.queue = q;
  CHECK(w.transport->list(f).empty());
}

TEST_CASE("e2e: an agent killed with SIGKILL mid-job, restarted, records the job's real end") {
  World w;
  auto q = w.queue("kill-" + dtest::run_token());
  std::string id = w.transport->push(
      q, image_job(dtest::busybox_image(),
                   {"sh", "-c", "echo one; while [ ! -e /go ]; do sleep 0.2; done; "
                                "echo two; exit 4"}));
  std::string agent_bin = std::string(LAUNCH_BINARY_DIR) + "/examples/launch-agent/launch-agent";
  std::string config = w.home + "/launch-config.yaml";
  dtest::write_file(config, "builder: {type: noop}\ngpus: 0\n");
  std::vector<std::string> args = {agent_bin, "-q", q.str(), "-e", kEntity,
                                   "-c", config, "--uri", w.uri, "-l", w.home + "/agent.log"};
  // Killed and reaped by its destructor if a REQUIRE fails first.
  launch_test::Child agent(args, {{"LAUNCH_HOME", w.home}, {"LAUNCH_QUEUE_URI", w.uri}},
                           w.home + "/agent.out", w.home + "/agent.err");

  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (w.log(id, "stdout.log") != "one\n") {
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                    "the agent binary did not start the job: "
                        << dtest::read_file(w.home + "/agent.log"));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  agent.signal(SIGKILL);
  REQUIRE(agent.wait() == 128 + SIGKILL);
  CHECK(w.item(id).state == ItemState::running);

  // The job goes on without its agent, and finishes before the restart.
  docker::Engine engine;
  std::string cid = engine.list_containers({{launch::kLabelItemId, id}}).at(0).id;
  auto exec = engine.call("POST", "/containers/" + cid + "/exec",
                          R"({"Cmd": ["touch", "/go"]})");
  REQUIRE(exec.status == 201);
  std::string exec_id = launch::json::parse(exec.body, "exec")["Id"].GetString();
  REQUIRE(engine.call("POST", "/exec/" + exec_id + "/start", R"({"Detach": true})").status == 200);
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    auto doc = engine.inspect_container(cid);
    REQUIRE(doc.has_value());
    if (std::string((*doc)["State"]["Status"].GetString()) == "exited") break;
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < until, "the job did not end");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  launch::Agent restarted(w.agent_config(q, "noop"), w.transport);
  auto item = run_to_end(w, restarted, id);
  CHECK(item.state == ItemState::failed);
  REQUIRE(item.exit_code.has_value());
  CHECK(*item.exit_code == 4);
  REQUIRE(item.error.has_value());
  CHECK(item.error->stage == launch::ErrorStage::run);
  CHECK(w.log(id, "stdout.log") == "one\ntwo\n");
  CHECK_FALSE(has_container(id));
  stop_agent(restarted);
}
