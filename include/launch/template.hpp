// launch — turning a queue's config plus a job's overrides into the config a
// runner gets. The agent applies, in order:
//
//   1. template values   `{{var}}` placeholders filled from the job's values
//                        (or the variable's default), each checked against
//                        its schema;
//   2. deep merge        the job's `resource_args` over the result (objects
//                        merge key by key, arrays and scalars replace);
//   3. macros            `${run_id}`, `${run_name}`, `${image_uri}`,
//                        `${entity_name}`, `${project_name}`, `${author}`,
//                        and `${ENV_VAR}` from the agent's environment;
//   4. secure mode       (agent.hpp) refuses dangerous fields.
//
// A push runs step 1 too, so a value that breaks its schema is refused before
// anything is queued.
#ifndef LAUNCH_TEMPLATE_HPP
#define LAUNCH_TEMPLATE_HPP

#include <functional>
#include <map>
#include <string>

#include "launch/export.h"
#include "launch/queue.hpp"

namespace launch {

// Checks `values` against the queue's schemas: every variable without a
// default must have a value, every value must parse as its type and keep its
// rules (minimum, maximum, enum), and no value may name a variable the queue
// does not declare. Throws Errc::invalid naming the variable, the value and
// the rule, e.g. `template variable "gpus": value 8 is above the maximum 4`.
LAUNCH_EXPORT void validate_template_values(
    const QueueDef& queue, const std::map<std::string, std::string>& values);

// Fills `{{var}}` placeholders in `config_json` (JSON object text). A string
// that is exactly one placeholder becomes the typed value (an integer
// variable gives a JSON number); a placeholder inside a longer string is
// spliced in as text. Validates first, as above. Returns JSON text.
LAUNCH_EXPORT std::string fill_template(
    const QueueDef& queue, const std::map<std::string, std::string>& values);

// Deep merge of `overlay_json` over `base_json` (both JSON text): objects
// merge recursively, anything else in the overlay replaces. Returns JSON.
LAUNCH_EXPORT std::string deep_merge(const std::string& base_json,
                                     const std::string& overlay_json);

// Replaces `${name}` in every string of `json` with `macros[name]`, or else
// with `env(name)` when that returns a value. Unknown `${...}` are left as
// they are. Returns JSON text.
using EnvLookup = std::function<bool(const std::string& name, std::string* value)>;
LAUNCH_EXPORT std::string expand_macros(const std::string& json,
                                        const std::map<std::string, std::string>& macros,
                                        const EnvLookup& env);

// The default EnvLookup: the process environment (getenv).
LAUNCH_EXPORT bool process_env(const std::string& name, std::string* value);

}  // namespace launch

#endif
