#include "builder/source.hpp"

#include <fnmatch.h>
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
#include "util/json.hpp"
#include "util/sha256.hpp"
#include "util/process.hpp"


namespace launch {
namespace source {
namespace fs = std::filesystem;

namespace {

constexpr const char* kGeneratedDockerfile = ".launch.Dockerfile";
constexpr const char* kDefaultBaseImage = "python:3.11-slim";

bool is_regular_file(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

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

// ---- .dockerignore

namespace {

std::string trim(const std::string& s) {
  std::size_t a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return "";
  std::size_t b = s.find_last_not_of(" \t\r");
  return s.substr(a, b - a + 1);
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    std::string seg = path.substr(start, slash - start);
    if (seg == "..") {
      if (!out.empty()) out.pop_back();
    } else if (!seg.empty() && seg != ".") {
      out.push_back(seg);
    }
    start = slash + 1;
  }
  return out;
}

// Segment-wise match; "**" takes any number of segments, zero included.
bool match_segments(const std::vector<std::string>& pat, std::size_t pi,
                    const std::vector<std::string>& path, std::size_t si) {
  for (; pi < pat.size(); ++pi, ++si) {
    if (pat[pi] == "**") {
      for (std::size_t k = si; k <= path.size(); ++k) {
        if (match_segments(pat, pi + 1, path, k)) return true;
      }
      return false;
    }
    if (si >= path.size() || ::fnmatch(pat[pi].c_str(), path[si].c_str(), 0) != 0) {
      return false;
    }
  }
  return si == path.size();
}

}  // namespace

IgnoreRules::IgnoreRules(const std::string& text) {
  std::size_t pos = 0;
  int line_no = 0;
  while (pos <= text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (!line.empty() && line[0] == '#') continue;
    line = trim(line);
    if (line.empty()) continue;
    Rule rule;
    if (line[0] == '!') {
      rule.exception = true;
      line = trim(line.substr(1));
    }
    rule.segments = split_path(line);
    if (rule.segments.empty()) continue;  // "/" or "." alone names the whole context: Docker ignores it
    for (const auto& seg : rule.segments) {
      // fnmatch takes an unclosed '[' literally; Docker refuses it.
      std::size_t open = seg.find('[');
      if (open != std::string::npos && seg.find(']', open) == std::string::npos) {
        throw Error(Errc::invalid, fmt::format(".dockerignore line {}: \"{}\": unclosed '['",
                                               line_no, line));
      }
    }
    has_exceptions_ = has_exceptions_ || rule.exception;
    rules_.push_back(std::move(rule));
  }
}

bool IgnoreRules::excludes(const std::string& path) const {
  std::vector<std::string> segs = split_path(path);
  bool excluded = false;
  for (const auto& rule : rules_) {
    // A pattern that matches a parent directory matches what is under it.
    bool matched = false;
    std::vector<std::string> prefix;
    for (const auto& seg : segs) {
      prefix.push_back(seg);
      if (match_segments(rule.segments, 0, prefix, 0)) {
        matched = true;
        break;
      }
    }
    if (matched) excluded = !rule.exception;
  }
  return excluded;
}

// ---- the tar

std::string tar_directory(const std::string& dir, const std::vector<ExtraFile>& extra,
                          const std::vector<std::string>& keep) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw Error(Errc::invalid,
                fmt::format("build context: \"{}\" is not a directory", dir));
  }
  IgnoreRules ignore;
  if (is_regular_file(dir + "/.dockerignore")) {
    ignore = IgnoreRules(read_file(dir + "/.dockerignore"));
  }
  auto kept = [&](const std::string& name) {
    return name == ".dockerignore" || std::find(keep.begin(), keep.end(), name) != keep.end();
  };
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
    if (!ignore.empty() && !kept(name) && ignore.excludes(name)) {
      // Nothing under an excluded directory comes back unless a `!` line
      // could bring it: then the walk goes on and filters each path.
      if (!ignore.has_exceptions()) it.disable_recursion_pending();
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

std::string generated_dockerfile(const JobSpec& spec, bool has_requirements) {
  auto base = spec.env.find("LAUNCH_BASE_IMAGE");
  std::string out = fmt::format("FROM {}\n",
                                base == spec.env.end() ? kDefaultBaseImage : base->second);
  out += "WORKDIR /launch/code\n";
  if (has_requirements) {
    out += "COPY requirements.txt /launch/code/requirements.txt\n";
    out += "RUN [\"pip\", \"install\", \"--no-cache-dir\", \"-r\", \"requirements.txt\"]\n";
  }
  out += "COPY . /launch/code\n";
  if (!spec.entry_point.empty()) {
    rapidjson::Document d;
    out += "ENTRYPOINT " + json::dump(json::string_array(spec.entry_point, d.GetAllocator())) +
           "\n";
  }
  return out;
}

PreparedContext prepare_context(const JobSpec& spec, const std::string& dir,
                                const std::string& platform) {
  PreparedContext ctx;
  std::vector<ExtraFile> extra;
  if (!spec.dockerfile.empty()) {
    if (spec.dockerfile.find("..") != std::string::npos || spec.dockerfile[0] == '/' ||
        !is_regular_file(dir + "/" + spec.dockerfile)) {
      throw Error(Errc::invalid,
                  fmt::format("job dockerfile \"{}\": no such file in the job's source",
                              spec.dockerfile));
    }
    ctx.dockerfile = spec.dockerfile;
  } else if (is_regular_file(dir + "/Dockerfile")) {
    ctx.dockerfile = "Dockerfile";
  } else {
    ctx.dockerfile = kGeneratedDockerfile;
    extra.push_back({kGeneratedDockerfile,
                     generated_dockerfile(spec, is_regular_file(dir + "/requirements.txt"))});
  }
  ctx.tar = tar_directory(dir, extra, {ctx.dockerfile});
  Sha256 h;
  h.update(ctx.tar);
  h.update("\n", 1);
  h.update(ctx.dockerfile);
  h.update("\n", 1);
  h.update(platform);
  ctx.hash = h.hex_digest();
  return ctx;
}

}  // namespace source
}  // namespace launch
