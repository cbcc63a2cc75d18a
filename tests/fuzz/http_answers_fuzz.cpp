// What the HTTP clients read from a server's answer, each reader given the
// whole input: error bodies (server_message), AWS's XML (aws_xml_text,
// STS credentials, times), the credentials JSON of the container and
// instance metadata endpoints; with the docker backend the engine's log
// framing and JSON-lines progress stream, and a registry's token challenge
// and token answer; with the AWS backend the JSON protocol's error type and
// ECR's GetAuthorizationToken answer.
#include <chrono>

#include "fuzz_support.hpp"
#include "http/aws_credentials.hpp"
#include "http/client.hpp"
#include "launch/features.h"
#include "util/json.hpp"
#if LAUNCH_FEATURE_DOCKER
#include "docker/engine.hpp"
#include "docker/registry.hpp"
#endif
#if LAUNCH_FEATURE_AWS
#include "aws/ecr.hpp"
#include "aws/json_api.hpp"
#endif

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace launch;
  const std::string body = fuzz::text(data, size);

  http::server_message(body);
  http::LineSplitter lines([](const std::string&) {});
  lines.feed(body.data(), body.size());
  lines.finish();

  for (const char* tag : {"Code", "Message", "AccessKeyId", "Expiration"}) {
    auto text = http::aws_xml_text(body, tag);
    if (text) fuzz::refused([&] { http::aws_parse_time(*text, "fuzz"); });
  }
  fuzz::refused([&] { http::aws_parse_time(body, "fuzz"); });
  fuzz::refused([&] { http::aws_credentials_from_sts(body, "STS answer"); });
  fuzz::refused([&] { http::aws_credentials_from_json(body, "metadata answer"); });

#if LAUNCH_FEATURE_DOCKER
  {
    // Fed in two pieces, cut where the first byte says, as a socket would.
    std::size_t cut = size == 0 ? 0 : data[0] % (size + 1);
    docker::LogDemuxer demux([](int, const char*, std::size_t) {});
    demux.feed(body.data(), cut);
    demux.feed(body.data() + cut, body.size() - cut);
    docker::ProgressStream progress([](const std::string&) {});
    http::LineSplitter progress_lines([&](const std::string& l) { progress.line(l); });
    progress_lines.feed(body.data(), cut);
    progress_lines.feed(body.data() + cut, body.size() - cut);
    progress_lines.finish();
  }
  docker::challenge_params(body);
  fuzz::refused([&] { docker::token_from_answer(body); });
#endif
#if LAUNCH_FEATURE_AWS
  aws::aws_error_type("", body);
  fuzz::refused([&] {
    json::Document d = json::parse(body, "ECR answer");
    aws::ecr_token_from_answer(d, std::chrono::system_clock::now());
  });
#endif
  return 0;
}
