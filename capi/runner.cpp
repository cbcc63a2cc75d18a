// Custom runners from C: the launch_runner vtable bridged into
// launch::Runner and launch::Run, registered like any built-in runner.
#include <cstddef>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "capi.hpp"
#include "util/json.hpp"
#include "launch/runner.hpp"

namespace {

using launch::Errc;
using launch::Error;
using launch::capi::guard;
using launch::capi::null_argument;

// One registration: the caller's vtable, shared by every Runner and Run made
// from it; destroy(user) runs when the last of them goes.
struct Registration {
  std::string name;
  launch_runner vt{};
  bool owns_user = false;  // set once registered: a failed register leaves `user` alone
  Registration(std::string n, const launch_runner& v) : name(std::move(n)), vt(v) {}
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;
  ~Registration() {
    if (owns_user && vt.destroy) vt.destroy(vt.user);
  }

  // The message the callback left with launch_error_set(), or a default.
  std::string failure(const char* callback, int code) const {
    std::string message = launch_last_error();
    if (message.empty()) {
      message = std::string("returned ") + std::to_string(code) + " (" +
                launch_error_name(code) + ")";
    }
    return "runner \"" + name + "\": " + callback + ": " + message;
  }
};

std::string job_json(const launch::ResolvedJob& job) {
  namespace json = launch::json;
  json::Document d;
  d.SetObject();
  auto& a = d.GetAllocator();
  json::Document item = json::parse(launch::to_json(job.item), "item");
  json::Document queue = json::parse(launch::to_json(job.queue), "queue");
  json::set(d, "item", json::Value(item, a), a);
  json::set(d, "queue", json::Value(queue, a), a);
  json::set(d, "config", json::raw(job.config, "config", a), a);
  json::set(d, "image", json::str(job.image, a), a);
  json::set(d, "argv", json::string_array(job.argv, a), a);
  json::set(d, "env", json::string_map(job.env, a), a);
  json::set(d, "log_dir", json::str(job.log_dir, a), a);
  json::set(d, "agent_id", json::str(job.agent_id, a), a);
  json::Value gpus(rapidjson::kArrayType);
  for (int g : job.gpus) gpus.PushBack(g, a);
  json::set(d, "gpus", std::move(gpus), a);
  return json::dump(d);
}

class CRun : public launch::Run {
 public:
  CRun(std::shared_ptr<Registration> reg, std::string id)
      : reg_(std::move(reg)), id_(std::move(id)) {}

  std::string id() const override { return id_; }

  // A poll that fails reports the run failed with the callback's message:
  // the agent then ends the item with it.
  launch::RunStatus poll() override {
    launch_run_status st;
    std::memset(&st, 0, sizeof st);
    st.version = LAUNCH_RUN_STATUS_VERSION;
    st.phase = LAUNCH_RUN_RUNNING;
    launch_error_set(LAUNCH_OK, nullptr);
    int rc = reg_->vt.poll(reg_->vt.user, id_.c_str(), &st);
    launch::RunStatus out;
    if (rc != LAUNCH_OK) {
      out.phase = launch::RunPhase::failed;
      out.message = reg_->failure("poll", rc);
      return out;
    }
    st.message[sizeof st.message - 1] = '\0';
    switch (st.phase) {
      case LAUNCH_RUN_RUNNING: out.phase = launch::RunPhase::running; break;
      case LAUNCH_RUN_FINISHED: out.phase = launch::RunPhase::finished; break;
      case LAUNCH_RUN_FAILED: out.phase = launch::RunPhase::failed; break;
      case LAUNCH_RUN_STOPPED: out.phase = launch::RunPhase::stopped; break;
      case LAUNCH_RUN_PREEMPTED: out.phase = launch::RunPhase::preempted; break;
      default:
        out.phase = launch::RunPhase::failed;
        out.message = "runner \"" + reg_->name + "\": poll: phase " + std::to_string(st.phase) +
                      " is not a LAUNCH_RUN_* value";
        return out;
    }
    if (st.has_exit_code) out.exit_code = st.exit_code;
    out.message = st.message;
    return out;
  }

  void cancel(std::chrono::milliseconds grace) override {
    launch_error_set(LAUNCH_OK, nullptr);
    int rc = reg_->vt.cancel(reg_->vt.user, id_.c_str(), static_cast<int>(grace.count()));
    if (rc != LAUNCH_OK) throw Error(launch::capi::errc_from_code(rc), reg_->failure("cancel", rc));
  }

 private:
  std::shared_ptr<Registration> reg_;
  std::string id_;
};

class CRunner : public launch::Runner {
 public:
  explicit CRunner(std::shared_ptr<Registration> reg) : reg_(std::move(reg)) {}

