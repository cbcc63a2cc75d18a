// Internal: what the noop and docker builders share: the item's build log
// and "make sure this image is on the engine".
#ifndef LAUNCH_SRC_BUILDER_IMAGE_HPP
#define LAUNCH_SRC_BUILDER_IMAGE_HPP

#include <cstdio>
#include <string>

#include "docker/engine.hpp"
#include "launch/builder.hpp"

namespace launch {

// Appends to BuildRequest::log_path (nothing when it is empty).
class BuildLog {
 public:
  explicit BuildLog(const std::string& path);
  ~BuildLog();
  BuildLog(const BuildLog&) = delete;
  BuildLog& operator=(const BuildLog&) = delete;
  void write(const std::string& text);

 private:
  std::FILE* f_ = nullptr;
};

// The image is on the engine afterwards: inspected, else pulled (with the
// Docker config file's credentials for its registry). A failed pull is the
// engine's message.
void ensure_image(docker::Engine& engine, const std::string& image, const std::string& platform,
                  BuildLog& log);

// True for the resources whose target pulls the image itself from its
// registry: sagemaker (gcp-vertex and kubernetes belong here too, once
// their suites reach the registries their images are in).
bool target_pulls_itself(const std::string& resource);

// The image a job with an image source runs, or Errc::invalid when it has
// none. For a target that pulls it itself, the image must be in its
// registry (Errc::not_found otherwise); else it is made present on the
// local engine.
BuildResult build_image_source(const BuildRequest& request, const BuilderConfig& config);

}  // namespace launch

#endif
