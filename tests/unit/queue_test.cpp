// The queue model: names, queue files (YAML and JSON), schemas, JSON form.
#include <doctest/doctest.h>

#include <string>

#include "launch/error.hpp"
#include "unit/expect_error.hpp"
#include "launch/queue.hpp"
#include "launch/transport.hpp"

using launch::Errc;
using launch_test::has;
using launch_test::invalid;
using launch::QueueDef;
using launch::QueueRef;
using launch::TemplateVariable;
using launch::VarType;

namespace {



// The queue file of DESIGN.md, verbatim.
const char* const kDesignQueueFile = R"(name: gpu
entity: ml-team
resource: local-process
prioritization: true
config: {env: {GPUS: "{{gpus}}"}}
template_variables:
  gpus: {type: integer, minimum: 1, maximum: 4, default: 1}
)";

QueueDef valid_queue() {
  QueueDef q;
  q.entity = "ml-team";
  q.name = "gpu";
  return q;
}

}  // namespace

TEST_SUITE("queue") {

TEST_CASE("QueueRef::parse reads entity/name and name with a default entity") {
  QueueRef r = QueueRef::parse("ml-team/gpu");
  CHECK(r.entity == "ml-team");
  CHECK(r.name == "gpu");
  CHECK(r.str() == "ml-team/gpu");

  r = QueueRef::parse("gpu", "alice");
  CHECK(r.entity == "alice");
  CHECK(r.name == "gpu");

  // An explicit entity wins over the default.
  CHECK(QueueRef::parse("ml-team/gpu", "alice").entity == "ml-team");
  CHECK(QueueRef::parse("A.b_c-9/x") == QueueRef{"A.b_c-9", "x"});
}

TEST_CASE("QueueRef::parse names the bad part and its value") {
  std::string m = invalid([] { QueueRef::parse("gpu"); });
  CHECK(has(m, "\"gpu\""));
  CHECK(has(m, "entity"));

  m = invalid([] { QueueRef::parse("bad team/gpu"); });
  CHECK(has(m, "entity \"bad team\""));
  CHECK(has(m, "' '"));

  m = invalid([] { QueueRef::parse("ml-team/gpu!"); });
  CHECK(has(m, "queue name \"gpu!\""));
  CHECK(has(m, "'!'"));

  m = invalid([] { QueueRef::parse("a/b/c"); });
  CHECK(has(m, "queue name \"b/c\""));

  m = invalid([] { QueueRef::parse("ml-team/"); });
  CHECK(has(m, "queue name is empty"));
  CHECK(has(m, "\"ml-team/\""));

  m = invalid([] { QueueRef::parse("/gpu"); });
  CHECK(has(m, "entity is empty"));

  // A bad name is reported before a missing entity.
  m = invalid([] { QueueRef::parse("g pu"); });
  CHECK(has(m, "queue name \"g pu\""));
}

TEST_CASE("validate_name allows 1-64 characters of [A-Za-z0-9._-]") {
  launch::validate_name("queue name", "a");
  launch::validate_name("queue name", std::string(64, 'x'));
  launch::validate_name("queue name", "Az09._-");

  std::string m = invalid([] { launch::validate_name("queue name", std::string(65, 'x')); });
  CHECK(has(m, "queue name \"" + std::string(65, 'x') + "\""));
  CHECK(has(m, "65 characters"));

  m = invalid([] { launch::validate_name("entity", ""); });
  CHECK(has(m, "entity is empty"));

  m = invalid([] { launch::validate_name("entity", "é"); });
  CHECK(has(m, "entity \"é\""));

  m = invalid([] { launch::validate_name("queue name", ".."); });
  CHECK(has(m, "queue name \"..\""));
  m = invalid([] { launch::validate_name("queue name", "."); });
  CHECK(has(m, "queue name \".\""));
}

TEST_CASE("validate_name reads names as UTF-8 text and shows them whole") {
  // The character is named whole, never as the first byte of its sequence.
  std::string m = invalid([] { launch::validate_name("queue name", "gpu-é"); });
  CHECK(has(m, "queue name \"gpu-é\": character 'é' (U+00E9) is not allowed"));
  m = invalid([] { launch::validate_name("entity", "团队"); });
  CHECK(has(m, "entity \"团队\": character '团' (U+56E2)"));
  m = invalid([] { launch::validate_name("queue name", "a\xF0\x9F\x9A\x80"); });
  CHECK(has(m, "character '\xF0\x9F\x9A\x80' (U+1F680)"));
  // Lengths count characters, not bytes: 64 two-byte letters are 64 long.
  std::string long_name;
  for (int i = 0; i < 65; ++i) long_name += "é";
  m = invalid([&] { launch::validate_name("queue name", long_name); });
  CHECK(has(m, "is 65 characters long"));
  CHECK(has(m, "\"" + long_name + "\""));
  // Bytes that are not UTF-8 are refused as such and shown escaped, as are
  // controls (a terminal escape in a name must not reach the terminal).
  m = invalid([] { launch::validate_name("queue name", "ab\xC3"); });
  CHECK(has(m, "queue name \"ab\\xC3\": not UTF-8 text (byte 0xC3 at offset 2)"));
  m = invalid([] { launch::validate_name("queue name", "a\xC3\x28"); });
  CHECK(has(m, "byte 0xC3 at offset 1"));
  m = invalid([] { launch::validate_name("queue name", "a\xC0\xAF"); });  // overlong '/'
  CHECK(has(m, "not UTF-8 text"));
  m = invalid([] { launch::validate_name("queue name", "red\x1B[31m"); });
  CHECK(has(m, "\"red\\u{001B}[31m\": character U+001B is not allowed"));
  CHECK_FALSE(has(m, "\x1B"));
  // QueueRef::parse says the same, through the same check.
  m = invalid([] { QueueRef::parse("team/gpu-é"); });
  CHECK(has(m, "queue \"team/gpu-é\": queue name \"gpu-é\": character 'é' (U+00E9)"));
}

TEST_CASE("a name may not start with a dash; a queue named -x is refused at create") {
  std::string m = invalid([] { launch::validate_name("queue name", "-x"); });
  CHECK(has(m, "queue name \"-x\" must not start with '-'"));
  m = invalid([] { launch::validate_name("entity", "--team"); });
  CHECK(has(m, "entity \"--team\" must not start with '-'"));
  launch::validate_name("queue name", "x-");  // elsewhere a dash is fine
  launch::validate_name("queue name", "a-b");

  QueueDef q;
  q.entity = "team";
  q.name = "-x";
  m = invalid([&] { q.validate(); });
  CHECK(has(m, "queue name \"-x\" must not start with '-'"));
  auto t = launch::open_transport("memory://");
  m = invalid([&] { t->create_queue(q); });
  CHECK(has(m, "must not start with '-'"));
  CHECK(t->list_queues().empty());
  m = invalid([] { launch::parse_queue("name: -x\nentity: team\nresource: local-process\n"); });
  CHECK(has(m, "must not start with '-'"));
}

TEST_CASE("variable types read and print by name") {
  for (VarType t : {VarType::string, VarType::integer, VarType::number}) {
    CHECK(launch::parse_var_type(launch::to_string(t)) == t);
  }
  CHECK(std::string(launch::to_string(VarType::integer)) == "integer");
  std::string m = invalid([] { launch::parse_var_type("float"); });
  CHECK(has(m, "\"float\""));
  CHECK(has(m, "template variable type \"float\": expected string, integer or number"));
}

TEST_CASE("the DESIGN.md queue file parses") {
  QueueDef q = launch::parse_queue(kDesignQueueFile, "", "queue.yaml");
  CHECK(q.name == "gpu");
  CHECK(q.entity == "ml-team");
  CHECK(q.resource == "local-process");
  CHECK(q.prioritization);
  CHECK(q.config == R"({"env":{"GPUS":"{{gpus}}"}})");
  REQUIRE(q.template_variables.count("gpus") == 1);
  const TemplateVariable& v = q.template_variables.at("gpus");
  CHECK(v.type == VarType::integer);
  CHECK(v.minimum == doctest::Approx(1));
  CHECK(v.maximum == doctest::Approx(4));
  REQUIRE(v.default_value);
  CHECK(*v.default_value == "1");
  CHECK(v.enum_values.empty());
  CHECK(q.lease_seconds == 30);
  CHECK(q.max_attempts == 3);
  CHECK(q.created_at == 0);
}

TEST_CASE("the same queue as a JSON file parses the same") {
  const char* text = R"({
    "name": "gpu", "entity": "ml-team", "resource": "local-process",
    "prioritization": true, "config": {"env": {"GPUS": "{{gpus}}"}},
    "template_variables": {"gpus": {"type": "integer", "minimum": 1, "maximum": 4,
                                    "default": 1}}
  })";
  QueueDef j = launch::parse_queue(text, "", "queue.json");
  QueueDef y = launch::parse_queue(kDesignQueueFile, "", "queue.yaml");
  CHECK(launch::to_json(j) == launch::to_json(y));
}

