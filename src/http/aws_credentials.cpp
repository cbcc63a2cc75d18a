#include "http/aws_credentials.hpp"

#include <time.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <set>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "launch/error.hpp"
#include "launch/log.hpp"
#include "util/json.hpp"
#include "util/fs.hpp"
#include "util/limits.hpp"
#include "util/user.hpp"

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

std::string home_file(const char* env_name, const char* rel) {
  std::string v = env(env_name);
  if (!v.empty()) return v;
  return util::home_directory() + "/" + rel;
}

// An INI file's sections: name -> key -> value. `config` strips the
// "profile " prefix ~/.aws/config puts on every section but [default].
std::map<std::string, std::map<std::string, std::string>> read_ini(const std::string& path,
                                                                   bool config) {
  std::map<std::string, std::map<std::string, std::string>> out;
  auto text = util::read_file(path);
  if (!text) return out;
  std::istringstream in(*text);
  std::string line, section;
  bool have = false;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    std::string t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t.front() == '[') {
      if (t.back() != ']') {
        throw Error(Errc::invalid, fmt::format("{}:{}: section header {:?} has no ']'", path, n, t));
      }
      section = trim(t.substr(1, t.size() - 2));
      if (config && section.rfind("profile ", 0) == 0) section = trim(section.substr(8));
      have = true;
      out[section];
      continue;
    }
    // Nested keys (an indented line under "s3 =") are not profile keys.
    if (line[0] == ' ' || line[0] == '\t') continue;
    auto eq = t.find('=');
    if (eq == std::string::npos || !have) continue;
    out[section][trim(t.substr(0, eq))] = trim(t.substr(eq + 1));
  }
  return out;
}

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out += '&';
    out += aws_uri_encode(k, false) + "=" + aws_uri_encode(v, false);
  }
  return out;
}

std::string xml_decode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    auto semi = s.find(';', i);
    std::string ent = semi == std::string::npos ? "" : s.substr(i + 1, semi - i - 1);
    if (ent == "amp") out += '&';
    else if (ent == "lt") out += '<';
    else if (ent == "gt") out += '>';
    else if (ent == "quot") out += '"';
    else if (ent == "apos") out += '\'';
    else {
      out += s[i];
      continue;
    }
    i = semi;
  }
  return out;
}

}  // namespace

AwsCredentials aws_credentials_from_sts(const std::string& body, const std::string& what) {
  AwsCredentials c;
  auto key = aws_xml_text(body, "AccessKeyId");
  auto secret = aws_xml_text(body, "SecretAccessKey");
  auto token = aws_xml_text(body, "SessionToken");
  auto expiration = aws_xml_text(body, "Expiration");
  if (!key || !secret) {
    throw Error(Errc::io, fmt::format("{}: the answer has no Credentials", what));
  }
  c.access_key_id = *key;
  c.secret_access_key = *secret;
  c.session_token = token.value_or("");
  if (expiration) c.expiration = aws_parse_time(*expiration, what + ": Expiration");
  return c;
}

namespace {

// One STS Query API call (POST, form body); `auth` null for the unsigned
// AssumeRoleWithWebIdentity.
std::string sts_call(const std::vector<std::pair<std::string, std::string>>& params,
                     const std::shared_ptr<AwsCredentialsProvider>& signer,
                     const std::string& region) {
  Request r;
  r.method = "POST";
  r.url = aws_endpoint("STS", "sts", region) + "/";
  r.headers.set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8");
  r.body = form_encode(params);
  if (signer) {
    SigV4Options o;
    o.region = region;
    o.service = "sts";
    r.auth = std::make_shared<SigV4Auth>(signer, o);
  }
  ClientOptions co;
  co.timeout_ms = 30000;
  Client client(co);
  Response resp = client.send(r, true);
  if (!resp.ok()) {
    // <ErrorResponse><Error><Code>…</Code><Message>…</Message>: both, not the XML.
    HttpError e = status_error(resp);
    std::string code = aws_xml_text(resp.body, "Code").value_or("");
    std::string message = aws_xml_text(resp.body, "Message").value_or(e.server_message());
    std::string said = code.empty() ? message : code + ": " + message;
    throw HttpError(e.code(),
                    fmt::format("STS {}: {} {}: HTTP {}: {}", params.front().second, resp.method,
                                resp.url, resp.status, said),
                    resp.method, resp.url, resp.status, said);
  }
  return resp.body;
}

}  // namespace

