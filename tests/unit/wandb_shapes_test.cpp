// W&B's resource-keyed resource_args ({"local-container": {...}}) in queue
// configs and pushes, and the runners' config checks at queue create and at
// push.
#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "core/resolve.hpp"
#include "launch/error.hpp"
#include "launch/features.h"
#include "launch/queue.hpp"
#include "launch/transport.hpp"
#include "unit/expect_error.hpp"

using launch::JobSpec;
using launch::QueueDef;
using launch_test::has;
using launch_test::invalid;

namespace {

QueueDef queue(const std::string& resource, const std::string& config,
               const std::string& name = "q") {
  QueueDef q;
  q.entity = "ml";
  q.name = name;
  q.resource = resource;
  q.config = config;
  launch::TemplateVariable mem;
  mem.type = launch::VarType::string;
  mem.default_value = "1g";
  q.template_variables = {{"mem", mem}};
  return q;
}

JobSpec spec(const std::string& resource_args) {
  JobSpec s;
  s.source.kind = launch::JobSource::Kind::image;
  s.source.image = "alpine:3";
  s.entry_point = {"python", "train.py"};
  s.resource_args = resource_args;
  s.run_id = "r1";
  return s;
}

// The config an agent would hand the runner for an item pushed onto `q`.
std::string resolved(launch::Transport& t, const QueueDef& q, const JobSpec& s) {
  auto item = t.get(t.push(q.ref(), s));
  return launch::resolve_config(t.get_queue(q.ref()), item, launch::MacroContext{},
                                launch::SecureMode{});
}

// Pushes the same job in both shapes onto two queues made from `ours` and
// `wandbs` (the same config, plain and wrapped) and checks that the agent
// would hand the runner the same config for each.
void same_config(const std::string& resource, const std::string& config,
                 const std::string& resource_args) {
  auto t = launch::open_transport("memory://");
  QueueDef ours = queue(resource, config, "ours");
  QueueDef wandbs = queue(resource, "{\"" + resource + "\":" + config + "}", "wandbs");
  t->create_queue(ours);
  t->create_queue(wandbs);
  std::string plain = resolved(*t, ours, spec(resource_args));
  std::string wrapped =
      resolved(*t, wandbs, spec("{\"" + resource + "\":" + resource_args + "}"));
  CHECK(plain == wrapped);
  // Both shapes mix too: a wrapped queue config with plain resource_args.
  CHECK(resolved(*t, wandbs, spec(resource_args)) == plain);
}

}  // namespace

