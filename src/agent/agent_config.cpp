// launch-config.yaml: W&B Launch's agent keys plus launch's own, read with
// the same strictness everywhere (an unknown key or a wrong type names the
// file and the key).
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include <sys/stat.h>

#include <fmt/format.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include "core/image_uri.hpp"
#include "util/json.hpp"
#include "util/redact.hpp"
#include "launch/agent.hpp"
#include "launch/builder.hpp"
#include "launch/error.hpp"

namespace launch {
namespace {

void check_keys(const json::Value& obj, const std::set<std::string>& known,
                const std::string& source, const std::string& prefix) {
  for (const auto& m : obj.GetObject()) {
    std::string key(m.name.GetString(), m.name.GetStringLength());
    if (known.count(key)) continue;
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    throw Error(Errc::invalid, fmt::format("{}: unknown key \"{}{}\" (known keys: {})", source,
                                           prefix, key, list));
  }
}

// A nested mapping, or null when absent; anything else is a type error.
const json::Value* section(const json::Value& obj, const char* key, const std::string& source) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull()) return nullptr;
  if (!it->value.IsObject()) {
    throw Error(Errc::invalid, fmt::format("{}: key \"{}\" must be a mapping, got {} {}", source,
                                           key, json::type_name(it->value),
                                           json::dump(it->value)));
  }
  return &it->value;
}

int get_small_int(const json::Value& obj, const char* key, const std::string& ctx, int def) {
  std::int64_t v = json::get_int(obj, key, ctx, def);
  if (v < -1000000 || v > 1000000) {
    throw Error(Errc::invalid, fmt::format("{}: key \"{}\" = {} is out of range", ctx, key, v));
  }
  return static_cast<int>(v);
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) {
    if (s == "noop") continue;
    out += (out.empty() ? "" : ", ") + s;
  }
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error(Errc::io, fmt::format("agent config {}: cannot read it", path));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

AgentConfig AgentConfig::from_yaml(const std::string& text, const std::string& source) {
  json::Document d = json::parse_json_or_yaml(text, source);
  AgentConfig c;
  if (d.IsNull()) return c;  // an empty file
  if (!d.IsObject()) {
    throw Error(Errc::invalid, fmt::format("{}: expected a mapping of keys, got {}", source,
                                           json::type_name(d)));
  }
  check_keys(d,
             {"entity", "queues", "max_jobs", "max_schedulers", "secure_mode", "verbosity",
              "stopped_run_timeout", "builder", "registry", "environment", "queue_uri",
              "launch_home", "gpus", "log_format"},
             source, "");
  c.entity = json::get_string(d, "entity", source);
  // A list, as W&B's agent requires; a lone name is a common slip.
  auto q = d.FindMember("queues");
  if (q != d.MemberEnd() && q->value.IsString()) {
    throw Error(Errc::invalid,
                fmt::format("{}: key \"queues\" must be a list of queue names, got the string "
                            "\"{}\" (write queues: [{}])",
                            source, q->value.GetString(), q->value.GetString()));
  }
  c.queues = json::get_string_array(d, "queues", source);
  // W&B's agent polls the entity's queue "default" when it is given none.
  if (c.queues.empty() && !c.entity.empty()) c.queues.push_back("default");
  c.max_jobs = get_small_int(d, "max_jobs", source, c.max_jobs);
  c.max_schedulers = get_small_int(d, "max_schedulers", source, c.max_schedulers);
  c.secure_mode = json::get_bool(d, "secure_mode", source, c.secure_mode);
  c.verbosity = get_small_int(d, "verbosity", source, c.verbosity);
  c.stopped_run_timeout =
      get_small_int(d, "stopped_run_timeout", source, c.stopped_run_timeout);
  c.queue_uri = json::get_string(d, "queue_uri", source);
  c.launch_home = json::get_string(d, "launch_home", source);
  c.gpus = get_small_int(d, "gpus", source, c.gpus);
  c.log_format = json::get_string(d, "log_format", source, c.log_format);

  if (const json::Value* b = section(d, "builder", source)) {
    check_keys(*b,
               {"type", "destination", "platform", "build-context-store", "build-job-name",
                "secret-name", "secret-key", "kaniko-image"},
               source, "builder.");
    const std::string ctx = source + ": builder";
    c.builder.type = json::get_string(*b, "type", ctx, c.builder.type);
    c.builder.destination = json::get_string(*b, "destination", ctx);
    c.builder.platform = json::get_string(*b, "platform", ctx);
    c.builder.build_context_store = json::get_string(*b, "build-context-store", ctx);
    c.builder.build_job_name = json::get_string(*b, "build-job-name", ctx);
    c.builder.secret_name = json::get_string(*b, "secret-name", ctx);
    c.builder.secret_key = json::get_string(*b, "secret-key", ctx);
    c.builder.kaniko_image = json::get_string(*b, "kaniko-image", ctx);
  }
  if (const json::Value* r = section(d, "registry", source)) {
    check_keys(*r, {"type", "uri"}, source, "registry.");
    const std::string ctx = source + ": registry";
    c.builder.registry.type = json::get_string(*r, "type", ctx);
    c.builder.registry.uri = json::get_string(*r, "uri", ctx);
  }
  if (const json::Value* e = section(d, "environment", source)) {
    check_keys(*e, {"type", "region"}, source, "environment.");
    const std::string ctx = source + ": environment";
    c.environment_type = json::get_string(*e, "type", ctx);
    c.environment_region = json::get_string(*e, "region", ctx);
  }
  try {
    // Parsed once: what follows sees the normalised URIs.
    if (!c.builder.destination.empty()) {
      c.builder.destination =
          parse_repository_uri(c.builder.destination, "builder.destination").str();
    }
    if (!c.builder.registry.uri.empty()) {
      c.builder.registry.uri = parse_repository_uri(c.builder.registry.uri, "registry.uri").str();
    }
    c.validate();
  } catch (const Error& e) {
    throw Error(e.code(), fmt::format("{}: {}", source, e.what()));
  }
  return c;
}