TEST_CASE("a queue file's every field") {
  QueueDef q = launch::parse_queue(R"(
name: k8s
resource: kubernetes
lease_seconds: 120
max_attempts: 5
config:
  spec:
    template:
      spec:
        containers: [{name: main, resources: {limits: {nvidia.com/gpu: "{{gpus}}"}}}]
template_variables:
  gpus: {type: integer, enum: [1, 2, 4], default: 2, description: GPUs per job}
  size: {type: string, enum: [s, m, l]}
  lr: {type: number, minimum: 0.0001, maximum: 1}
)",
                                   "alice", "k8s.yaml");
  CHECK(q.entity == "alice");  // the default entity fills a missing one
  CHECK(q.resource == "kubernetes");
  CHECK_FALSE(q.prioritization);
  CHECK(q.lease_seconds == 120);
  CHECK(q.max_attempts == 5);
  const auto& gpus = q.template_variables.at("gpus");
  CHECK(gpus.enum_values == std::vector<std::string>{"1", "2", "4"});
  CHECK(gpus.description == "GPUs per job");
  const auto& size = q.template_variables.at("size");
  CHECK(size.type == VarType::string);
  CHECK(size.enum_values == std::vector<std::string>{"s", "m", "l"});
  CHECK_FALSE(size.default_value);
  const auto& lr = q.template_variables.at("lr");
  CHECK(lr.type == VarType::number);
  CHECK(*lr.minimum == doctest::Approx(0.0001));
}

