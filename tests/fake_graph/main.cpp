// convoy-fake-graph: the Graph API fake for tests and the local run.
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "convoy/config.h"
#include "convoy/flags.h"
#include "convoy/http.h"
#include "fake_graph.h"
#include "webhook.h"

DEFINE_string(media, "", "Media objects to serve, comma-separated id=path:mime_type");
DEFINE_string(
    status_webhook_url, "",
    "Post a signed 'sent' status webhook here for every accepted send, as Meta does (e.g. "
    "http://127.0.0.1:8080/webhook; the app secret from CONVOY_APP_SECRET); empty: none");
static bool ValidateWebhookUrl(const char* flag, const std::string& v) {
  if (v.empty() || v.rfind("http://", 0) == 0 || v.rfind("https://", 0) == 0) return true;
  std::fprintf(stderr, "invalid value for --%s: %s (an http:// or https:// URL, or empty)\n", flag,
               v.c_str());
  return false;
}
DEFINE_validator(status_webhook_url, &ValidateWebhookUrl);
DEFINE_string(
    status_webhook_statuses, "sent",
    "Which statuses --status_webhook_url gets for every accepted send, in order, each its "
    "own webhook as Meta posts them: a comma-separated list of sent, delivered, read");
static bool ValidateStatuses(const char* flag, const std::string& v) {
  std::stringstream in(v);
  int n = 0;
  for (std::string item; std::getline(in, item, ',');) {
    if (item != "sent" && item != "delivered" && item != "read") {
      std::fprintf(stderr, "invalid value for --%s: %s ('%s' is not sent, delivered or read)\n",
                   flag, v.c_str(), item.c_str());
      return false;
    }
    ++n;
  }
  if (n == 0) std::fprintf(stderr, "invalid value for --%s: empty\n", flag);
  return n > 0;
}
DEFINE_validator(status_webhook_statuses, &ValidateStatuses);
DEFINE_int32(status_webhook_workers, 4,
             "How many status webhooks are posted at once (1 to 64); a message's statuses are "
             "posted one after the other, after the send was answered, as Meta does");
static bool ValidateWorkers(const char* flag, int32_t v) {
  if (v >= 1 && v <= 64) return true;
  std::fprintf(stderr, "invalid value for --%s: %d (1 to 64)\n", flag, v);
  return false;
}
DEFINE_validator(status_webhook_workers, &ValidateWorkers);

namespace {

// One kept-alive HTTP/1.1 connection to a plain http:// webhook URL, written and read with plain
// socket calls: cpprestsdk's client cost this fake about 1 ms of CPU per status post
// (scripts/bench-floors.sh, 980-1,005 us), three posts per reply, which the benchmarks count in
// every reply's machine CPU although Meta pays it in production. Not thread-safe: one per worker.
class WebhookConnection {
 public:
  // False when the URL is not http://host[:port]/path (https goes through HttpFetch).
  bool Parse(const std::string& url) {
    const std::string scheme = "http://";
    if (url.rfind(scheme, 0) != 0) return false;
    const size_t slash = url.find('/', scheme.size());
    authority_ = url.substr(scheme.size(),
                            slash == std::string::npos ? std::string::npos : slash - scheme.size());
    path_ = slash == std::string::npos ? "/" : url.substr(slash);
    const size_t colon = authority_.rfind(':');
    host_ = colon == std::string::npos ? authority_ : authority_.substr(0, colon);
    port_ = colon == std::string::npos ? "80" : authority_.substr(colon + 1);
    return !host_.empty() && host_[0] != '[';
  }
  ~WebhookConnection() { Close(); }

  // The answer's status, or -1 (logged by the caller). A kept-alive connection the server closed
  // while idle fails before any answer byte: then once more on a new one (ingress dedupes a
  // webhook it gets twice, as it must for Meta's own redeliveries).
  int Post(const std::string& body, const std::string& signature) {
    std::string req = "POST " + path_ + " HTTP/1.1\r\nHost: " + authority_ +
                      "\r\nContent-Type: application/json\r\nX-Hub-Signature-256: " + signature +
                      "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    for (int attempt = 0; attempt < 2; ++attempt) {
      const bool reused = fd_ >= 0;
      if (fd_ < 0 && !Connect()) return -1;
      bool answered = false;
      int status = Exchange(req, &answered);
      if (status > 0) return status;
      Close();
      if (!reused || answered) return -1;
    }
    return -1;
  }

 private:
  bool Connect() {
    addrinfo hints{}, *res = nullptr;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host_.c_str(), port_.c_str(), &hints, &res) != 0) return false;
    for (addrinfo* a = res; a && fd_ < 0; a = a->ai_next) {
      int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
      if (fd < 0) continue;
      timeval tv{2, 0};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
        fd_ = fd;
      } else {
        close(fd);
      }
    }
    freeaddrinfo(res);
    return fd_ >= 0;
  }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    buf_.clear();
  }
  // Writes the request and reads one answer (status line, headers, Content-Length body).
  int Exchange(const std::string& req, bool* answered) {
    for (size_t sent = 0; sent < req.size();) {
      ssize_t n = send(fd_, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return -1;
      sent += static_cast<size_t>(n);
    }
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Read(answered)) return -1;
    }
    if (buf_.rfind("HTTP/1.", 0) != 0 || buf_.size() < 12) return -1;
    const int status = std::atoi(buf_.c_str() + 9);
    std::string head = buf_.substr(0, end);
    std::transform(head.begin(), head.end(), head.begin(), ::tolower);
    const size_t cl = head.find("\r\ncontent-length:");
    const size_t length =
        cl == std::string::npos ? 0 : std::strtoul(head.c_str() + cl + 17, nullptr, 10);
    while (buf_.size() < end + 4 + length) {
      if (!Read(answered)) return -1;
    }
    buf_.erase(0, end + 4 + length);
    if (head.find("\r\nconnection: close") != std::string::npos) Close();
    return status;
  }
  bool Read(bool* answered) {
    char tmp[4096];
    ssize_t n = recv(fd_, tmp, sizeof(tmp), 0);
    if (n <= 0) return false;
    *answered = true;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  std::string authority_, host_, port_, path_, buf_;
  int fd_ = -1;
};

