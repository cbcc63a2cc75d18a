// launch-server: serves one store over HTTP(S) to agents and CLIs on other
// machines, through the REST API of launch/api.hpp (docs/api.md,
// docs/server.md).
//
//   launch-server [--store URI] [--listen HOST:PORT] [--tls-cert PEM --tls-key PEM]
//                 [--threads N]
//   launch-server init --admin NAME [--team TEAM] [--store URI]
//
// The store is the SQLite default (LAUNCH_QUEUE_URI, else
// sqlite://$LAUNCH_HOME/launch.db), or any URI: postgres:// lets several
// servers serve one store, since a server keeps no state of its own. It
// listens on 127.0.0.1:8080 unless told otherwise; port 0 picks a free one.
// Its first line on stdout is "launch-server: listening on URL" once it
// accepts connections. SIGTERM or SIGINT stops it. Every request needs an
// API key (launch/accounts.hpp); `init` makes the first user, a server
// admin, and prints their key once ("key: lk_...").
//
// Exit codes: 0 stopped by a signal; 1 a failure; 2 a usage error.
#include <signal.h>

#include <cstdio>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>

#include "launch/api.hpp"
#include "launch/launch.hpp"
#include "server.hpp"

namespace {

int fail(const std::string& message, int code) {
  std::fprintf(stderr, "launch-server: %s\n", message.c_str());
  return code;
}

// The store URI as it may be printed: no userinfo (a postgres password).
std::string shown_uri(const std::string& uri) {
  std::size_t start = uri.find("://");
  std::size_t at = uri.find('@');
  if (start == std::string::npos || at == std::string::npos) return uri;
  return uri.substr(0, start + 3) + "***" + uri.substr(at);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"launch-server: serves a launch store over HTTP(S)"};
  std::string store_uri;
  launch_server::Options options;
  app.add_option("--store", store_uri,
                 "the store to serve (default $LAUNCH_QUEUE_URI, else the SQLite default)");
  // launch-server init: the first user, a server admin, and their key.
  CLI::App* init = app.add_subcommand("init", "make the first user (a server admin) and print "
                                              "their API key once");
  std::string admin_name, team_name;
  init->add_option("--admin", admin_name, "the admin's user name")->required();
  init->add_option("--team", team_name, "also make this team, with the admin as its admin");
  init->add_option("--store", store_uri, "the store (as for serving)");
  app.add_option("--listen", options.listen, "HOST:PORT to listen on (port 0: any free one)")
      ->capture_default_str();
  app.add_option("--tls-cert", options.tls_cert, "PEM certificate chain: serve HTTPS");
  app.add_option("--tls-key", options.tls_key, "PEM private key of --tls-cert");
  app.add_option("--request-read-seconds", options.request_read_seconds,
                 "how long a request may take to arrive")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  app.add_option("--threads", options.threads, "threads serving requests")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  // Signals are taken by a thread of their own, never by a handler.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  try {
    if (store_uri.empty()) store_uri = launch::default_transport_uri();
    auto store = launch::open_transport(store_uri);
    auto accounts = std::make_shared<launch::Accounts>(store);
    if (init->parsed()) {
      if (!accounts->empty()) {
        return fail("the store has users already: init makes the first one only", 1);
      }
      accounts->create_user(admin_name, true);
      if (!team_name.empty()) accounts->create_team(team_name, admin_name);
      launch::NewApiKey key = accounts->create_key(launch::Principal::Kind::user, admin_name, "",
                                                   "made by launch-server init", 0);
      std::printf("user: %s (server admin)\n", admin_name.c_str());
      if (!team_name.empty()) std::printf("team: %s\n", team_name.c_str());
      std::printf("key: %s\n", key.key.c_str());
      std::fprintf(stderr, "launch-server: the key is shown this once; keep it (launch login)\n");
      return 0;
    }
    if (accounts->empty()) {
      std::fprintf(stderr, "launch-server: the store has no users yet: every request is refused "
                           "until `launch-server init --admin NAME` makes one\n");
    }
    auto service = std::make_shared<launch::api::Service>(store, accounts);
    launch_server::Server server(service, options);
    std::string url = server.bind();
    std::printf("launch-server: listening on %s (store %s)\n", url.c_str(),
                shown_uri(store_uri).c_str());
    std::fflush(stdout);
    std::thread waiter([&] {
      int sig = 0;
      sigwait(&stop_signals, &sig);
      server.stop();
    });
    server.run();
    pthread_kill(waiter.native_handle(), SIGTERM);
    waiter.join();
    return 0;
  } catch (const launch::Error& e) {
    return fail(e.what(), e.code() == launch::Errc::invalid ? 2 : 1);
  } catch (const std::exception& e) {
    return fail(e.what(), 1);
  }
}
