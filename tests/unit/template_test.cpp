// Template values, typed substitution, deep merge and macros.
#include <doctest/doctest.h>

#include <cstdlib>
#include <map>
#include <string>

#include "launch/error.hpp"
#include "unit/expect_error.hpp"
#include "launch/queue.hpp"
#include "launch/template.hpp"

using launch::Errc;
using launch_test::has;
using launch_test::invalid;
using launch::QueueDef;
using launch::TemplateVariable;
using launch::VarType;
using Values = std::map<std::string, std::string>;

namespace {


TemplateVariable var(VarType type) {
  TemplateVariable v;
  v.type = type;
  return v;
}

// A queue with one variable of each type and the given config.
QueueDef queue(const std::string& config = "{}") {
  QueueDef q;
  q.entity = "ml-team";
  q.name = "gpu";
  // A resource with no runner in this process: the configs here are any
  // JSON, which a built-in runner's check_config would refuse.
  q.resource = "kubernetes";
  q.config = config;
  TemplateVariable gpus = var(VarType::integer);
  gpus.minimum = 1;
  gpus.maximum = 4;
  gpus.default_value = "1";
  TemplateVariable lr = var(VarType::number);
  lr.minimum = 0;
  lr.maximum = 0.5;
  lr.default_value = "0.01";
  TemplateVariable image = var(VarType::string);  // no default: required
  q.template_variables = {{"gpus", gpus}, {"lr", lr}, {"image", image}};
  q.validate();
  return q;
}

std::string fill(const std::string& config, const Values& values) {
  return launch::fill_template(queue(config), values);
}

bool no_env(const std::string&, std::string*) { return false; }

}  // namespace

