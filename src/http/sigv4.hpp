// Internal: AWS Signature Version 4 (docs.aws.amazon.com/IAM/latest/UserGuide/
// reference_sigv-create-signed-request.html), as an http::Auth.
//
// Two forms: the Authorization header (every API call), and the presigned
// query (a URL that carries its own signature and expiry). Both are pure
// functions of the request, the credentials, the options and the time, so
// the AWS test suite (tests/data/aws-sigv4/) checks them case by case.
#ifndef LAUNCH_SRC_HTTP_SIGV4_HPP
#define LAUNCH_SRC_HTTP_SIGV4_HPP

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "http/auth.hpp"
#include "http/client.hpp"

namespace launch {
namespace http {

struct AwsCredentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty for long-term keys
  // When temporary credentials stop working; nullopt for long-term keys.
  std::optional<std::chrono::system_clock::time_point> expiration;
};

// Where AWS credentials come from (environment, profile, STS, container,
// IMDS: see aws_credentials.hpp). credentials() returns ones that are valid
// for a while yet, refreshing them when they are about to expire; it is safe
// from several threads. Throws launch::Error when none can be had.
class AwsCredentialsProvider {
 public:
  virtual ~AwsCredentialsProvider() = default;
  virtual AwsCredentials credentials() = 0;
  // What the provider is, for error messages ("environment", "profile dev").
  virtual std::string describe() const = 0;
};

// Fixed credentials (tests, and a provider's result held once).
class StaticAwsCredentials : public AwsCredentialsProvider {
 public:
  explicit StaticAwsCredentials(AwsCredentials c, std::string what = "static credentials")
      : creds_(std::move(c)), what_(std::move(what)) {}
  AwsCredentials credentials() override { return creds_; }
  std::string describe() const override { return what_; }

 private:
  AwsCredentials creds_;
  std::string what_;
};

struct SigV4Options {
  std::string region;   // "us-east-1"
  std::string service;  // "sagemaker", "s3", "sts", "logs", "ecr"
  // Adds x-amz-content-sha256 (S3 needs it).
  bool sign_body = false;
  // Removes "." and ".." segments and repeated slashes from the path, and
  // percent-encodes the (already encoded) path once more. Every service
  // but S3.
  bool normalize_path = true;
  bool double_encode_path = true;
  // The session token goes on after signing, outside the signature.
  bool omit_session_token = false;
};

// S3's options: no path normalisation, single encoding, a signed body hash.
SigV4Options s3_sigv4_options(const std::string& region);

// What a signature was computed from, for tests and for debugging a 403.
struct SigV4Result {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;  // 64 hex digits
};

// Signs `request` in place with an Authorization header (and X-Amz-Date,
// X-Amz-Security-Token, x-amz-content-sha256 as the options say). Every
// header already on the request is signed, but for User-Agent, Expect and
// Authorization; the Host header is the URL's authority when the request
// has none. A streamed body (request.body == nullptr) is signed as
// UNSIGNED-PAYLOAD.
SigV4Result sigv4_sign(Outgoing& request, const AwsCredentials& credentials,
                       const SigV4Options& options, std::chrono::system_clock::time_point now);

// Presigns `request` in place: the X-Amz-* query parameters and
// X-Amz-Signature are appended to its URL; the URL is good for `expires`.
SigV4Result sigv4_presign(Outgoing& request, const AwsCredentials& credentials,
                          const SigV4Options& options, std::chrono::system_clock::time_point now,
                          std::chrono::seconds expires);

// The Auth: signs every request (each retry, each redirect hop) with the
// provider's current credentials, so a refresh is picked up at once.
class SigV4Auth : public Auth {
 public:
  SigV4Auth(std::shared_ptr<AwsCredentialsProvider> provider, SigV4Options options)
      : provider_(std::move(provider)), options_(std::move(options)) {}
  void apply(Outgoing& request) const override;
  const SigV4Options& options() const { return options_; }
  AwsCredentialsProvider& provider() const { return *provider_; }

 private:
  std::shared_ptr<AwsCredentialsProvider> provider_;
  SigV4Options options_;
};

// RFC 3986 percent-encoding with only the unreserved characters kept, and
// '/' kept too when `keep_slash` (SigV4's UriEncode).
std::string aws_uri_encode(const std::string& text, bool keep_slash);

}  // namespace http
}  // namespace launch

#endif
