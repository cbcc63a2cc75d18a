// The registries: transports by scheme, runners by resource name.
#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <string>

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
