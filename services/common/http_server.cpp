// The HTTP/1.1 listener of every convoy service, on Boost.Asio (the library cpprestsdk's own
// listener is built on). cpprestsdk's listener reads a whole declared body into memory before the
// answer can go, reads headers without a cap and has no read timeout or connection cap, so a
// public endpoint on it can be exhausted by one anonymous client; this one refuses before it
// reads. The only translation unit that includes Boost.Asio; cpprestsdk stays the HTTP client
// (http.cpp).
//
// Each connection reads into a buffer of its own and parses as bytes arrive:
//   idle --first byte--> headers (<= kMaxHeaderBytes) --> body (Content-Length or chunked,
//   <= max_body_bytes, and within the process-wide body memory budget) --> handling --> writing
//   --> idle (keep-alive) or closed.
// A deadline is armed for every phase but handling (idle: idle_timeout; headers and body together:
// read_timeout; each write: read_timeout); when it passes, the connection is closed.
#include <fcntl.h>
#include <glog/logging.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <cctype>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "convoy/crypto.h"
#include "convoy/http.h"
#include "convoy/metrics.h"

namespace convoy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kFileChunk = 64 * 1024;
constexpr size_t kMaxChunkLine = 1024;  // a chunk-size line, extensions included

const char* Reason(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Status";
  }
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

bool IsTokenChar(unsigned char c) {
  return std::isalnum(c) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

}  // namespace

