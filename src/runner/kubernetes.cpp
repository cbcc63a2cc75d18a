// The kubernetes runner: a job becomes a batch/v1 Job (the queue config is
// its manifest), followed through one watch per namespace shared by all the
// runner's runs, its pod's log copied into the item's stdout.log, deleted
// with propagationPolicy Foreground on cancel. Jobs carry the item id in a
// label, so an agent that restarts finds them again. See docs/kubernetes.md.
#include "runner/kubernetes.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "builtins/factories.hpp"
#include "core/secure.hpp"
#include "http/client.hpp"
#include "kube/config.hpp"
#include "launch/error.hpp"
#include "launch/home.hpp"
#include "launch/log.hpp"
#include "util/fs.hpp"
#include "util/limits.hpp"

namespace launch {
namespace kube {

namespace {

constexpr const char* kWhat = "kubernetes config";
// The runner's own keys, beside the manifest.
const std::set<std::string> kRunnerKeys = {"configFile", "context", "namespace",
                                           "startTimeoutSeconds", "secureMode", "secretEnv"};

bool is_placeholder(const json::Value& v) {
  return v.IsString() && std::string(v.GetString()).find("{{") != std::string::npos;
}

const json::Value* member(const json::Value& obj, const char* key) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(key);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

json::Value& object_member(json::Value& obj, const char* key, const std::string& path,
                           json::Allocator& a) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd()) {
    obj.AddMember(json::str(key, a), json::Value(rapidjson::kObjectType), a);
    return obj[key];
  }
  if (!it->value.IsObject()) {
    throw Error(Errc::invalid, fmt::format("{}: {} must be an object, not {}", kWhat, path,
                                           json::dump(it->value)));
  }
  return it->value;
}

// DNS-1123 label characters, for generateName.
std::string dns_label(const std::string& text) {
  std::string out;
  for (char ch : text) {
    unsigned char c = static_cast<unsigned char>(ch);
    char l = static_cast<char>(std::tolower(c));
    bool ok = std::isalnum(c) != 0;
    if (!ok && (out.empty() || out.back() == '-')) continue;
    out += ok ? l : '-';
  }
  return out;
}

// An env entry read from the run's Secret, its key the variable's name.
json::Value secret_ref(const std::string& name, const std::string& secret, json::Allocator& a) {
  json::Value ref(rapidjson::kObjectType);
  ref.AddMember("name", json::str(secret, a), a);
  ref.AddMember("key", json::str(name, a), a);
  json::Value from(rapidjson::kObjectType);
  from.AddMember("secretKeyRef", ref, a);
  json::Value e(rapidjson::kObjectType);
  e.AddMember("name", json::str(name, a), a);
  e.AddMember("valueFrom", from, a);
  return e;
}

bool ends_with(const std::string& s, const char* tail) {
  std::size_t n = std::strlen(tail);
  return s.size() >= n && s.compare(s.size() - n, n, tail) == 0;
}

}  // namespace

bool is_secret_env_name(const std::string& name) {
  std::string up;
  for (char c : name) up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const char* tail : {"_API_KEY", "_TOKEN", "_SECRET", "_PASSWORD", "_SECRET_KEY"}) {
    if (ends_with(up, tail)) return true;
  }
  return up == "API_KEY" || up == "TOKEN" || up == "SECRET" || up == "PASSWORD";
}

bool secure_mode(const json::Value& config) {
  const json::Value* v = member(config, "secureMode");
  if (v == nullptr) return false;
  if (!v->IsBool()) {
    throw Error(Errc::invalid, fmt::format("{}: secureMode must be true or false, not {}", kWhat,
                                           json::dump(*v)));
  }
  return v->GetBool();
}

int start_timeout_seconds(const json::Value& config) {
  const json::Value* v = member(config, "startTimeoutSeconds");
  if (v == nullptr || is_placeholder(*v)) return kDefaultStartTimeoutSeconds;
  long long n = -1;
  if (v->IsInt64()) {
    n = v->GetInt64();
  } else if (v->IsString() && v->GetStringLength() > 0 && v->GetStringLength() < 10 &&
             std::string(v->GetString()).find_first_not_of("0123456789") == std::string::npos) {
    n = std::atoll(v->GetString());  // a template value filled into a string
  }
  if (n < 0 || n > limits::kKubeMaxStartTimeoutSeconds) {
    throw Error(Errc::invalid, fmt::format("{}: startTimeoutSeconds must be a whole number of "
                                           "seconds from 0 (no timeout) to {}, not {}",
                                           kWhat, limits::kKubeMaxStartTimeoutSeconds, json::dump(*v)));
  }
  return static_cast<int>(n);
}

std::string label_value(const std::string& text) {
  std::string out;
  for (char ch : text) {
    unsigned char c = static_cast<unsigned char>(ch);
    out += (std::isalnum(c) || ch == '-' || ch == '_' || ch == '.') ? ch : '-';
  }
  if (out.size() > 63) out.resize(63);
  while (!out.empty() && !std::isalnum(static_cast<unsigned char>(out.back()))) out.pop_back();
  while (!out.empty() && !std::isalnum(static_cast<unsigned char>(out.front()))) out.erase(0, 1);
  return out;
}

