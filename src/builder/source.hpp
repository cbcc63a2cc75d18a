// Internal: a job's source as builders see it, shared by the docker and
// kaniko builders: a git checkout, the Dockerfile choice, and the build
// context — a tar made with libarchive, deterministic so that its hash
// names the image: entries sorted by path, mtime 0, owner 0:0 without
// names, modes normalised to 0644/0755 (as git keeps them), the top-level
// .git left out, and what the context's .dockerignore excludes left out
// (with Docker's rules: `*`, `?`, `[...]`, `**` across directories, `!`
// exceptions, the last matching line wins, a directory's exclusion covers
// what is under it; the Dockerfile and .dockerignore always go).
#ifndef LAUNCH_SRC_BUILDER_SOURCE_HPP
#define LAUNCH_SRC_BUILDER_SOURCE_HPP

#include <string>
#include <vector>

#include "launch/job.hpp"

namespace launch {
namespace source {

// A file added to the context that is not in the directory (a generated
// Dockerfile). It replaces a file of the same path.
struct ExtraFile {
  std::string path;
  std::string content;
};

// The patterns of a .dockerignore file.
class IgnoreRules {
 public:
  IgnoreRules() = default;
  // Parses the text of a .dockerignore: one pattern a line, `#` comments,
  // blank lines skipped, surrounding space trimmed, a leading `/` and `./`
  // dropped. Errc::invalid naming the line for a malformed pattern.
  explicit IgnoreRules(const std::string& text);
  // True when `path` (relative to the context, '/'-separated) is excluded.
  bool excludes(const std::string& path) const;
  // True when some `!` line could bring back a path under an excluded
  // directory, so the directory must still be walked.
  bool has_exceptions() const { return has_exceptions_; }
  bool empty() const { return rules_.empty(); }

 private:
  struct Rule {
    std::vector<std::string> segments;
    bool exception = false;
  };
  std::vector<Rule> rules_;
  bool has_exceptions_ = false;
};

// The tar of `dir` plus `extra`, leaving out what `dir`/.dockerignore
// excludes except the paths in `keep`. Errc::io naming the path when
// something cannot be read, Errc::invalid when `dir` is not a directory.
std::string tar_directory(const std::string& dir, const std::vector<ExtraFile>& extra = {},
                          const std::vector<std::string>& keep = {});

// Clones `url` into `dest` (which must not exist, or be empty) and checks out
// `ref` (a branch, tag or commit; "" = the remote's HEAD) detached. Returns
// the commit id. Errc::io with git's own message when it fails.
std::string git_checkout(const std::string& url, const std::string& ref, const std::string& dest);

// The Dockerfile used when neither the job nor its code brings one:
// FROM the job's LAUNCH_BASE_IMAGE env (default python:3.11-slim), the code
// in /launch/code (its requirements.txt installed with pip when present),
// ENTRYPOINT the job's entry point.
std::string generated_dockerfile(const JobSpec& spec, bool has_requirements);

struct PreparedContext {
  std::string tar;         // the build context
  std::string dockerfile;  // its path inside the context
  std::string hash;        // sha256 of the context, the Dockerfile path and the platform
};

// The context of directory `dir` for `spec`. The Dockerfile is the job's
// override (Errc::invalid naming it when it is not in `dir`), else `dir`'s
// own Dockerfile, else a generated one added to the context.
PreparedContext prepare_context(const JobSpec& spec, const std::string& dir,
                                const std::string& platform);

}  // namespace source
}  // namespace launch

#endif