bool PercentDecode(const std::string& in, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    int hi = i + 2 < in.size() ? HexDigitValue(in[i + 1]) : -1,
        lo = i + 2 < in.size() ? HexDigitValue(in[i + 2]) : -1;
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

std::optional<ParsedHead> ParseHttpHead(const std::string& head, std::string* error) {
  ParsedHead out;
  size_t line_end = head.find("\r\n");
  std::string line = head.substr(0, line_end);
  size_t sp1 = line.find(' '), sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos ||
      line.find(' ', sp2 + 1) != std::string::npos) {
    *error = "malformed request line";
    return std::nullopt;
  }
  out.method = line.substr(0, sp1);
  std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string version = line.substr(sp2 + 1);
  if (out.method.empty() || !std::all_of(out.method.begin(), out.method.end(),
                                         [](unsigned char c) { return IsTokenChar(c); })) {
    *error = "malformed method";
    return std::nullopt;
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    *error = version.rfind("HTTP/", 0) == 0 ? "version" : "malformed request line";
    return std::nullopt;
  }
  out.http10 = version == "HTTP/1.0";
  // Absolute form (a proxy's): keep the path.
  if (target.rfind("http://", 0) == 0 || target.rfind("https://", 0) == 0) {
    size_t slash = target.find('/', target.find("//") + 2);
    target = slash == std::string::npos ? "/" : target.substr(slash);
  }
  if (target.empty() || target[0] != '/') {
    *error = "the request target must be a path";
    return std::nullopt;
  }
  for (unsigned char c : target) {
    // Printable ASCII only, and none of the characters a URI never holds raw.
    if (c <= 0x20 || c >= 0x7f || c == '\\' || c == '"' || c == '<' || c == '>' || c == '{' ||
        c == '}' || c == '|' || c == '^' || c == '`') {
      *error = "a character not allowed in a request target";
      return std::nullopt;
    }
  }
  size_t q = target.find('?');
  std::string raw_path = target.substr(0, q);
  size_t hash = raw_path.find('#');
  if (hash != std::string::npos) raw_path.resize(hash);
  if (!PercentDecode(raw_path, &out.path)) {
    *error = "malformed percent-escape";
    return std::nullopt;
  }
  if (q != std::string::npos) {
    std::string query = target.substr(q + 1);
    size_t qhash = query.find('#');
    if (qhash != std::string::npos) query.resize(qhash);
    size_t pos = 0;
    while (pos <= query.size()) {
      size_t amp = query.find('&', pos);
      std::string pair =
          query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
      if (!pair.empty()) {
        size_t eq = pair.find('=');
        std::string k, v;
        if (!PercentDecode(pair.substr(0, eq), &k) ||
            !PercentDecode(eq == std::string::npos ? std::string() : pair.substr(eq + 1), &v)) {
          *error = "malformed percent-escape";
          return std::nullopt;
        }
        out.query[k] = v;
      }
      if (amp == std::string::npos) break;
      pos = amp + 1;
    }
  }
  // Header fields: name ":" value, no folding, no white space before the colon.
  size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string::npos) end = head.size();
    std::string field = head.substr(pos, end - pos);
    pos = end + 2;
    if (field.empty()) break;
    size_t colon = field.find(':');
    if (field[0] == ' ' || field[0] == '\t' || colon == std::string::npos || colon == 0 ||
        !std::all_of(field.begin(), field.begin() + static_cast<long>(colon),
                     [](unsigned char c) { return IsTokenChar(c); })) {
      *error = "malformed header field";
      return std::nullopt;
    }
    std::string name = Lower(field.substr(0, colon)), value = Trim(field.substr(colon + 1));
    if (std::any_of(value.begin(), value.end(),
                    [](unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; })) {
      *error = "a control character in a header value";
      return std::nullopt;
    }
    auto it = out.headers.find(name);
    if (it == out.headers.end()) {
      out.headers.emplace(name, value);
    } else if (name == "content-length") {
      if (it->second != value) {
        *error = "conflicting Content-Length headers";
        return std::nullopt;
      }
    } else {
      it->second += ", " + value;
    }
  }
  auto te = out.headers.find("transfer-encoding");
  auto cl = out.headers.find("content-length");
  if (te != out.headers.end()) {
    if (cl != out.headers.end()) {
      *error = "both Transfer-Encoding and Content-Length";
      return std::nullopt;
    }
    if (Lower(te->second) != "chunked") {
      *error = "transfer-encoding";
      return std::nullopt;
    }
    out.chunked = true;
  } else if (cl != out.headers.end()) {
    const std::string& v = cl->second;
    if (v.empty() || v.size() > 19 ||
        !std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isdigit(c); })) {
      *error = "malformed Content-Length";
      return std::nullopt;
    }
    out.content_length = std::stoull(v);
  }
  std::string connection =
      Lower(out.headers.count("connection") ? out.headers["connection"] : std::string());
  out.keep_alive = out.http10 ? connection.find("keep-alive") != std::string::npos
                              : connection.find("close") == std::string::npos;
  out.expect_continue =
      Lower(out.headers.count("expect") ? out.headers["expect"] : std::string()) == "100-continue";
  return out;
}

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  explicit Impl(HttpServerOptions o) : options(std::move(o)) {}

  struct RouteEntry {
    std::string method, prefix;
    HttpHandler handler;
    AsyncHttpHandler async;
  };
  class Connection;

  HttpServerOptions options;
  std::vector<RouteEntry> routes;
  std::atomic<bool> stopping{false};
  std::atomic<int64_t> in_flight{0};
  std::atomic<int64_t> connections{0};
  std::atomic<int64_t> body_bytes{0};  // request bodies held in memory, all connections together
  int port = 0;
  std::mutex conns_mu;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> conns;
  std::vector<std::thread> threads;

  Registry& reg = DefaultRegistry();
  Gauge& in_flight_gauge = reg.GetGauge("convoy_http_requests_in_flight",
                                        "HTTP requests received and not yet answered.");
  Gauge& connections_gauge = reg.GetGauge("convoy_http_connections", "HTTP connections open.");
  Counter& Refused(const std::string& reason) {
    return reg.GetCounter(
        "convoy_http_requests_refused_total",
        "HTTP requests or connections refused by the listener before any handler, by reason.",
        "reason=\"" + reason + "\"");
  }

  // Declared last: destroyed first, while everything a connection's destructor touches is alive.
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  // The acceptor and its pause timer live on a strand of their own: Stop() closes the acceptor
  // from another thread.
  std::optional<asio::strand<asio::io_context::executor_type>> accept_strand;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::unique_ptr<asio::steady_timer> accept_pause;

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

  HttpResponse Builtin(const HttpRequest& req) {
    if (req.path == "/healthz") return {200, "text/plain; charset=utf-8", "ok\n", {}};
    if (req.path == "/readyz") {
      bool ready = !options.ready || options.ready();
      return {
          ready ? 200 : 503, "text/plain; charset=utf-8", ready ? "ready\n" : "not ready\n", {}};
    }
    if (options.limits.metrics_port >= 0)
      return {404, "text/plain; charset=utf-8", "not found\n", {}};
    return {200, "text/plain; version=0.0.4", DefaultRegistry().Render(), {}};
  }

  // Reserves `n` bytes of the body budget; false when it would pass the budget.
  bool Reserve(size_t n) {
    int64_t want = static_cast<int64_t>(n);
    int64_t cur = body_bytes.load();
    while (true) {
      if (cur + want > static_cast<int64_t>(options.limits.max_body_memory_bytes)) return false;
      if (body_bytes.compare_exchange_weak(cur, cur + want)) return true;
    }
  }
  void Release(size_t n) { body_bytes.fetch_sub(static_cast<int64_t>(n)); }

  void Accept();
  bool EvictOne();
};

