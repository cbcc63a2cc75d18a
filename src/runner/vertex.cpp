// The gcp-vertex runner: a job becomes a Vertex AI CustomJob (created from
// the queue config, W&B's vertex resource_args shape), followed with GET on
// the job and its Cloud Logging entries, stopped with :cancel. The job
// carries the item id and run id in labels, so an agent that restarts
// finds it again by label. See docs/gcp.md.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include <fmt/format.h>

#include "builtins/factories.hpp"
#include "core/resolve.hpp"
#include "http/client.hpp"
#include "http/gcp_credentials.hpp"
#include "launch/error.hpp"
#include "launch/home.hpp"
#include "launch/log.hpp"
#include "util/fs.hpp"
#include "util/json.hpp"
#include "util/limits.hpp"

namespace launch {

namespace {

constexpr const char* kWhat = "gcp-vertex config";

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

// ---- the queue config

// The config's keys, level by level (W&B's vertex runner reads `spec` and
// `run`; launch adds project and region at the top). The job-spec options
// may be given in either `spec` or `run` (`run` wins).
const std::set<std::string>& top_keys() {
  static const std::set<std::string> k = {"project", "region", "location", "spec", "run"};
  return k;
}
const std::set<std::string>& run_keys() {
  static const std::set<std::string> k = {
      "timeout",          "service_account",         "network",
      "enable_web_access", "restart_job_on_worker_restart", "tensorboard",
      "experiment",       "experiment_run",          "reserved_ip_ranges",
      "enable_dashboard_access", "persistent_resource_id"};
  return k;
}
const std::set<std::string>& spec_keys() {
  static const std::set<std::string> k = [] {
    std::set<std::string> s = {"worker_pool_specs", "staging_bucket", "base_output_dir",
                               "encryption_spec_key_name", "labels"};
    s.insert(run_keys().begin(), run_keys().end());
    return s;
  }();
  return k;
}

// lowerCamelCase (the proto JSON names) as snake_case (the proto field
// names, which W&B's configs use); snake_case unchanged.
std::string snake_case(const std::string& key) {
  std::string out;
  for (char ch : key) {
    if (std::isupper(static_cast<unsigned char>(ch))) {
      out += '_';
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    } else {
      out += ch;
    }
  }
  return out;
}

// Every object key converted, but for labels (the user's keys).
void convert_keys(json::Value& v, json::Allocator& a, const std::string& path) {
  if (v.IsArray()) {
    for (auto& e : v.GetArray()) convert_keys(e, a, path + "[]");
    return;
  }
  if (!v.IsObject()) return;
  json::Value out(rapidjson::kObjectType);
  for (auto& m : v.GetObject()) {
    std::string k = snake_case(m.name.GetString());
    if (k != "labels") convert_keys(m.value, a, path + k + ".");
    if (out.HasMember(k.c_str())) {
      throw Error(Errc::invalid, fmt::format("{}: {}{} is given twice (as {:?} and in another "
                                             "case)",
                                             kWhat, path, k, m.name.GetString()));
    }
    out.AddMember(json::str(k, a), m.value, a);
  }
  v = out;
}

json::Document normalized_config(const std::string& config_json) {
  // W&B's {"vertex": {...}} / {"gcp-vertex": {...}} wrapper was taken off
  // before the config got here (core/resolve.hpp's merge_resource_args).
  json::Document doc = json::parse_object(config_json, kWhat);
  convert_keys(doc, doc.GetAllocator(), "");
  return doc;
}

bool is_placeholder(const json::Value& v) {
  return v.IsString() && std::string(v.GetString()).find("{{") != std::string::npos;
}

const json::Value* member(const json::Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  return it == obj.MemberEnd() || it->value.IsNull() ? nullptr : &it->value;
}

[[noreturn]] void refuse(const std::string& path, const std::string& why) {
  throw Error(Errc::invalid, fmt::format("{}: {} {}", kWhat, path, why));
}

void known_keys(const json::Value& obj, const std::set<std::string>& keys,
                const std::string& path) {
  for (const auto& m : obj.GetObject()) {
    if (keys.count(m.name.GetString()) == 0) {
      refuse(path + m.name.GetString(), "is not a gcp-vertex option (see docs/gcp.md)");
    }
  }
}

const json::Value* object_at(const json::Value& obj, const char* key, const std::string& path,
                             bool required) {
  const json::Value* v = member(obj, key);
  if (v == nullptr) {
    if (required) refuse(path + key, "is required");
    return nullptr;
  }
  if (!v->IsObject()) refuse(path + key, "must be an object, not " + json::dump(*v));
  return v;
}

void string_at(const json::Value& obj, const char* key, const std::string& path, bool required) {
  const json::Value* v = member(obj, key);
  if (v == nullptr || (v->IsString() && v->GetStringLength() == 0)) {
    if (required) refuse(path + key, "is required");
    return;
  }
  if (!v->IsString()) refuse(path + key, "must be a string, not " + json::dump(*v));
}

// An int64 as the proto JSON mapping has it: a number or a string of digits.
bool positive_integer(const json::Value& v) {
  if (v.IsInt64()) return v.GetInt64() > 0;
  if (!v.IsString() || v.GetStringLength() == 0) return false;
  std::string s = v.GetString();
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); }) &&
         s.find_first_not_of('0') != std::string::npos;
}

