// The Docker Engine client, its stream parsers, registry helpers and build
// contexts; the engine calls run against the real dockerd.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

#include "docker/context.hpp"
#include "docker/engine.hpp"
#include "docker/registry.hpp"
#include "helpers.hpp"
#include "launch/error.hpp"
#include "util/base64.hpp"

using launch::Errc;
using launch::Error;
namespace docker = launch::docker;

namespace {

std::string frame(int stream, const std::string& payload) {
  std::string h(8, '\0');
  h[0] = static_cast<char>(stream);
  auto n = payload.size();
  h[4] = static_cast<char>((n >> 24) & 0xff);
  h[5] = static_cast<char>((n >> 16) & 0xff);
  h[6] = static_cast<char>((n >> 8) & 0xff);
  h[7] = static_cast<char>(n & 0xff);
  return h + payload;
}

}  // namespace

TEST_CASE("log framing is demultiplexed whatever the chunk boundaries") {
  std::string wire = frame(1, "out one\n") + frame(2, "err\n") + frame(1, std::string(300, 'x'));
  for (std::size_t chunk : {std::size_t{1}, std::size_t{3}, std::size_t{8}, std::size_t{1000}}) {
    std::string out, err;
    docker::LogDemuxer d([&](int s, const char* p, std::size_t n) {
      (s == 2 ? err : out).append(p, n);
    });
    for (std::size_t i = 0; i < wire.size(); i += chunk) {
      d.feed(wire.data() + i, std::min(chunk, wire.size() - i));
    }
    CHECK(out == "out one\n" + std::string(300, 'x'));
    CHECK(err == "err\n");
  }
}

TEST_CASE("progress streams render text and keep the engine's error") {
  std::string text;
  docker::ProgressStream p([&](const std::string& t) { text += t; });
  docker::LineSplitter lines([&](const std::string& l) { p.line(l); });
  std::string body =
      "{\"stream\":\"Step 1/2 : FROM scratch\\n\"}\r\n{\"status\":\"Pushing\",\"id\":\"abc\","
      "\"progress\":\"[==>]\"}\n{\"aux\":{\"ID\":\"sha256:1\"}}\n"
      "{\"errorDetail\":{\"message\":\"boom\"},\"error\":\"boom\"}";
  lines.feed(body.data(), 20);
  lines.feed(body.data() + 20, body.size() - 20);
  lines.finish();
  CHECK(p.error() == "boom");
  CHECK(p.aux_id() == "sha256:1");
  CHECK(text.find("Step 1/2 : FROM scratch\n") != std::string::npos);
  CHECK(text.find("abc: Pushing [==>]") != std::string::npos);
}

TEST_CASE("API versions compare as numbers") {
  CHECK(docker::compare_api_versions("1.41", "1.9") > 0);
  CHECK(docker::compare_api_versions("1.24", "1.41") < 0);
  CHECK(docker::compare_api_versions("1.41", "1.41") == 0);
  CHECK(docker::compare_api_versions("2.0", "1.99") > 0);
}

TEST_CASE("DOCKER_HOST: unix:// is honoured, other schemes are refused") {
  const char* old = std::getenv("DOCKER_HOST");
  std::string saved = old ? old : "";
  setenv("DOCKER_HOST", "unix:///run/other.sock", 1);
  CHECK(docker::default_socket_path() == "/run/other.sock");
  setenv("DOCKER_HOST", "tcp://127.0.0.1:2375", 1);
  try {
    docker::default_socket_path();
    FAIL("tcp:// accepted");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::unsupported);
    CHECK(std::string(e.what()).find("tcp://127.0.0.1:2375") != std::string::npos);
  }
  if (old) setenv("DOCKER_HOST", saved.c_str(), 1); else unsetenv("DOCKER_HOST");
}

TEST_CASE("image references") {
  auto r = docker::parse_image_ref("127.0.0.1:5000/team/app:v1");
  CHECK(r.registry == "127.0.0.1:5000");
  CHECK(r.repository == "team/app");
  CHECK(r.tag == "v1");
  r = docker::parse_image_ref("busybox");
  CHECK(r.registry == "docker.io");
  CHECK(r.repository == "library/busybox");
  CHECK(r.tag == "latest");
  r = docker::parse_image_ref("localhost/app@sha256:abc");
  CHECK(r.registry == "localhost");
  CHECK(r.digest == "sha256:abc");
  CHECK(r.str() == "localhost/app@sha256:abc");
}

