// Internal: the factories of the built-in transports, runners and builders.
// The library is static, so nothing registers itself: registry.cpp lists
// them all here, once, and installs them the first time a registry is used.
#ifndef LAUNCH_SRC_CORE_BUILTINS_HPP
#define LAUNCH_SRC_CORE_BUILTINS_HPP

#include <memory>
#include <string>

#include "launch/builder.hpp"
#include "launch/runner.hpp"
#include "launch/transport.hpp"

namespace launch {

std::shared_ptr<Transport> open_memory_transport(const std::string& uri);
std::shared_ptr<Transport> open_sqlite_transport(const std::string& uri);
std::shared_ptr<Transport> open_postgres_transport(const std::string& uri);
std::unique_ptr<Runner> make_local_process_runner(const RunnerContext& context);
std::unique_ptr<Runner> make_local_container_runner(const RunnerContext& context);
std::unique_ptr<Builder> make_noop_builder(const BuilderConfig& config);
std::unique_ptr<Builder> make_docker_builder(const BuilderConfig& config);

}  // namespace launch

#endif
