// launch-agent: polls queues and runs their jobs, like `wandb launch-agent`.
//
//   launch-agent [-q QUEUE]... [-j|--max-jobs N] [-e ENTITY] [-c CONFIG]
//                [-l LOGFILE] [-v]... [--log-format text|json] [--uri URI]
//                [--print-config]
//
// Settings come from launch-config.yaml, then the environment
// (LAUNCH_ENTITY, LAUNCH_MAX_JOBS, LAUNCH_QUEUE_URI, LAUNCH_HOME), then the
// flags. SIGTERM (or Ctrl-C) drains: no new work, running jobs finish. A
// second one cancels the running jobs and puts their items back.
#include <signal.h>
#include <sys/stat.h>
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

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

int run(int argc, char** argv) {
  CLI::App app{"launch-agent: polls launch queues and runs their jobs"};
  std::vector<std::string> queues;
  int max_jobs = 0;
  std::string entity, config_path, log_file, log_format, uri;
  app.add_option("-q,--queue", queues, "a queue to poll (repeatable): NAME or ENTITY/NAME");
  auto* jobs_opt =
      app.add_option("-j,--max-jobs", max_jobs, "jobs run at once; -1: unlimited (default 1)");
  app.add_option("-e,--entity", entity, "the entity whose queues to poll");
  app.add_option("-c,--config", config_path,
                 "launch-config.yaml (default ~/.config/launch/launch-config.yaml)");
  app.add_option("-l,--log-file", log_file, "write the agent's log to this file");
  auto* verbose = app.add_flag("-v,--verbose", "more output (repeatable)");
  app.add_option("--log-format", log_format, "text (default) or json lines")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--uri", uri, "the transport URI (default $LAUNCH_QUEUE_URI, else sqlite)");
  bool print_config = false;
  app.add_flag("--print-config", print_config,
               "print the settings in effect (after file, environment, flags) and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  // file < environment < flags
  launch::AgentConfig config;
  if (!config_path.empty()) {
    config = launch::AgentConfig::from_file(config_path);
  } else if (file_exists(launch::AgentConfig::default_path())) {
    config = launch::AgentConfig::from_file(launch::AgentConfig::default_path());
  }
  config.apply_environment();
  const char* env_uri = std::getenv("LAUNCH_QUEUE_URI");
  if (env_uri && *env_uri) config.queue_uri = env_uri;
  const char* env_home = std::getenv("LAUNCH_HOME");
  if (env_home && *env_home) config.launch_home = env_home;
  if (!queues.empty()) config.queues = queues;
  if (*jobs_opt) config.max_jobs = max_jobs;
  if (!entity.empty()) config.entity = entity;
  if (!log_format.empty()) config.log_format = log_format;
  if (!uri.empty()) config.queue_uri = uri;
  config.verbosity += static_cast<int>(verbose->count());
  if (config.entity.empty()) config.entity = launch::os_user_name();
  if (config.entity.empty()) config.entity = "default";
  if (config.queues.empty()) {
    throw launch::Error(launch::Errc::invalid,
                        "no queue to poll: give -q QUEUE or `queues` in launch-config.yaml");
  }
  config.validate();

  if (!config.launch_home.empty() && config.queue_uri.empty()) {
    config.queue_uri = "sqlite://" + config.launch_home + "/launch.db";
  }
  if (config.queue_uri.empty()) config.queue_uri = launch::default_transport_uri();

  if (print_config) {
    std::string qs;
    for (const auto& q : config.queues) qs += (qs.empty() ? "\"" : ", \"") + q + "\"";
    std::printf("{\"entity\": \"%s\", \"queues\": [%s], \"max_jobs\": %d, "
                "\"verbosity\": %d, \"log_format\": \"%s\", \"queue_uri\": \"%s\"}\n",
                config.entity.c_str(), qs.c_str(), config.max_jobs, config.verbosity,
                config.log_format.c_str(), config.queue_uri.c_str());
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
    std::fprintf(stderr, "launch-agent: %s\n", e.what());
    return 1;
  }
}
