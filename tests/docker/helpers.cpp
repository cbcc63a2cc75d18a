#include "helpers.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <curl/curl.h>

#include "util/json.hpp"
#include "builder/source.hpp"
#include "docker/registry.hpp"
#include "launch/error.hpp"
#include "util/process.hpp"
#include "support/temp_dir.hpp"

namespace dtest {
namespace fs = std::filesystem;

namespace {

struct State {
  std::mutex mu;
  std::string token;
  std::string busybox;
  std::vector<std::string> images;
  std::vector<std::string> temp_dirs;
  std::vector<std::string> volumes;
  ~State() {
    // Whatever a failed or filtered run left: gone at exit all the same.
    remove_tracked_images();
    for (const auto& d : temp_dirs) {
      std::error_code ec;
      fs::remove_all(d, ec);
    }
  }
};

State& state() {
  static State s;
  return s;
}

}  // namespace

const std::string& run_token() {
  auto& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.token.empty()) {
    std::random_device rd;
    s.token = fmt::format("{:08x}{}", rd(), static_cast<int>(getpid()));
    s.volumes = volume_names();
  }
  return s.token;
}

launch::QueueDef test_queue() {
  launch::QueueDef q;
  q.entity = "launch-test";
  q.name = "docker-" + run_token();
  q.resource = "local-container";
  return q;
}

std::string make_temp_dir(const std::string& prefix) {
  std::string templ = launch_test::temp_base() + "/" + prefix + "XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  REQUIRE(mkdtemp(buf.data()) != nullptr);
  auto& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.temp_dirs.push_back(buf.data());
  return buf.data();
}

void write_file(const std::string& path, const std::string& content, bool executable) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  fs::permissions(path, executable ? fs::perms(0755) : fs::perms(0644));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void run_ok(const std::vector<std::string>& argv) {
  launch::util::ProcessResult r = launch::util::run_process(argv);
  INFO(argv[0] << " " << (argv.size() > 1 ? argv[1] : "") << ": " << r.out);
  REQUIRE(r.status == 0);
}

GitRepo::GitRepo(const std::string& prefix) {
  std::string root = make_temp_dir(prefix);
  bare = root + "/repo.git";
  work = root + "/work";
  run_ok({"git", "init", "--quiet", "--bare", bare});
  run_ok({"git", "init", "--quiet", work});
}

void GitRepo::git(std::vector<std::string> args) const {
  std::vector<std::string> argv = {"git", "-C", work, "-c", "user.name=t", "-c", "user.email=t@t"};
  argv.insert(argv.end(), args.begin(), args.end());
  run_ok(argv);
}

const std::string& busybox_image() {
  auto& s = state();
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (!s.busybox.empty()) return s.busybox;
  }
  std::string tag = "launch-test-busybox:" + run_token();
  std::string dir = make_temp_dir("launch-busybox-");
  std::string busybox = fs::exists("/bin/busybox") ? "/bin/busybox" : "/usr/bin/busybox";
  REQUIRE_MESSAGE(fs::exists(busybox), "busybox-static is needed (scripts/setup installs it)");
  fs::copy_file(busybox, dir + "/busybox");
  write_file(dir + "/Dockerfile",
             "FROM scratch\nCOPY busybox /bin/busybox\n"
             "RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n");
  launch::docker::Engine engine;
  launch::docker::BuildOptions opts;
  opts.tag = tag;
  opts.dockerfile = "Dockerfile";
  std::string log;
  engine.build_image(launch::source::tar_directory(dir), opts,
                     [&](const std::string& l) { log += l; });
  track_image(tag);
  std::lock_guard<std::mutex> lock(s.mu);
  s.busybox = tag;
  return s.busybox;
}

std::string test_registry() {
  const char* r = std::getenv("LAUNCH_TEST_REGISTRY");
  REQUIRE_MESSAGE((r != nullptr && *r != '\0'),
                  "LAUNCH_TEST_REGISTRY is not set: start a registry v2 (scripts/services start "
                  "DIR) and export LAUNCH_TEST_REGISTRY=127.0.0.1:5000");
  return r;
}

std::string test_destination() { return test_registry() + "/launch-test-" + run_token(); }

void track_image(const std::string& reference) {
  auto& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  for (const auto& i : s.images) {
    if (i == reference) return;
  }
  s.images.push_back(reference);
}

const std::vector<std::string>& tracked_images() { return state().images; }

