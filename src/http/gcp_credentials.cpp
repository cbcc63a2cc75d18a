#include "http/gcp_credentials.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "launch/error.hpp"
#include "launch/features.h"
#include "launch/log.hpp"
#include "util/base64.hpp"
#include "util/fs.hpp"
#include "util/json.hpp"
#include "util/user.hpp"

#if LAUNCH_FEATURE_OPENSSL
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#endif

namespace launch {
namespace http {

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

std::string trim(const std::string& s) {
  std::size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  std::size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out += '&';
    out += url_encode(k) + "=" + url_encode(v);
  }
  return out;
}

// An OAuth 2.0 token answer ({"access_token", "expires_in", "token_type"}),
// from a token endpoint or the metadata server.
GcpToken token_from_answer(const std::string& body, const std::string& what) {
  auto doc = json::parse_object(body, what);
  GcpToken t;
  t.access_token = json::get_string(doc, "access_token", what);
  if (t.access_token.empty()) {
    throw Error(Errc::io, fmt::format("{}: the answer has no access_token", what));
  }
  auto expires_in = json::get_optional_int(doc, "expires_in", what);
  if (!expires_in || *expires_in <= 0) {
    throw Error(Errc::io, fmt::format("{}: the answer's expires_in is missing or not positive",
                                      what));
  }
  t.expires = std::chrono::system_clock::now() + std::chrono::seconds(*expires_in);
  return t;
}

// POSTs a form to an OAuth token endpoint. OAuth's errors
// ({"error": "invalid_grant", "error_description": "..."}) are quoted.
GcpToken token_exchange(const std::string& token_uri,
                        const std::vector<std::pair<std::string, std::string>>& form,
                        const std::string& what) {
  Request r;
  r.method = "POST";
  r.url = token_uri;
  r.headers.set("Content-Type", "application/x-www-form-urlencoded");
  r.body = form_encode(form);
  ClientOptions co;
  co.timeout_ms = 30000;
  Client client(co);
  Response resp = client.send(r, true);
  if (!resp.ok()) {
    std::string said = server_message(resp.body);
    rapidjson::Document d;
    d.Parse(resp.body.c_str());
    if (!d.HasParseError() && d.IsObject() && d.HasMember("error") && d["error"].IsString()) {
      said = d["error"].GetString();
      if (d.HasMember("error_description") && d["error_description"].IsString()) {
        said += std::string(": ") + d["error_description"].GetString();
      }
    }
    throw HttpError(errc_for_status(resp.status),
                    fmt::format("{}: POST {}: HTTP {}: {}", what, resp.url, resp.status, said),
                    resp.method, resp.url, resp.status, said);
  }
  return token_from_answer(resp.body, what + ": the token answer");
}

// A key file's string field; `required` ones must be there and non-empty.
std::string key_field(const json::Value& doc, const char* key, const std::string& path,
                      bool required) {
  auto it = doc.FindMember(key);
  if (it == doc.MemberEnd() || it->value.IsNull()) {
    if (required) throw Error(Errc::invalid, fmt::format("{}: {} is missing", path, key));
    return "";
  }
  if (!it->value.IsString()) {
    throw Error(Errc::invalid, fmt::format("{}: {} must be a string, not {}", path, key,
                                           json::type_name(it->value)));
  }
  std::string v = it->value.GetString();
  if (required && v.empty()) throw Error(Errc::invalid, fmt::format("{}: {} is empty", path, key));
  return v;
}

std::string metadata_base() {
  std::string host = env("GCE_METADATA_HOST");
  if (host.empty()) host = "metadata.google.internal";
  while (!host.empty() && host.back() == '/') host.pop_back();
  if (host.find("://") == std::string::npos) host = "http://" + host;
  return host;
}

std::string metadata_get(const std::string& path, const std::string& what) {
  Request r;
  r.url = metadata_base() + path;
  r.headers.set("Metadata-Flavor", "Google");
  ClientOptions co;
  co.timeout_ms = 5000;
  co.connect_timeout_ms = 2000;
  Client client(co);
  try {
    return client.send(r).body;
  } catch (const HttpError& e) {
    throw HttpError(e.code(), what + ": " + e.what(), e.method(), e.url(), e.status(),
                    e.server_message());
  }
}

}  // namespace

