#include "aws/ecr.hpp"

#include <chrono>
#include <map>
#include <mutex>

#include <fmt/format.h>

#include "aws/json_api.hpp"
#include "core/image_uri.hpp"
#include "http/aws_credentials.hpp"
#include "launch/error.hpp"
#include "util/base64.hpp"
#include "util/limits.hpp"

namespace launch {
namespace aws {

namespace {

struct Cached {
  http::RegistryCredentials creds;
  std::chrono::system_clock::time_point refresh_at;
};

std::mutex cache_mu;
std::map<std::string, Cached> cache;
int fetches = 0;

EcrRegistry require_ecr(const std::string& host) {
  auto r = parse_ecr_registry(host);
  if (!r) throw Error(Errc::invalid, fmt::format("{:?} is not an ECR registry", host));
  return *r;
}

}  // namespace

EcrToken ecr_token_from_answer(const json::Value& d, std::chrono::system_clock::time_point now) {
  std::string what = "ECR GetAuthorizationToken answer";
  // An answer that is not an object is read as one without the field
  // (FindMember on anything else is undefined).
  const json::Value* data = nullptr;
  if (d.IsObject()) {
    auto it = d.FindMember("authorizationData");
    if (it != d.MemberEnd()) data = &it->value;
  }
  if (!data || !data->IsArray() || data->Empty()) {
    throw Error(Errc::io, what + ": no authorizationData");
  }
  const json::Value& first = (*data)[0];
  if (!first.IsObject()) throw Error(Errc::io, what + ": authorizationData[0] is not an object");
  std::string plain = util::base64_decode(json::get_string(first, "authorizationToken", what));
  auto colon = plain.find(':');
  if (colon == std::string::npos) {
    throw Error(Errc::io, what + ": the token is not base64 of user:password");
  }
  EcrToken t;
  t.creds.username = plain.substr(0, colon);
  t.creds.password = plain.substr(colon + 1);
  // expiresAt: epoch seconds (a JSON number, as AWS's JSON protocol sends
  // timestamps). Without one, a token is kept for an hour.
  auto exp = first.FindMember("expiresAt");
  t.expires = now + std::chrono::hours(1);
  if (exp != first.MemberEnd() && exp->value.IsNumber()) {
    // Converting a time past the limit would be undefined.
    double seconds = exp->value.GetDouble();
    if (!(seconds >= 0 && seconds <= static_cast<double>(limits::kMaxEpochSeconds))) {
      throw Error(Errc::io, fmt::format("{}: expiresAt {} is not a time", what,
                                        json::dump(exp->value)));
    }
    t.expires = std::chrono::system_clock::time_point(std::chrono::duration_cast<
        std::chrono::system_clock::duration>(std::chrono::duration<double>(exp->value.GetDouble())));
  }
  return t;
}

std::optional<EcrRegistry> parse_ecr_registry(const std::string& host) {
  ImageUri u;
  if (registry_kind(host, &u) != RegistryKind::ecr) return std::nullopt;
  return EcrRegistry{u.account, u.region};
}

http::RegistryCredentials ecr_credentials(const std::string& host) {
  EcrRegistry reg = require_ecr(host);
  std::lock_guard<std::mutex> lock(cache_mu);
  auto now = std::chrono::system_clock::now();
  auto it = cache.find(host);
  if (it != cache.end() && now < it->second.refresh_at) return it->second.creds;

  JsonApi ecr(kEcr, http::default_aws_credentials(), reg.region);
  std::string body = fmt::format("{{\"registryIds\":[\"{}\"]}}", reg.account);
  json::Document d = ecr.call("GetAuthorizationToken", body);
  ++fetches;
  EcrToken token = ecr_token_from_answer(d, now);
  Cached c;
  c.creds = token.creds;
  auto expires = token.expires;
  auto margin = std::min<std::chrono::system_clock::duration>((expires - now) / 4,
                                                              std::chrono::minutes(5));
  c.refresh_at = expires - margin;
  cache[host] = c;
  return c.creds;
}

bool ecr_image_exists(const std::string& host, const std::string& repository,
                      const std::string& tag) {
  EcrRegistry reg = require_ecr(host);
  JsonApi ecr(kEcr, http::default_aws_credentials(), reg.region);
  rapidjson::Document q(rapidjson::kObjectType);
  auto& a = q.GetAllocator();
  q.AddMember("registryId", json::str(reg.account, a), a);
  q.AddMember("repositoryName", json::str(repository, a), a);
  json::Value ids(rapidjson::kArrayType);
  json::Value id(rapidjson::kObjectType);
  id.AddMember("imageTag", json::str(tag, a), a);
  ids.PushBack(id, a);
  q.AddMember("imageIds", ids, a);
  try {
    json::Document d = ecr.call("DescribeImages", json::dump(q));
    auto details = d.FindMember("imageDetails");
    return details != d.MemberEnd() && details->value.IsArray() && !details->value.Empty();
  } catch (const AwsError& e) {
    if (e.type() == "ImageNotFoundException" || e.type() == "RepositoryNotFoundException") {
      return false;
    }
    throw;
  }
}

int ecr_token_fetches() {
  std::lock_guard<std::mutex> lock(cache_mu);
  return fetches;
}

}  // namespace aws
}  // namespace launch
