// The noop and docker builders against the real dockerd and the registry
// at $LAUNCH_TEST_REGISTRY.
#include <doctest/doctest.h>

#include <string>

#include "builder/docker.hpp"
#include "docker/engine.hpp"
#include "docker/registry.hpp"
#include "helpers.hpp"
#include "launch/builder.hpp"
#include "launch/error.hpp"
#include "launch/runner.hpp"

using launch::Errc;
using launch::Error;
using launch::RunPhase;
namespace docker = launch::docker;

namespace {

launch::BuildRequest code_request(const std::string& dir) {
  auto job = dtest::make_job("", {});
  launch::BuildRequest req;
  req.item = job.item;
  req.item.spec.source = launch::JobSource{};
  req.item.spec.source.kind = launch::JobSource::Kind::code;
  req.item.spec.source.code_dir = dir;
  req.queue = job.queue;
  req.resource = "local-container";
  req.log_path = job.log_dir + "/build.log";
  return req;
}

launch::BuildRequest image_request(const std::string& image) {
  auto req = code_request("");
  req.item.spec.source = launch::JobSource{};
  req.item.spec.source.kind = launch::JobSource::Kind::image;
  req.item.spec.source.image = image;
  return req;
}

std::unique_ptr<launch::Builder> builder(const std::string& type,
                                         const std::string& destination = "") {
  launch::BuilderConfig cfg;
  cfg.type = type;
  cfg.destination = destination;
  return launch::make_builder(cfg);
}

// Runs `image` (its own entry point when argv is empty) and returns stdout.
std::string run_image(const std::string& image, std::vector<std::string> argv = {}) {
  launch::RunnerContext ctx;
  auto runner = launch::make_runner("local-container", ctx);
  auto job = dtest::make_job(image, std::move(argv));
  auto run = runner->submit(job);
  auto s = dtest::wait_end(*run);
  CHECK_MESSAGE(s.phase == RunPhase::finished, s.message);
  return dtest::read_file(job.log_dir + "/stdout.log");
}

std::string code_dir_with(const std::string& dockerfile, const std::string& script) {
  std::string dir = dtest::make_temp_dir("launch-code-");
  if (!dockerfile.empty()) dtest::write_file(dir + "/Dockerfile", dockerfile);
  dtest::write_file(dir + "/run.sh", script, true);
  return dir;
}

}  // namespace

TEST_CASE("noop: an image on the engine is used as is") {
  auto req = image_request(dtest::busybox_image());
  auto r = builder("noop")->build(req);
  CHECK(r.image == dtest::busybox_image());
  CHECK(dtest::read_file(req.log_path).find("is present") != std::string::npos);
}

TEST_CASE("noop: a missing image fails with the engine's message") {
  std::string missing = dtest::test_registry() + "/launch-test-missing-" + dtest::run_token() +
                        ":nope";
  auto req = image_request(missing);
  try {
    builder("noop")->build(req);
    FAIL("built a missing image");
  } catch (const Error& e) {
    std::string msg = e.what();
    CHECK_MESSAGE(msg.find(missing.substr(0, missing.find(':', 10))) != std::string::npos, msg);
    CHECK_MESSAGE((msg.find("not found") != std::string::npos ||
                   msg.find("unknown") != std::string::npos),
                  msg);
  }
}

TEST_CASE("noop: a code or git source is refused naming builder.type") {
  auto req = code_request("/tmp");
  try {
    builder("noop")->build(req);
    FAIL("noop built code");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid);
    CHECK(std::string(e.what()).find("builder.type") != std::string::npos);
  }
}

