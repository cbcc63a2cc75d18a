// The context every command shares (store, entity) and small helpers.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include "cli.hpp"

namespace cli {

using launch::Errc;
using launch::Error;

namespace {

// "python train.py" as the JSON array it was likely meant as, for a hint.
std::string argv_json(const std::string& text) {
  std::string out = "[";
  std::size_t i = 0;
  while ((i = text.find_first_not_of(" \t\n", i)) != std::string::npos) {
    std::size_t end = text.find_first_of(" \t\n", i);
    if (out.size() > 1) out += ", ";
    out += json_string(text.substr(i, end == std::string::npos ? std::string::npos : end - i));
    i = end;
  }
  return out + "]";
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

}  // namespace

launch::Transport& Context::transport() {
  if (!transport_) {
    std::string uri = uri_flag.empty() ? launch::default_transport_uri() : uri_flag;
    // Each command is a process of its own: a store in its memory would be
    // gone before the next command could read it.
    if (uri.rfind("memory:", 0) == 0) {
      throw Error(Errc::invalid,
                  std::string(uri_flag.empty() ? "LAUNCH_QUEUE_URI" : "--uri") + " \"" + uri +
                      "\": a memory:// store ends with the command, so nothing would "
                      "outlive it; use sqlite:///PATH/launch.db or postgres://... (unset: "
                      "sqlite://$LAUNCH_HOME/launch.db)");
    }
    transport_ = launch::open_transport(uri);
  }
  return *transport_;
}

std::string Context::entity() {
  if (entity_) return *entity_;
  std::string e = entity_flag;
  if (e.empty()) e = env("LAUNCH_ENTITY");
  if (e.empty()) {
    // The agent's config file: its default path, or LAUNCH_CONFIG_FILE (the
    // CLI's -c is push's launch config, so the file cannot come from a flag).
    std::string path = env("LAUNCH_CONFIG_FILE");
    if (path.empty()) path = launch::AgentConfig::default_path();
    if (is_regular_file(path)) e = launch::AgentConfig::from_file(path).entity;
  }
  if (e.empty()) e = os_user_name();
  launch::validate_name("entity", e);
  entity_ = e;
  return e;
}

launch::QueueRef Context::queue_ref(const std::string& text) {
  // Only look the default entity up when the name lacks one, so that a
  // full "entity/name" never depends on the config file.
  if (text.find('/') != std::string::npos) return launch::QueueRef::parse(text);
  return launch::QueueRef::parse(text, entity());
}

std::string os_user_name() {
  std::string user = launch::os_user_name();
  if (user.empty()) {
    throw Error(Errc::not_found,
                "cannot tell the user name: give -e ENTITY or set LAUNCH_ENTITY");
  }
  return user;
}

bool is_regular_file(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string read_file(const std::string& path) {
  if (path == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin),
                       std::istreambuf_iterator<char>());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(Errc::io, "cannot read \"" + path + "\"");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(Errc::io, "cannot read \"" + path + "\"");
  return ss.str();
}

std::string text_or_file(const std::string& value) {
  if (!value.empty() && value[0] == '@') return read_file(value.substr(1));
  return value;
}

std::pair<std::string, std::string> split_assignment(const std::string& text,
                                                     const std::string& flag) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw Error(Errc::invalid,
                flag + " \"" + text + "\": expected KEY=VALUE");
  }
  return {text.substr(0, eq), text.substr(eq + 1)};
}

std::vector<std::string> parse_entry_point(const std::string& text) {
  if (text.empty()) throw Error(Errc::invalid, "-E: the entry point is empty");
  if (text[0] != '[') {
    if (text.find_first_of(" \t\n") != std::string::npos) {
      throw Error(Errc::invalid,
                  "-E \"" + text + "\": an entry point is argv, never a shell string; give "
                  "it as a JSON array, -E '" + argv_json(text) + "' (or the program alone "
                  "with -E and its arguments after --)");
    }
    return {text};
  }
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(text.c_str(), text.size());
  if (doc.HasParseError()) {
    throw Error(Errc::invalid,
                "-E \"" + text + "\": invalid JSON at offset " +
                    std::to_string(doc.GetErrorOffset()) + ": " +
                    rapidjson::GetParseError_En(doc.GetParseError()));
  }
  std::vector<std::string> argv;
  for (const auto& v : doc.GetArray()) {
    if (!v.IsString()) {
      throw Error(Errc::invalid,
                  "-E \"" + text + "\": expected a JSON array of strings");
    }
    argv.emplace_back(v.GetString(), v.GetStringLength());
  }
  if (argv.empty()) throw Error(Errc::invalid, "-E: the entry point is empty");
  return argv;
}

}  // namespace cli
