// End to end with the real binaries: launch-agent over a SQLite queue runs
// kubernetes items on the test API server; `launch wait` exits with the
// job's code and `launch logs` shows the pod's output.
#include <doctest/doctest.h>
#include <signal.h>

#include <fstream>

#include "kube_server.hpp"
#include "launch/features.h"
#include "launch/launch.hpp"
#include "support/child.hpp"
#include "support/temp_dir.hpp"
#include "util/process.hpp"

using namespace launch;

#if LAUNCH_FEATURE_DOCKER  // the noop builder
TEST_CASE("launch-agent: kubernetes items end; launch wait exits with the job's code") {
  launch_test::TempDir home{"launch-kube-binary"};
  std::string uri = "sqlite://" + home.path() + "/launch.db";
  std::ofstream(home / "kubeconfig") << kube_test::Server::get().kubeconfig();
  auto t = open_transport(uri);
  QueueDef q;
  q.entity = "team";
  q.name = "k8s";
  q.resource = "kubernetes";
  q.config = R"({"apiVersion": "batch/v1", "kind": "Job"})";
  t->create_queue(q);
  auto push = [&](const std::string& script) {
    JobSpec s;
    s.name = "train";
    s.source.kind = JobSource::Kind::image;
    s.source.image = "registry.invalid/train:v1";
    s.entry_point = {"sh", "-c", script};
    return t->push(QueueRef{"team", "k8s"}, s);
  };
  std::string ok = push("echo hello from $LAUNCH_ITEM_ID; exit 0");
  std::string bad = push("echo failing; exit 3");
  std::ofstream(home / "launch-config.yaml")
      << "entity: team\nqueues: [k8s]\nqueue_uri: " << uri << "\nbuilder:\n  type: noop\n";
  std::map<std::string, std::string> env = {{"LAUNCH_HOME", home.path()},
                                            {"HOME", home.path()},
                                            {"KUBECONFIG", home / "kubeconfig"},
                                            {"XDG_CONFIG_HOME", ""},
                                            {"LAUNCH_QUEUE_URI", ""}};
  launch_test::Child agent({std::string(LAUNCH_BINARY_DIR) + "/examples/launch-agent/launch-agent",
                            "-c", home / "launch-config.yaml"},
                           env, home / "agent.out", home / "agent.err");
  auto cli = [&](const std::vector<std::string>& args) {
    util::ProcessOptions o;
    o.extra_env = {"LAUNCH_HOME=" + home.path(), "LAUNCH_QUEUE_URI=" + uri};
    o.timeout = std::chrono::seconds(120);
    std::vector<std::string> argv = {std::string(LAUNCH_BINARY_DIR) + "/examples/launch/launch"};
    argv.insert(argv.end(), args.begin(), args.end());
    return util::run_process(argv, o);
  };
  CHECK(cli({"wait", ok}).status == 0);
  CHECK(cli({"wait", bad}).status == 3);
  util::ProcessResult logs = cli({"logs", ok});
  CHECK_MESSAGE(logs.out.find("hello from " + ok + "\n") != std::string::npos, logs.out);
  QueueItem item = t->get(bad);
  CHECK(item.state == ItemState::failed);
  REQUIRE(item.error.has_value());
  CHECK_MESSAGE(item.error->message.find("exited with 3 (Error)") != std::string::npos,
                item.error->message);
  REQUIRE(::kill(agent.pid(), SIGTERM) == 0);
  CHECK(agent.wait() == 0);
}
#endif
