// The one list of built-in backends: those compiled into this build
// (launch/features.h, from the LAUNCH_WITH_* options) are registered; the
// others are simply absent, so naming one is Errc::not_found.
#include "builtins/factories.hpp"
#include "core/builtins.hpp"
#include "launch/features.h"

namespace launch {

void install_builtin_backends(const BuiltinBackends& into) {
  into.transports["memory"] = open_memory_transport;
  into.transports["sqlite"] = open_sqlite_transport;
#if LAUNCH_FEATURE_POSTGRES
  into.transports["postgres"] = open_postgres_transport;
#endif
#if LAUNCH_FEATURE_HTTP
  into.transports["http"] = open_http_transport;
  into.transports["https"] = open_http_transport;
#endif
  into.runners["local-process"] = make_local_process_runner;
#if LAUNCH_FEATURE_DOCKER
  into.runners["local-container"] = make_local_container_runner;
  into.builders["noop"] = make_noop_builder;
  into.builders["docker"] = make_docker_builder;
#endif
#if LAUNCH_FEATURE_AWS
  into.runners["sagemaker"] = make_sagemaker_runner;
  source::register_context_store("s3", make_s3_context_store);
#endif
#if LAUNCH_FEATURE_GCP
  into.runners["gcp-vertex"] = make_vertex_runner;
#endif
#if LAUNCH_FEATURE_KUBERNETES
  into.runners["kubernetes"] = make_kubernetes_runner;
#endif
}

}  // namespace launch
