// The local-container runner: one Docker container per job, through the
// Engine API (docker/engine.hpp). Containers carry the item id, queue and
// agent as labels, so an agent that restarts finds them again.
#include "runner/local_container.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "builtins/factories.hpp"
#include "util/fs.hpp"
#include "util/json.hpp"
#include "core/secure.hpp"
#include "core/template_value.hpp"
#include "docker/engine.hpp"
#include "launch/error.hpp"
#include "launch/home.hpp"
#include "launch/log.hpp"

namespace launch {
namespace {

std::string opt_ctx(const char* key) { return fmt::format("local-container option \"{}\"", key); }

[[noreturn]] void bad_value(const char* key, const char* expected, const json::Value& v) {
  throw Error(Errc::invalid, fmt::format("{}: expected {}, got {} {}", opt_ctx(key), expected,
                                         json::type_name(v), json::dump(v)));
}

std::int64_t bytes_option(const char* key, const json::Value& v) {
  if (v.IsNumber()) {
    double d = v.GetDouble();
    if (d < 0) bad_value(key, "a size such as 512m or 2g", v);
    return static_cast<std::int64_t>(d);
  }
  if (!v.IsString()) bad_value(key, "a size such as 512m or 2g", v);
  return parse_byte_size(v.GetString(), opt_ctx(key));
}

// "soft:hard" or "n" -> (soft, hard).
std::pair<std::int64_t, std::int64_t> ulimit_values(const std::string& name,
                                                    const std::string& text) {
  auto parse = [&](const std::string& t) {
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(t.c_str(), &end, 10);
    if (t.empty() || *end != '\0' || errno != 0) {
      throw Error(Errc::invalid,
                  fmt::format("{}: ulimit \"{}\" has bad value \"{}\" (expected SOFT[:HARD])",
                              opt_ctx("ulimit"), name, text));
    }
    return static_cast<std::int64_t>(v);
  };
  auto colon = text.find(':');
  if (colon == std::string::npos) {
    auto v = parse(text);
    return {v, v};
  }
  return {parse(text.substr(0, colon)), parse(text.substr(colon + 1))};
}

void add_ulimit(json::Value& list, const std::string& name, const std::string& value,
                json::Allocator& a) {
  if (name.empty()) {
    throw Error(Errc::invalid, fmt::format("{}: a ulimit needs a name (e.g. nofile=1024:2048)",
                                           opt_ctx("ulimit")));
  }
  auto sh = ulimit_values(name, value);
  json::Value u(rapidjson::kObjectType);
  u.AddMember("Name", json::str(name, a), a);
  u.AddMember("Soft", sh.first, a);
  u.AddMember("Hard", sh.second, a);
  list.PushBack(u, a);
}

json::Value device_requests(const json::Value* gpus, const std::vector<int>& assigned,
                            json::Allocator& a) {
  json::Value req(rapidjson::kObjectType);
  req.AddMember("Driver", "", a);
  json::Value caps(rapidjson::kArrayType);
  json::Value gpu(rapidjson::kArrayType);
  gpu.PushBack("gpu", a);
  caps.PushBack(gpu, a);
  std::vector<std::string> ids;
  std::int64_t count = 0;
  if (!assigned.empty()) {
    // The agent's GPU pool handed these out: exactly those devices.
    for (int g : assigned) ids.push_back(std::to_string(g));
  } else if (gpus->IsInt64()) {
    count = gpus->GetInt64();
    if (count < 1) bad_value("gpus", "\"all\", a count of at least 1 or \"device=0,1\"", *gpus);
  } else if (gpus->IsString()) {
    std::string s = gpus->GetString();
    if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
    if (s == "all") {
      count = -1;
    } else if (s.rfind("device=", 0) == 0) {
      std::string rest = s.substr(7);
      std::size_t start = 0;
      while (start <= rest.size()) {
        auto comma = rest.find(',', start);
        std::string id = rest.substr(start, comma == std::string::npos ? std::string::npos
                                                                       : comma - start);
        if (!id.empty()) ids.push_back(id);
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
      if (ids.empty()) bad_value("gpus", "\"device=ID[,ID...]\"", *gpus);
    } else {
      char* end = nullptr;
      long long n = std::strtoll(s.c_str(), &end, 10);
      if (s.empty() || *end != '\0' || n < 1) {
        bad_value("gpus", "\"all\", a count of at least 1 or \"device=0,1\"", *gpus);
      }
      count = n;
    }
  } else {
    bad_value("gpus", "\"all\", a count of at least 1 or \"device=0,1\"", *gpus);
  }
  req.AddMember("Count", count, a);
  json::Value idv(rapidjson::kArrayType);
  for (const auto& id : ids) idv.PushBack(json::str(id, a), a);
  req.AddMember("DeviceIDs", idv, a);
  req.AddMember("Capabilities", caps, a);
  req.AddMember("Options", json::Value(rapidjson::kObjectType), a);
  json::Value list(rapidjson::kArrayType);
  list.PushBack(req, a);
  return list;
}

}  // namespace

std::int64_t parse_byte_size(const std::string& text, const std::string& field) {
  auto fail = [&]() -> std::int64_t {
    throw Error(Errc::invalid, fmt::format("{}: \"{}\" is not a size (e.g. 512m, 2g, 1048576)",
                                           field, text));
  };
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end == text.c_str() || errno != 0 || v < 0 || !std::isfinite(v)) {
    return fail();
  }
  std::string unit(end);
  for (auto& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (unit.size() == 2 && unit[1] == 'b') unit.pop_back();
  double mult = 1;
  if (unit.empty() || unit == "b") mult = 1;
  else if (unit == "k") mult = 1024.0;
  else if (unit == "m") mult = 1024.0 * 1024;
  else if (unit == "g") mult = 1024.0 * 1024 * 1024;
  else if (unit == "t") mult = 1024.0 * 1024 * 1024 * 1024;
  else return fail();
  return static_cast<std::int64_t>(v * mult);
}

ContainerPlan plan_container(const ResolvedJob& job) {
  auto config = json::parse_object(job.config, "local-container config");
  check_container_options(config);
  rapidjson::Document body(rapidjson::kObjectType);
  auto& a = body.GetAllocator();
  json::Value host(rapidjson::kObjectType);
  ContainerPlan plan;

  std::string image = job.image.empty() ? job.item.spec.source.image : job.image;
  if (image.empty()) {
    throw Error(Errc::invalid,
                fmt::format("item {}: local-container needs an image, and the job has none",
                            job.item.id));
  }

  std::map<std::string, std::string> env;
  const json::Value* gpus = nullptr;
  for (const auto& m : config.GetObject()) {
    std::string key = m.name.GetString();
    // The allow-list also takes Docker SDK spellings of three options.
    if (key == "shm_size") key = "shm-size";
    if (key == "ulimits") key = "ulimit";
    if (key == "pids_limit") key = "pids-limit";
    const json::Value& v = m.value;
    if (key == "env") {
      if (v.IsObject()) {
        for (const auto& e : v.GetObject()) {
          if (e.value.IsObject() || e.value.IsArray()) bad_value("env", "scalar values", e.value);
          env[e.name.GetString()] = json::scalar_text(e.value);
        }
      } else if (v.IsArray()) {
        for (const auto& e : v.GetArray()) {
          if (!e.IsString()) bad_value("env", "\"KEY=VALUE\" strings", e);
          std::string s = e.GetString();
          auto eq = s.find('=');
          if (eq == std::string::npos || eq == 0) bad_value("env", "\"KEY=VALUE\" strings", e);
          env[s.substr(0, eq)] = s.substr(eq + 1);
        }
      } else {
        bad_value("env", "an object or a list of \"KEY=VALUE\"", v);
      }
    } else if (key == "gpus") {
      gpus = &v;
    } else if (key == "cpus") {
      if (!v.IsNumber() && !v.IsString()) bad_value("cpus", "a number of CPUs", v);
      double cpus = v.IsNumber() ? v.GetDouble() : std::strtod(v.GetString(), nullptr);
      if (!(cpus > 0)) bad_value("cpus", "a number of CPUs above 0", v);
      host.AddMember("NanoCpus", static_cast<std::int64_t>(std::llround(cpus * 1e9)), a);
    } else if (key == "memory") {
      host.AddMember("Memory", bytes_option("memory", v), a);
    } else if (key == "shm-size") {
      host.AddMember("ShmSize", bytes_option("shm-size", v), a);
    } else if (key == "pids-limit") {
      if (!v.IsInt64()) bad_value("pids-limit", "an integer", v);
      host.AddMember("PidsLimit", v.GetInt64(), a);
    } else if (key == "ulimit") {
      json::Value list(rapidjson::kArrayType);
      if (v.IsArray()) {
        for (const auto& e : v.GetArray()) {
          if (!e.IsString()) bad_value("ulimit", "\"NAME=SOFT[:HARD]\" strings", e);
          std::string s = e.GetString();
          auto eq = s.find('=');
          if (eq == std::string::npos) bad_value("ulimit", "\"NAME=SOFT[:HARD]\" strings", e);
          add_ulimit(list, s.substr(0, eq), s.substr(eq + 1), a);
        }
      } else if (v.IsObject()) {
        for (const auto& e : v.GetObject()) {
          if (!e.value.IsString() && !e.value.IsInt64()) {
            bad_value("ulimit", "\"SOFT[:HARD]\" values", e.value);
          }
          add_ulimit(list, e.name.GetString(), json::scalar_text(e.value), a);
        }
      } else {
        bad_value("ulimit", "a list of \"NAME=SOFT[:HARD]\" or an object", v);
      }
      host.AddMember("Ulimits", list, a);
    } else if (key == "workdir") {
      if (!v.IsString()) bad_value("workdir", "a path", v);
      body.AddMember("WorkingDir", json::str(v.GetString(), a), a);
    } else if (key == "name") {
      if (!v.IsString()) bad_value("name", "a container name", v);
      plan.name = v.GetString();
    } else if (key == "platform") {
      if (!v.IsString()) bad_value("platform", "a platform such as linux/amd64", v);
      plan.platform = v.GetString();
    } else {
      throw Error(Errc::internal,
                  fmt::format("local-container option \"{}\" is allowed but not mapped", key));
    }
  }
  if (gpus != nullptr || !job.gpus.empty()) {
    host.AddMember("DeviceRequests", device_requests(gpus, job.gpus, a), a);
  }

  // The job's environment wins over the config's.
  for (const auto& kv : job.env) env[kv.first] = kv.second;
  json::Value envv(rapidjson::kArrayType);
  for (const auto& kv : env) envv.PushBack(json::str(kv.first + "=" + kv.second, a), a);

  body.AddMember("Image", json::str(image, a), a);
  if (!job.argv.empty()) {
    // The job's argv replaces the image's entry point and command.
    json::Value ep(rapidjson::kArrayType);
    ep.PushBack(json::str(job.argv[0], a), a);
    body.AddMember("Entrypoint", ep, a);
    body.AddMember("Cmd", json::string_array({job.argv.begin() + 1, job.argv.end()}, a), a);
  }
  body.AddMember("Env", envv, a);
  json::Value labels(rapidjson::kObjectType);
  labels.AddMember(json::Value(kLabelItemId, a), json::str(job.item.id, a), a);
  labels.AddMember(json::Value(kLabelQueue, a), json::str(job.queue.ref().str(), a), a);
  labels.AddMember(json::Value(kLabelAgent, a), json::str(job.agent_id, a), a);
  labels.AddMember(json::Value(kLabelRunId, a), json::str(job.item.run_id, a), a);
  body.AddMember("Labels", labels, a);
  body.AddMember("AttachStdin", false, a);
  body.AddMember("AttachStdout", false, a);
  body.AddMember("AttachStderr", false, a);
  body.AddMember("Tty", false, a);
  body.AddMember("OpenStdin", false, a);
  // No NetworkMode: a job gets the engine's default network, as `docker run`
  // gives it (training jobs fetch data and report metrics). The allow-list
  // has no network option, so a job cannot ask for the host's network; an
  // engine started with --bridge=none (as scripts/services does for the
  // tests) gives jobs their own loopback only.
  body.AddMember("HostConfig", host, a);
  plan.spec = json::dump(body);
  return plan;
}

namespace {

class ContainerRun : public Run {
 public:
  ContainerRun(const docker::Engine& engine, std::string id, const std::string& log_dir,
               bool truncate_logs)
      : engine_(engine), id_(std::move(id)) {
    if (pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
      throw Error(Errc::io, fmt::format("pipe: {}", std::strerror(errno)));
    }
    if (!log_dir.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(log_dir, ec);
      int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (truncate_logs ? O_TRUNC : O_APPEND);
      out_fd_ = open((log_dir + "/stdout.log").c_str(), flags, 0644);
      err_fd_ = open((log_dir + "/stderr.log").c_str(), flags, 0644);
      if (out_fd_ < 0 || err_fd_ < 0) {
        int e = errno;
        close_fds();
        throw Error(Errc::io, fmt::format("item logs in \"{}\": {}", log_dir, std::strerror(e)));
      }
    }
    follower_ = std::thread([this] { follow(); });
  }

