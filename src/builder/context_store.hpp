// Internal: where a builder that runs elsewhere (kaniko, in a cluster) puts
// the build context so that the build can fetch it: an object store
// (`s3://bucket/prefix`, `gs://bucket/prefix`,
// `https://ACCOUNT.blob.core.windows.net/container/prefix`) or a volume
// both sides mount. The agent config's `builder.build-context-store` names
// one; each scheme is registered by the backend that speaks to it.
#ifndef LAUNCH_SRC_BUILDER_CONTEXT_STORE_HPP
#define LAUNCH_SRC_BUILDER_CONTEXT_STORE_HPP

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace launch {
namespace source {

class ContextStore {
 public:
  virtual ~ContextStore();
  // Stores `tar_gz` (a gzipped build context) under `name` (a file name,
  // e.g. "<hash>.tar.gz") and returns the location the build reads it
  // from, in the form kaniko's --context takes (s3://…, gs://…,
  // https://….blob.core.windows.net/…, or tar:///path for a volume).
  // Errc::io naming the location when it fails.
  virtual std::string put(const std::string& name, const std::string& tar_gz) = 0;
  // Removes what put() stored under `name`; missing is not an error.
  virtual void remove(const std::string& name) = 0;
};

// Makes a store for `url` (the whole `build-context-store` value).
using ContextStoreFactory = std::function<std::unique_ptr<ContextStore>(const std::string& url)>;

// Registers (or replaces) the store for URLs whose scheme is `scheme`
// ("s3", "gs", "https", "file"). Thread-safe.
void register_context_store(const std::string& scheme, ContextStoreFactory factory);
// Errc::invalid naming the URL when no store takes its scheme.
std::unique_ptr<ContextStore> open_context_store(const std::string& url);
std::vector<std::string> context_store_schemes();

}  // namespace source
}  // namespace launch

#endif
