// Internal: a job's resource config resolved in one pass, the way the agent
// hands it to a runner.
//
// The queue's config is parsed once; template values are filled, the job's
// resource_args merged and the macros expanded in that one document; secure
// mode checks the same document, so it sees exactly what the runner will
// get (merged overrides and expanded macros included); the result is
// written out once. The text functions of template.hpp are made of the same
// steps (template_value.hpp), one at a time.
#ifndef LAUNCH_SRC_CORE_RESOLVE_HPP
#define LAUNCH_SRC_CORE_RESOLVE_HPP

#include <map>
#include <string>

#include "launch/job.hpp"
#include "launch/queue.hpp"
#include "launch/template.hpp"
#include "util/json.hpp"

namespace launch {

// Where the macros come from besides the item itself: `${image_uri}` is the
// image the job runs (known once it is built), `${ENV_VAR}` is looked up in
// `env` (nullptr: none).
struct MacroContext {
  std::string image_uri;
  EnvLookup env = process_env;
};

// Whether, and how strictly, secure mode applies (agent.hpp's secure_mode).
struct SecureMode {
  bool on = false;
  // The job's entry_point replaces the image's own (a runner that needs an
  // image, and a job that names an entry point): refused when `on`.
  bool entry_point_overridden = false;
};

// The macros a job's config is expanded with: run_id, run_name, image_uri,
// entity_name, project_name, author.
std::map<std::string, std::string> job_macros(const QueueItem& item,
                                              const std::string& image_uri);

// W&B keys resource_args, in jobs and in queue configs, by resource:
// `{"local-container": {...}}`. A document whose only top-level key is
// `resource` (or "vertex" for gcp-vertex, W&B's other name for it) is taken
// out of that wrapper, in place. A top-level key that names another
// resource (a built-in one W&B knows, or any registered runner) is refused,
// naming the key, and so is the own resource's key beside other keys. `what`
// names the document in errors ("queue ml/gpu: config").
void unwrap_resource_keyed(json::Document& doc, const std::string& resource,
                           const std::string& what);

// The one place a queue's config and a job's resource_args meet: both are
// taken out of W&B's wrapper (unwrap_resource_keyed), then `resource_args`
// is deep-merged over `config` in place. `config` is the queue's config
// parsed, with its templates filled (the agent) or as stored (the checks at
// push). `queue` names the documents in errors.
void merge_resource_args(json::Document& config, const QueueDef& queue,
                         const std::string& resource_args);

// Hands the queue's config, with `resource_args` merged over it as above
// and its template placeholders unfilled, to the check_config() of the
// runner registered for the queue's resource, so what the runner would
// refuse is refused before anything is stored (queue create, push).
// Nothing is checked for a resource no runner is registered for in this
// process (a custom runner that lives in the agent only). Throws
// Errc::invalid naming the queue and the option.
void check_resource_config(const QueueDef& queue, const std::string& resource_args = "{}");

// The queue's config for `item`, resolved in DESIGN.md's order: template
// values (checked against their schemas) -> deep merge of the job's
// resource_args (merge_resource_args) -> macros -> secure-mode checks (when `secure.on`). Returns
// the JSON text a runner gets as ResolvedJob::config. Throws Errc::invalid
// with the message of the step that refused it: a template value naming the
// variable, a placeholder naming its path, bad JSON naming the queue's
// config or the job's resource_args, a secure-mode field naming its path in
// the resolved config.
std::string resolve_config(const QueueDef& queue, const QueueItem& item,
                           const MacroContext& macros, const SecureMode& secure);

}  // namespace launch

#endif
