// A job's resource config resolved on one parsed document (resolve.hpp).
#include "core/resolve.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "core/secure.hpp"
#include "core/template_value.hpp"
#include "launch/error.hpp"
#include "launch/runner.hpp"
#include "util/json.hpp"

namespace launch {
namespace {

// The resource names W&B's agent knows (its runners' keys in resource_args)
// and ours.
const char* const kKnownResources[] = {"local-process", "local-container", "kubernetes",
                                       "sagemaker",     "gcp-vertex",      "vertex"};

bool is_resource_name(const std::string& key) {
  for (const char* r : kKnownResources) {
    if (key == r) return true;
  }
  auto names = runner_names();
  return std::find(names.begin(), names.end(), key) != names.end();
}

// W&B's vertex runner reads its resource_args under "vertex" or "gcp-vertex".
bool keys_resource(const std::string& key, const std::string& resource) {
  return key == resource || (resource == "gcp-vertex" && key == "vertex");
}

}  // namespace

void unwrap_resource_keyed(json::Document& doc, const std::string& resource,
                           const std::string& what) {
  if (!doc.IsObject()) return;
  for (const auto& m : doc.GetObject()) {
    std::string key(m.name.GetString(), m.name.GetStringLength());
    if (!is_resource_name(key)) continue;
    if (!keys_resource(key, resource)) {
      throw Error(Errc::invalid,
                  fmt::format("{}: key \"{}\" holds settings for resource {}, but the queue's "
                              "resource is {} (give them unwrapped or under \"{}\")",
                              what, key, key, resource, resource));
    }
    if (doc.MemberCount() != 1) {
      throw Error(Errc::invalid,
                  fmt::format("{}: key \"{}\" (W&B's resource-keyed shape) must be the only "
                              "top-level key; put the other keys inside it or give them all "
                              "unwrapped",
                              what, key));
    }
  }
  if (doc.MemberCount() != 1) return;
  auto only = doc.MemberBegin();
  std::string key(only->name.GetString(), only->name.GetStringLength());
  if (!keys_resource(key, resource)) return;
  if (!only->value.IsObject()) {
    throw Error(Errc::invalid, fmt::format("{}: \"{}\" must be a mapping of settings, got {} {}",
                                           what, key, json::type_name(only->value),
                                           json::dump(only->value)));
  }
  json::Value inner;
  inner.Swap(only->value);
  // The inner value was allocated from doc's allocator, so it can become
  // the root in place.
  static_cast<json::Value&>(doc).Swap(inner);
}

void merge_resource_args(json::Document& config, const QueueDef& queue,
                         const std::string& resource_args) {
  const std::string q = "queue " + queue.ref().str();
  unwrap_resource_keyed(config, queue.resource, q + ": config");
  json::Document overrides = json::parse_object(resource_args, "job spec: resource_args");
  unwrap_resource_keyed(overrides, queue.resource, "job spec: resource_args");
  tmpl::merge(config, overrides, config.GetAllocator());
}

void check_resource_config(const QueueDef& queue, const std::string& resource_args) {
  const std::string q = "queue " + queue.ref().str();
  json::Document config = json::parse_object(queue.config, q + ": config");
  merge_resource_args(config, queue, resource_args);
  std::unique_ptr<Runner> runner;
  try {
    runner = make_runner(queue.resource, RunnerContext{});
  } catch (const Error& e) {
    if (e.code() == Errc::not_found) return;
    throw;
  }
  try {
    runner->check_config(json::dump(config));
  } catch (const Error& e) {
    throw Error(e.code(), fmt::format("{}: {}", q, e.what()));
  }
}

std::map<std::string, std::string> job_macros(const QueueItem& item,
                                              const std::string& image_uri) {
  const JobSpec& spec = item.spec;
  return {
      {"run_id", item.run_id},           {"run_name", spec.name},
      {"image_uri", image_uri},          {"entity_name", item.queue.entity},
      {"project_name", spec.project},    {"author", spec.author},
  };
}

std::string resolve_config(const QueueDef& queue, const QueueItem& item,
                           const MacroContext& macros, const SecureMode& secure) {
  const JobSpec& spec = item.spec;
  json::Document config = tmpl::filled_config(queue, spec.template_values);
  json::Allocator& a = config.GetAllocator();
  merge_resource_args(config, queue, spec.resource_args);
  tmpl::expand(config, job_macros(item, macros.image_uri), macros.env, a);
  if (secure.on) {
    // resource_args are in `config` now, at the paths the runner reads them.
    check_secure_fields(config, "");
    if (secure.entry_point_overridden) refuse_entry_point_override(queue.resource, spec);
  }
  return json::dump(config);
}

}  // namespace launch