  ~ContainerRun() override {
    abort_ = true;
    if (follower_.joinable()) follower_.join();
    close_fds();
    if (!final_) {
      // Dropped before its end (a lost lease, an agent going away): the
      // container must not outlive its handle. Only a killed agent leaves
      // containers behind, and its restart finds them by label.
      try {
        engine_.remove_container(id_, true);
      } catch (const Error& e) {
        if (e.code() != Errc::not_found) {
          log(LogLevel::warn, fmt::format("container {}: remove: {}", id_, e.what()));
        }
      }
    }
  }

  std::string id() const override { return id_; }

  int wait_fd() const override { return wake_[0]; }

  RunStatus poll() override {
    if (final_) return *final_;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!done_) {
        escalate_cancel();
        return RunStatus{};
      }
    }
    follower_.join();
    final_ = finish();
    return *final_;
  }

  void cancel(std::chrono::milliseconds grace) override {
    if (final_ || cancel_requested_) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (done_) return;  // it ended on its own: report that, not a cancel
    }
    cancel_requested_ = true;
    deadline_ = std::chrono::steady_clock::now() + grace;
    send_signal(grace.count() <= 0 ? "SIGKILL" : stop_signal());
    if (grace.count() <= 0) killed_ = true;
  }

 private:
  void close_fds() {
    for (int* fd : {&out_fd_, &err_fd_, &wake_[0], &wake_[1]}) {
      if (*fd >= 0) close(*fd);
      *fd = -1;
    }
  }

