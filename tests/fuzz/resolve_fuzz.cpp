// Deep merge and macros (template.hpp), and a job's config resolved as the
// agent resolves it (core/resolve: template values, resource_args merged,
// macros, secure mode). Parts, cut at NUL bytes: the queue's config (JSON
// or YAML), the job's resource_args, its template values (key=value lines).
#include "core/resolve.hpp"
#include "fuzz_support.hpp"
#include "launch/template.hpp"

namespace {

bool fake_env(const std::string& name, std::string* value) {
  if (name.empty() || name[0] != 'E') return false;
  *value = "env:" + name;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto parts = fuzz::split(fuzz::text(data, size), 3);
  fuzz::refused([&] { launch::deep_merge(parts[0], parts[1]); });
  const std::map<std::string, std::string> macros = {
      {"run_id", "r1"}, {"run_name", "${run_id}"}, {"image_uri", "img:1"}};
  fuzz::refused([&] { launch::expand_macros(parts[0], macros, fake_env); });

  launch::QueueDef q;
  q.entity = "fuzz";
  q.name = "q";
  if (fuzz::refused([&] { q.config = launch::config_to_json(parts[0], "config"); })) return 0;
  for (const auto& kv : fuzz::lines_map(parts[2])) {
    launch::TemplateVariable v;
    if (!kv.first.empty() && kv.first[0] == 'n') v.type = launch::VarType::number;
    q.template_variables[kv.first] = v;
  }
  launch::QueueItem item;
  item.queue = q.ref();
  item.run_id = "r1";
  item.spec.name = "fuzz";
  item.spec.resource_args = parts[1].empty() ? "{}" : parts[1];
  item.spec.template_values = fuzz::lines_map(parts[2]);
  launch::MacroContext mc;
  mc.image_uri = "img:1";
  mc.env = fake_env;
  for (bool secure : {false, true}) {
    launch::SecureMode sm;
    sm.on = secure;
    fuzz::refused([&] { launch::resolve_config(q, item, mc, sm); });
  }
  return 0;
}