TEST_CASE("the entity in the file wins over the default entity") {
  CHECK(launch::parse_queue(kDesignQueueFile, "alice", "q").entity == "ml-team");
}

TEST_CASE("config may be a string holding JSON or YAML") {
  QueueDef q = launch::parse_queue(R"(
name: a
entity: e
config: '{"env": {"A": "1"}}'
)");
  CHECK(q.config == R"({"env":{"A":"1"}})");

  q = launch::parse_queue("name: a\nentity: e\nconfig: |\n  env:\n    A: x\n  timeout_seconds: 5\n");
  CHECK(q.config == R"({"env":{"A":"x"},"timeout_seconds":5})");

  q = launch::parse_queue("name: a\nentity: e\n");
  CHECK(q.config == "{}");
}

TEST_CASE("config_to_json takes JSON or YAML and wants a mapping") {
  CHECK(launch::config_to_json(R"({"a": [1, 2]})") == R"({"a":[1,2]})");
  CHECK(launch::config_to_json("a: {b: true}") == R"({"a":{"b":true}})");
  CHECK(launch::config_to_json("") == "{}");
  std::string m = invalid([] { launch::config_to_json("[1, 2]", "--config"); });
  CHECK(has(m, "--config"));
  CHECK(has(m, "[1,2]"));
  m = invalid([] { launch::config_to_json("a: [1", "--config"); });
  CHECK(has(m, "--config"));
  CHECK(has(m, "line"));
}

