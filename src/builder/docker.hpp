// Internal: the docker builder (its factory is in builtins/factories.hpp);
// what it shares with the kaniko builder is in builder/source.hpp.
#ifndef LAUNCH_SRC_BUILDER_DOCKER_HPP
#define LAUNCH_SRC_BUILDER_DOCKER_HPP

#include "builder/source.hpp"

#endif
