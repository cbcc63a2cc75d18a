// The noop builder: jobs bring their own image; it only makes sure the
// engine has it (pulling it when missing).
#include <fmt/format.h>

#include "builder/image.hpp"
#include "builtins/factories.hpp"
#include "launch/error.hpp"

namespace launch {

namespace {

class NoopBuilder : public Builder {
 public:
  explicit NoopBuilder(BuilderConfig config) : config_(std::move(config)) {}

  BuildResult build(const BuildRequest& request) override {
    const JobSource& source = request.item.spec.source;
    if (source.kind == JobSource::Kind::git || source.kind == JobSource::Kind::code) {
      throw Error(Errc::invalid,
                  fmt::format("builder.type \"noop\" cannot build item {}'s {} source: set "
                              "builder.type to docker, or push the job with an image",
                              request.item.id,
                              source.kind == JobSource::Kind::git ? "git" : "code directory"));
    }
    return build_image_source(request, config_);
  }

 private:
  BuilderConfig config_;
};

}  // namespace

std::unique_ptr<Builder> make_noop_builder(const BuilderConfig& config) {
  return std::make_unique<NoopBuilder>(config);
}

}  // namespace launch
