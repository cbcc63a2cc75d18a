// Internal: where AWS credentials come from, found the way the AWS CLI and
// SDKs find them, each source refreshing its credentials before they
// expire (a long-running agent must outlive any one set of them).
//
// The chain, first match wins (default_aws_credentials):
//   1. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN);
//   2. AWS_PROFILE's profile (or "default" when it has keys or a role) in
//      AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials) and AWS_CONFIG_FILE
//      (~/.aws/config): static keys, or role_arn + source_profile through
//      STS AssumeRole, or role_arn + web_identity_token_file;
//   3. AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (EKS's IRSA): STS
//      AssumeRoleWithWebIdentity, the token file read again at each refresh;
//   4. AWS_CONTAINER_CREDENTIALS_FULL_URI, or RELATIVE_URI under
//      http://169.254.170.2 (ECS, EKS Pod Identity), with
//      AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE);
//   5. EC2 IMDSv2 (AWS_EC2_METADATA_SERVICE_ENDPOINT, default
//      http://169.254.169.254), unless AWS_EC2_METADATA_DISABLED=true.
//
// Endpoints: AWS_ENDPOINT_URL_<SERVICE> (SAGEMAKER, STS, ECR,
// CLOUDWATCH_LOGS, S3), else AWS_ENDPOINT_URL, else AWS's own.
#ifndef LAUNCH_SRC_HTTP_AWS_CREDENTIALS_HPP
#define LAUNCH_SRC_HTTP_AWS_CREDENTIALS_HPP

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "http/sigv4.hpp"

namespace launch {
namespace http {

// A provider over a fetch function: it fetches once, then again when less
// than a quarter of the credentials' lifetime (at most 5 minutes) is left,
// so 2-second credentials are renewed every 1.5 s and hour-long ones 5
// minutes before they end. Credentials without an expiration are kept. A
// refresh that fails while the current credentials are still valid keeps
// them (with a warning) and tries again a second later.
class RefreshingAwsCredentials : public AwsCredentialsProvider {
 public:
  using Fetch = std::function<AwsCredentials()>;
  RefreshingAwsCredentials(std::string what, Fetch fetch)
      : what_(std::move(what)), fetch_(std::move(fetch)) {}
  AwsCredentials credentials() override;
  std::string describe() const override { return what_; }
  // How many times the credentials were fetched (tests).
  int fetches() const;

 private:
  std::string what_;
  Fetch fetch_;
  mutable std::mutex mutex_;
  std::optional<AwsCredentials> current_;
  std::chrono::system_clock::time_point refresh_at_;
  int fetches_ = 0;
};

// "sts", "SAGEMAKER"-style names: `env_name` is the AWS_ENDPOINT_URL_ suffix,
// `host_prefix` AWS's host ("api.sagemaker" -> https://api.sagemaker.R.amazonaws.com).
// Without a trailing slash.
std::string aws_endpoint(const std::string& env_name, const std::string& host_prefix,
                         const std::string& region);

// The region: AWS_REGION, AWS_DEFAULT_REGION, the profile's `region`, else
// `fallback`; Errc::invalid when none is known and there is no fallback.
std::string aws_region(const std::string& fallback = "");

// A profile's keys from the config and credentials files (credentials file
// wins), nullopt when neither has it.
std::optional<std::map<std::string, std::string>> aws_profile(const std::string& name);

// The profile named by AWS_PROFILE (else "default").
std::string aws_profile_name();

// The sources, each usable alone.
std::shared_ptr<AwsCredentialsProvider> aws_environment_credentials();  // nullptr when unset
std::shared_ptr<AwsCredentialsProvider> aws_profile_credentials(const std::string& profile);
std::shared_ptr<AwsCredentialsProvider> aws_web_identity_credentials(
    const std::string& role_arn, const std::string& token_file, const std::string& session_name);
std::shared_ptr<AwsCredentialsProvider> aws_assume_role_credentials(
    std::shared_ptr<AwsCredentialsProvider> source, const std::string& role_arn,
    const std::string& session_name, const std::string& external_id, int duration_seconds);
std::shared_ptr<AwsCredentialsProvider> aws_container_credentials();  // nullptr when unset
std::shared_ptr<AwsCredentialsProvider> aws_imds_credentials();

// The chain above. Errc::invalid naming every source tried when none has
// credentials (nothing is fetched until first use, but for the choice).
std::shared_ptr<AwsCredentialsProvider> default_aws_credentials();

// STS GetCallerIdentity: the account id of whoever `provider` is.
std::string aws_account_id(const std::shared_ptr<AwsCredentialsProvider>& provider,
                           const std::string& region);

// The text of the first <tag>…</tag> in an AWS XML answer, entities
// decoded; nullopt when absent.
std::optional<std::string> aws_xml_text(const std::string& xml, const std::string& tag);

// "2026-12-02T07:00:00Z" (fractions of seconds allowed) to a time point;
// Errc::invalid naming `what` otherwise, and for a time before 1970 or past
// limits::kMaxEpochSeconds (2200).
std::chrono::system_clock::time_point aws_parse_time(const std::string& text,
                                                     const std::string& what);

// Credentials from an answer: STS's XML (AssumeRole,
// AssumeRoleWithWebIdentity: AccessKeyId, SecretAccessKey, SessionToken,
// Expiration), or the JSON of the container and instance metadata
// endpoints (AccessKeyId, SecretAccessKey, Token, Expiration). Errc::io
// naming `what` when the keys are missing, Errc::invalid for bad JSON or a
// bad Expiration.
AwsCredentials aws_credentials_from_sts(const std::string& body, const std::string& what);
AwsCredentials aws_credentials_from_json(const std::string& body, const std::string& what);

}  // namespace http
}  // namespace launch

#endif
