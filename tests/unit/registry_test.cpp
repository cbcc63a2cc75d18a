// The registries: transports by scheme, runners by resource name.
#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <string>

#include "builder/context_store.hpp"
#include "launch/builder.hpp"
#include "launch/features.h"
#include "launch/runner.hpp"
#include "launch/transport.hpp"
#include "unit/expect_error.hpp"

using launch::Errc;
using launch_test::error_message;
using launch_test::has;

namespace {

struct NullRunner : launch::Runner {
  std::unique_ptr<launch::Run> submit(const launch::ResolvedJob&) override { return nullptr; }
};

bool listed(const std::string& name) {
  auto names = launch::runner_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

TEST_CASE("registry: a runner is made by name until it is unregistered") {
  launch::register_runner("unit-null", [](const launch::RunnerContext&) {
    return std::make_unique<NullRunner>();
  });
  CHECK(listed("unit-null"));
  CHECK(launch::make_runner("unit-null", {}) != nullptr);
  CHECK(launch::unregister_runner("unit-null"));
  CHECK_FALSE(listed("unit-null"));
  CHECK_FALSE(launch::unregister_runner("unit-null"));
  std::string m = error_message([] { launch::make_runner("unit-null", {}); }, Errc::not_found);
  CHECK(has(m, "\"unit-null\""));
  CHECK(listed("local-process"));
}

TEST_CASE("registry: transports by scheme, and URIs that name none") {
  CHECK(launch::open_transport("memory://")->uri() == "memory://");
  std::string m = error_message([] { launch::open_transport("nosuch://x"); }, Errc::not_found);
  CHECK(has(m, "\"nosuch\""));
  m = error_message([] { launch::open_transport("/var/lib/launch.db"); }, Errc::invalid);
  CHECK(has(m, "/var/lib/launch.db"));
  launch::register_transport("unit", [](const std::string&) {
    return launch::open_transport("memory://unit-shared");
  });
  auto a = launch::open_transport("unit://anything");
  auto b = launch::open_transport("memory://unit-shared");
  CHECK(a.get() == b.get());  // memory://NAME is one store per process
}

// The built-ins are those of this build (LAUNCH_WITH_* at configure time):
// a backend left out is absent, and naming it is not_found, naming it.
TEST_CASE("registry: the built-in backends are those compiled in") {
  CHECK(listed("local-process"));
#if LAUNCH_FEATURE_DOCKER
  CHECK(listed("local-container"));
  launch::BuilderConfig docker;
  docker.type = "docker";
  CHECK(launch::make_builder(docker) != nullptr);
  launch::BuilderConfig noop;
  CHECK(launch::make_builder(noop) != nullptr);
#else
  CHECK_FALSE(listed("local-container"));
  std::string m = error_message([] { launch::make_runner("local-container", {}); },
                                Errc::not_found);
  CHECK(has(m, "\"local-container\""));
  launch::BuilderConfig noop;  // the default type, which needs docker too
  m = error_message([&] { launch::make_builder(noop); }, Errc::not_found);
  CHECK(has(m, "builder.type \"noop\""));
#endif
#if !LAUNCH_FEATURE_POSTGRES
  std::string pg = error_message(
      [] { launch::open_transport("postgres://launch@127.0.0.1:1/launch"); }, Errc::not_found);
  CHECK(has(pg, "\"postgres\""));
  pg = error_message([] { launch::open_transport("postgresql://127.0.0.1:1/launch"); },
                     Errc::not_found);
  CHECK(has(pg, "\"postgres\""));
#endif
}

TEST_CASE("registry: build context stores by scheme, and URLs that name none") {
  struct Store : launch::source::ContextStore {
    std::string url;
    std::string put(const std::string& name, const std::string&) override { return url + "/" + name; }
    void remove(const std::string&) override {}
  };
  auto message = error_message([] { launch::source::open_context_store("nosuch://bucket/ctx"); },
                               Errc::invalid);
  CHECK(has(message, "builder.build-context-store \"nosuch://bucket/ctx\""));
  launch::source::register_context_store("unit-test", [](const std::string& url) {
    auto store = std::make_unique<Store>();
    store->url = url;
    return store;
  });
  auto store = launch::source::open_context_store("unit-test://bucket/prefix");
  CHECK(store->put("abc.tar.gz", "") == "unit-test://bucket/prefix/abc.tar.gz");
  auto schemes = launch::source::context_store_schemes();
  CHECK(std::find(schemes.begin(), schemes.end(), "unit-test") != schemes.end());
}