class HttpServer::Impl::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Impl* server, tcp::socket socket)
      : server_(server), socket_(std::move(socket)), timer_(socket_.get_executor()) {
    server_->connections.fetch_add(1);
    server_->connections_gauge.Add(1);
  }
  ~Connection() {
    server_->Release(reserved_);
    server_->connections.fetch_sub(1);
    server_->connections_gauge.Add(-1);
    std::lock_guard<std::mutex> lock(server_->conns_mu);
    server_->conns.erase(this);
  }

  void Start() {
    {
      std::lock_guard<std::mutex> lock(server_->conns_mu);
      server_->conns.emplace(this, weak_from_this());
    }
    asio::dispatch(socket_.get_executor(), [self = shared_from_this()] {
      self->SetPhase(Phase::kIdle);
      self->Arm(self->server_->options.limits.idle_timeout);
      self->Read();
    });
  }

  int64_t evictable_since() const { return evictable_since_.load(); }
  // Takes the connection out of the running for eviction; false when it left it meanwhile (it got
  // busy, or another eviction chose it).
  bool ClaimForEviction(int64_t since) {
    return evictable_since_.compare_exchange_strong(since, 0);
  }

  // From any thread: closes the connection (Stop(), eviction).
  void CloseSoon() {
    asio::post(socket_.get_executor(), [self = shared_from_this()] { self->Close(); });
  }

  // From any thread, once: the answer to the request being handled.
  void Answer(HttpResponse resp) {
    asio::post(socket_.get_executor(),
               [self = shared_from_this(), resp = std::move(resp)]() mutable {
                 self->Write(std::move(resp));
               });
  }

 private:
  enum class Phase { kIdle, kHeaders, kBody, kHandling, kWriting, kLingering, kClosed };

  // An idle connection, or one still sending its headers, may be closed to make room for a new
  // one when the listener is full (the oldest first): one client holding every slot with idle
  // keep-alives or half-sent heads cannot lock everyone else out.
  void SetPhase(Phase p) {
    const bool evictable = p == Phase::kIdle || p == Phase::kHeaders;
    const bool was = phase_ == Phase::kIdle || phase_ == Phase::kHeaders;
    phase_ = p;
    if (!evictable) {
      evictable_since_.store(0);
    } else if (!was || evictable_since_.load() == 0) {
      evictable_since_.store(Clock::now().time_since_epoch().count());
    }
  }

  void Arm(std::chrono::seconds after) {
    timer_.expires_after(after);
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->phase_ == Phase::kClosed || self->phase_ == Phase::kHandling) return;
      if (self->timer_.expiry() > Clock::now()) return;  // armed again since
      if (self->phase_ != Phase::kIdle && self->phase_ != Phase::kLingering)
        self->server_->Refused("timeout").Inc();
      self->Close();
    });
  }

  void Read() {
    if (phase_ == Phase::kClosed) return;
    socket_.async_read_some(
        asio::buffer(chunk_),
        [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
          if (ec || self->phase_ == Phase::kClosed) {
            self->Close();
            return;
          }
          self->in_.append(self->chunk_.data(), n);
          self->Process();
        });
  }

  // Parses what has arrived; reads more, answers, or hands the request to its handler.
  void Process() {
    if (phase_ == Phase::kIdle && !in_.empty()) {
      SetPhase(Phase::kHeaders);
      Arm(server_->options.limits.read_timeout);
    }
    if (phase_ == Phase::kIdle) return Read();
    if (phase_ == Phase::kHeaders) {
      size_t from = scanned_ > 3 ? scanned_ - 3 : 0;
      size_t end = in_.find("\r\n\r\n", from);
      if (end == std::string::npos) {
        scanned_ = in_.size();
        if (in_.size() > kMaxHeaderBytes)
          return Refuse(431, "headers_too_large", "request line and headers over 16 KiB\n");
        return Read();
      }
      if (end + 4 > kMaxHeaderBytes)
        return Refuse(431, "headers_too_large", "request line and headers over 16 KiB\n");
      std::string error;
      auto head = ParseHttpHead(in_.substr(0, end + 2), &error);
      in_.erase(0, end + 4);
      scanned_ = 0;
      if (!head) {
        if (error == "version") return Refuse(505, "version", "HTTP/1.0 or HTTP/1.1 only\n");
        if (error == "transfer-encoding")
          return Refuse(501, "transfer_encoding", "only chunked transfer coding is understood\n");
        return Refuse(400, error == "malformed percent-escape" ? "percent_escape" : "malformed",
                      error + "\n");
      }
      head_ = std::move(*head);
      if (head_.method == "TRACE" || head_.method == "CONNECT")
        return Refuse(405, "method", "method not allowed\n");
      const size_t max_body = server_->options.max_body_bytes;
      if (!head_.chunked && head_.content_length > max_body) return TooLarge();
      body_.clear();
      chunk_left_ = 0;
      chunk_state_ = ChunkState::kSize;
      SetPhase(Phase::kBody);
      if (head_.expect_continue && !head_.http10 && (head_.chunked || head_.content_length > 0) &&
          in_.empty()) {
        return WriteRaw("HTTP/1.1 100 Continue\r\n\r\n", [](Connection* c) { c->Process(); });
      }
    }
    if (phase_ == Phase::kBody) {
      if (!head_.chunked) {
        size_t want = static_cast<size_t>(head_.content_length) - body_.size();
        size_t take = std::min(want, in_.size());
        if (!Hold(take))
          return Refuse(503, "body_memory", "busy: too many request bodies in memory\n");
        body_.append(in_, 0, take);
        in_.erase(0, take);
        if (body_.size() < head_.content_length) return Read();
        return Dispatch();
      }
      bool whole = false;
      if (!Dechunk(&whole)) return;  // refused
      if (!whole) return Read();
      return Dispatch();
    }
  }

  enum class ChunkState { kSize, kData, kDataEnd, kTrailer };

  // Moves chunked body bytes from in_ to body_. False when the request was refused.
  bool Dechunk(bool* whole) {
    const size_t max_body = server_->options.max_body_bytes;
    while (true) {
      if (chunk_state_ == ChunkState::kSize || chunk_state_ == ChunkState::kTrailer) {
        size_t eol = in_.find("\r\n");
        if (eol == std::string::npos) {
          if (in_.size() > kMaxChunkLine) {
            Refuse(400, "malformed", "malformed chunked body\n");
            return false;
          }
          return true;
        }
        std::string line = in_.substr(0, eol);
        in_.erase(0, eol + 2);
        if (chunk_state_ == ChunkState::kTrailer) {
          if (line.empty()) {
            *whole = true;
            return true;
          }
          continue;  // trailer fields are read and dropped
        }
        std::string size = line.substr(0, line.find(';'));
        size = Trim(size);
        if (size.empty() || size.size() > 15 ||
            !std::all_of(size.begin(), size.end(), [](char c) { return HexDigitValue(c) >= 0; })) {
          Refuse(400, "malformed", "malformed chunk size\n");
          return false;
        }
        chunk_left_ = std::stoull(size, nullptr, 16);
        if (chunk_left_ == 0) {
          chunk_state_ = ChunkState::kTrailer;
          continue;
        }
        if (body_.size() + chunk_left_ > max_body) {
          TooLarge();
          return false;
        }
        chunk_state_ = ChunkState::kData;
      }
      if (chunk_state_ == ChunkState::kData) {
        size_t take = std::min<size_t>(chunk_left_, in_.size());
        if (!Hold(take)) {
          Refuse(503, "body_memory", "busy: too many request bodies in memory\n");
          return false;
        }
        body_.append(in_, 0, take);
        in_.erase(0, take);
        chunk_left_ -= take;
        if (chunk_left_ > 0) return true;
        chunk_state_ = ChunkState::kDataEnd;
      }
      if (chunk_state_ == ChunkState::kDataEnd) {
        if (in_.size() < 2) return true;
        if (in_.compare(0, 2, "\r\n") != 0) {
          Refuse(400, "malformed", "malformed chunked body\n");
          return false;
        }
        in_.erase(0, 2);
        chunk_state_ = ChunkState::kSize;
      }
    }
  }

  // Counts `n` more body bytes against the process's budget as they arrive (a declared length
  // reserves nothing: 22 clients declaring 3 MiB and sending none would hold 64 MiB for nothing).
  bool Hold(size_t n) {
    if (n == 0) return true;
    if (!server_->Reserve(n)) return false;
    reserved_ += n;
    return true;
  }

  void TooLarge() {
    if (server_->options.on_too_large) server_->options.on_too_large();
    Refuse(
        413, "too_large",
        "body over the limit of " + std::to_string(server_->options.max_body_bytes) + " bytes\n");
  }

  // Answers a request the listener refuses itself, then closes: what follows on the
  // connection (the rest of a body, say) is never read.
  void Refuse(int status, const std::string& reason, const std::string& text) {
    server_->Refused(reason).Inc();
    close_after_ = true;
    HttpResponse resp{status, "text/plain; charset=utf-8", text, {}};
    SetPhase(Phase::kWriting);
    Arm(server_->options.limits.read_timeout);
    WriteRaw(Serialize(resp, resp.body.size()) + resp.body, [](Connection* c) { c->Linger(); });
  }

  // After a refusal: the answer and our FIN are out; what the client still sends (the rest of the
  // body it began) is read and dropped, up to kLingerBytes or kLingerTime, so that closing with
  // unread bytes does not reset the connection before the client has read the answer.
  static constexpr size_t kLingerBytes = 8 << 20;
  static constexpr std::chrono::seconds kLingerTime{1};
  void Linger() {
    SetPhase(Phase::kLingering);
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    Arm(kLingerTime);
    Drain();
  }
  void Drain() {
    socket_.async_read_some(
        asio::buffer(chunk_),
        [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
          self->lingered_ += n;
          if (ec || self->phase_ != Phase::kLingering || self->lingered_ > kLingerBytes)
            return self->Close();
          self->Drain();
        });
  }

  void Dispatch() {
    SetPhase(Phase::kHandling);
    timer_.cancel();
    server_->in_flight.fetch_add(1);
    server_->in_flight_gauge.Add(1);
    answered_ = false;
    close_after_ = !head_.keep_alive;
    head_only_ = head_.method == "HEAD";
    HttpRequest req;
    req.method = std::move(head_.method);
    req.path = std::move(head_.path);
    req.query = std::move(head_.query);
    req.headers = std::move(head_.headers);
    req.body = std::move(body_);
    body_.clear();
    if (server_->stopping.load()) {
      close_after_ = true;
      return Write({503, "text/plain; charset=utf-8", "shutting down\n", {}});
    }
    bool builtin = req.path == "/healthz" || req.path == "/readyz" || req.path == "/metrics";
    bool path_known = false;
    const RouteEntry* route = builtin ? nullptr : server_->Find(req, &path_known);
    if (route && route->async) {
      // The responder keeps the server (its io_context) and the connection alive until it is
      // dropped; the connection goes first (declared last), while the server it points to is alive.
      struct Pending {
        std::shared_ptr<Impl> server;
        std::shared_ptr<Connection> conn;
        std::atomic<bool> once{false};
        // A handler that drops its responder unanswered: the client gets a 500, and the request
        // stops counting as in flight.
        ~Pending() {
          if (!once.exchange(true))
            conn->Answer({500, "text/plain; charset=utf-8", "internal error: no answer\n", {}});
        }
      };
      auto hold = std::make_shared<Pending>();
      hold->server = server_->shared_from_this();
      hold->conn = shared_from_this();
      HttpResponder respond = [hold](HttpResponse resp) {
        if (hold->once.exchange(true)) return;
        hold->conn->Answer(std::move(resp));
      };
      try {
        route->async(req, respond);
      } catch (const std::exception& e) {
        LOG(ERROR) << "event=http_handler_exception path=" << req.path << " what=" << e.what();
        respond({500, "text/plain; charset=utf-8", "internal error\n", {}});
      } catch (...) {
        LOG(ERROR) << "event=http_handler_exception path=" << req.path << " what=unknown";
        respond({500, "text/plain; charset=utf-8", "internal error\n", {}});
      }
      return;
    }
    HttpResponse resp;
    try {
      if (builtin) {
        resp = server_->Builtin(req);
      } else if (!route) {
        resp = {path_known ? 405 : 404,
                "text/plain; charset=utf-8",
                path_known ? "method not allowed\n" : "not found\n",
                {}};
      } else {
        resp = route->handler(req);
      }
    } catch (const std::exception& e) {
      LOG(ERROR) << "event=http_handler_exception path=" << req.path << " what=" << e.what();
      resp = {500, "text/plain; charset=utf-8", "internal error\n", {}};
    } catch (...) {
      LOG(ERROR) << "event=http_handler_exception path=" << req.path << " what=unknown";
      resp = {500, "text/plain; charset=utf-8", "internal error\n", {}};
    }
    Write(std::move(resp));
  }

  std::string Serialize(const HttpResponse& resp, uint64_t length) const {
    std::string out =
        "HTTP/1.1 " + std::to_string(resp.status) + " " + Reason(resp.status) + "\r\n";
    out += "Content-Type: " + resp.content_type + "\r\n";
    out += "Content-Length: " + std::to_string(length) + "\r\n";
    for (const auto& [k, v] : resp.headers) {
      std::string lk = Lower(k);
      if (lk == "content-length" || lk == "content-type" || lk == "connection" ||
          lk == "transfer-encoding")
        continue;
      if (k.find_first_of("\r\n:") != std::string::npos ||
          v.find_first_of("\r\n") != std::string::npos)
        continue;
      out += k + ": " + v + "\r\n";
    }
    if (close_after_) out += "Connection: close\r\n";
    out += "\r\n";
    return out;
  }

  // The answer to a dispatched request: on the strand, once.
  void Write(HttpResponse resp) {
    if (answered_) return;
    answered_ = true;
    server_->in_flight.fetch_sub(1);
    server_->in_flight_gauge.Add(-1);
    server_->Release(reserved_);
    reserved_ = 0;
    if (phase_ == Phase::kClosed) return;
    if (server_->stopping.load()) close_after_ = true;
    SetPhase(Phase::kWriting);
    Arm(server_->options.limits.read_timeout);
    if (!resp.file_path.empty()) {
      int fd = ::open(resp.file_path.c_str(), O_RDONLY | O_CLOEXEC);
      struct stat st {};
      if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0) ::close(fd);
        LOG(WARNING) << "event=http_file_unreadable path=" << resp.file_path;
        resp = {404, "text/plain; charset=utf-8", "not found\n", {}};
      } else {
        file_ = fd;
        file_left_ = static_cast<uint64_t>(st.st_size);
        file_off_ = 0;
        std::string head = Serialize(resp, file_left_);
        if (head_only_) file_left_ = 0;  // HEAD: the length, not the bytes
        return WriteRaw(std::move(head), [](Connection* c) { c->WriteFile(); });
      }
    }
    std::string wire = Serialize(resp, resp.body.size());
    if (!head_only_) wire += resp.body;
    WriteRaw(std::move(wire), [](Connection* c) { c->Done(); });
  }

  void WriteFile() {
    if (file_left_ == 0) {
      ::close(file_);
      file_ = -1;
      return Done();
    }
    std::string buf(std::min<uint64_t>(kFileChunk, file_left_), '\0');
    ssize_t n = ::pread(file_, buf.data(), buf.size(), static_cast<off_t>(file_off_));
    if (n <= 0) {  // the file shrank under us: the length already sent cannot be kept
      LOG(WARNING) << "event=http_file_read_failed";
      return Close();
    }
    buf.resize(static_cast<size_t>(n));
    file_off_ += static_cast<uint64_t>(n);
    file_left_ -= static_cast<uint64_t>(n);
    Arm(server_->options.limits.read_timeout);
    WriteRaw(std::move(buf), [](Connection* c) { c->WriteFile(); });
  }

  // After a whole answer: the next request, or close.
  void Done() {
    if (close_after_) return Close();
    SetPhase(Phase::kIdle);
    Arm(server_->options.limits.idle_timeout);
    Process();  // a pipelined request may have arrived already
  }

  void WriteRaw(std::string bytes, void (*then)(Connection*)) {
    out_ = std::move(bytes);
    asio::async_write(
        socket_, asio::buffer(out_),
        [self = shared_from_this(), then](const boost::system::error_code& ec, size_t) {
          if (ec || self->phase_ == Phase::kClosed) return self->Close();
          then(self.get());
        });
  }

  void Close() {
    if (phase_ == Phase::kClosed) return;
    bool handling = phase_ == Phase::kHandling;
    SetPhase(Phase::kClosed);
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    timer_.cancel();
    if (file_ >= 0) {
      ::close(file_);
      file_ = -1;
    }
    if (!handling) {
      server_->Release(reserved_);
      reserved_ = 0;
    }
  }

  Impl* server_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  Phase phase_ = Phase::kIdle;
  std::atomic<int64_t> evictable_since_{0};  // steady-clock ticks since it became evictable; 0: not
  std::array<char, kReadChunk> chunk_{};
  std::string in_, body_, out_;
  size_t scanned_ = 0;
  ParsedHead head_;
  ChunkState chunk_state_ = ChunkState::kSize;
  uint64_t chunk_left_ = 0;
  size_t reserved_ = 0;  // bytes of the body budget this connection holds
  size_t lingered_ = 0;
  bool close_after_ = false;
  bool answered_ = false;
  bool head_only_ = false;  // a HEAD request: its answer has no body
  int file_ = -1;
  uint64_t file_left_ = 0, file_off_ = 0;
};

