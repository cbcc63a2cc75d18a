#include "kube/config.hpp"

#include <sys/stat.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "launch/error.hpp"
#include "util/base64.hpp"
#include "util/fs.hpp"
#include "util/json.hpp"
#include "util/process.hpp"

namespace launch {
namespace kube {

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// One cluster, user or context entry and the file that defined it.
struct Entry {
  std::string json;  // the entry's "cluster" / "user" / "context" object
  std::string file;
  std::string dir;
};

struct Merged {
  std::vector<std::string> files;  // the files read, in order
  std::map<std::string, Entry> clusters, users, contexts;
  std::string current_context;
};

std::string where(const Merged& m) {
  std::string s;
  for (const auto& f : m.files) s += (s.empty() ? "" : ":") + f;
  return "kubeconfig " + s;
}

std::string str_field(const json::Value& obj, const char* key, const std::string& ctx) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull()) return "";
  if (it->value.IsString()) return it->value.GetString();
  if (it->value.IsNumber() || it->value.IsBool()) return json::scalar_text(it->value);
  throw Error(Errc::invalid, fmt::format("{}: {} must be a string, not {}", ctx, key,
                                         json::type_name(it->value)));
}

void read_kubeconfig(const std::string& path, Merged& m) {
  auto text = util::read_file(path);
  if (!text) throw Error(Errc::invalid, fmt::format("kubeconfig {}: cannot be read", path));
  std::string what = "kubeconfig " + path;
  json::Document d = json::parse(json::yaml_to_json(*text, what), what);
  m.files.push_back(path);
  if (d.IsNull()) return;  // an empty file, as kubectl takes it
  if (!d.IsObject()) throw Error(Errc::invalid, what + ": expected a mapping");
  std::string dir = util::parent_path(path);
  if (dir.empty()) dir = ".";
  struct List {
    const char* key;
    const char* inner;
    std::map<std::string, Entry>* into;
  };
  for (const List& l : {List{"clusters", "cluster", &m.clusters}, List{"users", "user", &m.users},
                        List{"contexts", "context", &m.contexts}}) {
    auto it = d.FindMember(l.key);
    if (it == d.MemberEnd() || it->value.IsNull()) continue;
    if (!it->value.IsArray()) {
      throw Error(Errc::invalid, fmt::format("{}: {} must be a list", what, l.key));
    }
    std::size_t i = 0;
    for (const auto& e : it->value.GetArray()) {
      std::string ctx = fmt::format("{}: {}[{}]", what, l.key, i++);
      if (!e.IsObject()) throw Error(Errc::invalid, ctx + ": expected a mapping");
      std::string name = str_field(e, "name", ctx);
      if (name.empty()) throw Error(Errc::invalid, ctx + ": name is required");
      auto inner = e.FindMember(l.inner);
      std::string body = "{}";
      if (inner != e.MemberEnd() && !inner->value.IsNull()) {
        if (!inner->value.IsObject()) {
          throw Error(Errc::invalid, fmt::format("{}: {} must be a mapping", ctx, l.inner));
        }
        body = json::dump(inner->value);
      }
      // kubectl's merge: the first file that names it wins.
      l.into->emplace(name, Entry{body, path, dir});
    }
  }
  if (m.current_context.empty()) {
    m.current_context = str_field(d, "current-context", what);
  }
}

std::string resolve_path(const std::string& p, const Entry& e) {
  if (p.empty() || p[0] == '/') return p;
  if (p[0] == '~' && (p.size() == 1 || p[1] == '/')) return env("HOME") + p.substr(1);
  return e.dir + "/" + p;
}

