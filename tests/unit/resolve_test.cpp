// A job's resource config resolved in one pass: template values, deep
// merge, macros, secure mode, in that order.
#include <doctest/doctest.h>

#include <string>

#include "core/resolve.hpp"
#include "launch/error.hpp"
#include "launch/queue.hpp"
#include "unit/expect_error.hpp"

using launch::MacroContext;
using launch::QueueDef;
using launch::QueueItem;
using launch::SecureMode;
using launch_test::has;
using launch_test::invalid;

namespace {

// A queue whose config holds `config`, with one integer variable `gpus`.
QueueDef queue(const std::string& config) {
  QueueDef q;
  q.entity = "ml-team";
  q.name = "gpu";
  q.resource = "kubernetes";
  q.config = config;
  launch::TemplateVariable gpus;
  gpus.type = launch::VarType::integer;
  gpus.maximum = 4;
  gpus.default_value = "1";
  q.template_variables = {{"gpus", gpus}};
  return q;
}

QueueItem item(const std::string& resource_args, const std::string& gpus = "2") {
  QueueItem i;
  i.id = "item-1";
  i.run_id = "r1";
  i.queue = {"ml-team", "gpu"};
  i.spec.name = "train";
  i.spec.author = "alice";
  i.spec.project = "p";
  i.spec.resource_args = resource_args;
  i.spec.template_values = {{"gpus", gpus}};
  return i;
}

MacroContext macros(const std::string& image = "reg/img:1") {
  MacroContext m;
  m.image_uri = image;
  m.env = [](const std::string& name, std::string* value) {
    if (name != "NET") return false;
    *value = "host";
    return true;
  };
  return m;
}

SecureMode secure(bool on = true) {
  SecureMode s;
  s.on = on;
  return s;
}

}  // namespace

TEST_SUITE("resolve") {

TEST_CASE("template values, then the merge, then macros") {
  // The queue's placeholder is filled before resource_args replace it; a
  // placeholder coming from resource_args is not one (templates come
  // first); a macro coming from resource_args is expanded (macros come
  // after the merge), and so is one that a template value put in place.
  QueueDef q = queue(R"({"n":"{{gpus}}","keep":"{{gpus}}","img":"${image_uri}",)"
                     R"("env":{"A":"a"}})");
  std::string resolved = launch::resolve_config(
      q, item(R"({"n":"{{gpus}}","run":"${run_id}-${author}","env":{"B":"${run_name}"}})"),
      macros(), secure(false));
  CHECK(resolved == R"({"n":"{{gpus}}","keep":2,"img":"reg/img:1","env":{"A":"a","B":"train"},)"
                    R"("run":"r1-alice"})");
}

TEST_CASE("secure mode checks the document after macros") {
  // Harmless as text, dangerous once expanded: refused.
  QueueDef q = queue(R"({"network_mode":"${NET}"})");
  std::string m = invalid([&] { launch::resolve_config(q, item("{}"), macros(), secure()); });
  CHECK(has(m, "secure_mode: network_mode is not allowed"));
  CHECK(has(m, "\"host\""));
  // The same config without secure mode resolves.
  CHECK(launch::resolve_config(q, item("{}"), macros(), secure(false)) ==
        R"({"network_mode":"host"})");
}

TEST_CASE("secure mode sees the merged resource_args, at the path the runner reads") {
  QueueDef q = queue(R"({"spec":{"template":{"spec":{"containers":[{"name":"main"}]}}}})");
  std::string m = invalid([&] {
    launch::resolve_config(q, item(R"({"spec":{"template":{"spec":{"hostPID":true}}}})"),
                           macros(), secure());
  });
  CHECK(m.find("secure_mode: spec.template.spec.hostPID is not allowed") == 0);
  CHECK(has(m, "true"));
  // A field the queue sets harmlessly and resource_args turn on.
  q = queue(R"({"securityContext":{"privileged":false}})");
  m = invalid([&] {
    launch::resolve_config(q, item(R"({"securityContext":{"privileged":true}})"), macros(),
                           secure());
  });
  CHECK(has(m, "secure_mode: securityContext.privileged is not allowed"));
  // And one the queue sets that resource_args turn off passes.
  q = queue(R"({"securityContext":{"privileged":true}})");
  CHECK(launch::resolve_config(q, item(R"({"securityContext":{"privileged":false}})"),
                               macros(), secure()) == R"({"securityContext":{"privileged":false}})");
}

TEST_CASE("an entry_point override is refused last, after the config passes") {
  QueueItem i = item("{}");
  i.spec.entry_point = {"python", "evil.py"};
  SecureMode s = secure();
  s.entry_point_overridden = true;
  std::string m = invalid([&] { launch::resolve_config(queue("{}"), i, macros(), s); });
  CHECK(has(m, "secure_mode: entry_point override is not allowed"));
  CHECK(has(m, "on kubernetes"));
  // A dangerous field is named before the entry point.
  m = invalid([&] { launch::resolve_config(queue(R"({"hostNetwork":true})"), i, macros(), s); });
  CHECK(has(m, "secure_mode: hostNetwork is not allowed"));
  // Secure mode off: neither is refused.
  s.on = false;
  CHECK(launch::resolve_config(queue("{}"), i, macros(), s) == "{}");
}

TEST_CASE("each step's refusal keeps its message") {
  // A template value first, even when the config is broken too.
  std::string m = invalid([] {
    launch::resolve_config(queue("{"), item("{}", "9"), macros(), secure());
  });
  CHECK(m == "template variable \"gpus\": value 9 is above the maximum 4");
  m = invalid([] { launch::resolve_config(queue("{"), item("{}"), macros(), secure()); });
  CHECK(has(m, "queue ml-team/gpu: config: invalid JSON"));
  m = invalid([] {
    launch::resolve_config(queue(R"({"a":["{{gpu}}"]})"), item("{}"), macros(), secure());
  });
  CHECK(has(m, "config.a[0]: placeholder {{gpu}} names no declared template variable"));
  m = invalid([] { launch::resolve_config(queue("{}"), item("[1]"), macros(), secure()); });
  CHECK(has(m, "job spec: resource_args: expected a JSON object"));
}

TEST_CASE("no environment lookup: macros from the item only; empty resource_args") {
  MacroContext m = macros("");
  m.env = nullptr;
  CHECK(launch::resolve_config(queue(R"({"x":"${NET}${image_uri}${entity_name}/${project_name}"})"),
                               item(""), m, secure()) == R"({"x":"${NET}ml-team/p"})");
}

}  // TEST_SUITE
