// The HTTP client: the only translation unit that includes cpprestsdk (about 12 s of compile on 2
// cores). The listener is http_server.cpp.
#include "convoy/http.h"

#include <cpprest/containerstream.h>
#include <cpprest/http_client.h>
#include <cpprest/producerconsumerstream.h>
#include <glog/logging.h>
#include <openssl/crypto.h>
#include <pplx/threadpool.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "convoy/json.h"
#include "convoy/metrics.h"
#include "convoy/ssrf.h"

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

// The request as sent: its URL (pinned to the checked address for public_only) and the Host
// header that keeps the name for the server, SNI and the certificate check.
struct Target {
  web::uri uri;
  std::string host_header;
  int max_redirects = 0;
};

// Whether cpprestsdk may send the request again on another connection when the answer's status
// line fails to arrive on a reused one (asio_context::handle_failed_read_status_line): the
// server may have read it and acted on it by then.
bool RetrySafe(const HttpClientRequest& request) {
  return request.retry_safe || request.method == "GET" || request.method == "HEAD" ||
         request.method == "OPTIONS";
}

// Clients per (scheme, address, port, Host, timeout, redirects), kept for the process's life. A
// client keeps its connection open between requests (HTTP keep-alive), so a send to the Graph API
// or a sink reuses a connection instead of opening one (and a TLS session) per call. Each client
// serves one exchange at a time, so its connection was idle since the client came back here: a
// request that is not retry_safe takes one only if that was within max_idle_reuse (a server
// closes idle connections; a request written to one it closed gets no answer, uncertain), else a
// new one. A connection the server closed meanwhile is replaced: for a retry_safe request by the
// client when reading the answer fails, for any by Send() below when writing the request does.
// (cpprestsdk pools a connection a moment after its answer ends; a client taken again before that
// opens a second one, and one of the two may then sit idle longer than known here: a request that
// is not retry_safe and finds it closed fails as uncertain, never goes twice.)
class Clients {
 public:
  using Client = std::shared_ptr<http::client::http_client>;
  struct Lease {
    std::string key;
    Client client;
  };
  static Clients& Get() {
    static Clients& c =
        *new Clients;  // never destroyed: a client torn down during exit could outlive its threads
    return c;
  }
  Lease Take(const Target& target, const HttpClientRequest& request) {
    Lease lease{target.uri.authority().to_string() + " " + target.host_header + " " +
                    std::to_string(request.timeout.count()) + " " +
                    std::to_string(target.max_redirects),
                nullptr};
    std::vector<Idle> stale;  // destroyed (their connections closed) outside the lock
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (idle_.size() >= kMaxOrigins && idle_.count(lease.key) == 0)
        idle_.clear();  // distinct origins: start over
      auto& stack = idle_[lease.key];
      if (!stack.empty() && !RetrySafe(request) &&
          std::chrono::steady_clock::now() - stack.back().since > request.max_idle_reuse) {
        stale.swap(stack);  // the most recently used is too old, so all are
      }
      if (!stack.empty()) {
        lease.client = std::move(stack.back().client);
        stack.pop_back();
        return lease;
      }
    }
    http::client::http_client_config config;
    config.set_timeout(request.timeout);
    config.set_max_redirects(static_cast<size_t>(target.max_redirects));
    lease.client = std::make_shared<http::client::http_client>(target.uri.authority(), config);
    return lease;
  }
  // After an exchange that completed, answer and body: its connection may serve the next one. A
  // client whose exchange failed is not given back (its connection is closed anyway).
  void Give(Lease lease) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = idle_.find(lease.key);
    if (it == idle_.end()) return;  // the cache started over meanwhile
    it->second.push_back({std::move(lease.client), std::chrono::steady_clock::now()});
    if (it->second.size() > kMaxIdlePerOrigin)
      it->second.erase(it->second.begin());  // the least recently used
  }

 private:
  static constexpr size_t kMaxOrigins = 256;  // past it the cache starts over
  static constexpr size_t kMaxIdlePerOrigin =
      64;  // exchanges at once to one origin that keep their connections
  struct Idle {
    Client client;
    std::chrono::steady_clock::time_point since;
  };
  std::mutex mu_;
  std::map<std::string, std::vector<Idle>> idle_;  // per origin, most recently used last
};

// Thrown by the progress handler when an answer passes its cap: cpprestsdk's client reads a body
// into memory as fast as it arrives, whatever the caller reads, and this stops it there (the
// connection is closed, not pooled).
struct AnswerTooLarge : std::runtime_error {
  explicit AnswerTooLarge(size_t max)
      : std::runtime_error("body over the limit of " + std::to_string(max) + " bytes") {}
};

