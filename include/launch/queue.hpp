// launch — queues: where jobs wait.
//
// A queue is `entity/name`. It names the resource its jobs run on, holds that
// resource's configuration (JSON text, possibly with `{{var}}` template
// placeholders), the schemas of those template variables, and whether jobs
// carry priorities. A queue file (YAML or JSON) looks like:
//
//   name: gpu
//   entity: ml-team
//   resource: local-process
//   prioritization: true
//   config: {env: {GPUS: "{{gpus}}"}}
//   template_variables:
//     gpus: {type: integer, minimum: 1, maximum: 4, default: 1}
#ifndef LAUNCH_QUEUE_HPP
#define LAUNCH_QUEUE_HPP

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "launch/export.h"

namespace launch {

// `entity/name`. Both parts: 1–64 chars of [A-Za-z0-9._-].
struct LAUNCH_EXPORT QueueRef {
  std::string entity;
  std::string name;

  // "entity/name", or "name" with `default_entity`. Throws Errc::invalid
  // naming the bad part.
  static QueueRef parse(const std::string& text,
                        const std::string& default_entity = "");
  std::string str() const { return entity + "/" + name; }
  bool operator==(const QueueRef& o) const {
    return entity == o.entity && name == o.name;
  }
  bool operator!=(const QueueRef& o) const { return !(*this == o); }
  bool operator<(const QueueRef& o) const {
    return entity != o.entity ? entity < o.entity : name < o.name;
  }
};

// Throws Errc::invalid unless `value` is 1–64 chars of [A-Za-z0-9._-], not
// starting with '-' (a command line would take it for an option) and not
// "." or "..". `field` names what is checked ("queue name", "entity"). The
// value is read as UTF-8 text: the error shows it whole (controls and bytes
// that are not UTF-8 escaped) and names a refused character whole, with its
// code point ('é' (U+00E9)); bytes that are not UTF-8 are refused as such.
// This is the one check of a name: QueueRef::parse, QueueDef::validate and
// every transport's create_queue go through it.
LAUNCH_EXPORT void validate_name(const std::string& field,
                                 const std::string& value);

enum class VarType { string, integer, number };
LAUNCH_EXPORT const char* to_string(VarType t);
LAUNCH_EXPORT VarType parse_var_type(const std::string& text);

// The schema of one template variable. Values travel as text (as typed on a
// command line: "8", "a100") and are checked and converted per `type`.
struct LAUNCH_EXPORT TemplateVariable {
  VarType type = VarType::string;
  std::optional<double> minimum;
  std::optional<double> maximum;
  std::vector<std::string> enum_values;  // canonical text of allowed values
  std::optional<std::string> default_value;
  std::string description;
};

struct LAUNCH_EXPORT QueueDef {
  std::string entity;
  std::string name;
  std::string resource = "local-process";
  std::string config = "{}";  // JSON object text
  std::map<std::string, TemplateVariable> template_variables;
  bool prioritization = false;
  // Lease policy: an agent that misses heartbeats for `lease_seconds` has
  // lost its claim; the item goes back to pending until it has been claimed
  // `max_attempts` times, then fails.
  int lease_seconds = 30;
  int max_attempts = 3;
  std::int64_t created_at = 0;  // ms since the epoch, set by the transport

  QueueRef ref() const { return QueueRef{entity, name}; }

  // Checks names, resource, config shape and every schema (a default that
  // breaks its own schema is refused), then hands the config to the
  // check_config() of the runner registered for `resource` in this process
  // (runner.hpp), so an option the runner would refuse (an unknown one,
  // `privileged` on local-container) is refused here, naming it. Every
  // transport's create_queue() calls it. Throws Errc::invalid naming the
  // field.
  //
  // `config` may also come in W&B's resource-keyed shape,
  // `{"local-container": {...}}`: a config whose only key is the queue's
  // resource is read as what that key holds; a top-level key naming
  // another resource (local-process, local-container, kubernetes,
  // sagemaker, gcp-vertex, vertex, or a registered runner) is refused. A
  // job's resource_args are read the same way.
  void validate() const;
};

// Parses a queue file, YAML or JSON (YAML is a superset). `config` may be a
// mapping or a string holding JSON/YAML. `default_entity` fills a missing
// `entity`. Unknown keys are refused by name. `source` names the file in
// errors.
LAUNCH_EXPORT QueueDef parse_queue(const std::string& text,
                                   const std::string& default_entity = "",
                                   const std::string& source = "queue");

// Parses a resource config given as JSON or YAML text into JSON object text.
LAUNCH_EXPORT std::string config_to_json(const std::string& text,
                                         const std::string& field = "config");

// The JSON form of a queue, as the stores, the CLI's --json and the C ABI
// write it: every field (a variable's minimum, maximum, enum, default and
// description only when set). Unlike parse_queue(), the reader accepts keys
// it does not know; it refuses (Errc::invalid, naming the field) a missing
// `entity`, `name` or `resource`, or a field of the wrong type.
LAUNCH_EXPORT std::string to_json(const QueueDef& q);
LAUNCH_EXPORT QueueDef queue_from_json(const std::string& json);

}  // namespace launch

#endif