  std::string stop_signal() {
    try {
      auto doc = engine_.inspect_container(id_);
      if (doc) {
        auto cfg = doc->FindMember("Config");
        if (cfg != doc->MemberEnd() && cfg->value.IsObject()) {
          std::string s = json::get_string(cfg->value, "StopSignal", "container config");
          if (!s.empty()) return s;
        }
      }
    } catch (const Error&) {
    }
    return "SIGTERM";
  }

  void send_signal(const std::string& signal) {
    try {
      engine_.kill_container(id_, signal);
    } catch (const Error& e) {
      // Not running any more (409) or gone (404): the follower sees the end.
      if (e.code() != Errc::state && e.code() != Errc::not_found) throw;
    }
  }

  void escalate_cancel() {
    if (cancel_requested_ && !killed_ && std::chrono::steady_clock::now() >= deadline_) {
      killed_ = true;
      send_signal("SIGKILL");
    }
  }


  // On its own thread: copies the container's output into the item's logs
  // until it ends, then waits for its exit code and wakes the agent.
  void follow() {
    docker::Engine engine(engine_);
    engine.set_abort_flag(&abort_);
    std::string error;
    docker::WaitResult result;
    try {
      engine.container_logs(id_, true, [this](int stream, const char* d, std::size_t n) {
        // A full disk must not stop the job.
        util::write_fully(stream == 2 ? err_fd_ : out_fd_, d, n);
      });
    } catch (const Error& e) {
      if (abort_) return;  // the Run is going away; the container stays
      log(LogLevel::warn, fmt::format("container {}: log stream ended: {}", id_, e.what()));
    }
    try {
      result = engine.wait_container(id_);
    } catch (const Error& e) {
      if (abort_) return;
      error = e.what();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      wait_ = result;
      wait_error_ = error;
      done_ = true;
    }
    char b = 1;
    ssize_t ignored = ::write(wake_[1], &b, 1);
    (void)ignored;
  }

