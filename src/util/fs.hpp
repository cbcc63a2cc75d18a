// Internal: files and directories.
#ifndef LAUNCH_SRC_UTIL_FS_HPP
#define LAUNCH_SRC_UTIL_FS_HPP

#include <cstddef>
#include <optional>
#include <string>

namespace launch {
namespace util {

// mkdir -p with mode 0755. Errc::io naming the directory that could not be
// made. The leaf is tried first: a run's directory is new but its parents
// almost always exist, so that is one system call.
void make_directories(const std::string& path);

// The directory part of `path` ("" for a bare name, "/" for "/x").
std::string parent_path(const std::string& path);

// Replaces `path` with `text` so that a crash or a full disk leaves either
// the old file or the new one, never half of either: written to a sibling,
// flushed to disk, then renamed over it. Errc::io naming the file.
void write_file_atomic(const std::string& path, const std::string& text);

// Writes all of `data` to `fd`, retrying short writes and EINTR; stops at
// the first error (a full disk) and returns false. For a job's log, where a
// write that fails must not stop the job. Nothing for fd < 0.
bool write_fully(int fd, const char* data, std::size_t size);

// The whole of `path`; nullopt when it does not exist. Errc::io otherwise.
std::optional<std::string> read_file(const std::string& path);

// A fresh directory under $TMPDIR (else /tmp), removed with everything in
// it when this goes away. Errc::io when it cannot be made.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// $TMPDIR, else /tmp.
std::string temp_directory();

}  // namespace util
}  // namespace launch

#endif
