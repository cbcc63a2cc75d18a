#include "server.hpp"

#include <poll.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "assets.hpp"
#include "launch/error.hpp"
#include "launch/version.hpp"

namespace launch_server {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
namespace api = launch::api;

namespace {

// How many frames an event stream may have waiting for a slow reader
// before it is dropped (the reader reconnects and catches up).
constexpr std::size_t kMaxEventBacklog = 4096;

using Frame = std::shared_ptr<const std::string>;

Frame event_frame(const api::Event& e) {
  return std::make_shared<const std::string>("event: " + e.type + "\ndata: " + e.data + "\n\n");
}

class EventStream {
 public:
  virtual ~EventStream() = default;
  // `entity`: whose queue the event concerns ("" for anyone's); a stream
  // whose caller may not see that entity drops it.
  virtual void send(Frame frame, const std::string& entity) = 0;
};

// Every open event stream; publish() hands a frame to each.
class EventHub {
 public:
  bool add(const std::shared_ptr<EventStream>& s) {
    std::lock_guard<std::mutex> lock(mu_);
    prune();
    if (streams_.size() >= api::kMaxEventStreams) return false;
    streams_.push_back(s);
    return true;
  }
  void publish(const Frame& frame, const std::string& entity) {
    std::vector<std::shared_ptr<EventStream>> live;
    {
      std::lock_guard<std::mutex> lock(mu_);
      prune();
      for (auto& w : streams_) {
        if (auto s = w.lock()) live.push_back(std::move(s));
      }
    }
    for (auto& s : live) s->send(frame, entity);
  }

 private:
  void prune() {
    streams_.erase(std::remove_if(streams_.begin(), streams_.end(),
                                  [](const std::weak_ptr<EventStream>& w) { return w.expired(); }),
                   streams_.end());
  }
  std::mutex mu_;
  std::vector<std::weak_ptr<EventStream>> streams_;
};

struct Shared {
  std::shared_ptr<api::Service> service;
  EventHub hub;
  int request_read_seconds = api::kRequestReadSeconds;
};

template <class Stream>
constexpr bool kIsTls = !std::is_same<Stream, beast::tcp_stream>::value;

std::string json_error(launch::Errc code, const std::string& message) {
  return api::error_response(code, message).body;
}

// One connection: requests one after another (keep-alive), or, once it
// asks for GET /api/v1/events, a stream of events until either side closes.
template <class Stream>
class Session : public EventStream, public std::enable_shared_from_this<Session<Stream>> {
 public:
  template <class... Args>
  Session(std::shared_ptr<Shared> shared, tcp::socket&& socket, Args&&... tls)
      : shared_(std::move(shared)),
        stream_(std::move(socket), std::forward<Args>(tls)...),
        keepalive_(stream_.get_executor()) {}

  void start() {
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if constexpr (kIsTls<Stream>) {
        beast::get_lowest_layer(self->stream_)
            .expires_after(std::chrono::seconds(api::kRequestReadSeconds));
        self->stream_.async_handshake(ssl::stream_base::server,
                                      [self](beast::error_code ec) {
                                        if (!ec) self->read_request();
                                      });
      } else {
        self->read_request();
      }
    });
  }

  // From any thread: queue a frame on this stream.
  void send(Frame frame, const std::string& entity) override {
    net::post(stream_.get_executor(),
              [self = this->shared_from_this(), frame = std::move(frame), entity] {
                if (self->may_see(entity)) self->enqueue(frame);
              });
  }

