// Internal: one call of an AWS JSON-protocol API (SageMaker, CloudWatch
// Logs, ECR): POST / with X-Amz-Target "<prefix>.<Operation>", a JSON body,
// SigV4-signed with the service's signing name.
#ifndef LAUNCH_SRC_AWS_JSON_API_HPP
#define LAUNCH_SRC_AWS_JSON_API_HPP

#include <memory>
#include <string>

#include "http/client.hpp"
#include "http/sigv4.hpp"
#include "util/json.hpp"

namespace launch {
namespace aws {

struct JsonService {
  const char* endpoint_env;  // AWS_ENDPOINT_URL_<this>
  const char* host_prefix;   // https://<this>.<region>.amazonaws.com
  const char* signing_name;
  const char* target_prefix;
  const char* json_version;  // "1.1"
};

extern const JsonService kSageMaker;
extern const JsonService kCloudWatchLogs;
extern const JsonService kEcr;

// The error AWS answered, its __type kept ("ValidationException").
class AwsError : public http::HttpError {
 public:
  AwsError(const http::HttpError& e, std::string type)
      : http::HttpError(e), type_(std::move(type)) {}
  const std::string& type() const { return type_; }

 private:
  std::string type_;
};

// The error type of an AWS JSON-protocol answer: its x-amzn-ErrorType
// header, else the body's "__type", without a "prefix#" or ":more"; "" when
// neither says.
std::string aws_error_type(const std::string& header, const std::string& body);

class JsonApi {
 public:
  JsonApi(const JsonService& service, std::shared_ptr<http::AwsCredentialsProvider> provider,
          const std::string& region);
  // Sends `body` (a JSON object's text) to `operation`; the answer's JSON.
  // Throws AwsError for an answer >= 400, naming the operation, and
  // Errc::invalid for an answer that is not a JSON object.
  json::Document call(const std::string& operation, const std::string& body);
  const std::string& endpoint() const { return endpoint_; }

 private:
  const JsonService& service_;
  std::string endpoint_;
  std::shared_ptr<http::Auth> auth_;
  http::Client client_;
};

}  // namespace aws
}  // namespace launch

#endif