// A token read from a file, read again whenever the file changes (a new
// inode, size or modification time: the kubelet swaps a symlink).
class FileToken {
 public:
  explicit FileToken(std::string path) : path_(std::move(path)) {}
  std::string get() const {
    struct stat st;
    if (::stat(path_.c_str(), &st) != 0) {
      throw Error(Errc::invalid, fmt::format("kubernetes token file {}: cannot be read", path_));
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (!read_ || st.st_ino != st_.st_ino || st.st_dev != st_.st_dev ||
        st.st_size != st_.st_size || st.st_mtim.tv_sec != st_.st_mtim.tv_sec ||
        st.st_mtim.tv_nsec != st_.st_mtim.tv_nsec) {
      auto text = util::read_file(path_);
      if (!text) {
        throw Error(Errc::invalid, fmt::format("kubernetes token file {}: cannot be read", path_));
      }
      token_ = trim(*text);
      st_ = st;
      read_ = true;
    }
    return token_;
  }

 private:
  std::string path_;
  mutable std::mutex mu_;
  mutable struct stat st_ {};
  mutable bool read_ = false;
  mutable std::string token_;
};

// An exec credential plugin (client.authentication.k8s.io).
struct ExecConfig {
  std::string api_version;
  std::vector<std::string> argv;
  std::vector<std::string> env;  // "K=V"
  std::string install_hint;
  std::string what;  // "kubeconfig F: users[NAME].exec"
  std::string exec_info;  // KUBERNETES_EXEC_INFO
};

class ExecToken {
 public:
  explicit ExecToken(ExecConfig c) : c_(std::move(c)) {}
  std::string get() const {
    std::lock_guard<std::mutex> lock(mu_);
    if (have_ && (!expiry_ || static_cast<long long>(std::time(nullptr)) < *expiry_)) {
      return token_;
    }
    util::ProcessOptions po;
    po.extra_env = c_.env;
    po.extra_env.push_back("KUBERNETES_EXEC_INFO=" + c_.exec_info);
    po.stderr_mode = util::StderrMode::capture;
    po.timeout = std::chrono::seconds(60);
    util::ProcessResult r;
    try {
      r = util::run_process(c_.argv, po);
    } catch (const Error& e) {
      throw Error(Errc::invalid, fmt::format("{}: {}{}", c_.what, e.what(),
                                             c_.install_hint.empty() ? "" : "; " + c_.install_hint));
    }
    if (r.status != 0) {
      throw Error(Errc::invalid, fmt::format("{}: {} exited with {}: {}", c_.what, c_.argv[0],
                                             r.status, trim(r.err).substr(0, 300)));
    }
    std::string ctx = c_.what + ": " + c_.argv[0] + "'s output";
    json::Document d = json::parse_object(r.out, ctx);
    if (json::get_string(d, "kind", ctx) != "ExecCredential") {
      throw Error(Errc::invalid, ctx + ": kind must be ExecCredential");
    }
    std::string api = json::get_string(d, "apiVersion", ctx);
    if (api != c_.api_version) {
      throw Error(Errc::invalid, fmt::format("{}: apiVersion {:?}, expected {:?}", ctx, api,
                                             c_.api_version));
    }
    auto st = d.FindMember("status");
    if (st == d.MemberEnd() || !st->value.IsObject()) {
      throw Error(Errc::invalid, ctx + ": status is missing");
    }
    std::string token = json::get_string(st->value, "token", ctx + ": status");
    if (token.empty()) {
      bool cert = st->value.HasMember("clientCertificateData");
      throw Error(Errc::invalid,
                  ctx + (cert ? ": client certificates from exec plugins are not supported yet "
                                "(only status.token)"
                              : ": status.token is missing"));
    }
    std::string exp = json::get_string(st->value, "expirationTimestamp", ctx + ": status");
    expiry_.reset();
    if (!exp.empty()) expiry_ = parse_rfc3339(exp, ctx + ": status.expirationTimestamp");
    token_ = token;
    have_ = true;
    return token_;
  }