TEST_CASE("unknown keys are refused naming the key and the source") {
  std::string m = invalid([] {
    launch::parse_queue("name: gpu\nentity: e\npriority: true\n", "", "gpu.yaml");
  });
  CHECK(has(m, "gpu.yaml"));
  CHECK(has(m, "unknown key \"priority\""));
  CHECK(has(m, "prioritization"));  // the list of known keys helps the typo

  m = invalid([] {
    launch::parse_queue(R"({"name": "gpu", "entity": "e", "template_variables":
                           {"gpus": {"type": "integer", "minimun": 1}}})",
                        "", "gpu.json");
  });
  CHECK(has(m, "gpu.json"));
  CHECK(has(m, "template_variables.gpus"));
  CHECK(has(m, "unknown key \"minimun\""));
}

TEST_CASE("a queue file's shape errors name the source, the field and the value") {
  std::string m = invalid([] { launch::parse_queue("entity: e\n", "", "q.yaml"); });
  CHECK(has(m, "q.yaml"));
  CHECK(has(m, "\"name\""));

  m = invalid([] { launch::parse_queue("name: gpu\n", "", "q.yaml"); });
  CHECK(has(m, "q.yaml"));
  CHECK(has(m, "\"entity\""));

  m = invalid([] { launch::parse_queue("- a\n- b\n", "e", "q.yaml"); });
  CHECK(has(m, "q.yaml"));
  CHECK(has(m, "[\"a\",\"b\"]"));

  m = invalid([] { launch::parse_queue("name: gpu\nentity: e\nprioritization: yes\n", "", "q.yaml"); });
  CHECK(has(m, "q.yaml"));
  CHECK(has(m, "\"prioritization\""));
  CHECK(has(m, "\"yes\""));

  m = invalid([] { launch::parse_queue("name: 7\nentity: e\n", "", "q.yaml"); });
  CHECK(has(m, "\"name\""));
  CHECK(has(m, "7"));

  m = invalid([] { launch::parse_queue("name: gpu\nentity: e\nconfig: [1]\n", "", "q.yaml"); });
  CHECK(has(m, "\"config\""));
  CHECK(has(m, "[1]"));

  m = invalid([] { launch::parse_queue("name: gpu\nentity: e\nconfig: '[1'\n", "", "q.yaml"); });
  CHECK(has(m, "q.yaml: config"));

  m = invalid([] { launch::parse_queue("name: gpu\nentity: e\ntemplate_variables: [a]\n", "", "q.yaml"); });
  CHECK(has(m, "\"template_variables\""));
  CHECK(has(m, "[\"a\"]"));

  m = invalid([] { launch::parse_queue("name: gpu\nentity: e\nlease_seconds: 1.5\n", "", "q.yaml"); });
  CHECK(has(m, "\"lease_seconds\""));
  CHECK(has(m, "1.5"));

  m = invalid([] { launch::parse_queue("name: [gpu\n", "", "q.yaml"); });
  CHECK(has(m, "q.yaml"));
  CHECK(has(m, "line"));
}

TEST_CASE("bad names in a queue file name the source and the value") {
  std::string m = invalid([] { launch::parse_queue("name: g/pu\nentity: e\n", "", "q.yaml"); });
  CHECK(has(m, "q.yaml"));
  CHECK(has(m, "queue name \"g/pu\""));

  m = invalid([] { launch::parse_queue("name: gpu\nentity: ml team\n", "", "q.yaml"); });
  CHECK(has(m, "entity \"ml team\""));

  m = invalid([] { launch::parse_queue("name: gpu\n", "bad entity", "q.yaml"); });
  CHECK(has(m, "entity \"bad entity\""));
}

TEST_CASE("lease policy must be at least one") {
  std::string m = invalid([] { launch::parse_queue("name: a\nentity: e\nlease_seconds: 0\n", "", "q.yaml"); });
  CHECK(has(m, "q.yaml"));
  CHECK(has(m, "lease_seconds 0"));
  m = invalid([] { launch::parse_queue("name: a\nentity: e\nmax_attempts: -2\n", "", "q.yaml"); });
  CHECK(has(m, "max_attempts -2"));
  m = invalid([] { launch::parse_queue("name: a\nentity: e\nmax_attempts: 99999999999\n", "", "q.yaml"); });
  CHECK(has(m, "max_attempts"));
  CHECK(has(m, "99999999999"));
}