TEST_CASE("docker: a code directory is built, pushed, pulled back with noop and run; "
          "the same code again skips the build") {
  std::string dest = dtest::test_destination();
  std::string dir = code_dir_with(
      "FROM " + dtest::busybox_image() + "\nCOPY run.sh /run.sh\nENTRYPOINT [\"sh\", \"/run.sh\"]\n",
      "echo built-and-pushed\n");
  auto req = code_request(dir);
  auto built = builder("docker", dest)->build(req);
  dtest::track_image(built.image);
  CHECK_FALSE(built.skipped);
  CHECK(built.image.rfind(dest + ":", 0) == 0);
  CHECK(docker::registry_has_manifest(docker::parse_image_ref(built.image)));
  std::string log = dtest::read_file(req.log_path);
  CHECK_MESSAGE(log.find("Step 1/") != std::string::npos, log);
  CHECK(log.find("pushing") != std::string::npos);

  // Off the engine, then back from the registry through the noop builder.
  docker::Engine engine;
  engine.remove_image(built.image, false);
  REQUIRE_FALSE(engine.inspect_image(built.image));
  auto pulled = builder("noop")->build(image_request(built.image));
  CHECK(pulled.image == built.image);
  CHECK(engine.inspect_image(built.image).has_value());
  CHECK(run_image(built.image) == "built-and-pushed\n");

  // Same code: the registry has the tag, so nothing is built. For a
  // Kubernetes runner the image stays in the registry; for a local
  // container it is pulled, and is the very image first built (a rebuild
  // would have a new id: its config records when it was created).
  std::string first_id = (*engine.inspect_image(built.image))["Id"].GetString();
  engine.remove_image(built.image, false);
  auto req_k8s = code_request(dir);
  req_k8s.resource = "kubernetes";
  auto again = builder("docker", dest)->build(req_k8s);
  CHECK(again.skipped);
  CHECK(again.image == built.image);
  CHECK_FALSE(engine.inspect_image(built.image));
  auto local = builder("docker", dest)->build(code_request(dir));
  CHECK(local.skipped);
  auto pulled_back = engine.inspect_image(built.image);
  REQUIRE(pulled_back.has_value());
  CHECK(std::string((*pulled_back)["Id"].GetString()) == first_id);

  // Changed code: a new tag, built.
  dtest::write_file(dir + "/run.sh", "echo changed\n", true);
  auto changed = builder("docker", dest)->build(code_request(dir));
  dtest::track_image(changed.image);
  CHECK_FALSE(changed.skipped);
  CHECK(changed.image != built.image);
}

TEST_CASE("docker: a failing build fails with the build's error, also in build.log") {
  std::string dir = code_dir_with("FROM " + dtest::busybox_image() +
                                      "\nRUN echo about to fail && exit 3\n",
                                  "true\n");
  auto req = code_request(dir);
  try {
    auto r = builder("docker")->build(req);
    dtest::track_image(r.image);
    FAIL("a failing build succeeded");
  } catch (const Error& e) {
    CHECK_MESSAGE(std::string(e.what()).find("returned a non-zero code: 3") != std::string::npos,
                  e.what());
  }
  std::string log = dtest::read_file(req.log_path);
  CHECK(log.find("about to fail") != std::string::npos);
  CHECK(log.find("non-zero code: 3") != std::string::npos);
}

TEST_CASE("docker: without a Dockerfile one is generated from the base image and entry point") {
  std::string dir = code_dir_with("", "echo generated \"$@\"\n");
  auto req = code_request(dir);
  req.item.spec.env["LAUNCH_BASE_IMAGE"] = dtest::busybox_image();
  req.item.spec.entry_point = {"sh", "/launch/code/run.sh"};
  auto ctx = launch::source::prepare_context(req.item.spec, dir, "");
  CHECK(ctx.dockerfile == ".launch.Dockerfile");
  auto r = builder("docker")->build(req);
  dtest::track_image(r.image);
  CHECK(r.image.rfind("launch-build:", 0) == 0);
  CHECK(run_image(r.image) == "generated\n");
  CHECK(run_image(r.image, {"sh", "/launch/code/run.sh", "with", "args"}) ==
        "generated with args\n");
  // Built locally only: the second time the engine already has it.
  CHECK(builder("docker")->build(req).skipped);

  launch::JobSpec spec;
  spec.entry_point = {"python", "train.py"};
  std::string generated = launch::source::generated_dockerfile(spec, true);
  CHECK(generated.rfind("FROM python:3.11-slim\n", 0) == 0);
  CHECK(generated.find("requirements.txt") != std::string::npos);
  CHECK(generated.find("ENTRYPOINT [\"python\",\"train.py\"]") != std::string::npos);
}