 private:
  ExecConfig c_;
  mutable std::mutex mu_;
  mutable bool have_ = false;
  mutable std::string token_;
  mutable std::optional<long long> expiry_;
};

void add_pem(const std::string& file, const std::string& data, const std::string& what,
             std::string* file_out, std::string* pem_out) {
  if (!data.empty()) {
    try {
      *pem_out = util::base64_decode(data);
    } catch (const Error& e) {
      throw Error(Errc::invalid, fmt::format("{}-data: {}", what, e.what()));
    }
  } else if (!file.empty()) {
    if (!file_exists(file)) throw Error(Errc::invalid, fmt::format("{}: {} does not exist", what, file));
    *file_out = file;
  }
}

Connection from_kubeconfig(const Merged& m, const std::string& wanted) {
  std::string context = wanted.empty() ? m.current_context : wanted;
  std::string w = where(m);
  if (context.empty()) {
    throw Error(Errc::invalid, w + ": no current-context, and the runner config names no "
                                   "`context`");
  }
  auto ctx_it = m.contexts.find(context);
  if (ctx_it == m.contexts.end()) {
    std::string names;
    for (const auto& kv : m.contexts) names += (names.empty() ? "" : ", ") + kv.first;
    throw Error(Errc::invalid, fmt::format("{}: no context {:?} (contexts: {})", w, context,
                                           names.empty() ? "none" : names));
  }
  std::string cw = fmt::format("{}: context {:?}", w, context);
  json::Document c = json::parse_object(ctx_it->second.json, cw);
  std::string cluster_name = str_field(c, "cluster", cw);
  std::string user_name = str_field(c, "user", cw);
  Connection conn;
  conn.namespace_name = str_field(c, "namespace", cw);
  conn.source = fmt::format("{}, context {:?}", w, context);

  auto cl = m.clusters.find(cluster_name);
  if (cl == m.clusters.end()) {
    throw Error(Errc::invalid, fmt::format("{}: cluster {:?} is not defined", cw, cluster_name));
  }
  std::string clw = fmt::format("kubeconfig {}: cluster {:?}", cl->second.file, cluster_name);
  json::Document cd = json::parse_object(cl->second.json, clw);
  conn.server = str_field(cd, "server", clw);
  if (conn.server.empty()) throw Error(Errc::invalid, clw + ": server is required");
  while (!conn.server.empty() && conn.server.back() == '/') conn.server.pop_back();
  add_pem(resolve_path(str_field(cd, "certificate-authority", clw), cl->second),
          str_field(cd, "certificate-authority-data", clw), clw + ": certificate-authority",
          &conn.tls.ca_file, &conn.tls.ca_pem);
  conn.tls.insecure_skip_verify = json::get_bool(cd, "insecure-skip-tls-verify", clw);

  if (user_name.empty()) return conn;
  auto us = m.users.find(user_name);
  if (us == m.users.end()) {
    throw Error(Errc::invalid, fmt::format("{}: user {:?} is not defined", cw, user_name));
  }
  const Entry& ue = us->second;
  std::string uw = fmt::format("kubeconfig {}: user {:?}", ue.file, user_name);
  json::Document u = json::parse_object(ue.json, uw);
  add_pem(resolve_path(str_field(u, "client-certificate", uw), ue),
          str_field(u, "client-certificate-data", uw), uw + ": client-certificate",
          &conn.tls.cert_file, &conn.tls.cert_pem);
  add_pem(resolve_path(str_field(u, "client-key", uw), ue), str_field(u, "client-key-data", uw),
          uw + ": client-key", &conn.tls.key_file, &conn.tls.key_pem);
  if (u.HasMember("auth-provider")) {
    throw Error(Errc::invalid, uw + ": auth-provider plugins are gone from Kubernetes (kubectl "
                                    "1.26 dropped them); use an exec plugin");
  }
  auto ex = u.FindMember("exec");
  if (ex != u.MemberEnd() && !ex->value.IsNull()) {
    std::string ew = uw + ": exec";
    if (!ex->value.IsObject()) throw Error(Errc::invalid, ew + " must be a mapping");
    const json::Value& e = ex->value;
    ExecConfig x;
    x.what = ew;
    x.api_version = str_field(e, "apiVersion", ew);
    if (x.api_version != "client.authentication.k8s.io/v1" &&
        x.api_version != "client.authentication.k8s.io/v1beta1") {
      throw Error(Errc::invalid, fmt::format("{}: apiVersion {:?}: expected "
                                             "client.authentication.k8s.io/v1 (or v1beta1)",
                                             ew, x.api_version));
    }
    std::string command = str_field(e, "command", ew);
    if (command.empty()) throw Error(Errc::invalid, ew + ": command is required");
    // kubectl: a command with a path separator is relative to the file.
    if (command.find('/') != std::string::npos) command = resolve_path(command, ue);
    x.argv.push_back(command);
    for (const auto& a : json::get_string_array(e, "args", ew)) x.argv.push_back(a);
    auto ev = e.FindMember("env");
    if (ev != e.MemberEnd() && !ev->value.IsNull()) {
      if (!ev->value.IsArray()) throw Error(Errc::invalid, ew + ": env must be a list");
      for (const auto& kv : ev->value.GetArray()) {
        if (!kv.IsObject()) throw Error(Errc::invalid, ew + ": env entries are {name, value}");
        x.env.push_back(str_field(kv, "name", ew + ": env") + "=" +
                        str_field(kv, "value", ew + ": env"));
      }
    }
    std::string mode = str_field(e, "interactiveMode", ew);
    if (mode == "Always") {
      throw Error(Errc::invalid, ew + ": interactiveMode Always: the agent has no terminal to "
                                      "give the plugin");
    }
    x.install_hint = str_field(e, "installHint", ew);
    rapidjson::Document info(rapidjson::kObjectType);
    auto& a = info.GetAllocator();
    info.AddMember("kind", "ExecCredential", a);
    info.AddMember("apiVersion", json::str(x.api_version, a), a);
    json::Value spec(rapidjson::kObjectType);
    spec.AddMember("interactive", false, a);
    if (json::get_bool(e, "provideClusterInfo", ew)) {
      json::Value cluster(rapidjson::kObjectType);
      cluster.AddMember("server", json::str(conn.server, a), a);
      std::string ca = str_field(cd, "certificate-authority-data", clw);
      if (!ca.empty()) cluster.AddMember("certificate-authority-data", json::str(ca, a), a);
      if (conn.tls.insecure_skip_verify) cluster.AddMember("insecure-skip-tls-verify", true, a);
      spec.AddMember("cluster", cluster, a);
    }
    info.AddMember("spec", spec, a);
    x.exec_info = json::dump(info);
    auto source = std::make_shared<ExecToken>(std::move(x));
    conn.auth = std::make_shared<http::BearerAuth>([source] { return source->get(); });
    return conn;
  }
  std::string token = str_field(u, "token", uw);
  std::string token_file = resolve_path(str_field(u, "tokenFile", uw), ue);
  if (!token.empty()) {
    conn.auth = std::make_shared<http::BearerAuth>(token);
  } else if (!token_file.empty()) {
    auto source = std::make_shared<FileToken>(token_file);
    source->get();  // a missing file is refused now, naming it
    conn.auth = std::make_shared<http::BearerAuth>([source] { return source->get(); });
  } else if (!str_field(u, "username", uw).empty()) {
    conn.auth = std::make_shared<http::BasicAuth>(str_field(u, "username", uw),
                                                 str_field(u, "password", uw));
  }
  return conn;
}

std::optional<Connection> in_cluster() {
  std::string host = env("KUBERNETES_SERVICE_HOST");
  std::string port = env("KUBERNETES_SERVICE_PORT");
  std::string dir = env(kServiceAccountDirEnv);
  if (dir.empty()) dir = kServiceAccountDir;
  std::string token = dir + "/token";
  if (host.empty() || port.empty() || !file_exists(token)) return std::nullopt;
  Connection c;
  c.server = "https://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
             port;
  if (file_exists(dir + "/ca.crt")) c.tls.ca_file = dir + "/ca.crt";
  auto source = std::make_shared<FileToken>(token);
  c.auth = std::make_shared<http::BearerAuth>([source] { return source->get(); });
  if (auto ns = util::read_file(dir + "/namespace")) c.namespace_name = trim(*ns);
  c.source = "in-cluster (" + dir + ")";
  return c;
}

}  // namespace