TEST_CASE("bad template variable schemas are refused naming the variable and the value") {
  auto parse = [](const std::string& var) {
    return launch::parse_queue("name: a\nentity: e\ntemplate_variables:\n  gpus: " + var + "\n",
                               "", "q.yaml");
  };
  std::string m = invalid([&] { parse("{type: integer, minimum: 5, maximum: 4}"); });
  CHECK(has(m, "q.yaml"));
  CHECK(has(m, "template variable \"gpus\": minimum 5 is above the maximum 4"));

  m = invalid([&] { parse("{type: integer, enum: [1, abc]}"); });
  CHECK(has(m, "template variable \"gpus\": enum value \"abc\" is not an integer"));

  m = invalid([&] { parse("{type: number, enum: [0.5, x]}"); });
  CHECK(has(m, "enum value \"x\" is not a number"));

  m = invalid([&] { parse("{type: integer, maximum: 4, enum: [2, 8]}"); });
  CHECK(has(m, "enum value 8 is above the maximum 4"));

  m = invalid([&] { parse("{type: integer, maximum: 4, default: 8}"); });
  CHECK(has(m, "template variable \"gpus\": default 8 is above the maximum 4"));

  m = invalid([&] { parse("{type: number, minimum: 0.5, default: 0.25}"); });
  CHECK(has(m, "default 0.25 is below the minimum 0.5"));

  m = invalid([&] { parse("{type: integer, default: 1.5}"); });
  CHECK(has(m, "default \"1.5\" is not an integer"));

  m = invalid([&] { parse("{type: integer, enum: [1, 2], default: 3}"); });
  CHECK(has(m, "default 3 is not one of 1, 2"));

  m = invalid([&] { parse("{type: string, enum: [s, m], default: xl}"); });
  CHECK(has(m, "default \"xl\" is not one of \"s\", \"m\""));

  m = invalid([&] { parse("{type: string, minimum: 1}"); });
  CHECK(has(m, "template variable \"gpus\": minimum 1"));
  CHECK(has(m, "string"));

  m = invalid([&] { parse("{minimum: 1}"); });
  CHECK(has(m, "template_variables.gpus"));
  CHECK(has(m, "\"type\""));

  m = invalid([&] { parse("{type: float}"); });
  CHECK(has(m, "template_variables.gpus"));
  CHECK(has(m, "\"float\""));

  m = invalid([&] { parse("{type: integer, minimum: one}"); });
  CHECK(has(m, "\"minimum\""));
  CHECK(has(m, "\"one\""));

  m = invalid([&] { parse("{type: integer, enum: 3}"); });
  CHECK(has(m, "\"enum\""));
  CHECK(has(m, "3"));

  m = invalid([&] { parse("{type: integer, default: [1]}"); });
  CHECK(has(m, "\"default\""));
  CHECK(has(m, "[1]"));

  m = invalid([&] { parse("integer"); });
  CHECK(has(m, "template_variables.gpus"));
  CHECK(has(m, "\"integer\""));
}

TEST_CASE("template variable names start with a letter or '_'") {
  QueueDef q = valid_queue();
  q.template_variables["1gpus"] = TemplateVariable{};
  std::string m = invalid([&] { q.validate(); });
  CHECK(has(m, "template variable \"1gpus\""));

  q = valid_queue();
  q.template_variables["gp us"] = TemplateVariable{};
  m = invalid([&] { q.validate(); });
  CHECK(has(m, "template variable \"gp us\""));
  CHECK(has(m, "' '"));

  q = valid_queue();
  q.template_variables["_a.b-c9"] = TemplateVariable{};
  q.validate();
}

