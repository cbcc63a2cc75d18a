// launch_test::register_prebuilt_builder — builder type "test-prebuilt" for
// jobs that bring their own image in a registry the target pulls from
// (Kubernetes, SageMaker, Vertex): nothing to build, nothing to pull here.
#ifndef LAUNCH_TESTS_SUPPORT_PREBUILT_BUILDER_HPP
#define LAUNCH_TESTS_SUPPORT_PREBUILT_BUILDER_HPP

#include <memory>

#include "launch/builder.hpp"

namespace launch_test {

struct PrebuiltBuilder : launch::Builder {
  launch::BuildResult build(const launch::BuildRequest& r) override {
    launch::BuildResult b;
    b.image = r.item.spec.source.image;
    return b;
  }
};

inline void register_prebuilt_builder() {
  launch::register_builder("test-prebuilt", [](const launch::BuilderConfig&) {
    return std::make_unique<PrebuiltBuilder>();
  });
}

}  // namespace launch_test

#endif