 private:
  void read_request() {
    parser_.emplace();
    parser_->body_limit(api::kMaxRequestBodyBytes);
    parser_->header_limit(static_cast<std::uint32_t>(api::kMaxRequestHeaderBytes));
    // The first request of a connection, and each after it, must arrive
    // whole within this; an idle keep-alive connection is closed after it.
    beast::get_lowest_layer(stream_).expires_after(
        std::chrono::seconds(requests_ == 0 ? shared_->request_read_seconds
                                            : api::kIdleConnectionSeconds));
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                        self->on_request(ec);
                      });
  }

  void on_request(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == net::error::eof ||
        ec == beast::error::timeout || ec == net::error::operation_aborted ||
        ec == net::error::connection_reset) {
      return close();
    }
    if (ec == bhttp::error::body_limit) {
      return reply_error(413, launch::Errc::invalid,
                         "request body larger than " +
                             std::to_string(api::kMaxRequestBodyBytes) + " bytes",
                         false);
    }
    if (ec == bhttp::error::header_limit) {
      return reply_error(431, launch::Errc::invalid,
                         "request header larger than " +
                             std::to_string(api::kMaxRequestHeaderBytes) + " bytes",
                         false);
    }
    if (ec) return reply_error(400, launch::Errc::invalid, "malformed request: " + ec.message(), false);
    ++requests_;
    auto req = parser_->release();
    std::string target(req.target());
    std::string path = target.substr(0, target.find('?'));
    std::string authorization(req[bhttp::field::authorization]);
    if (path == std::string(api::kPrefix) + "/events") {
      if (req.method() != bhttp::verb::get) {
        return reply_error(501, launch::Errc::unsupported, "events: use GET", req.keep_alive());
      }
      api::Response refusal;
      if (!shared_->service->authenticate(authorization, &caller_, &refusal)) {
        return reply(refusal.status, refusal.content_type, std::move(refusal.body), {},
                     req.keep_alive());
      }
      return start_events();
    }
    // Prometheus looks at /metrics by default: the API's metrics route.
    if (path == "/metrics") target = std::string(api::kPrefix) + target;
    path = target.substr(0, target.find('?'));
    if (path.compare(0, 5, "/api/") != 0 && path != "/api") {
      return serve_asset(req.method(), path, req.keep_alive());
    }
    api::Request r;
    r.method = std::string(req.method_string());
    r.target = std::move(target);
    r.body = std::move(req.body());
    r.authorization = std::move(authorization);
    api::Response out = shared_->service->handle(r);
    reply(out.status, out.content_type, std::move(out.body), out.headers, req.keep_alive());
  }

  // The Launch App: its files, compiled in; nothing is fetched from
  // anywhere else (the policy says so to the browser too).
  void serve_asset(bhttp::verb method, const std::string& path, bool keep_alive) {
    const Asset* asset = find_asset(path);
    if (!asset || (method != bhttp::verb::get && method != bhttp::verb::head)) {
      return reply_error(404, launch::Errc::not_found, "no such page: " + path, keep_alive);
    }
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>(bhttp::status::ok, 11);
    res->set(bhttp::field::server, std::string("launch-server/") + launch::version());
    res->set(bhttp::field::content_type, asset->content_type);
    res->set(bhttp::field::cache_control, "no-cache");
    res->set("Content-Security-Policy",
             "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
             "frame-ancestors 'none'");
    res->set("X-Content-Type-Options", "nosniff");
    res->keep_alive(keep_alive);
    if (method == bhttp::verb::get) {
      res->body().assign(reinterpret_cast<const char*>(asset->data), asset->size);
    }
    res->prepare_payload();
    if (method == bhttp::verb::head) res->content_length(asset->size);
    send_response(res, keep_alive);
  }

  void reply_error(int status, launch::Errc code, const std::string& message, bool keep_alive) {
    reply(status, "application/json", json_error(code, message), {}, keep_alive);
  }

  void reply(int status, const std::string& content_type, std::string body,
             const std::vector<std::pair<std::string, std::string>>& headers, bool keep_alive) {
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>(
        static_cast<bhttp::status>(status), 11);
    res->set(bhttp::field::server, std::string("launch-server/") + launch::version());
    if (!content_type.empty()) res->set(bhttp::field::content_type, content_type);
    res->set(bhttp::field::cache_control, "no-store");
    for (const auto& [name, value] : headers) res->set(name, value);
    res->keep_alive(keep_alive);
    res->body() = std::move(body);
    res->prepare_payload();
    send_response(res, keep_alive);
  }

  void send_response(const std::shared_ptr<bhttp::response<bhttp::string_body>>& res,
                     bool keep_alive) {
    response_ = res;
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(api::kRequestReadSeconds));
    bhttp::async_write(stream_, *res,
                       [self = this->shared_from_this(), keep_alive](beast::error_code ec,
                                                                     std::size_t) {
                         self->response_.reset();
                         if (ec || !keep_alive) return self->close();
                         self->read_request();
                       });
  }

  // --- the event stream
  void start_events() {
    beast::get_lowest_layer(stream_).expires_never();
    if (!shared_->hub.add(this->shared_from_this())) {
      return reply_error(503, launch::Errc::io, "too many event streams open", false);
    }
    streaming_ = true;
    enqueue(std::make_shared<const std::string>(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
        "Connection: close\r\n\r\n: connected\nretry: 1000\n\n"));
    // Reading on tells us when the client goes away; it sends nothing more.
    watch_for_close();
    arm_keepalive();
  }

  void watch_for_close() {
    net::async_read(stream_, buffer_, net::transfer_at_least(1),
                    [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                      if (ec) return self->close();
                      self->buffer_.consume(self->buffer_.size());
                      self->watch_for_close();
                    });
  }

  void arm_keepalive() {
    keepalive_.expires_after(std::chrono::seconds(api::kEventKeepaliveSeconds));
    keepalive_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (ec || self->closed_) return;
      self->enqueue(std::make_shared<const std::string>(": keepalive\n\n"));
      self->arm_keepalive();
    });
  }

  // Whether this stream's caller may see `entity`, remembered for a while
  // (a membership granted or taken shows within kSeeCacheSeconds).
  bool may_see(const std::string& entity) {
    static constexpr int kSeeCacheSeconds = 30;
    auto now = std::chrono::steady_clock::now();
    if (now - see_cache_at_ > std::chrono::seconds(kSeeCacheSeconds)) {
      see_cache_.clear();
      see_cache_at_ = now;
    }
    auto it = see_cache_.find(entity);
    if (it != see_cache_.end()) return it->second;
    bool yes = false;
    try {
      yes = shared_->service->may_see(caller_, entity);
    } catch (const std::exception&) {
      yes = false;  // the store is away: say nothing rather than too much
      return false;
    }
    see_cache_.emplace(entity, yes);
    return yes;
  }

  void enqueue(const Frame& frame) {
    if (!streaming_ || closed_) return;
    if (out_.size() >= kMaxEventBacklog) return close();
    out_.push_back(frame);
    if (!writing_) write_next();
  }

  void write_next() {
    writing_ = true;
    Frame f = out_.front();
    net::async_write(stream_, net::buffer(*f),
                     [self = this->shared_from_this(), f](beast::error_code ec, std::size_t) {
                       self->writing_ = false;
                       if (ec) return self->close();
                       self->out_.pop_front();
                       if (!self->out_.empty()) self->write_next();
                     });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    keepalive_.cancel();
    beast::error_code ignored;
    auto& socket = beast::get_lowest_layer(stream_).socket();
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  }

  std::shared_ptr<Shared> shared_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::shared_ptr<bhttp::response<bhttp::string_body>> response_;
  std::size_t requests_ = 0;
  bool streaming_ = false;
  bool writing_ = false;
  bool closed_ = false;
  std::deque<Frame> out_;
  net::steady_timer keepalive_;
  launch::api::Caller caller_;
  std::map<std::string, bool> see_cache_;
  std::chrono::steady_clock::time_point see_cache_at_{};
};

}  // namespace

