// The s3:// build-context store against a real S3 implementation: s3rver
// from the npm registry (tests/node/s3rver, installed by scripts/setup).
// s3rver 3.7 parses SigV4 headers and checks the access key but not the
// signature itself, so the same store also writes to the botocore-checked
// test server (server.py), which verifies S3's signature form.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>

#include "aws_server.hpp"
#include "builder/context_store.hpp"
#include "http/client.hpp"
#include "http/sigv4.hpp"
#include "launch/builder.hpp"
#include "launch/error.hpp"
#include "support/temp_dir.hpp"

using aws_test::EnvScope;
namespace http = launch::http;

namespace {

// s3rver on 127.0.0.1 with the bucket "ctx", its data in a TempDir; it
// dies with this process (PR_SET_PDEATHSIG) and is stopped when done.
class S3rver {
 public:
  S3rver() {
    std::string root = std::string(LAUNCH_TEST_DATA) + "/../node/s3rver";
    std::string bin = root + "/node_modules/s3rver/bin/s3rver.js";
    if (access(bin.c_str(), R_OK) != 0) {
      throw std::runtime_error(bin + " is missing: run scripts/setup (npm ci in tests/node/s3rver)");
    }
    int out[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      dup2(out[1], 1);
      close(out[0]);
      close(out[1]);
      std::string d = dir_.path();
      execlp("node", "node", bin.c_str(), "-d", d.c_str(), "-a", "127.0.0.1", "-p", "0", "-s",
             "--configure-bucket", "ctx", static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    FILE* f = fdopen(out[0], "r");
    char line[512];
    while (fgets(line, sizeof line, f) != nullptr) {
      std::string s = line;
      auto at = s.find("listening on 127.0.0.1:");
      if (at != std::string::npos) {
        port_ = std::stoi(s.substr(at + 23));
        break;
      }
    }
    fclose(f);
    if (port_ == 0) {
      stop();
      throw std::runtime_error("s3rver did not start");
    }
  }
  ~S3rver() { stop(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  void stop() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int st = 0;
      waitpid(pid_, &st, 0);
    }
    pid_ = -1;
  }
  launch_test::TempDir dir_{"launch-s3rver"};
  pid_t pid_ = -1;
  int port_ = 0;
};

// s3rver's built-in account.
struct S3Env {
  S3rver s3;
  EnvScope endpoint{"AWS_ENDPOINT_URL_S3", s3.url()};
  EnvScope key{"AWS_ACCESS_KEY_ID", "S3RVER"};
  EnvScope secret{"AWS_SECRET_ACCESS_KEY", "S3RVER"};
  EnvScope region{"AWS_REGION", "us-east-1"};
  EnvScope all{"AWS_ENDPOINT_URL", nullptr};
};

http::Response get_object(const std::string& url) {
  http::Request r;
  r.url = url;
  auto creds = std::make_shared<http::StaticAwsCredentials>(
      http::AwsCredentials{"S3RVER", "S3RVER", "", std::nullopt});
  r.auth = std::make_shared<http::SigV4Auth>(creds, http::s3_sigv4_options("us-east-1"));
  http::Client c;
  return c.send(r, true);
}

}  // namespace

TEST_CASE("s3:// store: PutObject and DeleteObject, signed as S3 checks them") {
  S3Env env;
  launch::builder_names();  // the built-in backends, s3:// among them, are installed
  auto store = launch::source::open_context_store("s3://ctx/launch/contexts/");
  std::string body(200000, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 7);
  std::string where = store->put("abc 123.tar.gz", body);
  CHECK(where == "s3://ctx/launch/contexts/abc 123.tar.gz");

  std::string object = env.s3.url() + "/ctx/launch/contexts/abc%20123.tar.gz";
  http::Response got = get_object(object);
  CHECK(got.status == 200);
  CHECK(got.body == body);

  store->remove("abc 123.tar.gz");
  CHECK(get_object(object).status == 404);
  CHECK_NOTHROW(store->remove("abc 123.tar.gz"));  // missing is not an error
}

TEST_CASE("s3:// store: a key S3 does not know is refused, and the error names the store") {
  S3Env env;
  EnvScope bad{"AWS_ACCESS_KEY_ID", "AKIDUNKNOWN"};
  launch::builder_names();
  auto store = launch::source::open_context_store("s3://ctx/p");
  CHECK_THROWS_WITH(store->put("x.tar.gz", "data"),
                    doctest::Contains("InvalidAccessKeyId"));
  CHECK_THROWS_WITH(store->put("x.tar.gz", "data"), doctest::Contains("s3://ctx/p"));
  CHECK_THROWS_WITH(launch::source::open_context_store("s3://Bad_Bucket/p"),
                    doctest::Contains("not an S3 bucket name"));
}

TEST_CASE("s3:// store: botocore's S3 signer accepts PutObject and DeleteObject; a wrong secret is 403") {
  aws_test::WithKeys env;
  EnvScope s3{"AWS_ENDPOINT_URL_S3", env.server.url()};
  launch::builder_names();
  auto store = launch::source::open_context_store("s3://ctx/deep/prefix");
  CHECK(store->put("h a+sh.tar.gz", "payload") == "s3://ctx/deep/prefix/h a+sh.tar.gz");
  store->remove("h a+sh.tar.gz");
  auto st = env.server.state();
  int puts = 0, deletes = 0;
  for (const auto& c : st["calls"].GetArray()) {
    puts += std::string(c.GetString()) == "s3.PutObject /ctx/deep/prefix/h a+sh.tar.gz";
    deletes += std::string(c.GetString()) == "s3.DeleteObject /ctx/deep/prefix/h a+sh.tar.gz";
  }
  CHECK(puts == 1);
  CHECK(deletes == 1);

  EnvScope bad{"AWS_SECRET_ACCESS_KEY", "wrong"};
  auto wrong = launch::source::open_context_store("s3://ctx/p");
  CHECK_THROWS_WITH(wrong->put("x.tar.gz", "data"), doctest::Contains("SignatureDoesNotMatch"));
}
