// Secure mode and the local-container allow-list.
#include <doctest/doctest.h>

#include <string>

#include "core/secure.hpp"
#include "launch/error.hpp"
#include "unit/expect_error.hpp"
#include "launch/job.hpp"

using launch::Errc;
using launch_test::has;
using launch_test::invalid;
using launch::JobSpec;

namespace {



// A Kubernetes batch/v1 Job whose pod spec gets `pod_extra` and whose one
// container gets `container_extra` (each a JSON member list, or empty).
std::string k8s_job(const std::string& pod_extra, const std::string& container_extra = "") {
  return R"({"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"},)"
         R"("spec":{"backoffLimit":0,"template":{"spec":{"restartPolicy":"Never",)" +
         pod_extra + (pod_extra.empty() ? "" : ",") +
         R"("containers":[{"name":"main","image":"img",)" + container_extra +
         (container_extra.empty() ? "" : ",") +
         R"("resources":{"limits":{"nvidia.com/gpu":1}}}]}}}})";
}

// Secure-mode check of `config`; the message of its refusal.
std::string refused(const std::string& config, const std::string& resource = "kubernetes") {
  return invalid([&] { launch::check_secure_mode(resource, config, JobSpec{}, false); });
}

void allowed(const std::string& config, const std::string& resource = "kubernetes") {
  launch::check_secure_mode(resource, config, JobSpec{}, false);
}

}  // namespace