TEST_CASE("docker: the job's Dockerfile override wins over the code's own") {
  std::string dir = code_dir_with("FROM scratch\nRUN false\n", "echo from-override\n");
  dtest::write_file(dir + "/ci/Alt.Dockerfile",
                    "FROM " + dtest::busybox_image() + "\nCOPY run.sh /run.sh\n");
  auto req = code_request(dir);
  req.item.spec.dockerfile = "ci/Alt.Dockerfile";
  auto r = builder("docker")->build(req);
  dtest::track_image(r.image);
  CHECK(run_image(r.image, {"sh", "/run.sh"}) == "from-override\n");
  req.item.spec.dockerfile = "ci/Missing.Dockerfile";
  try {
    builder("docker")->build(req);
    FAIL("a missing override was accepted");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid);
    CHECK(std::string(e.what()).find("ci/Missing.Dockerfile") != std::string::npos);
  }
}

TEST_CASE("docker: a git source is built from a local bare repository at the given ref") {
  dtest::GitRepo repo("launch-git-");
  dtest::write_file(repo.work + "/Dockerfile",
                    "FROM " + dtest::busybox_image() + "\nCOPY run.sh /run.sh\n");
  dtest::write_file(repo.work + "/run.sh", "echo from-main\n", true);
  repo.git({"add", "."});
  repo.git({"commit", "--quiet", "-m", "main"});
  repo.git({"branch", "-M", "main"});
  repo.git({"push", "--quiet", repo.bare, "main"});
  repo.git({"checkout", "--quiet", "-b", "feature"});
  dtest::write_file(repo.work + "/run.sh", "echo from-feature\n", true);
  repo.git({"commit", "--quiet", "-am", "feature"});
  repo.git({"push", "--quiet", repo.bare, "feature"});
  repo.git({"tag", "v1"});
  repo.git({"push", "--quiet", repo.bare, "v1"});

  auto req = code_request("");
  req.item.spec.source = launch::JobSource{};
  req.item.spec.source.kind = launch::JobSource::Kind::git;
  req.item.spec.source.git_url = repo.bare;
  req.item.spec.source.git_ref = "feature";
  auto r = builder("docker")->build(req);
  dtest::track_image(r.image);
  CHECK(run_image(r.image, {"sh", "/run.sh"}) == "from-feature\n");
  CHECK(dtest::read_file(req.log_path).find("commit ") != std::string::npos);

  req.item.spec.source.git_ref = "main";
  auto m = builder("docker")->build(req);
  dtest::track_image(m.image);
  CHECK(m.image != r.image);
  CHECK(run_image(m.image, {"sh", "/run.sh"}) == "from-main\n");

  // A tag naming the feature commit is the same content: the same image.
  req.item.spec.source.git_ref = "v1";
  CHECK(builder("docker")->build(req).image == r.image);

  req.item.spec.source.git_ref = "--upload-pack=touch /tmp/x";
  try {
    builder("docker")->build(req);
    FAIL("took an option for a ref");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid);
    CHECK(std::string(e.what()).find("--upload-pack") != std::string::npos);
  }

  req.item.spec.source.git_ref = "no-such-ref";
  try {
    builder("docker")->build(req);
    FAIL("built a missing ref");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("no-such-ref") != std::string::npos);
  }
}

TEST_CASE("docker: a destination with a tag is refused naming builder.destination") {
  auto req = code_request(code_dir_with("FROM scratch\n", "true\n"));
  try {
    builder("docker", "127.0.0.1:5000/x:tag")->build(req);
    FAIL("accepted");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid);
    CHECK(std::string(e.what()).find("builder.destination") != std::string::npos);
  }
}