void check_job_config(const std::string& config_json) {
  json::Document d = json::parse_object(config_json, kWhat);
  auto check = [&](const char* key, const char* want) {
    const json::Value* v = member(d, key);
    if (v == nullptr || is_placeholder(*v)) return;
    if (!v->IsString() || std::string(v->GetString()) != want) {
      throw Error(Errc::invalid,
                  fmt::format("{}: {} {} is not supported: the queue config must be a "
                              "batch/v1 Job manifest (custom objects are not supported yet)",
                              kWhat, key, json::dump(*v)));
    }
  };
  check("apiVersion", "batch/v1");
  check("kind", "Job");
  start_timeout_seconds(d);
  if (secure_mode(d)) check_secure_fields(d, "");
  if (const json::Value* v = member(d, "secretEnv"); v != nullptr && !is_placeholder(*v)) {
    bool ok = v->IsArray();
    for (rapidjson::SizeType i = 0; ok && i < v->Size(); ++i) ok = (*v)[i].IsString();
    if (!ok) {
      throw Error(Errc::invalid, fmt::format("{}: secretEnv must be a list of variable names, "
                                             "not {}",
                                             kWhat, json::dump(*v)));
    }
  }
  for (const char* key : {"configFile", "context", "namespace"}) {
    const json::Value* v = member(d, key);
    if (v != nullptr && !v->IsString()) {
      throw Error(Errc::invalid, fmt::format("{}: {} must be a string, not {}", kWhat, key,
                                             json::dump(*v)));
    }
  }
  for (const char* key : {"metadata", "spec"}) {
    const json::Value* v = member(d, key);
    if (v != nullptr && !v->IsObject()) {
      throw Error(Errc::invalid, fmt::format("{}: {} must be an object, not {}", kWhat, key,
                                             json::dump(*v)));
    }
  }
  const json::Value* spec = member(d, "spec");
  const json::Value* tmpl = spec ? member(*spec, "template") : nullptr;
  const json::Value* pod = tmpl ? member(*tmpl, "spec") : nullptr;
  const json::Value* cs = pod ? member(*pod, "containers") : nullptr;
  if (cs != nullptr && !cs->IsArray()) {
    throw Error(Errc::invalid, fmt::format("{}: spec.template.spec.containers must be a list, "
                                           "not {}",
                                           kWhat, json::dump(*cs)));
  }
}

JobManifest build_job_manifest(const ResolvedJob& job) {
  check_job_config(job.config);
  JobManifest m;
  json::Document& d = m.job;
  d = json::parse_object(job.config, kWhat);
  if (secure_mode(d) && !job.item.spec.entry_point.empty()) {
    refuse_entry_point_override("kubernetes", job.item.spec);
  }
  auto& a = d.GetAllocator();
  m.config_file = json::get_string(d, "configFile", kWhat);
  m.context = json::get_string(d, "context", kWhat);
  std::string config_ns = json::get_string(d, "namespace", kWhat);
  m.start_timeout_seconds = start_timeout_seconds(d);
  std::set<std::string> secret_names;
  if (const json::Value* v = member(d, "secretEnv"); v != nullptr && v->IsArray()) {
    for (const auto& n : v->GetArray()) secret_names.insert(n.GetString());
  }
  auto secret = [&](const std::string& name) {
    return secret_names.count(name) != 0 || is_secret_env_name(name);
  };
  for (const auto& k : kRunnerKeys) d.RemoveMember(k.c_str());
  json::set(d, "apiVersion", json::str("batch/v1", a), a);
  json::set(d, "kind", json::str("Job", a), a);

  json::Value& md = object_member(d, "metadata", "metadata", a);
  m.namespace_name = json::get_string(md, "namespace", kWhat + std::string(": metadata"));
  if (m.namespace_name.empty()) m.namespace_name = config_ns;
  md.RemoveMember("namespace");
  if (json::get_string(md, "name", kWhat).empty()) {
    md.RemoveMember("name");
    // Job names are label values (job-name): 63 at most, 5 of them the
    // server's random suffix.
    std::string run = job.item.run_id.empty() ? job.item.id : job.item.run_id;
    std::string prefix = dns_label("launch-" + job.queue.ref().name + "-" + run);
    if (prefix.size() > 57) prefix.resize(57);
    while (!prefix.empty() && prefix.back() == '-') prefix.pop_back();
    json::set(md, "generateName", json::str(prefix + "-", a), a);
  }
  {
    // The Secret is made after the Job (it names the Job as its owner), so
    // its name is chosen here.
    std::string run = job.item.run_id.empty() ? job.item.id : job.item.run_id;
    std::string prefix = dns_label("launch-" + job.queue.ref().name + "-" + run);
    if (prefix.size() > 200) prefix.resize(200);
    while (!prefix.empty() && prefix.back() == '-') prefix.pop_back();
    m.secret_name = prefix + "-env-" + generate_run_id();
  }

  auto add_labels = [&](json::Value& meta, const std::string& path) {
    json::Value& labels = object_member(meta, "labels", path + ".labels", a);
    json::set(labels, kItemLabel, json::str(label_value(job.item.id), a), a);
    json::set(labels, kRunLabel, json::str(label_value(job.item.run_id), a), a);
    json::set(labels, kAgentLabel, json::str(label_value(job.agent_id), a), a);
    json::Value& ann = object_member(meta, "annotations", path + ".annotations", a);
    json::set(ann, kQueueAnnotation, json::str(job.queue.ref().str(), a), a);
    json::set(ann, kItemLabel, json::str(job.item.id, a), a);
  };
  add_labels(md, "metadata");

  json::Value& spec = object_member(d, "spec", "spec", a);
  if (!spec.HasMember("backoffLimit")) spec.AddMember("backoffLimit", 0, a);
  if (!spec.HasMember("ttlSecondsAfterFinished")) spec.AddMember("ttlSecondsAfterFinished", 3600, a);
  json::Value& tmpl = object_member(spec, "template", "spec.template", a);
  add_labels(object_member(tmpl, "metadata", "spec.template.metadata", a),
             "spec.template.metadata");
  json::Value& pod = object_member(tmpl, "spec", "spec.template.spec", a);
  if (!pod.HasMember("restartPolicy")) pod.AddMember("restartPolicy", "Never", a);
  if (!pod.HasMember("containers")) pod.AddMember("containers", json::Value(rapidjson::kArrayType), a);
  json::Value& cs = pod["containers"];
  if (cs.Empty()) {
    json::Value c(rapidjson::kObjectType);
    c.AddMember("name", "launch", a);
    cs.PushBack(c, a);
  }
  for (rapidjson::SizeType i = 0; i < cs.Size(); ++i) {
    std::string path = fmt::format("spec.template.spec.containers[{}]", i);
    json::Value& c = cs[i];
    if (!c.IsObject()) {
      throw Error(Errc::invalid, fmt::format("{}: {} must be an object", kWhat, path));
    }
    if (json::get_string(c, "name", kWhat).empty()) {
      json::set(c, "name", json::str(i == 0 ? "launch" : fmt::format("launch-{}", i), a), a);
    }
    if (!job.image.empty() && json::get_string(c, "image", kWhat).empty()) {
      json::set(c, "image", json::str(job.image, a), a);
    }
    if (json::get_string(c, "image", kWhat).empty()) {
      throw Error(Errc::invalid, fmt::format("{}: the job has no image and {}.image is not set",
                                             kWhat, path));
    }
    if (i == 0 && !job.argv.empty()) {
      json::set(c, "command", json::string_array({job.argv[0]}, a), a);
      json::set(c, "args",
                json::string_array(std::vector<std::string>(job.argv.begin() + 1, job.argv.end()),
                                   a),
                a);
    }
    // The manifest's env beneath the job's (the job wins).
    json::Value env(rapidjson::kArrayType);
    if (const json::Value* old = member(c, "env")) {
      if (!old->IsArray()) {
        throw Error(Errc::invalid, fmt::format("{}: {}.env must be a list", kWhat, path));
      }
      for (const auto& e : old->GetArray()) {
        std::string name = e.IsObject() ? json::get_string(e, "name", kWhat) : "";
        if (job.env.count(name) != 0) continue;
        const json::Value* value = member(e, "value");
        if (secret(name) && value != nullptr && value->IsString()) {
          env.PushBack(secret_ref(name, m.secret_name, a), a);
          m.secret_env[name] = value->GetString();
          continue;
        }
        env.PushBack(json::Value(e, a), a);
      }
    }
    for (const auto& [k, v] : job.env) {
      if (secret(k)) {
        env.PushBack(secret_ref(k, m.secret_name, a), a);
        m.secret_env[k] = v;
        continue;
      }
      json::Value e(rapidjson::kObjectType);
      e.AddMember("name", json::str(k, a), a);
      e.AddMember("value", json::str(v, a), a);
      env.PushBack(e, a);
    }
    json::set(c, "env", std::move(env), a);
  }
  return m;
}

