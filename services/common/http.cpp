// The only translation unit that includes cpprestsdk (about 12 s of compile on 2 cores).
#include "convoy/http.h"

#include <cpprest/containerstream.h>
#include <cpprest/filestream.h>
#include <cpprest/http_client.h>
#include <cpprest/http_listener.h>
#include <glog/logging.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <pplx/threadpool.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "convoy/json.h"
#include "convoy/metrics.h"

namespace convoy {

namespace http = web::http;

std::string HttpRequest::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

void InitHttpThreads(size_t threads) { crossplat::threadpool::initialize_with_threads(threads); }

namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Binds port 0 to learn a free port; cpprestsdk cannot report the port it bound.
int PickFreePort(const std::string& host) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(host == "0.0.0.0" ? INADDR_ANY : INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

enum class BodyRead { kOk, kTooLarge, kFailed };

// Reads the body without holding a thread while bytes are in flight: each chunk's read
// continues in a task. (A blocking read on a pool thread waits for I/O that itself needs a pool
// thread: as many slow uploads as pool threads would freeze the server.) Reads at most limit+1
// bytes, so an oversize chunked body is not read further.
void ReadBodyAsync(http::http_request req, size_t limit, std::function<void(BodyRead, std::string)> done) {
  struct State {
    concurrency::streams::istream stream;
    concurrency::streams::container_buffer<std::string> buf;
    size_t total = 0;
    size_t limit = 0;
    size_t declared = 0;  // Content-Length, 0 when absent (chunked) or empty
    std::function<void(BodyRead, std::string)> done;
  };
  auto st = std::make_shared<State>();
  st->stream = req.body();
  st->limit = limit;
  st->declared = static_cast<size_t>(req.headers().content_length());
  st->done = std::move(done);
  auto next = std::make_shared<std::function<void()>>();
  *next = [st, next] {
    size_t want = std::min<size_t>(64 * 1024, st->limit + 1 - st->total);
    st->stream.read(st->buf, want).then([st, next](pplx::task<size_t> t) {
      size_t got = 0;
      BodyRead result = BodyRead::kOk;
      try {
        got = t.get();
      } catch (const std::exception&) {
        result = BodyRead::kFailed;
      }
      if (result == BodyRead::kOk && got > 0) {
        st->total += got;
        // A body whose declared length has arrived is whole: no further read (and task) to
        // learn that the stream ended.
        if (st->total <= st->limit && !(st->declared > 0 && st->total >= st->declared)) {
          (*next)();
          return;
        }
        if (st->total > st->limit) result = BodyRead::kTooLarge;
      }
      *next = nullptr;  // ends the chain (and the reference cycle)
      // The collection also holds space allocated for reads that came back short: only the
      // first `total` bytes are the body.
      st->done(result, result == BodyRead::kOk ? std::string(st->buf.collection().data(), st->total) : std::string());
    });
  };
  (*next)();
}

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  explicit Impl(HttpServerOptions o) : options(std::move(o)) {}
  std::atomic<bool> stopping{false};
  HttpServerOptions options;
  std::atomic<int64_t> in_flight{0};
  Gauge& in_flight_gauge = DefaultRegistry().GetGauge("convoy_http_requests_in_flight",
                                                      "HTTP requests received and not yet answered.");
  int port = 0;
  struct RouteEntry {
    std::string method, prefix;
    HttpHandler handler;
    AsyncHttpHandler async;
  };
  std::vector<RouteEntry> routes;
  std::unique_ptr<http::experimental::listener::http_listener> listener;

  HttpResponse Dispatch(const HttpRequest& req) {
    if (req.path == "/healthz") return {200, "text/plain; charset=utf-8", "ok\n", {}};
    if (req.path == "/readyz") {
      bool ready = !options.ready || options.ready();
      return {ready ? 200 : 503, "text/plain; charset=utf-8", ready ? "ready\n" : "not ready\n", {}};
    }
    if (req.path == "/metrics") {
      return {200, "text/plain; version=0.0.4", DefaultRegistry().Render(), {}};
    }
    bool path_known = false;
    const RouteEntry* best = Find(req, &path_known);
    if (!best) {
      return {path_known ? 405 : 404, "text/plain; charset=utf-8",
              path_known ? "method not allowed\n" : "not found\n", {}};
    }
    return best->handler(req);
  }

  // The route with the longest matching prefix for the method; null if none.
  const RouteEntry* Find(const HttpRequest& req, bool* path_known) const {
    const RouteEntry* best = nullptr;
    for (const auto& r : routes) {
      if (req.path.rfind(r.prefix, 0) != 0) continue;
      *path_known = true;
      if (r.method != req.method) continue;
      if (!best || r.prefix.size() > best->prefix.size()) best = &r;
    }
    return best;
  }

  http::http_response ToRaw(HttpResponse resp, const std::string& path) {
    http::http_response out(static_cast<http::status_code>(resp.status));
    for (const auto& [k, v] : resp.headers) out.headers().add(k, v);
    if (!resp.file_path.empty()) {
      try {
        auto file = concurrency::streams::file_stream<uint8_t>::open_istream(resp.file_path).get();
        auto size = file.seek(0, std::ios_base::end);
        file.seek(0, std::ios_base::beg);
        out.set_body(file, static_cast<utility::size64_t>(size), resp.content_type);
      } catch (const std::exception& e) {
        LOG(WARNING) << "event=http_file_unreadable path=" << path << " what=" << e.what();
        out = http::http_response(http::status_codes::NotFound);
        out.set_body("not found\n", "text/plain; charset=utf-8");
      }
    } else {
      out.set_body(std::move(resp.body), resp.content_type);
    }
    return out;
  }

  // Every request is answered exactly once, through here.
  void Reply(http::http_request& raw, http::http_response response) {
    raw.reply(response);
    in_flight.fetch_sub(1);
    in_flight_gauge.Add(-1);
  }
  void Reply(http::http_request& raw, int status, const std::string& text) {
    http::http_response r(static_cast<http::status_code>(status));
    r.set_body(text, "text/plain; charset=utf-8");
    Reply(raw, std::move(r));
  }

  void Handle(http::http_request raw) {
    in_flight.fetch_add(1);
    in_flight_gauge.Add(1);
    HttpRequest req;
    req.method = raw.method();
    auto uri = raw.relative_uri();
    req.path = web::uri::decode(uri.path());
    try {
      for (auto& [k, v] : web::uri::split_query(uri.query())) {
        req.query[web::uri::decode(k)] = web::uri::decode(v);
      }
    } catch (const std::exception&) {
      Reply(raw, 400, "malformed query string\n");
      return;
    }
    for (const auto& [k, v] : raw.headers()) req.headers[Lower(k)] = v;
    auto length = raw.headers().content_length();
    if (length > options.max_body_bytes) {
      ReplyTooLarge(raw);
      return;
    }
    // A body cut off before its Content-Length fails the read (kFailed): never dispatched.
    ReadBodyAsync(raw, options.max_body_bytes, [self = shared_from_this(), raw, req = std::move(req)](
                                                   BodyRead result, std::string body) mutable {
      self->Finish(raw, std::move(req), result, std::move(body));
    });
  }

  // Runs when the body has been read (or not): dispatches and answers.
  void Finish(http::http_request& raw, HttpRequest req, BodyRead result, std::string body) {
    {
      if (stopping.load()) {
        Reply(raw, 503, "shutting down\n");
        return;
      }
      if (result == BodyRead::kTooLarge) {
        ReplyTooLarge(raw);
        return;
      }
      if (result == BodyRead::kFailed) {
        Reply(raw, 400, "could not read the body\n");
        return;
      }
      req.body = std::move(body);
      bool path_known = false;
      const RouteEntry* route = Find(req, &path_known);
      bool builtin = req.path == "/healthz" || req.path == "/readyz" || req.path == "/metrics";
      if (route && route->async && !builtin) {
        auto once = std::make_shared<std::atomic<bool>>(false);
        HttpResponder respond = [self = shared_from_this(), raw, once, path = req.path](HttpResponse resp) mutable {
          if (once->exchange(true)) return;
          self->Reply(raw, self->ToRaw(std::move(resp), path));
        };
        try {
          route->async(req, respond);
        } catch (const std::exception& e) {
          LOG(ERROR) << "event=http_handler_exception path=" << req.path << " what=" << e.what();
          respond({500, "text/plain; charset=utf-8", "internal error\n", {}});
        }
        return;
      }
      HttpResponse resp;
      try {
        resp = Dispatch(req);
      } catch (const std::exception& e) {
        LOG(ERROR) << "event=http_handler_exception path=" << req.path << " what=" << e.what();
        resp = {500, "text/plain; charset=utf-8", "internal error\n", {}};
      }
      Reply(raw, ToRaw(std::move(resp), req.path));
    }
  }

  void ReplyTooLarge(http::http_request& raw) {
    if (options.on_too_large) options.on_too_large();
    Reply(raw, 413, "body over the limit of " + std::to_string(options.max_body_bytes) + " bytes\n");
  }
};

HttpServer::HttpServer(HttpServerOptions options) : impl_(std::make_shared<Impl>(std::move(options))) {}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::RouteAsync(const std::string& method, const std::string& path_prefix, AsyncHttpHandler handler) {
  impl_->routes.push_back({method, path_prefix, nullptr, std::move(handler)});
}

void HttpServer::Route(const std::string& method, const std::string& path_prefix,
                       HttpHandler handler) {
  impl_->routes.push_back({method, path_prefix, std::move(handler), nullptr});
}

Status HttpServer::Start() {
  int port = impl_->options.port;
  if (port == 0) port = PickFreePort(impl_->options.host);
  if (port <= 0) return Status(Code::kUnavailable, "no free port");
  std::string url = "http://" + impl_->options.host + ":" + std::to_string(port);
  try {
    impl_->listener = std::make_unique<http::experimental::listener::http_listener>(url);
    impl_->listener->support([impl = impl_.get()](http::http_request req) { impl->Handle(std::move(req)); });
    impl_->listener->open().wait();
  } catch (const std::exception& e) {
    impl_->listener.reset();
    return Status(Code::kUnavailable, "cannot listen on " + url + ": " + e.what());
  }
  impl_->port = port;
  return Status::Ok();
}

void HttpServer::Stop() {
  if (!impl_->listener) return;
  impl_->stopping = true;
  try {
    impl_->listener->close().wait();
  } catch (const std::exception& e) {
    LOG(WARNING) << "event=http_close_failed what=" << e.what();
  }
  impl_->listener.reset();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (impl_->in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // draining: polled with a deadline
  }
  if (impl_->in_flight.load() > 0) {
    LOG(WARNING) << "event=http_stop_with_requests_in_flight count=" << impl_->in_flight.load();
  }
}

int HttpServer::port() const { return impl_->port; }

int64_t HttpServer::in_flight() const { return impl_->in_flight.load(); }

namespace {

// One client per (scheme, host, port, timeout, redirects), kept for the process's life: a
// client keeps its connections open between requests (HTTP keep-alive, idle ones closed after
// 30 s), so a send to the Graph API or a sink reuses a connection instead of opening one (and a
// TLS session) per call. A connection the server closed meanwhile is replaced: by the client when
// reading the answer fails, by Send() below when writing the request does. Clients are safe to
// share between threads.
std::shared_ptr<http::client::http_client> ClientFor(const web::uri& uri, const HttpClientRequest& request) {
  // Never destroyed: a client torn down during static destruction could outlive the threads it needs.
  static std::mutex& mu = *new std::mutex;
  static auto& clients = *new std::map<std::string, std::shared_ptr<http::client::http_client>>;
  constexpr size_t kMaxClients = 256;  // distinct origins; past it the cache starts over
  std::string key = uri.authority().to_string() + " " + std::to_string(request.timeout.count()) + " " +
                    std::to_string(request.max_redirects);
  std::lock_guard<std::mutex> lock(mu);
  auto it = clients.find(key);
  if (it != clients.end()) return it->second;
  http::client::http_client_config config;
  config.set_timeout(request.timeout);
  if (request.max_redirects >= 0) config.set_max_redirects(static_cast<size_t>(request.max_redirects));
  if (clients.size() >= kMaxClients) clients.clear();
  auto client = std::make_shared<http::client::http_client>(uri.authority(), config);
  clients.emplace(std::move(key), client);
  return client;
}

http::http_request CopyRequest(const HttpClientRequest& request, const web::uri& uri) {
  http::http_request req(request.method);
  req.set_request_uri(uri.resource());
  for (const auto& [k, v] : request.headers) req.headers().add(k, v);
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT") {
    req.set_body(request.body, request.content_type);
  }
  return req;
}

// Sends the request; the response's headers are read, its body not yet.
http::http_response Send(const HttpClientRequest& request) {
  web::uri uri(request.url);
  auto client = ClientFor(uri, request);
  // A kept-alive connection the server closed while it sat in the pool fails when the request is
  // written to it. Nothing complete reached the server then, so the request goes again, on another
  // connection (a few times: the pool may hold several such connections after a quiet spell). A
  // failure after the request was written is not retried here: the server may have acted on it.
  for (int attempt = 1;; ++attempt) {
    try {
      return client->request(CopyRequest(request, uri)).get();
    } catch (const http::http_exception& e) {
      if (attempt >= 4 || std::string(e.what()).rfind("Failed to write request", 0) != 0) throw;
      LOG(INFO) << "event=http_stale_connection url=" << request.url << " attempt=" << attempt << " what=" << e.what();
    }
  }
}

Status FetchError(const HttpClientRequest& request, const http::http_exception& e) {
  std::string what = e.what();
  bool timeout = what.find("timed out") != std::string::npos || e.error_code() == std::errc::timed_out;
  return Status(timeout ? Code::kTimeout : Code::kUnavailable, request.method + " " + request.url + ": " + what);
}

}  // namespace