long long parse_rfc3339(const std::string& text, const std::string& what) {
  int y, mo, d, h, mi, s;
  int n = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &n) != 6 &&
      std::sscanf(text.c_str(), "%4d-%2d-%2dt%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &n) != 6) {
    throw Error(Errc::invalid, fmt::format("{}: {:?} is not an RFC 3339 time", what, text));
  }
  std::size_t i = static_cast<std::size_t>(n);
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  }
  long long offset = 0;
  if (i < text.size() && (text[i] == 'Z' || text[i] == 'z')) {
    ++i;
  } else if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
    int oh = 0, om = 0;
    if (std::sscanf(text.c_str() + i + 1, "%2d:%2d", &oh, &om) != 2) {
      throw Error(Errc::invalid, fmt::format("{}: {:?} is not an RFC 3339 time", what, text));
    }
    offset = (text[i] == '+' ? 1 : -1) * (oh * 3600LL + om * 60LL);
    i += 6;
  } else {
    throw Error(Errc::invalid, fmt::format("{}: {:?} has no time zone", what, text));
  }
  if (i != text.size()) {
    throw Error(Errc::invalid, fmt::format("{}: {:?} is not an RFC 3339 time", what, text));
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return static_cast<long long>(timegm(&tm)) - offset;
}

Connection connect(const ConnectOptions& options) {
  Merged m;
  if (!options.config_file.empty()) {
    std::string path = options.config_file;
    if (path[0] == '~' && (path.size() == 1 || path[1] == '/')) path = env("HOME") + path.substr(1);
    if (!file_exists(path)) {
      throw Error(Errc::invalid, fmt::format("kubernetes config: configFile {} does not exist",
                                             options.config_file));
    }
    read_kubeconfig(path, m);
    return from_kubeconfig(m, options.context);
  }
  std::string list = env("KUBECONFIG");
  std::string looked;
  if (!list.empty()) {
    std::size_t i = 0;
    while (i <= list.size()) {
      std::size_t j = list.find(':', i);
      if (j == std::string::npos) j = list.size();
      std::string f = list.substr(i, j - i);
      // kubectl skips files of KUBECONFIG that do not exist.
      if (!f.empty() && file_exists(f)) read_kubeconfig(f, m);
      i = j + 1;
    }
    looked = "KUBECONFIG=" + list;
  } else {
    std::string home = env("HOME");
    std::string f = home + "/.kube/config";
    if (!home.empty() && file_exists(f)) read_kubeconfig(f, m);
    looked = f;
  }
  if (!m.files.empty()) return from_kubeconfig(m, options.context);
  if (auto c = in_cluster()) {
    if (!options.context.empty()) {
      throw Error(Errc::invalid, fmt::format("kubernetes config: context {:?}: no kubeconfig "
                                             "found ({}) and in a pod there are no contexts",
                                             options.context, looked));
    }
    return *c;
  }
  throw Error(Errc::invalid,
              fmt::format("kubernetes: no cluster to talk to: no kubeconfig ({}), and not in a "
                          "pod (KUBERNETES_SERVICE_HOST/PORT and a service-account token)",
                          looked));
}

std::string choose_namespace(const std::string& metadata_namespace,
                             const std::string& config_namespace,
                             const Connection& connection) {
  if (!metadata_namespace.empty()) return metadata_namespace;
  if (!config_namespace.empty()) return config_namespace;
  if (!connection.namespace_name.empty()) return connection.namespace_name;
  return "default";
}

}  // namespace kube
}  // namespace launch
