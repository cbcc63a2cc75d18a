// The commands. Each prints its result on stdout (human text, or JSON with
// --json) and throws launch::Error on failure; main() turns that into one
// line on stderr and a non-zero exit.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>

#include "cli.hpp"

namespace cli {

using launch::Errc;
using launch::Error;

namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(150);

// "1 item", "3 items".
std::string items_text(std::size_t n) {
  return std::to_string(n) + (n == 1 ? " item" : " items");
}

void print(const std::string& text) {
  std::cout << text;
  if (!text.empty() && text.back() != '\n') std::cout << '\n';
}

launch::ItemFilter filter_for(Context& ctx, const ListOptions& opts) {
  launch::ItemFilter f;
  if (!opts.queue.empty()) f.queue = ctx.queue_ref(opts.queue);
  if (!opts.state.empty()) {
    try {
      f.state = launch::parse_item_state(opts.state);
    } catch (const Error&) {
      throw Error(Errc::invalid,
                  "--state \"" + opts.state +
                      "\": expected pending, claimed, running, stopping, finished, "
                      "failed or stopped");
    }
  }
  f.limit = opts.limit;
  return f;
}

}  // namespace

// ---------------------------------------------------------------- queues

int queue_create(Context& ctx, const QueueCreateOptions& opts) {
  launch::QueueDef q;
  if (!opts.file.empty()) {
    if (!opts.name.empty() || !opts.resource.empty() || !opts.config.empty() ||
        opts.prioritize) {
      throw Error(Errc::invalid,
                  "queue create: -f FILE describes the whole queue; give no NAME, "
                  "-r, --config or --prioritize with it");
    }
    q = launch::parse_queue(read_file(opts.file), ctx.entity(),
                            opts.file == "-" ? "stdin" : opts.file);
    if (!ctx.entity_flag.empty() && q.entity != ctx.entity_flag) {
      throw Error(Errc::invalid, "queue create: " + opts.file + " names entity \"" +
                                     q.entity + "\" but -e gives \"" +
                                     ctx.entity_flag + "\"");
    }
  } else {
    if (opts.name.empty()) {
      throw Error(Errc::invalid, "queue create: give NAME -r RESOURCE, or -f FILE");
    }
    if (opts.resource.empty()) {
      throw Error(Errc::invalid, "queue create " + opts.name + ": -r RESOURCE is required");
    }
    auto ref = ctx.queue_ref(opts.name);
    q.entity = ref.entity;
    q.name = ref.name;
    q.resource = opts.resource;
    q.prioritization = opts.prioritize;
    if (!opts.config.empty()) {
      std::string text = is_regular_file(opts.config) ? read_file(opts.config)
                                                      : text_or_file(opts.config);
      q.config = launch::config_to_json(text, "--config");
    }
  }
  if (opts.lease_seconds) q.lease_seconds = *opts.lease_seconds;
  if (opts.max_attempts) q.max_attempts = *opts.max_attempts;
  q.validate();
  auto& t = ctx.transport();
  t.create_queue(q);
  auto stored = t.get_queue(q.ref());
  if (ctx.json) {
    print(launch::to_json(stored));
  } else {
    print("created queue " + stored.ref().str());
  }
  return 0;
}

int queue_list(Context& ctx) {
  auto& t = ctx.transport();
  auto queues = t.list_queues();
  if (ctx.json) {
    std::vector<std::string> out;
    for (const auto& q : queues) out.push_back(launch::to_json(q));
    print(json_array(out));
    return 0;
  }
  std::map<launch::QueueRef, std::pair<int, int>> counts;  // pending, active
  for (const auto& item : t.list()) {
    if (item.state == launch::ItemState::pending) {
      ++counts[item.queue].first;
    } else if (!launch::is_terminal(item.state)) {
      ++counts[item.queue].second;
    }
  }
  Table table({"QUEUE", "RESOURCE", "PRIORITIZED", "PENDING", "ACTIVE", "CREATED"});
  std::int64_t now = launch::now_ms();
  for (const auto& q : queues) {
    auto c = counts[q.ref()];
    table.add({q.ref().str(), q.resource, q.prioritization ? "yes" : "no",
               std::to_string(c.first), std::to_string(c.second),
               age(q.created_at, now) + " ago"});
  }
  std::cout << table.str();
  return 0;
}

int queue_show(Context& ctx, const std::string& name) {
  auto q = ctx.transport().get_queue(ctx.queue_ref(name));
  print(ctx.json ? launch::to_json(q) : queue_details(q));
  return 0;
}

