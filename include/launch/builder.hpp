// launch — builders: from a job's source to a container image.
//
//   noop    the image must already exist (given by the job); it is pulled
//           when missing
//   docker  builds through the Docker Engine API from a tar of the job's
//           code directory or git checkout, tags it with a content hash,
//           skips the build when the destination already has that tag, and
//           pushes to `destination`
//   kaniko  a Kubernetes Job running the kaniko executor
//
// The agent calls a builder only for runners that need an image.
#ifndef LAUNCH_BUILDER_HPP
#define LAUNCH_BUILDER_HPP

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "launch/export.h"
#include "launch/job.hpp"
#include "launch/queue.hpp"

namespace launch {

// launch-config.yaml's `registry`.
struct RegistryConfig {
  std::string type;  // ecr | gcr | acr | "" (a plain registry v2)
  std::string uri;
};

// launch-config.yaml's `builder`, key for key.
struct BuilderConfig {
  std::string type = "noop";  // docker | kaniko | noop
  std::string destination;    // repository to push to, e.g. 127.0.0.1:5000/jobs
  std::string platform;       // e.g. linux/amd64
  std::string build_context_store;
  std::string build_job_name;
  std::string secret_name;
  std::string secret_key;
  std::string kaniko_image;
  RegistryConfig registry;
};

struct BuildRequest {
  QueueItem item;
  QueueDef queue;
  std::string resource;   // the runner the image is for
  std::string log_path;   // build output is appended here (the item's build.log)
  // Set by the agent when the item is cancelled (or the agent is stopped
  // with a cancel) mid-build: a builder stops what it is waiting for as soon
  // as it can and throws; the item then ends `stopped`, not failed. Null
  // when nothing can cancel the build.
  const std::atomic<bool>* cancel = nullptr;
};

struct BuildResult {
  std::string image;     // what the runner should run
  bool skipped = false;  // the destination already had it
};

class LAUNCH_EXPORT Builder {
 public:
  virtual ~Builder();
  // Throws launch::Error; the agent fails the item at stage `build` with
  // its message.
  virtual BuildResult build(const BuildRequest& request) = 0;
};

using BuilderFactory = std::function<std::unique_ptr<Builder>(const BuilderConfig&)>;
LAUNCH_EXPORT void register_builder(const std::string& type, BuilderFactory factory);
LAUNCH_EXPORT std::unique_ptr<Builder> make_builder(const BuilderConfig& config);
// The types registered now (the built-ins of this build and register_builder's).
LAUNCH_EXPORT std::vector<std::string> builder_names();

}  // namespace launch

#endif
