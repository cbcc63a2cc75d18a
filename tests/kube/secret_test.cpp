// The kubernetes runner keeps secret env out of the pod spec: in a Secret
// made after the Job, owned by it (deleted with it), read by the containers
// through valueFrom.secretKeyRef.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "kube_server.hpp"
#include "launch/error.hpp"
#include "runner/kubernetes.hpp"
#include "support/temp_dir.hpp"

using namespace launch;
using launch_test::TempDir;

namespace {

constexpr const char* kConfig = R"({"secretEnv": ["DB_URL"],
  "spec": {"template": {"spec": {"containers": [{"name": "main",
    "env": [{"name": "WANDB_API_KEY", "value": "wandb-key-789"},
            {"name": "REGION", "value": "eu"}]}]}}}})";

ResolvedJob make_job(const std::string& id, const std::string& script, const std::string& dir) {
  ResolvedJob j;
  j.item.id = id;
  j.item.run_id = "run-" + id;
  j.item.queue = QueueRef{"team", "q"};
  j.queue.entity = "team";
  j.queue.name = "q";
  j.queue.resource = "kubernetes";
  j.config = kConfig;
  j.queue.config = kConfig;
  j.image = "busybox:1.36";
  j.argv = {"sh", "-c", script};
  j.env = {{"HF_TOKEN", "hf-token-123"},
           {"DB_URL", "postgres://u:pw-456@db"},
           {"PLAIN", "visible"},
           {"LAUNCH_RUN_ID", j.item.run_id}};
  j.log_dir = dir;
  j.agent_id = "agent-secret";
  return j;
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

void no_secret_text(const std::string& text) {
  for (const char* s : {"hf-token-123", "pw-456", "wandb-key-789"}) {
    CHECK_MESSAGE(!has(text, s), s);
  }
}

std::string read(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

struct Cluster {
  TempDir dir{"launch-kube-secret"};
  std::string config = dir / "kubeconfig";
  kube_test::EnvScope env{"KUBECONFIG", config};
  Cluster() { std::ofstream(config) << kube_test::Server::get().kubeconfig(); }
};

// The Secret on the server whose ownerReferences name `job`; null for none.
std::string secret_of(const rapidjson::Document& state, const std::string& job) {
  for (const auto& s : state["secrets"].GetObject()) {
    const auto& md = s.value["metadata"];
    if (!md.HasMember("ownerReferences")) continue;
    for (const auto& r : md["ownerReferences"].GetArray()) {
      if (std::string(r["name"].GetString()) == job) return s.name.GetString();
    }
  }
  return "";
}

}  // namespace

TEST_CASE("kubernetes secrets: which env is secret") {
  CHECK(kube::is_secret_env_name("WANDB_API_KEY"));
  CHECK(kube::is_secret_env_name("LAUNCH_API_KEY"));
  CHECK(kube::is_secret_env_name("hf_token"));
  CHECK(kube::is_secret_env_name("AWS_SECRET"));
  CHECK(kube::is_secret_env_name("DB_PASSWORD"));
  CHECK(kube::is_secret_env_name("AWS_SECRET_KEY"));
  CHECK(kube::is_secret_env_name("TOKEN"));
  CHECK_FALSE(kube::is_secret_env_name("TOKENIZER"));
  CHECK_FALSE(kube::is_secret_env_name("LAUNCH_RUN_ID"));
  CHECK_FALSE(kube::is_secret_env_name("MAX_TOKENS"));
  auto r = make_runner("kubernetes", RunnerContext{});
  CHECK_THROWS_WITH_AS(r->check_config(R"({"secretEnv": "DB_URL"})"),
                       doctest::Contains("secretEnv must be a list of variable names, not \"DB_URL\""),
                       Error);
  CHECK_THROWS_WITH_AS(r->check_config(R"({"secretEnv": [1]})"),
                       doctest::Contains("secretEnv must be a list"), Error);
  CHECK_NOTHROW(r->check_config(R"({"secretEnv": ["A", "B"]})"));
}

TEST_CASE("kubernetes secrets: the Job refers to its Secret and holds no secret text") {
  kube::JobManifest m = kube::build_job_manifest(make_job("s-1", "true", ""));
  std::string text = json::dump(m.job);
  no_secret_text(text);
  CHECK_FALSE(m.job.HasMember("secretEnv"));
  CHECK(has(text, "\"visible\""));
  CHECK(m.secret_name.rfind("launch-q-run-s-1-env-", 0) == 0);
  CHECK(m.secret_env == std::map<std::string, std::string>{{"DB_URL", "postgres://u:pw-456@db"},
                                                           {"HF_TOKEN", "hf-token-123"},
                                                           {"WANDB_API_KEY", "wandb-key-789"}});
  std::map<std::string, std::string> refs;
  for (const auto& e : m.job["spec"]["template"]["spec"]["containers"][0]["env"].GetArray()) {
    if (!e.HasMember("valueFrom")) continue;
    const auto& ref = e["valueFrom"]["secretKeyRef"];
    CHECK(std::string(ref["name"].GetString()) == m.secret_name);
    refs[e["name"].GetString()] = ref["key"].GetString();
  }
  CHECK(refs == std::map<std::string, std::string>{
                    {"DB_URL", "DB_URL"}, {"HF_TOKEN", "HF_TOKEN"}, {"WANDB_API_KEY", "WANDB_API_KEY"}});
  // Without secret env, no Secret.
  ResolvedJob plain = make_job("s-2", "true", "");
  plain.config = "{}";
  plain.env = {{"PLAIN", "visible"}};
  CHECK(kube::build_job_manifest(plain).secret_env.empty());
}

TEST_CASE("kubernetes secrets: the pod reads them from a Secret the Job owns") {
  Cluster k;
  auto r = make_runner("kubernetes", RunnerContext{});
  auto run = r->submit(make_job("s-3", "echo $HF_TOKEN $DB_URL $WANDB_API_KEY $PLAIN", k.dir / "l"));
  RunStatus st = run->wait(std::chrono::seconds(60));
  CHECK_MESSAGE(st.phase == RunPhase::finished, st.message);
  CHECK(read(k.dir / "l/stdout.log") == "hf-token-123 postgres://u:pw-456@db wandb-key-789 visible\n");
  auto state = kube_test::Server::get().state();
  const auto& job = state["jobs"][run->id().c_str()];
  no_secret_text(json::dump(job));
  for (const auto& p : state["pods"].GetObject()) {
    if (std::string(p.name.GetString()).rfind(run->id() + "-", 0) == 0) {
      no_secret_text(json::dump(p.value));
    }
  }
  std::string secret = secret_of(state, run->id());
  REQUIRE_FALSE(secret.empty());
  const auto& owner = state["secrets"][secret.c_str()]["metadata"]["ownerReferences"][0];
  CHECK(std::string(owner["apiVersion"].GetString()) == "batch/v1");
  CHECK(std::string(owner["kind"].GetString()) == "Job");
  CHECK(std::string(owner["uid"].GetString()) == job["metadata"]["uid"].GetString());
  CHECK(std::string(state["secrets"][secret.c_str()]["stringData"]["HF_TOKEN"].GetString()) ==
        "hf-token-123");
}

TEST_CASE("kubernetes secrets: the Secret goes with its Job") {
  Cluster k;
  auto r = make_runner("kubernetes", RunnerContext{});
  auto run = r->submit(make_job("s-4", "echo started; sleep 60", k.dir / "l"));
  std::string secret = secret_of(kube_test::Server::get().state(), run->id());
  REQUIRE_FALSE(secret.empty());
  run->cancel(std::chrono::milliseconds(0));
  CHECK(run->wait(std::chrono::seconds(60)).phase == RunPhase::stopped);
  CHECK_FALSE(kube_test::Server::get().state()["secrets"].HasMember(secret.c_str()));
}
