// http::Client against a real local server (data/server.py): plain, TLS,
// mTLS and unix-socket listeners.
#include <doctest/doctest.h>

#include <atomic>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include <rapidjson/document.h>

#include "http/auth.hpp"
#include "http/client.hpp"
#include "launch/error.hpp"
#include "server.hpp"

using launch::Errc;
using launch::Error;
namespace http = launch::http;

namespace {

http_test::Server& server() { return http_test::Server::get(); }

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  REQUIRE_FALSE(d.HasParseError());
  return d;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

http::Request get(const std::string& url) {
  http::Request r;
  r.url = url;
  return r;
}

// The error a call throws, for checking its code and text.
template <typename F>
http::HttpError error_of(F&& call) {
  try {
    call();
  } catch (const http::HttpError& e) {
    return e;
  }
  FAIL("the call succeeded");
  throw std::logic_error("unreachable");
}

int count(const std::string& key) {
  http::Client c;
  return std::stoi(c.send(get(server().http("/count?key=" + key))).body);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("GET and POST carry headers and bodies both ways") {
  http::Client client;
  http::Request r = get(server().http("/echo?x=1"));
  r.headers.add("X-Launch-Test", "one");
  http::Response a = client.send(r);
  CHECK(a.status == 200);
  CHECK(a.headers.get("x-served-by") == std::optional<std::string>("launch-test"));
  CHECK(a.headers.get("CONTENT-TYPE") == std::optional<std::string>("application/json"));
  auto d = parse(a.body);
  CHECK(std::string(d["method"].GetString()) == "GET");
  CHECK(std::string(d["path"].GetString()) == "/echo?x=1");
  CHECK(std::string(d["headers"]["x-launch-test"].GetString()) == "one");

  http::Request p = get(server().http("/echo"));
  p.method = "POST";
  p.body = R"({"a": 1})";
  p.headers.add("Content-Type", "application/json");
  auto pd = parse(client.send(p).body);
  CHECK(std::string(pd["method"].GetString()) == "POST");
  CHECK(std::string(pd["body"].GetString()) == R"({"a": 1})");
  CHECK(std::string(pd["headers"]["content-type"].GetString()) == "application/json");

  // The same Client, the same connection.
  auto again = parse(client.send(get(server().http("/echo"))).body);
  CHECK(again["peer_port"].GetInt() == d["peer_port"].GetInt());
}

TEST_CASE("any method; a body streamed from a reader, chunked or sized") {
  http::Client client;
  std::string payload(100000, 'p');
  for (bool sized : {false, true}) {
    std::size_t at = 0;
    http::Request r = get(server().http("/echo"));
    r.method = "PUT";
    r.body_reader = [&](char* buf, std::size_t n) {
      std::size_t take = std::min(n, payload.size() - at);
      std::copy(payload.data() + at, payload.data() + at + take, buf);
      at += take;
      return take;
    };
    if (sized) r.body_size = payload.size();
    auto d = parse(client.send(r).body);
    CHECK(std::string(d["method"].GetString()) == "PUT");
    CHECK(std::string(d["body"].GetString()) == payload);
    CHECK(d["headers"].HasMember("transfer-encoding") == !sized);
  }
  http::Request del = get(server().http("/echo"));
  del.method = "DELETE";
  CHECK(std::string(parse(client.send(del).body)["method"].GetString()) == "DELETE");
  http::Request head = get(server().http("/echo"));
  head.method = "HEAD";
  http::Response h = client.send(head);
  CHECK(h.status == 200);
  CHECK(h.body.empty());
}

TEST_CASE("a chunked stream is delivered line by line, whatever the chunks") {
  http::Client client;
  std::vector<std::string> lines;
  http::Response r = client.stream_lines(get(server().http("/lines")),
                                         [&](const std::string& l) { lines.push_back(l); });
  CHECK(r.status == 200);
  CHECK(r.body.empty());
  CHECK(lines == std::vector<std::string>{"alpha", "beta", "", "gamma"});

  std::string raw;
  client.stream(get(server().http("/lines")), [&](const char* d, std::size_t n) { raw.append(d, n); });
  CHECK(raw == "alpha\nbeta\r\n\ngamma");
}

TEST_CASE("a call past its timeout fails with Errc::timeout") {
  http::ClientOptions o;
  o.timeout_ms = 300;
  http::Client client(o);
  auto e = error_of([&] { client.send(get(server().http("/hang-headers"))); });
  CHECK(e.code() == Errc::timeout);
  CHECK(contains(e.what(), "GET " + server().http("/hang-headers")));

  http::ClientOptions idle;
  idle.idle_timeout_ms = 1000;
  http::Client streaming(idle);
  std::vector<std::string> lines;
  auto s = error_of([&] {
    streaming.stream_lines(get(server().http("/hang")), [&](const std::string& l) { lines.push_back(l); });
  });
  CHECK(s.code() == Errc::timeout);
  CHECK(lines == std::vector<std::string>{"started"});
}

TEST_CASE("abort() from another thread ends a hanging stream") {
  http::Client client;
  std::promise<void> started;
  std::thread stopper([&] {
    started.get_future().wait();
    client.abort();
  });
  auto e = error_of([&] {
    client.stream_lines(get(server().http("/hang")), [&](const std::string& l) {
      if (l == "started") started.set_value();
    });
  });
  // Should the stream have failed before it started, free the stopper.
  try {
    started.set_value();
  } catch (const std::future_error&) {
  }
  stopper.join();
  CHECK(e.code() == Errc::io);
  CHECK(contains(e.what(), "cancelled"));
  // It stays aborted until re-armed.
  CHECK(error_of([&] { client.send(get(server().http("/echo"))); }).code() == Errc::io);
  client.reset_abort();
  CHECK(client.send(get(server().http("/echo"))).status == 200);
}

TEST_CASE("an abort flag set by another thread ends a hanging stream") {
  std::atomic<bool> flag{false};
  http::ClientOptions o;
  o.abort_flag = &flag;
  http::Client client(o);
  std::promise<void> started;
  std::thread stopper([&] {
    started.get_future().wait();
    flag = true;
  });
  auto e = error_of([&] {
    client.stream(get(server().http("/hang")), [&](const char*, std::size_t) { started.set_value(); });
  });
  // Should the stream have failed before it started, free the stopper.
  try {
    started.set_value();
  } catch (const std::future_error&) {
  }
  stopper.join();
  CHECK(contains(e.what(), "cancelled"));
}

TEST_CASE("a GET is retried after a dropped connection, a POST is not") {
  http::ClientOptions o;
  o.retry_backoff_ms = 1;
  http::Client client(o);
  CHECK(client.send(get(server().http("/drop?key=get1&times=1"))).body == "made it\n");
  CHECK(count("get1") == 2);

  http::Request post = get(server().http("/drop?key=post1&times=1"));
  post.method = "POST";
  post.body = "x";
  auto e = error_of([&] { client.send(post); });
  CHECK(e.code() == Errc::io);
  CHECK(e.status() == 0);
  CHECK(count("post1") == 1);

  // 503 is retried for a GET up to `retries` times, never for a POST.
  CHECK(client.send(get(server().http("/status?code=503&key=get2&times=2"))).status == 200);
  CHECK(count("get2") == 3);
  auto three = error_of([&] { client.send(get(server().http("/status?code=503&key=get3&times=9"))); });
  CHECK(three.status() == 503);
  CHECK(count("get3") == 3);
  http::Request post503 = get(server().http("/status?code=503&key=post2&times=1"));
  post503.method = "POST";
  CHECK(error_of([&] { client.send(post503); }).status() == 503);
  CHECK(count("post2") == 1);
}

TEST_CASE("redirects: followed, but never to another host with credentials") {
  http::Client client;
  std::string other = "http://localhost:" + std::to_string(server().http_port()) + "/echo";
  std::string away = server().http("/redirect?to=" + http::url_encode(other));
  http::Response r = client.send(get(away));
  CHECK(r.status == 200);
  CHECK(r.url == other);

  http::Request with_auth = get(away);
  with_auth.auth = std::make_shared<http::BearerAuth>(std::string("sekrit"));
  auto e = error_of([&] { client.send(with_auth); });
  CHECK(e.code() == Errc::invalid);
  CHECK(contains(e.what(), "redirect to " + other));
  CHECK(contains(e.what(), "credentials"));
  CHECK_FALSE(contains(e.what(), "sekrit"));

  http::Request with_header = get(away);
  with_header.headers.add("Authorization", "Bearer sekrit");
  CHECK(error_of([&] { client.send(with_header); }).code() == Errc::invalid);

  // On the same host the credentials go along, added afresh.
  http::Request same = get(server().http("/redirect?code=307&to=/echo"));
  same.auth = with_auth.auth;
  auto d = parse(client.send(same).body);
  CHECK(std::string(d["headers"]["authorization"].GetString()) == "Bearer sekrit");

  // 303 turns a POST into a GET.
  http::Request post = get(server().http("/redirect?code=303&to=/echo"));
  post.method = "POST";
  post.body = "form";
  auto g = parse(client.send(post).body);
  CHECK(std::string(g["method"].GetString()) == "GET");
  CHECK(std::string(g["body"].GetString()).empty());
}

TEST_CASE("errors name the method, the URL without credentials, the status and the message") {
  http::Client client;
  std::string base = server().http("");
  std::string with_user = "http://user:hunter2@" + base.substr(7) + "/status?code=404&json=1";
  auto e = error_of([&] { client.send(get(with_user)); });
  CHECK(e.code() == Errc::not_found);
  CHECK(e.status() == 404);
  CHECK(e.server_message() == "no such thing here");
  CHECK(std::string(e.what()) ==
        "GET " + base + "/status?code=404&json=1: HTTP 404: no such thing here");
  CHECK_FALSE(contains(e.what(), "hunter2"));

  http::Request put = get(server().http("/status?code=409"));
  put.method = "PUT";
  auto c = error_of([&] { client.send(put); });
  CHECK(c.code() == Errc::state);
  CHECK(std::string(c.what()) ==
        "PUT " + base + "/status?code=409: HTTP 409: first line of the trouble");
  CHECK(error_of([&] { client.send(get(server().http("/status?code=400"))); }).code() == Errc::invalid);
  CHECK(error_of([&] { client.send(get(server().http("/status?code=403"))); }).code() == Errc::invalid);

  // accept_errors hands the answer back instead.
  http::Response r = client.send(get(server().http("/status?code=404&json=1")), true);
  CHECK(r.status == 404);
  CHECK(http::server_message(r.body) == "no such thing here");

  // A refused connection is Errc::io and names the URL.
  http::ClientOptions o;
  o.retries = 0;
  http::Client lonely(o);
  auto io = error_of([&] { lonely.send(get("http://127.0.0.1:1/nothing")); });
  CHECK(io.code() == Errc::io);
  CHECK(contains(io.what(), "GET http://127.0.0.1:1/nothing: "));
}

TEST_CASE("a buffered body past the size limit fails") {
  http::ClientOptions o;
  o.max_body_bytes = 1000;
  http::Client client(o);
  CHECK(client.send(get(server().http("/big?n=1000"))).body.size() == 1000);
  auto e = error_of([&] { client.send(get(server().http("/big?n=5000"))); });
  CHECK(e.code() == Errc::io);
  CHECK(contains(e.what(), "larger than 1000 bytes"));
}

TEST_CASE("TLS: the test CA from a file or from memory passes, no CA fails") {
  {
    http::ClientOptions o;
    o.tls.ca_file = server().file("ca.pem");
    http::Client client(o);
    CHECK(client.send(get(server().https("/echo"))).status == 200);
  }
  {
    http::ClientOptions o;
    o.tls.ca_pem = read_file(server().file("ca.pem"));
    http::Client client(o);
    CHECK(client.send(get(server().https("/echo"))).status == 200);
  }
  {
    http::ClientOptions o;
    o.retries = 0;
    http::Client client(o);
    auto e = error_of([&] { client.send(get(server().https("/echo"))); });
    CHECK(e.code() == Errc::io);
    CHECK(contains(e.what(), "certificate"));
  }
  {
    http::ClientOptions o;
    o.tls.insecure_skip_verify = true;
    http::Client client(o);
    CHECK(client.send(get(server().https("/echo"))).status == 200);
  }
}

TEST_CASE("mTLS: a client certificate from files or from memory") {
  http::ClientOptions o;
  o.tls.ca_file = server().file("ca.pem");
  o.retries = 0;
  {
    http::Client client(o);
    CHECK_THROWS_AS(client.send(get(server().mtls("/whoami"))), http::HttpError);
  }
  {
    http::ClientOptions f = o;
    f.tls.cert_file = server().file("client.pem");
    f.tls.key_file = server().file("client.key");
    http::Client client(f);
    CHECK(client.send(get(server().mtls("/whoami"))).body == "launch-test-client");
  }
  {
    http::ClientOptions m = o;
    m.tls.cert_pem = read_file(server().file("client.pem"));
    m.tls.key_pem = read_file(server().file("client.key"));
    http::Client client(m);
    CHECK(client.send(get(server().mtls("/whoami"))).body == "launch-test-client");
  }
}

TEST_CASE("a unix socket target") {
  http::ClientOptions o;
  o.unix_socket = server().unix_socket();
  http::Client client(o);
  http::Request r = get("http://localhost/echo");
  r.method = "POST";
  r.body = "over the socket";
  auto d = parse(client.send(r).body);
  CHECK(std::string(d["body"].GetString()) == "over the socket");
}

TEST_CASE("basic and bearer auth add their header") {
  http::Client client;
  http::Request r = get(server().http("/echo"));
  r.auth = std::make_shared<http::BasicAuth>("user", "pass");
  CHECK(std::string(parse(client.send(r).body)["headers"]["authorization"].GetString()) ==
        "Basic dXNlcjpwYXNz");
  int calls = 0;
  r.auth = std::make_shared<http::BearerAuth>(http::BearerAuth::TokenSource([&] {
    return "token-" + std::to_string(++calls);
  }));
  client.send(r);
  CHECK(std::string(parse(client.send(r).body)["headers"]["authorization"].GetString()) ==
        "Bearer token-2");
}

TEST_CASE("bad requests are refused naming what is wrong") {
  http::Client client;
  http::Request r;
  try {
    client.send(r);
    FAIL("a request without a url was sent");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid);
    CHECK(contains(e.what(), "url"));
  }
  r = get(server().http("/echo"));
  r.body = "a";
  r.body_reader = [](char*, std::size_t) { return std::size_t{0}; };
  CHECK_THROWS_AS(client.send(r), Error);
}
