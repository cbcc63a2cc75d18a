// `launch push -c`: W&B's launch config (what `wandb launch -c` takes), read
// into a JobSpec. Only keys that mean something here are taken; any other is
// refused by name, so nothing in a user's file is silently dropped.
#include <filesystem>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "cli.hpp"

namespace cli {

using launch::Errc;
using launch::Error;

namespace {

using Value = rapidjson::Value;

const char* const kTopKeys = "overrides, resource_args, docker, image_uri, git, uri, name, "
                             "project, entity, author, run_id, resource, template_variables";

std::string dump(const Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

std::string type_of(const Value& v) {
  if (v.IsObject()) return "a mapping";
  if (v.IsArray()) return "a list";
  if (v.IsString()) return "a string";
  if (v.IsNumber()) return "a number";
  if (v.IsBool()) return "a boolean";
  return "null";
}

[[noreturn]] void bad(const std::string& path, const std::string& expected, const Value& v) {
  throw Error(Errc::invalid, "-c: " + path + " must be " + expected + ", got " + type_of(v) +
                                 " " + dump(v));
}

std::string string_at(const Value& v, const std::string& path) {
  if (!v.IsString()) bad(path, "a string", v);
  return std::string(v.GetString(), v.GetStringLength());
}

std::vector<std::string> strings_at(const Value& v, const std::string& path) {
  if (!v.IsArray()) bad(path, "a list of strings", v);
  std::vector<std::string> out;
  for (const auto& e : v.GetArray()) out.push_back(string_at(e, path + "[]"));
  return out;
}

const Value& object_at(const Value& v, const std::string& path) {
  if (!v.IsObject()) bad(path, "a mapping", v);
  return v;
}

[[noreturn]] void unsupported(const std::string& path, const std::string& why) {
  throw Error(Errc::invalid, "-c: " + path + " is not supported by launch (" + why + ")");
}

std::string key_of(const Value::ConstMemberIterator& m) {
  return std::string(m->name.GetString(), m->name.GetStringLength());
}

void read_overrides(const Value& overrides, launch::JobSpec& spec) {
  for (auto m = overrides.MemberBegin(); m != overrides.MemberEnd(); ++m) {
    std::string key = key_of(m);
    std::string path = "overrides." + key;
    const Value& v = m->value;
    if (key == "args") {
      spec.args = strings_at(v, path);
    } else if (key == "entry_point") {
      if (v.IsString()) {
        // W&B splits nothing either: its entry point is a list.
        parse_entry_point(string_at(v, path));
        spec.entry_point = {string_at(v, path)};
      } else {
        spec.entry_point = strings_at(v, path);
        if (spec.entry_point.empty()) bad(path, "a non-empty list of strings", v);
      }
    } else if (key == "run_config") {
      spec.run_config = dump(object_at(v, path));
    } else if (key == "dockerfile") {
      spec.dockerfile = string_at(v, path);
    } else if (key == "artifacts" || key == "files") {
      unsupported(path, "a run's config comes in overrides.run_config; there are no W&B "
                        "artifacts here");
    } else if (key == "working_dir") {
      unsupported(path, "give the local-process option working_dir, or the local-container "
                        "option workdir, in resource_args");
    } else {
      throw Error(Errc::invalid, "-c: unknown key \"" + path +
                                     "\" (overrides takes args, entry_point, run_config, "
                                     "dockerfile)");
    }
  }
}

bool looks_like_git_url(const std::string& uri) {
  for (const char* prefix : {"https://", "http://", "ssh://", "git://", "git@", "file://"}) {
    if (uri.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

}  // namespace

LaunchConfig read_launch_config(const std::string& value) {
  // A path (W&B's "must end in .json") is told from inline JSON by its
  // first character: a mapping starts with `{`.
  std::string text;
  if (is_regular_file(value)) {
    text = read_file(value);
  } else if (!value.empty() && value[0] != '@' &&
             value.find_first_not_of(" \t\n") != std::string::npos &&
             value[value.find_first_not_of(" \t\n")] != '{') {
    throw Error(Errc::io, "-c \"" + value + "\": no such file (give a file, @file, or the "
                          "launch config as JSON)");
  } else {
    text = text_or_file(value);
  }
  // JSON as W&B takes it, or YAML (a superset), as -R takes it.
  std::string json = launch::config_to_json(text, "-c");
  rapidjson::Document d;
  d.Parse<rapidjson::kParseFullPrecisionFlag>(json.c_str(), json.size());
  LaunchConfig out;
  launch::JobSpec& spec = out.spec;
  int sources = 0;
  for (auto m = d.MemberBegin(); m != d.MemberEnd(); ++m) {
    std::string key = key_of(m);
    const Value& v = m->value;
    if (v.IsNull()) continue;  // W&B writes absent keys as null
    if (key == "overrides") {
      read_overrides(object_at(v, key), spec);
    } else if (key == "resource_args") {
      spec.resource_args = dump(object_at(v, key));
    } else if (key == "docker") {
      for (auto dm = object_at(v, key).MemberBegin(); dm != v.MemberEnd(); ++dm) {
        std::string dkey = key_of(dm);
        if (dkey == "docker_image") {
          if (dm->value.IsNull()) continue;
          spec.source.kind = launch::JobSource::Kind::image;
          spec.source.image = string_at(dm->value, "docker.docker_image");
          ++sources;
        } else {
          unsupported("docker." + dkey, "only docker.docker_image is read");
        }
      }
    } else if (key == "image_uri") {
      spec.source.kind = launch::JobSource::Kind::image;
      spec.source.image = string_at(v, key);
      ++sources;
    } else if (key == "git") {
      for (auto gm = object_at(v, key).MemberBegin(); gm != v.MemberEnd(); ++gm) {
        std::string gkey = key_of(gm);
        if (gm->value.IsNull()) continue;
        if (gkey == "repo") {
          spec.source.kind = launch::JobSource::Kind::git;
          spec.source.git_url = string_at(gm->value, "git.repo");
          ++sources;
        } else if (gkey == "version") {
          spec.source.git_ref = string_at(gm->value, "git.version");
        } else {
          throw Error(Errc::invalid,
                      "-c: unknown key \"git." + gkey + "\" (git takes repo, version)");
        }
      }
    } else if (key == "uri") {
      std::string uri = string_at(v, key);
      if (looks_like_git_url(uri)) {
        spec.source.kind = launch::JobSource::Kind::git;
        spec.source.git_url = uri;
      } else {
        std::error_code ec;
        auto dir = std::filesystem::absolute(uri, ec).lexically_normal();
        if (ec || !std::filesystem::is_directory(dir, ec)) {
          throw Error(Errc::invalid, "-c: uri \"" + uri +
                                         "\" is neither a git URL nor a local directory");
        }
        std::string path = dir.string();
        if (path.size() > 1 && path.back() == '/') path.pop_back();
        spec.source.kind = launch::JobSource::Kind::code;
        spec.source.code_dir = path;
      }
      ++sources;
    } else if (key == "name") {
      spec.name = string_at(v, key);
    } else if (key == "project") {
      spec.project = string_at(v, key);
    } else if (key == "entity") {
      out.entity = string_at(v, key);
    } else if (key == "author") {
      spec.author = string_at(v, key);
    } else if (key == "run_id") {
      spec.run_id = string_at(v, key);
    } else if (key == "resource") {
      out.resource = string_at(v, key);
    } else if (key == "template_variables") {
      for (auto tm = object_at(v, key).MemberBegin(); tm != v.MemberEnd(); ++tm) {
        const Value& tv = tm->value;
        std::string path = "template_variables." + key_of(tm);
        if (tv.IsString()) {
          spec.template_values[key_of(tm)] = string_at(tv, path);
        } else if (tv.IsNumber() || tv.IsBool()) {
          spec.template_values[key_of(tm)] = dump(tv);
        } else {
          bad(path, "a string or a number", tv);
        }
      }
    } else if (key == "job") {
      unsupported(key, "there are no W&B job artifacts here; give the job's image with "
                       "docker.docker_image, or its code with uri or git");
    } else if (key == "sweep_id") {
      unsupported(key, "there are no sweeps here");
    } else if (key == "registry" || key == "builder") {
      unsupported(key, "the agent's launch-config.yaml sets it");
    } else {
      throw Error(Errc::invalid,
                  "-c: unknown key \"" + key + "\" in the launch config (W&B's `wandb launch "
                  "-c` shape takes " + kTopKeys + "; a run config goes under "
                  "overrides.run_config)");
    }
  }
  if (sources > 1) {
    throw Error(Errc::invalid, "-c: give at most one source: docker.docker_image (or "
                               "image_uri), git.repo or uri");
  }
  if (!spec.source.git_ref.empty() && spec.source.kind != launch::JobSource::Kind::git) {
    throw Error(Errc::invalid, "-c: git.version \"" + spec.source.git_ref +
                                   "\" needs git.repo or a git uri");
  }
  return out;
}

}  // namespace cli