void remove_tracked_images() {
  launch::docker::Engine engine;
  for (auto it = state().images.rbegin(); it != state().images.rend(); ++it) {
    try {
      engine.remove_image(*it, true);
    } catch (const launch::Error&) {
      // already gone
    }
  }
}

std::vector<std::string> volume_names() {
  launch::docker::Engine engine;
  auto r = engine.call("GET", "/volumes");
  REQUIRE(r.status == 200);
  auto doc = launch::json::parse(r.body, "volumes");
  std::vector<std::string> out;
  if (doc.HasMember("Volumes") && doc["Volumes"].IsArray()) {
    for (const auto& v : doc["Volumes"].GetArray()) out.push_back(v["Name"].GetString());
  }
  return out;
}

const std::vector<std::string>& volumes_at_start() {
  run_token();
  return state().volumes;
}

namespace {

size_t collect(char* d, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(d, size * n);
  return size * n;
}

// One plain HTTP call to the test registry; returns the status.
long registry_call(const std::string& method, const std::string& url, std::string* body,
                   std::string* digest) {
  CURL* c = curl_easy_init();
  std::string headers;
  struct curl_slist* list = curl_slist_append(
      nullptr, "Accept: application/vnd.docker.distribution.manifest.v2+json");
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &headers);
  if (method == "HEAD") curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  if (method == "DELETE") curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
  curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(list);
  curl_easy_cleanup(c);
  if (digest != nullptr) {
    std::istringstream in(headers);
    std::string line;
    while (std::getline(in, line)) {
      std::string lower = line;
      for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (lower.rfind("docker-content-digest:", 0) == 0) {
        *digest = line.substr(line.find(':') + 1);
        digest->erase(0, digest->find_first_not_of(' '));
        while (!digest->empty() && (digest->back() == '\r' || digest->back() == ' ')) {
          digest->pop_back();
        }
      }
    }
  }
  return status;
}

std::vector<std::string> registry_tags(const std::string& base) {
  std::string body;
  std::vector<std::string> tags;
  long status = registry_call("GET", base + "/tags/list", &body, nullptr);
  // 404 NAME_UNKNOWN: the repository does not exist (any more). Anything
  // else, an unreachable registry above all, is not "no tags".
  if (status == 404) return tags;
  REQUIRE_MESSAGE(status == 200, "GET " << base << "/tags/list: HTTP " << status
                                        << (status == 0 ? " (registry unreachable)" : ""));
  auto doc = launch::json::parse(body, "tags");
  if (doc.HasMember("tags") && doc["tags"].IsArray()) {
    for (const auto& t : doc["tags"].GetArray()) tags.push_back(t.GetString());
  }
  return tags;
}

}  // namespace

int delete_registry_repository(const std::string& repository) {
  auto ref = launch::docker::parse_image_ref(repository + ":x");
  std::string base = "http://" + ref.registry + "/v2/" + ref.repository;
  for (const auto& tag : registry_tags(base)) {
    std::string body, digest;
    if (registry_call("HEAD", base + "/manifests/" + tag, &body, &digest) == 200 &&
        !digest.empty()) {
      long status = registry_call("DELETE", base + "/manifests/" + digest, &body, nullptr);
      CHECK_MESSAGE(status == 202, "DELETE " << base << "/manifests/" << digest << ": HTTP "
                                             << status << " " << body);
    }
  }
  return static_cast<int>(registry_tags(base).size());
}

launch::ResolvedJob make_job(const std::string& image, std::vector<std::string> argv,
                             const std::string& config) {
  static int counter = 0;
  launch::ResolvedJob job;
  job.queue = test_queue();
  job.item.id = fmt::format("item-{}-{}", run_token(), ++counter);
  job.item.queue = job.queue.ref();
  job.item.run_id = fmt::format("run{}", counter);
  job.item.spec.source.kind = launch::JobSource::Kind::image;
  job.item.spec.source.image = image;
  job.image = image;
  job.argv = std::move(argv);
  job.config = config;
  job.agent_id = "agent-test";
  job.log_dir = make_temp_dir("launch-runlog-");
  return job;
}

launch::RunStatus wait_end(launch::Run& run, std::chrono::seconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  launch::RunStatus s = run.poll();
  while (s.phase == launch::RunPhase::running && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    s = run.poll();
  }
  REQUIRE_MESSAGE(s.phase != launch::RunPhase::running, "the run did not end in time");
  return s;
}

}  // namespace dtest