TEST_CASE("a placeholder in the config must name a declared variable") {
  std::string m = invalid([] {
    launch::parse_queue("name: a\nentity: e\nconfig: {env: {X: 'a{{ foo }}'}}\n", "", "q.yaml");
  });
  CHECK(has(m, "q.yaml"));
  CHECK(has(m, "config.env.X"));
  CHECK(has(m, "{{foo}}"));

  m = invalid([] {
    launch::parse_queue("name: a\nentity: e\nconfig: {args: [x, '{{foo}}']}\n", "", "q.yaml");
  });
  CHECK(has(m, "config.args[1]"));

  // Text that is not a placeholder ({{ .Values.x }}, a Go template) is fine.
  // (On a resource with no runner in this process, so that no runner
  // checks the option.)
  launch::parse_queue("name: a\nentity: e\nresource: kubernetes\n"
                      "config: {note: '{{ .Values.x }}'}\n");
}

TEST_CASE("QueueDef::validate checks resource and config") {
  QueueDef q = valid_queue();
  q.validate();

  q.resource = "";
  std::string m = invalid([&] { q.validate(); });
  CHECK(has(m, "ml-team/gpu"));
  CHECK(has(m, "resource is empty"));

  q = valid_queue();
  q.config = "[1, 2]";
  m = invalid([&] { q.validate(); });
  CHECK(has(m, "config"));
  CHECK(has(m, "[1,2]"));

  q = valid_queue();
  q.config = "{\"a\": ";
  m = invalid([&] { q.validate(); });
  CHECK(has(m, "ml-team/gpu: config"));
  CHECK(has(m, "invalid JSON"));
}

TEST_CASE("to_json and queue_from_json round-trip") {
  QueueDef q = valid_queue();
  q.resource = "kubernetes";
  q.config = R"({"spec":{"n":"{{gpus}}","lr":"{{lr}}"},"list":[1,"{{size}}"]})";
  q.prioritization = true;
  q.lease_seconds = 90;
  q.max_attempts = 7;
  q.created_at = 1767225600123;
  TemplateVariable gpus;
  gpus.type = VarType::integer;
  gpus.minimum = 1;
  gpus.maximum = 8;
  gpus.enum_values = {"1", "2", "8"};
  gpus.default_value = "2";
  gpus.description = "GPUs per job";
  TemplateVariable lr;
  lr.type = VarType::number;
  lr.minimum = 0.0001;
  lr.maximum = 0.5;
  lr.default_value = "0.01";
  TemplateVariable size;
  size.enum_values = {"s", "m"};
  q.template_variables = {{"gpus", gpus}, {"lr", lr}, {"size", size}};
  q.validate();

  std::string j = launch::to_json(q);
  QueueDef r = launch::queue_from_json(j);
  CHECK(r.entity == q.entity);
  CHECK(r.name == q.name);
  CHECK(r.resource == q.resource);
  CHECK(r.config == q.config);
  CHECK(r.prioritization);
  CHECK(r.lease_seconds == 90);
  CHECK(r.max_attempts == 7);
  CHECK(r.created_at == 1767225600123);
  REQUIRE(r.template_variables.size() == 3);
  const auto& g = r.template_variables.at("gpus");
  CHECK(g.type == VarType::integer);
  CHECK(*g.minimum == 1);
  CHECK(*g.maximum == 8);
  CHECK(g.enum_values == gpus.enum_values);
  CHECK(*g.default_value == "2");
  CHECK(g.description == "GPUs per job");
  const auto& l = r.template_variables.at("lr");
  CHECK(*l.minimum == 0.0001);
  CHECK(*l.maximum == 0.5);
  CHECK(*l.default_value == "0.01");
  CHECK(r.template_variables.at("size").enum_values == size.enum_values);
  CHECK_FALSE(r.template_variables.at("size").default_value);
  CHECK(launch::to_json(r) == j);

  // Values are typed in JSON: 2, not "2".
  CHECK(has(j, "\"default\":2"));
  CHECK(has(j, "\"enum\":[1,2,8]"));
  CHECK(has(j, "\"enum\":[\"s\",\"m\"]"));
  CHECK(has(j, "\"created_at\":1767225600123"));
}

TEST_CASE("queue_from_json ignores keys it does not know; parse_queue ignores created_at") {
  QueueDef q = launch::queue_from_json(
      R"({"entity":"e","name":"n","resource":"r","config":{},"added_later":1})");
  CHECK(q.name == "n");
  // The JSON form fed back as a queue file: accepted, created_at left to
  // the transport.
  q.created_at = 5;
  QueueDef back = launch::parse_queue(launch::to_json(q), "", "show.json");
  CHECK(back.name == "n");
  CHECK(back.created_at == 0);
}

