// The registries of transports (by URI scheme), runners (by resource name)
// and builders (by type), with the built-ins of this build
// (src/builtins/builtins.cpp) installed on first use.
#include <map>
#include <mutex>

#include <fmt/format.h>

#include "core/builtins.hpp"
#include "launch/builder.hpp"
#include "launch/error.hpp"
#include "launch/runner.hpp"
#include "launch/transport.hpp"

namespace launch {
namespace {

struct Registries {
  std::mutex mu;
  std::map<std::string, TransportFactory> transports;
  std::map<std::string, RunnerFactory> runners;
  std::map<std::string, BuilderFactory> builders;
};

Registries& registries() {
  static Registries* r = [] {
    auto* regs = new Registries;  // never destroyed: used until exit
    install_builtin_backends({regs->transports, regs->runners, regs->builders});
    return regs;
  }();
  return *r;
}

template <typename Map>
typename Map::mapped_type find(Map& m, std::mutex& mu, const std::string& key) {
  std::lock_guard<std::mutex> lock(mu);
  auto it = m.find(key);
  if (it == m.end()) return nullptr;
  return it->second;
}

template <typename Map>
std::vector<std::string> keys(Map& m, std::mutex& mu) {
  std::lock_guard<std::mutex> lock(mu);
  std::vector<std::string> out;
  for (const auto& kv : m) out.push_back(kv.first);
  return out;
}

}  // namespace

void register_transport(const std::string& scheme, TransportFactory factory) {
  auto& r = registries();
  std::lock_guard<std::mutex> lock(r.mu);
  r.transports[scheme] = std::move(factory);
}

std::shared_ptr<Transport> open_transport(const std::string& uri) {
  auto pos = uri.find("://");
  if (pos == std::string::npos || pos == 0) {
    throw Error(Errc::invalid,
                fmt::format("transport URI \"{}\": expected SCHEME://..., e.g. "
                            "sqlite:///path/launch.db",
                            uri));
  }
  std::string scheme = uri.substr(0, pos);
  if (scheme == "postgresql") scheme = "postgres";
  auto& r = registries();
  auto factory = find(r.transports, r.mu, scheme);
  if (!factory) {
    throw Error(Errc::not_found,
                fmt::format("transport URI \"{}\": no transport for scheme \"{}\"", uri, scheme));
  }
  return factory(uri);
}

void register_runner(const std::string& name, RunnerFactory factory) {
  auto& r = registries();
  std::lock_guard<std::mutex> lock(r.mu);
  r.runners[name] = std::move(factory);
}

bool unregister_runner(const std::string& name) {
  auto& r = registries();
  std::lock_guard<std::mutex> lock(r.mu);
  return r.runners.erase(name) > 0;
}

std::unique_ptr<Runner> make_runner(const std::string& name, const RunnerContext& context) {
  auto& r = registries();
  auto factory = find(r.runners, r.mu, name);
  if (!factory) {
    throw Error(Errc::not_found, fmt::format("resource \"{}\": no runner is registered for it",
                                             name));
  }
  return factory(context);
}

std::vector<std::string> runner_names() {
  auto& r = registries();
  return keys(r.runners, r.mu);
}

std::vector<std::string> builder_names() {
  auto& r = registries();
  return keys(r.builders, r.mu);
}

void register_builder(const std::string& type, BuilderFactory factory) {
  auto& r = registries();
  std::lock_guard<std::mutex> lock(r.mu);
  r.builders[type] = std::move(factory);
}

std::unique_ptr<Builder> make_builder(const BuilderConfig& config) {
  auto& r = registries();
  auto factory = find(r.builders, r.mu, config.type);
  if (!factory) {
    // Which there are depends on the build (LAUNCH_WITH_DOCKER) and on
    // register_builder(), so the message lists them.
    std::string known;
    for (const auto& name : builder_names()) known += (known.empty() ? "" : ", ") + name;
    throw Error(Errc::not_found,
                fmt::format("builder.type \"{}\": no such builder in this build ({})",
                            config.type, known.empty() ? "it has none" : known));
  }
  return factory(config);
}

}  // namespace launch