// Closes the connection that has been idle (or sending its headers) the longest, to make room;
// false when every connection is busy with a request.
bool HttpServer::Impl::EvictOne() {
  std::shared_ptr<Connection> victim;
  {
    // A connection in the map is alive, or blocked in its destructor on this lock with its
    // members intact; only the one chosen is locked (and released outside the lock).
    std::lock_guard<std::mutex> lock(conns_mu);
    Connection* oldest = nullptr;
    int64_t since = 0;
    for (const auto& [raw, weak] : conns) {
      const int64_t t = raw->evictable_since();
      if (t > 0 && (oldest == nullptr || t < since)) {
        oldest = raw;
        since = t;
      }
    }
    if (oldest && oldest->ClaimForEviction(since)) victim = conns[oldest].lock();
  }
  if (!victim) return false;
  Refused("evicted").Inc();
  victim->CloseSoon();
  return true;
}

void HttpServer::Impl::Accept() {
  acceptor->async_accept(asio::make_strand(io), [this](const boost::system::error_code& ec,
                                                       tcp::socket socket) {
    if (stopping.load() || !acceptor->is_open()) return;
    if (ec) {
      // Out of descriptors, say: pause instead of spinning on the error.
      LOG_EVERY_N(WARNING, 100) << "event=http_accept_failed error=" << ec.message();
      accept_pause->expires_after(std::chrono::milliseconds(100));
      accept_pause->async_wait([this](const boost::system::error_code&) {
        if (!stopping.load()) Accept();
      });
      return;
    }
    if (connections.load() >= static_cast<int64_t>(options.limits.max_connections) && !EvictOne()) {
      Refused("connections").Inc();
      static const char kBusy[] =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; "
          "charset=utf-8\r\nContent-Length: 22\r\n"
          "Connection: close\r\nRetry-After: 1\r\n\r\ntoo many connections\r\n";
      boost::system::error_code ignored;
      socket.non_blocking(true, ignored);
      socket.write_some(asio::buffer(kBusy, sizeof(kBusy) - 1), ignored);
      socket.close(ignored);
    } else {
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      std::make_shared<Connection>(this, std::move(socket))->Start();
    }
    Accept();
  });
}