int queue_delete(Context& ctx, const std::string& name, bool force) {
  auto ref = ctx.queue_ref(name);
  auto& t = ctx.transport();
  t.get_queue(ref);  // an unknown queue is named as such
  launch::ItemFilter f;
  f.queue = ref;
  auto items = t.list(f);
  int pending = 0, active = 0;
  for (const auto& item : items) {
    if (item.state == launch::ItemState::pending) {
      ++pending;
    } else if (!launch::is_terminal(item.state)) {
      ++active;
    }
  }
  if ((pending > 0 || active > 0) && !force) {
    throw Error(Errc::state,
                "queue " + ref.str() + " has " +
                    items_text(static_cast<std::size_t>(pending + active)) +
                    " not yet ended (" + std::to_string(pending) + " pending, " +
                    std::to_string(active) +
                    " claimed or running); give --force to delete it with all its items");
  }
  if (active > 0) {
    // Its agent is still at work on them: the store refuses, and says so.
    throw Error(Errc::state, "queue " + ref.str() + ": " +
                                 items_text(static_cast<std::size_t>(active)) +
                                 " claimed or running; cancel them (launch cancel ITEM) and "
                                 "delete the queue once they have stopped");
  }
  // The store checks again in the transaction that deletes: an item pushed
  // since the count above is never taken without --force.
  std::vector<std::string> deleted =
      t.delete_queue(ref, force ? launch::QueueDelete::with_pending
                                : launch::QueueDelete::if_no_pending);
  // The items' logs go with them.
  std::string home = launch::launch_home();
  for (const auto& id : deleted) {
    std::error_code ec;
    std::filesystem::remove_all(launch::run_directory(home, id), ec);
  }
  print(ctx.json ? "{\"deleted\":" + json_string(ref.str()) +
                       ",\"items\":" + std::to_string(deleted.size()) + "}"
                 : "deleted queue " + ref.str() + " and its " + items_text(deleted.size()));
  return 0;
}

// ---------------------------------------------------------------- items

int push(Context& ctx, const PushOptions& opts) {
  // W&B's launch config first; every flag given wins over what it sets.
  LaunchConfig file;
  if (!opts.launch_config.empty()) file = read_launch_config(opts.launch_config);
  launch::JobSpec spec = file.spec;
  if (ctx.entity_flag.empty() && !file.entity.empty()) ctx.entity_flag = file.entity;
  if (!opts.name.empty()) spec.name = opts.name;
  if (!opts.project.empty()) spec.project = opts.project;
  if (!opts.run_id.empty()) spec.run_id = opts.run_id;
  if (!opts.dockerfile.empty()) spec.dockerfile = opts.dockerfile;
  if (!opts.priority.empty()) {
    try {
      spec.priority = launch::parse_priority(opts.priority);
    } catch (const Error&) {
      throw Error(Errc::invalid, "-P \"" + opts.priority +
                                     "\": expected critical, high, medium or low");
    }
  }
  for (const auto& s : opts.set_vars) {
    auto [k, v] = split_assignment(s, "--set-var");
    spec.template_values[k] = v;
  }
  for (const auto& s : opts.envs) {
    auto [k, v] = split_assignment(s, "--env");
    spec.env[k] = v;
  }
  if (!opts.resource_args.empty()) {
    spec.resource_args = launch::config_to_json(text_or_file(opts.resource_args), "-R");
  }
  if (!opts.image.empty()) {
    spec.source = launch::JobSource{};
    spec.source.kind = launch::JobSource::Kind::image;
    spec.source.image = opts.image;
  } else if (!opts.git_url.empty()) {
    spec.source = launch::JobSource{};
    spec.source.kind = launch::JobSource::Kind::git;
    spec.source.git_url = opts.git_url;
    spec.source.git_ref = opts.git_ref;
  } else if (!opts.code_dir.empty()) {
    std::error_code ec;
    auto dir = std::filesystem::absolute(opts.code_dir, ec).lexically_normal();
    if (ec || !std::filesystem::is_directory(dir, ec)) {
      throw Error(Errc::invalid, "--code \"" + opts.code_dir + "\": no such directory");
    }
    std::string text = dir.string();
    if (text.size() > 1 && text.back() == '/') text.pop_back();
    spec.source = launch::JobSource{};
    spec.source.kind = launch::JobSource::Kind::code;
    spec.source.code_dir = text;
  }
  if (!opts.git_ref.empty() && opts.git_url.empty()) {
    // A -c file's git repository takes a --ref of its own.
    if (spec.source.kind == launch::JobSource::Kind::git) {
      spec.source.git_ref = opts.git_ref;
    } else {
      throw Error(Errc::invalid, "--ref \"" + opts.git_ref + "\" needs --git URL");
    }
  }
  if (!opts.entry.empty()) spec.entry_point = parse_entry_point(opts.entry);
  if (!opts.args.empty()) spec.args = opts.args;
  const char* author = std::getenv("LAUNCH_AUTHOR");
  if (author && *author) {
    spec.author = author;
  } else if (spec.author.empty()) {
    spec.author = os_user_name();
  }
  spec.validate();

  auto& t = ctx.transport();
  auto ref = ctx.queue_ref(opts.queue);
  if (!file.resource.empty()) {
    auto q = t.get_queue(ref);
    if (q.resource != file.resource) {
      throw Error(Errc::invalid, "-c: resource \"" + file.resource + "\", but queue " +
                                     ref.str() + " runs its jobs on " + q.resource);
    }
  }
  std::string id = t.push(ref, spec);
  print(ctx.json ? launch::to_json(t.get(id)) : id);
  return 0;
}