struct Server::Impl {
  Options options;
  std::shared_ptr<Shared> shared = std::make_shared<Shared>();
  net::io_context ioc;
  std::optional<ssl::context> tls;
  tcp::acceptor acceptor{ioc};
  std::atomic<bool> stopping{false};
  std::thread store_watch;

  void accept() {
    acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket s) {
      if (ec) {
        if (ec != net::error::operation_aborted && !stopping) accept();
        return;
      }
      if (tls) {
        std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(shared, std::move(s), *tls)
            ->start();
      } else {
        std::make_shared<Session<beast::tcp_stream>>(shared, std::move(s))->start();
      }
      accept();
    });
  }

  // Work pushed to the store by others (an agent or CLI that opened it
  // directly) wakes the event streams too.
  void watch_store() {
    launch::Transport& store = shared->service->store();
    int fd = store.notify_fd();
    if (fd < 0) return;
    while (!stopping) {
      pollfd p{fd, POLLIN, 0};
      int n = ::poll(&p, 1, 200);
      if (n > 0) {
        store.drain_notify();
        shared->hub.publish(event_frame(api::Event{"work", "{}", ""}), "");
      }
    }
  }
};

Server::Server(std::shared_ptr<api::Service> service, Options options)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->shared->service = std::move(service);
  impl_->shared->request_read_seconds = std::max(1, impl_->options.request_read_seconds);
  Shared* shared = impl_->shared.get();
  // A store with wake-ups of its own (SQLite, PostgreSQL) tells of new work
  // however it came (watch_store); the Service's "work" would say it twice.
  bool store_wakes = impl_->shared->service->store().notify_fd() >= 0;
  impl_->shared->service->set_event_sink([shared, store_wakes](const api::Event& e) {
    if (store_wakes && e.type == "work") return;
    shared->hub.publish(event_frame(e), e.entity);
  });
  if (!impl_->options.tls_cert.empty() || !impl_->options.tls_key.empty()) {
    if (impl_->options.tls_cert.empty() || impl_->options.tls_key.empty()) {
      throw launch::Error(launch::Errc::invalid, "--tls-cert and --tls-key go together");
    }
    impl_->tls.emplace(ssl::context::tls_server);
    impl_->tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                            ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                            ssl::context::no_tlsv1_1);
    try {
      impl_->tls->use_certificate_chain_file(impl_->options.tls_cert);
    } catch (const std::exception& e) {
      throw launch::Error(launch::Errc::invalid,
                          "--tls-cert " + impl_->options.tls_cert + ": " + e.what());
    }
    try {
      impl_->tls->use_private_key_file(impl_->options.tls_key, ssl::context::pem);
    } catch (const std::exception& e) {
      throw launch::Error(launch::Errc::invalid,
                          "--tls-key " + impl_->options.tls_key + ": " + e.what());
    }
  }
}