namespace {

std::string jobs_path(const std::string& ns) {
  return "/apis/batch/v1/namespaces/" + http::url_encode(ns) + "/jobs";
}

// One cluster connection, shared by the runner's runs. Thread-safe: every
// call makes its own Client.
struct Api {
  Connection conn;

  http::ClientOptions options() const {
    http::ClientOptions o;
    o.tls = conn.tls;
    return o;
  }
  http::Request request(const std::string& method, const std::string& path,
                        const std::string& body = "") const {
    http::Request r;
    r.method = method;
    r.url = conn.server + path;
    r.auth = conn.auth;
    r.headers.set("Accept", "application/json");
    if (!body.empty()) {
      r.body = body;
      r.headers.set("Content-Type", "application/json");
    }
    return r;
  }
  json::Document call(const std::string& method, const std::string& path,
                      const std::string& body = "") const {
    http::Client c(options());
    http::Response resp = c.send(request(method, path, body));
    return json::parse_object(resp.body, method + " " + path);
  }
};

// Where a Job is, as the watch last saw it.
struct JobState {
  bool seen = false;
  bool gone = false;
  bool complete = false;
  bool failed = false;
  std::string reason;  // the Failed condition's reason and message
};

JobState state_of(const json::Value& job) {
  JobState s;
  s.seen = true;
  const json::Value* st = member(job, "status");
  const json::Value* conds = st ? member(*st, "conditions") : nullptr;
  if (conds == nullptr || !conds->IsArray()) return s;
  for (const auto& c : conds->GetArray()) {
    std::string type = json::get_string(c, "type", "job condition");
    if (json::get_string(c, "status", "job condition") != "True") continue;
    if (type == "Complete") s.complete = true;
    if (type == "Failed") {
      s.failed = true;
      s.reason = json::get_string(c, "reason", "job condition");
      std::string msg = json::get_string(c, "message", "job condition");
      if (!msg.empty()) s.reason += ": " + msg;
    }
  }
  return s;
}

std::string name_of(const json::Value& obj) {
  const json::Value* md = member(obj, "metadata");
  return md ? json::get_string(*md, "name", "object metadata") : "";
}

long long rv_of(const json::Value& obj) {
  const json::Value* md = member(obj, "metadata");
  std::string rv = md ? json::get_string(*md, "resourceVersion", "object metadata") : "";
  return rv.empty() ? 0 : std::atoll(rv.c_str());
}

std::string with_message(const std::string& reason, const std::string& message) {
  return message.empty() ? reason : reason + ": " + message;
}

// What keeps a pod from starting or running, as a warning reports it: the
// key a warning is given once for, and "Reason: message".
using Issues = std::map<std::string, std::string>;

// The issue key of a container's waiting reason; "" for one that is none.
std::string waiting_key(const std::string& reason) {
  if (reason == "ErrImagePull" || reason == "ImagePullBackOff" || reason == "InvalidImageName") {
    return "ImagePullBackOff";
  }
  if (reason == "CrashLoopBackOff") return "CrashLoopBackOff";
  return "";
}

// A pod of a followed Job, as the pods watch last saw it.
struct PodState {
  std::string job;         // its job-name label
  std::string phase;       // Pending, Running, Succeeded, Failed
  bool gone = false;
  std::string blocked;     // why it is not running now ("" when nothing says)
  std::string disruption;  // its DisruptionTarget condition, when it has one
};

PodState pod_state_of(const json::Value& pod, Issues& issues) {
  constexpr const char* kCtx = "pod status";
  PodState p;
  const json::Value* md = member(pod, "metadata");
  const json::Value* labels = md ? member(*md, "labels") : nullptr;
  if (labels != nullptr) p.job = json::get_string(*labels, "job-name", kCtx);
  const json::Value* st = member(pod, "status");
  if (st == nullptr) return p;
  p.phase = json::get_string(*st, "phase", kCtx);
  if (const json::Value* conds = member(*st, "conditions"); conds && conds->IsArray()) {
    for (const auto& c : conds->GetArray()) {
      std::string type = json::get_string(c, "type", kCtx);
      std::string status = json::get_string(c, "status", kCtx);
      std::string reason = json::get_string(c, "reason", kCtx);
      std::string msg = json::get_string(c, "message", kCtx);
      if (type == "PodScheduled" && status == "False" && reason == "Unschedulable") {
        p.blocked = with_message("Unschedulable", msg);
        issues.emplace("Unschedulable", p.blocked);
      }
      if (type == "DisruptionTarget" && status == "True") {
        p.disruption = with_message(reason.empty() ? "DisruptionTarget" : reason, msg);
      }
    }
  }
  for (const char* list : {"initContainerStatuses", "containerStatuses"}) {
    const json::Value* cs = member(*st, list);
    if (cs == nullptr || !cs->IsArray()) continue;
    for (const auto& c : cs->GetArray()) {
      const json::Value* state = member(c, "state");
      const json::Value* w = state ? member(*state, "waiting") : nullptr;
      if (w == nullptr) continue;
      std::string reason = json::get_string(*w, "reason", kCtx);
      std::string text = with_message(reason, json::get_string(*w, "message", kCtx));
      if (!reason.empty() && reason != "ContainerCreating" && reason != "PodInitializing") {
        p.blocked = text;
      }
      std::string key = waiting_key(reason);
      if (!key.empty()) issues.emplace(key, text);
    }
  }
  return p;
}

// The issue key of a warning as poll() words it ("pod P: Reason: ..."),
// "" for another warning.
std::string issue_key_of(const std::string& warning) {
  if (warning.rfind("pod ", 0) != 0) return "";
  std::size_t name_end = warning.find(": ");
  if (name_end == std::string::npos) return "";
  std::size_t start = name_end + 2;
  std::string reason = warning.substr(start, warning.find(':', start) - start);
  return reason == "Unschedulable" ? reason : waiting_key(reason);
}

// The issue an Event reports about a pod, if it reports one: the
// scheduler's FailedScheduling, the kubelet's image pull failures and
// back-offs. (key, text); key "" for none.
std::pair<std::string, std::string> event_issue(const json::Value& ev) {
  constexpr const char* kCtx = "event";
  if (json::get_string(ev, "type", kCtx) != "Warning") return {};
  std::string reason = json::get_string(ev, "reason", kCtx);
  std::string msg = json::get_string(ev, "message", kCtx);
  if (reason == "FailedScheduling") return {"Unschedulable", with_message("Unschedulable", msg)};
  if (reason == "Failed" && msg.find("pull image") != std::string::npos) {
    return {"ImagePullBackOff", with_message("ErrImagePull", msg)};
  }
  if (reason == "BackOff" && msg.find("pulling image") != std::string::npos) {
    return {"ImagePullBackOff", with_message("ImagePullBackOff", msg)};
  }
  if (reason == "BackOff" && msg.find("restarting failed container") != std::string::npos) {
    return {"CrashLoopBackOff", with_message("CrashLoopBackOff", msg)};
  }
  return {};
}

// One list-then-watch of a collection on its own thread: a list, then a
// watch from the list's resourceVersion (with bookmarks), a relist after
// 410 Gone, a reconnect with backoff after any other failure. Its handlers
// are called on that thread.
class ListWatch {
 public:
  using Listed = std::function<void(const json::Value* items, long long rv)>;
  using Event = std::function<void(const std::string& type, const json::Value& obj)>;

