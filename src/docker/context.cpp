#include "docker/context.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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

extern char** environ;

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

// ---- temp dirs and processes

TempDir::TempDir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/" + prefix + "XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    throw Error(Errc::io, fmt::format("cannot create a temporary directory \"{}\": {}", templ,
                                      std::strerror(errno)));
  }
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

int run_process(const std::vector<std::string>& argv, std::string* output,
                const std::vector<std::string>& extra_env) {
  std::vector<char*> env;
  for (const auto& e : extra_env) env.push_back(const_cast<char*>(e.c_str()));
  for (char** e = environ; *e != nullptr; ++e) env.push_back(*e);
  env.push_back(nullptr);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    throw Error(Errc::io, fmt::format("pipe: {}", std::strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  std::vector<char*> args;
  for (const auto& s : argv) args.push_back(const_cast<char*>(s.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    throw Error(Errc::io, fmt::format("cannot run \"{}\": {}", argv[0], std::strerror(rc)));
  }
  char buf[4096];
  for (;;) {
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n > 0) {
      if (output != nullptr) output->append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

namespace {

std::string git(const std::vector<std::string>& args, const std::string& what) {
  std::vector<std::string> argv = {"git", "-c", "advice.detachedHead=false"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string out;
  // No terminal prompts for credentials: an agent has nobody to ask.
  int rc = run_process(argv, &out, {"GIT_TERMINAL_PROMPT=0"});
  if (rc != 0) {
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
      std::string out;
      int rc = run_process({"git", "-C", dest, "rev-parse", "--verify", "--quiet",
                            candidate + "^{commit}"},
                           &out);
      if (rc == 0) {
        commit = out;
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