// ---- the cache

GcpCredentials::GcpCredentials(std::string what, Fetch fetch, std::string project,
                               ProjectLookup lookup)
    : what_(std::move(what)),
      fetch_(std::move(fetch)),
      lookup_(std::move(lookup)),
      project_(std::move(project)),
      project_known_(!lookup_) {}

void GcpCredentials::apply(Outgoing& request) const {
  request.headers.set("Authorization", "Bearer " + token());
}

std::string GcpCredentials::token() const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto now = std::chrono::system_clock::now();
  if (current_ && now < refresh_at_) return current_->access_token;
  GcpToken t;
  try {
    t = fetch_();
  } catch (const Error& e) {
    // Refreshing early leaves time to try again: the token in hand still
    // works until it expires.
    if (!current_ || now >= current_->expires) throw;
    log(LogLevel::warn,
        fmt::format("GCP credentials from {}: refresh failed, the current token is good for {} "
                    "s more: {}",
                    what_,
                    std::chrono::duration_cast<std::chrono::seconds>(current_->expires - now)
                        .count(),
                    e.what()));
    refresh_at_ = std::min(current_->expires,
                           now + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                     std::chrono::seconds(1)));
    return current_->access_token;
  }
  ++fetches_;
  auto life = t.expires - now;
  auto margin = std::min<std::chrono::system_clock::duration>(life / 4, std::chrono::minutes(5));
  refresh_at_ = t.expires - margin;
  current_ = t;
  return t.access_token;
}

std::string GcpCredentials::project() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!project_known_) {
    project_ = trim(lookup_());
    project_known_ = true;
  }
  return project_;
}

int GcpCredentials::fetches() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return fetches_;
}

// ---- the JWT

std::string gcp_service_account_jwt(const std::string& private_key_pem,
                                    const std::string& key_id, const std::string& client_email,
                                    const std::string& scope, const std::string& audience,
                                    std::chrono::system_clock::time_point now,
                                    const std::string& what) {
#if LAUNCH_FEATURE_OPENSSL
  rapidjson::Document header(rapidjson::kObjectType);
  auto& ha = header.GetAllocator();
  header.AddMember("alg", "RS256", ha);
  header.AddMember("typ", "JWT", ha);
  if (!key_id.empty()) header.AddMember("kid", json::str(key_id, ha), ha);
  std::int64_t iat = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  rapidjson::Document claims(rapidjson::kObjectType);
  auto& ca = claims.GetAllocator();
  claims.AddMember("iss", json::str(client_email, ca), ca);
  claims.AddMember("scope", json::str(scope, ca), ca);
  claims.AddMember("aud", json::str(audience, ca), ca);
  claims.AddMember("iat", iat, ca);
  claims.AddMember("exp", iat + 3600, ca);
  std::string input = util::base64url_encode(json::dump(header)) + "." +
                      util::base64url_encode(json::dump(claims));

  BIO* bio = BIO_new_mem_buf(private_key_pem.data(), static_cast<int>(private_key_pem.size()));
  if (bio == nullptr) throw Error(Errc::internal, what + ": out of memory");
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (key == nullptr) {
    throw Error(Errc::invalid, fmt::format("{}: private_key is not a PEM private key", what));
  }
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key_guard(key, EVP_PKEY_free);
  if (EVP_PKEY_base_id(key) != EVP_PKEY_RSA) {
    throw Error(Errc::invalid, fmt::format("{}: private_key is not an RSA key (RS256 needs one)",
                                           what));
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  std::size_t size = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSignUpdate(ctx.get(), input.data(), input.size()) != 1 ||
      EVP_DigestSignFinal(ctx.get(), nullptr, &size) != 1) {
    throw Error(Errc::invalid, fmt::format("{}: signing with private_key failed", what));
  }
  std::string sig(size, '\0');
  if (EVP_DigestSignFinal(ctx.get(), reinterpret_cast<unsigned char*>(&sig[0]), &size) != 1) {
    throw Error(Errc::invalid, fmt::format("{}: signing with private_key failed", what));
  }
  sig.resize(size);
  return input + "." + util::base64url_encode(sig);
#else
  (void)private_key_pem;
  (void)key_id;
  (void)client_email;
  (void)scope;
  (void)audience;
  (void)now;
  throw Error(Errc::unsupported,
              fmt::format("{}: service account keys are signed with OpenSSL, and this build has "
                          "none (LAUNCH_WITH_OPENSSL=OFF)",
                          what));
#endif
}

