// The Kubernetes connection as kubectl chooses it: KUBECONFIG merging, the
// context, certificates and their data, tokens and token files, exec
// credential plugins and their cache, in-cluster service accounts, the
// namespace order; and that what it chooses reaches the test API server.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <fstream>
#include <thread>

#include "http/auth.hpp"
#include "kube/config.hpp"
#include "kube_server.hpp"
#include "launch/error.hpp"
#include "support/temp_dir.hpp"
#include "util/base64.hpp"
#include "util/fs.hpp"

using namespace launch;
using kube_test::EnvScope;
using launch_test::TempDir;

namespace {

void write(const std::string& path, const std::string& text, mode_t mode = 0644) {
  std::ofstream(path, std::ios::binary) << text;
  ::chmod(path.c_str(), mode);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The Authorization header the connection's auth adds.
std::string authorization(const kube::Connection& c) {
  http::Outgoing o;
  o.method = "GET";
  o.url = c.server + "/version";
  if (c.auth) c.auth->apply(o);
  return o.headers.get("Authorization").value_or("");
}

// No kubeconfig or service account from the machine running the tests.
struct Clean {
  TempDir home{"launch-kube-home"};
  EnvScope h{"HOME", home.path()};
  EnvScope k{"KUBECONFIG", nullptr};
  EnvScope sh{"KUBERNETES_SERVICE_HOST", nullptr};
  EnvScope sp{"KUBERNETES_SERVICE_PORT", nullptr};
  EnvScope sa{kube::kServiceAccountDirEnv, home / "no-such-dir"};
};

}  // namespace

TEST_CASE("kube: KUBECONFIG files merge as kubectl merges them: the first file wins per name") {
  Clean env;
  TempDir d;
  write(d / "a.yaml",
        "clusters:\n- name: c1\n  cluster: {server: 'https://a.example:6443/', "
        "certificate-authority: ca.pem}\n"
        "users:\n- name: u1\n  user: {token: token-a}\n"
        "contexts:\n- name: ctx\n  context: {cluster: c1, user: u1, namespace: team-a}\n"
        "current-context: ctx\n");
  write(d / "ca.pem", "not checked here");
  write(d / "b.yaml",
        "clusters:\n- name: c1\n  cluster: {server: 'https://b.example'}\n"
        "- name: c2\n  cluster: {server: 'https://c2.example', insecure-skip-tls-verify: true}\n"
        "users:\n- name: u1\n  user: {token: token-b}\n- name: u2\n  user: {token: token-u2}\n"
        "contexts:\n- name: other\n  context: {cluster: c2, user: u2}\n"
        "current-context: other\n");
  EnvScope k("KUBECONFIG", d / "missing.yaml" + ":" + d / "a.yaml" + ":" + d / "b.yaml");

  kube::Connection c = kube::connect({});
  CHECK(c.server == "https://a.example:6443");
  CHECK(c.tls.ca_file == d / "ca.pem");  // relative to the file that names it
  CHECK(authorization(c) == "Bearer token-a");
  CHECK(c.namespace_name == "team-a");
  CHECK(c.source.find("context \"ctx\"") != std::string::npos);

  // The runner config's `context` picks another; its names still resolve
  // first-file-wins (c2 and u2 only exist in b).
  kube::ConnectOptions o;
  o.context = "other";
  c = kube::connect(o);
  CHECK(c.server == "https://c2.example");
  CHECK(c.tls.insecure_skip_verify);
  CHECK(authorization(c) == "Bearer token-u2");
  CHECK(c.namespace_name.empty());

  o.context = "nope";
  CHECK_THROWS_WITH_AS(kube::connect(o), doctest::Contains("no context \"nope\" (contexts: ctx, other)"),
                       Error);
}

TEST_CASE("kube: configFile is the only file read, and must exist") {
  Clean env;
  TempDir d;
  std::string ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  write(d / "only.yaml",
        "clusters:\n- name: c\n  cluster: {server: 'https://only.example', "
        "certificate-authority-data: " + util::base64_encode(ca) + "}\n"
        "users:\n- name: u\n  user: {client-certificate-data: " + util::base64_encode("CERT") +
        ", client-key: keys/k.pem, username: ann, password: pw}\n"
        "contexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\n");
  util::make_directories(d / "keys");
  write(d / "keys/k.pem", "KEY");
  write(d / "ignored.yaml", "current-context: x\n");
  EnvScope k("KUBECONFIG", d / "ignored.yaml");
  kube::ConnectOptions o;
  o.config_file = d / "only.yaml";
  kube::Connection c = kube::connect(o);
  CHECK(c.server == "https://only.example");
  CHECK(c.tls.ca_pem == ca);
  CHECK(c.tls.cert_pem == "CERT");
  CHECK(c.tls.key_file == d / "keys/k.pem");
  CHECK(authorization(c) == "Basic " + util::base64_encode("ann:pw"));

  o.config_file = d / "absent.yaml";
  CHECK_THROWS_WITH_AS(kube::connect(o), doctest::Contains(("configFile " + d / "absent.yaml").c_str()),
                       Error);
}

TEST_CASE("kube: a tokenFile is read again when it changes") {
  Clean env;
  TempDir d;
  write(d / "token", "first\n");
  write(d / "kc", "clusters:\n- name: c\n  cluster: {server: 'https://x'}\n"
                  "users:\n- name: u\n  user: {tokenFile: token}\n"
                  "contexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\n");
  EnvScope k("KUBECONFIG", d / "kc");
  kube::Connection c = kube::connect({});
  CHECK(authorization(c) == "Bearer first");
  // Replaced as the kubelet replaces it: a new file renamed over the old.
  write(d / "token.new", "second-token\n");
  REQUIRE(::rename((d / "token.new").c_str(), (d / "token").c_str()) == 0);
  CHECK(authorization(c) == "Bearer second-token");
}

TEST_CASE("kube: an exec plugin runs with argv and env; its token is cached until it expires") {
  Clean env;
  TempDir d;
  // The plugin counts its runs and prints an ExecCredential whose expiry
  // the test controls through a file.
  write(d / "plugin.sh",
        "#!/bin/sh\n"
        "echo run >> \"$COUNT_FILE\"\n"
        "echo \"$KUBERNETES_EXEC_INFO\" > \"$COUNT_FILE.info\"\n"
        "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
        "\"status\":{\"token\":\"tok-%s-%s\",\"expirationTimestamp\":\"%s\"}}' \"$1\" "
        "\"$(wc -l < \"$COUNT_FILE\" | tr -d ' ')\" \"$(cat \"$COUNT_FILE.exp\")\"\n",
        0755);
  write(d / "count.exp", "2999-01-01T00:00:00Z");
  write(d / "kc", "clusters:\n- name: c\n  cluster: {server: 'https://x'}\n"
                  "users:\n- name: u\n  user:\n    exec:\n"
                  "      apiVersion: client.authentication.k8s.io/v1\n"
                  "      command: ./plugin.sh\n      args: [alpha]\n"
                  "      env: [{name: COUNT_FILE, value: " + d / "count" + "}]\n"
                  "      interactiveMode: Never\n      provideClusterInfo: true\n"
                  "contexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\n");
  EnvScope k("KUBECONFIG", d / "kc");
  kube::Connection c = kube::connect({});
  CHECK(slurp(d / "count").empty());  // nothing runs before a request needs it
  CHECK(authorization(c) == "Bearer tok-alpha-1");
  CHECK(authorization(c) == "Bearer tok-alpha-1");
  CHECK(slurp(d / "count") == "run\n");
  std::string info = slurp(d / "count.info");
  CHECK(info.find("\"kind\":\"ExecCredential\"") != std::string::npos);
  CHECK(info.find("\"interactive\":false") != std::string::npos);
  CHECK(info.find("\"server\":\"https://x\"") != std::string::npos);

  // A token that has expired is asked for again, each time it has.
  write(d / "count.exp", "2001-01-01T00:00:00+02:00");
  kube::Connection c2 = kube::connect({});
  CHECK(authorization(c2) == "Bearer tok-alpha-2");
  CHECK(authorization(c2) == "Bearer tok-alpha-3");

  // A failing plugin fails the request, naming the user and its stderr.
  write(d / "plugin.sh", "#!/bin/sh\necho 'not logged in' >&2\nexit 3\n", 0755);
  kube::Connection c3 = kube::connect({});
  CHECK_THROWS_WITH_AS(authorization(c3),
                       doctest::Contains(("user \"u\": exec: " + d / "./plugin.sh" +
                                          " exited with 3: not logged in")
                                             .c_str()),
                       Error);
}

TEST_CASE("kube: in a pod: the service account, re-read when the token rotates") {
  Clean env;
  TempDir sa;
  write(sa / "token", "sa-token-1");
  write(sa / "ca.crt", "CA");
  write(sa / "namespace", "launch-agents\n");
  EnvScope dir(kube::kServiceAccountDirEnv, sa.path());
  EnvScope host("KUBERNETES_SERVICE_HOST", "fd00::1");
  EnvScope port("KUBERNETES_SERVICE_PORT", "443");
  kube::Connection c = kube::connect({});
  CHECK(c.server == "https://[fd00::1]:443");
  CHECK(c.tls.ca_file == sa / "ca.crt");
  CHECK(c.namespace_name == "launch-agents");
  CHECK(authorization(c) == "Bearer sa-token-1");
  write(sa / "token.tmp", "sa-token-rotated");
  REQUIRE(::rename((sa / "token.tmp").c_str(), (sa / "token").c_str()) == 0);
  CHECK(authorization(c) == "Bearer sa-token-rotated");

  // A kubeconfig, when there is one, comes first.
  util::make_directories(env.home / ".kube");
  write(env.home / ".kube/config",
        "clusters:\n- name: c\n  cluster: {server: 'https://home'}\n"
        "contexts:\n- name: c\n  context: {cluster: c}\ncurrent-context: c\n");
  CHECK(kube::connect({}).server == "https://home");
}

TEST_CASE("kube: nothing to connect to says where it looked") {
  Clean env;
  CHECK_THROWS_WITH_AS(kube::connect({}), doctest::Contains((env.home / ".kube/config").c_str()), Error);
}

TEST_CASE("kube: the namespace: metadata.namespace, the config's, the context's, default") {
  kube::Connection c;
  c.namespace_name = "ctx-ns";
  CHECK(kube::choose_namespace("meta", "cfg", c) == "meta");
  CHECK(kube::choose_namespace("", "cfg", c) == "cfg");
  CHECK(kube::choose_namespace("", "", c) == "ctx-ns");
  CHECK(kube::choose_namespace("", "", kube::Connection{}) == "default");
}

TEST_CASE("kube: RFC 3339 times") {
  CHECK(kube::parse_rfc3339("1970-01-01T00:01:00Z", "t") == 60);
  CHECK(kube::parse_rfc3339("1970-01-01T01:00:00.123+01:00", "t") == 0);
  CHECK_THROWS_AS(kube::parse_rfc3339("1970-01-01 00:00:00", "t"), Error);
}

TEST_CASE("kube: the chosen connection reaches the test API server: token, client cert, none") {
  Clean env;
  kube_test::Server& s = kube_test::Server::get();
  TempDir d;
  auto version = [&](const kube::Connection& c) {
    http::ClientOptions o;
    o.tls = c.tls;
    http::Client client(o);
    http::Request r;
    r.url = c.server + "/version";
    r.auth = c.auth;
    return client.send(r, true);
  };
  write(d / "kc", s.kubeconfig());
  EnvScope k("KUBECONFIG", d / "kc");
  http::Response r = version(kube::connect({}));
  CHECK(r.status == 200);
  CHECK(r.body.find("v1.32.0-launch-test") != std::string::npos);

  write(d / "kc", s.kubeconfig("wrong-token"));
  CHECK(version(kube::connect({})).status == 401);

  write(d / "kc", "clusters:\n- name: c\n  cluster: {server: '" + s.url() +
                      "', certificate-authority: " + s.file("ca.crt") +
                      "}\nusers:\n- name: u\n  user: {client-certificate: " + s.file("client.crt") +
                      ", client-key: " + s.file("client.key") +
                      "}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\n"
                      "current-context: c\n");
  CHECK(version(kube::connect({})).status == 200);
}
