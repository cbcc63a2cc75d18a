#include "builder/context_store.hpp"

#include <map>
#include <mutex>

#include "launch/error.hpp"

namespace launch {
namespace source {

ContextStore::~ContextStore() = default;

namespace {

struct Stores {
  std::mutex mu;
  std::map<std::string, ContextStoreFactory> factories;
};

Stores& stores() {
  static Stores s;
  return s;
}

}  // namespace

void register_context_store(const std::string& scheme, ContextStoreFactory factory) {
  Stores& s = stores();
  std::lock_guard<std::mutex> lock(s.mu);
  s.factories[scheme] = std::move(factory);
}

std::unique_ptr<ContextStore> open_context_store(const std::string& url) {
  auto colon = url.find("://");
  std::string scheme = colon == std::string::npos ? std::string() : url.substr(0, colon);
  ContextStoreFactory factory;
  {
    Stores& s = stores();
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.factories.find(scheme);
    if (it != s.factories.end()) factory = it->second;
  }
  if (!factory) {
    std::string known;
    for (const auto& name : context_store_schemes()) known += (known.empty() ? "" : ", ") + name + "://";
    throw Error(Errc::invalid, "builder.build-context-store \"" + url +
                                   "\": no build context store takes this URL (known: " +
                                   (known.empty() ? "none" : known) + ")");
  }
  return factory(url);
}

std::vector<std::string> context_store_schemes() {
  Stores& s = stores();
  std::lock_guard<std::mutex> lock(s.mu);
  std::vector<std::string> names;
  for (const auto& entry : s.factories) names.push_back(entry.first);
  return names;
}

}  // namespace source
}  // namespace launch