Result<HttpResponse> HttpDownload(const HttpClientRequest& request, size_t max_bytes, const HttpBodySink& sink) {
  try {
    http::http_response resp = Send(request);
    HttpResponse out;
    out.status = resp.status_code();
    out.content_type = resp.headers().content_type();
    for (const auto& [k, v] : resp.headers()) out.headers[Lower(k)] = v;
    if (out.status / 100 != 2) {
      auto bytes = resp.extract_vector().get();
      out.body.assign(bytes.begin(), bytes.end());
      return out;
    }
    utility::size64_t declared = resp.headers().content_length();
    if (max_bytes > 0 && declared > max_bytes) {
      return Status(Code::kTooLarge, request.url + ": " + std::to_string(declared) + " bytes declared, over the limit of " +
                                         std::to_string(max_bytes));
    }
    auto body = resp.body();
    size_t total = 0;
    while (true) {
      concurrency::streams::container_buffer<std::vector<uint8_t>> chunk;
      size_t n = body.read(chunk, 64 * 1024).get();
      if (n == 0) break;
      total += n;
      if (max_bytes > 0 && total > max_bytes) {
        return Status(Code::kTooLarge, request.url + ": body over the limit of " + std::to_string(max_bytes) + " bytes");
      }
      Status s = sink(reinterpret_cast<const char*>(chunk.collection().data()), n);
      if (!s.ok()) return s;
    }
    return out;
  } catch (const http::http_exception& e) {
    return FetchError(request, e);
  } catch (const std::exception& e) {
    return Status(Code::kInvalidArgument, request.method + " " + request.url + ": " + e.what());
  }
}