namespace {
// The metrics listener: the builtins only, for a scraper or two and the probes. Its own threads and
// connection budget, so a flood on the public port cannot starve a scrape (nor the reverse).
HttpServerOptions MetricsListenerOptions(const HttpServerOptions& main) {
  HttpLimits limits;
  limits.read_timeout = main.limits.read_timeout;
  limits.idle_timeout = main.limits.idle_timeout;
  limits.max_connections = 64;
  limits.max_body_memory_bytes = 1 << 20;
  limits.threads = 1;
  return HttpServerOptions(main.host, main.limits.metrics_port, 4096, main.ready, {}, limits);
}
}  // namespace

HttpServer::HttpServer(HttpServerOptions options)
    : impl_(std::make_shared<Impl>(std::move(options))) {
  if (impl_->options.limits.metrics_port >= 0) {
    metrics_ = std::make_unique<HttpServer>(MetricsListenerOptions(impl_->options));
  }
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::RouteAsync(const std::string& method, const std::string& path_prefix,
                            AsyncHttpHandler handler) {
  impl_->routes.push_back({method, path_prefix, nullptr, std::move(handler)});
}

void HttpServer::Route(const std::string& method, const std::string& path_prefix,
                       HttpHandler handler) {
  impl_->routes.push_back({method, path_prefix, std::move(handler), nullptr});
}

Status HttpServer::Start() {
  auto& o = impl_->options;
  // Each connection is a descriptor: make room for max_connections of them (up to the hard limit).
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max &&
      lim.rlim_cur < static_cast<rlim_t>(o.limits.max_connections) + 256) {
    lim.rlim_cur =
        std::min<rlim_t>(lim.rlim_max, static_cast<rlim_t>(o.limits.max_connections) * 2 + 256);
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
  boost::system::error_code ec;
  auto address = asio::ip::make_address(o.host == "localhost" ? "127.0.0.1" : o.host, ec);
  if (ec) return Status(Code::kInvalidArgument, "cannot listen on " + o.host + ": " + ec.message());
  tcp::endpoint endpoint(address, static_cast<unsigned short>(o.port));
  impl_->accept_strand.emplace(asio::make_strand(impl_->io));
  auto acceptor = std::make_unique<tcp::acceptor>(*impl_->accept_strand);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status(Code::kUnavailable, "cannot listen on " + o.host + ":" + std::to_string(o.port) +
                                          ": " + ec.message());
  }
  impl_->port = acceptor->local_endpoint().port();
  impl_->acceptor = std::move(acceptor);
  impl_->accept_pause = std::make_unique<asio::steady_timer>(*impl_->accept_strand);
  impl_->work.emplace(impl_->io.get_executor());
  impl_->Accept();
  for (size_t i = 0; i < std::max<size_t>(1, o.limits.threads); ++i) {
    impl_->threads.emplace_back([impl = impl_.get()] { impl->io.run(); });
  }
  if (metrics_) {
    Status s = metrics_->Start();
    if (!s.ok()) {
      Stop();
      return Status(s.code(), "metrics listener (--metrics_port): " + s.message());
    }
  }
  return Status::Ok();
}

