// Shared by the docker suite: the real engine, a busybox image built FROM
// scratch for this run, and a record of everything the suite creates so
// the last test can check none of it is left.
#ifndef LAUNCH_TESTS_DOCKER_HELPERS_HPP
#define LAUNCH_TESTS_DOCKER_HELPERS_HPP

#include <chrono>
#include <string>
#include <vector>

#include "docker/engine.hpp"
#include "launch/runner.hpp"

namespace dtest {

// A token unique to this run of the suite (lowercase, for image names).
const std::string& run_token();
// The queue every container of this suite is labelled with.
launch::QueueDef test_queue();
// "launch-test-busybox:<token>", built once per run FROM scratch with
// busybox (sh and coreutils through busybox --install -s).
const std::string& busybox_image();
// $LAUNCH_TEST_REGISTRY (FAILs the test when unset).
std::string test_registry();
// The repository the builder pushes to: <registry>/launch-test-<token>.
std::string test_destination();
// Remembers an image to remove at the end (and to check it is gone).
void track_image(const std::string& reference);
const std::vector<std::string>& tracked_images();
void remove_tracked_images();

// The engine's volume names (to tell the suite's leftovers from others').
std::vector<std::string> volume_names();
// The volumes that existed when the suite first used the engine.
const std::vector<std::string>& volumes_at_start();
// Deletes every manifest of `repository` (a registry/repo) from the test
// registry; returns how many tags it still lists afterwards.
int delete_registry_repository(const std::string& repository);

// A fresh temp dir, removed with the process's helpers at exit.
std::string make_temp_dir(const std::string& prefix);
void write_file(const std::string& path, const std::string& content, bool executable = false);
std::string read_file(const std::string& path);
// Runs argv (no shell); FAILs unless it exits 0.
void run_ok(const std::vector<std::string>& argv);

// A local git server for git-source jobs: a bare repository (`bare`, the
// job's git_url) and a work tree (`work`) that pushes to it, both in a
// fresh temp dir.
struct GitRepo {
  explicit GitRepo(const std::string& prefix);
  // git -C work with a committer identity; FAILs unless it exits 0.
  void git(std::vector<std::string> args) const;
  std::string bare, work;
};

// A job for the local-container runner, with a log dir of its own.
launch::ResolvedJob make_job(const std::string& image, std::vector<std::string> argv,
                             const std::string& config = "{}");

// Polls until the run ends (gives up after `limit`, failing the test).
launch::RunStatus wait_end(launch::Run& run,
                           std::chrono::seconds limit = std::chrono::seconds(120));

}  // namespace dtest

#endif
