// The kubernetes runner under a real Agent on the test API server: an item
// pushed with a template value runs as a Job to its end, its pod's log in the
// item's stdout.log; a failing container fails the item with its exit code
// and reason; a cancel deletes the Job; an evicted pod puts the item back
// (resume_count + 1, the same run id); a pod that cannot start warns on the
// item and fails it after the queue's start timeout.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "kube_server.hpp"
#include "launch/features.h"
#include "launch/launch.hpp"
#include "support/prebuilt_builder.hpp"
#include "support/temp_dir.hpp"

using namespace launch;

namespace {

struct Harness {
  launch_test::TempDir home{"launch-kube-agent"};
  std::string kubeconfig = home / "kubeconfig";
  kube_test::EnvScope env{"KUBECONFIG", kubeconfig};
  std::shared_ptr<Transport> t = open_transport("memory://");
  std::unique_ptr<Agent> agent;

  static constexpr const char* kConfig = R"({"apiVersion": "batch/v1", "kind": "Job",
      "spec": {"template": {"spec": {"containers": [{"name": "train",
        "env": [{"name": "GREETING", "value": "{{greeting}}"}]}]}}}})";

  explicit Harness(const std::string& builder = "test-prebuilt", const std::string& config = kConfig,
                   const std::map<std::string, TemplateVariable>& vars = {}) {
    std::ofstream(kubeconfig) << kube_test::Server::get().kubeconfig();
    launch_test::register_prebuilt_builder();
    QueueDef q;
    q.entity = "ml";
    q.name = "k8s";
    q.resource = "kubernetes";
    q.config = config;
    TemplateVariable var;
    var.type = VarType::string;
    var.default_value = "hi";
    q.template_variables["greeting"] = var;
    for (const auto& [name, v] : vars) q.template_variables[name] = v;
    t->create_queue(q);
    AgentConfig c;
    c.entity = "ml";
    c.queues = {"k8s"};
    c.launch_home = home.path();
    c.gpus = 0;
    c.builder.type = builder;
    agent = std::make_unique<Agent>(c, t);
  }

  std::string push(const std::string& script, const std::string& image = "registry.invalid/train:v1") {
    JobSpec s;
    s.name = "train";
    s.author = "alice";
    s.source.kind = JobSource::Kind::image;
    s.source.image = image;
    s.entry_point = {"sh", "-c", script};
    s.template_values = {{"greeting", "hello"}};
    return t->push(QueueRef{"ml", "k8s"}, s);
  }

  template <typename Pred>
  QueueItem step_until(const std::string& id, Pred done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (!done(t->get(id)) && std::chrono::steady_clock::now() < deadline) {
      agent->step(std::chrono::milliseconds(50));
    }
    return t->get(id);
  }
  QueueItem wait_end(const std::string& id) {
    return step_until(id, [](const QueueItem& i) { return is_terminal(i.state); });
  }

  std::string log_of(const std::string& id) {
    std::ifstream in(run_directory(home.path(), id) + "/stdout.log");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
};

// The run id label of a Job on the server, "" when it has none.
std::string run_label(const rapidjson::Value& job) {
  const auto& md = job["metadata"];
  if (!md.HasMember("labels") || !md["labels"].HasMember("launch/run-id")) return "";
  return md["labels"]["launch/run-id"].GetString();
}

}  // namespace

TEST_CASE("agent: a kubernetes item with a template value runs as a Job to its end") {
  Harness h;
  std::string id = h.push("echo $GREETING from $LAUNCH_ITEM_ID; exit 0");
  QueueItem item = h.wait_end(id);
  CHECK(to_string(item.state) == std::string("finished"));
  CHECK(item.exit_code == 0);
  CHECK(h.log_of(id) == "hello from " + id + "\n");
}

TEST_CASE("agent: a failing container fails the kubernetes item with its exit code and reason") {
  Harness h;
  std::string id = h.push("echo failing; exit 7");
  QueueItem item = h.wait_end(id);
  CHECK(to_string(item.state) == std::string("failed"));
  CHECK(item.exit_code == 7);
  REQUIRE(item.error.has_value());
  CHECK_MESSAGE(item.error->message.find("exited with 7 (Error)") != std::string::npos,
                item.error->message);
}