TEST_CASE("registry credentials come from the Docker config file") {
  std::string dir = dtest::make_temp_dir("launch-dockercfg-");
  dtest::write_file(dir + "/config.json",
                    R"({"auths": {"https://reg.example:5000/v1/": {"auth": "dXNlcjpwYXNz"},
                                  "other.example": {"username": "u2", "password": "p2"}}})");
  const char* old = std::getenv("DOCKER_CONFIG");
  std::string saved = old ? old : "";
  setenv("DOCKER_CONFIG", dir.c_str(), 1);
  auto c = docker::registry_credentials("reg.example:5000");
  REQUIRE(c.has_value());
  CHECK(c->username == "user");
  CHECK(c->password == "pass");
  c = docker::registry_credentials("other.example");
  REQUIRE(c.has_value());
  CHECK(c->username == "u2");
  CHECK_FALSE(docker::registry_credentials("nowhere.example").has_value());
  std::string header = launch::util::base64_decode(docker::registry_auth_header("reg.example:5000"));
  CHECK(header.find("\"username\":\"user\"") != std::string::npos);
  CHECK(header.find("\"serveraddress\":\"reg.example:5000\"") != std::string::npos);
  CHECK(docker::registry_auth_header("nowhere.example").empty());
  dtest::write_file(dir + "/config.json", "{\"auths\": ");
  try {
    docker::registry_credentials("reg.example:5000");
    FAIL("a malformed config was accepted");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid);
    CHECK(std::string(e.what()).find(dir + "/config.json") != std::string::npos);
  }
  if (old) setenv("DOCKER_CONFIG", saved.c_str(), 1); else unsetenv("DOCKER_CONFIG");
}

TEST_CASE("build contexts are deterministic tars") {
  std::string dir = dtest::make_temp_dir("launch-ctx-");
  dtest::write_file(dir + "/b.txt", "bee\n");
  dtest::write_file(dir + "/a/run.sh", "echo hi\n", true);
  dtest::write_file(dir + "/.git/HEAD", "ref: refs/heads/main\n");
  std::string first = docker::tar_directory(dir);
  // Touching a file (mtime) changes nothing; contents do.
  dtest::write_file(dir + "/b.txt", "bee\n");
  CHECK(docker::tar_directory(dir) == first);
  CHECK(first.find("ref: refs/heads/main") == std::string::npos);  // .git left out
  CHECK(first.find("echo hi") != std::string::npos);
  CHECK(docker::tar_directory(dir, {{"Extra", "x"}}) != first);
  dtest::write_file(dir + "/b.txt", "bee2\n");
  CHECK(docker::tar_directory(dir) != first);
  CHECK_THROWS_AS(docker::tar_directory(dir + "/missing"), Error);
}

TEST_CASE("the engine's API version is negotiated with /_ping") {
  docker::Engine engine;
  std::string v = engine.api_version();
  CHECK(docker::compare_api_versions(v, "1.24") >= 0);
  CHECK(docker::compare_api_versions(v, docker::kMaxApiVersion) <= 0);
  docker::Engine copy(engine);
  CHECK(copy.api_version() == v);
}

TEST_CASE("engine errors carry the engine's message") {
  docker::Engine engine;
  CHECK_FALSE(engine.inspect_container("launch-no-such-container-" + dtest::run_token()));
  CHECK_FALSE(engine.inspect_image("launch-no-such-image:" + dtest::run_token()));
  try {
    engine.create_container(R"({"Image": "launch-no-such-image:)" + dtest::run_token() + "\"}");
    FAIL("created a container from a missing image");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::not_found);
    CHECK(std::string(e.what()).find("No such image") != std::string::npos);
  }
}

TEST_CASE("container lifecycle: create, start, logs, wait, list by label, remove") {
  docker::Engine engine;
  std::string label = "launch.test-" + dtest::run_token();
  std::string spec = R"({"Image": ")" + dtest::busybox_image() +
                     R"(", "Cmd": ["sh", "-c", "echo to-out; echo to-err >&2; exit 3"],
      "Labels": {")" + label + R"(": "lifecycle"}, "HostConfig": {"NetworkMode": "none"}})";
  std::string id = engine.create_container(spec);
  auto listed = engine.list_containers({{label, "lifecycle"}});
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].id == id);
  CHECK(listed[0].state == "created");
  CHECK(engine.list_containers({{label, "other"}}).empty());
  engine.start_container(id);
  auto w = engine.wait_container(id);
  CHECK(w.exit_code == 3);
  std::string out, err;
  engine.container_logs(id, true, [&](int s, const char* d, std::size_t n) {
    (s == 2 ? err : out).append(d, n);
  });
  CHECK(out == "to-out\n");
  CHECK(err == "to-err\n");
  auto doc = engine.inspect_container(id);
  REQUIRE(doc.has_value());
  CHECK(std::string((*doc)["State"]["Status"].GetString()) == "exited");
  try {
    engine.kill_container(id, "SIGTERM");
    FAIL("killed a stopped container");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::state);
  }
  engine.remove_container(id, false);
  CHECK_FALSE(engine.inspect_container(id));
  CHECK(engine.list_containers({{label, ""}}).empty());
}

TEST_CASE("stop ends a running container within its timeout") {
  docker::Engine engine;
  std::string label = "launch.test-" + dtest::run_token();
  std::string id = engine.create_container(
      R"({"Image": ")" + dtest::busybox_image() + R"(", "Cmd": ["sleep", "60"], "Labels": {")" +
      label + R"(": "stop"}, "HostConfig": {"NetworkMode": "none"}})");
  engine.start_container(id);
  engine.stop_container(id, 1);
  auto doc = engine.inspect_container(id);
  REQUIRE(doc.has_value());
  CHECK(std::string((*doc)["State"]["Status"].GetString()) == "exited");
  engine.remove_container(id, false);
  CHECK_FALSE(engine.inspect_container(id));
}