TEST_SUITE("wandb shapes") {

TEST_CASE("the same job in W&B's shapes and in ours resolves to the same config") {
  SUBCASE("local-process") {
    same_config("local-process", R"({"env":{"A":"a","MEM":"{{mem}}"},"timeout_seconds":60})",
                R"({"env":{"B":"b"},"working_dir":"/tmp"})");
  }
#if LAUNCH_FEATURE_DOCKER
  SUBCASE("local-container") {
    same_config("local-container", R"({"memory":"{{mem}}","env":{"A":"a"}})",
                R"({"cpus":2,"env":{"B":"b"}})");
  }
#endif
  SUBCASE("a resource with no runner here: unwrapped all the same") {
    same_config("kubernetes", R"({"spec":{"backoffLimit":0}})",
                R"({"metadata":{"labels":{"a":"b"}}})");
  }
}

TEST_CASE("a resource-keyed config is unwrapped into exactly what its key holds") {
  QueueDef q = queue("local-process", R"({"local-process":{"env":{"A":"{{mem}}"}}})");
  launch::QueueItem item;
  item.queue = q.ref();
  item.spec = spec(R"({"local-process":{"timeout_seconds":5}})");
  CHECK(launch::resolve_config(q, item, {}, {}) == R"({"env":{"A":"1g"},"timeout_seconds":5})");
  // sagemaker: a plain queue config, W&B's wrapped resource_args.
  q = queue("sagemaker", R"({"RoleArn":"r","ResourceConfig":{"InstanceCount":1}})");
  item.spec = spec(R"({"sagemaker":{"ResourceConfig":{"InstanceType":"ml.m5.xlarge"}}})");
  CHECK(launch::resolve_config(q, item, {}, {}) ==
        R"({"RoleArn":"r","ResourceConfig":{"InstanceCount":1,"InstanceType":"ml.m5.xlarge"}})");
  // gcp-vertex takes W&B's other name for it.
  q = queue("gcp-vertex", R"({"vertex":{"spec":{"a":1}}})");
  item.spec = spec(R"({"gcp-vertex":{"spec":{"b":2}}})");
  CHECK(launch::resolve_config(q, item, {}, {}) == R"({"spec":{"a":1,"b":2}})");
}

TEST_CASE("a key for another resource is refused at queue create, naming it") {
  auto t = launch::open_transport("memory://");
  std::string m = invalid([&] {
    t->create_queue(queue("local-process", R"({"kubernetes":{"spec":{}}})"));
  });
  CHECK(has(m, "queue ml/q: config"));
  CHECK(has(m, "key \"kubernetes\""));
  CHECK(has(m, "resource is local-process"));
  CHECK(t->list_queues().empty());
  // The queue's own key beside other keys is ambiguous.
  m = invalid([&] {
    t->create_queue(queue("local-process", R"({"local-process":{},"env":{}})"));
  });
  CHECK(has(m, "key \"local-process\""));
  CHECK(has(m, "only top-level key"));
  // The wrapper must hold a mapping.
  m = invalid([&] { t->create_queue(queue("local-process", R"({"local-process":[1]})")); });
  CHECK(has(m, "\"local-process\" must be a mapping"));
}

TEST_CASE("a key for another resource is refused at push, naming it, and nothing is queued") {
  auto t = launch::open_transport("memory://");
  QueueDef q = queue("local-process", "{}");
  t->create_queue(q);
  std::string m = invalid([&] { t->push(q.ref(), spec(R"({"local-container":{"cpus":1}})")); });
  CHECK(has(m, "job spec: resource_args"));
  CHECK(has(m, "key \"local-container\""));
  CHECK(has(m, "resource is local-process"));
  m = invalid([&] { t->push(q.ref(), spec(R"({"sagemaker":{},"kubernetes":{}})")); });
  CHECK(has(m, "key \"sagemaker\""));
  CHECK(t->list().empty());
}

TEST_CASE("queue create checks the config with the resource's runner, naming the option") {
  auto t = launch::open_transport("memory://");
  std::string m = invalid([&] { t->create_queue(queue("local-process", R"({"bogus":1})")); });
  CHECK(has(m, "queue ml/q"));
  CHECK(has(m, "unknown option \"bogus\""));
  m = invalid([&] {
    t->create_queue(queue("local-process", R"({"local-process":{"timeout_seconds":"soon"}})"));
  });
  CHECK(has(m, "timeout_seconds"));
  // QueueDef::validate() is where it happens, so parse_queue (the CLI, the
  // C ABI) refuses it too.
  m = invalid([] {
    launch::parse_queue("name: q\nresource: local-process\nconfig: {workdir: /x}\n", "ml");
  });
  CHECK(has(m, "unknown option \"workdir\""));
  // A placeholder stands for a value of any type until the push.
  QueueDef gpus = queue("local-process", R"({"gpus":"{{mem}}","env":{"X":"{{mem}}"}})");
  CHECK_NOTHROW(t->create_queue(gpus));
  CHECK(t->list_queues().size() == 1);
}

#if LAUNCH_FEATURE_DOCKER
TEST_CASE("local-container: privileged and unknown options are refused at queue create") {
  auto t = launch::open_transport("memory://");
  std::string m = invalid([&] {
    t->create_queue(queue("local-container", R"({"privileged":true})"));
  });
  CHECK(has(m, "option \"privileged\" is not allowed"));
  m = invalid([&] {
    t->create_queue(queue("local-container", R"({"local-container":{"volumes":["/:/host"]}})"));
  });
  CHECK(has(m, "option \"volumes\" is not allowed"));
  m = invalid([&] { t->create_queue(queue("local-container", R"({"memory":"lots"})")); });
  CHECK(has(m, "local-container option \"memory\""));
  // A placeholder is an allowed option's value; its key is still checked.
  CHECK_NOTHROW(t->create_queue(queue("local-container", R"({"memory":"{{mem}}"})")));
  m = invalid([&] {
    t->create_queue(queue("local-container", R"({"privileged":"{{mem}}"})", "other"));
  });
  CHECK(has(m, "option \"privileged\" is not allowed"));
}
#endif

TEST_CASE("a push's resource_args are checked merged over the queue's config") {
  auto t = launch::open_transport("memory://");
  QueueDef q = queue("local-process", R"({"env":{"A":"a"}})");
  t->create_queue(q);
  std::string m = invalid([&] { t->push(q.ref(), spec(R"({"bogus":true})")); });
  CHECK(has(m, "queue ml/q"));
  CHECK(has(m, "unknown option \"bogus\""));
  m = invalid([&] { t->push(q.ref(), spec(R"({"local-process":{"gpus":-1}})")); });
  CHECK(has(m, "gpus -1 must not be negative"));
  CHECK(t->list().empty());
  CHECK_NOTHROW(t->push(q.ref(), spec(R"({"local-process":{"gpus":1}})")));
}

}  // TEST_SUITE