int list(Context& ctx, const ListOptions& opts) {
  auto filter = filter_for(ctx, opts);
  // An unknown queue is an error, not an empty list.
  if (filter.queue) ctx.transport().get_queue(*filter.queue);
  auto items = ctx.transport().list(filter);
  if (ctx.json) {
    std::vector<std::string> out;
    for (const auto& item : items) out.push_back(launch::to_json(item));
    print(json_array(out));
    return 0;
  }
  Table table({"ID", "QUEUE", "STATE", "PRIORITY", "NAME", "RUN", "EXIT", "AGE", "ERROR"});
  std::int64_t now = launch::now_ms();
  for (const auto& item : items) {
    std::string error = "-";
    if (item.error) {
      error = std::string(launch::to_string(item.error->stage)) + ": " +
              shorten(item.error->message, 48);
    }
    table.add({item.id, item.queue.str(), launch::to_string(item.state),
               launch::to_string(item.priority),
               item.spec.name.empty() ? "-" : shorten(item.spec.name, 32),
               item.run_id.empty() ? "-" : item.run_id,
               item.exit_code ? std::to_string(*item.exit_code) : "-",
               age(item.created_at, now), error});
  }
  std::cout << table.str();
  return 0;
}

int show(Context& ctx, const std::string& item_id) {
  auto item = ctx.transport().get(item_id);
  print(ctx.json ? launch::to_json(item) : item_details(item));
  return 0;
}

int cancel(Context& ctx, const std::string& item_id) {
  auto item = ctx.transport().cancel(item_id);
  print(ctx.json ? launch::to_json(item)
                 : item.id + " " + launch::to_string(item.state));
  return 0;
}

int exit_code_of(const launch::QueueItem& item) {
  switch (item.state) {
    case launch::ItemState::finished: return 0;
    case launch::ItemState::stopped: return kExitStopped;
    case launch::ItemState::failed:
      if (item.exit_code && *item.exit_code > 0 && *item.exit_code < 256) {
        return *item.exit_code;
      }
      return 1;
    default: return 1;
  }
}

