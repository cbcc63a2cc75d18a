// A job's resource config resolved on one parsed document (resolve.hpp).
#include "core/resolve.hpp"

#include "util/json.hpp"
#include "core/secure.hpp"
#include "core/template_value.hpp"

namespace launch {

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
  json::Document overrides = json::parse_object(spec.resource_args, "job spec: resource_args");
  tmpl::merge(config, overrides, a);
  tmpl::expand(config, job_macros(item, macros.image_uri), macros.env, a);
  if (secure.on) {
    // resource_args are in `config` now, at the paths the runner reads them.
    check_secure_fields(config, "");
    if (secure.entry_point_overridden) refuse_entry_point_override(queue.resource, spec);
  }
  return json::dump(config);
}

}  // namespace launch
