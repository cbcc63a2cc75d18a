// A kubernetes queue's own secure mode (`secureMode: true` in its config):
// every escalation of the pod spec is refused naming its path, at queue
// create (the queue's config) and at push (the job's resource_args merged
// over it), and the job's entry point override at submit.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "launch/error.hpp"
#include "launch/launch.hpp"
#include "runner/kubernetes.hpp"

using namespace launch;

namespace {

// A Job with `pod` members in its pod spec and `container` members in its
// one container (each a JSON member list, or empty).
std::string job(const std::string& pod, const std::string& container = "",
                bool secure = true) {
  return std::string(R"({"secureMode": )") + (secure ? "true" : "false") +
         R"(, "apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {)" + pod +
         (pod.empty() ? "" : ", ") + R"("containers": [{"name": "main")" +
         (container.empty() ? "" : ", ") + container + "}]}}}}";
}

QueueDef queue(const std::string& name, const std::string& config) {
  QueueDef q;
  q.entity = "team";
  q.name = name;
  q.resource = "kubernetes";
  q.config = config;
  return q;
}

std::string message_of_create(Transport& t, const QueueDef& q) {
  try {
    t.create_queue(q);
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid);
    return e.what();
  }
  return "";
}

struct Case {
  std::string pod, container, path;
};

// W&B's list, each with the path its refusal names.
const std::vector<Case> kCases = {
    {R"("hostNetwork": true)", "", "spec.template.spec.hostNetwork"},
    {R"("hostPID": true)", "", "spec.template.spec.hostPID"},
    {R"("hostIPC": true)", "", "spec.template.spec.hostIPC"},
    {"", R"("securityContext": {"privileged": true})",
     "spec.template.spec.containers[0].securityContext.privileged"},
    {R"("volumes": [{"name": "root", "hostPath": {"path": "/"}}])", "",
     "spec.template.spec.volumes[0].hostPath"},
    {"", R"("ports": [{"containerPort": 22, "hostPort": 22}])",
     "spec.template.spec.containers[0].ports[0].hostPort"},
    {R"("initContainers": [{"name": "i", "image": "busybox"}])", "",
     "spec.template.spec.initContainers"},
    {"", R"("securityContext": {"allowPrivilegeEscalation": true})",
     "spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation"},
    {"", R"("securityContext": {"runAsUser": 0})",
     "spec.template.spec.containers[0].securityContext.runAsUser"},
    {R"("securityContext": {"runAsNonRoot": false})", "",
     "spec.template.spec.securityContext.runAsNonRoot"},
    {"", R"("securityContext": {"capabilities": {"add": ["NET_ADMIN"]}})",
     "spec.template.spec.containers[0].securityContext.capabilities.add"},
    {R"("serviceAccountName": "deployer")", "", "spec.template.spec.serviceAccountName"},
    {R"("automountServiceAccountToken": true)", "",
     "spec.template.spec.automountServiceAccountToken"},
    {"", R"("command": ["/bin/sh"])", "spec.template.spec.containers[0].command"},
    {R"("securityContext": {"seccompProfile": {"type": "Unconfined"}})", "",
     "spec.template.spec.securityContext.seccompProfile.type"},
    {"", R"("securityContext": {"appArmorProfile": {"type": "Unconfined"}})",
     "spec.template.spec.containers[0].securityContext.appArmorProfile.type"},
};

}  // namespace

TEST_CASE("kubernetes secureMode: queue create refuses each escalation, naming its path") {
  auto t = open_transport("memory://");
  int i = 0;
  for (const auto& c : kCases) {
    CAPTURE(c.path);
    std::string name = "q" + std::to_string(i++);
    std::string m = message_of_create(*t, queue(name, job(c.pod, c.container)));
    CHECK_MESSAGE(m.find("secure_mode: " + c.path + " is not allowed") != std::string::npos, m);
    CHECK_THROWS_AS(t->get_queue(QueueRef{"team", name}), Error);
    // Without secureMode the same queue is taken (the agent's secure_mode
    // may still refuse it).
    CHECK_NOTHROW(t->create_queue(queue(name, job(c.pod, c.container, false))));
  }
  CHECK_NOTHROW(t->create_queue(queue("clean", job(R"("automountServiceAccountToken": false)",
                                                   R"("securityContext": {"runAsUser": 1000})"))));
}

TEST_CASE("kubernetes secureMode: a push whose resource_args escalate is refused, nothing queued") {
  auto t = open_transport("memory://");
  t->create_queue(queue("safe", job("")));
  JobSpec s;
  s.name = "train";
  s.source.kind = JobSource::Kind::image;
  s.source.image = "busybox:1.36";
  s.resource_args = R"({"kubernetes": {"spec": {"template": {"spec": {"hostNetwork": true}}}}})";
  try {
    t->push(QueueRef{"team", "safe"}, s);
    FAIL("the push was taken");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid);
    CHECK_MESSAGE(std::string(e.what()).find("secure_mode: spec.template.spec.hostNetwork is not "
                                             "allowed") != std::string::npos,
                  e.what());
  }
  ItemFilter f;
  f.queue = QueueRef{"team", "safe"};
  CHECK(t->list(f).empty());
  s.resource_args = R"({"spec": {"template": {"spec": {"containers": [{"name": "main",
    "securityContext": {"privileged": true}}]}}}})";
  CHECK_THROWS_WITH_AS(t->push(QueueRef{"team", "safe"}, s),
                       doctest::Contains("spec.template.spec.containers[0].securityContext."
                                         "privileged"),
                       Error);
  s.resource_args = R"({"spec": {"activeDeadlineSeconds": 60}})";
  CHECK_NOTHROW(t->push(QueueRef{"team", "safe"}, s));
}

TEST_CASE("kubernetes secureMode: only a boolean; the entry point override refused at submit") {
  auto r = make_runner("kubernetes", RunnerContext{});
  CHECK_THROWS_WITH_AS(r->check_config(R"({"secureMode": "yes"})"),
                       doctest::Contains("secureMode must be true or false, not \"yes\""), Error);
  ResolvedJob j;
  j.item.id = "ep-1";
  j.queue.entity = "team";
  j.queue.name = "q";
  j.config = job("");
  j.image = "busybox:1.36";
  j.item.spec.entry_point = {"python", "evil.py"};
  j.argv = j.item.spec.entry_point;
  CHECK_THROWS_WITH_AS(kube::build_job_manifest(j),
                       doctest::Contains("secure_mode: entry_point override is not allowed"),
                       Error);
  // The image's own entry point (no override): the Job has no command.
  j.item.spec.entry_point.clear();
  j.argv.clear();
  kube::JobManifest m = kube::build_job_manifest(j);
  CHECK_FALSE(m.job["spec"]["template"]["spec"]["containers"][0].HasMember("command"));
  CHECK_FALSE(m.job.HasMember("secureMode"));
}
