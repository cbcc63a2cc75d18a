// Internal: the seam between the registries (registry.cpp) and the
// backends compiled into this build. Core names no backend; the one list of
// them is src/builtins/builtins.cpp, which registers those that are on.
#ifndef LAUNCH_SRC_CORE_BUILTINS_HPP
#define LAUNCH_SRC_CORE_BUILTINS_HPP

#include <map>
#include <string>

#include "launch/builder.hpp"
#include "launch/runner.hpp"
#include "launch/transport.hpp"

namespace launch {

struct BuiltinBackends {
  std::map<std::string, TransportFactory>& transports;  // by URI scheme
  std::map<std::string, RunnerFactory>& runners;        // by resource name
  std::map<std::string, BuilderFactory>& builders;      // by builder.type
};

// Adds the factory of every built-in backend. Called once, before the
// registries are shared, so it takes no lock.
void install_builtin_backends(const BuiltinBackends& into);

}  // namespace launch

#endif
