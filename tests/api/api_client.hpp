// A raw client of a launch server's API for tests: one call is one HTTP
// request with the key given, the answer returned whatever its status.
#ifndef LAUNCH_TESTS_API_API_CLIENT_HPP
#define LAUNCH_TESTS_API_API_CLIENT_HPP

#include <string>

#include "http/client.hpp"
#include "launch/api.hpp"
#include "util/json.hpp"

namespace api_test {

struct Answer {
  long status = 0;
  std::string body;
  launch::http::Headers headers;
  // The error code of an error body ("" when there is none).
  std::string code() const {
    try {
      auto d = launch::json::parse_object(body, "answer");
      auto e = d.FindMember("error");
      if (e == d.MemberEnd() || !e->value.IsObject()) return "";
      return launch::json::get_string(e->value, "code", "error");
    } catch (const std::exception&) {
      return "";
    }
  }
  launch::json::Document json() const { return launch::json::parse(body, "answer"); }
};

class Api {
 public:
  explicit Api(std::string base) : base_(std::move(base)) {}
  Answer call(const std::string& method, const std::string& path, const std::string& key,
              const std::string& body = "") {
    launch::http::Request r;
    r.method = method;
    r.url = base_ + launch::api::kPrefix + path;
    r.body = body;
    if (!body.empty()) r.headers.set("Content-Type", "application/json");
    if (!key.empty()) r.headers.set("Authorization", "Bearer " + key);
    auto res = client_.send(r, /*accept_errors=*/true);
    return Answer{res.status, res.body, res.headers};
  }
  // A key for `user` (made by a server admin's `admin_key`), or for the
  // service account `sa` of `team`.
  std::string key_for_user(const std::string& admin_key, const std::string& user) {
    return key_of(call("POST", "/keys", admin_key, "{\"user\":\"" + user + "\"}"));
  }
  std::string key_for_sa(const std::string& team_admin_key, const std::string& team,
                         const std::string& sa) {
    return key_of(call("POST", "/keys", team_admin_key,
                       "{\"team\":\"" + team + "\",\"service_account\":\"" + sa + "\"}"));
  }
  static std::string key_of(const Answer& a) {
    if (a.status != 201) throw std::runtime_error("key not made: " + a.body);
    auto d = a.json();
    return launch::json::get_string(d, "key", "key answer");
  }

 private:
  std::string base_;
  launch::http::Client client_;
};

}  // namespace api_test

#endif
