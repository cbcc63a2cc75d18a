// The s3:// build-context store: a builder that runs elsewhere (kaniko)
// fetches the context from S3, so the agent puts it there with PutObject
// and removes it with DeleteObject, both SigV4-signed.
//
// "s3://bucket/prefix" -> objects "prefix/<name>". The endpoint is
// AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL) with path-style addressing,
// else https://bucket.s3.<region>.amazonaws.com.
#include <cstdlib>

#include <fmt/format.h>

#include "builder/context_store.hpp"
#include "builtins/factories.hpp"
#include "http/aws_credentials.hpp"
#include "http/client.hpp"
#include "http/sigv4.hpp"
#include "launch/error.hpp"

namespace launch {

namespace {

bool valid_bucket(const std::string& b) {
  if (b.size() < 3 || b.size() > 63) return false;
  for (char c : b) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  }
  return b.front() != '-' && b.front() != '.' && b.back() != '-' && b.back() != '.';
}

class S3ContextStore : public source::ContextStore {
 public:
  explicit S3ContextStore(const std::string& url) : url_(url) {
    std::string rest = url.substr(5);  // after "s3://"
    auto slash = rest.find('/');
    bucket_ = rest.substr(0, slash);
    prefix_ = slash == std::string::npos ? "" : rest.substr(slash + 1);
    while (!prefix_.empty() && prefix_.back() == '/') prefix_.pop_back();
    if (!valid_bucket(bucket_)) {
      throw Error(Errc::invalid,
                  fmt::format("builder.build-context-store {:?}: {:?} is not an S3 bucket name "
                              "(3-63 characters of a-z, 0-9, '.' and '-')",
                              url, bucket_));
    }
    region_ = http::aws_region("us-east-1");
  }

  std::string put(const std::string& name, const std::string& tar_gz) override {
    http::Request r = request("PUT", name);
    r.headers.set("Content-Type", "application/gzip");
    r.body = tar_gz;
    send(r, "PutObject");
    return "s3://" + bucket_ + "/" + key(name);
  }

  void remove(const std::string& name) override {
    http::Request r = request("DELETE", name);
    http::Response resp = send(r, "DeleteObject", true);
    if (!resp.ok() && resp.status != 404) throw_failure(resp, "DeleteObject", name);
  }

 private:
  std::string key(const std::string& name) const {
    return prefix_.empty() ? name : prefix_ + "/" + name;
  }

  http::Request request(const std::string& method, const std::string& name) {
    if (!provider_) provider_ = http::default_aws_credentials();
    std::string encoded = http::aws_uri_encode(key(name), true);
    const char* specific = std::getenv("AWS_ENDPOINT_URL_S3");
    const char* general = std::getenv("AWS_ENDPOINT_URL");
    http::Request r;
    r.method = method;
    if ((specific != nullptr && *specific) || (general != nullptr && *general)) {
      r.url = http::aws_endpoint("S3", "s3", region_) + "/" + bucket_ + "/" + encoded;
    } else {
      r.url = fmt::format("https://{}.s3.{}.amazonaws.com/{}", bucket_, region_, encoded);
    }
    r.auth = std::make_shared<http::SigV4Auth>(provider_, http::s3_sigv4_options(region_));
    return r;
  }

  http::Response send(const http::Request& r, const char* op, bool accept = false) {
    http::ClientOptions o;
    o.timeout_ms = 300000;
    http::Client client(o);
    http::Response resp = client.send(r, true);
    if (!resp.ok() && !accept) throw_failure(resp, op, r.url);
    return resp;
  }

  [[noreturn]] void throw_failure(const http::Response& resp, const char* op,
                                  const std::string& what) {
    std::string code = http::aws_xml_text(resp.body, "Code").value_or("");
    std::string message = http::aws_xml_text(resp.body, "Message").value_or("");
    throw Error(Errc::io, fmt::format("S3 {} {} ({}): HTTP {}{}{}", op, what, url_, resp.status,
                                      code.empty() ? "" : " " + code,
                                      message.empty() ? "" : ": " + message));
  }

  std::string url_;
  std::string bucket_;
  std::string prefix_;
  std::string region_;
  std::shared_ptr<http::AwsCredentialsProvider> provider_;
};

}  // namespace

std::unique_ptr<source::ContextStore> make_s3_context_store(const std::string& url) {
  return std::make_unique<S3ContextStore>(url);
}

}  // namespace launch
