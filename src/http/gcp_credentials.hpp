// Internal: Google Cloud credentials as an http::Auth, found the way
// Google's client libraries find Application Default Credentials, each
// source's access token cached and refreshed before it expires (a
// long-running agent outlives any one token).
//
// The chain, first match wins (default_gcp_credentials):
//   1. GOOGLE_APPLICATION_CREDENTIALS, a JSON key file;
//   2. gcloud's ADC file: $CLOUDSDK_CONFIG/application_default_credentials.json,
//      else ~/.config/gcloud/application_default_credentials.json;
//   3. the GCE/GKE metadata server (GCE_METADATA_HOST, default
//      metadata.google.internal), header Metadata-Flavor: Google.
//
// A key file is either
//   - "type": "service_account": an RS256 JWT (iss = client_email, scope,
//     aud = token_uri, iat, exp), signed with private_key through OpenSSL
//     and exchanged at token_uri (default https://oauth2.googleapis.com/token)
//     with grant_type urn:ietf:params:oauth:grant-type:jwt-bearer; the
//     project is its project_id;
//   - "type": "authorized_user" (gcloud auth application-default login):
//     client_id, client_secret and refresh_token, exchanged at token_uri
//     with grant_type refresh_token; the project is its quota_project_id.
// The metadata server gives a token at
// /computeMetadata/v1/instance/service-accounts/default/token and the
// project at /computeMetadata/v1/project/project-id.
#ifndef LAUNCH_SRC_HTTP_GCP_CREDENTIALS_HPP
#define LAUNCH_SRC_HTTP_GCP_CREDENTIALS_HPP

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "http/auth.hpp"

namespace launch {
namespace http {

constexpr const char* kGcpCloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform";
constexpr const char* kGcpDefaultTokenUri = "https://oauth2.googleapis.com/token";

struct GcpToken {
  std::string access_token;
  std::chrono::system_clock::time_point expires;
};

// Authorization: Bearer <token>, the token fetched once and again when less
// than a quarter of its lifetime (at most 5 minutes) is left: a 2-second
// token is renewed after 1.5 s, an hour-long one 5 minutes before it ends.
// A refresh that fails while the token in hand is still valid keeps it
// (with a warning) and tries again a second later. Thread-safe.
class GcpCredentials : public Auth {
 public:
  using Fetch = std::function<GcpToken()>;
  using ProjectLookup = std::function<std::string()>;
  // `what` names the source in errors ("service account key /path (a@b)").
  // `project` is the source's project, or "" with `lookup` asked for it on
  // first use (the metadata server).
  GcpCredentials(std::string what, Fetch fetch, std::string project,
                 ProjectLookup lookup = {});
  void apply(Outgoing& request) const override;
  std::string token() const;
  // The source's project, "" when it has none.
  std::string project() const;
  const std::string& describe() const { return what_; }
  // How many tokens were fetched (tests).
  int fetches() const;

 private:
  std::string what_;
  Fetch fetch_;
  ProjectLookup lookup_;
  mutable std::mutex mutex_;
  mutable std::optional<GcpToken> current_;
  mutable std::chrono::system_clock::time_point refresh_at_;
  mutable int fetches_ = 0;
  mutable std::string project_;
  mutable bool project_known_ = false;
};

// The credentials of a key file (service_account or authorized_user).
// Errc::invalid naming the file and the field for a missing or malformed
// one (an unreadable file is Errc::io); nothing is fetched until first use.
std::shared_ptr<GcpCredentials> gcp_key_file_credentials(const std::string& path);

// The metadata server's default service account. `tried` (what was looked
// for before it) starts the name its errors give it.
std::shared_ptr<GcpCredentials> gcp_metadata_credentials(const std::string& tried = "");

// gcloud's ADC file path ($CLOUDSDK_CONFIG or ~/.config/gcloud).
std::string gcp_adc_path();

// The chain above. Errc::invalid when GOOGLE_APPLICATION_CREDENTIALS names
// a file that is missing; the metadata server is the last resort.
std::shared_ptr<GcpCredentials> default_gcp_credentials();

// The RS256 JWT a service account exchanges for a token: header
// {"alg":"RS256","typ":"JWT","kid":key_id}, claims iss, scope, aud, iat,
// exp = iat + 3600. Errc::invalid naming `what` for a key that is not an
// RSA private key in PEM; Errc::unsupported in a build without OpenSSL.
std::string gcp_service_account_jwt(const std::string& private_key_pem,
                                    const std::string& key_id, const std::string& client_email,
                                    const std::string& scope, const std::string& audience,
                                    std::chrono::system_clock::time_point now,
                                    const std::string& what);

}  // namespace http
}  // namespace launch

#endif