TEST_SUITE("template") {

TEST_CASE("values that keep every rule pass") {
  launch::validate_template_values(queue(), {{"image", "a100"}});
  launch::validate_template_values(queue(), {{"image", ""}, {"gpus", "4"}, {"lr", "0.5"}});
  launch::validate_template_values(queue(), {{"image", "x"}, {"gpus", "1"}, {"lr", "0"}});
  launch::validate_template_values(queue(), {{"image", "x"}, {"gpus", "+2"}, {"lr", "5e-2"}});
  launch::validate_template_values(queue(), {{"image", "x"}, {"gpus", "3.0"}, {"lr", ".25"}});
}

TEST_CASE("integer rules: type, minimum, maximum") {
  std::string m = invalid([] {
    launch::validate_template_values(queue(), {{"image", "x"}, {"gpus", "8"}});
  });
  CHECK(m == "template variable \"gpus\": value 8 is above the maximum 4");

  m = invalid([] { launch::validate_template_values(queue(), {{"image", "x"}, {"gpus", "0"}}); });
  CHECK(m == "template variable \"gpus\": value 0 is below the minimum 1");

  m = invalid([] { launch::validate_template_values(queue(), {{"image", "x"}, {"gpus", "abc"}}); });
  CHECK(m == "template variable \"gpus\": value \"abc\" is not an integer");

  m = invalid([] { launch::validate_template_values(queue(), {{"image", "x"}, {"gpus", "2.5"}}); });
  CHECK(m == "template variable \"gpus\": value \"2.5\" is not an integer");

  for (const char* bad : {"", " 2", "2 ", "0x2", "2e", "--2", "inf", "nan", "1,5"}) {
    CAPTURE(bad);
    m = invalid([&] { launch::validate_template_values(queue(), {{"image", "x"}, {"gpus", bad}}); });
    CHECK(m == std::string("template variable \"gpus\": value \"") + bad +
                   "\" is not an integer");
  }

  m = invalid([] {
    launch::validate_template_values(queue(), {{"image", "x"}, {"gpus", "99999999999999999999"}});
  });
  CHECK(m == "template variable \"gpus\": value \"99999999999999999999\" is out of range for "
             "an integer");
}

TEST_CASE("number rules: type, minimum, maximum") {
  std::string m = invalid([] {
    launch::validate_template_values(queue(), {{"image", "x"}, {"lr", "0.75"}});
  });
  CHECK(m == "template variable \"lr\": value 0.75 is above the maximum 0.5");

  m = invalid([] { launch::validate_template_values(queue(), {{"image", "x"}, {"lr", "-1e-3"}}); });
  CHECK(m == "template variable \"lr\": value -1e-3 is below the minimum 0");

  m = invalid([] { launch::validate_template_values(queue(), {{"image", "x"}, {"lr", "fast"}}); });
  CHECK(m == "template variable \"lr\": value \"fast\" is not a number");

  m = invalid([] { launch::validate_template_values(queue(), {{"image", "x"}, {"lr", "1e999"}}); });
  CHECK(m == "template variable \"lr\": value \"1e999\" is out of range for a number");
}

TEST_CASE("enum, for each type") {
  QueueDef q;
  q.entity = "e";
  q.name = "q";
  TemplateVariable s = var(VarType::string);
  s.enum_values = {"s", "m", "l"};
  s.default_value = "m";
  TemplateVariable i = var(VarType::integer);
  i.enum_values = {"1", "2", "4"};
  i.default_value = "1";
  TemplateVariable n = var(VarType::number);
  n.enum_values = {"0.5", "1"};
  n.default_value = "1";
  q.template_variables = {{"size", s}, {"gpus", i}, {"frac", n}};
  q.validate();

  launch::validate_template_values(q, {{"size", "l"}, {"gpus", "4"}, {"frac", "0.5"}});
  // Numbers compare by value, not by text.
  launch::validate_template_values(q, {{"gpus", "4.0"}, {"frac", "0.50"}});
  launch::validate_template_values(q, {{"frac", "1.0"}});

  std::string m = invalid([&] { launch::validate_template_values(q, {{"size", "xl"}}); });
  CHECK(m == "template variable \"size\": value \"xl\" is not one of \"s\", \"m\", \"l\"");
  // Strings compare exactly.
  m = invalid([&] { launch::validate_template_values(q, {{"size", "S"}}); });
  CHECK(m == "template variable \"size\": value \"S\" is not one of \"s\", \"m\", \"l\"");

  m = invalid([&] { launch::validate_template_values(q, {{"gpus", "3"}}); });
  CHECK(m == "template variable \"gpus\": value 3 is not one of 1, 2, 4");

  m = invalid([&] { launch::validate_template_values(q, {{"frac", "0.25"}}); });
  CHECK(m == "template variable \"frac\": value 0.25 is not one of 0.5, 1");

  m = invalid([&] { launch::validate_template_values(q, {{"gpus", "two"}}); });
  CHECK(m == "template variable \"gpus\": value \"two\" is not an integer");
}

TEST_CASE("missing and extra variables") {
  std::string m = invalid([] { launch::validate_template_values(queue(), {}); });
  CHECK(m == "template variable \"image\" has no value and no default");

  m = invalid([] {
    launch::validate_template_values(queue(), {{"image", "x"}, {"gpu", "2"}});
  });
  CHECK(m.find("template variable \"gpu\"") != std::string::npos);
  CHECK(m.find("\"2\"") != std::string::npos);
  CHECK(m.find("ml-team/gpu") != std::string::npos);
  CHECK(m.find("declared: gpus, image, lr") != std::string::npos);

  QueueDef none;
  none.entity = "e";
  none.name = "q";
  m = invalid([&] { launch::validate_template_values(none, {{"x", "1"}}); });
  CHECK(m.find("template variable \"x\"") != std::string::npos);
  CHECK(m.find("declared: none") != std::string::npos);
  launch::validate_template_values(none, {});
}

TEST_CASE("defaults fill what the push leaves out") {
  CHECK(fill(R"({"n":"{{gpus}}","lr":"{{lr}}","i":"{{image}}"})", {{"image", "a100"}}) ==
        R"({"n":1,"lr":0.01,"i":"a100"})");
  CHECK(fill(R"({"n":"{{gpus}}"})", {{"image", "a"}, {"gpus", "3"}}) == R"({"n":3})");
}

TEST_CASE("a placeholder alone is typed; inside a string it is spliced as text") {
  // integer alone -> a JSON number
  CHECK(fill(R"({"n":"{{gpus}}"})", {{"image", "x"}, {"gpus", "2"}}) == R"({"n":2})");
  // integer given as "4.0" is the integer 4
  CHECK(fill(R"({"n":"{{gpus}}"})", {{"image", "x"}, {"gpus", "4.0"}}) == R"({"n":4})");
  // number alone -> a JSON number
  CHECK(fill(R"({"lr":"{{lr}}"})", {{"image", "x"}, {"lr", "0.25"}}) == R"({"lr":0.25})");
  CHECK(fill(R"({"lr":"{{lr}}"})", {{"image", "x"}, {"lr", "5e-1"}}) == R"({"lr":0.5})");
  // string alone -> a JSON string, even when it reads as a number
  CHECK(fill(R"({"i":"{{image}}"})", {{"image", "123"}}) == R"({"i":"123"})");
  // inside a longer string -> text
  CHECK(fill(R"({"n":"gpus={{gpus}}"})", {{"image", "x"}, {"gpus", "2"}}) ==
        R"({"n":"gpus=2"})");
  CHECK(fill(R"({"lr":"--lr {{lr}}"})", {{"image", "x"}, {"lr", "0.50"}}) ==
        R"({"lr":"--lr 0.5"})");
  CHECK(fill(R"({"a":"{{image}}:{{gpus}}"})", {{"image", "repo/img"}, {"gpus", "3"}}) ==
        R"({"a":"repo/img:3"})");
  // The DESIGN.md queue: env GPUS becomes the number 1 (runners turn scalar
  // env values into text).
  CHECK(fill(R"({"env":{"GPUS":"{{gpus}}"}})", {{"image", "x"}}) == R"({"env":{"GPUS":1}})");
}

TEST_CASE("whitespace inside the braces is accepted") {
  CHECK(fill(R"({"n":"{{ gpus }}","m":"{{\tlr}}","s":"x{{image  }}y"})",
             {{"image", "i"}, {"gpus", "2"}}) == R"({"n":2,"m":0.01,"s":"xiy"})");
  // Whitespace outside the braces makes it text.
  CHECK(fill(R"({"n":" {{gpus}}"})", {{"image", "i"}, {"gpus", "2"}}) == R"({"n":" 2"})");
}

TEST_CASE("placeholders anywhere in the tree; keys and other values untouched") {
  std::string config = R"({
    "spec": {"template": {"spec": {"containers": [
      {"name": "main", "image": "{{image}}",
       "resources": {"limits": {"nvidia.com/gpu": "{{gpus}}"}},
       "args": ["--lr", "{{lr}}", "--tag={{image}}"]}]}}},
    "{{gpus}}": "key", "flag": true, "none": null, "n": 3.5
  })";
  CHECK(fill(config, {{"image", "img:1"}, {"gpus", "2"}}) ==
        R"({"spec":{"template":{"spec":{"containers":[{"name":"main","image":"img:1",)"
        R"("resources":{"limits":{"nvidia.com/gpu":2}},"args":["--lr",0.01,"--tag=img:1"]}]}}},)"
        R"("{{gpus}}":"key","flag":true,"none":null,"n":3.5})");
}

