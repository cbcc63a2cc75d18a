// Internal: Docker build contexts. A context is a tar made with libarchive,
// deterministic so that its hash names the image: entries sorted by path,
// mtime 0, owner 0:0 without names, modes normalised to 0644/0755 (as git
// keeps them), the top-level .git left out.
#ifndef LAUNCH_SRC_DOCKER_CONTEXT_HPP
#define LAUNCH_SRC_DOCKER_CONTEXT_HPP

#include <string>
#include <vector>

namespace launch {
namespace docker {

// A file added to the context that is not in the directory (a generated
// Dockerfile). It replaces a file of the same path.
struct ExtraFile {
  std::string path;
  std::string content;
};

// The tar of `dir` plus `extra`. Errc::io naming the path when something
// cannot be read, Errc::invalid when `dir` is not a directory.
std::string tar_directory(const std::string& dir, const std::vector<ExtraFile>& extra = {});

// Clones `url` into `dest` (which must not exist, or be empty) and checks out
// `ref` (a branch, tag or commit; "" = the remote's HEAD) detached. Returns
// the commit id. Errc::io with git's own message when it fails.
std::string git_checkout(const std::string& url, const std::string& ref, const std::string& dest);

}  // namespace docker
}  // namespace launch

#endif
