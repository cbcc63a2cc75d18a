// Internal: the checks that keep a job from reaching past its sandbox.
//
// Two layers:
//
//   check_secure_mode()        only when the agent runs with `secure_mode:
//                              true` (launch-config.yaml). Refuses the fields
//                              a job could use to take over the host.
//   check_container_options()  always, for the local-container runner: its
//                              config may hold only an allow-list of Docker
//                              options.
//
// Both throw launch::Error(Errc::invalid) naming the offending field by its
// path in the config, and its value.
#ifndef LAUNCH_SRC_CORE_SECURE_HPP
#define LAUNCH_SRC_CORE_SECURE_HPP

#include <string>

#include "util/json.hpp"
#include "launch/job.hpp"

namespace launch {

// Refuses, with `secure_mode: <path> is not allowed (...)`, anywhere in the
// tree of `config_json` (the resolved resource config: a Kubernetes Job, a
// custom object, a Docker-style config, a Vertex/SageMaker request alike):
//
//   - host namespaces: `hostNetwork`, `hostPID`, `hostIPC` set to true; and
//     Docker-style `network_mode`, `network`, `pid`, `ipc` (also the Engine
//     API's `NetworkMode`, `PidMode`, `IpcMode`, `UsernsMode`) set to "host"
//     or "container:<id>" (which joins another container's namespaces);
//   - privilege: `privileged` / `Privileged` set to true (a pod's
//     securityContext, a Docker option);
//   - `hostPath` volumes (any `hostPath` key);
//   - `initContainers` that are not empty;
//   - command overrides: `command` (except under a probe's or a lifecycle
//     hook's `exec`, which runs inside the container), Docker's `entrypoint`
//     / `Entrypoint` / `Cmd`, SageMaker's `ContainerEntrypoint`;
//   - a pod's escalations: `hostPort` (not 0), `allowPrivilegeEscalation`
//     true, `runAsUser` / `runAsGroup` 0, `runAsNonRoot` false, added
//     capabilities (`capabilities.add` not empty), `serviceAccountName` /
//     `serviceAccount` set, `automountServiceAccountToken` true, a
//     `seccompProfile` or `appArmorProfile` of `type: Unconfined`, and the
//     older annotations that set those profiles to "unconfined"
//     (`container.apparmor.security.beta.kubernetes.io/<c>`,
//     `seccomp.security.alpha.kubernetes.io/pod`, ...), named
//     `...annotations["<key>"]`;

// Keys inside `env`, `labels` and `annotations` are data, not fields, and
// are not checked. Then the same in the job's own `resource_args` (paths prefixed with
// `resource_args.`), in case `config_json` was resolved without them; and,
// when `entry_point_overridden`, the job's `entry_point` override.
// `resource` names the runner in messages about the entry point only.
void check_secure_mode(const std::string& resource, const std::string& config_json,
                       const JobSpec& spec, bool entry_point_overridden);

// The two halves of check_secure_mode(), for a config already parsed (the
// agent's resolution, resolve.hpp, checks the document it resolved, in which
// the job's resource_args are merged already):
//
// the field walk over `config`, paths prefixed with `prefix` ("" for none);
void check_secure_fields(const json::Value& config, const std::string& prefix);
// and the refusal of the job's entry_point override (when there is one).
[[noreturn]] void refuse_entry_point_override(const std::string& resource, const JobSpec& spec);

// The local-container runner's allow-list, on the config's top-level keys:
// env, gpus, cpus, memory, shm-size (shm_size), ulimit (ulimits), workdir,
// name, platform, pids-limit (pids_limit). Anything else (volumes,
// privileged, cap-add, network, ...) is refused:
// `local-container: option "volumes" is not allowed (allowed: ...)`.
void check_container_options(const std::string& config_json);
// The same on a parsed config (the runner's own parse).
void check_container_options(const json::Value& config);

}  // namespace launch

#endif