AgentConfig AgentConfig::from_file(const std::string& path) {
  AgentConfig c = from_yaml(read_file(path), path);
  c.source = path;
  return c;
}

std::vector<std::string> AgentConfig::default_paths() {
  const char* home = std::getenv("HOME");
  std::string h = home && *home ? home : ".";
  return {default_path(), h + "/.config/wandb/launch-config.yaml"};
}

std::string AgentConfig::find_default_file() {
  for (const auto& p : default_paths()) {
    struct stat st;
    if (::stat(p.c_str(), &st) == 0) return p;
  }
  return "";
}

std::string AgentConfig::default_path() {
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  if (xdg && *xdg) return std::string(xdg) + "/launch/launch-config.yaml";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.config/launch/launch-config.yaml";
}

void AgentConfig::apply_environment() {
  const char* entity_env = std::getenv("LAUNCH_ENTITY");
  if (entity_env && *entity_env) entity = entity_env;
  const char* jobs = std::getenv("LAUNCH_MAX_JOBS");
  if (jobs && *jobs) {
    char* end = nullptr;
    errno = 0;
    long v = std::strtol(jobs, &end, 10);
    if (*end != '\0' || errno != 0 || v < -1 || v > 1000000) {
      throw Error(Errc::invalid,
                  fmt::format("LAUNCH_MAX_JOBS=\"{}\": expected -1 (unlimited) or a positive "
                              "integer",
                              jobs));
    }
    max_jobs = static_cast<int>(v);
  }
}