  ListWatch(std::shared_ptr<const Api> api, std::string what, std::string path,
            std::string query, Listed listed, Event event)
      : api_(std::move(api)),
        what_(std::move(what)),
        path_(std::move(path)),
        query_(std::move(query)),
        listed_(std::move(listed)),
        event_(std::move(event)),
        client_(api_->options()) {
    thread_ = std::thread([this] { loop(); });
  }
  ~ListWatch() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    client_.abort();
    thread_.join();
  }

 private:
  void loop() {
    auto backoff = std::chrono::milliseconds(200);
    bool need_list = true;
    long long rv = 0;
    while (!stopping()) {
      try {
        if (need_list) rv = relist();
        need_list = false;
        bool expired = watch(rv);
        if (expired) need_list = true;
        backoff = std::chrono::milliseconds(200);
      } catch (const Error& e) {
        if (stopping()) return;
        log(LogLevel::warn, fmt::format("kubernetes: watch of {}: {} (again in {} ms)", what_,
                                        e.what(), backoff.count()));
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, backoff, [this] { return stop_; });
        backoff = std::min(backoff * 2, std::chrono::milliseconds(10000));
      }
    }
  }

  bool stopping() {
    std::lock_guard<std::mutex> lock(mu_);
    return stop_;
  }

  long long relist() {
    http::Response r = client_.send(api_->request("GET", path_ + "?" + query_));
    json::Document d = json::parse_object(r.body, "list " + what_);
    long long rv = rv_of(d);
    const json::Value* items = member(d, "items");
    listed_(items && items->IsArray() ? items : nullptr, rv);
    return rv;
  }

  // Watches from `rv` (advanced as events come); true after a 410.
  bool watch(long long& rv) {
    bool expired = false;
    std::string path = path_ + "?watch=true&allowWatchBookmarks=true&timeoutSeconds=300&" +
                       query_ + "&resourceVersion=" + std::to_string(rv);
    client_.stream_lines(api_->request("GET", path), [&](const std::string& line) {
      if (line.empty() || expired) return;
      rapidjson::Document ev;
      ev.Parse(line.c_str());
      if (ev.HasParseError() || !ev.IsObject()) return;
      std::string type = json::get_string(ev, "type", "watch event");
      const json::Value* obj = member(ev, "object");
      if (obj == nullptr) return;
      if (type == "ERROR") {
        if (json::get_int(*obj, "code", "watch error") == 410) expired = true;
        return;
      }
      rv = std::max(rv, rv_of(*obj));
      if (type == "BOOKMARK") return;
      event_(type, *obj);
    });
    return expired;
  }

  std::shared_ptr<const Api> api_;
  std::string what_;
  std::string path_;
  std::string query_;
  Listed listed_;
  Event event_;
  http::Client client_;  // the watch's own, aborted to stop it
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// What a run sees of its Job's pods.
struct PodsView {
  std::map<std::string, PodState> pods;  // by name
  Issues issues;                         // everything its pods ever reported
};

