// The `launch` command line: shared state of one invocation and the
// commands, each built on the public library API alone.
#ifndef LAUNCH_EXAMPLES_LAUNCH_CLI_HPP
#define LAUNCH_EXAMPLES_LAUNCH_CLI_HPP

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "launch/launch.hpp"

namespace cli {

// What every command shares: the global flags and the store, opened on
// first use so that `--help` and usage errors never touch it.
class Context {
 public:
  bool json = false;
  std::string entity_flag;  // -e, when given
  std::string uri_flag;     // --uri, when given; else LAUNCH_QUEUE_URI, else the default

  launch::Transport& transport();
  // -e, else LAUNCH_ENTITY, else the config file's `entity`, else the OS
  // user name.
  std::string entity();
  launch::QueueRef queue_ref(const std::string& text);

 private:
  std::shared_ptr<launch::Transport> transport_;
  std::optional<std::string> entity_;
};

struct QueueCreateOptions {
  std::string file;  // -f; "-" reads stdin
  std::string name;
  std::string resource;
  std::string config;  // a file, or JSON/YAML text
  bool prioritize = false;
  std::optional<int> lease_seconds;
  std::optional<int> max_attempts;
};

struct PushOptions {
  std::string queue;
  std::string name;
  std::string project;
  std::string priority;
  std::vector<std::string> set_vars;
  std::vector<std::string> envs;
  std::string resource_args;
  std::string launch_config;  // -c: W&B's launch config (read_launch_config)
  std::string image;
  std::string git_url;
  std::string git_ref;
  std::string code_dir;
  std::string entry;
  std::string run_id;
  std::string dockerfile;
  std::vector<std::string> args;  // after `--`
};

struct ListOptions {
  std::string queue;
  std::string state;
  std::size_t limit = 0;
};

// Each command returns the process exit code; failures throw.
int queue_create(Context& ctx, const QueueCreateOptions& opts);
int queue_list(Context& ctx);
int queue_show(Context& ctx, const std::string& name);
// Refuses a queue with items that have not ended unless `force`; removes
// the run directories of the items it deletes.
int queue_delete(Context& ctx, const std::string& name, bool force);
int push(Context& ctx, const PushOptions& opts);
int list(Context& ctx, const ListOptions& opts);
int show(Context& ctx, const std::string& item_id);
int logs(Context& ctx, const std::string& item_id, bool follow);
// Checks `key` against the server of ctx's URI (http:// or https://), then
// stores it for that server (launch/api.hpp: store_api_key).
int login(Context& ctx, const std::string& key);
int cancel(Context& ctx, const std::string& item_id);
int wait(Context& ctx, const std::string& item_id, double timeout_seconds);
int agents(Context& ctx);

// The exit code `wait` gives for a terminal item.
int exit_code_of(const launch::QueueItem& item);
constexpr int kExitStopped = 130;
constexpr int kExitTimeout = 124;

// --- helpers shared by the commands (util.cpp)

std::string os_user_name();
std::string read_file(const std::string& path);  // Errc::io naming the path
bool is_regular_file(const std::string& path);
// "@file" -> the file's text; anything else as it is.
std::string text_or_file(const std::string& value);
// Splits "K=V" (`flag` names the option in errors).
std::pair<std::string, std::string> split_assignment(const std::string& text,
                                                     const std::string& flag);
// -E: a program path, or a JSON array of strings.
std::vector<std::string> parse_entry_point(const std::string& text);

// --- push -c (launch_config.cpp)

// W&B's launch config, as `wandb launch -c` takes it: `overrides` (args,
// entry_point, run_config, dockerfile), resource_args, docker.docker_image
// or image_uri, git (repo, version), uri, name, project, entity, author,
// run_id, resource, template_variables. `value` is a file path, @file, or
// the JSON (or YAML) itself. Any other key is refused by name.
struct LaunchConfig {
  launch::JobSpec spec;  // what the file sets; push's flags win over it
  std::string entity;    // the queue's entity when neither -e nor the queue names one
  std::string resource;  // when set, must be the queue's resource
};
LaunchConfig read_launch_config(const std::string& value);

// --- output (output.cpp)

// The columns a terminal gives `text` (UTF-8): wide characters count two,
// combining marks none.
std::size_t display_width(const std::string& text);

// Columns padded to the widest cell, two spaces apart.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string str() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

std::string age(std::int64_t since_ms, std::int64_t now_ms);
std::string local_time(std::int64_t ms);
// `text` on one line, at most `max` columns, cut on a character's boundary
// and ended with "..." when it was longer.
std::string shorten(const std::string& text, std::size_t max);
std::string json_array(const std::vector<std::string>& json_values);
std::string json_string(const std::string& s);
std::string item_details(const launch::QueueItem& item);
std::string queue_details(const launch::QueueDef& queue);

}  // namespace cli

#endif