TEST_CASE("queue_from_json refuses a missing or wrong-typed field by name") {
  auto refused = [](const std::string& text) {
    return invalid([&] { launch::queue_from_json(text); });
  };
  CHECK(has(refused(R"({"name":"n","resource":"r"})"), "queue JSON: missing field \"entity\""));
  CHECK(has(refused(R"({"entity":"e","resource":"r"})"), "missing field \"name\""));
  CHECK(has(refused(R"({"entity":"e","name":"n"})"), "missing field \"resource\""));
  const std::string head = R"({"entity":"e","name":"n","resource":"r",)";
  CHECK(has(refused(R"({"entity":1,"name":"n","resource":"r"})"),
            "field \"entity\" must be a string"));
  CHECK(has(refused(head + R"("prioritization":"yes"})"), "field \"prioritization\""));
  CHECK(has(refused(head + R"("lease_seconds":"30"})"), "field \"lease_seconds\""));
  CHECK(has(refused(head + R"("max_attempts":1e10})"), "field \"max_attempts\" is out of range"));
  CHECK(has(refused(head + R"("created_at":"today"})"), "field \"created_at\""));
  CHECK(has(refused(head + R"("config":[1]})"), "field \"config\""));
  CHECK(has(refused(head + R"("template_variables":[]})"), "field \"template_variables\""));
  CHECK(has(refused(head + R"("template_variables":{"g":{"type":"integer","minimum":"1"}}})"),
            "minimum"));
  CHECK(has(refused("[]"), "expected a JSON object"));
}

TEST_CASE("enum values and defaults are kept in canonical form") {
  QueueDef q = launch::parse_queue(R"(
name: a
entity: e
template_variables:
  n: {type: integer, enum: [1.0, "2", 4e0], default: "4.0"}
  x: {type: number, default: "0.50"}
)");
  CHECK(q.template_variables.at("n").enum_values == std::vector<std::string>{"1", "2", "4"});
  CHECK(*q.template_variables.at("n").default_value == "4");
  CHECK(*q.template_variables.at("x").default_value == "0.5");
}

}  // TEST_SUITE

TEST_SUITE("queue") {

// yaml-cpp takes implicit keys of at most 1,024 characters; a JSON queue
// file is read as JSON first, so what `queue show --json` writes is taken
// back whatever its keys.
TEST_CASE("a JSON queue file with a key over 1,024 characters is read as JSON") {
  const std::string key(1500, 'K');
  const std::string text = R"({"entity":"e","name":"q","config":{"env":{")" + key + R"(":"1"}}})";
  QueueDef q = launch::parse_queue(text);
  CHECK(q.config == R"({"env":{")" + key + R"(":"1"}})");
  CHECK(launch::config_to_json(R"({"env":{")" + key + R"(":"1"}})") == q.config);
  // Not JSON after all (YAML's flow syntax): read as YAML.
  CHECK(launch::parse_queue("{entity: e, name: q}").name == "q");
}

TEST_CASE("a JSON queue file keeps its limits and its numbers exactly") {
  CHECK(has(invalid([] {
              launch::parse_queue(R"({"entity":"e","name":"q","config":{"env":{"b":9e308}}})");
            }),
            "the number 9e308 is too large to represent"));
  std::string deep = std::string(50000, '[') + std::string(50000, ']');
  CHECK(has(invalid([&] {
              launch::parse_queue(R"({"entity":"e","name":"q","config":{"env":)" + deep + "}}");
            }),
            "nests deeper than 64 levels"));
  QueueDef q = launch::parse_queue(
      R"({"entity":"e","name":"q","config":{"env":{"x":8.888888888888889e70}}})");
  CHECK(q.config == R"({"env":{"x":8.888888888888889e70}})");
  CHECK(launch::queue_from_json(launch::to_json(q)).config == q.config);
}

}  // TEST_SUITE