// cpprestsdk's client timeout is an inactivity timeout: a server that trickles a byte every few
// seconds holds a thread for ever. Every exchange is also held to an overall deadline: one
// thread cancels the exchanges whose deadline passed (the connection is closed, a read in
// progress fails), and the caller gets kTimeout.
class Deadlines {
 public:
  struct Entry {
    pplx::cancellation_token_source cancel;
    std::atomic<bool> expired{false};
  };
  static Deadlines& Get() {
    static Deadlines& d = *new Deadlines;  // never destroyed: exchanges may run during exit
    return d;
  }
  std::shared_ptr<Entry> Watch(std::chrono::steady_clock::time_point at) {
    auto entry = std::make_shared<Entry>();
    std::lock_guard<std::mutex> lock(mu_);
    watched_.emplace(at, entry);
    cv_.notify_one();
    return entry;
  }
  void Forget(const std::shared_ptr<Entry>& entry) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = watched_.begin(); it != watched_.end(); ++it) {
      if (it->second == entry) {
        watched_.erase(it);
        return;
      }
    }
  }

 private:
  Deadlines() : thread_([this] { Run(); }) { thread_.detach(); }
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      if (watched_.empty()) {
        cv_.wait(lock);
        continue;
      }
      auto first = watched_.begin();
      if (std::chrono::steady_clock::now() < first->first) {
        cv_.wait_until(lock, first->first);
        continue;
      }
      auto entry = first->second;
      watched_.erase(first);
      entry->expired = true;
      entry->cancel.cancel();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::multimap<std::chrono::steady_clock::time_point, std::shared_ptr<Entry>> watched_;
  std::thread thread_;
};

std::chrono::milliseconds DeadlineOf(const HttpClientRequest& request) {
  return request.deadline.count() > 0 ? request.deadline : 3 * request.timeout;
}

http::http_request CopyRequest(const HttpClientRequest& request, const Target& target,
                               size_t max_bytes) {
  http::http_request req(request.method);
  req.set_request_uri(target.uri.resource());
  for (const auto& [k, v] : request.headers) req.headers().add(k, v);
  if (!target.host_header.empty()) req.headers()[U("Host")] = target.host_header;
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT") {
    if (RetrySafe(request)) {
      req.set_body(request.body, request.content_type);
    } else {
      // A body cpprestsdk cannot rewind: where it would send the request again on another
      // connection it reports "cannot rewind input stream" instead
      // (handle_failed_read_status_line).
      concurrency::streams::producer_consumer_buffer<uint8_t> body;
      body.putn_nocopy(reinterpret_cast<const uint8_t*>(request.body.data()), request.body.size())
          .wait();
      body.close(std::ios_base::out).wait();
      req.set_body(body.create_istream(), request.body.size(), request.content_type);
    }
  }
  if (max_bytes > 0) {
    req.set_progress_handler(
        [max_bytes](http::message_direction::direction direction, utility::size64_t so_far) {
          if (direction == http::message_direction::download && so_far > max_bytes)
            throw AnswerTooLarge(max_bytes);
        });
  }
  return req;
}

Result<Target> TargetOf(const HttpClientRequest& request) {
  Target t;
  t.max_redirects = std::max(0, request.max_redirects);
  if (!request.public_only) {
    t.uri = web::uri(request.url);
    return t;
  }
  auto addresses = ResolvePublic(request.url);
  if (!addresses.ok())
    return Status(addresses.status().code(), request.method + " " + RedactUrl(request.url) + ": " +
                                                 addresses.status().message());
  PinnedUrl pinned = PinToAddress(request.url, addresses->front());
  t.uri = web::uri(pinned.url);
  t.host_header = pinned.host_header;
  t.max_redirects = 0;  // a redirect's target was never checked
  return t;
}

// Sends the request; the response's headers are read, its body not yet (it arrives in the
// background, up to max_bytes).
http::http_response Send(const HttpClientRequest& request, const Target& target, size_t max_bytes,
                         const pplx::cancellation_token& token, http::client::http_client& client) {
  // A kept-alive connection the server closed while it sat in the pool fails when the request is
  // written to it. Nothing complete reached the server then ("Failed to write request headers" or
  // "... body": an asynchronous write fails only when some of its bytes were not written, and the
  // request's last bytes are in its last write), so the request goes again, on another connection
  // (a few times: the pool may hold several such connections after a quiet spell). A failure
  // after the request was written is not retried here: the server may have acted on it.
  for (int attempt = 1;; ++attempt) {
    try {
      return client.request(CopyRequest(request, target, max_bytes), token).get();
    } catch (const http::http_exception& e) {
      if (attempt >= 4 || std::string(e.what()).rfind("Failed to write request", 0) != 0) throw;
      LOG(INFO) << "event=http_stale_connection url=" << RedactUrl(request.url)
                << " attempt=" << attempt << " what=" << e.what();
    }
  }
}