// ---- the sources

std::shared_ptr<GcpCredentials> gcp_key_file_credentials(const std::string& path) {
  auto text = util::read_file(path);
  if (!text) throw Error(Errc::io, fmt::format("GCP key file {}: cannot read it", path));
  json::Document doc = json::parse_object(*text, "GCP key file " + path);
  std::string type = key_field(doc, "type", path, true);
  std::string token_uri = key_field(doc, "token_uri", path, false);
  if (token_uri.empty()) token_uri = kGcpDefaultTokenUri;
  if (type == "service_account") {
    std::string email = key_field(doc, "client_email", path, true);
    std::string key = key_field(doc, "private_key", path, true);
    std::string key_id = key_field(doc, "private_key_id", path, false);
    std::string project = key_field(doc, "project_id", path, false);
    std::string what = fmt::format("service account key {} ({})", path, email);
    return std::make_shared<GcpCredentials>(
        what,
        [=]() {
          std::string jwt = gcp_service_account_jwt(key, key_id, email, kGcpCloudPlatformScope,
                                                     token_uri, std::chrono::system_clock::now(),
                                                     what);
          return token_exchange(token_uri,
                                {{"grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"},
                                 {"assertion", jwt}},
                                what);
        },
        project);
  }
  if (type == "authorized_user") {
    std::string client_id = key_field(doc, "client_id", path, true);
    std::string secret = key_field(doc, "client_secret", path, true);
    std::string refresh = key_field(doc, "refresh_token", path, true);
    std::string project = key_field(doc, "quota_project_id", path, false);
    std::string what = fmt::format("authorized user credentials {} (client {})", path, client_id);
    return std::make_shared<GcpCredentials>(
        what,
        [=]() {
          return token_exchange(token_uri,
                                {{"grant_type", "refresh_token"},
                                 {"client_id", client_id},
                                 {"client_secret", secret},
                                 {"refresh_token", refresh}},
                                what);
        },
        project);
  }
  throw Error(Errc::invalid,
              fmt::format("{}: type {:?} is not supported (service_account or authorized_user)",
                          path, type));
}

std::shared_ptr<GcpCredentials> gcp_metadata_credentials(const std::string& tried) {
  std::string what = "the GCE metadata server " + metadata_base();
  if (!tried.empty()) what = tried + ", so " + what;
  return std::make_shared<GcpCredentials>(
      what,
      [what]() {
        return token_from_answer(
            metadata_get("/computeMetadata/v1/instance/service-accounts/default/token", what),
            what + ": the token answer");
      },
      "", [what]() { return metadata_get("/computeMetadata/v1/project/project-id", what); });
}

std::string gcp_adc_path() {
  std::string dir = env("CLOUDSDK_CONFIG");
  if (dir.empty()) dir = util::home_directory() + "/.config/gcloud";
  return dir + "/application_default_credentials.json";
}

std::shared_ptr<GcpCredentials> default_gcp_credentials() {
  std::string named = env("GOOGLE_APPLICATION_CREDENTIALS");
  if (!named.empty()) {
    std::error_code ec;
    if (!std::filesystem::exists(named, ec)) {
      throw Error(Errc::invalid,
                  fmt::format("GOOGLE_APPLICATION_CREDENTIALS names {}, which does not exist",
                              named));
    }
    return gcp_key_file_credentials(named);
  }
  std::string adc = gcp_adc_path();
  std::error_code ec;
  if (std::filesystem::exists(adc, ec)) return gcp_key_file_credentials(adc);
  return gcp_metadata_credentials(
      fmt::format("no GCP key file (GOOGLE_APPLICATION_CREDENTIALS is unset, {} does not exist)",
                  adc));
}

}  // namespace http
}  // namespace launch
