// The agent: one thread, one poll(2) loop over the transport's wake-up
// descriptor, each run's descriptor, a self-pipe (stop(), finished builds)
// and the eventfd of its runner calls, with timers for heartbeats and lease
// expiry. Runners that may block (Runner::blocking()) are called on a few
// worker threads (runner_calls.hpp) so a slow remote API holds up neither
// heartbeats nor the other items; everything else happens on this thread.
//
// A claimed item goes: build on a worker thread when the runner needs an
// image -> resolve its config (template values, deep merge, macros, secure
// mode) -> GPUs from the pool, as many as the runner asks for (waiting for
// them when all are taken) -> submit -> start. Any failure ends the item `failed` with its stage: agent for
// resolving and submitting, build for the builder, run for the run itself.
#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <future>
#include <map>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "agent/gpu_pool.hpp"
#include "agent/report_journal.hpp"
#include "agent/runner_calls.hpp"
#include "core/resolve.hpp"
#include "launch/agent.hpp"
#include "launch/error.hpp"
#include "launch/home.hpp"
#include "launch/log.hpp"
#include "launch/runner.hpp"
#include "launch/template.hpp"
#include "launch/version.hpp"
#include "util/fs.hpp"
#include "util/json.hpp"
#include "util/redact.hpp"
#include "util/user.hpp"

namespace launch {
namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// While it holds items the agent heartbeats this often, so a cancel request
// reaches it within a second even when the transport cannot wake it.
constexpr milliseconds kBusyHeartbeat{1000};
// Without a wake-up descriptor from the transport, how often to try a claim.
constexpr milliseconds kClaimPoll{250};
// How often a run without a wait descriptor, or one being cancelled, is
// polled.
constexpr milliseconds kRunPoll{100};
// Worker threads for runners that may block: one per job slot and one for a
// call whose item was dropped meanwhile, at most this many.
constexpr int kMaxRunnerThreads = 16;
// How soon a report the store did not take is tried again: doubling from
// the first to the second while it keeps failing.
constexpr milliseconds kMinReportBackoff{500};
constexpr milliseconds kMaxReportBackoff{30000};

std::uint64_t fnv1a(const std::string& s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string iso_time_now() {
  auto ms = now_ms();
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  struct tm tm;
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buf, static_cast<int>(ms % 1000));
}

// submitting and attaching: a worker is in the runner's submit or reattach.
enum class Phase { building, waiting_gpus, submitting, attaching, running };

struct Active {
  QueueItem item;
  QueueDef queue;
  Runner* runner = nullptr;
  ResolvedJob job;
  Phase phase = Phase::running;
  std::future<BuildResult> build;
  // Turned on to stop the build under way (BuildRequest::cancel); shared
  // with the build thread, which may outlive a forgotten item briefly.
  std::shared_ptr<std::atomic<bool>> build_cancel;
  std::unique_ptr<Run> run;
  int gpus_wanted = 0;
  std::vector<int> gpus;
  std::thread builder_thread;     // joined before the agent's pipe closes
  bool cancel_requested = false;  // the user cancelled: ends `stopped`
  bool releasing = false;         // the agent is shutting down: back to pending
  // This claim of the item, so a call that returns after the item was
  // dropped (and perhaps claimed again) is told apart.
  std::uint64_t serial = 0;
  bool blocking = false;    // runner->blocking(): its calls go to the workers
  bool in_call = false;     // a runner call has the run (or is making it)
  bool cancel_due = false;  // cancel() is to be made once the call returns
  clock::time_point next_poll{};  // a blocking run is not polled before

  Active() = default;
  Active(const Active&) = delete;
  Active& operator=(const Active&) = delete;
  ~Active() {
    if (builder_thread.joinable()) builder_thread.join();
  }
};

}  // namespace

struct Agent::Impl {
  AgentConfig config;
  std::shared_ptr<Transport> transport;
  std::function<void(const JobEvent&)> on_event;
  std::string id;
  std::string home;
  std::string host;
  std::vector<QueueRef> queues;
  std::size_t next_queue = 0;
  std::map<std::string, std::unique_ptr<Runner>> runners;
  std::map<std::string, Active> active;  // by item id
  // Items claimed by finish_and_claim() as runs ended, for claim_work().
  std::vector<QueueItem> claimed_early;
  GpuPool gpus{0};
  std::unique_ptr<RunnerCalls> calls;
  std::uint64_t next_serial = 0;

  int wake_r = -1, wake_w = -1;
  int lock_fd = -1;
  std::atomic<int> drain_requests{0};
  std::atomic<bool> cancel_requested{false};
  bool releasing = false;
  bool drain_noted = false;  // "draining" said once, at the first stop request

  bool started = false;
  bool finished = false;
  // Whether a claim may find something: set by a wake-up, cleared by a
  // claim that found nothing. It stays set while the agent is full, so a
  // slot that frees up is filled at once.
  bool want_claim = true;
  // Runs to poll on the next turn: those whose descriptor fired, or all of
  // them after a quiet wait (deadlines only poll() acts on, like timeouts).
  std::set<std::string> ready_runs;
  bool poll_all = true;
  // Queue definitions read during one claim pass (a backlog of a thousand
  // items needs one read, not a thousand).
  std::map<QueueRef, QueueDef> pass_queues;
  AgentRecord record;
  clock::time_point next_heartbeat{};
  clock::time_point last_heartbeat{};
  clock::time_point next_expire{};
  clock::time_point next_claim_poll{};
  // Reports the store did not take yet, and when to try them again.
  std::unique_ptr<ReportJournal> journal;
  std::string journal_warning;
  milliseconds report_backoff = kMinReportBackoff;
  clock::time_point next_report_retry = clock::time_point::max();