void HttpServer::Stop() {
  if (metrics_) metrics_->Stop();
  if (!impl_->acceptor) return;
  impl_->stopping = true;
  asio::post(*impl_->accept_strand, [impl = impl_.get()] {
    boost::system::error_code ignored;
    impl->acceptor->close(ignored);
    impl->accept_pause->cancel();
  });
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (impl_->in_flight.load() > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // draining: polled with a deadline
  }
  if (impl_->in_flight.load() > 0) {
    LOG(WARNING) << "event=http_stop_with_requests_in_flight count=" << impl_->in_flight.load();
  }
  // Taken out under the lock, closed (and perhaps destroyed) outside it: a connection's destructor
  // takes the lock too.
  std::vector<std::shared_ptr<Impl::Connection>> open;
  {
    std::lock_guard<std::mutex> lock(impl_->conns_mu);
    for (auto& [raw, weak] : impl_->conns) {
      if (auto conn = weak.lock()) open.push_back(std::move(conn));
    }
  }
  for (auto& conn : open) conn->CloseSoon();
  open.clear();
  impl_->work.reset();
  deadline = Clock::now() + std::chrono::seconds(2);
  while (impl_->connections.load() > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // closing: polled with a deadline
  }
  impl_->io.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  impl_->acceptor.reset();
}

int HttpServer::port() const { return impl_->port; }

int HttpServer::metrics_port() const { return metrics_ ? metrics_->port() : -1; }

int64_t HttpServer::in_flight() const { return impl_->in_flight.load(); }

int64_t HttpServer::connections() const { return impl_->connections.load(); }

}  // namespace convoy