// "timeout": seconds as a number or a string ("3600", "3600s") -> "3600s".
std::string duration_text(const json::Value& v, const std::string& path) {
  if (is_placeholder(v)) return v.GetString();
  if (positive_integer(v)) {
    return (v.IsString() ? std::string(v.GetString()) : std::to_string(v.GetInt64())) + "s";
  }
  if (v.IsString()) {
    std::string s = v.GetString();
    if (s.size() > 1 && s.back() == 's') {
      std::string digits = s.substr(0, s.size() - 1);
      auto dot = digits.find('.');
      std::string whole = digits.substr(0, dot);
      std::string frac = dot == std::string::npos ? "" : digits.substr(dot + 1);
      auto all_digits = [](const std::string& t) {
        return std::all_of(t.begin(), t.end(), [](unsigned char c) { return std::isdigit(c); });
      };
      if (!whole.empty() && all_digits(whole) && all_digits(frac) && frac.size() <= 9 &&
          (dot == std::string::npos || !frac.empty())) {
        return s;
      }
    }
  }
  refuse(path, "must be a number of seconds (3600, \"3600\" or \"3600s\"), not " + json::dump(v));
}

// What creating a CustomJob needs and launch does not fill in itself.
void check_shape(const json::Value& c) {
  known_keys(c, top_keys(), "");
  string_at(c, "project", "", false);
  string_at(c, "region", "", false);
  string_at(c, "location", "", false);
  if (member(c, "region") != nullptr && member(c, "location") != nullptr) {
    refuse("region", "and location are the same option; give one");
  }
  const json::Value& spec = *object_at(c, "spec", "", true);
  known_keys(spec, spec_keys(), "spec.");
  const json::Value* run = object_at(c, "run", "", false);
  if (run != nullptr) known_keys(*run, run_keys(), "run.");

  const json::Value* pools = member(spec, "worker_pool_specs");
  if (pools == nullptr) refuse("spec.worker_pool_specs", "is required");
  if (!pools->IsArray() || pools->Empty()) {
    refuse("spec.worker_pool_specs", "must be a non-empty array of worker pools, not " +
                                         json::dump(*pools));
  }
  for (rapidjson::SizeType i = 0; i < pools->Size(); ++i) {
    const json::Value& pool = (*pools)[i];
    std::string path = fmt::format("spec.worker_pool_specs[{}].", i);
    if (!pool.IsObject()) refuse(path.substr(0, path.size() - 1), "must be an object");
    const json::Value* ms = object_at(pool, "machine_spec", path, true);
    string_at(*ms, "machine_type", path + "machine_spec.", true);
    const json::Value* rc = member(pool, "replica_count");
    if (rc == nullptr) refuse(path + "replica_count", "is required");
    if (!is_placeholder(*rc) && !positive_integer(*rc)) {
      refuse(path + "replica_count", "must be a positive integer, not " + json::dump(*rc));
    }
    if (member(pool, "python_package_spec") != nullptr) {
      refuse(path + "python_package_spec", "is not supported: launch runs the job's image "
                                            "(give container_spec)");
    }
    const json::Value* cs = object_at(pool, "container_spec", path, true);
    string_at(*cs, "image_uri", path + "container_spec.", false);
    if (const json::Value* e = member(*cs, "env")) {
      if (!e->IsArray()) refuse(path + "container_spec.env", "must be an array of {name, value}");
      for (const auto& kv : e->GetArray()) {
        if (!kv.IsObject() || member(kv, "name") == nullptr || !kv["name"].IsString()) {
          refuse(path + "container_spec.env", "entries must be {\"name\": ..., \"value\": ...}, "
                                              "not " + json::dump(kv));
        }
      }
    }
  }
  const json::Value* bucket = member(spec, "staging_bucket");
  const json::Value* base = member(spec, "base_output_dir");
  if (bucket == nullptr && base == nullptr) {
    refuse("spec.staging_bucket", "is required (a gs:// URI; or give spec.base_output_dir)");
  }
  for (const char* k : {"staging_bucket", "base_output_dir"}) {
    string_at(spec, k, "spec.", false);
    const json::Value* v = member(spec, k);
    if (v != nullptr && !is_placeholder(*v) && std::string(v->GetString()).rfind("gs://", 0) != 0) {
      refuse(std::string("spec.") + k, fmt::format("{:?} must be a gs:// URI", v->GetString()));
    }
  }
  for (const json::Value* level : {&spec, run}) {
    if (level == nullptr) continue;
    std::string path = level == &spec ? "spec." : "run.";
    if (const json::Value* t = member(*level, "timeout")) duration_text(*t, path + "timeout");
    for (const char* k : {"service_account", "network", "tensorboard", "experiment",
                          "experiment_run", "persistent_resource_id"}) {
      string_at(*level, k, path, false);
    }
    for (const char* k : {"enable_web_access", "restart_job_on_worker_restart",
                          "enable_dashboard_access"}) {
      const json::Value* b = member(*level, k);
      if (b != nullptr && !b->IsBool() && !is_placeholder(*b)) {
        refuse(path + k, "must be true or false, not " + json::dump(*b));
      }
    }
  }
  string_at(spec, "encryption_spec_key_name", "spec.", false);
  if (const json::Value* l = member(spec, "labels")) {
    if (!l->IsObject()) refuse("spec.labels", "must be an object of strings");
    for (const auto& m : l->GetObject()) {
      if (!m.value.IsString()) {
        refuse(std::string("spec.labels.") + m.name.GetString(), "must be a string");
      }
    }
  }
}

