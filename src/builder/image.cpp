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

BuildResult build_image_source(const BuildRequest& request, const BuilderConfig& config) {
  const JobSource& source = request.item.spec.source;
  if (source.kind != JobSource::Kind::image || source.image.empty()) {
    throw Error(Errc::invalid, fmt::format("item {}: the job has no image to run", request.item.id));
  }
  BuildLog log(request.log_path);
  docker::Engine engine;
  ensure_image(engine, source.image, config.platform, log);
  BuildResult r;
  r.image = source.image;
  return r;
}

}  // namespace launch
