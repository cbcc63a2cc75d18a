// Internal: the kubernetes runner's manifest building, exposed for its tests.
#ifndef LAUNCH_SRC_RUNNER_KUBERNETES_HPP
#define LAUNCH_SRC_RUNNER_KUBERNETES_HPP

#include <map>
#include <string>

#include "launch/runner.hpp"
#include "util/json.hpp"

namespace launch {
namespace kube {

// The label keys on every Job launch makes (and on its pod template); the
// queue goes in an annotation, since "team/q" is no valid label value.
constexpr const char* kItemLabel = "launch/item-id";
constexpr const char* kRunLabel = "launch/run-id";
constexpr const char* kAgentLabel = "launch/agent";
constexpr const char* kQueueAnnotation = "launch/queue";

// `text` as a label value: at most 63 characters of [A-Za-z0-9._-],
// beginning and ending with an alphanumeric.
std::string label_value(const std::string& text);

// How long a pod may take to start (get past Pending: scheduled, its image
// pulled, its containers created) before the run fails: the config's
// `startTimeoutSeconds`, 0 for no limit.
constexpr int kDefaultStartTimeoutSeconds = 600;
// The config's startTimeoutSeconds (the default when absent or a template
// placeholder); Errc::invalid naming it for anything but 0 to
// limits::kKubeMaxStartTimeoutSeconds.
int start_timeout_seconds(const json::Value& config);

// True for an env variable whose value is kept in a Secret whatever the
// config says: a name ending in _API_KEY, _TOKEN, _SECRET, _PASSWORD (any
// case), or one of API_KEY, TOKEN, SECRET, PASSWORD. The config's
// `secretEnv` lists more.
bool is_secret_env_name(const std::string& name);

// The config's `secureMode` (false when absent): the queue's own secure
// mode, whatever the agent's. Errc::invalid for anything but a boolean.
bool secure_mode(const json::Value& config);

// Refuses a config that is not a batch/v1 Job manifest, naming the field
// (Errc::invalid). The runner's own keys (configFile, context, namespace,
// startTimeoutSeconds, secureMode) are allowed beside the manifest. With
// secureMode true, the secure-mode checks (core/secure.hpp) too.
void check_job_config(const std::string& config_json);

struct JobManifest {
  json::Document job;          // what is POSTed
  std::string namespace_name;  // metadata.namespace, else the config's `namespace` ("" when neither)
  std::string config_file;     // the config's `configFile`
  std::string context;         // the config's `context`
  int start_timeout_seconds = kDefaultStartTimeoutSeconds;
  // The env kept out of the pod spec (name -> value): the containers read
  // it from the Secret `secret_name` (valueFrom.secretKeyRef), made after
  // the Job and owned by it. Empty: no Secret.
  std::map<std::string, std::string> secret_env;
  std::string secret_name;
};

// The Job for `job`: its config with W&B's defaults, the image, command,
// args, env and labels filled in.
JobManifest build_job_manifest(const ResolvedJob& job);

}  // namespace kube
}  // namespace launch

#endif