// The watches of a namespace, shared by the runner's runs there: its launch
// Jobs (those with a `launch/item-id` label), their pods (which carry the
// same label, from the template), and the Warning Events about pods that
// belong to a followed Job.
class Watcher {
 public:
  Watcher(const std::shared_ptr<const Api>& api, const std::string& ns) {
    std::string selector = "labelSelector=" + http::url_encode(kItemLabel);
    std::string core = "/api/v1/namespaces/" + http::url_encode(ns);
    jobs_watch_ = std::make_unique<ListWatch>(
        api, "Jobs in namespace " + ns, jobs_path(ns), selector,
        [this](const json::Value* items, long long rv) { jobs_listed(items, rv); },
        [this](const std::string& type, const json::Value& obj) { job_event(type, obj); });
    pods_watch_ = std::make_unique<ListWatch>(
        api, "Pods in namespace " + ns, core + "/pods", selector,
        [this](const json::Value* items, long long) { pods_listed(items); },
        [this](const std::string& type, const json::Value& obj) { pod_event(type, obj); });
    events_watch_ = std::make_unique<ListWatch>(
        api, "Events in namespace " + ns, core + "/events",
        "fieldSelector=" + http::url_encode("involvedObject.kind=Pod,type=Warning"),
        [this](const json::Value* items, long long) {
          if (items == nullptr) return;
          for (const auto& ev : items->GetArray()) event_event(ev);
        },
        [this](const std::string& type, const json::Value& obj) {
          if (type != "DELETED") event_event(obj);
        });
  }
  // The watches stop (their threads joined) before the state goes.
  ~Watcher() {
    jobs_watch_.reset();
    pods_watch_.reset();
    events_watch_.reset();
  }

  // Follows `name`, created at resourceVersion `created_rv`.
  void track(const std::string& name, long long created_rv) {
    std::lock_guard<std::mutex> lock(mu_);
    tracked_[name] = created_rv;
  }
  void untrack(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    // Its pods' issues (also of pods only Events named) while owner_of()
    // still knows the Job, then its pods, then the Job.
    for (auto i = issues_.begin(); i != issues_.end();) {
      i = owner_of(i->first) == name ? issues_.erase(i) : std::next(i);
    }
    for (auto p = pods_.begin(); p != pods_.end();) {
      p = p->second.job == name ? pods_.erase(p) : std::next(p);
    }
    tracked_.erase(name);
    auto it = jobs_.find(name);
    if (it != jobs_.end() && it->second.gone) jobs_.erase(it);
  }
  // True once the pods have been listed: before, a pod's start is unknown.
  bool pods_synced() {
    std::lock_guard<std::mutex> lock(mu_);
    return pods_synced_;
  }
  JobState get(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(name);
    return it == jobs_.end() ? JobState{} : it->second;
  }
  PodsView pods_of(const std::string& job) {
    std::lock_guard<std::mutex> lock(mu_);
    PodsView v;
    for (const auto& [name, p] : pods_) {
      if (p.job == job) v.pods[name] = p;
    }
    for (const auto& [pod, issues] : issues_) {
      if (v.pods.count(pod) == 0 && owner_of(pod) != job) continue;
      for (const auto& [key, text] : issues) v.issues.emplace(key, "pod " + pod + ": " + text);
    }
    return v;
  }

 private:
  // The followed Job a pod's name says it belongs to (a Job's pods are
  // named `<job>-<suffix>`), "" for none. mu_ held.
  std::string owner_of(const std::string& pod) const {
    auto it = pods_.find(pod);
    if (it != pods_.end()) return it->second.job;
    std::size_t dash = pod.rfind('-');
    if (dash == std::string::npos) return "";
    std::string job = pod.substr(0, dash);
    return tracked_.count(job) != 0 ? job : "";
  }

  void jobs_listed(const json::Value* items, long long rv) {
    std::lock_guard<std::mutex> lock(mu_);
    std::set<std::string> listed;
    if (items != nullptr) {
      for (const auto& j : items->GetArray()) {
        std::string n = name_of(j);
        listed.insert(n);
        jobs_[n] = state_of(j);
      }
    }
    for (auto it = jobs_.begin(); it != jobs_.end();) {
      if (listed.count(it->first) == 0 && tracked_.count(it->first) == 0) {
        it = jobs_.erase(it);
      } else {
        ++it;
      }
    }
    // A followed Job made before the list and absent from it has gone.
    for (const auto& [n, created] : tracked_) {
      if (listed.count(n) == 0 && created <= rv) jobs_[n].gone = true;
    }
  }

  void job_event(const std::string& type, const json::Value& obj) {
    std::string n = name_of(obj);
    std::lock_guard<std::mutex> lock(mu_);
    if (type == "DELETED") {
      if (tracked_.count(n) != 0) {
        jobs_[n].gone = true;
      } else {
        jobs_.erase(n);
      }
    } else {
      jobs_[n] = state_of(obj);
    }
  }

  // A pod's state (mu_ held). Every launch pod of the namespace is kept
  // while it exists (its Job may be followed a moment after the pod shows
  // up), and a followed Job's pod after it is gone, until the Job is
  // no longer followed.
  void store_pod(const json::Value& obj, bool gone) {
    std::string n = name_of(obj);
    Issues found;
    PodState p = pod_state_of(obj, found);
    if (gone && tracked_.count(p.job) == 0) {
      pods_.erase(n);
      issues_.erase(n);
      return;
    }
    p.gone = gone;
    pods_[n] = p;
    issues_[n].insert(found.begin(), found.end());
  }

  void pods_listed(const json::Value* items) {
    std::lock_guard<std::mutex> lock(mu_);
    pods_synced_ = true;
    std::set<std::string> listed;
    if (items != nullptr) {
      for (const auto& p : items->GetArray()) {
        listed.insert(name_of(p));
        store_pod(p, false);
      }
    }
    for (auto it = pods_.begin(); it != pods_.end();) {
      if (listed.count(it->first) != 0) {
        ++it;
      } else if (tracked_.count(it->second.job) != 0) {
        it->second.gone = true;
        ++it;
      } else {
        issues_.erase(it->first);
        it = pods_.erase(it);
      }
    }
  }

  void pod_event(const std::string& type, const json::Value& obj) {
    std::lock_guard<std::mutex> lock(mu_);
    store_pod(obj, type == "DELETED");
  }

  void event_event(const json::Value& ev) {
    const json::Value* io = member(ev, "involvedObject");
    if (io == nullptr) return;
    std::string pod = json::get_string(*io, "name", "event involvedObject");
    auto [key, text] = event_issue(ev);
    if (key.empty()) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (owner_of(pod).empty()) return;
    issues_[pod].emplace(key, text);
  }