  ~Impl() {
    // Calls in progress are waited for first: they use the runners and runs.
    if (calls) calls->shutdown();
    // Runs still held are killed by their handles; their items will come
    // back through lease expiry.
    active.clear();
    if (wake_r >= 0) ::close(wake_r);
    if (wake_w >= 0) ::close(wake_w);
    if (lock_fd >= 0) ::close(lock_fd);
  }

  bool stopping() const { return drain_requests.load() > 0 || cancel_requested.load(); }
  bool capacity() const {
    return config.max_jobs < 0 || static_cast<int>(active.size()) < config.max_jobs;
  }

  // ---- identity

  // Stable across restarts of one agent (same host, LAUNCH_HOME, transport,
  // entity and queues) so a restarted agent finds the items it held. A lock
  // file under LAUNCH_HOME keeps two live agents from sharing one id: the
  // second gets a suffix. The home is part of the key because the lock is:
  // two agents with different homes must not end up with one id.
  void choose_id() {
    std::vector<std::string> names;
    for (const auto& q : queues) names.push_back(q.str());
    std::sort(names.begin(), names.end());
    std::string key = home + "\n" + transport->uri() + "\n" + config.entity;
    for (const auto& n : names) key += "\n" + n;
    std::string base = fmt::format("{}-{:08x}", host, fnv1a(key) & 0xffffffffu);
    std::string dir = home + "/agents";
    util::make_directories(dir);
    for (int n = 0; n < 1000; ++n) {
      std::string candidate =
          n == 0 ? base : fmt::format("{}-{}{}", base, ::getpid(), n == 1 ? "" : "-" + std::to_string(n));
      std::string path = dir + "/" + candidate + ".lock";
      int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) {
        throw Error(Errc::io, fmt::format("cannot open agent lock {}: {}", path,
                                          std::strerror(errno)));
      }
      if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
        lock_fd = fd;
        id = candidate;
        return;
      }
      ::close(fd);
    }
    throw Error(Errc::internal, "no free agent id");
  }

  // ---- reporting

  void emit(const QueueItem& item, const std::string& message_override = "") {
    JobEvent ev;
    ev.item_id = item.id;
    ev.queue = item.queue;
    ev.state = item.state;
    ev.run_id = item.run_id;
    ev.exit_code = item.exit_code;
    ev.message = message_override;
    if (ev.message.empty() && item.error && is_terminal(item.state)) {
      ev.message = fmt::format("{}: {}", to_string(item.error->stage), item.error->message);
    }
    log_event(ev);
    if (on_event) on_event(ev);
  }

  // Every JSON log line opens with when and which agent.
  void start_json_line(rapidjson::Writer<rapidjson::StringBuffer>& w) const {
    w.StartObject();
    w.Key("time");
    w.String(iso_time_now());
    w.Key("agent");
    w.String(id);
  }

  void log_event(const JobEvent& ev) {
    std::string line;
    if (config.log_format == "json") {
      rapidjson::StringBuffer buf;
      rapidjson::Writer<rapidjson::StringBuffer> w(buf);
      start_json_line(w);
      // Then the event's own JSON form, the one on_event hosts get.
      json::Document event = json::parse_object(to_json(ev), "job event");
      for (const auto& m : event.GetObject()) {
        w.Key(m.name.GetString(), m.name.GetStringLength());
        m.value.Accept(w);
      }
      w.EndObject();
      line.assign(buf.GetString(), buf.GetSize());
    } else {
      line = fmt::format("{} item {} ({}) {}", iso_time_now(), ev.item_id, ev.queue.str(),
                         to_string(ev.state));
      if (!ev.run_id.empty()) line += " run " + ev.run_id;
      if (ev.exit_code) line += fmt::format(" exit {}", *ev.exit_code);
      if (!ev.message.empty()) line += ": " + ev.message;
    }
    log(LogLevel::info, line);
  }

  void note(LogLevel level, const std::string& text) {
    if (level > log_level()) return;
    if (config.log_format == "json") {
      rapidjson::StringBuffer buf;
      rapidjson::Writer<rapidjson::StringBuffer> w(buf);
      start_json_line(w);
      w.Key("level");
      w.String(to_string(level));
      w.Key("message");
      w.String(text);
      w.EndObject();
      log(level, std::string(buf.GetString(), buf.GetSize()));
    } else {
      log(level, fmt::format("{} agent {}: {}", iso_time_now(), id, text));
    }
  }

  void register_status(AgentStatus status) {
    record.status = status;
    record.running_jobs = static_cast<int>(active.size());
    record.last_seen = now_ms();
    try {
      transport->upsert_agent(record);
    } catch (const Error& e) {
      note(LogLevel::warn, fmt::format("cannot register: {}", e.what()));
    }
  }

  // Going busy is reported at once; going idle waits for the next
  // heartbeat, so a stream of short jobs costs no registration write each.
  void update_status() {
    if (!active.empty() && record.status != AgentStatus::running) {
      register_status(AgentStatus::running);
    }
  }

  // ---- item endings. Each reports to the transport and frees what the
  // item held. A refusal of the report itself (a lease lost meanwhile) is
  // logged; a store that cannot take it now (unreachable, disk full) does
  // not lose it: it is kept in the journal and retried, in order, until it
  // lands — also by the next start of this agent — so a finished job is
  // never left to run again when its lease runs out.

  static PendingReport ending(PendingReport::Kind kind, const std::string& item_id) {
    PendingReport r;
    r.kind = kind;
    r.item_id = item_id;
    return r;
  }

  void report(PendingReport r) {
    if (!journal->empty()) flush_reports();
    if (!journal->empty()) {
      keep(std::move(r), "earlier reports are still waiting");
      return;
    }
    try {
      emit(r.deliver(*transport, id), r.message);
    } catch (const Error& e) {
      refused(std::move(r), e);
    }
  }

  // A report the store refused: kept when the store may take it later,
  // else dropped with a warning (a lost lease will not come back).
  void refused(PendingReport r, const Error& e) {
    if (report_may_heal(e.code())) {
      keep(std::move(r), e.what());
    } else {
      note(LogLevel::warn, fmt::format("item {}: cannot report: {}", r.item_id, e.what()));
    }
  }

  void keep(PendingReport r, const std::string& why) {
    note(LogLevel::warn, fmt::format("item {}: cannot report yet: {}; kept to retry", r.item_id,
                                     why));
    if (auto err = journal->push(std::move(r))) {
      note(LogLevel::warn, fmt::format("cannot save the report journal: {}; the report is kept "
                                       "in memory only",
                                       *err));
    }
    next_report_retry = std::min(next_report_retry, clock::now() + report_backoff);
  }

  // Delivers kept reports, oldest first, until one cannot land yet.
  void flush_reports() {
    while (!journal->empty()) {
      PendingReport r = journal->reports().front();
      try {
        QueueItem item = r.deliver(*transport, id);
        note(LogLevel::info, fmt::format("item {}: a kept report was delivered", r.item_id));
        emit(item, r.message);
      } catch (const Error& e) {
        if (report_may_heal(e.code())) {
          report_backoff = std::min(report_backoff * 2, kMaxReportBackoff);
          next_report_retry = clock::now() + report_backoff;
          return;
        }
        note(LogLevel::warn,
             fmt::format("item {}: a kept report was refused, dropped: {}", r.item_id, e.what()));
      }
      if (auto err = journal->pop()) {
        note(LogLevel::warn, fmt::format("cannot save the report journal: {}", *err));
      }
    }
    report_backoff = kMinReportBackoff;
    next_report_retry = clock::time_point::max();
  }

  void forget(const std::string& item_id) {
    auto it = active.find(item_id);
    if (it == active.end()) return;
    gpus.give_back(it->second.gpus);
    active.erase(it);
    update_status();
  }

  // Back to its queue, unless it was cancelled meanwhile (the agent has
  // not heard yet): then it ends stopped.
  void release(const std::string& item_id) {
    try {
      emit(transport->requeue(item_id, id, RequeueReason::released));
      return;
    } catch (const Error& e) {
      if (e.code() != Errc::state) {
        note(LogLevel::warn, fmt::format("item {}: cannot release: {}", item_id, e.what()));
        return;
      }
    }
    report(ending(PendingReport::Kind::confirm_stopped, item_id));
  }

  void fail(const std::string& item_id, ErrorStage stage, const std::string& message,
            std::optional<int> exit_code = std::nullopt) {
    PendingReport r = ending(PendingReport::Kind::fail, item_id);
    r.error = ItemError{stage, message};
    r.exit_code = exit_code;
    report(std::move(r));
    forget(item_id);
  }

  // An item that ends before its run started, or whose run has ended.
  void end_early(Active& a, ErrorStage stage, const std::string& message) {
    std::string item_id = a.item.id;
    if (a.cancel_requested) {
      report(ending(PendingReport::Kind::confirm_stopped, item_id));
      forget(item_id);
    } else if (a.releasing) {
      release(item_id);
      forget(item_id);
    } else {
      fail(item_id, stage, message);
    }
  }

  // Reports a finished run. When the agent wants more work, the slot it
  // frees is refilled in the same call (one round trip on postgres://), from
  // the queue whose turn it is.
  void finish(const Active& a, int exit_code) {
    const std::string& item_id = a.item.id;
    int held = static_cast<int>(active.size() - 1 + claimed_early.size());
    bool refill = want_claim && !stopping() && !queues.empty() &&
                  (config.max_jobs < 0 || held < config.max_jobs);
    PendingReport done = ending(PendingReport::Kind::finish, item_id);
    done.exit_code = exit_code;
    if (!refill || !journal->empty()) {
      report(std::move(done));
      return;
    }
    std::size_t qi = next_queue % queues.size();
    try {
      FinishAndClaim r = transport->finish_and_claim(item_id, id, exit_code, {queues[qi]});
      if (r.next) {
        note(LogLevel::debug, fmt::format("poll {}: claimed item {} (on finishing {})",
                                          queues[qi].str(), r.next->id, item_id));
        next_queue = qi + 1;
        claimed_early.push_back(std::move(*r.next));
      } else {
        note(LogLevel::debug, fmt::format("poll {}: nothing pending (on finishing {})",
                                          queues[qi].str(), item_id));
      }
      emit(r.finished);
    } catch (const Error& e) {
      refused(std::move(done), e);
    }
  }

  void run_ended(Active& a, const RunStatus& st) {
    std::string item_id = a.item.id;
    if (a.cancel_requested) {
      report(ending(PendingReport::Kind::confirm_stopped, item_id));
    } else if (a.releasing) {
      release(item_id);
    } else {
      switch (st.phase) {
        case RunPhase::finished:
          finish(a, st.exit_code.value_or(0));
          break;
        case RunPhase::preempted: {
          PendingReport r = ending(PendingReport::Kind::requeue, item_id);
          r.reason = RequeueReason::preempted;
          r.message = st.message.empty() ? "preempted" : "preempted: " + st.message;
          report(std::move(r));
          break;
        }
        case RunPhase::stopped:
        case RunPhase::failed:
        case RunPhase::running: {
          std::string msg = st.message;
          if (msg.empty()) {
            msg = st.phase == RunPhase::stopped ? "stopped by the target"
                  : st.exit_code ? fmt::format("exited with code {}", *st.exit_code)
                                 : "the run failed";
          }
          PendingReport r = ending(PendingReport::Kind::fail, item_id);
          r.error = ItemError{ErrorStage::run, msg};
          r.exit_code = st.exit_code;
          report(std::move(r));
          break;
        }
      }
    }
    forget(item_id);
  }

  // ---- starting items

  Runner* runner_for(const std::string& resource) {
    auto it = runners.find(resource);
    if (it != runners.end()) return it->second.get();
    RunnerContext ctx;
    ctx.launch_home = home;
    ctx.agent_id = id;
    ctx.environment_type = config.environment_type;
    ctx.region = config.environment_region;
    ctx.registry_uri = config.builder.registry.uri;
    auto runner = make_runner(resource, ctx);
    if (!runner) {
      throw Error(Errc::not_found,
                  fmt::format("resource \"{}\": its runner factory returned nothing", resource));
    }
    Runner* raw = runner.get();
    runners[resource] = std::move(runner);
    return raw;
  }

  std::string log_dir_for(const std::string& item_id) const {
    return run_directory(home, item_id);
  }

  // What needs no image: the runner, and the job as the runner will see it
  // but for its config.
  void resolve(Active& a) {
    const JobSpec& spec = a.item.spec;
    a.runner = runner_for(a.queue.resource);
    ResolvedJob& job = a.job;
    job.item = a.item;
    job.queue = a.queue;
    job.argv = spec.entry_point;
    job.argv.insert(job.argv.end(), spec.args.begin(), spec.args.end());
    job.env = spec.env;
    job.env["LAUNCH_RUN_ID"] = a.item.run_id;
    job.env["LAUNCH_ITEM_ID"] = a.item.id;
    job.env["LAUNCH_QUEUE"] = a.item.queue.str();
    job.env["LAUNCH_ENTITY"] = a.item.queue.entity;
    job.env["LAUNCH_AUTHOR"] = spec.author;
    job.env["LAUNCH_RESUME_COUNT"] = std::to_string(a.item.resume_count);
    job.env["LAUNCH_CONFIG"] = spec.run_config.empty() ? "{}" : spec.run_config;
    job.log_dir = log_dir_for(a.item.id);
    job.agent_id = id;
    job.image = spec.source.kind == JobSource::Kind::image ? spec.source.image : "";
    util::make_directories(job.log_dir);
  }

  // The config (template values, deep merge, macros, secure mode: one pass,
  // once the image is known for ${image_uri}) and the GPUs the runner wants.
  void finish_resolve(Active& a) {
    const JobSpec& spec = a.item.spec;
    SecureMode secure;
    secure.on = config.secure_mode;
    secure.entry_point_overridden = a.runner->needs_image() && !spec.entry_point.empty();
    a.job.config = resolve_config(a.queue, a.item, MacroContext{a.job.image, process_env}, secure);
    a.gpus_wanted = a.runner->gpus_wanted(a.job);
    if (a.gpus_wanted < 0) {
      throw Error(Errc::invalid, fmt::format("{} config: gpus {} must not be negative",
                                             a.queue.resource, a.gpus_wanted));
    }
    if (a.gpus_wanted > gpus.size()) {
      throw Error(Errc::invalid,
                  fmt::format("{} config: gpus {}: this agent has {} GPU{}{}", a.queue.resource,
                              a.gpus_wanted, gpus.size(), gpus.size() == 1 ? "" : "s",
                              gpus.size() == 0 ? " (no nvidia-smi, or set `gpus` in "
                                                 "launch-config.yaml)"
                                               : ""));
    }
  }

  void launch_item(QueueItem item) {
    emit(item);
    std::string item_id = item.id;
    Active& a = active[item_id];
    a.item = std::move(item);
    a.serial = ++next_serial;
    update_status();
    try {
      auto cached = pass_queues.find(a.item.queue);
      if (cached == pass_queues.end()) {
        cached = pass_queues.emplace(a.item.queue, transport->get_queue(a.item.queue)).first;
      }
      a.queue = cached->second;
      resolve(a);
      // A job the config refuses (a template value, secure mode, too many
      // GPUs) is refused before anything is built for it: all but
      // ${image_uri} is known now. The config is resolved again once the
      // image is.
      if (a.runner->needs_image()) finish_resolve(a);
    } catch (const std::exception& e) {
      fail(item_id, ErrorStage::agent, e.what());
      return;
    }
    a.blocking = a.runner->blocking();
    if (a.runner->needs_image()) {
      a.phase = Phase::building;
      BuildRequest req;
      req.item = a.item;
      req.queue = a.queue;
      req.resource = a.queue.resource;
      req.log_path = a.job.log_dir + "/build.log";
      a.build_cancel = std::make_shared<std::atomic<bool>>(false);
      BuilderConfig bc = config.builder;
      int wake = wake_w;
      std::packaged_task<BuildResult()> task([bc, req, cancel = a.build_cancel]() mutable {
        req.cancel = cancel.get();
        return make_builder(bc)->build(req);
      });
      a.build = task.get_future();
      // The wake-up comes after the result is in the future, so the loop
      // always finds it ready.
      a.builder_thread = std::thread([task = std::move(task), wake]() mutable {
        task();
        char c = 'b';
        (void)!::write(wake, &c, 1);
      });
      return;
    }
    after_build(item_id);
  }

  void after_build(const std::string& item_id) {
    Active& a = active[item_id];
    try {
      finish_resolve(a);
    } catch (const std::exception& e) {
      end_early(a, ErrorStage::agent, e.what());
      return;
    }
    if (a.gpus_wanted > 0) {
      a.phase = Phase::waiting_gpus;
      try_start_waiting(a);
    } else {
      submit(a);
    }
  }

  void try_start_waiting(Active& a) {
    auto devices = gpus.take(a.gpus_wanted);
    if (!devices) return;  // stays waiting, lease kept by heartbeats
    a.gpus = *devices;
    submit(a);
  }

  void submit(Active& a) {
    a.phase = Phase::submitting;
    a.job.gpus = a.gpus;
    RunnerCall call;
    call.kind = RunnerCall::Kind::submit;
    call.runner = a.runner;
    call.job = std::move(a.job);  // not needed here any more
    call_runner(a, std::move(call));
  }

  // The runner's submit returned. Cancelled (or the agent began shutting
  // down) meanwhile: the new run is cancelled and followed to its end.
  void submitted(Active& a, std::unique_ptr<Run> run, const std::optional<std::string>& error) {
    std::string item_id = a.item.id;
    if (!run) {
      end_early(a, ErrorStage::agent, error.value_or("the runner returned no run"));
      return;
    }
    a.run = std::move(run);
    a.phase = Phase::running;
    a.next_poll = clock::now();
    if (a.cancel_requested || a.releasing) {
      cancel_run(a);
      return;
    }
    try {
      QueueItem started_item = transport->start(item_id, id, a.item.run_id);
      a.item = started_item;
      emit(started_item);
    } catch (const Error& e) {
      // Cancelled between claim and start, or the lease is gone.
      QueueItem now;
      bool known = false;
      try {
        now = transport->get(item_id);
        known = true;
      } catch (const Error&) {
      }
      if (known && now.state == ItemState::stopping && now.agent_id == id) {
        a.cancel_requested = true;
        emit(now);
        cancel_run(a);
      } else {
        note(LogLevel::warn, fmt::format("item {}: cannot start: {}; dropping its run",
                                         item_id, e.what()));
        forget(item_id);  // the run handle kills the process
      }
    }
  }

  // ---- runner calls: on a worker when the runner may block, else here.
  // The call carries the run, so nothing else uses it meanwhile.

  // A fast runner's result is acted on before this returns, or, given
  // `later`, collected there for the caller to hand to called().
  void call_runner(Active& a, RunnerCall call, std::vector<RunnerCall>* later = nullptr) {
    call.item_id = a.item.id;
    call.serial = a.serial;
    a.in_call = true;
    if (a.blocking) {
      calls->post(std::move(call));
      return;
    }
    perform(call);
    if (later) {
      later->push_back(std::move(call));
    } else {
      called(std::move(call));
    }
  }

  // Asks a's run to stop: now, or when the call it is in returns.
  // The build thread sees the flag and stops; its wake-up then ends the
  // item (stopped, or back to pending when the agent is releasing it).
  void stop_build(Active& a) {
    if (a.build_cancel && !a.build_cancel->exchange(true)) {
      note(LogLevel::info, fmt::format("item {}: stopping its build", a.item.id));
    }
  }

  void cancel_run(Active& a) {
    a.cancel_due = true;
    if (a.in_call || !a.run) return;
    a.cancel_due = false;
    RunnerCall call;
    call.kind = RunnerCall::Kind::cancel;
    call.run = std::move(a.run);
    call.grace = grace();
    call_runner(a, std::move(call));
  }

  void take_calls() {
    for (auto& call : calls->take()) called(std::move(call));
  }

  // A runner call returned, on this thread.
  void called(RunnerCall call) {
    auto it = active.find(call.item_id);
    if (it == active.end() || it->second.serial != call.serial) {
      // The item was dropped meanwhile (its lease lost); its run goes too.
      if (call.run) {
        note(LogLevel::warn, fmt::format("item {}: dropped while the runner's {} ran; "
                                         "dropping its run {}",
                                         call.item_id, to_string(call.kind), call.run->id()));
      }
      return;
    }
    Active& a = it->second;
    a.in_call = false;
    switch (call.kind) {
      case RunnerCall::Kind::submit:
        submitted(a, std::move(call.run), call.error);
        return;
      case RunnerCall::Kind::reattach:
        reattached(a, std::move(call.run), call.error);
        return;
      case RunnerCall::Kind::poll:
        a.run = std::move(call.run);
        for (const auto& w : call.status.warnings) warn(call.item_id, w);
        if (call.error) {
          call.status = RunStatus{};
          call.status.phase = RunPhase::failed;
          call.status.message = "poll: " + *call.error;
        }
        if (call.status.phase != RunPhase::running) {
          run_ended(a, call.status);
          return;
        }
        a.next_poll = clock::now() + kRunPoll;
        break;
      case RunnerCall::Kind::cancel:
        a.run = std::move(call.run);
        if (call.error) {
          note(LogLevel::warn, fmt::format("item {}: cancel: {}", call.item_id, *call.error));
        }
        break;
    }
    if (a.cancel_due) cancel_run(a);
  }

  // A runner's warning on the item. Not journaled: a warning lost with the
  // transport is logged, and the run goes on.
  void warn(const std::string& item_id, const std::string& message) {
    note(LogLevel::warn, fmt::format("item {}: {}", item_id, message));
    try {
      transport->add_warning(item_id, message);
    } catch (const Error& e) {
      note(LogLevel::warn, fmt::format("item {}: cannot add the warning: {}", item_id, e.what()));
    }
  }

  std::chrono::milliseconds grace() const {
    return std::chrono::milliseconds(static_cast<std::int64_t>(config.stopped_run_timeout) * 1000);
  }

  // ---- the loop's pieces

  void start_up() {
    started = true;
    try {
      transport->expire_leases();
    } catch (const Error& e) {
      note(LogLevel::warn, fmt::format("cannot expire leases: {}", e.what()));
    }
    register_status(AgentStatus::polling);
    if (!config.source.empty()) note(LogLevel::info, "read config from " + config.source);
    note(LogLevel::info,
         fmt::format("started (queues {}, max_jobs {}, GPUs {}, transport {})", queue_list(),
                     config.max_jobs, gpus.size(), util::mask_password(transport->uri())));
    if (!journal_warning.empty()) {
      note(LogLevel::warn, fmt::format("report journal: {}", journal_warning));
    }
    if (!journal->empty()) {
      note(LogLevel::info, fmt::format("{} reports kept by an earlier run of this agent",
                                       journal->size()));
      flush_reports();
    }
    reattach();
    auto now = clock::now();
    next_heartbeat = now + heartbeat_interval();
    next_expire = now + milliseconds(10000);
  }

  std::string queue_list() const {
    std::string s;
    for (const auto& q : queues) s += (s.empty() ? "" : ", ") + q.str();
    return s;
  }

  // Items an earlier run of this agent held: followed again when the runner
  // can find their run, else ended (a local process cannot be re-followed:
  // the item fails at stage agent rather than run twice).
  void reattach() {
    std::vector<QueueItem> held;
    try {
      ItemFilter f;
      f.agent_id = id;
      held = transport->list(f);
    } catch (const Error& e) {
      note(LogLevel::warn, fmt::format("cannot list held items: {}", e.what()));
      return;
    }
    for (auto& item : held) {
      if (is_terminal(item.state) || item.state == ItemState::pending) continue;
      if (item.agent_id != id) continue;
      // Its run ended before the restart; the kept report says how.
      if (journal->holds(item.id)) continue;
      std::string item_id = item.id;
      Active& a = active[item_id];
      a.item = item;
      a.serial = ++next_serial;
      a.phase = Phase::attaching;
      a.cancel_requested = item.state == ItemState::stopping;
      RunnerCall call;
      call.kind = RunnerCall::Kind::reattach;
      try {
        a.queue = transport->get_queue(item.queue);
        a.runner = runner_for(a.queue.resource);
        a.blocking = a.runner->blocking();
      } catch (const std::exception& e) {
        reattached(a, nullptr, std::string(e.what()));
        continue;
      }
      call.runner = a.runner;
      call.item = item;
      call.queue = a.queue;
      call_runner(a, std::move(call));
    }
    update_status();
  }

  // The runner's reattach returned: a run to follow again, or none (the
  // item ends).
  void reattached(Active& a, std::unique_ptr<Run> run, const std::optional<std::string>& error) {
    std::string item_id = a.item.id;
    if (error) note(LogLevel::warn, fmt::format("item {}: reattach failed: {}", item_id, *error));
    if (!run) {
      if (a.cancel_requested) {
        report(ending(PendingReport::Kind::confirm_stopped, item_id));
      } else if (!error && a.item.state == ItemState::claimed && a.runner &&
                 a.runner->reattach_finds_every_run()) {
        // Claimed, never started: it runs now, as if just claimed.
        QueueItem item = a.item;
        forget(item_id);
        launch_item(std::move(item));
        return;
      } else {
        PendingReport r = ending(PendingReport::Kind::fail, item_id);
        r.error = ItemError{ErrorStage::agent, "agent restarted; run lost"};
        report(std::move(r));
      }
      forget(item_id);
      return;
    }
    a.run = std::move(run);
    a.phase = Phase::running;
    a.next_poll = clock::now();
    note(LogLevel::info, fmt::format("item {}: following its run {} again", item_id, a.run->id()));
    if (a.cancel_requested || a.releasing) {
      cancel_run(a);
    } else if (a.item.state == ItemState::claimed) {
      try {
        a.item = transport->start(item_id, id, a.item.run_id);
        emit(a.item);
      } catch (const Error& e) {
        note(LogLevel::warn, fmt::format("item {}: cannot start: {}", item_id, e.what()));
      }
    }
  }

  void claim_work() {
    pass_queues.clear();
    struct ClearCache {
      std::map<QueueRef, QueueDef>& m;
      ~ClearCache() { m.clear(); }
    } clear_cache{pass_queues};
    // What finish() claimed first; handed back if the agent began to stop
    // since (a drain claims nothing new).
    std::vector<QueueItem> early;
    early.swap(claimed_early);
    for (auto& item : early) {
      if (stopping()) {
        release(item.id);
      } else {
        launch_item(std::move(item));
      }
    }
    if (queues.empty()) return;
    while (!stopping() && capacity()) {
      bool got = false;
      for (std::size_t i = 0; i < queues.size(); ++i) {
        std::size_t qi = (next_queue + i) % queues.size();
        std::optional<QueueItem> item;
        try {
          item = transport->claim({queues[qi]}, id);
        } catch (const Error& e) {
          note(LogLevel::warn, fmt::format("claim on {} failed: {}", queues[qi].str(), e.what()));
          continue;
        }
        if (item) {
          note(LogLevel::debug,
               fmt::format("poll {}: claimed item {}", queues[qi].str(), item->id));
          next_queue = qi + 1;
          launch_item(std::move(*item));
          // Holding an item: heartbeat at the busy pace from now on, so a
          // cancel of this very item is seen within a second too.
          next_heartbeat = std::min(next_heartbeat, clock::now() + kBusyHeartbeat);
          got = true;
          break;
        }
        note(LogLevel::debug, fmt::format("poll {}: nothing pending", queues[qi].str()));
      }
      if (!got) {
        want_claim = false;
        return;
      }
    }
  }

  void apply_release() {
    if (!drain_noted && drain_requests.load() == 1 && !cancel_requested.load()) {
      drain_noted = true;
      if (!active.empty()) {
        note(LogLevel::info,
             fmt::format("draining: {} running job(s) finish, nothing new is claimed; a "
                         "second stop (SIGTERM to launch-agent) cancels them",
                         active.size()));
      }
    }
    if (releasing || !(drain_requests.load() >= 2 || cancel_requested.load())) return;
    releasing = true;
    note(LogLevel::info, "cancelling running jobs; their items go back to their queues");
    std::vector<std::string> waiting;
    for (auto& kv : active) {
      Active& a = kv.second;
      a.releasing = true;
      // Items still being submitted or reattached are cancelled once their
      // runs are back.
      if (a.phase == Phase::running) cancel_run(a);
      if (a.phase == Phase::building) stop_build(a);
      if (a.phase == Phase::waiting_gpus) waiting.push_back(kv.first);
    }
    for (const auto& item_id : waiting) end_early(active[item_id], ErrorStage::agent, "");
  }

  void follow_runs() {
    struct Reset {
      Impl& m;
      ~Reset() {
        m.ready_runs.clear();
        m.poll_all = false;
      }
    } reset{*this};
    std::vector<std::string> built, startable;
    std::vector<RunnerCall> polled;
    auto now = clock::now();
    for (auto& kv : active) {
      Active& a = kv.second;
      if (a.phase == Phase::building) {
        if (a.build.valid() &&
            a.build.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
          built.push_back(kv.first);
        }
      } else if (a.phase == Phase::running && a.run && !a.in_call && poll_due(kv.first, a, now)) {
        RunnerCall call;
        call.kind = RunnerCall::Kind::poll;
        call.run = std::move(a.run);
        call_runner(a, std::move(call), &polled);
      }
    }
    // Those that ended leave `active` here, not while it is walked above.
    for (auto& call : polled) called(std::move(call));
    for (const auto& item_id : built) {
      Active& a = active[item_id];
      try {
        BuildResult r = a.build.get();
        a.job.image = r.image;
      } catch (const std::exception& e) {
        end_early(a, ErrorStage::build, e.what());
        continue;
      }
      if (a.cancel_requested || a.releasing) {
        end_early(a, ErrorStage::agent, "");
        continue;
      }
      after_build(item_id);
    }
    // GPUs freed above may let a waiting item start, in claim order.
    for (auto& kv : active) {
      if (kv.second.phase == Phase::waiting_gpus) startable.push_back(kv.first);
    }
    for (const auto& item_id : startable) {
      auto it = active.find(item_id);
      if (it != active.end() && it->second.phase == Phase::waiting_gpus) {
        try_start_waiting(it->second);
      }
    }
  }

  bool poll_due(const std::string& item_id, const Active& a, clock::time_point now) const {
    if (ready_runs.count(item_id)) return true;
    bool due = poll_all || a.run->wait_fd() < 0 || a.cancel_requested || a.releasing;
    // A run whose every poll may be a remote call is polled at a pace, not
    // on every turn of the loop.
    return due && (!a.blocking || now >= a.next_poll);
  }

  milliseconds heartbeat_interval() const {
    if (!active.empty() || !journal->empty()) return kBusyHeartbeat;
    return milliseconds(10000);
  }

  void heartbeat() {
    std::vector<std::string> ids;
    for (const auto& kv : active) ids.push_back(kv.first);
    // An item whose ending is kept keeps its lease while the store answers
    // heartbeats, so it is not handed out again before its report lands.
    for (const auto& r : journal->reports()) {
      if (!active.count(r.item_id)) ids.push_back(r.item_id);
    }
    HeartbeatReply reply;
    note(LogLevel::trace, fmt::format("heartbeat ({} items held)", ids.size()));
    try {
      reply = transport->heartbeat(id, ids);
    } catch (const Error& e) {
      note(LogLevel::warn, fmt::format("heartbeat failed: {}", e.what()));
      return;
    }
    for (const auto& item_id : reply.cancel_requested) {
      auto it = active.find(item_id);
      if (it == active.end() || it->second.cancel_requested) continue;
      Active& a = it->second;
      a.cancel_requested = true;
      QueueItem shown = a.item;
      shown.state = ItemState::stopping;
      emit(shown, "cancel requested");
      if (a.phase == Phase::running) {
        cancel_run(a);
      } else if (a.phase == Phase::waiting_gpus) {
        end_early(a, ErrorStage::agent, "");
      } else if (a.phase == Phase::building) {
        stop_build(a);
      }  // a submit or reattach in progress ends first, then the run is cancelled
    }
    for (const auto& item_id : reply.lost) {
      if (!active.count(item_id)) continue;
      note(LogLevel::warn,
           fmt::format("item {}: lease lost (another agent or the queue took it back); "
                       "dropping its run",
                       item_id));
      auto it = active.find(item_id);
      if (it->second.phase == Phase::building && it->second.build.valid()) {
        stop_build(it->second);
        it->second.build.wait();
      }
      forget(item_id);
    }
    AgentStatus want = active.empty() ? AgentStatus::polling : AgentStatus::running;
    if (record.running_jobs != static_cast<int>(active.size()) || record.status != want) {
      register_status(want);
    }
  }

  void timers() {
    auto now = clock::now();
    if (!journal->empty() && now >= next_report_retry) flush_reports();
    if (now >= next_heartbeat) {
      want_claim = true;  // a safety net for a wake-up the transport missed
      heartbeat();
      last_heartbeat = clock::now();
      next_heartbeat = last_heartbeat + heartbeat_interval();
    }
    if (now >= next_expire) {
      try {
        if (transport->expire_leases() > 0) want_claim = true;
      } catch (const Error& e) {
        note(LogLevel::warn, fmt::format("cannot expire leases: {}", e.what()));
      }
      next_expire = clock::now() + milliseconds(10000);
    }
    if (transport->notify_fd() < 0 && now >= next_claim_poll) {
      want_claim = true;
      next_claim_poll = now + kClaimPoll;
    }
  }

  void wait(milliseconds timeout) {
    std::vector<struct pollfd> fds;
    fds.push_back({wake_r, POLLIN, 0});
    int notify = -1;
    bool claiming = !stopping() && capacity();
    if (claiming || !active.empty()) {
      notify = transport->notify_fd();
      if (notify >= 0) fds.push_back({notify, POLLIN, 0});
    }
    // Runner calls that return wake the loop through it.
    fds.push_back({calls->fd(), POLLIN, 0});
    auto now = clock::now();
    auto until = next_heartbeat;
    bool unwatched = false;
    std::vector<const std::string*> fd_items;  // fds[first_run_fd + i] is fd_items[i]'s
    std::size_t first_run_fd = fds.size();
    for (const auto& kv : active) {
      const Active& a = kv.second;
      if (a.phase == Phase::building) {
        continue;  // the build thread writes to the wake pipe when done
      }
      // A run in a call is not watched: the call's return wakes the loop.
      if (a.phase != Phase::running || !a.run) continue;
      int fd = a.run->wait_fd();
      if (fd >= 0) {
        fds.push_back({fd, POLLIN, 0});
        fd_items.push_back(&kv.first);
      }
      // Deadlines only poll() acts on (a timeout, a kill after grace).
      if (fd < 0 || a.cancel_requested || a.releasing) {
        if (a.blocking) {
          until = std::min(until, a.next_poll);
        } else {
          unwatched = true;
        }
      }
    }
    if (next_expire < until) until = next_expire;
    if (next_report_retry < until) until = next_report_retry;
    if (notify < 0 && claiming && next_claim_poll < until) until = next_claim_poll;
    auto left = std::chrono::duration_cast<milliseconds>(until - now);
    if (unwatched) left = std::min(left, kRunPoll);
    if (want_claim && claiming) left = milliseconds(0);
    left = std::max(milliseconds(0), std::min(left, timeout));
    int n = ::poll(fds.data(), static_cast<nfds_t>(fds.size()), static_cast<int>(left.count()));
    if (n <= 0) {
      poll_all = true;
      return;
    }
    for (std::size_t i = 0; i < fd_items.size(); ++i) {
      if (fds[first_run_fd + i].revents) ready_runs.insert(*fd_items[i]);
    }
    if (fds[0].revents) {
      char buf[64];
      while (::read(wake_r, buf, sizeof buf) > 0) {
      }
    }
    if (notify >= 0 && fds[1].revents) {
      transport->drain_notify();
      want_claim = true;
      // A wake-up may be a cancel: look soon rather than at the next beat,
      // but not on every push of a burst.
      if (!active.empty()) {
        next_heartbeat = std::min(next_heartbeat,
                                  std::max(clock::now(), last_heartbeat + milliseconds(250)));
      }
    }
  }

  bool step(milliseconds timeout) {
    if (finished) return false;
    if (!started) start_up();
    take_calls();
    apply_release();
    follow_runs();
    // New work first: a heartbeat can wait a millisecond, a dispatch should not.
    if (!claimed_early.empty() || (want_claim && !stopping())) claim_work();
    timers();
    if (want_claim && !stopping()) claim_work();
    if (stopping() && active.empty()) {
      if (!journal->empty()) flush_reports();
      if (!journal->empty()) {
        note(LogLevel::warn,
             fmt::format("{} reports could not be delivered; the next start of this agent "
                         "delivers them",
                         journal->size()));
      }
      finished = true;
      register_status(AgentStatus::stopped);
      note(LogLevel::info, "stopped");
      return false;
    }
    wait(timeout);
    return true;
  }
};