AwsCredentials aws_credentials_from_json(const std::string& body, const std::string& what) {
  auto doc = json::parse_object(body, what);
  AwsCredentials c;
  c.access_key_id = json::get_string(doc, "AccessKeyId", what);
  c.secret_access_key = json::get_string(doc, "SecretAccessKey", what);
  c.session_token = json::get_string(doc, "Token", what);
  if (c.access_key_id.empty() || c.secret_access_key.empty()) {
    throw Error(Errc::io, fmt::format("{}: no AccessKeyId or SecretAccessKey", what));
  }
  std::string exp = json::get_string(doc, "Expiration", what);
  if (!exp.empty()) c.expiration = aws_parse_time(exp, what + ": Expiration");
  return c;
}

namespace {

std::string session_name(const std::string& given) {
  if (!given.empty()) return given;
  std::string v = env("AWS_ROLE_SESSION_NAME");
  return v.empty() ? "launch-agent" : v;
}

}  // namespace

// ---- refreshing

AwsCredentials RefreshingAwsCredentials::credentials() {
  std::lock_guard<std::mutex> lock(mutex_);
  auto now = std::chrono::system_clock::now();
  if (current_ && (!current_->expiration || now < refresh_at_)) return *current_;
  AwsCredentials c;
  try {
    c = fetch_();
  } catch (const Error& e) {
    // Refreshing early leaves time to try again: the credentials in hand
    // still work until they expire.
    if (!current_ || !current_->expiration || now >= *current_->expiration) throw;
    log(LogLevel::warn, fmt::format("AWS credentials from {}: refresh failed, the current ones "
                                    "are good for {} s more: {}",
                                    what_,
                                    std::chrono::duration_cast<std::chrono::seconds>(
                                        *current_->expiration - now).count(),
                                    e.what()));
    refresh_at_ = std::min(*current_->expiration,
                           now + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                     std::chrono::seconds(1)));
    return *current_;
  }
  ++fetches_;
  if (c.expiration) {
    auto life = *c.expiration - now;
    auto margin = std::min<std::chrono::system_clock::duration>(life / 4, std::chrono::minutes(5));
    refresh_at_ = *c.expiration - margin;
  }
  current_ = c;
  return c;
}

int RefreshingAwsCredentials::fetches() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return fetches_;
}

// ---- endpoints, region, profiles

