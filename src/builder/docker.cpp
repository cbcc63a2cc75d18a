// The docker builder: an image from the job's code directory or git
// checkout, built by the Docker Engine from a tar context, named by the
// context's content hash, and pushed to builder.destination. A destination
// that already has the tag means the build is skipped.
#include "builder/docker.hpp"

#include <sys/stat.h>

#include <fmt/format.h>

#include "builder/image.hpp"
#include "builtins/factories.hpp"
#include "util/json.hpp"
#include "util/fs.hpp"
#include "util/sha256.hpp"
#include "docker/context.hpp"
#include "docker/registry.hpp"
#include "launch/error.hpp"

namespace launch {

namespace {

constexpr const char* kGeneratedDockerfile = ".launch.Dockerfile";
constexpr const char* kDefaultBaseImage = "python:3.11-slim";

bool is_regular_file(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string image_repository(const BuilderConfig& config) {
  std::string dest = config.destination.empty() ? config.registry.uri : config.destination;
  while (!dest.empty() && dest.back() == '/') dest.pop_back();
  if (dest.empty()) return "launch-build";
  auto slash = dest.rfind('/');
  auto colon = dest.rfind(':');
  if (dest.find('@') != std::string::npos ||
      (colon != std::string::npos && (slash == std::string::npos || colon > slash))) {
    throw Error(Errc::invalid,
                fmt::format("builder.destination \"{}\": expected a repository without a tag "
                            "(e.g. 127.0.0.1:5000/jobs); the tag is the content hash",
                            dest));
  }
  for (char c : dest) {
    if (c >= 'A' && c <= 'Z') {
      throw Error(Errc::invalid,
                  fmt::format("builder.destination \"{}\": repository names are lowercase", dest));
    }
  }
  return dest;
}

}  // namespace

std::string generated_dockerfile(const JobSpec& spec, bool has_requirements) {
  auto base = spec.env.find("LAUNCH_BASE_IMAGE");
  std::string out = fmt::format("FROM {}\n",
                                base == spec.env.end() ? kDefaultBaseImage : base->second);
  out += "WORKDIR /launch/code\n";
  if (has_requirements) {
    out += "COPY requirements.txt /launch/code/requirements.txt\n";
    out += "RUN [\"pip\", \"install\", \"--no-cache-dir\", \"-r\", \"requirements.txt\"]\n";
  }
  out += "COPY . /launch/code\n";
  if (!spec.entry_point.empty()) {
    rapidjson::Document d;
    out += "ENTRYPOINT " + json::dump(json::string_array(spec.entry_point, d.GetAllocator())) +
           "\n";
  }
  return out;
}

PreparedContext prepare_context(const JobSpec& spec, const std::string& dir,
                                const std::string& platform) {
  PreparedContext ctx;
  std::vector<docker::ExtraFile> extra;
  if (!spec.dockerfile.empty()) {
    if (spec.dockerfile.find("..") != std::string::npos || spec.dockerfile[0] == '/' ||
        !is_regular_file(dir + "/" + spec.dockerfile)) {
      throw Error(Errc::invalid,
                  fmt::format("job dockerfile \"{}\": no such file in the job's source",
                              spec.dockerfile));
    }
    ctx.dockerfile = spec.dockerfile;
  } else if (is_regular_file(dir + "/Dockerfile")) {
    ctx.dockerfile = "Dockerfile";
  } else {
    ctx.dockerfile = kGeneratedDockerfile;
    extra.push_back({kGeneratedDockerfile,
                     generated_dockerfile(spec, is_regular_file(dir + "/requirements.txt"))});
  }
  ctx.tar = docker::tar_directory(dir, extra);
  Sha256 h;
  h.update(ctx.tar);
  h.update("\n", 1);
  h.update(ctx.dockerfile);
  h.update("\n", 1);
  h.update(platform);
  ctx.hash = h.hex_digest();
  return ctx;
}

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
        std::string commit = docker::git_checkout(spec.source.git_url, spec.source.git_ref, dir);
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
    PreparedContext ctx = prepare_context(request.item.spec, dir, config_.platform);
    BuildResult result;
    result.image = repository + ":" + ctx.hash.substr(0, 32);
    bool push = repository != "launch-build";
    docker::Engine engine;
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
