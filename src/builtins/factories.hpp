// Internal: the factories of the built-in transports, runners and builders,
// each defined in its backend's source. The library is static, so nothing
// registers itself: builtins.cpp installs those compiled into this build.
#ifndef LAUNCH_SRC_BUILTINS_FACTORIES_HPP
#define LAUNCH_SRC_BUILTINS_FACTORIES_HPP

#include <memory>
#include <string>

#include "builder/context_store.hpp"
#include "launch/builder.hpp"
#include "launch/runner.hpp"
#include "launch/transport.hpp"

namespace launch {

std::shared_ptr<Transport> open_memory_transport(const std::string& uri);
std::shared_ptr<Transport> open_sqlite_transport(const std::string& uri);
std::shared_ptr<Transport> open_postgres_transport(const std::string& uri);  // POSTGRES
std::shared_ptr<Transport> open_http_transport(const std::string& uri);      // HTTP
std::unique_ptr<Runner> make_local_process_runner(const RunnerContext& context);
std::unique_ptr<Runner> make_local_container_runner(const RunnerContext& context);  // DOCKER
std::unique_ptr<Builder> make_noop_builder(const BuilderConfig& config);            // DOCKER
std::unique_ptr<Builder> make_docker_builder(const BuilderConfig& config);          // DOCKER
std::unique_ptr<Runner> make_sagemaker_runner(const RunnerContext& context);        // AWS
std::unique_ptr<Runner> make_vertex_runner(const RunnerContext& context);           // GCP
std::unique_ptr<Runner> make_kubernetes_runner(const RunnerContext& context);       // KUBERNETES
std::unique_ptr<source::ContextStore> make_s3_context_store(const std::string& url);  // AWS

}  // namespace launch

#endif
