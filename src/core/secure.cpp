// Secure mode and the local-container allow-list (secure.hpp).
#include "core/secure.hpp"

#include <cstring>

#include <fmt/format.h>

#include "util/json.hpp"
#include "launch/error.hpp"

namespace launch {
namespace {

// A value as a message shows it; long ones (a whole container spec) cut.
std::string shown(const json::Value& v) {
  std::string s = json::dump(v);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

[[noreturn]] void refuse(const std::string& path, const json::Value& v, const char* why) {
  throw Error(Errc::invalid, fmt::format("secure_mode: {} is not allowed ({}: {})", path,
                                         shown(v), why));
}

bool is_one_of(const std::string& key, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    if (key == n) return true;
  }
  return false;
}

// false, null, "", [] and {} turn nothing on; anything else does.
bool is_set(const json::Value& v) {
  if (v.IsNull() || v.IsFalse()) return false;
  if (v.IsString()) return v.GetStringLength() > 0;
  if (v.IsArray()) return !v.Empty();
  if (v.IsObject()) return v.MemberCount() > 0;
  return true;
}

// "host" joins the host's namespace, "container:<id>" another container's.
bool joins_namespace(const json::Value& v) {
  if (!v.IsString()) return false;
  const char* s = v.GetString();
  return std::strcmp(s, "host") == 0 || std::strncmp(s, "container:", 10) == 0;
}

bool is_number(const json::Value& v, double n) { return v.IsNumber() && v.GetDouble() == n; }

bool is_string(const json::Value& v, const char* s) {
  return v.IsString() && std::strcmp(v.GetString(), s) == 0;
}

// The annotations that set a pod's AppArmor or seccomp profile (before
// the securityContext fields replaced them).
bool is_profile_annotation(const std::string& key) {
  return key.rfind("container.apparmor.security.beta.kubernetes.io/", 0) == 0 ||
         key.rfind("container.seccomp.security.alpha.kubernetes.io/", 0) == 0 ||
         key == "seccomp.security.alpha.kubernetes.io/pod";
}

void check_annotations(const json::Value& v, const std::string& path) {
  if (!v.IsObject()) return;
  for (const auto& m : v.GetObject()) {
    std::string k(m.name.GetString(), m.name.GetStringLength());
    if (is_profile_annotation(k) && is_string(m.value, "unconfined")) {
      refuse(fmt::format("{}[\"{}\"]", path, k), m.value,
             "an unconfined profile lifts the container's confinement");
    }
  }
}

void check_member(const std::string& key, const json::Value& v, const std::string& path,
                  const std::string& parent_key) {
  if (is_one_of(key, {"hostNetwork", "hostPID", "hostIPC"})) {
    if (is_set(v)) refuse(path, v, "the job would share the host's namespaces");
  } else if (is_one_of(key, {"network_mode", "network", "pid", "ipc", "userns_mode",
                             "NetworkMode", "PidMode", "IpcMode", "UsernsMode"})) {
    if (joins_namespace(v)) refuse(path, v, "the job would join another namespace");
  } else if (is_one_of(key, {"privileged", "Privileged"})) {
    if (is_set(v)) refuse(path, v, "a privileged container owns the host");
  } else if (key == "hostPath") {
    if (!v.IsNull()) refuse(path, v, "a hostPath volume exposes the host's files");
  } else if (key == "initContainers") {
    if (is_set(v)) refuse(path, v, "init containers run outside the job's entry point");
  } else if (key == "command") {
    // A probe's or a lifecycle hook's `exec.command` runs inside the
    // container, like the job itself: not an override.
    if (parent_key != "exec" && is_set(v)) refuse(path, v, "a command override");
  } else if (is_one_of(key, {"entrypoint", "Entrypoint", "Cmd", "ContainerEntrypoint"})) {
    if (is_set(v)) refuse(path, v, "a command override");
  } else if (key == "hostPort") {
    if (is_set(v) && !is_number(v, 0)) refuse(path, v, "a hostPort binds a port of the node");
  } else if (key == "allowPrivilegeEscalation") {
    if (v.IsTrue()) refuse(path, v, "the container's processes could gain privileges");
  } else if (key == "runAsUser" || key == "runAsGroup") {
    if (is_number(v, 0)) refuse(path, v, "the container would run as root");
  } else if (key == "runAsNonRoot") {
    if (v.IsFalse()) refuse(path, v, "the container would be allowed to run as root");
  } else if (key == "add" && parent_key == "capabilities") {
    if (is_set(v)) refuse(path, v, "added capabilities give the container privileges");
  } else if (is_one_of(key, {"serviceAccountName", "serviceAccount"})) {
    if (is_set(v)) refuse(path, v, "the job would act with that service account's rights");
  } else if (key == "automountServiceAccountToken") {
    if (v.IsTrue()) refuse(path, v, "the job would hold a service account token");
  } else if (key == "type" && (parent_key == "seccompProfile" || parent_key == "appArmorProfile")) {
    if (is_string(v, "Unconfined")) {
      refuse(path, v, "an unconfined profile lifts the container's confinement");
    }
  } else if (key == "annotations") {
    check_annotations(v, path);
  }
}

void walk(const json::Value& v, const std::string& path, const std::string& key) {
  if (v.IsObject()) {
    for (const auto& m : v.GetObject()) {
      std::string k(m.name.GetString(), m.name.GetStringLength());
      std::string p = path.empty() ? k : path + "." + k;
      check_member(k, m.value, p, key);
      // Environment variables, labels and annotations are data: their keys
      // are names the user chose, not fields (an env var "pid" may be "host").
      if (is_one_of(k, {"env", "labels", "annotations"})) continue;
      walk(m.value, p, k);
    }
  } else if (v.IsArray()) {
    rapidjson::SizeType i = 0;
    // An array element keeps its array's key as its parent's name, so
    // `exec: {command: [...]}` is recognized however deep it sits.
    for (const auto& e : v.GetArray()) walk(e, fmt::format("{}[{}]", path, i++), key);
  }
}

const char* const kContainerOptions[] = {
    "env",  "gpus", "cpus",     "memory",     "shm-size",   "shm_size", "ulimit",
    "ulimits", "workdir", "name", "platform", "pids-limit", "pids_limit"};

}  // namespace

void check_secure_fields(const json::Value& config, const std::string& prefix) {
  walk(config, prefix, "");
}

[[noreturn]] void refuse_entry_point_override(const std::string& resource, const JobSpec& spec) {
  json::Document d;
  json::Value ep = json::string_array(spec.entry_point, d.GetAllocator());
  throw Error(Errc::invalid,
              fmt::format("secure_mode: entry_point override is not allowed ({}: on {}, this "
                          "agent runs only a job's own entry point)",
                          shown(ep), resource));
}

void check_secure_mode(const std::string& resource, const std::string& config_json,
                       const JobSpec& spec, bool entry_point_overridden) {
  json::Document config = json::parse_object(config_json, "secure_mode: resource config");
  check_secure_fields(config, "");
  json::Document args = json::parse_object(spec.resource_args, "secure_mode: resource_args");
  check_secure_fields(args, "resource_args");
  if (entry_point_overridden) refuse_entry_point_override(resource, spec);
}

void check_container_options(const json::Value& config) {
  if (!config.IsObject()) {
    throw Error(Errc::invalid,
                fmt::format("local-container config: expected a JSON object, got {} {}",
                            json::type_name(config), shown(config)));
  }
  for (const auto& m : config.GetObject()) {
    std::string key(m.name.GetString(), m.name.GetStringLength());
    bool allowed = false;
    for (const char* k : kContainerOptions) allowed = allowed || key == k;
    if (!allowed) {
      throw Error(Errc::invalid,
                  fmt::format("local-container: option \"{}\" is not allowed (value {}; "
                              "allowed: env, gpus, cpus, memory, shm-size, ulimit, workdir, "
                              "name, platform, pids-limit)",
                              key, shown(m.value)));
    }
  }
}

void check_container_options(const std::string& config_json) {
  check_container_options(json::parse_object(config_json, "local-container config"));
}

}  // namespace launch