  // The container has stopped: read its end, then remove it.
  RunStatus finish() {
    RunStatus s;
    bool oom = false;
    std::string state_error;
    try {
      auto doc = engine_.inspect_container(id_);
      if (doc) {
        auto st = doc->FindMember("State");
        if (st != doc->MemberEnd() && st->value.IsObject()) {
          oom = json::get_bool(st->value, "OOMKilled", "container state");
          state_error = json::get_string(st->value, "Error", "container state");
        }
      }
    } catch (const Error& e) {
      log(LogLevel::warn, fmt::format("container {}: inspect: {}", id_, e.what()));
    }
    try {
      engine_.remove_container(id_, true);
    } catch (const Error& e) {
      if (e.code() != Errc::not_found) {
        log(LogLevel::warn, fmt::format("container {}: remove: {}", id_, e.what()));
      }
    }
    if (!wait_error_.empty()) {
      s.phase = cancel_requested_ ? RunPhase::stopped : RunPhase::failed;
      s.message = wait_error_;
      return s;
    }
    s.exit_code = wait_.exit_code;
    if (cancel_requested_) {
      s.phase = RunPhase::stopped;
      s.message = "cancelled";
    } else if (wait_.exit_code == 0) {
      s.phase = RunPhase::finished;
    } else {
      s.phase = RunPhase::failed;
      if (oom) {
        s.message = fmt::format("container {} ran out of memory (exit code {})", id_,
                                wait_.exit_code);
      } else if (!state_error.empty() || !wait_.error.empty()) {
        s.message = state_error.empty() ? wait_.error : state_error;
      } else {
        s.message = fmt::format("exit code {}", wait_.exit_code);
      }
    }
    return s;
  }

