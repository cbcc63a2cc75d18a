// The docker builder: an image from the job's code directory or git
// checkout, built by the Docker Engine from a tar context, named by the
// context's content hash, and pushed to builder.destination. A destination
// that already has the tag means the build is skipped.
#include "builder/docker.hpp"

#include <fmt/format.h>

#include "builder/image.hpp"
#include "builder/source.hpp"
#include "core/image_uri.hpp"
#include "builtins/factories.hpp"
#include "util/json.hpp"
#include "util/fs.hpp"
#include "util/sha256.hpp"
#include "docker/registry.hpp"
#include "launch/error.hpp"

namespace launch {

namespace {

// The repository built images are pushed to: builder.destination, else
// registry.uri, else a local name. Tags are refused (the tag is the content
// hash), through the one parser of repository URIs.
std::string image_repository(const BuilderConfig& config) {
  if (!config.destination.empty()) {
    return parse_repository_uri(config.destination, "builder.destination").str();
  }
  if (!config.registry.uri.empty()) {
    return parse_repository_uri(config.registry.uri, "registry.uri").str();
  }
  return "launch-build";
}

}  // namespace

namespace {

class DockerBuilder : public Builder {
 public:
  explicit DockerBuilder(BuilderConfig config) : config_(std::move(config)) {}

  BuildResult build(const BuildRequest& request) override {
    const JobSpec& spec = request.item.spec;
    switch (spec.source.kind) {
      case JobSource::Kind::image:
        return build_image_source(request, config_);
      case JobSource::Kind::none:
        throw Error(Errc::invalid,
                    fmt::format("item {}: the job has no source to build", request.item.id));
      case JobSource::Kind::code:
        return build_from(request, spec.source.code_dir);
      case JobSource::Kind::git: {
        util::TempDir tmp("launch-git-");
        std::string dir = tmp.path() + "/src";
        BuildLog log(request.log_path);
        log.write(fmt::format("checking out {} at {}\n", spec.source.git_url,
                              spec.source.git_ref.empty() ? "HEAD" : spec.source.git_ref));
        std::string commit = source::git_checkout(spec.source.git_url, spec.source.git_ref, dir);
        log.write(fmt::format("commit {}\n", commit));
        return build_from(request, dir);
      }
    }
    throw Error(Errc::internal, "builder.type docker: a job source of an unknown kind");
  }

 private:
  BuildResult build_from(const BuildRequest& request, const std::string& dir) {
    std::string repository = image_repository(config_);
    BuildLog log(request.log_path);
    source::PreparedContext ctx = source::prepare_context(request.item.spec, dir, config_.platform);
    BuildResult result;
    result.image = repository + ":" + ctx.hash.substr(0, 32);
    bool push = repository != "launch-build";
    docker::Engine engine;
    engine.set_abort_flag(request.cancel);
    if (push ? docker::registry_has_manifest(docker::parse_image_ref(result.image))
             : engine.inspect_image(result.image).has_value()) {
      log.write(fmt::format("{} already exists: build skipped\n", result.image));
      result.skipped = true;
      // A container on this engine needs the image here, not just in the
      // registry.
      if (push && request.resource == "local-container") {
        ensure_image(engine, result.image, config_.platform, log);
      }
      return result;
    }
    log.write(fmt::format("building {} with {} ({} bytes of context)\n", result.image,
                          ctx.dockerfile, ctx.tar.size()));
    docker::BuildOptions options;
    options.tag = result.image;
    options.dockerfile = ctx.dockerfile;
    options.platform = config_.platform;
    options.labels["launch.builder"] = "docker";
    auto out = [&](const std::string& line) { log.write(line); };
    engine.build_image(ctx.tar, options, out);
    if (push) {
      log.write(fmt::format("pushing {}\n", result.image));
      auto ref = docker::parse_image_ref(result.image);
      engine.push_image(result.image, docker::registry_auth_header(ref.registry), out);
    }
    return result;
  }

  BuilderConfig config_;
};

}  // namespace

std::unique_ptr<Builder> make_docker_builder(const BuilderConfig& config) {
  return std::make_unique<DockerBuilder>(config);
}

}  // namespace launch
