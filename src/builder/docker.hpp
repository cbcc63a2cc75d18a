// Internal: the docker builder's pieces, exposed for tests.
#ifndef LAUNCH_SRC_BUILDER_DOCKER_HPP
#define LAUNCH_SRC_BUILDER_DOCKER_HPP

#include <string>

#include "launch/job.hpp"

namespace launch {

// The Dockerfile used when neither the job nor its code brings one:
// FROM the job's LAUNCH_BASE_IMAGE env (default python:3.11-slim), the code
// in /launch/code (its requirements.txt installed with pip when present),
// ENTRYPOINT the job's entry point.
std::string generated_dockerfile(const JobSpec& spec, bool has_requirements);

struct PreparedContext {
  std::string tar;         // the build context
  std::string dockerfile;  // its path inside the context
  std::string hash;        // sha256 of the context, the Dockerfile path and the platform
};

// The context of directory `dir` for `spec`. The Dockerfile is the job's
// override (Errc::invalid naming it when it is not in `dir`), else `dir`'s
// own Dockerfile, else a generated one added to the context.
PreparedContext prepare_context(const JobSpec& spec, const std::string& dir,
                                const std::string& platform);

}  // namespace launch

#endif
