// launch — the command line: create queues, push jobs onto them, follow
// them. Built on the public library API alone.
//
// Exit codes: 0 success; 1 a failure (one line on stderr, "launch: ...");
// 2 a usage error. `wait` exits with the job's own code (see cli::wait).
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli.hpp"

namespace {

// One line, whatever the message holds.
std::string one_line(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

int fail(const std::string& message, int code) {
  std::cerr << "launch: " << one_line(message) << '\n';
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  // Everything after the first `--` is the job's argv (push only); CLI11
  // never sees it, so an argument such as `-q` there stays the job's.
  int cli_argc = argc;
  std::vector<std::string> job_args;
  bool has_job_args = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) {
      cli_argc = i;
      has_job_args = true;
      job_args.assign(argv + i + 1, argv + argc);
      break;
    }
  }

  // The library's info lines are for agents; a command's stderr is kept for
  // its one line of failure (and real warnings).
  launch::set_log_level(launch::LogLevel::warn);

  cli::Context ctx;
  CLI::App app{"Push jobs onto launch queues and follow them.", "launch"};
  app.set_version_flag("--version", std::string("launch ") + launch::version());
  app.require_subcommand(0, 1);  // none: reported below, naming what was typed
  app.fallthrough();  // global flags also after the command: `launch list --json`
  app.add_flag("--json", ctx.json, "Machine-readable output (JSON)");
  app.add_option("--uri", ctx.uri_flag,
                 "The store (default: LAUNCH_QUEUE_URI, else sqlite://$LAUNCH_HOME/launch.db)");
  app.add_option("-e,--entity", ctx.entity_flag,
                 "Entity of queues named without one (default: LAUNCH_ENTITY, "
                 "the config file's entity, the user name)");

  // launch queue ...
  auto* queue = app.add_subcommand("queue", "Create, list, show and delete queues");
  queue->require_subcommand(0, 1);
  cli::QueueCreateOptions create;
  int lease_seconds = 0, max_attempts = 0;
  auto* q_create = queue->add_subcommand("create", "Create a queue from a file or from flags");
  q_create->add_option("NAME", create.name, "Queue name: NAME or ENTITY/NAME");
  q_create->add_option("-f,--file", create.file, "Queue file (YAML or JSON; - for stdin)");
  q_create->add_option("-r,--resource", create.resource,
                       "Resource: local-process, local-container, kubernetes, ...");
  q_create->add_option("--config", create.config,
                       "Resource config: a file, or JSON/YAML text");
  q_create->add_flag("--prioritize", create.prioritize, "Turn prioritization on");
  auto* lease_opt = q_create->add_option("--lease-seconds", lease_seconds,
                                         "Lease of a claim (default 30)");
  auto* attempts_opt = q_create->add_option("--max-attempts", max_attempts,
                                            "Claims before an item fails (default 3)");
  auto* q_list = queue->add_subcommand("list", "List queues");
  std::string queue_name;
  auto* q_show = queue->add_subcommand("show", "Show a queue");
  q_show->add_option("NAME", queue_name, "Queue")->required();
  bool force = false;
  auto* q_delete = queue->add_subcommand(
      "delete", "Delete a queue, its items and their logs (refused while items are pending)");
  q_delete->add_option("NAME", queue_name, "Queue")->required();
  q_delete->add_flag("--force", force, "Delete it with its pending items");

  // launch push
  cli::PushOptions push;
  auto* push_cmd = app.add_subcommand(
      "push", "Push a job onto a queue; prints the new item's id");
  push_cmd->footer("Arguments after -- are appended to the entry point (the job's args).");
  push_cmd->add_option("-q,--queue", push.queue, "Queue: NAME or ENTITY/NAME")->required();
  push_cmd->add_option("--name", push.name, "Job name");
  push_cmd->add_option("-p,--project", push.project, "Project (${project_name})");
  push_cmd->add_option("-P,--priority", push.priority, "critical, high, medium or low");
  push_cmd->add_option("--set-var", push.set_vars, "Template value K=V (repeatable)");
  push_cmd->add_option("--env", push.envs, "Environment variable K=V (repeatable)");
  push_cmd->add_option("-R,--resource-args", push.resource_args,
                       "Resource overrides: JSON, or @file (JSON or YAML)");
  push_cmd->add_option("-c,--config", push.launch_config,
                       "W&B's launch config (overrides, resource_args, ...): a file, @file "
                       "or JSON");
  auto* image_opt = push_cmd->add_option("-d,--docker-image", push.image, "Image to run");
  auto* git_opt = push_cmd->add_option("--git", push.git_url, "Git repository URL");
  push_cmd->add_option("--ref", push.git_ref, "Git branch, tag or commit");
  auto* code_opt = push_cmd->add_option("--code", push.code_dir, "Local code directory");
  image_opt->excludes(git_opt)->excludes(code_opt);
  git_opt->excludes(code_opt);
  push_cmd->add_option("-E,--entry-point", push.entry,
                       "Entry point: a program, or a JSON array of argv "
                       "('[\"python\", \"train.py\"]')");
  push_cmd->add_option("--run-id", push.run_id, "Run id (default: a fresh one)");
  push_cmd->add_option("--dockerfile", push.dockerfile, "Dockerfile path in the source");