Result<HttpResponse> HttpFetch(const HttpClientRequest& request) {
  try {
    http::http_response resp = Send(request);
    HttpResponse out;
    out.status = resp.status_code();
    out.content_type = resp.headers().content_type();
    for (const auto& [k, v] : resp.headers()) out.headers[Lower(k)] = v;
    auto bytes = resp.extract_vector().get();
    out.body.assign(bytes.begin(), bytes.end());
    return out;
  } catch (const http::http_exception& e) {
    return FetchError(request, e);
  } catch (const std::exception& e) {
    return Status(Code::kInvalidArgument, request.method + " " + request.url + ": " + e.what());
  }
}

HttpResponse JsonResponse(int status, const std::string& body) { return {status, "application/json", body + "\n", {}, ""}; }

HttpResponse JsonError(int status, const std::string& code, const std::string& message) {
  return JsonResponse(status, R"({"error":{"code":")" + JsonEscape(code) + R"(","message":")" + JsonEscape(message) + "\"}}");
}

std::optional<HttpResponse> RequireBearer(const HttpRequest& request, const std::string& token,
                                          const std::string& how_to_open) {
  if (token.empty()) return JsonError(403, "closed", "closed: " + how_to_open);
  const std::string want = "Bearer " + token, got = request.Header("authorization");
  if (got.size() != want.size() || CRYPTO_memcmp(got.data(), want.data(), want.size()) != 0) {
    HttpResponse resp = JsonError(401, "unauthenticated", "Authorization: Bearer <token> is needed");
    resp.headers["WWW-Authenticate"] = "Bearer";
    return resp;
  }
  return std::nullopt;
}

}  // namespace convoy