// Reads an answer's body, `max_bytes` at the most (declared or counted), chunk by chunk into
// `sink`.
Status ReadBody(const HttpClientRequest& request, http::http_response& resp, size_t max_bytes,
                const std::function<Status(const char*, size_t)>& sink) {
  utility::size64_t declared = resp.headers().content_length();
  if (max_bytes > 0 && declared > max_bytes) {
    return Status(Code::kTooLarge, RedactUrl(request.url) + ": " + std::to_string(declared) +
                                       " bytes declared, over the limit of " +
                                       std::to_string(max_bytes));
  }
  auto body = resp.body();
  size_t total = 0;
  while (true) {
    concurrency::streams::container_buffer<std::vector<uint8_t>> chunk;
    size_t n = body.read(chunk, 64 * 1024).get();
    if (n == 0) return Status::Ok();
    total += n;
    if (max_bytes > 0 && total > max_bytes) {
      return Status(Code::kTooLarge, RedactUrl(request.url) + ": body over the limit of " +
                                         std::to_string(max_bytes) + " bytes");
    }
    Status s = sink(reinterpret_cast<const char*>(chunk.collection().data()), n);
    if (!s.ok()) return s;
  }
}

Status ReadBodyInto(const HttpClientRequest& request, http::http_response& resp, std::string* out) {
  return ReadBody(request, resp, request.max_response_bytes, [out](const char* data, size_t n) {
    out->append(data, n);
    return Status::Ok();
  });
}

Status FetchError(const HttpClientRequest& request, const http::http_exception& e) {
  std::string what = e.what();
  bool timeout =
      what.find("timed out") != std::string::npos || e.error_code() == std::errc::timed_out;
  // The whole request was written and the connection failed (closed by the server or a proxy, or
  // by our own timeout) before the answer's status line came. cpprestsdk would have sent it again
  // on a reused connection; its body cannot be rewound, so it says so instead.
  if (!RetrySafe(request) && (what.rfind("cannot rewind input stream", 0) == 0 ||
                              what.rfind("Failed to read HTTP status line", 0) == 0)) {
    what = std::string(timeout ? "no answer in time" : "connection closed") +
           " after the request was sent; the server may have acted on it (not sent again)";
  }
  return Status(timeout ? Code::kTimeout : Code::kUnavailable,
                request.method + " " + RedactUrl(request.url) + ": " + what);
}

// Runs one exchange: `read` turns the response into the result. Every failure becomes a status.
Result<HttpResponse> Exchange(
    const HttpClientRequest& request, size_t max_bytes,
    const std::function<Status(http::http_response&, HttpResponse*)>& read) {
  auto target = TargetOf(request);
  if (!target.ok()) return target.status();
  auto deadline = Deadlines::Get().Watch(std::chrono::steady_clock::now() + DeadlineOf(request));
  struct Unwatch {
    std::shared_ptr<Deadlines::Entry> entry;
    ~Unwatch() { Deadlines::Get().Forget(entry); }
  } unwatch{deadline};
  auto expired = [&] {
    return Status(Code::kTimeout, request.method + " " + RedactUrl(request.url) +
                                      ": no complete answer within " +
                                      std::to_string(DeadlineOf(request).count()) + " ms");
  };
  try {
    auto lease = Clients::Get().Take(*target, request);
    http::http_response resp =
        Send(request, *target, max_bytes, deadline->cancel.get_token(), *lease.client);
    HttpResponse out;
    out.status = resp.status_code();
    out.content_type = resp.headers().content_type();
    for (const auto& [k, v] : resp.headers()) out.headers[Lower(k)] = v;
    Status s = read(resp, &out);
    if (!s.ok()) return deadline->expired ? expired() : s;
    Clients::Get().Give(std::move(lease));
    return out;
  } catch (const AnswerTooLarge& e) {
    return Status(Code::kTooLarge, RedactUrl(request.url) + ": " + e.what());
  } catch (const http::http_exception& e) {
    return deadline->expired ? expired() : FetchError(request, e);
  } catch (const pplx::task_canceled&) {
    return expired();
  } catch (const std::exception& e) {
    if (deadline->expired) return expired();
    return Status(Code::kInvalidArgument,
                  request.method + " " + RedactUrl(request.url) + ": " + e.what());
  }
}

}  // namespace

Result<HttpResponse> HttpDownload(const HttpClientRequest& request, size_t max_bytes,
                                  const HttpBodySink& sink) {
  // The client stops reading past the larger of the two caps; each answer is then held to its own.
  const size_t held = max_bytes == 0 ? 0 : std::max(max_bytes, request.max_response_bytes);
  return Exchange(request, held, [&](http::http_response& resp, HttpResponse* out) {
    if (out->status / 100 != 2) return ReadBodyInto(request, resp, &out->body);
    return ReadBody(request, resp, max_bytes, sink);
  });
}

Result<HttpResponse> HttpFetch(const HttpClientRequest& request) {
  return Exchange(request, request.max_response_bytes,
                  [&](http::http_response& resp, HttpResponse* out) {
                    return ReadBodyInto(request, resp, &out->body);
                  });
}

HttpResponse JsonResponse(int status, const std::string& body) {
  return {status, "application/json", body + "\n", {}, ""};
}

HttpResponse JsonError(int status, const std::string& code, const std::string& message) {
  return JsonResponse(status, R"({"error":{"code":")" + JsonEscape(code) + R"(","message":")" +
                                  JsonEscape(message) + "\"}}");
}

}  // namespace convoy
