#include "docker/context.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>

#include "launch/error.hpp"
#include "util/process.hpp"


namespace launch {
namespace docker {
namespace fs = std::filesystem;

namespace {

struct Entry {
  enum class Kind { file, dir, symlink } kind = Kind::file;
  std::string content;  // file data, or the symlink target
  bool executable = false;
};

la_ssize_t append_out(struct archive*, void* user, const void* data, size_t size) {
  static_cast<std::string*>(user)->append(static_cast<const char*>(data), size);
  return static_cast<la_ssize_t>(size);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) {
    throw Error(Errc::io, fmt::format("build context: cannot read \"{}\": {}", p.string(),
                                      std::strerror(errno)));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::string tar_directory(const std::string& dir, const std::vector<ExtraFile>& extra) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw Error(Errc::invalid,
                fmt::format("build context: \"{}\" is not a directory", dir));
  }
  std::map<std::string, Entry> entries;  // sorted by path
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end;
  if (ec) {
    throw Error(Errc::io, fmt::format("build context: cannot list \"{}\": {}", dir, ec.message()));
  }
  for (; it != end; it.increment(ec)) {
    if (ec) {
      throw Error(Errc::io,
                  fmt::format("build context: cannot list \"{}\": {}", dir, ec.message()));
    }
    fs::path rel = fs::relative(it->path(), dir);
    std::string name = rel.generic_string();
    if (name == ".git") {
      it.disable_recursion_pending();
      continue;
    }
    struct stat st;
    if (lstat(it->path().c_str(), &st) != 0) {
      throw Error(Errc::io, fmt::format("build context: cannot stat \"{}\": {}",
                                        it->path().string(), std::strerror(errno)));
    }
    Entry e;
    if (S_ISDIR(st.st_mode)) {
      e.kind = Entry::Kind::dir;
    } else if (S_ISLNK(st.st_mode)) {
      e.kind = Entry::Kind::symlink;
      e.content = fs::read_symlink(it->path(), ec).string();
    } else if (S_ISREG(st.st_mode)) {
      e.content = read_file(it->path());
      e.executable = (st.st_mode & S_IXUSR) != 0;
    } else {
      continue;  // sockets, fifos, devices have no place in a build context
    }
    entries[name] = std::move(e);
  }
  for (const auto& x : extra) {
    Entry e;
    e.content = x.content;
    entries[x.path] = std::move(e);
  }

  std::string out;
  struct archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_open(a, &out, nullptr, append_out, nullptr);
  struct archive_entry* ae = archive_entry_new();
  for (const auto& kv : entries) {
    archive_entry_clear(ae);
    archive_entry_set_pathname(ae, kv.first.c_str());
    archive_entry_set_mtime(ae, 0, 0);
    archive_entry_set_uid(ae, 0);
    archive_entry_set_gid(ae, 0);
    const Entry& e = kv.second;
    switch (e.kind) {
      case Entry::Kind::dir:
        archive_entry_set_filetype(ae, AE_IFDIR);
        archive_entry_set_perm(ae, 0755);
        break;
      case Entry::Kind::symlink:
        archive_entry_set_filetype(ae, AE_IFLNK);
        archive_entry_set_perm(ae, 0777);
        archive_entry_set_symlink(ae, e.content.c_str());
        break;
      case Entry::Kind::file:
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_perm(ae, e.executable ? 0755 : 0644);
        archive_entry_set_size(ae, static_cast<la_int64_t>(e.content.size()));
        break;
    }
    if (archive_write_header(a, ae) != ARCHIVE_OK ||
        (e.kind == Entry::Kind::file && !e.content.empty() &&
         archive_write_data(a, e.content.data(), e.content.size()) < 0)) {
      std::string msg = archive_error_string(a) ? archive_error_string(a) : "unknown error";
      archive_entry_free(ae);
      archive_write_free(a);
      throw Error(Errc::io, fmt::format("build context: cannot add \"{}\": {}", kv.first, msg));
    }
  }
  archive_entry_free(ae);
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

namespace {

std::string git(const std::vector<std::string>& args, const std::string& what) {
  std::vector<std::string> argv = {"git", "-c", "advice.detachedHead=false"};
  argv.insert(argv.end(), args.begin(), args.end());
  // No terminal prompts for credentials: an agent has nobody to ask.
  util::ProcessOptions options;
  options.extra_env = {"GIT_TERMINAL_PROMPT=0"};
  util::ProcessResult r = util::run_process(argv, options);
  std::string out = std::move(r.out);
  if (r.status != 0) {
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    throw Error(Errc::io, fmt::format("git: {}: {}", what, out));
  }
  return out;
}

}  // namespace

std::string git_checkout(const std::string& url, const std::string& ref, const std::string& dest) {
  // git would read a leading '-' as one of its own options.
  if (!ref.empty() && ref[0] == '-') {
    throw Error(Errc::invalid, fmt::format("git ref \"{}\": must not start with '-'", ref));
  }
  git({"clone", "--quiet", "--no-checkout", "--", url, dest},
      fmt::format("clone \"{}\"", url));
  std::string commit;
  if (ref.empty()) {
    commit = git({"-C", dest, "rev-parse", "--verify", "HEAD^{commit}"}, "resolve HEAD");
  } else {
    // A branch exists only as origin/<ref> after a clone; tags and commits
    // resolve as they are.
    for (const std::string& candidate : {"origin/" + ref, ref}) {
      util::ProcessOptions quiet;
      quiet.stderr_mode = util::StderrMode::discard;
      util::ProcessResult r = util::run_process(
          {"git", "-C", dest, "rev-parse", "--verify", "--quiet", candidate + "^{commit}"}, quiet);
      if (r.status == 0) {
        commit = r.out;
        break;
      }
    }
    if (commit.empty()) {
      throw Error(Errc::io, fmt::format("git: ref \"{}\" not found in \"{}\"", ref, url));
    }
  }
  while (!commit.empty() && (commit.back() == '\n' || commit.back() == '\r')) commit.pop_back();
  git({"-C", dest, "checkout", "--quiet", "--detach", commit},
      fmt::format("checkout \"{}\"", ref.empty() ? "HEAD" : ref));
  return commit;
}

}  // namespace docker
}  // namespace launch