Server::~Server() {
  stop();
  if (impl_->store_watch.joinable()) impl_->store_watch.join();
}

std::string Server::bind() {
  const std::string& listen = impl_->options.listen;
  std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    throw launch::Error(launch::Errc::invalid,
                        "--listen \"" + listen + "\": expected HOST:PORT (127.0.0.1:8080)");
  }
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  std::string port_text = listen.substr(colon + 1);
  unsigned long port = 0;
  try {
    std::size_t used = 0;
    port = std::stoul(port_text, &used);
    if (used != port_text.size() || port > 65535) throw std::out_of_range("port");
  } catch (const std::exception&) {
    throw launch::Error(launch::Errc::invalid,
                        "--listen \"" + listen + "\": port \"" + port_text + "\" is not 0-65535");
  }
  beast::error_code ec;
  auto address = net::ip::make_address(host, ec);
  if (ec) {
    throw launch::Error(launch::Errc::invalid,
                        "--listen \"" + listen + "\": \"" + host + "\" is not an IP address");
  }
  tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  auto& acc = impl_->acceptor;
  acc.open(endpoint.protocol(), ec);
  if (!ec) acc.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(endpoint, ec);
  if (!ec) acc.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    throw launch::Error(launch::Errc::io, "cannot listen on " + listen + ": " + ec.message());
  }
  auto bound = acc.local_endpoint();
  std::string shown = bound.address().is_v6() ? "[" + bound.address().to_string() + "]"
                                              : bound.address().to_string();
  return std::string(impl_->tls ? "https://" : "http://") + shown + ":" +
         std::to_string(bound.port());
}

void Server::run() {
  impl_->accept();
  impl_->store_watch = std::thread([this] { impl_->watch_store(); });
  int n = std::max(1, impl_->options.threads);
  std::vector<std::thread> threads;
  for (int i = 1; i < n; ++i) threads.emplace_back([this] { impl_->ioc.run(); });
  impl_->ioc.run();
  for (auto& t : threads) t.join();
  impl_->stopping = true;
  if (impl_->store_watch.joinable()) impl_->store_watch.join();
}

void Server::stop() {
  impl_->stopping = true;
  impl_->ioc.stop();
}

}  // namespace launch_server