int wait(Context& ctx, const std::string& item_id, double timeout_seconds) {
  auto& t = ctx.transport();
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(static_cast<std::int64_t>(timeout_seconds * 1000));
  for (;;) {
    auto item = t.get(item_id);
    if (launch::is_terminal(item.state)) {
      if (ctx.json) {
        print(launch::to_json(item));
      } else {
        std::string line = item.id + " " + launch::to_string(item.state);
        if (item.exit_code) line += " (exit code " + std::to_string(*item.exit_code) + ")";
        if (item.error) {
          line += ": " + std::string(launch::to_string(item.error->stage)) + ": " +
                  item.error->message;
        }
        print(line);
      }
      return exit_code_of(item);
    }
    if (timeout_seconds > 0 && std::chrono::steady_clock::now() >= deadline) {
      std::cerr << "launch: timed out waiting for " << item_id << " (still "
                << launch::to_string(item.state) << ")\n";
      return kExitTimeout;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

// ---------------------------------------------------------------- logs

namespace {

// One of an item's logs, read through the transport from where the last
// read stopped (a local file, or a launch server's copy).
class LogTail {
 public:
  LogTail(launch::Transport& t, std::string item_id, std::string stream, FILE* out)
      : t_(t), item_id_(std::move(item_id)), stream_(std::move(stream)), out_(out) {}

  // Copies what is new; with `json`, as one JSON line per chunk on stdout.
  void drain(bool json) {
    for (;;) {
      launch::Transport::LogChunk chunk = t_.read_log(item_id_, stream_, offset_);
      if (chunk.data.empty()) break;
      offset_ = chunk.next_offset;
      if (json) {
        std::string line = "{\"stream\":" + json_string(stream_) +
                           ",\"text\":" + json_string(chunk.data) + "}\n";
        std::fwrite(line.data(), 1, line.size(), stdout);
      } else {
        std::fwrite(chunk.data.data(), 1, chunk.data.size(), out_);
      }
    }
    std::fflush(json ? stdout : out_);
  }

  std::string read_all() {
    std::string all;
    for (;;) {
      launch::Transport::LogChunk chunk = t_.read_log(item_id_, stream_, offset_);
      if (chunk.data.empty()) return all;
      offset_ = chunk.next_offset;
      all += chunk.data;
    }
  }
  const std::string& stream() const { return stream_; }

 private:
  launch::Transport& t_;
  std::string item_id_;
  std::string stream_;
  FILE* out_;
  std::uint64_t offset_ = 0;
};

}  // namespace

int logs(Context& ctx, const std::string& item_id, bool follow) {
  auto& t = ctx.transport();
  auto item = t.get(item_id);  // an unknown item is an error, not empty logs
  LogTail tails[] = {{t, item.id, "build", stdout},
                     {t, item.id, "stdout", stdout},
                     {t, item.id, "stderr", stderr}};
  if (!follow && ctx.json) {
    std::string out = "{\"id\":" + json_string(item.id);
    for (auto& tail : tails) out += ",\"" + tail.stream() + "\":" + json_string(tail.read_all());
    print(out + "}");
    return 0;
  }
  std::cout.flush();
  for (;;) {
    // Check the state before draining, so whatever the run wrote before it
    // ended is read by this last pass.
    bool done = !follow || launch::is_terminal(item.state);
    for (auto& tail : tails) tail.drain(ctx.json);
    if (done) return 0;
    std::this_thread::sleep_for(kPollInterval);
    item = t.get(item_id);
  }
}

// ---------------------------------------------------------------- login

int login(Context& ctx, const std::string& key) {
  std::string uri = ctx.uri_flag.empty() ? launch::default_transport_uri() : ctx.uri_flag;
  if (uri.rfind("http://", 0) != 0 && uri.rfind("https://", 0) != 0) {
    throw launch::Error(launch::Errc::invalid,
                        "login: the store \"" + uri + "\" is not a launch server (give --uri "
                        "https://HOST:PORT or set LAUNCH_QUEUE_URI)");
  }
  // The key is tried before it is kept: one the server refuses is not.
  ::setenv("LAUNCH_API_KEY", key.c_str(), 1);
  launch::open_transport(uri)->list_queues();
  ::unsetenv("LAUNCH_API_KEY");
  std::string server = uri.substr(0, uri.find('?'));
  launch::api::store_api_key(server, key);
  std::cerr << "launch: key " << key.substr(0, 11) << " stored for " << server << " in "
            << launch::api::credentials_path() << "\n";
  return 0;
}

// ---------------------------------------------------------------- agents

int agents(Context& ctx) {
  auto records = ctx.transport().list_agents();
  if (ctx.json) {
    std::vector<std::string> out;
    for (const auto& a : records) out.push_back(launch::to_json(a));
    print(json_array(out));
    return 0;
  }
  Table table({"ID", "HOST", "PID", "STATUS", "QUEUES", "RUNNING", "LAST SEEN"});
  std::int64_t now = launch::now_ms();
  for (const auto& a : records) {
    std::string queues;
    for (const auto& q : a.queues) queues += (queues.empty() ? "" : ",") + q;
    std::string max = a.max_jobs < 0 ? "unlimited" : std::to_string(a.max_jobs);
    table.add({a.id, a.host, std::to_string(a.pid), launch::to_string(a.status),
               queues.empty() ? "-" : queues,
               std::to_string(a.running_jobs) + "/" + max,
               age(a.last_seen, now) + " ago"});
  }
  std::cout << table.str();
  return 0;
}

}  // namespace cli