TEST_SUITE("secure") {

TEST_CASE("a plain Kubernetes Job, process or container config passes") {
  allowed(k8s_job(""));
  allowed(k8s_job(R"("hostNetwork":false,"hostPID":false,"hostIPC":false,"initContainers":[])",
                  R"("securityContext":{"privileged":false,"runAsNonRoot":true},"args":["--x"])"));
  allowed(R"({"env":{"A":"1"},"working_dir":"/tmp","timeout_seconds":5,"gpus":1})",
          "local-process");
  allowed(R"({"network_mode":"bridge","pid":"private","env":{"pid":"host"}})",
          "local-container");
  allowed("{}");
  // Keys under env, labels and annotations are names the user chose.
  allowed(R"({"metadata":{"labels":{"privileged":"true"},"annotations":{"hostPath":"/x"}}})");
}

TEST_CASE("host namespaces are refused by path") {
  std::string m = refused(k8s_job(R"("hostNetwork":true)"));
  CHECK(has(m, "secure_mode: spec.template.spec.hostNetwork is not allowed"));
  CHECK(has(m, "true"));
  m = refused(k8s_job(R"("hostPID":true)"));
  CHECK(has(m, "secure_mode: spec.template.spec.hostPID is not allowed"));
  m = refused(k8s_job(R"("hostIPC":true)"));
  CHECK(has(m, "secure_mode: spec.template.spec.hostIPC is not allowed"));
}

TEST_CASE("docker-style host namespaces are refused") {
  std::string m = refused(R"({"network_mode":"host"})", "local-container");
  CHECK(has(m, "secure_mode: network_mode is not allowed"));
  CHECK(has(m, "\"host\""));
  m = refused(R"({"network":"host"})");
  CHECK(has(m, "secure_mode: network is not allowed"));
  m = refused(R"({"pid":"host"})");
  CHECK(has(m, "secure_mode: pid is not allowed"));
  m = refused(R"({"ipc":"host"})");
  CHECK(has(m, "secure_mode: ipc is not allowed"));
  m = refused(R"({"HostConfig":{"NetworkMode":"container:abc"}})");
  CHECK(has(m, "secure_mode: HostConfig.NetworkMode is not allowed"));
  CHECK(has(m, "container:abc"));
  m = refused(R"({"HostConfig":{"PidMode":"host"}})");
  CHECK(has(m, "HostConfig.PidMode"));
  m = refused(R"({"HostConfig":{"IpcMode":"host"}})");
  CHECK(has(m, "HostConfig.IpcMode"));
  m = refused(R"({"userns_mode":"host"})");
  CHECK(has(m, "userns_mode"));
}

TEST_CASE("privileged containers are refused") {
  std::string m = refused(k8s_job("", R"("securityContext":{"privileged":true})"));
  CHECK(has(m, "secure_mode: spec.template.spec.containers[0].securityContext.privileged is "
               "not allowed"));
  CHECK(has(m, "true"));
  m = refused(R"({"privileged":true})", "local-container");
  CHECK(has(m, "secure_mode: privileged is not allowed"));
  m = refused(R"({"HostConfig":{"Privileged":true}})");
  CHECK(has(m, "secure_mode: HostConfig.Privileged is not allowed"));
}

TEST_CASE("hostPath volumes are refused") {
  std::string m = refused(k8s_job(R"("volumes":[{"name":"e","emptyDir":{}},)"
                                  R"({"name":"h","hostPath":{"path":"/etc"}}])"));
  CHECK(has(m, "secure_mode: spec.template.spec.volumes[1].hostPath is not allowed"));
  CHECK(has(m, "/etc"));
  allowed(k8s_job(R"("volumes":[{"name":"e","emptyDir":{}}])"));
}

TEST_CASE("init containers are refused") {
  std::string m = refused(k8s_job(R"("initContainers":[{"name":"i","image":"busybox"}])"));
  CHECK(has(m, "secure_mode: spec.template.spec.initContainers is not allowed"));
  CHECK(has(m, "busybox"));
}

TEST_CASE("command overrides are refused; probe commands are not overrides") {
  std::string m = refused(k8s_job("", R"("command":["sh","-c","id"])"));
  CHECK(has(m, "secure_mode: spec.template.spec.containers[0].command is not allowed"));
  CHECK(has(m, "[\"sh\",\"-c\",\"id\"]"));

  allowed(k8s_job("", R"("livenessProbe":{"exec":{"command":["cat","/tmp/ok"]}},)"
                      R"("lifecycle":{"preStop":{"exec":{"command":["sleep","1"]}}})"));

  m = refused(R"({"entrypoint":["/bin/sh"]})", "local-container");
  CHECK(has(m, "secure_mode: entrypoint is not allowed"));
  CHECK(has(m, "/bin/sh"));
  m = refused(R"({"Cmd":["id"]})");
  CHECK(has(m, "secure_mode: Cmd is not allowed"));
  m = refused(R"({"AlgorithmSpecification":{"ContainerEntrypoint":["python"]}})", "sagemaker");
  CHECK(has(m, "secure_mode: AlgorithmSpecification.ContainerEntrypoint is not allowed"));
  m = refused(R"({"workerPoolSpecs":[{"containerSpec":{"imageUri":"i","command":["bash"]}}]})",
              "gcp-vertex");
  CHECK(has(m, "secure_mode: workerPoolSpecs[0].containerSpec.command is not allowed"));
}

TEST_CASE("a pod's escalations are refused, each by its path") {
  const std::string c0 = "secure_mode: spec.template.spec.containers[0].";
  CHECK(has(refused(k8s_job("", R"("ports":[{"containerPort":80,"hostPort":8080}])")),
            c0 + "ports[0].hostPort is not allowed (8080: a hostPort binds a port of the node)"));
  CHECK(has(refused(k8s_job("", R"("securityContext":{"allowPrivilegeEscalation":true})")),
            c0 + "securityContext.allowPrivilegeEscalation is not allowed (true"));
  CHECK(has(refused(k8s_job("", R"("securityContext":{"runAsUser":0})")),
            c0 + "securityContext.runAsUser is not allowed (0: the container would run as root)"));
  CHECK(has(refused(k8s_job(R"("securityContext":{"runAsGroup":0})")),
            "secure_mode: spec.template.spec.securityContext.runAsGroup is not allowed (0"));
  CHECK(has(refused(k8s_job("", R"("securityContext":{"runAsNonRoot":false})")),
            c0 + "securityContext.runAsNonRoot is not allowed (false"));
  CHECK(has(refused(k8s_job("", R"("securityContext":{"capabilities":{"add":["SYS_ADMIN"]}})")),
            c0 + "securityContext.capabilities.add is not allowed ([\"SYS_ADMIN\"]"));
  CHECK(has(refused(k8s_job(R"("serviceAccountName":"cluster-admin")")),
            "secure_mode: spec.template.spec.serviceAccountName is not allowed (\"cluster-admin\""));
  CHECK(has(refused(k8s_job(R"("serviceAccount":"admin")")),
            "secure_mode: spec.template.spec.serviceAccount is not allowed"));
  CHECK(has(refused(k8s_job(R"("automountServiceAccountToken":true)")),
            "secure_mode: spec.template.spec.automountServiceAccountToken is not allowed (true"));
  CHECK(has(refused(k8s_job(R"("securityContext":{"seccompProfile":{"type":"Unconfined"}})")),
            "secure_mode: spec.template.spec.securityContext.seccompProfile.type is not allowed "
            "(\"Unconfined\""));
  CHECK(has(refused(k8s_job("", R"("securityContext":{"appArmorProfile":{"type":"Unconfined"}})")),
            c0 + "securityContext.appArmorProfile.type is not allowed (\"Unconfined\""));
  std::string m = refused(
      R"({"spec":{"template":{"metadata":{"annotations":{)"
      R"("container.apparmor.security.beta.kubernetes.io/main":"unconfined"}}}}})");
  CHECK_MESSAGE(has(m, "secure_mode: spec.template.metadata.annotations[\"container.apparmor."
                       "security.beta.kubernetes.io/main\"] is not allowed"),
                m);
  CHECK(has(refused(R"({"metadata":{"annotations":{"seccomp.security.alpha.kubernetes.io/pod":)"
                    R"("unconfined"}}})"),
            "secure_mode: metadata.annotations[\"seccomp.security.alpha.kubernetes.io/pod\"]"));
  // Their safe settings pass.
  allowed(k8s_job(R"("automountServiceAccountToken":false,)"
                  R"("securityContext":{"runAsUser":1000,"seccompProfile":{"type":"RuntimeDefault"}})",
                  R"("ports":[{"containerPort":80,"hostPort":0}],)"
                  R"("securityContext":{"allowPrivilegeEscalation":false,"runAsNonRoot":true,)"
                  R"("capabilities":{"drop":["ALL"],"add":[]},)"
                  R"("appArmorProfile":{"type":"RuntimeDefault"}})"));
  allowed(R"({"metadata":{"annotations":{)"
          R"("container.apparmor.security.beta.kubernetes.io/main":"runtime/default",)"
          R"("type":"Unconfined"}}})");
}

TEST_CASE("the whole tree is walked: custom objects") {
  std::string m = refused(
      R"({"apiVersion":"ray.io/v1","kind":"RayJob","spec":{"rayClusterSpec":{"workerGroupSpecs":)"
      R"([{"template":{"spec":{"hostNetwork":true}}}]}}})");
  CHECK(has(m, "secure_mode: spec.rayClusterSpec.workerGroupSpecs[0].template.spec.hostNetwork "
               "is not allowed"));
}

TEST_CASE("the job's resource_args are checked too") {
  JobSpec spec;
  spec.resource_args = R"({"spec":{"template":{"spec":{"hostPID":true}}}})";
  std::string m = invalid([&] { launch::check_secure_mode("kubernetes", "{}", spec, false); });
  CHECK(has(m, "secure_mode: resource_args.spec.template.spec.hostPID is not allowed"));
}

TEST_CASE("an entry_point override is refused") {
  JobSpec spec;
  spec.entry_point = {"python", "evil.py"};
  std::string m = invalid([&] { launch::check_secure_mode("kubernetes", "{}", spec, true); });
  CHECK(has(m, "secure_mode: entry_point override is not allowed"));
  CHECK(has(m, "[\"python\",\"evil.py\"]"));
  // The same job with its entry point not an override passes.
  launch::check_secure_mode("kubernetes", "{}", spec, false);
}

TEST_CASE("a bad config is an error, not a pass") {
  std::string m = refused("[1]");
  CHECK(has(m, "resource config"));
  CHECK(has(m, "[1]"));
}

TEST_CASE("the local-container allow-list") {
  launch::check_container_options(
      R"({"env":{"A":"1"},"gpus":"all","cpus":2,"memory":"4g","shm-size":"1g","shm_size":"1g",)"
      R"("ulimit":["nofile=1024"],"ulimits":{"nofile":1024},"workdir":"/w","name":"n",)"
      R"("platform":"linux/amd64","pids-limit":100,"pids_limit":100})");
  launch::check_container_options("{}");

  for (const char* option : {"volumes", "privileged", "cap-add", "network", "device",
                             "security-opt", "user", "entrypoint"}) {
    CAPTURE(option);
    std::string config = std::string("{\"env\":{},\"") + option + "\":\"v-" + option + "\"}";
    std::string m = invalid([&] { launch::check_container_options(config); });
    CHECK(has(m, std::string("local-container: option \"") + option + "\" is not allowed"));
    CHECK(has(m, std::string("\"v-") + option + "\""));
    CHECK(has(m, "allowed: env, gpus"));
  }

  std::string m = invalid([] { launch::check_container_options("[]"); });
  CHECK(has(m, "local-container config"));
}

}  // TEST_SUITE