  std::mutex mu_;
  std::map<std::string, JobState> jobs_;
  std::map<std::string, long long> tracked_;
  std::map<std::string, PodState> pods_;   // launch pods (store_pod says which)
  std::map<std::string, Issues> issues_;   // by pod name
  bool pods_synced_ = false;
  std::unique_ptr<ListWatch> jobs_watch_;
  std::unique_ptr<ListWatch> pods_watch_;
  std::unique_ptr<ListWatch> events_watch_;
};

class KubernetesRun : public Run {
 public:
  KubernetesRun(std::shared_ptr<const Api> api, std::shared_ptr<Watcher> watcher, std::string ns,
                std::string name, long long created_rv, const std::string& log_dir,
                bool truncate_logs, int start_timeout_seconds)
      : api_(std::move(api)),
        watcher_(std::move(watcher)),
        ns_(std::move(ns)),
        name_(std::move(name)),
        log_client_(api_->options()),
        start_timeout_(start_timeout_seconds),
        since_(std::chrono::steady_clock::now()) {
    watcher_->track(name_, created_rv);
    if (!log_dir.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(log_dir, ec);
      int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (truncate_logs ? O_TRUNC : O_APPEND);
      out_fd_ = open((log_dir + "/stdout.log").c_str(), flags, 0644);
      if (out_fd_ < 0) {
        throw Error(Errc::io, fmt::format("item logs in \"{}\": {}", log_dir, std::strerror(errno)));
      }
      log_thread_ = std::thread([this] { follow_log(); });
    } else {
      log_done_ = true;
    }
  }