  // launch list | show | logs | cancel | wait | agents
  cli::ListOptions list;
  auto* list_cmd = app.add_subcommand("list", "List items, newest last");
  list_cmd->add_option("-q,--queue", list.queue, "Only this queue");
  list_cmd->add_option("--state", list.state, "Only items in this state");
  list_cmd->add_option("-n,--last", list.limit, "Only the newest N items");
  std::string item_id;
  auto* show_cmd = app.add_subcommand("show", "Show an item");
  show_cmd->add_option("ITEM", item_id, "Item id")->required();
  bool follow = false;
  auto* logs_cmd = app.add_subcommand("logs", "Print an item's logs");
  logs_cmd->add_option("ITEM", item_id, "Item id")->required();
  logs_cmd->add_flag("-f,--follow", follow, "Follow until the item ends");
  auto* cancel_cmd = app.add_subcommand("cancel", "Cancel an item");
  cancel_cmd->add_option("ITEM", item_id, "Item id")->required();
  double timeout = 0;
  auto* wait_cmd = app.add_subcommand(
      "wait", "Wait for an item to end; exit with its job's code (stopped: 130)");
  wait_cmd->add_option("ITEM", item_id, "Item id")->required();
  wait_cmd->add_option("--timeout", timeout, "Give up after SECONDS (exit 124)");
  auto* agents_cmd = app.add_subcommand("agents", "List registered agents");
  std::string login_key;
  auto* login_cmd = app.add_subcommand(
      "login", "Store an API key for the launch server of --uri / LAUNCH_QUEUE_URI "
               "(~/.config/launch/credentials)");
  login_cmd->add_option("KEY", login_key, "The key (lk_...)")->required();

  app.allow_extras();  // after the commands, so they do not inherit it
  try {
    app.parse(cli_argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    return fail(e.what(), 2);
  }
  if (!app.remaining().empty()) {
    const std::vector<std::string> extras = app.remaining();
    const std::string& extra = extras.front();
    bool command_expected = app.get_subcommands().empty() ||
                            (queue->parsed() && queue->get_subcommands().empty());
    if (command_expected && !extra.empty() && extra[0] != '-') {
      std::string command = queue->parsed() ? "queue " + extra : extra;
      return fail("unknown command \"" + command + "\" (see launch --help)", 2);
    }
    return fail("unexpected argument \"" + extra + "\"", 2);
  }
  if (app.get_subcommands().empty()) return fail("no command given (see launch --help)", 2);
  if (has_job_args && !push_cmd->parsed()) {
    return fail("arguments after -- are only for push", 2);
  }

  try {
    if (q_create->parsed()) {
      if (lease_opt->count()) create.lease_seconds = lease_seconds;
      if (attempts_opt->count()) create.max_attempts = max_attempts;
      return cli::queue_create(ctx, create);
    }
    if (q_list->parsed()) return cli::queue_list(ctx);
    if (q_show->parsed()) return cli::queue_show(ctx, queue_name);
    if (q_delete->parsed()) return cli::queue_delete(ctx, queue_name, force);
    if (push_cmd->parsed()) {
      push.args = job_args;
      return cli::push(ctx, push);
    }
    if (list_cmd->parsed()) return cli::list(ctx, list);
    if (show_cmd->parsed()) return cli::show(ctx, item_id);
    if (logs_cmd->parsed()) return cli::logs(ctx, item_id, follow);
    if (cancel_cmd->parsed()) return cli::cancel(ctx, item_id);
    if (wait_cmd->parsed()) return cli::wait(ctx, item_id, timeout);
    if (agents_cmd->parsed()) return cli::agents(ctx);
    if (login_cmd->parsed()) return cli::login(ctx, login_key);
  } catch (const std::exception& e) {
    return fail(e.what(), 1);
  }
  return fail("queue: give create, list, show or delete (see launch queue --help)", 2);
}
