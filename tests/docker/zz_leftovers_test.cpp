// Runs last (files run in name order). What the runner and builder are
// responsible for is checked as it is: no container of the suite's queue or
// run is left, no volume appeared. Then what the tests themselves made on
// purpose (built images, pushed repositories) is removed, and checked gone:
// a registry that cannot be reached fails here rather than reading as empty.
#include <doctest/doctest.h>

#include <algorithm>

#include "docker/engine.hpp"
#include "helpers.hpp"
#include "runner/local_container.hpp"

TEST_CASE("the suite leaves no container or volume behind, and its images are removed") {
  launch::docker::Engine engine;
  CHECK(engine.list_containers({{launch::kLabelQueue, dtest::test_queue().ref().str()}}).empty());
  CHECK(engine.list_containers({{"launch.test-" + dtest::run_token(), ""}}).empty());

  dtest::remove_tracked_images();
  for (const auto& image : dtest::tracked_images()) {
    CHECK_MESSAGE(!engine.inspect_image(image).has_value(), image);
  }
  auto r = engine.call("GET", "/images/json?filters=" +
                                  launch::docker::url_encode(
                                      R"({"reference": ["*)" + dtest::run_token() + R"(*", "*/*)" +
                                      dtest::run_token() + R"(*"]})"));
  CHECK(r.status == 200);
  CHECK(r.body == "[]\n");

  const auto& before = dtest::volumes_at_start();
  for (const auto& v : dtest::volume_names()) {
    CHECK_MESSAGE(std::find(before.begin(), before.end(), v) != before.end(),
                  "volume " << v << " appeared during the suite");
  }
  CHECK(dtest::delete_registry_repository(dtest::test_destination()) == 0);
}
