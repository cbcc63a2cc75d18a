#include "aws/json_api.hpp"

#include <fmt/format.h>

#include "http/aws_credentials.hpp"
#include "launch/error.hpp"

namespace launch {
namespace aws {

const JsonService kSageMaker{"SAGEMAKER", "api.sagemaker", "sagemaker", "SageMaker", "1.1"};
const JsonService kCloudWatchLogs{"CLOUDWATCH_LOGS", "logs", "logs", "Logs_20140328", "1.1"};
const JsonService kEcr{"ECR", "api.ecr", "ecr", "AmazonEC2ContainerRegistry_V20150921", "1.1"};

namespace {

http::ClientOptions client_options() {
  http::ClientOptions o;
  o.timeout_ms = 60000;
  return o;
}

}  // namespace

JsonApi::JsonApi(const JsonService& service,
                 std::shared_ptr<http::AwsCredentialsProvider> provider,
                 const std::string& region)
    : service_(service),
      endpoint_(http::aws_endpoint(service.endpoint_env, service.host_prefix, region)),
      client_(client_options()) {
  http::SigV4Options o;
  o.region = region;
  o.service = service.signing_name;
  auth_ = std::make_shared<http::SigV4Auth>(std::move(provider), o);
}

std::string aws_error_type(const std::string& header, const std::string& body) {
  // "ValidationException", or "prefix#ValidationException:more".
  std::string type = header;
  if (type.empty() && !body.empty() && body[0] == '{') {
    // Through the one parser, so a crafted answer meets its depth limit.
    try {
      json::Document d = json::parse(body, "AWS error answer");
      if (d.IsObject() && d.HasMember("__type") && d["__type"].IsString()) {
        type = d["__type"].GetString();
      }
    } catch (const Error&) {
    }
  }
  type = type.substr(0, type.find(':'));
  if (type.find('#') != std::string::npos) type = type.substr(type.find('#') + 1);
  return type;
}

json::Document JsonApi::call(const std::string& operation, const std::string& body) {
  http::Request r;
  r.method = "POST";
  r.url = endpoint_ + "/";
  r.headers.set("X-Amz-Target", std::string(service_.target_prefix) + "." + operation);
  r.headers.set("Content-Type", std::string("application/x-amz-json-") + service_.json_version);
  r.body = body;
  r.auth = auth_;
  http::Response resp = client_.send(r, true);
  if (!resp.ok()) {
    http::HttpError e = http::status_error(resp);
    std::string type =
        aws_error_type(resp.headers.get("x-amzn-ErrorType").value_or(""), resp.body);
    throw AwsError(http::HttpError(e.code(),
                                   fmt::format("{} {}: {}", service_.target_prefix, operation,
                                               e.what()),
                                   e.method(), e.url(), e.status(), e.server_message()),
                   type);
  }
  return json::parse_object(resp.body,
                            fmt::format("{} {} answer", service_.target_prefix, operation));
}

}  // namespace aws
}  // namespace launch
