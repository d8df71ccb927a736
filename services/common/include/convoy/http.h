#pragma once
// HTTP server and client behind plain structs. http.cpp is the only translation unit that
// includes cpprestsdk. The server always serves /healthz and /readyz, and /metrics unless
// limits.metrics_port gives it a listener of its own.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "convoy/status.h"

namespace convoy {

struct HttpRequest {
  std::string method;                          // "GET", "POST", ...
  std::string path;                            // decoded path, no query
  std::map<std::string, std::string> query;    // decoded query parameters
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;                            // raw bytes as received
  std::string Header(const std::string& lower_name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::map<std::string, std::string> headers;
  // Server side: when set, the answer's body is this file, streamed from disk (body is ignored).
  std::string file_path = "";
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;
// An asynchronous handler answers through `respond`, from any thread, once (later calls are
// ignored); it holds no thread while it waits (for a broker confirm, say).
using HttpResponder = std::function<void(HttpResponse)>;
using AsyncHttpHandler = std::function<void(const HttpRequest&, HttpResponder respond)>;

// What one listener lets a client hold. Every limit has a default fit for a public endpoint.
struct HttpLimits {
  std::chrono::seconds read_timeout{10};  // a request's headers and body must arrive within this
  std::chrono::seconds idle_timeout{60};  // a keep-alive connection with no request is closed
  size_t max_connections =
      1000;  // past it the oldest idle one is closed, else the new one gets 503
  size_t max_body_memory_bytes = 64 << 20;  // request bodies held at once, all connections together
  size_t threads = 4;                       // I/O threads; handlers run on them
  // -1: /metrics is served here with the routes. A port (0: a free one): /metrics is served only
  // by a listener of its own on that port (with /healthz and /readyz; small fixed limits), so a
  // NetworkPolicy can open it to the monitoring namespace alone, and this listener answers 404.
  // It sits with the limits because every service builds those from flags (HttpLimitsFromFlags).
  int metrics_port = -1;
};

// Request line and headers together, at most (431 past it).
constexpr size_t kMaxHeaderBytes = 16 * 1024;

struct HttpServerOptions {
  HttpServerOptions(std::string h, int p, size_t max_body, std::function<bool()> is_ready = {},
                    std::function<void()> too_large = {}, HttpLimits l = {})
      : host(std::move(h)),
        port(p),
        max_body_bytes(max_body),
        ready(std::move(is_ready)),
        on_too_large(std::move(too_large)),
        limits(l) {}
  std::string host = "127.0.0.1";
  int port = 0;  // 0: a free port is chosen; see HttpServer::port()
  size_t max_body_bytes =
      3 * 1024 * 1024;                 // larger bodies get 413 and the connection closed, unread
  std::function<bool()> ready;         // /readyz: 200 when true, 503 otherwise
  std::function<void()> on_too_large;  // called for every 413 (bodies are never read)
  HttpLimits limits;
};

// A request's line and headers as the listener parsed them (exposed for its unit tests).
struct ParsedHead {
  std::string method, path;
  std::map<std::string, std::string> query, headers;  // header names lower-cased
  bool http10 = false, chunked = false, keep_alive = true, expect_continue = false;
  uint64_t content_length = 0;
};
// `head` is the request line and header fields, each ending in CRLF, without the empty line.
// nullopt with `error` set when the request must be refused ("version" -> 505,
// "transfer-encoding" -> 501, anything else -> 400).
std::optional<ParsedHead> ParseHttpHead(const std::string& head, std::string* error);
// %XX escapes decoded; false on a malformed escape (`%zz`, a lone `%`).
bool PercentDecode(const std::string& in, std::string* out);

class HttpServer {
 public:
  explicit HttpServer(HttpServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Routes match by method and path prefix; the longest prefix wins. Add before Start().
  void Route(const std::string& method, const std::string& path_prefix, HttpHandler handler);
  void RouteAsync(const std::string& method, const std::string& path_prefix,
                  AsyncHttpHandler handler);
  Status Start();
  // Stops accepting, answers 503 to requests not yet dispatched, and waits (up to 10 s) for the
  // requests in flight to be answered. Handlers never run after Stop() returns.
  void Stop();
  int port() const;
  int metrics_port() const;     // the metrics listener's port; -1 when /metrics is served on port()
  int64_t in_flight() const;    // requests received and not yet answered (also a /metrics gauge)
  int64_t connections() const;  // connections open (also a /metrics gauge)

 private:
  struct Impl;
  std::shared_ptr<Impl>
      impl_;  // shared with asynchronous responders, which may answer after Stop()
  std::unique_ptr<HttpServer> metrics_;  // the /metrics listener, when limits.metrics_port >= 0
};

struct HttpClientRequest {
  std::string method = "GET";
  std::string url;  // absolute
  std::map<std::string, std::string> headers;
  std::string body;
  std::string content_type = "application/json";
  // Inactivity: no byte sent or received for this long ends the exchange (kTimeout).
  std::chrono::milliseconds timeout{10000};
  // The whole exchange (connect, request, answer and its body) ends within this, however the
  // bytes trickle (kTimeout); 0: three times `timeout`.
  std::chrono::milliseconds deadline{0};
  // Redirects followed automatically. None by default: a 3xx is the answer, so a request's
  // credentials never follow a redirect to another origin, nor a sink to an internal address.
  int max_redirects = 0;
  // The most of an answer's body that is read (HttpFetch; HttpDownload's non-2xx answers): an
  // API's answer is small, and a larger one (declared or counted) is Code::kTooLarge.
  size_t max_response_bytes = 1 << 20;
  // For URLs someone configured (a sink, an upload destination, an extractor): the host is
  // resolved, every address must be public (else Code::kRejected, nothing sent), and the request
  // goes to the very address that was checked (convoy/ssrf.h). No redirect is followed then.
  bool public_only = false;
  // Whether the request may be sent again when its connection fails after the whole of it was
  // written, before the answer came. GET, HEAD and OPTIONS always may; anything else (a POST that
  // sends a WhatsApp message, a signed webhook) is not: that failure is kUnavailable (kTimeout when
  // the timeout struck) saying "the server may have acted on it" (the outcome is uncertain: never
  // a blind retry). Only a request that failed while being written (never whole at the server)
  // goes again, on another connection.
  bool retry_safe = false;
  // A request that is not retry_safe never goes on a kept-alive connection that sat idle longer
  // than this: servers close idle connections (Node after 5 s), and a request written to one the
  // server closed gets no answer, uncertain. Keep it under the servers' idle timeouts.
  std::chrono::milliseconds max_idle_reuse{3000};
};

// Transport failures (refused, reset, timeout) are kUnavailable/kTimeout, an answer over
// max_response_bytes kTooLarge (the download stops there: what the client holds is bounded too);
// any HTTP status is a successful exchange whose status the caller interprets.
Result<HttpResponse> HttpFetch(const HttpClientRequest& request);

// Like HttpFetch, but a 2xx answer's body is handed to `sink` in chunks as it arrives (never held
// whole in memory) and is not in the returned response. A body over max_bytes (declared in
// Content-Length or counted while reading) stops the read: Code::kTooLarge. A sink error stops it
// too and is returned. Other answers are read into the response's body as HttpFetch does.
using HttpBodySink = std::function<Status(const char* data, size_t size)>;
Result<HttpResponse> HttpDownload(const HttpClientRequest& request, size_t max_bytes,
                                  const HttpBodySink& sink);

// JSON APIs: a JSON answer and an error as {"error": {"code", "message"}}. The bearer-token gate
// of the /v1/ APIs is convoy/tokens.h's Admit.
HttpResponse JsonResponse(int status, const std::string& body);
HttpResponse JsonError(int status, const std::string& code, const std::string& message);

// Sets the size of the HTTP thread pool; call once before any server or client is created.
void InitHttpThreads(size_t threads);

}  // namespace convoy