  ~KubernetesRun() override {
    if (!final_) {
      JobState s = watcher_->get(name_);
      if (!s.gone && !s.complete && !s.failed) {
        // Dropped before its end (a lost lease): nobody would follow it.
        try {
          remove();
        } catch (const Error& e) {
          log(LogLevel::warn, fmt::format("kubernetes job {}: delete: {}", name_, e.what()));
        }
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    log_client_.abort();
    if (log_thread_.joinable()) log_thread_.join();
    if (out_fd_ >= 0) close(out_fd_);
    watcher_->untrack(name_);
  }

  std::string id() const override { return name_; }

  // The item's warnings so far: the pod issues among them are not
  // reported again.
  void already_warned(const std::vector<std::string>& warnings) {
    for (const auto& w : warnings) {
      std::string key = issue_key_of(w);
      if (!key.empty()) warned_.insert(key);
    }
  }

  RunStatus poll() override {
    PodsView pods = watcher_->pods_of(name_);
    RunStatus st = where(pods);
    // Each reason once, the first pod's words for it.
    for (const auto& [key, text] : pods.issues) {
      if (warned_.insert(key).second) st.warnings.push_back(text);
    }
    return st;
  }

  // Where the run is now, warnings aside.
  RunStatus where(const PodsView& pods) {
    if (final_) return *final_;
    JobState s = watcher_->get(name_);
    RunStatus st;
    if (s.gone) {
      st.phase = cancelled_ ? RunPhase::stopped : RunPhase::failed;
      if (!cancelled_) st.message = fmt::format("kubernetes job {} was deleted outside launch", name_);
    } else if (cancelled_) {
      return RunStatus{};
    } else if (std::string d = s.complete ? "" : disrupted(pods); !d.empty()) {
      // (A Job that completed anyway, its pod replaced, is not preempted.)
      if (log_pending()) return RunStatus{};
      return preempt(d);
    } else if (!s.complete && !s.failed) {
      for (const auto& [n, p] : pods.pods) {
        started_ = started_ || (!p.phase.empty() && p.phase != "Pending");
      }
      {
        // The log follower lists the pods itself (a cluster may refuse
        // the agent a watch of pods).
        std::lock_guard<std::mutex> lock(mu_);
        started_ = started_ || log_started_;
      }
      if (!started_ && start_timeout_ > 0 && watcher_->pods_synced() &&
          std::chrono::steady_clock::now() - since_ >= std::chrono::seconds(start_timeout_)) {
        return not_started(pods);
      }
      return RunStatus{};
    } else {
      if (log_pending()) return RunStatus{};
      if (s.complete) {
        st.phase = RunPhase::finished;
        st.exit_code = 0;
      } else {
        st.phase = RunPhase::failed;
        std::string container;
        try {
          json::Document listed = this->pods();
          // The watch of pods may be behind the Job's: an evicted pod
          // fails its Job too.
          if (std::string d = disrupted(listed); !d.empty()) return preempt(d);
          container = container_end(listed, st.exit_code);
        } catch (const Error& e) {
          container = fmt::format("its pod: {}", e.what());
        }
        st.message = fmt::format("kubernetes job {} failed ({}){}", name_, s.reason,
                                 container.empty() ? "" : "; " + container);
      }
    }
    final_ = st;
    return st;
  }

  void cancel(std::chrono::milliseconds) override {
    if (final_ || cancelled_) return;
    cancelled_ = true;
    remove();
  }

 private:
  void remove() {
    try {
      api_->call("DELETE", jobs_path(ns_) + "/" + http::url_encode(name_) +
                               "?propagationPolicy=Foreground",
                 R"({"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Foreground"})");
    } catch (const http::HttpError& e) {
      if (e.status() != 404) throw;
    }
  }

  json::Document pods() {
    return api_->call("GET", "/api/v1/namespaces/" + http::url_encode(ns_) +
                                 "/pods?labelSelector=" + http::url_encode("job-name=" + name_));
  }

  // True while the pod's log is still being copied, for 10 s at most after
  // the run's end was first seen: its log to its end first (it ends with
  // the container).
  bool log_pending() {
    std::lock_guard<std::mutex> lock(mu_);
    if (log_done_) return false;
    auto now = std::chrono::steady_clock::now();
    if (ended_at_ == std::chrono::steady_clock::time_point{}) ended_at_ = now;
    return now - ended_at_ < std::chrono::seconds(10);
  }

  // A pod of the Job that was disrupted (evicted, preempted by the
  // scheduler, its node shut down: a DisruptionTarget condition) and has
  // ended, as "pod P: Reason: message"; "" for none.
  static std::string disrupted(const PodsView& v) {
    for (const auto& [n, p] : v.pods) {
      if (!p.disruption.empty() && (p.gone || p.phase == "Failed")) {
        return fmt::format("pod {} was disrupted ({})", n, p.disruption);
      }
    }
    return "";
  }
  static std::string disrupted(const json::Document& listed) {
    PodsView v;
    const json::Value* items = member(listed, "items");
    if (items == nullptr || !items->IsArray()) return "";
    for (const auto& p : items->GetArray()) v.pods[name_of(p)] = pod_state_of(p, v.issues);
    return disrupted(v);
  }

  // The target took the pod away: the Job goes (its pod will not come
  // back by itself) and the agent puts the item back.
  RunStatus preempt(const std::string& why) {
    remove_quietly();
    RunStatus st;
    st.phase = RunPhase::preempted;
    st.message = fmt::format("kubernetes job {}: {}", name_, why);
    final_ = st;
    return st;
  }

  RunStatus not_started(const PodsView& v) {
    std::string why;
    for (const auto& [n, p] : v.pods) {
      if (p.gone) continue;
      std::string blocked = p.blocked;
      if (blocked.empty()) {
        // What an Event said, when the status says nothing more.
        for (const auto& [key, text] : v.issues) {
          if (text.rfind("pod " + n + ": ", 0) == 0) blocked = text.substr(5 + n.size() + 1);
        }
      }
      why = fmt::format("pod {} did not start within {} s: {}", n, start_timeout_,
                        blocked.empty() ? "still " + (p.phase.empty() ? "Pending" : p.phase)
                                        : blocked);
    }
    if (why.empty()) {
      why = fmt::format("no pod started within {} s (none was created)", start_timeout_);
    }
    remove_quietly();
    RunStatus st;
    st.phase = RunPhase::failed;
    st.message = fmt::format("kubernetes job {}: {} (startTimeoutSeconds)", name_, why);
    final_ = st;
    return st;
  }

  // Deletes the Job of a run that has ended without it; a failure is
  // logged (its ttlSecondsAfterFinished removes it in the end).
  void remove_quietly() {
    try {
      remove();
    } catch (const Error& e) {
      log(LogLevel::warn, fmt::format("kubernetes job {}: delete: {}", name_, e.what()));
    }
  }

  // "container launch exited with 3 (Error)", the exit code set.
  static std::string container_end(const json::Document& d, std::optional<int>& exit_code) {
    const json::Value* items = member(d, "items");
    if (items == nullptr || !items->IsArray()) return "";
    for (const auto& p : items->GetArray()) {
      const json::Value* st = member(p, "status");
      const json::Value* cs = st ? member(*st, "containerStatuses") : nullptr;
      if (cs == nullptr || !cs->IsArray()) continue;
      for (const auto& c : cs->GetArray()) {
        const json::Value* state = member(c, "state");
        const json::Value* t = state ? member(*state, "terminated") : nullptr;
        if (t == nullptr) continue;
        int code = static_cast<int>(json::get_int(*t, "exitCode", "container state"));
        if (code == 0) continue;
        exit_code = code;
        std::string reason = json::get_string(*t, "reason", "container state");
        std::string msg = json::get_string(*t, "message", "container state");
        return fmt::format("container {} exited with {}{}{}", json::get_string(c, "name", "pod"),
                           code, reason.empty() ? "" : " (" + reason + ")",
                           msg.empty() ? "" : ": " + msg);
      }
    }
    return "";
  }

  bool wait_stop(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, d, [this] { return stop_; });
    return stop_;
  }

  // The first pod's log, followed to its end, into stdout.log.
  void follow_log() {
    int failures = 0;
    while (true) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) break;
      }
      try {
        json::Document d = pods();
        std::string pod;
        if (const json::Value* items = member(d, "items"); items && items->IsArray()) {
          for (const auto& p : items->GetArray()) {
            const json::Value* st = member(p, "status");
            std::string phase = st ? json::get_string(*st, "phase", "pod status") : "";
            if (phase != "" && phase != "Pending") pod = name_of(p);
          }
        }
        if (!pod.empty()) {
          std::lock_guard<std::mutex> lock(mu_);
          log_started_ = true;
        }
        if (pod.empty()) {
          JobState s = watcher_->get(name_);
          if (s.gone || ((s.complete || s.failed) && ++failures > 20)) break;
          if (wait_stop(std::chrono::milliseconds(100))) break;
          continue;
        }
        http::LineSplitter split([this](const std::string& line) { write_line(line); });
        log_client_.stream(
            api_->request("GET", "/api/v1/namespaces/" + http::url_encode(ns_) + "/pods/" +
                                     http::url_encode(pod) + "/log?follow=true"),
            [&](const char* data, std::size_t n) { split.feed(data, n); });
        split.finish();
        break;
      } catch (const Error& e) {
        if (++failures > 50) {
          log(LogLevel::warn, fmt::format("kubernetes job {}: pod log: {}", name_, e.what()));
          break;
        }
        if (wait_stop(std::chrono::milliseconds(100))) break;
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    log_done_ = true;
  }

  void write_line(const std::string& line) {
    std::string s = line + "\n";
    util::write_fully(out_fd_, s.data(), s.size());  // a full disk must not stop the job
  }

  std::shared_ptr<const Api> api_;
  std::shared_ptr<Watcher> watcher_;
  std::string ns_;
  std::string name_;
  http::Client log_client_;
  int out_fd_ = -1;
  std::thread log_thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool log_done_ = false;
  bool log_started_ = false;  // the log follower found a pod past Pending
  std::chrono::steady_clock::time_point ended_at_{};
  std::optional<RunStatus> final_;
  bool cancelled_ = false;
  int start_timeout_;                              // seconds; 0: none
  std::chrono::steady_clock::time_point since_;    // submitted or reattached
  bool started_ = false;                           // a pod got past Pending
  std::set<std::string> warned_;                   // the issue keys reported
};