// A label value as Google takes it: lowercase letters, digits, '-' and
// '_', at most 63 characters.
std::string label_value(const std::string& s) {
  std::string out;
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(std::tolower(static_cast<unsigned char>(ch)));
    out += (std::isalnum(c) || c == '-' || c == '_') && c < 0x80 ? static_cast<char>(c) : '-';
  }
  return out.substr(0, limits::kGcpMaxLabel);
}

// "launch-<run id>-": every CustomJob of one run is called so.
std::string display_prefix(const QueueItem& item) {
  std::string run = item.run_id.empty() ? item.id : item.run_id;
  std::size_t room = limits::kVertexMaxDisplayName - 7 - 24;  // "launch-", "-A-R"
  return "launch-" + run.substr(0, room) + "-";
}

std::string display_name(const QueueItem& item) {
  return display_prefix(item) + std::to_string(item.attempt) + "-" +
         std::to_string(item.resume_count);
}

std::string run_label(const QueueItem& item) {
  return label_value(item.run_id.empty() ? item.id : item.run_id);
}

// ---- the GCP side

std::string base_url(const char* override_env, const std::string& fallback) {
  std::string url = env(override_env);
  if (url.empty()) url = fallback;
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

// Where one queue's jobs go: credentials (shared by the runner's runs),
// the project, the region and the two APIs' base URLs.
struct Target {
  std::shared_ptr<http::GcpCredentials> credentials;
  std::string project;
  std::string region;
  std::string aiplatform;  // "https://us-central1-aiplatform.googleapis.com"
  std::string logging;     // "https://logging.googleapis.com"

  std::string parent() const {
    return fmt::format("projects/{}/locations/{}", project, region);
  }
};

http::Response call(const Target& t, const std::string& method, const std::string& url,
                    const std::string& body = "") {
  http::Request r;
  r.method = method;
  r.url = url;
  r.auth = t.credentials;
  if (method == "POST") {
    r.headers.set("Content-Type", "application/json");
    r.body = body.empty() ? "{}" : body;
  }
  http::ClientOptions co;
  co.timeout_ms = 60000;
  http::Client client(co);
  return client.send(r);
}

json::Document call_json(const Target& t, const std::string& method, const std::string& url,
                         const std::string& body = "") {
  http::Response resp = call(t, method, url, body);
  return json::parse_object(resp.body.empty() ? "{}" : resp.body,
                            fmt::format("{} {}", method, url));
}

constexpr int kMaxTransientFailures = 10;

bool transient(const http::HttpError& e) {
  return e.status() == 0 || e.status() == 429 || e.status() >= 500;
}

// "2026-12-03T08:30:01.5Z" with its fraction padded to nanoseconds, so
// times compare as text.
std::string sortable_time(const std::string& t) {
  auto dot = t.find('.');
  auto z = t.find_first_of("Z+-", 19);
  if (z == std::string::npos) return t;
  std::string frac = dot == std::string::npos || dot > z ? "" : t.substr(dot + 1, z - dot - 1);
  std::string whole = t.substr(0, dot == std::string::npos || dot > z ? z : dot);
  frac.resize(9, '0');
  return whole + "." + frac + t.substr(z);
}

class VertexRun : public Run {
 public:
  VertexRun(Target target, std::string name, const std::string& log_dir, bool truncate_logs)
      : t_(std::move(target)), name_(std::move(name)) {
    job_id_ = name_.substr(name_.rfind('/') + 1);
    if (!log_dir.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(log_dir, ec);
      int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (truncate_logs ? O_TRUNC : O_APPEND);
      out_fd_ = open((log_dir + "/stdout.log").c_str(), flags, 0644);
      if (out_fd_ < 0) {
        throw Error(Errc::io, fmt::format("item logs in \"{}\": {}", log_dir, std::strerror(errno)));
      }
    }
  }

  ~VertexRun() override {
    if (!final_ && !ending_ && !cancelled_) {
      // Dropped before its end (a lost lease): the job must not go on
      // without anyone following it.
      try {
        cancel_job();
      } catch (const Error& e) {
        log(LogLevel::warn, fmt::format("vertex job {}: cancel: {}", name_, e.what()));
      }
    }
    if (out_fd_ >= 0) close(out_fd_);
  }

  std::string id() const override { return name_; }

  RunStatus poll() override {
    if (final_) return *final_;
    auto now = std::chrono::steady_clock::now();
    if (now < next_poll_) return RunStatus{};
    if (ending_) return drain(now);
    next_poll_ = now + interval_;
    interval_ = std::min(interval_ * 3 / 2, std::chrono::milliseconds(20000));
    json::Document job;
    try {
      job = call_json(t_, "GET", t_.aiplatform + "/v1/" + name_);
      failures_ = 0;
    } catch (const http::HttpError& e) {
      // Throttling, a 5xx or a dropped connection must not fail a job that
      // is still running: asked again at the next poll, up to a point.
      if (!transient(e) || ++failures_ > kMaxTransientFailures) throw;
      log(LogLevel::warn, fmt::format("vertex job {}: {} (asking again)", name_, e.what()));
      return RunStatus{};
    }
    copy_logs_or_warn();

    std::string what = "vertex job " + name_;
    std::string state = json::get_string(job, "state", what);
    std::string reason;
    auto err = job.FindMember("error");
    if (err != job.MemberEnd() && err->value.IsObject()) {
      reason = json::get_string(err->value, "message", what + ": error");
    }
    RunStatus st;
    if (state == "JOB_STATE_SUCCEEDED") {
      st.phase = RunPhase::finished;
      st.exit_code = 0;
    } else if (state == "JOB_STATE_FAILED" || state == "JOB_STATE_PARTIALLY_SUCCEEDED") {
      st.phase = RunPhase::failed;
      st.message = fmt::format("{} failed: {}", what, reason.empty() ? state : reason);
    } else if (state == "JOB_STATE_CANCELLED") {
      if (cancelled_) {
        st.phase = RunPhase::stopped;
      } else {
        st.phase = RunPhase::failed;
        st.message = fmt::format("{} was cancelled outside launch", what);
      }
    } else if (state == "JOB_STATE_EXPIRED") {
      st.phase = RunPhase::failed;
      st.message = fmt::format("{} expired{}", what, reason.empty() ? "" : ": " + reason);
    } else if (state == "JOB_STATE_QUEUED" || state == "JOB_STATE_PENDING" ||
               state == "JOB_STATE_RUNNING" || state == "JOB_STATE_CANCELLING" ||
               state == "JOB_STATE_PAUSED" || state == "JOB_STATE_UPDATING" ||
               state == "JOB_STATE_UNSPECIFIED") {
      return RunStatus{};
    } else {
      throw Error(Errc::io, fmt::format("{}: unknown state {:?}", what, state));
    }
    // Cloud Logging shows entries some seconds after they are written:
    // the run ends once its log has been quiet for a while.
    ending_ = st;
    ended_at_ = last_new_ = now;
    next_poll_ = now + std::chrono::milliseconds(limits::kVertexLogDrainPollMs);
    return RunStatus{};
  }

  void cancel(std::chrono::milliseconds) override {
    if (final_ || ending_ || cancelled_) return;
    cancelled_ = true;
    cancel_job();
    next_poll_ = std::chrono::steady_clock::now();
    interval_ = std::chrono::milliseconds(500);
  }

 private:
  void cancel_job() {
    try {
      call(t_, "POST", t_.aiplatform + "/v1/" + name_ + ":cancel");
    } catch (const http::HttpError& e) {
      // FAILED_PRECONDITION: the job has ended already, which poll() reports.
      if (e.status() != 400) throw;
    }
  }

  RunStatus drain(std::chrono::steady_clock::time_point now) {
    next_poll_ = now + std::chrono::milliseconds(limits::kVertexLogDrainPollMs);
    if (copy_logs_or_warn() > 0) last_new_ = now;
    if (now - last_new_ < std::chrono::milliseconds(limits::kVertexLogQuietMs) &&
        now - ended_at_ < std::chrono::milliseconds(limits::kVertexLogDrainMaxMs)) {
      return RunStatus{};
    }
    final_ = ending_;
    return *final_;
  }

  // How many lines it copied; a failure is a warning (the job goes on).
  std::size_t copy_logs_or_warn() {
    try {
      return copy_logs();
    } catch (const Error& e) {
      log(LogLevel::warn, fmt::format("vertex job {}: Cloud Logging: {}", name_, e.what()));
      return 0;
    }
  }

  void write_line(const std::string& line) {
    if (out_fd_ < 0) return;
    std::string s = line + "\n";
    util::write_fully(out_fd_, s.data(), s.size());  // a full disk must not stop the job
  }

  // The job's entries (resource ml_job, label job_id) in time order, from
  // where the last poll left off: entries at the last time seen are asked
  // again and skipped by insertId.
  std::size_t copy_logs() {
    std::size_t copied = 0;
    std::string token;
    for (int page = 0; page < limits::kCloudLoggingMaxPagesPerPoll; ++page) {
      rapidjson::Document q(rapidjson::kObjectType);
      auto& a = q.GetAllocator();
      json::Value names(rapidjson::kArrayType);
      names.PushBack(json::str("projects/" + t_.project, a), a);
      q.AddMember("resourceNames", names, a);
      std::string filter =
          fmt::format("resource.type=\"ml_job\" AND resource.labels.job_id=\"{}\"", job_id_);
      if (!last_time_.empty()) filter += fmt::format(" AND timestamp>=\"{}\"", last_time_raw_);
      q.AddMember("filter", json::str(filter, a), a);
      q.AddMember("orderBy", "timestamp asc", a);
      q.AddMember("pageSize", limits::kCloudLoggingPageSize, a);
      if (!token.empty()) q.AddMember("pageToken", json::str(token, a), a);
      json::Document d = call_json(t_, "POST", t_.logging + "/v2/entries:list", json::dump(q));
      std::string what = "Cloud Logging entries:list";
      auto entries = d.FindMember("entries");
      if (entries != d.MemberEnd() && entries->value.IsArray()) {
        for (const auto& e : entries->value.GetArray()) {
          std::string raw = json::get_string(e, "timestamp", what);
          std::string ts = sortable_time(raw);
          std::string insert_id = json::get_string(e, "insertId", what);
          if (ts < last_time_) continue;
          if (ts == last_time_ && seen_.count(insert_id)) continue;
          if (ts > last_time_) {
            last_time_ = ts;
            last_time_raw_ = raw;
            seen_.clear();
          }
          seen_.insert(insert_id);
          write_line(payload(e));
          ++copied;
        }
      }
      token = json::get_string(d, "nextPageToken", what);
      if (token.empty()) break;
    }
    return copied;
  }

  static std::string payload(const json::Value& e) {
    auto text = e.FindMember("textPayload");
    if (text != e.MemberEnd() && text->value.IsString()) return text->value.GetString();
    auto j = e.FindMember("jsonPayload");
    if (j != e.MemberEnd() && j->value.IsObject()) {
      auto m = j->value.FindMember("message");
      if (m != j->value.MemberEnd() && m->value.IsString()) return m->value.GetString();
      return json::dump(j->value);
    }
    return "";
  }

  Target t_;
  std::string name_;    // projects/P/locations/R/customJobs/ID
  std::string job_id_;  // ID
  int out_fd_ = -1;
  std::string last_time_;      // sortable
  std::string last_time_raw_;  // as Cloud Logging wrote it
  std::set<std::string> seen_;  // insertIds at last_time_
  std::optional<RunStatus> final_;
  std::optional<RunStatus> ending_;  // the job has ended; its log is still read
  std::chrono::steady_clock::time_point ended_at_{};
  std::chrono::steady_clock::time_point last_new_{};  // the last poll that copied a line
  bool cancelled_ = false;
  int failures_ = 0;  // transient GET failures in a row
  std::chrono::steady_clock::time_point next_poll_{};
  std::chrono::milliseconds interval_{1000};
};

class VertexRunner : public Runner {
 public:
  explicit VertexRunner(RunnerContext context) : context_(std::move(context)) {}

  bool needs_image() const override { return true; }

  void check_config(const std::string& config_json) const override {
    check_shape(normalized_config(config_json));
  }

  std::unique_ptr<Run> submit(const ResolvedJob& job) override {
    json::Document c = normalized_config(job.config);
    check_shape(c);
    Target t = target(c);
    const json::Value& spec = c["spec"];
    const json::Value* run = member(c, "run");
    auto option = [&](const char* k) -> const json::Value* {
      const json::Value* v = run != nullptr ? member(*run, k) : nullptr;
      return v != nullptr ? v : member(spec, k);
    };

    rapidjson::Document body(rapidjson::kObjectType);
    auto& a = body.GetAllocator();
    std::string display = display_name(job.item);
    body.AddMember("display_name", json::str(display, a), a);

    json::Value labels(rapidjson::kObjectType);
    if (const json::Value* l = member(spec, "labels")) labels.CopyFrom(*l, a);
    for (const char* k : {"launch-item-id", "launch-run-id"}) labels.RemoveMember(k);
    labels.AddMember("launch-item-id", json::str(label_value(job.item.id), a), a);
    labels.AddMember("launch-run-id", json::str(run_label(job.item), a), a);
    body.AddMember("labels", labels, a);

    json::Value js(rapidjson::kObjectType);
    json::Value pools(rapidjson::kArrayType);
    pools.CopyFrom(spec["worker_pool_specs"], a);
    for (rapidjson::SizeType i = 0; i < pools.Size(); ++i) {
      fill_container(pools[i]["container_spec"], job, i, a);
    }
    js.AddMember("worker_pool_specs", pools, a);

    std::string out;
    if (const json::Value* b = member(spec, "base_output_dir")) {
      out = b->GetString();
    } else {
      out = spec["staging_bucket"].GetString();
      while (!out.empty() && out.back() == '/') out.pop_back();
      out += "/" + display;
    }
    json::Value bod(rapidjson::kObjectType);
    bod.AddMember("output_uri_prefix", json::str(out, a), a);
    js.AddMember("base_output_directory", bod, a);

    for (const char* k : {"service_account", "network", "tensorboard", "experiment",
                          "experiment_run", "persistent_resource_id", "enable_web_access",
                          "enable_dashboard_access", "reserved_ip_ranges"}) {
      if (const json::Value* v = option(k)) {
        json::Value copy;
        copy.CopyFrom(*v, a);
        js.AddMember(json::str(k, a), copy, a);
      }
    }
    json::Value scheduling(rapidjson::kObjectType);
    if (const json::Value* v = option("timeout")) {
      scheduling.AddMember("timeout", json::str(duration_text(*v, "timeout"), a), a);
    }
    if (const json::Value* v = option("restart_job_on_worker_restart")) {
      scheduling.AddMember("restart_job_on_worker_restart", v->IsBool() && v->GetBool(), a);
    }
    if (scheduling.MemberCount() > 0) js.AddMember("scheduling", scheduling, a);
    body.AddMember("job_spec", js, a);
    if (const json::Value* k = member(spec, "encryption_spec_key_name")) {
      json::Value es(rapidjson::kObjectType);
      es.AddMember("kms_key_name", json::str(k->GetString(), a), a);
      body.AddMember("encryption_spec", es, a);
    }

    std::string name;
    try {
      json::Document created = call_json(
          t, "POST", t.aiplatform + "/v1/" + t.parent() + "/customJobs", json::dump(body));
      name = json::get_string(created, "name", "vertex customJobs.create");
    } catch (const http::HttpError& e) {
      // A create whose answer was lost (a dropped connection, a 5xx) may
      // have made the job: it is looked for before the run is given up.
      // POST is never sent twice, so there is at most one.
      if (!transient(e)) throw;
      name = find_job(t, job.item, display, true);
      if (name.empty()) throw;
      log(LogLevel::warn, fmt::format("vertex customJobs.create: {}; the job was made all the "
                                      "same: {}",
                                      e.what(), name));
    }
    if (name.rfind(t.parent() + "/customJobs/", 0) != 0) {
      throw Error(Errc::io, fmt::format("vertex customJobs.create: the answer's name {:?} is not "
                                        "under {}",
                                        name, t.parent()));
    }
    return std::make_unique<VertexRun>(t, name, job.log_dir, false);
  }

  std::unique_ptr<Run> reattach(const QueueItem& item, const QueueDef& queue) override {
    // The queue's config as stored, with the job's resource_args over it:
    // where the job went (its templates, if any, are not filled here).
    json::Document c = json::parse_object(queue.config, kWhat);
    merge_resource_args(c, queue, item.spec.resource_args);
    convert_keys(c, c.GetAllocator(), "");
    Target t = target(c);
    std::string name = find_job(t, item, display_prefix(item), false);
    if (name.empty()) return nullptr;
    std::string log_dir =
        context_.launch_home.empty() ? "" : run_directory(context_.launch_home, item.id);
    // The whole log is read again from Cloud Logging, so the file restarts.
    return std::make_unique<VertexRun>(t, name, log_dir, true);
  }

 private:
  // The newest CustomJob labelled with the item's run whose display name
  // is `display` (`exact`) or starts with it: its name, or "" when there is
  // none.
  static std::string find_job(const Target& t, const QueueItem& item, const std::string& display,
                              bool exact) {
    std::string filter = fmt::format("labels.launch-run-id=\"{}\"", run_label(item));
    std::string name, newest;
    std::string token;
    for (int page = 0; page < 100; ++page) {
      std::string url = t.aiplatform + "/v1/" + t.parent() + "/customJobs?filter=" +
                        http::url_encode(filter) + "&pageSize=100";
      if (!token.empty()) url += "&pageToken=" + http::url_encode(token);
      json::Document d = call_json(t, "GET", url);
      std::string what = "vertex customJobs.list";
      auto jobs = d.FindMember("customJobs");
      if (jobs != d.MemberEnd() && jobs->value.IsArray()) {
        for (const auto& j : jobs->value.GetArray()) {
          // The label is the run id shortened and lowercased: the display
          // name tells one run from another whose label is the same.
          std::string shown = json::get_string(j, "displayName", what);
          if (exact ? shown != display : shown.rfind(display, 0) != 0) continue;
          std::string created = sortable_time(json::get_string(j, "createTime", what));
          if (name.empty() || created > newest) {
            newest = created;
            name = json::get_string(j, "name", what);
          }
        }
      }
      token = json::get_string(d, "nextPageToken", what);
      if (token.empty()) break;
    }
    return name;
  }

  // The job's image, entry point, arguments and environment in one pool's
  // container_spec (the job's over the config's).
  static void fill_container(json::Value& cs, const ResolvedJob& job, rapidjson::SizeType pool,
                             json::Allocator& a) {
    if (!job.image.empty()) {
      cs.RemoveMember("image_uri");
      cs.AddMember("image_uri", json::str(job.image, a), a);
    }
    const json::Value* image = member(cs, "image_uri");
    if (image == nullptr || !image->IsString() || image->GetStringLength() == 0) {
      refuse(fmt::format("spec.worker_pool_specs[{}].container_spec.image_uri", pool),
             "is not set and the job has no image");
    }
    if (!job.argv.empty()) {
      cs.RemoveMember("command");
      cs.RemoveMember("args");
      cs.AddMember("command", json::string_array({job.argv[0]}, a), a);
      std::vector<std::string> args(job.argv.begin() + 1, job.argv.end());
      if (!args.empty()) cs.AddMember("args", json::string_array(args, a), a);
    }
    std::vector<std::pair<std::string, std::string>> vars;
    if (const json::Value* e = member(cs, "env")) {
      for (const auto& kv : e->GetArray()) {
        if (job.env.count(kv["name"].GetString())) continue;
        auto v = kv.FindMember("value");
        vars.emplace_back(kv["name"].GetString(),
                          v == kv.MemberEnd() ? "" : json::scalar_text(v->value));
      }
    }
    for (const auto& kv : job.env) vars.emplace_back(kv.first, kv.second);
    cs.RemoveMember("env");
    json::Value list(rapidjson::kArrayType);
    for (const auto& [k, v] : vars) {
      json::Value item(rapidjson::kObjectType);
      item.AddMember("name", json::str(k, a), a);
      item.AddMember("value", json::str(v, a), a);
      list.PushBack(item, a);
    }
    if (!list.Empty()) cs.AddMember("env", list, a);
  }

  std::shared_ptr<http::GcpCredentials> credentials() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!credentials_) credentials_ = http::default_gcp_credentials();
    return credentials_;
  }

  Target target(const json::Value& c) {
    Target t;
    t.credentials = credentials();
    t.project = json::get_string(c, "project", kWhat);
    if (t.project.empty()) t.project = env("GOOGLE_CLOUD_PROJECT");
    if (t.project.empty()) t.project = env("CLOUDSDK_CORE_PROJECT");
    if (t.project.empty()) t.project = t.credentials->project();
    if (t.project.empty()) {
      throw Error(Errc::invalid,
                  fmt::format("{}: no project: set project in the queue config or "
                              "GOOGLE_CLOUD_PROJECT ({} names none)",
                              kWhat, t.credentials->describe()));
    }
    t.region = json::get_string(c, "region", kWhat);
    if (t.region.empty()) t.region = json::get_string(c, "location", kWhat);
    if (t.region.empty() && (context_.environment_type == "gcp" ||
                             context_.environment_type.empty())) {
      t.region = context_.region;
    }
    if (t.region.empty()) t.region = env("GOOGLE_CLOUD_REGION");
    if (t.region.empty()) t.region = env("CLOUDSDK_COMPUTE_REGION");
    if (t.region.empty()) {
      throw Error(Errc::invalid,
                  fmt::format("{}: no region: set region in the queue config, the agent's "
                              "environment region, or GOOGLE_CLOUD_REGION",
                              kWhat));
    }
    t.aiplatform = base_url("CLOUDSDK_API_ENDPOINT_OVERRIDES_AIPLATFORM",
                            fmt::format("https://{}-aiplatform.googleapis.com", t.region));
    t.logging = base_url("CLOUDSDK_API_ENDPOINT_OVERRIDES_LOGGING", "https://logging.googleapis.com");
    return t;
  }

  RunnerContext context_;
  std::mutex mu_;
  std::shared_ptr<http::GcpCredentials> credentials_;
};

}  // namespace

std::unique_ptr<Runner> make_vertex_runner(const RunnerContext& context) {
  return std::make_unique<VertexRunner>(context);
}

}  // namespace launch
