// Internal: template values and `{{var}}` placeholders, shared by the queue
// model (queue.cpp checks schemas and defaults) and the template engine
// (template.cpp checks pushed values and fills configs); and the engine's
// steps on a parsed document, which the text functions of template.hpp and
// the agent's one-pass resolution (resolve.hpp) are both made of.
#ifndef LAUNCH_SRC_CORE_TEMPLATE_VALUE_HPP
#define LAUNCH_SRC_CORE_TEMPLATE_VALUE_HPP

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "util/json.hpp"
#include "launch/queue.hpp"
#include "launch/template.hpp"

namespace launch {
namespace tmpl {

// A value parsed per its variable's type. `text` is its canonical text:
// "4" for an integer given as "4.0", "0.5" for a number given as "0.50",
// the string itself for a string.
struct TypedValue {
  VarType type = VarType::string;
  std::int64_t integer = 0;  // type == integer
  double number = 0;         // type == number (and integer, as a double)
  std::string text;
};

// Parses `text` as `type` without checking any rule. False when it does not
// read as that type; `*why` then says how ("is not an integer").
bool parse_typed(VarType type, const std::string& text, TypedValue* out, std::string* why);

// Parses `text` and checks it against every rule of `var` (type, minimum,
// maximum, enum). `what` is how the message calls it: "value", "default",
// "enum value". Throws Errc::invalid naming the variable, the value and the
// rule: `template variable "gpus": value 8 is above the maximum 4`.
TypedValue check_value(const std::string& name, const TemplateVariable& var,
                       const std::string& text, const char* what);

// The JSON form of a typed value: a number for integer and number variables
// (an integral number is written as an integer), a string otherwise.
json::Value to_json_value(const TypedValue& v, json::Allocator& a);

// Template variable names: a letter or `_`, then up to 63 of
// [A-Za-z0-9_.-]. Throws Errc::invalid naming the variable otherwise.
void check_variable_name(const std::string& name);

// One `{{ name }}` in a string: [begin, end) covers the braces. Only a valid
// variable name between the braces (spaces and tabs around it allowed) makes
// a placeholder; any other `{{...}}` text (a Go template, say) is left alone.
struct Placeholder {
  std::size_t begin = 0;
  std::size_t end = 0;
  std::string name;
};
std::vector<Placeholder> find_placeholders(const std::string& s);

// How a number reads in a message: "4" rather than "4.0", shortest form.
std::string number_text(double d);

// Step 1 (template.hpp): checks `values` as validate_template_values() does,
// then parses the queue's config and fills its placeholders, as
// fill_template() describes. Errors name the queue and the path
// (`config.spec.args[1]`).
json::Document filled_config(const QueueDef& queue,
                             const std::map<std::string, std::string>& values);

// Step 2: deep merge of `overlay` over `base`, in place; whatever is copied
// from `overlay` is allocated from `a` (base's allocator).
void merge(json::Value& base, const json::Value& overlay, json::Allocator& a);

// Step 3: expands `${name}` macros in every string value of `v`, in place
// (expand_macros() describes how).
void expand(json::Value& v, const std::map<std::string, std::string>& macros,
            const EnvLookup& env, json::Allocator& a);

// Removes from `v`, recursively, every string holding a `{{var}}`
// placeholder (an object's member, an array's element), so a runner can
// check the shape of what is left before the values are known.
void drop_placeholders(json::Value& v);

// Parses JSON text where empty text means `{}` (an empty resource_args, say).
json::Document parse_any(const std::string& text, const std::string& what);

}  // namespace tmpl
}  // namespace launch

#endif