  std::unique_ptr<launch::Run> submit(const launch::ResolvedJob& job) override {
    std::string text = job_json(job);
    std::vector<char> id(LAUNCH_RUN_ID_MAX, '\0');
    launch_error_set(LAUNCH_OK, nullptr);
    int rc = reg_->vt.submit(reg_->vt.user, text.c_str(), id.data(), id.size());
    return named_run("submit", rc, id);
  }

  std::unique_ptr<launch::Run> reattach(const launch::QueueItem& item,
                                        const launch::QueueDef&) override {
    if (!reg_->vt.reattach) return nullptr;
    std::string text = launch::to_json(item);
    std::vector<char> id(LAUNCH_RUN_ID_MAX, '\0');
    launch_error_set(LAUNCH_OK, nullptr);
    int rc = reg_->vt.reattach(reg_->vt.user, text.c_str(), id.data(), id.size());
    if (rc == LAUNCH_ENOTFOUND) return nullptr;
    return named_run("reattach", rc, id);
  }

  bool needs_image() const override { return reg_->vt.needs_image != 0; }

 private:
  // The run that `callback` (submit, reattach) returned `rc` for and wrote
  // the id of into `id`.
  std::unique_ptr<launch::Run> named_run(const char* callback, int rc, std::vector<char>& id) {
    if (rc != LAUNCH_OK) {
      throw Error(launch::capi::errc_from_code(rc), reg_->failure(callback, rc));
    }
    id.back() = '\0';
    if (id[0] == '\0') {
      throw Error(Errc::invalid, "runner \"" + reg_->name + "\": " + callback +
                                     " succeeded but wrote no run id");
    }
    return std::make_unique<CRun>(reg_, std::string(id.data()));
  }

  std::shared_ptr<Registration> reg_;
};

// The caller's struct as this library's: only the fields its version has
// are read (a version 1 struct ends before reattach); the rest stay NULL.
launch_runner copy_runner(const launch_runner& runner) {
  launch_runner vt{};
  std::size_t size = runner.version >= 2 ? sizeof(launch_runner)
                                         : offsetof(launch_runner, reattach);
  std::memcpy(&vt, &runner, size);
  return vt;
}

// Names registered through this API, so unregister can tell them apart and
// a replaced registration is released outside the runner registry's lock.
std::mutex registered_mu;
std::map<std::string, std::shared_ptr<Registration>>& registered() {
  static auto* m = new std::map<std::string, std::shared_ptr<Registration>>;
  return *m;
}

}  // namespace

extern "C" {

int launch_runner_register(const char* name, const launch_runner* runner) {
  if (!name) return null_argument("launch_runner_register", "name");
  if (!runner) return null_argument("launch_runner_register", "runner");
  return guard([&] {
    if (!*name) throw Error(Errc::invalid, "launch_runner_register: name is empty");
    if (runner->version == 0 || runner->version > LAUNCH_RUNNER_VERSION) {
      throw Error(Errc::invalid, "runner \"" + std::string(name) + "\": version " +
                                     std::to_string(runner->version) +
                                     " is not supported (this library knows 1.." +
                                     std::to_string(LAUNCH_RUNNER_VERSION) + ")");
    }
    const char* missing = !runner->submit ? "submit"
                          : !runner->poll ? "poll"
                          : !runner->cancel ? "cancel"
                                            : nullptr;
    if (missing) {
      throw Error(Errc::invalid, "runner \"" + std::string(name) + "\": the " + missing +
                                     " callback is NULL");
    }
    auto reg = std::make_shared<Registration>(name, copy_runner(*runner));
    launch::RunnerFactory factory = [reg](const launch::RunnerContext&) {
      return std::unique_ptr<launch::Runner>(new CRunner(reg));
    };
    std::shared_ptr<Registration> old;
    {
      std::lock_guard<std::mutex> lock(registered_mu);
      auto& slot = registered()[name];
      launch::register_runner(name, std::move(factory));
      reg->owns_user = true;
      old = std::move(slot);
      slot = std::move(reg);
    }
    return LAUNCH_OK;  // the replaced registration goes here, outside every lock
  });
}

int launch_runner_unregister(const char* name) {
  if (!name) return null_argument("launch_runner_unregister", "name");
  return guard([&] {
    std::shared_ptr<Registration> old;
    {
      std::lock_guard<std::mutex> lock(registered_mu);
      auto it = registered().find(name);
      if (it == registered().end()) {
        throw Error(Errc::not_found, "runner \"" + std::string(name) +
                                         "\": no runner of that name was registered "
                                         "through launch_runner_register");
      }
      launch::unregister_runner(name);
      old = std::move(it->second);
      registered().erase(it);
    }
    return LAUNCH_OK;
  });
}

}  // extern "C"