std::string aws_endpoint(const std::string& env_name, const std::string& host_prefix,
                         const std::string& region) {
  std::string url = env(("AWS_ENDPOINT_URL_" + env_name).c_str());
  if (url.empty()) url = env("AWS_ENDPOINT_URL");
  if (url.empty()) url = fmt::format("https://{}.{}.amazonaws.com", host_prefix, region);
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

std::string aws_profile_name() {
  std::string p = env("AWS_PROFILE");
  return p.empty() ? "default" : p;
}

std::optional<std::map<std::string, std::string>> aws_profile(const std::string& name) {
  auto config = read_ini(home_file("AWS_CONFIG_FILE", ".aws/config"), true);
  auto creds = read_ini(home_file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials"), false);
  auto c = config.find(name);
  auto k = creds.find(name);
  if (c == config.end() && k == creds.end()) return std::nullopt;
  std::map<std::string, std::string> out;
  if (c != config.end()) out = c->second;
  if (k != creds.end()) {
    for (const auto& [key, v] : k->second) out[key] = v;
  }
  return out;
}

std::string aws_region(const std::string& fallback) {
  std::string r = env("AWS_REGION");
  if (r.empty()) r = env("AWS_DEFAULT_REGION");
  if (r.empty()) {
    auto p = aws_profile(aws_profile_name());
    if (p && p->count("region")) r = p->at("region");
  }
  if (r.empty()) r = fallback;
  if (r.empty()) {
    throw Error(Errc::invalid,
                "no AWS region: set AWS_REGION, the profile's region, or the queue config's "
                "region");
  }
  return r;
}

std::optional<std::string> aws_xml_text(const std::string& xml, const std::string& tag) {
  std::string open = "<" + tag + ">";
  auto b = xml.find(open);
  if (b == std::string::npos) return std::nullopt;
  b += open.size();
  auto e = xml.find("</" + tag + ">", b);
  if (e == std::string::npos) return std::nullopt;
  return xml_decode(xml.substr(b, e - b));
}

std::chrono::system_clock::time_point aws_parse_time(const std::string& text,
                                                     const std::string& what) {
  struct tm tm {};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) {
    throw Error(Errc::invalid, fmt::format("{}: {:?} is not an ISO 8601 time", what, text));
  }
  time_t t = timegm(&tm);
  if (t < 0 || t > static_cast<time_t>(limits::kMaxEpochSeconds)) {
    throw Error(Errc::invalid, fmt::format("{}: {:?} is before 1970 or after 2199", what, text));
  }
  return std::chrono::system_clock::from_time_t(t);
}

// ---- the sources

std::shared_ptr<AwsCredentialsProvider> aws_environment_credentials() {
  AwsCredentials c;
  c.access_key_id = env("AWS_ACCESS_KEY_ID");
  c.secret_access_key = env("AWS_SECRET_ACCESS_KEY");
  c.session_token = env("AWS_SESSION_TOKEN");
  if (c.access_key_id.empty() && c.secret_access_key.empty()) return nullptr;
  if (c.access_key_id.empty() || c.secret_access_key.empty()) {
    throw Error(Errc::invalid, fmt::format("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be "
                                           "set together; only {} is",
                                           c.access_key_id.empty() ? "AWS_SECRET_ACCESS_KEY"
                                                                   : "AWS_ACCESS_KEY_ID"));
  }
  return std::make_shared<StaticAwsCredentials>(c, "environment (AWS_ACCESS_KEY_ID)");
}

std::shared_ptr<AwsCredentialsProvider> aws_assume_role_credentials(
    std::shared_ptr<AwsCredentialsProvider> source, const std::string& role_arn,
    const std::string& session, const std::string& external_id, int duration_seconds) {
  std::string name = session_name(session);
  std::string what = "STS AssumeRole " + role_arn;
  return std::make_shared<RefreshingAwsCredentials>(what, [=]() {
    std::vector<std::pair<std::string, std::string>> p = {
        {"Action", "AssumeRole"}, {"Version", "2011-06-15"}, {"RoleArn", role_arn},
        {"RoleSessionName", name}};
    if (duration_seconds > 0) p.emplace_back("DurationSeconds", std::to_string(duration_seconds));
    if (!external_id.empty()) p.emplace_back("ExternalId", external_id);
    return aws_credentials_from_sts(sts_call(p, source, aws_region("us-east-1")), what);
  });
}

std::shared_ptr<AwsCredentialsProvider> aws_web_identity_credentials(
    const std::string& role_arn, const std::string& token_file, const std::string& session) {
  std::string name = session_name(session);
  std::string what = "STS AssumeRoleWithWebIdentity " + role_arn;
  return std::make_shared<RefreshingAwsCredentials>(what, [=]() {
    auto token = util::read_file(token_file);
    if (!token) {
      throw Error(Errc::io, fmt::format("{}: cannot read the web identity token file {}", what,
                                        token_file));
    }
    std::vector<std::pair<std::string, std::string>> p = {
        {"Action", "AssumeRoleWithWebIdentity"}, {"Version", "2011-06-15"},
        {"RoleArn", role_arn}, {"RoleSessionName", name}, {"WebIdentityToken", trim(*token)}};
    return aws_credentials_from_sts(sts_call(p, nullptr, aws_region("us-east-1")), what);
  });
}

std::shared_ptr<AwsCredentialsProvider> aws_profile_credentials(const std::string& profile) {
  std::set<std::string> seen;
  std::function<std::shared_ptr<AwsCredentialsProvider>(const std::string&)> resolve =
      [&](const std::string& name) -> std::shared_ptr<AwsCredentialsProvider> {
    if (!seen.insert(name).second) {
      throw Error(Errc::invalid,
                  fmt::format("AWS profile {:?}: source_profile makes a loop", name));
    }
    auto p = aws_profile(name);
    if (!p) {
      throw Error(Errc::invalid, fmt::format("AWS profile {:?} is in neither {} nor {}", name,
                                             home_file("AWS_CONFIG_FILE", ".aws/config"),
                                             home_file("AWS_SHARED_CREDENTIALS_FILE",
                                                       ".aws/credentials")));
    }
    auto get = [&](const char* k) {
      auto it = p->find(k);
      return it == p->end() ? std::string() : it->second;
    };
    std::string role = get("role_arn");
    if (!role.empty()) {
      std::string session = get("role_session_name");
      if (!get("web_identity_token_file").empty()) {
        return aws_web_identity_credentials(role, get("web_identity_token_file"), session);
      }
      std::string source = get("source_profile");
      if (source.empty()) {
        throw Error(Errc::invalid,
                    fmt::format("AWS profile {:?}: role_arn needs source_profile or "
                                "web_identity_token_file",
                                name));
      }
      // A profile that is its own source uses its own keys.
      std::shared_ptr<AwsCredentialsProvider> base;
      if (source == name) {
        AwsCredentials c{get("aws_access_key_id"), get("aws_secret_access_key"),
                         get("aws_session_token"), std::nullopt};
        base = std::make_shared<StaticAwsCredentials>(c, "profile " + name);
      } else {
        base = resolve(source);
      }
      int duration = 0;
      std::string d = get("duration_seconds");
      if (!d.empty()) {
        char* end = nullptr;
        long v = std::strtol(d.c_str(), &end, 10);
        if (*end != '\0' || v < 900 || v > 43200) {
          throw Error(Errc::invalid,
                      fmt::format("AWS profile {:?}: duration_seconds {:?} must be 900..43200",
                                  name, d));
        }
        duration = static_cast<int>(v);
      }
      return aws_assume_role_credentials(base, role, session, get("external_id"), duration);
    }
    AwsCredentials c{get("aws_access_key_id"), get("aws_secret_access_key"),
                     get("aws_session_token"), std::nullopt};
    if (c.access_key_id.empty() || c.secret_access_key.empty()) {
      throw Error(Errc::invalid,
                  fmt::format("AWS profile {:?} has no aws_access_key_id and "
                              "aws_secret_access_key, and no role_arn",
                              name));
    }
    return std::make_shared<StaticAwsCredentials>(c, "profile " + name);
  };
  return resolve(profile);
}

std::shared_ptr<AwsCredentialsProvider> aws_container_credentials() {
  std::string url = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  std::string rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  if (url.empty() && rel.empty()) return nullptr;
  if (url.empty()) url = "http://169.254.170.2" + rel;
  std::string what = "container credentials " + url;
  return std::make_shared<RefreshingAwsCredentials>(what, [url, what]() {
    Request r;
    r.url = url;
    std::string token = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    std::string token_file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    if (!token_file.empty()) {
      auto t = util::read_file(token_file);
      if (!t) throw Error(Errc::io, fmt::format("{}: cannot read {}", what, token_file));
      token = trim(*t);
    }
    if (!token.empty()) r.headers.set("Authorization", token);
    ClientOptions co;
    co.timeout_ms = 10000;
    Client client(co);
    return aws_credentials_from_json(client.send(r).body, what);
  });
}

std::shared_ptr<AwsCredentialsProvider> aws_imds_credentials() {
  std::string base = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
  if (base.empty()) base = "http://169.254.169.254";
  while (!base.empty() && base.back() == '/') base.pop_back();
  std::string what = "EC2 instance metadata " + base;
  return std::make_shared<RefreshingAwsCredentials>(what, [base, what]() {
    ClientOptions co;
    co.timeout_ms = 5000;
    co.connect_timeout_ms = 2000;
    Client client(co);
    Request t;
    t.method = "PUT";
    t.url = base + "/latest/api/token";
    t.headers.set("X-aws-ec2-metadata-token-ttl-seconds", "21600");
    std::string token = client.send(t).body;
    Request r;
    r.url = base + "/latest/meta-data/iam/security-credentials/";
    r.headers.set("X-aws-ec2-metadata-token", token);
    std::string role = trim(client.send(r).body);
    role = role.substr(0, role.find('\n'));
    if (role.empty()) throw Error(Errc::io, what + ": the instance has no IAM role");
    r.url += role;
    return aws_credentials_from_json(client.send(r).body, what + " role " + role);
  });
}

std::shared_ptr<AwsCredentialsProvider> default_aws_credentials() {
  if (auto e = aws_environment_credentials()) return e;
  std::string profile = aws_profile_name();
  if (!env("AWS_PROFILE").empty()) return aws_profile_credentials(profile);
  // The default profile counts when it has credentials; one with only a
  // region (common on EKS and EC2) leaves the rest of the chain to find them.
  auto p = aws_profile(profile);
  if (p && (p->count("aws_access_key_id") || p->count("role_arn"))) {
    return aws_profile_credentials(profile);
  }
  std::string token_file = env("AWS_WEB_IDENTITY_TOKEN_FILE");
  std::string role = env("AWS_ROLE_ARN");
  if (!token_file.empty() && !role.empty()) {
    return aws_web_identity_credentials(role, token_file, "");
  }
  if (auto c = aws_container_credentials()) return c;
  std::string disabled = env("AWS_EC2_METADATA_DISABLED");
  std::transform(disabled.begin(), disabled.end(), disabled.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  if (disabled != "true") return aws_imds_credentials();
  throw Error(Errc::invalid,
              "no AWS credentials: tried AWS_ACCESS_KEY_ID, the profile " + profile +
                  " in ~/.aws, AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, "
                  "AWS_CONTAINER_CREDENTIALS_*_URI (EC2 metadata is disabled)");
}

std::string aws_account_id(const std::shared_ptr<AwsCredentialsProvider>& provider,
                           const std::string& region) {
  std::string body =
      sts_call({{"Action", "GetCallerIdentity"}, {"Version", "2011-06-15"}}, provider, region);
  auto account = aws_xml_text(body, "Account");
  if (!account || account->empty()) {
    throw Error(Errc::io, "STS GetCallerIdentity: the answer has no Account");
  }
  return *account;
}

}  // namespace http
}  // namespace launch