  docker::Engine engine_;  // the agent thread's connection
  std::string id_;
  int out_fd_ = -1;
  int err_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::thread follower_;
  std::atomic<bool> abort_{false};

  std::mutex mu_;  // guards the follower's results
  bool done_ = false;
  docker::WaitResult wait_;
  std::string wait_error_;

  bool cancel_requested_ = false;
  bool killed_ = false;
  std::chrono::steady_clock::time_point deadline_;
  std::optional<RunStatus> final_;
};

class LocalContainerRunner : public Runner {
 public:
  explicit LocalContainerRunner(const RunnerContext& context) : context_(context) {}

  bool needs_image() const override { return true; }

  // The allow-list on the keys as they are; the values' shapes once the
  // placeholders, whose values come at push, are set aside.
  void check_config(const std::string& config_json) const override {
    json::Document d = json::parse_object(config_json, "local-container config");
    check_container_options(d);
    tmpl::drop_placeholders(d);
    ResolvedJob job;
    job.image = "image-checked-at-submit";
    job.config = json::dump(d);
    plan_container(job);
  }

  // One Engine (one http::Client, one connection) serves every run of this
  // runner, and a Client belongs to one thread: calls stay on the agent's.
  bool blocking() const override { return false; }

  std::unique_ptr<Run> submit(const ResolvedJob& job) override {
    ContainerPlan plan = plan_container(job);
    // Containers of an earlier attempt of this item (an agent that was
    // lost) must not run beside this one.
    for (const auto& c : engine_.list_containers({{kLabelItemId, job.item.id}})) {
      log(LogLevel::info, fmt::format("item {}: removing container {} of an earlier attempt",
                                      job.item.id, c.id));
      remove_quietly(c.id);
    }
    std::string id = engine_.create_container(plan.spec, plan.name, plan.platform);
    try {
      // Started before it is followed: following a container that has not
      // started yet would see it as already ended.
      engine_.start_container(id);
      return std::make_unique<ContainerRun>(engine_, id, job.log_dir, false);
    } catch (...) {
      remove_quietly(id);
      throw;
    }
  }

  std::unique_ptr<Run> reattach(const QueueItem& item, const QueueDef&) override {
    auto found = engine_.list_containers({{kLabelItemId, item.id}});
    if (found.empty()) return nullptr;
    // Newest first; a running one is the live attempt.
    const docker::ContainerSummary* pick = &found.front();
    for (const auto& c : found) {
      if (c.state == "running") {
        pick = &c;
        break;
      }
    }
    for (const auto& c : found) {
      if (&c != pick) remove_quietly(c.id);
    }
    // An agent lost between create and start: the job never ran, run it now.
    if (pick->state == "created") engine_.start_container(pick->id);
    std::string log_dir =
        context_.launch_home.empty() ? "" : run_directory(context_.launch_home, item.id);
    // The whole log is read again from the container, so the files restart.
    return std::make_unique<ContainerRun>(engine_, pick->id, log_dir, true);
  }

 private:
  void remove_quietly(const std::string& id) {
    try {
      engine_.remove_container(id, true);
    } catch (const Error& e) {
      log(LogLevel::warn, fmt::format("container {}: remove: {}", id, e.what()));
    }
  }

  RunnerContext context_;
  docker::Engine engine_;
};

}  // namespace

std::unique_ptr<Runner> make_local_container_runner(const RunnerContext& context) {
  return std::make_unique<LocalContainerRunner>(context);
}

}  // namespace launch
