// launch-agent: polls queues and runs their jobs, like `wandb launch-agent`.
//
//   launch-agent [-q QUEUE]... [-j|--max-jobs N] [-e ENTITY] [-c CONFIG]
//                [-l LOGFILE] [-v]... [--log-format text|json] [--uri URI]
//                [--print-config]
//
// Settings come from launch-config.yaml (-c, else the first of
// ~/.config/launch/launch-config.yaml and W&B Launch's
// ~/.config/wandb/launch-config.yaml), then the environment (LAUNCH_ENTITY,
// LAUNCH_MAX_JOBS, LAUNCH_QUEUE_URI, LAUNCH_HOME), then the flags. SIGTERM
// (or Ctrl-C) drains: no new work, running jobs finish. A second one
// cancels the running jobs and puts their items back.
//
// Exit codes: 0 success; 1 a failure; 2 a usage error or a configuration
// refused at start-up. Errors are one line on stderr, "launch-agent: ...".
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "launch/launch.hpp"

namespace {

launch::Agent* g_agent = nullptr;

extern "C" void on_stop_signal(int) {
  if (g_agent) g_agent->stop(launch::StopMode::drain);
}

// One line, whatever the message holds.
std::string one_line(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

int fail(const std::string& message, int code) {
  std::fprintf(stderr, "launch-agent: %s\n", one_line(message).c_str());
  return code;
}

// file < environment < flags; Errc::invalid for what cannot start.
launch::AgentConfig resolve_config(const std::string& config_path,
                                   const std::vector<std::string>& queues, const int* max_jobs,
                                   const std::string& entity, const std::string& log_format,
                                   const std::string& uri, int verbose) {
  launch::AgentConfig config;
  std::string path = config_path.empty() ? launch::AgentConfig::find_default_file() : config_path;
  if (!path.empty()) config = launch::AgentConfig::from_file(path);
  config.apply_environment();
  const char* env_uri = std::getenv("LAUNCH_QUEUE_URI");
  if (env_uri && *env_uri) config.queue_uri = env_uri;
  const char* env_home = std::getenv("LAUNCH_HOME");
  if (env_home && *env_home) config.launch_home = env_home;
  if (!queues.empty()) config.queues = queues;
  if (max_jobs) config.max_jobs = *max_jobs;
  if (!entity.empty()) config.entity = entity;
  if (!log_format.empty()) config.log_format = log_format;
  if (!uri.empty()) config.queue_uri = uri;
  config.verbosity += verbose;
  if (config.entity.empty()) config.entity = launch::os_user_name();
  if (config.entity.empty()) config.entity = "default";
  if (config.queues.empty()) {
    std::string looked;
    if (path.empty()) {
      for (const auto& p : launch::AgentConfig::default_paths()) {
        looked += (looked.empty() ? "" : " or ") + p;
      }
      looked = "; no config file at " + looked;
    }
    throw launch::Error(launch::Errc::invalid,
                        "no queue to poll: give -q QUEUE, or `queues` (or an `entity`, whose "
                        "queue \"default\" is then polled) in launch-config.yaml" +
                            looked);
  }
  config.validate();
  if (!config.launch_home.empty() && config.queue_uri.empty()) {
    config.queue_uri = "sqlite://" + config.launch_home + "/launch.db";
  }
  if (config.queue_uri.empty()) config.queue_uri = launch::default_transport_uri();
  if (config.launch_home.empty()) config.launch_home = launch::launch_home();
  // A memory:// store lives in this process alone: nothing could push to
  // the queue the agent polls, and what it ran would vanish with it.
  if (config.queue_uri.rfind("memory:", 0) == 0) {
    std::string from = !uri.empty()                  ? "--uri"
                       : (env_uri && *env_uri)       ? "LAUNCH_QUEUE_URI"
                                                     : path + ": queue_uri";
    throw launch::Error(launch::Errc::invalid,
                        from + " \"" + config.queue_uri +
                            "\": a memory:// store lives only in the agent's process, so "
                            "nothing could push to its queues; use sqlite:///PATH/launch.db "
                            "or postgres://...");
  }
  return config;
}

int run(int argc, char** argv) {
  CLI::App app{"Polls launch queues and runs their jobs.", "launch-agent"};
  std::vector<std::string> queues;
  int max_jobs = 0;
  std::string entity, config_path, log_file, log_format, uri;
  app.add_option("-q,--queue", queues, "a queue to poll (repeatable): NAME or ENTITY/NAME");
  auto* jobs_opt =
      app.add_option("-j,--max-jobs", max_jobs, "jobs run at once; -1: unlimited (default 1)");
  app.add_option("-e,--entity", entity, "the entity whose queues to poll");
  app.add_option("-c,--config", config_path,
                 "launch-config.yaml (default ~/.config/launch/launch-config.yaml, else "
                 "~/.config/wandb/launch-config.yaml)");
  app.add_option("-l,--log-file", log_file, "write the agent's log to this file");
  auto* verbose =
      app.add_flag("-v,--verbose", "more output: -v debug lines (polls, claims), -vv trace");
  app.add_option("--log-format", log_format, "text (default) or json lines")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--uri", uri, "the transport URI (default $LAUNCH_QUEUE_URI, else sqlite)");
  bool print_config = false;
  app.add_flag("--print-config", print_config,
               "print the settings in effect (after file, environment, flags) and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    return fail(e.what(), 2);
  }

  launch::AgentConfig config;
  try {
    config = resolve_config(config_path, queues, *jobs_opt ? &max_jobs : nullptr, entity,
                            log_format, uri, static_cast<int>(verbose->count()));
  } catch (const launch::Error& e) {
    if (e.code() == launch::Errc::invalid) return fail(e.what(), 2);
    throw;
  }

  if (print_config) {
    std::printf("%s\n", launch::to_json(config).c_str());
    return 0;
  }

  if (!log_file.empty()) {
    std::FILE* f = std::fopen(log_file.c_str(), "ae");
    if (!f) {
      throw launch::Error(launch::Errc::io,
                          "log file " + log_file + ": cannot open it for appending");
    }
    std::shared_ptr<std::FILE> file(f, std::fclose);
    launch::set_log_sink([file](launch::LogLevel, const std::string& line) {
      std::fprintf(file.get(), "%s\n", line.c_str());
      std::fflush(file.get());
    });
  }
  int level = static_cast<int>(launch::LogLevel::info) + config.verbosity;
  if (level > static_cast<int>(launch::LogLevel::trace)) {
    level = static_cast<int>(launch::LogLevel::trace);
  }
  launch::set_log_level(static_cast<launch::LogLevel>(level));

  auto transport = launch::open_transport(config.queue_uri);
  launch::Agent agent(config, transport);
  g_agent = &agent;
  struct sigaction sa = {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  agent.run();
  g_agent = nullptr;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    return fail(e.what(), 1);
  }
}