// The run's Secret: the secret env of `m`, owned by the Job `created`, so
// the garbage collector deletes it with the Job. When it cannot be made,
// the Job goes too (its pod would wait for it for ever).
void create_secret(const Api& api, const std::string& ns, const JobManifest& m,
                   const ResolvedJob& job, const json::Value& created) {
  json::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  std::string job_name = name_of(created);
  const json::Value* cmd = member(created, "metadata");
  std::string uid = cmd ? json::get_string(*cmd, "uid", "created Job") : "";
  json::Value md(rapidjson::kObjectType);
  md.AddMember("name", json::str(m.secret_name, a), a);
  json::Value labels(rapidjson::kObjectType);
  labels.AddMember(json::str(kItemLabel, a), json::str(label_value(job.item.id), a), a);
  labels.AddMember(json::str(kRunLabel, a), json::str(label_value(job.item.run_id), a), a);
  md.AddMember("labels", labels, a);
  json::Value owner(rapidjson::kObjectType);
  owner.AddMember("apiVersion", "batch/v1", a);
  owner.AddMember("kind", "Job", a);
  owner.AddMember("name", json::str(job_name, a), a);
  owner.AddMember("uid", json::str(uid, a), a);
  owner.AddMember("blockOwnerDeletion", true, a);
  json::Value owners(rapidjson::kArrayType);
  owners.PushBack(owner, a);
  md.AddMember("ownerReferences", owners, a);
  d.AddMember("apiVersion", "v1", a);
  d.AddMember("kind", "Secret", a);
  d.AddMember("metadata", md, a);
  d.AddMember("type", "Opaque", a);
  d.AddMember("stringData", json::string_map(m.secret_env, a), a);
  try {
    api.call("POST", "/api/v1/namespaces/" + http::url_encode(ns) + "/secrets", json::dump(d));
  } catch (const Error& e) {
    try {
      api.call("DELETE", jobs_path(ns) + "/" + http::url_encode(job_name) +
                             "?propagationPolicy=Foreground",
               R"({"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Foreground"})");
    } catch (const Error& again) {
      log(LogLevel::warn, fmt::format("kubernetes job {}: delete: {}", job_name, again.what()));
    }
    throw Error(e.code(), fmt::format("kubernetes job {}: its Secret {}: {}", job_name,
                                      m.secret_name, e.what()));
  }
}

class KubernetesRunner : public Runner {
 public:
  explicit KubernetesRunner(RunnerContext context) : context_(std::move(context)) {}

  bool needs_image() const override { return true; }

  void check_config(const std::string& config_json) const override {
    check_job_config(config_json);
  }

  std::unique_ptr<Run> submit(const ResolvedJob& job) override {
    JobManifest m = build_job_manifest(job);
    auto api = connection(m.config_file, m.context);
    std::string ns = choose_namespace("", m.namespace_name, api->conn);
    auto watcher = watcher_for(api, m.config_file + "\n" + m.context, ns);
    json::Document created = api->call("POST", jobs_path(ns), json::dump(m.job));
    if (!m.secret_env.empty()) create_secret(*api, ns, m, job, created);
    return std::make_unique<KubernetesRun>(api, watcher, ns, name_of(created), rv_of(created),
                                           job.log_dir, false, m.start_timeout_seconds);
  }

  std::unique_ptr<Run> reattach(const QueueItem& item, const QueueDef& queue) override {
    json::Document c = json::parse_object(queue.config, kWhat);
    std::string file = json::get_string(c, "configFile", kWhat);
    std::string context = json::get_string(c, "context", kWhat);
    std::string md_ns;
    if (const json::Value* md = member(c, "metadata")) md_ns = json::get_string(*md, "namespace", kWhat);
    auto api = connection(file, context);
    std::string ns = choose_namespace(md_ns, json::get_string(c, "namespace", kWhat), api->conn);
    // The run id too: item ids repeat across transports sharing a cluster.
    std::string selector = std::string(kItemLabel) + "=" + label_value(item.id);
    if (!item.run_id.empty()) selector += std::string(",") + kRunLabel + "=" + label_value(item.run_id);
    json::Document found =
        api->call("GET", jobs_path(ns) + "?labelSelector=" + http::url_encode(selector));
    const json::Value* items = member(found, "items");
    if (items == nullptr || !items->IsArray() || items->Empty()) return nullptr;
    const json::Value* best = nullptr;
    for (const auto& j : items->GetArray()) {
      const json::Value* md = member(j, "metadata");
      if (md != nullptr && member(*md, "deletionTimestamp") != nullptr) continue;
      if (best == nullptr || rv_of(j) > rv_of(*best)) best = &j;
    }
    if (best == nullptr) return nullptr;
    auto watcher = watcher_for(api, file + "\n" + context, ns);
    std::string log_dir =
        context_.launch_home.empty() ? "" : run_directory(context_.launch_home, item.id);
    // The whole pod log is read again, so the file restarts.
    int timeout = kDefaultStartTimeoutSeconds;
    try {
      timeout = start_timeout_seconds(c);
    } catch (const Error&) {
      // The stored config has its template values unfilled: the default.
    }
    auto run = std::make_unique<KubernetesRun>(api, watcher, ns, name_of(*best), rv_of(found),
                                               log_dir, true, timeout);
    // What the earlier agent warned about is not warned about again.
    run->already_warned(item.warnings);
    return run;
  }

 private:
  std::shared_ptr<const Api> connection(const std::string& file, const std::string& context) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& api = apis_[file + "\n" + context];
    if (!api) {
      auto a = std::make_shared<Api>();
      a->conn = connect(ConnectOptions{file, context});
      api = a;
    }
    return api;
  }

  std::shared_ptr<Watcher> watcher_for(const std::shared_ptr<const Api>& api,
                                       const std::string& key, const std::string& ns) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& w = watchers_[key + "\n" + ns];
    std::shared_ptr<Watcher> sp = w.lock();
    if (!sp) {
      sp = std::make_shared<Watcher>(api, ns);
      w = sp;
    }
    return sp;
  }

  RunnerContext context_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<const Api>> apis_;
  // Shared by the runs of a namespace; it ends with the last of them.
  std::map<std::string, std::weak_ptr<Watcher>> watchers_;
};

}  // namespace
}  // namespace kube

std::unique_ptr<Runner> make_kubernetes_runner(const RunnerContext& context) {
  return std::make_unique<kube::KubernetesRunner>(context);
}

}  // namespace launch