TEST_CASE("a placeholder naming an undeclared variable is an error naming it") {
  std::string m = invalid([] {
    QueueDef q = queue();
    q.config = R"({"spec":{"args":["a","{{ gpu }}"]}})";  // not validated: a raw def
    launch::fill_template(q, {{"image", "x"}});
  });
  CHECK(m.find("{{gpu}}") != std::string::npos);
  CHECK(m.find("config.spec.args[1]") != std::string::npos);
  CHECK(m.find("ml-team/gpu") != std::string::npos);
}

TEST_CASE("text that is not a placeholder stays as it is") {
  CHECK(fill(R"({"a":"{{ .Values.x }}","b":"{{}}","c":"{gpus}","d":"{{gpus}","e":"{{{gpus}}}"})",
             {{"image", "x"}}) ==
        R"({"a":"{{ .Values.x }}","b":"{{}}","c":"{gpus}","d":"{{gpus}","e":"{1}"})");
}

TEST_CASE("fill_template validates the values first") {
  std::string m = invalid([] { fill(R"({"n":"{{gpus}}"})", {{"image", "x"}, {"gpus", "9"}}); });
  CHECK(m == "template variable \"gpus\": value 9 is above the maximum 4");
  m = invalid([] { fill(R"({"n":"{{gpus}}"})", {}); });
  CHECK(m == "template variable \"image\" has no value and no default");
}

TEST_CASE("deep merge: objects merge, arrays and scalars replace") {
  // objects merge key by key, recursively
  CHECK(launch::deep_merge(R"({"a":{"b":1,"c":{"d":2,"e":3}},"f":1})",
                           R"({"a":{"c":{"e":30,"g":4}},"h":5})") ==
        R"({"a":{"b":1,"c":{"d":2,"e":30,"g":4}},"f":1,"h":5})");
  // arrays replace, never concatenate
  CHECK(launch::deep_merge(R"({"args":[1,2,3]})", R"({"args":[9]})") == R"({"args":[9]})");
  CHECK(launch::deep_merge(R"({"c":[{"a":1}]})", R"({"c":[{"b":2}]})") == R"({"c":[{"b":2}]})");
  // scalars replace
  CHECK(launch::deep_merge(R"({"n":1,"s":"a"})", R"({"n":2.5,"s":"b"})") ==
        R"({"n":2.5,"s":"b"})");
  // type changes: the overlay wins whatever the types
  CHECK(launch::deep_merge(R"({"a":{"b":1}})", R"({"a":"x"})") == R"({"a":"x"})");
  CHECK(launch::deep_merge(R"({"a":"x"})", R"({"a":{"b":1}})") == R"({"a":{"b":1}})");
  CHECK(launch::deep_merge(R"({"a":[1]})", R"({"a":{"b":1}})") == R"({"a":{"b":1}})");
  CHECK(launch::deep_merge(R"({"a":{"b":1}})", R"({"a":[1]})") == R"({"a":[1]})");
  // null replaces too (it does not delete)
  CHECK(launch::deep_merge(R"({"a":1})", R"({"a":null})") == R"({"a":null})");
  // empty sides
  CHECK(launch::deep_merge(R"({"a":1})", "{}") == R"({"a":1})");
  CHECK(launch::deep_merge("{}", R"({"a":1})") == R"({"a":1})");
  CHECK(launch::deep_merge("", "") == "{}");
  // a non-object overlay replaces the whole
  CHECK(launch::deep_merge(R"({"a":1})", "[1]") == "[1]");
}

TEST_CASE("deep merge names the side with bad JSON") {
  std::string m = invalid([] { launch::deep_merge("{", "{}"); });
  CHECK(m.find("base") != std::string::npos);
  m = invalid([] { launch::deep_merge("{}", R"({"a":)"); });
  CHECK(m.find("overlay") != std::string::npos);
}

TEST_CASE("macros come from the map, then the environment; unknown stay") {
  Values macros{{"run_id", "abc123"}, {"image_uri", "reg/img:1"}, {"author", "alice"}};
  auto env = [](const std::string& name, std::string* value) {
    if (name == "HOME_DIR") {
      *value = "/home/x";
      return true;
    }
    if (name == "run_id") {  // the map wins over the environment
      *value = "from-env";
      return true;
    }
    return false;
  };
  CHECK(launch::expand_macros(
            R"({"name":"run-${run_id}","img":"${image_uri}","l":["${author}",1,true],)"
            R"("h":"${HOME_DIR}/data","u":"${UNKNOWN_VAR}","k":{"${run_id}":"x"}})",
            macros, env) ==
        R"({"name":"run-abc123","img":"reg/img:1","l":["alice",1,true],)"
        R"("h":"/home/x/data","u":"${UNKNOWN_VAR}","k":{"${run_id}":"x"}})");
}

TEST_CASE("macro syntax: only ${NAME} expands, once") {
  Values macros{{"a", "A"}, {"loop", "${a}"}};
  CHECK(launch::expand_macros(
            R"({"x":"$a ${a} ${ a} ${a ${} ${1a} ${a}${a} $${a} ${loop} ${","y":"${a"})",
            macros, no_env) ==
        R"({"x":"$a A ${ a} ${a ${} ${1a} AA $A ${a} ${","y":"${a"})");
  // No EnvLookup at all: macros only.
  CHECK(launch::expand_macros(R"({"x":"${a}${B}"})", macros, nullptr) == R"({"x":"A${B}"})");
}

TEST_CASE("process_env reads the process environment") {
  setenv("LAUNCH_TEMPLATE_TEST_VAR", "v1", 1);
  std::string v;
  CHECK(launch::process_env("LAUNCH_TEMPLATE_TEST_VAR", &v));
  CHECK(v == "v1");
  CHECK(launch::expand_macros(R"({"x":"${LAUNCH_TEMPLATE_TEST_VAR}"})", {},
                              launch::process_env) == R"({"x":"v1"})");
  unsetenv("LAUNCH_TEMPLATE_TEST_VAR");
  CHECK_FALSE(launch::process_env("LAUNCH_TEMPLATE_TEST_VAR", &v));
  CHECK(launch::expand_macros(R"({"x":"${LAUNCH_TEMPLATE_TEST_VAR}"})", {},
                              launch::process_env) == R"({"x":"${LAUNCH_TEMPLATE_TEST_VAR}"})");
}

TEST_CASE("the DESIGN.md queue resolves end to end") {
  QueueDef q = launch::parse_queue(R"(name: gpu
entity: ml-team
resource: local-process
prioritization: true
config: {env: {GPUS: "{{gpus}}"}}
template_variables:
  gpus: {type: integer, minimum: 1, maximum: 4, default: 1}
)");
  std::string config = launch::fill_template(q, {{"gpus", "2"}});
  config = launch::deep_merge(config, R"({"env":{"RUN":"${run_id}"},"timeout_seconds":60})");
  config = launch::expand_macros(config, {{"run_id", "r1"}}, no_env);
  CHECK(config == R"({"env":{"GPUS":2,"RUN":"r1"},"timeout_seconds":60})");
}

}  // TEST_SUITE