// Posts each accepted send's statuses to the webhook URL from worker threads: the send is
// answered first (Meta's statuses come after its answer, not inside it), and each message's
// statuses go in order (sent, delivered, read), each a signed webhook of its own.
class StatusPoster {
 public:
  StatusPoster(std::string secret, std::vector<std::string> statuses, int workers)
      : secret_(std::move(secret)), statuses_(std::move(statuses)) {
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { Run(); });
  }
  ~StatusPoster() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  // `sent` is Meta's status object for "sent"; the others are made from it.
  void Add(const std::string& pnid, const std::string& sent) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.emplace_back(pnid, sent);
    }
    cv_.notify_one();
  }

 private:
  void Run() {
    WebhookConnection conn;
    const bool raw = conn.Parse(FLAGS_status_webhook_url);
    for (;;) {
      std::pair<std::string, std::string> item;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (stop_) return;
        item = std::move(queue_.front());
        queue_.pop_front();
      }
      const std::string marker = R"("status":"sent")";
      for (const auto& status : statuses_) {
        std::string body = item.second;
        auto at = body.find(marker);
        if (at != std::string::npos)
          body.replace(at, marker.size(), "\"status\":\"" + status + "\"");
        if (raw) {
          PostRaw(conn, item.first, body);
        } else {
          Post(item.first, body);
        }
      }
    }
  }
  void PostRaw(WebhookConnection& conn, const std::string& pnid, const std::string& status) {
    const std::string body = convoy::fake::FakeGraph::StatusWebhook(pnid, status);
    const int answer = conn.Post(body, convoy::ingress::SignBody(body, secret_));
    if (answer != 200) {
      LOG(WARNING) << "service=fake-graph event=status_webhook_failed error="
                   << (answer < 0 ? std::string("connection failed")
                                  : "HTTP " + std::to_string(answer));
    }
  }
  void Post(const std::string& pnid, const std::string& status) {
    convoy::HttpClientRequest req;
    req.method = "POST";
    req.url = FLAGS_status_webhook_url;
    req.body = convoy::fake::FakeGraph::StatusWebhook(pnid, status);
    req.headers["X-Hub-Signature-256"] = convoy::ingress::SignBody(req.body, secret_);
    req.timeout = std::chrono::milliseconds(2000);
    auto r = convoy::HttpFetch(req);
    if (!r.ok() || r->status != 200) {
      LOG(WARNING) << "service=fake-graph event=status_webhook_failed error="
                   << (r.ok() ? "HTTP " + std::to_string(r->status) : r.status().ToString());
    }
  }

  const std::string secret_;
  const std::vector<std::string> statuses_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::string, std::string>> queue_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace

int main(int argc, char** argv) {
  convoy::SetFlagDefault("http_port", "8090");
  convoy::InitService("fake-graph",
                      "convoy-fake-graph: a fake of Meta's Graph API for tests and local runs",
                      &argc, &argv);
  auto token = convoy::LoadSecret("CONVOY_GRAPH_TOKEN", "");
  if (!token.ok()) {
    LOG(ERROR) << "service=fake-graph event=bad_config error=" << token.status().ToString();
    return 2;
  }
  convoy::fake::FakeGraph graph(*token, FLAGS_http_host, FLAGS_http_port);
  std::stringstream media(FLAGS_media);
  for (std::string item; std::getline(media, item, ',');) {
    auto eq = item.find('='), colon = item.rfind(':');
    if (eq == std::string::npos || colon == std::string::npos || colon < eq) {
      LOG(ERROR) << "service=fake-graph event=bad_config error=--media item '" << item
                 << "' is not id=path:mime_type";
      return 2;
    }
    graph.RegisterMedia(item.substr(0, eq), item.substr(eq + 1, colon - eq - 1),
                        item.substr(colon + 1));
  }
  std::unique_ptr<StatusPoster> poster;
  if (!FLAGS_status_webhook_url.empty()) {
    auto secret = convoy::LoadSecret("CONVOY_APP_SECRET", "");
    if (!secret.ok()) {
      LOG(ERROR)
          << "service=fake-graph event=bad_config error=--status_webhook_url needs the app secret: "
          << secret.status().ToString();
      return 2;
    }
    std::vector<std::string> statuses;
    std::stringstream list(FLAGS_status_webhook_statuses);
    for (std::string item; std::getline(list, item, ',');) statuses.push_back(item);
    poster = std::make_unique<StatusPoster>(*secret, statuses, FLAGS_status_webhook_workers);
    graph.SetStatusSink([p = poster.get()](const std::string& pnid, const std::string& status) {
      p->Add(pnid, status);
    });
  }
  auto s = graph.Start();
  if (!s.ok()) {
    LOG(ERROR) << "service=fake-graph event=listen_failed error=" << s.ToString();
    return 1;
  }
  LOG(INFO) << "service=fake-graph event=started port=" << graph.port();
  convoy::WaitForShutdownSignal();
  graph.Stop();
  poster.reset();
  return 0;
}
