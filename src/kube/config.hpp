// Internal: how launch reaches a Kubernetes API server, chosen as kubectl
// chooses it.
//
//   1. A kubeconfig: the runner config's `configFile` (that file alone, which
//      must exist), else every file of $KUBECONFIG (':'-separated; missing
//      files skipped; merged as kubectl merges them: for each cluster, user
//      and context name the first file that defines it wins, and so does the
//      first `current-context`), else ~/.kube/config. The context is the
//      runner config's `context`, else `current-context`.
//      Its cluster gives `server`, `certificate-authority(-data)` and
//      `insecure-skip-tls-verify`; its user `client-certificate(-data)` and
//      `client-key(-data)`, `token`, `tokenFile` (re-read when the file
//      changes), `username`/`password`, or an `exec` credential plugin
//      (client.authentication.k8s.io/v1 or v1beta1: run with argv, never a
//      shell, its env added, KUBERNETES_EXEC_INFO set; its token cached
//      until its `expirationTimestamp`, for ever without one). Relative paths
//      are relative to the file that names them, as kubectl reads them.
//   2. Else, in a pod: the service account's token (re-read whenever the
//      file changes, as the kubelet rotates it), its ca.crt and namespace,
//      and https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT. The
//      directory is /var/run/secrets/kubernetes.io/serviceaccount;
//      LAUNCH_KUBE_SERVICEACCOUNT_DIR replaces it, for tests only.
//   3. Else Errc::invalid saying where it looked.
#ifndef LAUNCH_SRC_KUBE_CONFIG_HPP
#define LAUNCH_SRC_KUBE_CONFIG_HPP

#include <memory>
#include <string>

#include "http/auth.hpp"
#include "http/client.hpp"

namespace launch {
namespace kube {

// The in-cluster service-account directory, and the variable that moves it
// (tests only).
constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";
constexpr const char* kServiceAccountDirEnv = "LAUNCH_KUBE_SERVICEACCOUNT_DIR";

// What the runner config says about the connection.
struct ConnectOptions {
  std::string config_file;  // `configFile`
  std::string context;      // `context`
};

struct Connection {
  std::string server;  // "https://host:port", no trailing '/'
  http::TlsOptions tls;
  std::shared_ptr<const http::Auth> auth;  // nullptr: no credentials
  std::string namespace_name;  // the context's (or the pod's) namespace; "" when none
  // Where it came from, for messages: `kubeconfig /a:/b, context "kind"`,
  // `in-cluster`.
  std::string source;
};

// Chooses the connection as above. Reads files and the environment; runs an
// exec plugin only when a request needs its token. Errc::invalid naming the
// file, the context and the field for what it cannot use.
Connection connect(const ConnectOptions& options);

// The namespace a run goes to: the object's metadata.namespace, else the
// runner config's `namespace`, else the context's, else "default".
std::string choose_namespace(const std::string& metadata_namespace,
                             const std::string& config_namespace,
                             const Connection& connection);

// An RFC 3339 time ("2026-01-02T03:04:05Z", fractions and offsets too) as
// seconds since the epoch; Errc::invalid naming `what` otherwise.
long long parse_rfc3339(const std::string& text, const std::string& what);

}  // namespace kube
}  // namespace launch

#endif
