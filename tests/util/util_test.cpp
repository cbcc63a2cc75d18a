// src/util: hashing, base64, processes, directories, paths.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>

#include "launch/error.hpp"
#include "launch/home.hpp"
#include "support/env_scope.hpp"
#include "support/temp_dir.hpp"
#include "util/base64.hpp"
#include "util/redact.hpp"
#include "util/fs.hpp"
#include "util/json.hpp"
#include "util/limits.hpp"
#include "util/process.hpp"
#include "util/sha256.hpp"
#include "util/user.hpp"

using launch::Errc;
using launch::Error;
namespace util = launch::util;

namespace {

bool is_dir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Sets an environment variable for one scope.
using ScopedEnv = launch_test::EnvScope;

}  // namespace

TEST_CASE("sha256 matches the FIPS 180-4 examples") {
  CHECK(launch::sha256_hex("") ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(launch::sha256_hex("abc") ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(launch::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  launch::Sha256 h;
  std::string a(1000, 'a');
  for (int i = 0; i < 1000; ++i) h.update(a);
  CHECK(h.hex_digest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  CHECK(launch::sha256("abc").size() == 32);
}

TEST_CASE("hmac-sha256 matches the RFC 4231 test cases") {
  using launch::hex;
  using launch::hmac_sha256;
  // Case 1: a 20-byte key.
  CHECK(hex(hmac_sha256(std::string(20, '\x0b'), "Hi There")) ==
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  // Case 2: a key shorter than the block.
  CHECK(hex(hmac_sha256("Jefe", "what do ya want for nothing?")) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Case 6: a key longer than the block is hashed first.
  CHECK(hex(hmac_sha256(std::string(131, '\xaa'),
                        "Test Using Larger Than Block-Size Key - Hash Key First")) ==
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST_CASE("base64 round trips, standard and url-safe") {
  CHECK(util::base64_encode("user:pass") == "dXNlcjpwYXNz");
  CHECK(util::base64_decode("dXNlcjpwYXNz") == "user:pass");
  CHECK(util::base64_encode("{}") == "e30=");
  CHECK(util::base64_encode("") == "");
  CHECK(util::base64_encode("f") == "Zg==");
  CHECK(util::base64_encode("fo") == "Zm8=");
  std::string bin = "\xfb\xff\x01";
  CHECK(util::base64url_encode(bin) == "-_8B");
  CHECK(util::base64url_encode("f") == "Zg");
  CHECK(util::base64url_encode("f", true) == "Zg==");
  CHECK(util::base64_decode("-_8B") == bin);
  CHECK(util::base64_decode("Zg") == "f");
  CHECK_THROWS_AS(util::base64_decode("a$b"), Error);
}

TEST_CASE("run_process runs argv without a shell") {
  util::ProcessResult r = util::run_process({"echo", "a;b", "$HOME"});
  CHECK(r.status == 0);
  CHECK(r.out == "a;b $HOME\n");
  CHECK(util::run_process({"false"}).status == 1);
  CHECK_THROWS_AS(util::run_process({"/nonexistent/prog"}), Error);
  CHECK_THROWS_AS(util::run_process({}), Error);
}

TEST_CASE("run_process: stdin, stderr modes, environment, working directory") {
  util::ProcessOptions o;
  o.input = "line one\nline two\n";
  CHECK(util::run_process({"cat"}, o).out == "line one\nline two\n");

  // More than a pipe holds, both ways at once: no deadlock.
  o.input = std::string(1 << 20, 'x');
  CHECK(util::run_process({"cat"}, o).out.size() == (1u << 20));

  // A program that does not read its input gets it closed, not a SIGPIPE
  // that would kill this process.
  o.input = std::string(1 << 20, 'y');
  CHECK(util::run_process({"true"}, o).status == 0);

  util::ProcessOptions err;
  err.stderr_mode = util::StderrMode::capture;
  auto r = util::run_process({"sh", "-c", "echo out; echo err >&2; exit 3"}, err);
  CHECK(r.status == 3);
  CHECK(r.out == "out\n");
  CHECK(r.err == "err\n");
  err.stderr_mode = util::StderrMode::merge;
  r = util::run_process({"sh", "-c", "echo out; echo err >&2"}, err);
  CHECK(r.out == "out\nerr\n");
  err.stderr_mode = util::StderrMode::discard;
  r = util::run_process({"sh", "-c", "echo out; echo err >&2"}, err);
  CHECK(r.out == "out\n");
  CHECK(r.err.empty());

  util::ProcessOptions env;
  env.extra_env = {"LAUNCH_UTIL_TEST=seen"};
  CHECK(util::run_process({"sh", "-c", "printf %s \"$LAUNCH_UTIL_TEST\""}, env).out == "seen");

  launch_test::TempDir dir;
  util::ProcessOptions wd;
  wd.working_dir = dir.path();
  std::string pwd = util::run_process({"pwd", "-P"}, wd).out;
  char real[4096];
  REQUIRE(::realpath(dir.path().c_str(), real) != nullptr);
  CHECK(pwd == std::string(real) + "\n");
}

TEST_CASE("run_process: a timeout kills, output is capped, signals are reported") {
  util::ProcessOptions o;
  o.timeout = std::chrono::milliseconds(200);
  auto r = util::run_process({"sleep", "30"}, o);
  CHECK(r.timed_out);
  CHECK(r.status == 128 + 9);

  util::ProcessOptions cap;
  cap.max_output = 1000;
  cap.input = std::string(100000, 'z');
  r = util::run_process({"cat"}, cap);
  CHECK(r.status == 0);
  CHECK(r.out.size() == 1000);

  CHECK(util::run_process({"sh", "-c", "kill -TERM $$"}).status == 128 + 15);
}

TEST_CASE("make_directories makes every missing parent, once") {
  launch_test::TempDir dir;
  std::string deep = dir.path() + "/a/b/c";
  util::make_directories(deep);
  CHECK(is_dir(deep));
  util::make_directories(deep);  // already there: fine
  std::ofstream(dir.path() + "/file") << "x";
  try {
    util::make_directories(dir.path() + "/file/sub");
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::io);
    CHECK(std::string(e.what()).find(dir.path() + "/file/sub") != std::string::npos);
  }
  CHECK(util::parent_path("/a/b") == "/a");
  CHECK(util::parent_path("/a") == "/");
  CHECK(util::parent_path("a") == "");
}

TEST_CASE("TempDir is made under TMPDIR and removed with its contents") {
  launch_test::TempDir base;
  std::string path;
  {
    ScopedEnv tmp("TMPDIR", base.path().c_str());
    util::TempDir t("launch-util-");
    path = t.path();
    CHECK(path.rfind(base.path() + "/launch-util-", 0) == 0);
    util::make_directories(path + "/x/y");
    std::ofstream(path + "/x/y/f") << "data";
  }
  CHECK_FALSE(is_dir(path));
}

TEST_CASE("launch_home and the run directory") {
  {
    ScopedEnv h("LAUNCH_HOME", "/srv/launch");
    CHECK(launch::launch_home() == "/srv/launch");
  }
  {
    ScopedEnv h("LAUNCH_HOME", nullptr);
    ScopedEnv home("HOME", "/home/someone");
    CHECK(launch::launch_home() == "/home/someone/.local/share/launch");
  }
  CHECK(launch::run_directory("/srv/launch", "42") == "/srv/launch/runs/42");
}

TEST_CASE("the user name is the effective user's") {
  std::string name = util::os_user_name();
  CHECK_FALSE(name.empty());
  CHECK(name == util::run_process({"id", "-un"}).out.substr(0, name.size()));
  CHECK_FALSE(util::host_name().empty());
}

TEST_CASE("JSON: nesting, non-finite numbers and precision are held to limits.hpp") {
  namespace json = launch::json;
  std::string deep(launch::limits::kMaxNesting, '[');
  deep += std::string(launch::limits::kMaxNesting, ']');
  CHECK_NOTHROW(json::parse(deep, "doc"));
  std::string deeper = "[" + deep + "]";
  CHECK_THROWS_WITH_AS(json::parse(deeper, "doc"), "doc: JSON nests deeper than 64 levels", Error);
  // 50,000 levels: refused, no stack overflow in the parser.
  std::string pill = "{\"a\":" + std::string(50000, '[') + std::string(50000, ']') + "}";
  CHECK_THROWS_AS(json::parse(pill, "push"), Error);
  CHECK_THROWS_WITH_AS(json::parse("{\"a\":1,\"b\":9e308}", "doc"),
                       doctest::Contains("too large"), Error);
  // Full precision: the same number comes back out.
  CHECK(json::dump(json::parse("[8.888888888888889e70]", "doc")) == "[8.888888888888889e70]");
}

TEST_CASE("YAML: self-referencing aliases, alias bombs and map keys are refused clearly") {
  namespace json = launch::json;
  CHECK_THROWS_WITH_AS(json::yaml_to_json("&a [*a]", "q.yaml"),
                       doctest::Contains("nests deeper than 64"), Error);
  CHECK_THROWS_AS(json::yaml_to_json("entity: e\nqueues: &q [*q]\n", "c.yaml"), Error);
  // Ten levels of ten aliases: 10^10 leaves from a few hundred bytes.
  std::string bomb = "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
  for (int i = 1; i <= 10; ++i) {
    bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) bomb += (k ? ",*a" : "*a") + std::to_string(i - 1);
    bomb += "]\n";
  }
  CHECK_THROWS_WITH_AS(json::yaml_to_json(bomb, "q.yaml"),
                       doctest::Contains("expands to more than 1048576 bytes"), Error);
  CHECK_THROWS_WITH_AS(json::yaml_to_json("env:\n  GPUS: {{gpus}}\n", "q.yaml"),
                       doctest::Contains("line 2, column 10: a map key must be plain text; quote"),
                       Error);
  CHECK(json::yaml_to_json("env:\n  GPUS: \"{{gpus}}\"\n", "q.yaml") ==
        "{\"env\":{\"GPUS\":\"{{gpus}}\"}}");
}

TEST_CASE("mask_password hides a URI's password and a password= parameter") {
  using launch::util::mask_password;
  CHECK(mask_password("postgres://launch:s3cret@db:5432/launch") ==
        "postgres://launch:***@db:5432/launch");
  CHECK(mask_password("postgres://a:b:c@db/x") == "postgres://a:***@db/x");
  CHECK(mask_password("postgres://launch@db/launch") == "postgres://launch@db/launch");
  CHECK(mask_password("sqlite:///var/lib/a@b/launch.db") == "sqlite:///var/lib/a@b/launch.db");
  CHECK(mask_password("postgresql://db/l?user=u&password=hunter2&sslmode=require") ==
        "postgresql://db/l?user=u&password=***&sslmode=require");
  CHECK(mask_password("host=db password=x dbname=l") == "host=db password=*** dbname=l");
  CHECK(mask_password("host=db db_password=x") == "host=db db_password=x");
  CHECK(mask_password("memory://q") == "memory://q");
}
