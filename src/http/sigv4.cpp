#include "http/sigv4.hpp"

#include <time.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "launch/error.hpp"
#include "util/sha256.hpp"
#include "util/url.hpp"

namespace launch {
namespace http {

namespace {

constexpr const char* kAlgorithm = "AWS4-HMAC-SHA256";
constexpr const char* kUnsignedPayload = "UNSIGNED-PAYLOAD";

struct UrlParts {
  std::string scheme;
  std::string authority;  // host[:port], the default port dropped
  std::string path;       // "/" at least
  std::string query;      // without '?'
  std::string prefix;     // scheme://authority as written
};

UrlParts split_url(const std::string& url) {
  UrlParts u;
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) {
    throw Error(Errc::invalid, fmt::format("SigV4: URL {:?} has no scheme", url));
  }
  u.scheme = url.substr(0, scheme_end);
  std::transform(u.scheme.begin(), u.scheme.end(), u.scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::size_t host_start = scheme_end + 3;
  std::size_t path_start = url.find_first_of("/?#", host_start);
  if (path_start == std::string::npos) path_start = url.size();
  u.prefix = url.substr(0, path_start);
  std::string authority = url.substr(host_start, path_start - host_start);
  auto at = authority.rfind('@');
  if (at != std::string::npos) authority = authority.substr(at + 1);
  auto colon = authority.rfind(':');
  if (colon != std::string::npos && authority.find(']', colon) == std::string::npos) {
    std::string port = authority.substr(colon + 1);
    if ((u.scheme == "https" && port == "443") || (u.scheme == "http" && port == "80") ||
        port.empty()) {
      authority = authority.substr(0, colon);
    }
  }
  std::transform(authority.begin(), authority.end(), authority.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  u.authority = authority;
  std::string rest = url.substr(path_start);
  auto hash = rest.find('#');
  if (hash != std::string::npos) rest = rest.substr(0, hash);
  auto q = rest.find('?');
  if (q != std::string::npos) {
    u.query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  u.path = rest.empty() ? "/" : rest;
  return u;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 && hex_value(text[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

// RFC 3986 section 5.2.4, plus repeated slashes collapsed; a trailing slash
// stays.
std::string normalize_path(const std::string& path) {
  std::vector<std::string> segments;
  std::size_t i = 0;
  bool trailing = false;
  while (i <= path.size()) {
    std::size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string seg = path.substr(i, j - i);
    bool last = j == path.size();
    if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
      trailing = last;
    } else if (seg == "." || seg.empty()) {
      trailing = last;
    } else {
      segments.push_back(seg);
      trailing = false;
    }
    i = j + 1;
  }
  std::string out;
  for (const auto& s : segments) out += "/" + s;
  if (out.empty()) return "/";
  if (trailing) out += "/";
  return out;
}

std::string canonical_path(const std::string& path, const SigV4Options& options) {
  std::string p = options.normalize_path ? normalize_path(path) : path;
  return options.double_encode_path ? aws_uri_encode(p, true) : p;
}

using Params = std::vector<std::pair<std::string, std::string>>;

// Query parameters, each decoded then encoded the SigV4 way, sorted.
std::string canonical_query(const std::string& query, const Params& extra) {
  Params params;
  std::size_t i = 0;
  while (i < query.size()) {
    std::size_t j = query.find('&', i);
    if (j == std::string::npos) j = query.size();
    std::string pair = query.substr(i, j - i);
    if (!pair.empty()) {
      auto eq = pair.find('=');
      std::string k = pair.substr(0, eq);
      std::string v = eq == std::string::npos ? "" : pair.substr(eq + 1);
      params.emplace_back(aws_uri_encode(percent_decode(k), false),
                          aws_uri_encode(percent_decode(v), false));
    }
    i = j + 1;
  }
  for (const auto& [k, v] : extra) {
    params.emplace_back(aws_uri_encode(k, false), aws_uri_encode(v, false));
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out += '&';
    out += k + "=" + v;
  }
  return out;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Trimmed, each run of whitespace (folded lines too) one space.
std::string canonical_value(const std::string& value) {
  std::string out;
  bool space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

bool unsigned_header(const std::string& lower_name) {
  return lower_name == "authorization" || lower_name == "user-agent" || lower_name == "expect" ||
         lower_name == "x-amzn-trace-id";
}

struct CanonicalHeaders {
  std::string text;    // "name:value\n" for each
  std::string signed_;  // "a;b;c"
};

CanonicalHeaders canonical_headers(const Headers& headers, const std::string& authority) {
  std::map<std::string, std::string> joined;
  for (const auto& [name, value] : headers.fields()) {
    std::string n = lower(name);
    if (unsigned_header(n)) continue;
    auto it = joined.find(n);
    std::string v = canonical_value(value);
    if (it == joined.end()) {
      joined.emplace(n, v);
    } else {
      it->second += "," + v;
    }
  }
  if (joined.find("host") == joined.end()) joined.emplace("host", authority);
  CanonicalHeaders c;
  for (const auto& [n, v] : joined) {
    c.text += n + ":" + v + "\n";
    if (!c.signed_.empty()) c.signed_ += ';';
    c.signed_ += n;
  }
  return c;
}

std::string amz_date(std::chrono::system_clock::time_point now) {
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string payload_hash(const Outgoing& request) {
  return request.body == nullptr ? kUnsignedPayload : sha256_hex(*request.body);
}

void check(const AwsCredentials& c, const SigV4Options& o) {
  if (c.access_key_id.empty() || c.secret_access_key.empty()) {
    throw Error(Errc::invalid, "SigV4: the AWS credentials have no access key id or secret key");
  }
  if (o.region.empty() || o.service.empty()) {
    throw Error(Errc::invalid, "SigV4: region and service must be set");
  }
}

SigV4Result finish(const std::string& canonical_request, const std::string& date,
                   const std::string& scope, const AwsCredentials& credentials,
                   const SigV4Options& options) {
  SigV4Result r;
  r.canonical_request = canonical_request;
  r.string_to_sign =
      fmt::format("{}\n{}\n{}\n{}", kAlgorithm, date, scope, sha256_hex(canonical_request));
  std::string day = date.substr(0, 8);
  std::string k = hmac_sha256("AWS4" + credentials.secret_access_key, day);
  k = hmac_sha256(k, options.region);
  k = hmac_sha256(k, options.service);
  k = hmac_sha256(k, "aws4_request");
  r.signature = hex(hmac_sha256(k, r.string_to_sign));
  return r;
}

}  // namespace

std::string aws_uri_encode(const std::string& text, bool keep_slash) {
  if (!keep_slash) return util::percent_encode(text);
  std::string out;
  std::size_t start = 0;
  for (std::size_t slash; (slash = text.find('/', start)) != std::string::npos; start = slash + 1) {
    out += util::percent_encode(text.substr(start, slash - start)) + "/";
  }
  return out + util::percent_encode(text.substr(start));
}

SigV4Options s3_sigv4_options(const std::string& region) {
  SigV4Options o;
  o.region = region;
  o.service = "s3";
  o.sign_body = true;
  o.normalize_path = false;
  o.double_encode_path = false;
  return o;
}

SigV4Result sigv4_sign(Outgoing& request, const AwsCredentials& credentials,
                       const SigV4Options& options, std::chrono::system_clock::time_point now) {
  check(credentials, options);
  UrlParts url = split_url(request.url);
  std::string date = amz_date(now);
  std::string scope =
      fmt::format("{}/{}/{}/aws4_request", date.substr(0, 8), options.region, options.service);
  std::string hash = payload_hash(request);

  request.headers.remove("Authorization");
  request.headers.set("X-Amz-Date", date);
  if (options.sign_body) request.headers.set("x-amz-content-sha256", hash);
  bool token = !credentials.session_token.empty();
  if (token && !options.omit_session_token) {
    request.headers.set("X-Amz-Security-Token", credentials.session_token);
  } else {
    request.headers.remove("X-Amz-Security-Token");
  }

  CanonicalHeaders h = canonical_headers(request.headers, url.authority);
  std::string canonical = fmt::format("{}\n{}\n{}\n{}\n{}\n{}", request.method,
                                      canonical_path(url.path, options),
                                      canonical_query(url.query, {}), h.text, h.signed_, hash);
  SigV4Result r = finish(canonical, date, scope, credentials, options);
  request.headers.set("Authorization",
                      fmt::format("{} Credential={}/{}, SignedHeaders={}, Signature={}",
                                  kAlgorithm, credentials.access_key_id, scope, h.signed_,
                                  r.signature));
  if (token && options.omit_session_token) {
    request.headers.set("X-Amz-Security-Token", credentials.session_token);
  }
  return r;
}

SigV4Result sigv4_presign(Outgoing& request, const AwsCredentials& credentials,
                          const SigV4Options& options, std::chrono::system_clock::time_point now,
                          std::chrono::seconds expires) {
  check(credentials, options);
  UrlParts url = split_url(request.url);
  std::string date = amz_date(now);
  std::string scope =
      fmt::format("{}/{}/{}/aws4_request", date.substr(0, 8), options.region, options.service);
  CanonicalHeaders h = canonical_headers(request.headers, url.authority);

  Params extra = {{"X-Amz-Algorithm", kAlgorithm},
                  {"X-Amz-Credential", credentials.access_key_id + "/" + scope},
                  {"X-Amz-Date", date},
                  {"X-Amz-Expires", std::to_string(expires.count())}};
  bool token = !credentials.session_token.empty();
  if (token && !options.omit_session_token) {
    extra.emplace_back("X-Amz-Security-Token", credentials.session_token);
  }
  extra.emplace_back("X-Amz-SignedHeaders", h.signed_);
  // A presigned URL is used by whoever holds it, with a body this signer
  // may never see: S3 takes UNSIGNED-PAYLOAD for that.
  std::string hash = options.service == "s3" ? kUnsignedPayload : payload_hash(request);
  std::string canonical = fmt::format("{}\n{}\n{}\n{}\n{}\n{}", request.method,
                                      canonical_path(url.path, options),
                                      canonical_query(url.query, extra), h.text, h.signed_, hash);
  SigV4Result r = finish(canonical, date, scope, credentials, options);

  std::string query = url.query;
  auto add = [&query](const std::string& k, const std::string& v) {
    if (!query.empty()) query += '&';
    query += aws_uri_encode(k, false) + "=" + aws_uri_encode(v, false);
  };
  for (const auto& [k, v] : extra) add(k, v);
  if (token && options.omit_session_token) add("X-Amz-Security-Token", credentials.session_token);
  add("X-Amz-Signature", r.signature);
  std::string rest = request.url.substr(url.prefix.size());
  auto cut = rest.find_first_of("?#");
  std::string path = cut == std::string::npos ? rest : rest.substr(0, cut);
  request.url = url.prefix + path + "?" + query;
  return r;
}

void SigV4Auth::apply(Outgoing& request) const {
  AwsCredentials c = provider_->credentials();
  sigv4_sign(request, c, options_, std::chrono::system_clock::now());
}

}  // namespace http
}  // namespace launch