TEST_CASE("agent: cancelling a kubernetes item deletes its Job") {
  Harness h;
  std::string id = h.push("echo started; sleep 60");
  QueueItem running = h.step_until(id, [&](const QueueItem& i) {
    return i.state == ItemState::running && h.log_of(i.id) == "started\n";
  });
  REQUIRE(running.state == ItemState::running);
  h.t->cancel(id);
  QueueItem item = h.wait_end(id);
  CHECK(to_string(item.state) == std::string("stopped"));
  auto state = kube_test::Server::get().state();
  for (const auto& j : state["jobs"].GetObject()) {
    CHECK(run_label(j.value) != item.run_id);
  }
}

#if LAUNCH_FEATURE_DOCKER
TEST_CASE("agent: the noop builder hands a kubernetes job its image as is (the cluster pulls it)") {
  // registry.invalid resolves nowhere: checking it, or pulling it locally,
  // would fail the build.
  Harness h("noop");
  std::string id = h.push("echo ok", "registry.invalid/team/train:v404");
  QueueItem item = h.wait_end(id);
  CHECK(to_string(item.state) == std::string("finished"));
  auto state = kube_test::Server::get().state();
  bool found = false;
  for (const auto& j : state["jobs"].GetObject()) {
    if (run_label(j.value) != item.run_id) continue;
    found = true;
    CHECK(std::string(j.value["spec"]["template"]["spec"]["containers"][0]["image"].GetString()) ==
          "registry.invalid/team/train:v404");
  }
  CHECK(found);
}
#endif

TEST_CASE("agent: an evicted kubernetes pod requeues the item, and its rerun finishes") {
  Harness h;
  // The first run (LAUNCH_RESUME_COUNT 0) is evicted; the rerun goes on.
  std::string id = h.push("echo run $LAUNCH_RESUME_COUNT; evict-if $LAUNCH_RESUME_COUNT 0; echo done");
  std::string run_id = h.t->get(id).run_id;
  QueueItem item = h.wait_end(id);
  CHECK_MESSAGE(to_string(item.state) == std::string("finished"),
                (item.error ? item.error->message : std::string()));
  CHECK(item.resume_count == 1);
  CHECK(item.run_id == run_id);
  bool resumed = false;
  for (const auto& w : item.warnings) resumed = resumed || w.find("preempted; resuming") == 0;
  CHECK(resumed);
  std::string log = h.log_of(id);
  CHECK_MESSAGE(log.find("run 0\n") != std::string::npos, log);
  CHECK_MESSAGE(log.find("run 1\ndone\n") != std::string::npos, log);
  // The evicted run's Job was deleted: one Job of the run is left.
  auto state = kube_test::Server::get().state();
  int jobs = 0;
  for (const auto& j : state["jobs"].GetObject()) jobs += run_label(j.value) == item.run_id;
  CHECK(jobs == 1);
}

TEST_CASE("agent: an unschedulable kubernetes pod warns on the item, which fails after the start timeout") {
  TemplateVariable start;
  start.type = VarType::integer;
  start.minimum = 1;
  start.default_value = "2";
  Harness h("test-prebuilt", R"({"startTimeoutSeconds": "{{start}}",
    "spec": {"template": {"metadata": {"annotations": {"launch-test/unschedulable": "1"}}}}})",
            {{"start", start}});
  std::string id = h.push("echo never");
  QueueItem item = h.wait_end(id);
  CHECK(to_string(item.state) == std::string("failed"));
  REQUIRE(item.error.has_value());
  CHECK(to_string(item.error->stage) == std::string("run"));
  CHECK_MESSAGE(item.error->message.find("did not start within 2 s: Unschedulable") !=
                    std::string::npos,
                item.error->message);
  int unschedulable = 0;
  for (const auto& w : item.warnings) unschedulable += w.find("Unschedulable: 0/3 nodes") != std::string::npos;
  CHECK(unschedulable == 1);
}
