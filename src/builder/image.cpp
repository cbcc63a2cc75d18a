#include "builder/image.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "docker/registry.hpp"
#include "launch/error.hpp"

namespace launch {

BuildLog::BuildLog(const std::string& path) {
  if (path.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  f_ = std::fopen(path.c_str(), "ae");
  if (f_ == nullptr) {
    throw Error(Errc::io, fmt::format("build log \"{}\": {}", path, std::strerror(errno)));
  }
}

BuildLog::~BuildLog() {
  if (f_ != nullptr) std::fclose(f_);
}

void BuildLog::write(const std::string& text) {
  if (f_ == nullptr) return;
  std::fwrite(text.data(), 1, text.size(), f_);
  std::fflush(f_);
}

void ensure_image(docker::Engine& engine, const std::string& image, const std::string& platform,
                  BuildLog& log) {
  if (engine.inspect_image(image)) {
    log.write(fmt::format("image {} is present\n", image));
    return;
  }
  log.write(fmt::format("pulling {}\n", image));
  auto ref = docker::parse_image_ref(image);
  engine.pull_image(image, docker::registry_auth_header(ref.registry), platform,
                    [&](const std::string& line) { log.write(line); });
}

bool target_pulls_itself(const std::string& resource) {
  return resource == "sagemaker";
}

BuildResult build_image_source(const BuildRequest& request, const BuilderConfig& config) {
  const JobSource& source = request.item.spec.source;
  if (source.kind != JobSource::Kind::image || source.image.empty()) {
    throw Error(Errc::invalid, fmt::format("item {}: the job has no image to run", request.item.id));
  }
  BuildLog log(request.log_path);
  BuildResult r;
  r.image = source.image;
  if (request.resource == "kubernetes") {
    // The cluster's kubelets pull it, with the pull secrets of the pod
    // spec: neither the local engine nor this agent need reach it.
    log.write(fmt::format("using {} as it is (the cluster pulls it)\n", source.image));
    return r;
  }
  if (target_pulls_itself(request.resource)) {
    // SageMaker, Vertex or a cluster pulls the image from its registry; the
    // local engine need not have it, or exist.
    log.write(fmt::format("checking that {} is in its registry\n", source.image));
    auto ref = docker::parse_image_ref(source.image);
    if (!docker::registry_has_manifest(ref)) {
      throw Error(Errc::not_found,
                  fmt::format("image {} is not in the registry {} ({} pulls it from there)",
                              source.image, ref.registry, request.resource));
    }
    return r;
  }
  docker::Engine engine;
  ensure_image(engine, source.image, config.platform, log);
  return r;
}

}  // namespace launch