void AgentConfig::validate() const {
  if (max_jobs == 0 || max_jobs < -1) {
    throw Error(Errc::invalid,
                fmt::format("max_jobs {}: expected -1 (unlimited) or a positive integer",
                            max_jobs));
  }
  if (max_schedulers == 0 || max_schedulers < -1) {
    throw Error(Errc::invalid,
                fmt::format("max_schedulers {}: expected -1 (unlimited) or a positive integer",
                            max_schedulers));
  }
  if (stopped_run_timeout < 0) {
    throw Error(Errc::invalid,
                fmt::format("stopped_run_timeout {}: must not be negative", stopped_run_timeout));
  }
  if (verbosity < 0) {
    throw Error(Errc::invalid, fmt::format("verbosity {}: must not be negative", verbosity));
  }
  if (gpus < -1) {
    throw Error(Errc::invalid,
                fmt::format("gpus {}: expected -1 (detect) or a GPU count", gpus));
  }
  if (log_format != "text" && log_format != "json") {
    throw Error(Errc::invalid,
                fmt::format("log_format \"{}\": expected text or json", log_format));
  }
  std::vector<std::string> registered = builder_names();
  bool is_registered =
      std::find(registered.begin(), registered.end(), builder.type) != registered.end();
  if (builder.type != "noop" && !is_registered) {
    if (builder.type == "docker" || builder.type == "kaniko") {
      std::string others = join(registered);
      throw Error(Errc::invalid,
                  fmt::format("builder.type \"{}\": the {} builder is not available in this "
                              "build (builders here: noop{}{})",
                              builder.type, builder.type, others.empty() ? "" : ", ", others));
    }
    throw Error(Errc::invalid,
                fmt::format("builder.type \"{}\": expected docker, kaniko or noop",
                            builder.type));
  }
  if (!builder.platform.empty() && builder.platform != "linux/amd64" &&
      builder.platform != "linux/arm64") {
    throw Error(Errc::invalid,
                fmt::format("builder.platform \"{}\": expected linux/amd64 or linux/arm64",
                            builder.platform));
  }
  if (!builder.destination.empty()) {
    parse_repository_uri(builder.destination, "builder.destination");
  }
  const std::string& rtype = builder.registry.type;
  if (!rtype.empty() && rtype != "ecr" && rtype != "gcr" && rtype != "acr") {
    throw Error(Errc::invalid,
                fmt::format("registry.type \"{}\": expected ecr, gcr or acr", rtype));
  }
  if (!builder.registry.uri.empty()) {
    ImageUri u = parse_repository_uri(builder.registry.uri, "registry.uri");
    struct Want {
      const char* type;
      RegistryKind kind;
      const char* form;
    };
    static const Want wants[] = {
        {"ecr", RegistryKind::ecr, "<account>.dkr.ecr.<region>.amazonaws.com/<repository>"},
        {"gcr", RegistryKind::gar, "<region>-docker.pkg.dev/<project>/<repository>/<image>"},
        {"acr", RegistryKind::acr, "<name>.azurecr.io/<repository>"},
    };
    for (const auto& w : wants) {
      if (rtype == w.type && u.kind != w.kind) {
        throw Error(Errc::invalid,
                    fmt::format("registry.uri \"{}\": registry.type {} expects a URI of the form "
                                "{}",
                                builder.registry.uri, rtype, w.form));
      }
    }
  }
  if (!environment_type.empty() && environment_type != "aws" && environment_type != "gcp" &&
      environment_type != "azure") {
    throw Error(Errc::invalid,
                fmt::format("environment.type \"{}\": expected aws, gcp or azure",
                            environment_type));
  }
  if ((environment_type == "aws" || environment_type == "gcp") && environment_region.empty()) {
    throw Error(Errc::invalid,
                fmt::format("environment.type \"{}\": environment.region is required for {} "
                            "(e.g. {})",
                            environment_type, environment_type,
                            environment_type == "aws" ? "us-east-1" : "us-central1"));
  }
  for (const auto& q : queues) {
    if (q.empty()) throw Error(Errc::invalid, "queues: a queue name is empty");
    QueueRef::parse(q, entity.empty() ? std::string("_") : entity);
  }
}

std::string to_json(const AgentConfig& c) {
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  w.SetIndent(' ', 2);
  w.SetFormatOptions(rapidjson::kFormatSingleLineArray);
  auto str = [&](const char* key, const std::string& value) {
    w.Key(key);
    w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
  };
  auto num = [&](const char* key, int value) {
    w.Key(key);
    w.Int(value);
  };
  w.StartObject();
  str("config_file", c.source);
  str("entity", c.entity);
  w.Key("queues");
  w.StartArray();
  for (const auto& q : c.queues) w.String(q.c_str(), static_cast<rapidjson::SizeType>(q.size()));
  w.EndArray();
  num("max_jobs", c.max_jobs);
  num("max_schedulers", c.max_schedulers);
  w.Key("secure_mode");
  w.Bool(c.secure_mode);
  num("verbosity", c.verbosity);
  num("stopped_run_timeout", c.stopped_run_timeout);
  w.Key("builder");
  w.StartObject();
  str("type", c.builder.type);
  str("destination", c.builder.destination);
  str("platform", c.builder.platform);
  str("build-context-store", c.builder.build_context_store);
  str("build-job-name", c.builder.build_job_name);
  str("secret-name", c.builder.secret_name);
  str("secret-key", c.builder.secret_key);
  str("kaniko-image", c.builder.kaniko_image);
  w.EndObject();
  w.Key("registry");
  w.StartObject();
  str("type", c.builder.registry.type);
  str("uri", c.builder.registry.uri);
  w.EndObject();
  w.Key("environment");
  w.StartObject();
  str("type", c.environment_type);
  str("region", c.environment_region);
  w.EndObject();
  str("queue_uri", util::mask_password(c.queue_uri));
  str("launch_home", c.launch_home);
  num("gpus", c.gpus);
  str("log_format", c.log_format);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace launch
