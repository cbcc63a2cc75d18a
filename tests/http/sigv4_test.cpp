// SigV4 against AWS's own signing test suite (tests/data/aws-sigv4, see its
// SOURCE.md): every case's canonical request, string to sign, signature and
// signed request, in both the header and the presigned-query form.
#include <doctest/doctest.h>

#include <dirent.h>
#include <time.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "http/sigv4.hpp"

namespace http = launch::http;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> case_names() {
  std::vector<std::string> names;
  std::string root = std::string(LAUNCH_TEST_DATA) + "/aws-sigv4";
  DIR* d = opendir(root.c_str());
  REQUIRE(d != nullptr);
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n[0] == '.' || n == "LICENSE" || n == "SOURCE.md") continue;
    names.push_back(n);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

struct Case {
  std::string dir;
  http::AwsCredentials creds;
  http::SigV4Options options;
  bool sign_body = false;
  std::chrono::system_clock::time_point now;
  long expires = 0;
  http::Outgoing request;
  std::string body;

  std::string file(const std::string& name) const { return slurp(dir + "/" + name); }
};

// request.txt: "METHOD PATH HTTP/1.1", headers (a line starting with
// whitespace continues the one before), a blank line, the body.
void parse_request(Case& c) {
  std::string text = c.file("request.txt");
  std::size_t eol = text.find('\n');
  std::string first = text.substr(0, eol);
  std::string method = first.substr(0, first.find(' '));
  std::string target =
      first.substr(method.size() + 1, first.rfind(" HTTP/1.1") - method.size() - 1);
  std::string host;
  std::size_t pos = eol == std::string::npos ? text.size() : eol + 1;
  std::vector<std::pair<std::string, std::string>> fields;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) {
      c.body = pos < text.size() ? text.substr(pos) : "";
      break;
    }
    if ((line[0] == ' ' || line[0] == '\t') && !fields.empty()) {
      fields.back().second += "\n" + line;
      continue;
    }
    auto colon = line.find(':');
    fields.emplace_back(line.substr(0, colon), line.substr(colon + 1));
    if (fields.back().first == "Host") host = fields.back().second;
  }
  c.request.method = method;
  c.request.url = "https://" + host + target;
  for (auto& [n, v] : fields) c.request.headers.add(n, v);
  c.request.body = &c.body;
}

Case load(const std::string& name) {
  Case c;
  c.dir = std::string(LAUNCH_TEST_DATA) + "/aws-sigv4/" + name;
  rapidjson::Document doc;
  doc.Parse(c.file("context.json").c_str());
  REQUIRE(doc.IsObject());
  const auto& cr = doc["credentials"];
  c.creds.access_key_id = cr["access_key_id"].GetString();
  c.creds.secret_access_key = cr["secret_access_key"].GetString();
  if (cr.HasMember("token")) c.creds.session_token = cr["token"].GetString();
  c.options.region = doc["region"].GetString();
  c.options.service = doc["service"].GetString();
  c.options.normalize_path = doc["normalize"].GetBool();
  c.options.double_encode_path = true;
  c.sign_body = doc["sign_body"].GetBool();
  if (doc.HasMember("omit_session_token")) {
    c.options.omit_session_token = doc["omit_session_token"].GetBool();
  }
  c.expires = doc["expiration_in_seconds"].GetInt64();
  struct tm tm {};
  REQUIRE(strptime(doc["timestamp"].GetString(), "%Y-%m-%dT%H:%M:%SZ", &tm) != nullptr);
  c.now = std::chrono::system_clock::from_time_t(timegm(&tm));
  parse_request(c);
  return c;
}

std::string header_line(const std::string& signed_request, const std::string& name) {
  std::istringstream in(signed_request);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + ":", 0) == 0) return line.substr(name.size() + 1);
  }
  return "";
}

// The query of a signed request's first line, its parameters sorted (the
// suite's order of X-Amz-* parameters is one of many valid ones).
std::vector<std::string> query_params(const std::string& url_or_line) {
  std::string s = url_or_line.substr(url_or_line.find('?') + 1);
  auto sp = s.find(' ');
  if (sp != std::string::npos) s = s.substr(0, sp);
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string p;
  while (std::getline(ss, p, '&')) out.push_back(p);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("SigV4 header signing passes every case of the AWS test suite") {
  auto names = case_names();
  REQUIRE(names.size() == 38);
  for (const auto& name : names) {
    CAPTURE(name);
    Case c = load(name);
    c.options.sign_body = c.sign_body;
    http::SigV4Result r = http::sigv4_sign(c.request, c.creds, c.options, c.now);
    CHECK(r.canonical_request == c.file("header-canonical-request.txt"));
    CHECK(r.string_to_sign == c.file("header-string-to-sign.txt"));
    CHECK(r.signature == c.file("header-signature.txt"));
    std::string want = header_line(c.file("header-signed-request.txt"), "Authorization");
    CHECK(c.request.headers.get("Authorization").value_or("") == want);
    if (!c.creds.session_token.empty()) {
      CHECK(c.request.headers.get("X-Amz-Security-Token").value_or("") ==
            c.creds.session_token);
    }
  }
}

TEST_CASE("SigV4 presigned queries pass every case of the AWS test suite") {
  for (const auto& name : case_names()) {
    CAPTURE(name);
    Case c = load(name);
    http::SigV4Result r =
        http::sigv4_presign(c.request, c.creds, c.options, c.now, std::chrono::seconds(c.expires));
    CHECK(r.canonical_request == c.file("query-canonical-request.txt"));
    CHECK(r.string_to_sign == c.file("query-string-to-sign.txt"));
    CHECK(r.signature == c.file("query-signature.txt"));
    std::string signed_request = c.file("query-signed-request.txt");
    std::string first = signed_request.substr(0, signed_request.find('\n'));
    if (first.find('?') != std::string::npos) {
      CHECK(query_params(c.request.url) == query_params(first));
    }
    CHECK_FALSE(c.request.headers.has("Authorization"));
  }
}

TEST_CASE("SigV4 refuses missing keys and a missing region, naming what is missing") {
  http::Outgoing out;
  out.method = "GET";
  out.url = "https://sts.amazonaws.com/";
  http::SigV4Options o;
  o.region = "us-east-1";
  o.service = "sts";
  CHECK_THROWS_WITH(http::sigv4_sign(out, {}, o, std::chrono::system_clock::now()),
                    doctest::Contains("access key id"));
  http::AwsCredentials c{"AKID", "SECRET", "", std::nullopt};
  o.region.clear();
  CHECK_THROWS_WITH(http::sigv4_sign(out, c, o, std::chrono::system_clock::now()),
                    doctest::Contains("region"));
}

TEST_CASE("SigV4 signs the Host a URL with a port sends, and a streamed body as unsigned") {
  http::Outgoing out;
  out.method = "PUT";
  out.url = "http://127.0.0.1:4568/bucket/key%20one";
  http::SigV4Options o = http::s3_sigv4_options("us-east-1");
  http::AwsCredentials c{"AKID", "SECRET", "", std::nullopt};
  http::SigV4Result r = http::sigv4_sign(out, c, o, std::chrono::system_clock::now());
  CHECK(r.canonical_request.find("host:127.0.0.1:4568\n") != std::string::npos);
  // S3: the path as sent, encoded once.
  CHECK(r.canonical_request.rfind("PUT\n/bucket/key%20one\n", 0) == 0);
  CHECK(out.headers.get("x-amz-content-sha256").value_or("") == "UNSIGNED-PAYLOAD");
}
