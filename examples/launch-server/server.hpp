// The HTTP/1.1 (and HTTPS) listener of launch-server, over Boost.Beast:
// asynchronous, a few threads for every connection (no thread per
// connection), so a thousand idle event streams cost a thousand sockets and
// nothing more. Requests go to launch::api::Service; GET /api/v1/events is
// answered here, as a stream of server-sent events fed by the Service's
// events and by the store's own wake-ups (work pushed by other processes).
#ifndef LAUNCH_EXAMPLES_SERVER_SERVER_HPP
#define LAUNCH_EXAMPLES_SERVER_SERVER_HPP

#include <memory>
#include <string>

#include "launch/api.hpp"

namespace launch_server {

struct Options {
  std::string listen = "127.0.0.1:8080";  // HOST:PORT; port 0 picks a free one
  std::string tls_cert;                   // PEM chain; with tls_key: HTTPS
  std::string tls_key;
  int threads = 8;
  // How long a request may take to arrive (api::kRequestReadSeconds);
  // tests shorten it.
  int request_read_seconds = launch::api::kRequestReadSeconds;
};

class Server {
 public:
  Server(std::shared_ptr<launch::api::Service> service, Options options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds (throws launch::Error naming the address when it cannot). The
  // URL clients use ("http://127.0.0.1:PORT"), the port chosen when 0.
  std::string bind();
  // Serves until stop(); returns when every thread is done.
  void run();
  // Safe from any thread and from a signal-handling thread.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace launch_server

#endif