Agent::Agent(AgentConfig config, std::shared_ptr<Transport> transport)
    : impl_(std::make_unique<Impl>()) {
  config.validate();
  if (!transport) throw Error(Errc::invalid, "agent: no transport");
  Impl& m = *impl_;
  m.config = std::move(config);
  m.transport = std::move(transport);
  m.home = m.config.launch_home.empty() ? launch_home() : m.config.launch_home;
  m.host = util::host_name();
  if (m.config.entity.empty()) {
    throw Error(Errc::invalid, "agent: entity is empty (set -e, LAUNCH_ENTITY or `entity`)");
  }
  for (const auto& q : m.config.queues) m.queues.push_back(QueueRef::parse(q, m.config.entity));
  m.gpus = GpuPool(m.config.gpus >= 0 ? m.config.gpus : detect_gpus());
  int slots = m.config.max_jobs < 0 ? kMaxRunnerThreads : m.config.max_jobs + 1;
  m.calls = std::make_unique<RunnerCalls>(
      static_cast<std::size_t>(std::min(slots, kMaxRunnerThreads)));
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw Error(Errc::io, fmt::format("agent: pipe: {}", std::strerror(errno)));
  }
  m.wake_r = fds[0];
  m.wake_w = fds[1];
  util::make_directories(m.home);
  m.choose_id();
  m.record.id = m.id;
  m.journal = std::make_unique<ReportJournal>(m.home + "/agents/" + m.id + ".reports",
                                              &m.journal_warning);
  m.record.host = m.host;
  m.record.pid = static_cast<int>(::getpid());
  m.record.version = LAUNCH_VERSION_STRING;
  m.record.entity = m.config.entity;
  for (const auto& q : m.queues) m.record.queues.push_back(q.str());
  m.record.max_jobs = m.config.max_jobs;
  m.record.started_at = now_ms();
  m.record.status = AgentStatus::stopped;  // until start-up registers it
}

Agent::~Agent() = default;

void Agent::on_event(std::function<void(const JobEvent&)> callback) {
  impl_->on_event = std::move(callback);
}

void Agent::run() {
  while (impl_->step(std::chrono::milliseconds(60000))) {
  }
}

bool Agent::step(std::chrono::milliseconds timeout) { return impl_->step(timeout); }

void Agent::stop(StopMode mode) {
  int saved = errno;
  if (mode == StopMode::cancel) {
    impl_->cancel_requested.store(true);
  } else {
    impl_->drain_requests.fetch_add(1);
  }
  char c = 's';
  (void)!::write(impl_->wake_w, &c, 1);
  errno = saved;
}

const std::string& Agent::id() const { return impl_->id; }

int Agent::running_jobs() const { return static_cast<int>(impl_->active.size()); }

const AgentConfig& Agent::config() const { return impl_->config; }

}  // namespace launch
