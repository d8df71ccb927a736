// Attacks on the public door: a real convoy-ingress process (with a real broker) and raw sockets
// doing what an anonymous client on the internet can do. Each test prints what it measured.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "convoy/amqp_admin.h"
#include "convoy/http.h"
#include "testsupport.h"
#include "webhook.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;
constexpr const char* kSecret = "security-app-secret";

// A raw TCP client: writes what it is told, reads what comes back.
class RawClient {
 public:
  explicit RawClient(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;
  bool connected() const { return connected_; }
  const std::string& received() const { return received_; }  // everything read so far

  // False once the peer has closed or reset the connection.
  bool Send(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  // Whatever arrives within `wait` (up to the peer's close); empty when nothing did.
  std::string Read(std::chrono::milliseconds wait) {
    std::string out;
    struct Keep {
      std::string& all;
      std::string& out;
      ~Keep() { all += out; }
    } keep{received_, out};
    auto deadline = std::chrono::steady_clock::now() + wait;
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[65536];
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) {
        closed_ = true;
        break;
      }
      out.append(buf, static_cast<size_t>(n));
      if (out.find("\r\n\r\n") != std::string::npos && !read_to_close_) break;
    }
    return out;
  }
  // Reads until the peer closes (true) or `wait` passes (false).
  bool WaitClosed(std::chrono::milliseconds wait) {
    read_to_close_ = true;
    auto deadline = std::chrono::steady_clock::now() + wait;
    while (!closed_ && std::chrono::steady_clock::now() < deadline) {
      Read(std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                 std::chrono::steady_clock::now()));
    }
    return closed_;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
  bool read_to_close_ = false;
  std::string received_;
};

int StatusOf(const std::string& response) {
  if (response.rfind("HTTP/1.1 ", 0) != 0) return 0;
  return std::atoi(response.c_str() + 9);
}

int64_t RssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return -1;
}

// A running convoy-ingress on a vhost of its own; extra flags per test.
class IngressUnderAttack : public ::testing::Test {
 protected:
  void Launch(const std::vector<std::string>& extra = {}) {
    port_ = test::FreePort();
    // As deployed: the topology declared first, then ingress as its own publish-only user.
    auto topology = UpgradeTopology(AmqpOptions{vhost_.url(), "attack-topology"});
    ASSERT_TRUE(topology.ok()) << topology.status().ToString();
    std::vector<std::string> argv = {test::BinaryPath("services/ingress/convoy-ingress"),
                                     "--amqp_url=" + vhost_.PartUrl("ingress"),
                                     "--http_port=" + std::to_string(port_)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    ASSERT_TRUE(ingress_.Start(argv,
                               ::testing::TempDir() + "/" + test::UniqueName("ingress") + ".log",
                               {{"CONVOY_APP_SECRET", kSecret}, {"CONVOY_VERIFY_TOKEN", "v"}}));
    ASSERT_TRUE(test::WaitUntil([&] { return Get("/readyz") == 200; }, 60s)) << ingress_.Log();
  }
  int Get(const std::string& path) {
    int status = 0;
    test::HttpGet("http://127.0.0.1:" + std::to_string(port_) + path, &status);
    return status;
  }
  // A signed webhook from a well-behaved client: the HTTP status and how long it took.
  std::pair<int, std::chrono::milliseconds> PostSigned() {
    std::string body = test::ReadFile(test::FixturePath("webhooks/text.json"));
    HttpClientRequest req;
    req.method = "POST";
    req.url = "http://127.0.0.1:" + std::to_string(port_) + "/webhook";
    req.headers["X-Hub-Signature-256"] = ingress::SignBody(body, kSecret);
    req.body = body;
    req.timeout = 5s;
    auto started = std::chrono::steady_clock::now();
    auto r = HttpFetch(req);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    return {r.ok() ? r->status : 0, took};
  }
  double Refused(const std::string& reason) {
    std::string metrics = test::HttpGet("http://127.0.0.1:" + std::to_string(port_) + "/metrics");
    return test::MetricValue(metrics,
                             "convoy_http_requests_refused_total{reason=\"" + reason + "\"}");
  }
  // convoy_http_connections as seen from a connection of its own (closed after).
  double OpenConnections() {
    RawClient c(port_);
    if (!c.Send("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")) return -1;
    c.WaitClosed(2s);
    return test::MetricValue(c.received(), "convoy_http_connections");
  }
  std::string PostHead(const std::string& extra_headers) {
    return "POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           "X-Hub-Signature-256: sha256=00\r\n" +
           extra_headers + "\r\n";
  }

  test::TestVhost vhost_{"security"};
  test::ChildProcess ingress_;
  int port_ = 0;
};

TEST_F(IngressUnderAttack, A100GBDeclaredBodyIsRefusedBeforeItIsRead) {
  Launch();
  int64_t before = RssKiB(ingress_.pid());
  RawClient c(port_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send(PostHead("Content-Length: 100000000000\r\n")));
  std::string answer = c.Read(2s);
  EXPECT_EQ(StatusOf(answer), 413) << answer;
  EXPECT_NE(answer.find("Connection: close"), std::string::npos) << answer;
  // Keep streaming as the attacker would: the listener has stopped reading and closed.
  std::string block(1 << 20, 'x');
  size_t sent = 0;
  while (sent < (256u << 20) && c.Send(block)) sent += block.size();
  int64_t after = RssKiB(ingress_.pid());
  std::cout << "100 GB declared: answered " << StatusOf(answer) << ", the client got "
            << (sent >> 20) << " MiB into the socket before it was closed, ingress RSS "
            << before / 1024 << " -> " << after / 1024 << " MiB\n";
  EXPECT_LT(sent, 256u << 20) << "the listener kept reading a refused body";
  EXPECT_LT(after - before, 32 * 1024) << "RSS grew by " << (after - before) / 1024 << " MiB";
  EXPECT_GE(Refused("too_large"), 1);
  EXPECT_EQ(PostSigned().first, 200) << "a well-behaved client after the attack";
}

TEST_F(IngressUnderAttack, A1GBChunkedStreamIsCutAtTheLimit) {
  Launch();
  int64_t before = RssKiB(ingress_.pid());
  RawClient c(port_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send(PostHead("Transfer-Encoding: chunked\r\n")));
  std::string chunk = "10000\r\n" + std::string(0x10000, 'x') + "\r\n";
  size_t sent = 0;
  while (sent < (1u << 30) && c.Send(chunk)) sent += 0x10000;
  std::string answer = c.Read(2s);
  int64_t after = RssKiB(ingress_.pid());
  std::cout << "1 GB chunked: answered " << StatusOf(answer) << " after the client wrote "
            << (sent >> 20) << " MiB, ingress RSS " << before / 1024 << " -> " << after / 1024
            << " MiB\n";
  EXPECT_EQ(StatusOf(answer), 413) << answer.substr(0, 200);
  EXPECT_LT(sent, 64u << 20) << "the listener kept reading past the limit";
  EXPECT_LT(after - before, 32 * 1024);
  EXPECT_EQ(PostSigned().first, 200);
}

TEST_F(IngressUnderAttack, FiveHundredSlowConnectionsDoNotKeepAWebhookWaiting) {
  Launch({"--read_timeout_seconds=3"});
  std::vector<std::unique_ptr<RawClient>> slow;
  for (int i = 0; i < 500; ++i) {
    slow.push_back(std::make_unique<RawClient>(port_));
    ASSERT_TRUE(slow.back()->connected()) << i;
    // Half a request line, then nothing (slowloris); a fifth send a head and half a body.
    if (i % 5 == 0) {
      ASSERT_TRUE(slow.back()->Send(PostHead("Content-Length: 1000\r\n") + "{\"object\":"));
    } else {
      ASSERT_TRUE(slow.back()->Send("POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "));
    }
  }
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        return test::MetricValue(
                   test::HttpGet("http://127.0.0.1:" + std::to_string(port_) + "/metrics"),
                   "convoy_http_connections") >= 500;
      },
      10s));
  auto [status, took] = PostSigned();
  std::cout << "500 slow connections open: a signed webhook answered " << status << " in "
            << took.count() << " ms\n";
  EXPECT_EQ(status, 200);
  EXPECT_LT(took, 1000ms);
  // The slow ones are dropped at the read timeout.
  auto started = std::chrono::steady_clock::now();
  int closed = 0;
  for (auto& c : slow) closed += c->WaitClosed(10s) ? 1 : 0;
  auto took_close = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  std::cout << closed << " of 500 slow connections dropped within " << took_close.count()
            << " ms\n";
  EXPECT_EQ(closed, 500);
  EXPECT_GE(Refused("timeout"), 500);
}

TEST_F(IngressUnderAttack, AOneMegabyteHeaderLineGets431) {
  Launch();
  int64_t before = RssKiB(ingress_.pid());
  RawClient c(port_);
  ASSERT_TRUE(c.Send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "));
  std::string big(1 << 20, 'a');
  c.Send(big);  // may be cut short: the listener answers at 16 KiB and closes
  std::string answer = c.Read(2s);
  std::cout << "1 MB header line: answered " << StatusOf(answer) << ", RSS " << before / 1024
            << " -> " << RssKiB(ingress_.pid()) / 1024 << " MiB\n";
  EXPECT_EQ(StatusOf(answer), 431) << answer.substr(0, 200);
  EXPECT_TRUE(c.WaitClosed(2s));
}

TEST_F(IngressUnderAttack, TraceGets405AndNeverEchoes) {
  Launch();
  RawClient c(port_);
  ASSERT_TRUE(
      c.Send("TRACE /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: secret-cookie\r\n\r\n"));
  std::string answer = c.Read(2s);
  EXPECT_EQ(StatusOf(answer), 405) << answer;
  EXPECT_EQ(answer.find("secret-cookie"), std::string::npos) << answer;
}

TEST_F(IngressUnderAttack, AMalformedEscapeGets400AndShutdownDoesNotWaitForIt) {
  Launch();
  RawClient c(port_);
  ASSERT_TRUE(c.Send("GET /%zz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  std::string answer = c.Read(2s);
  EXPECT_EQ(StatusOf(answer), 400) << answer;
  EXPECT_GE(Refused("percent_escape"), 1);
  auto started = std::chrono::steady_clock::now();
  ingress_.Signal(SIGTERM);
  EXPECT_EQ(ingress_.Wait(), 0);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  std::cout << "/%zz: answered " << StatusOf(answer) << "; SIGTERM to exit " << took.count()
            << " ms\n";
  EXPECT_LT(took, 2000ms);
}

TEST_F(IngressUnderAttack, RequestSmugglingShapesAre400) {
  Launch();
  for (const std::string& head :
       {PostHead("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"),
        PostHead("Content-Length: 5\r\nContent-Length: 6\r\n"), PostHead("Content-Length: -1\r\n"),
        PostHead("Content-Length : 5\r\n"), PostHead(" X-Folded: yes\r\nContent-Length: 0\r\n")}) {
    RawClient c(port_);
    ASSERT_TRUE(c.Send(head));
    std::string answer = c.Read(2s);
    EXPECT_EQ(StatusOf(answer), 400) << head << "\n" << answer;
  }
  RawClient c(port_);
  ASSERT_TRUE(c.Send(PostHead("Transfer-Encoding: gzip, chunked\r\n")));
  EXPECT_EQ(StatusOf(c.Read(2s)), 501);
}

// At the connection cap the oldest idle connection makes room for a new one (one client holding
// every slot with idle keep-alives locks nobody out); when every connection is busy with a
// request, the new one gets 503. Idle connections close at the idle timeout.
TEST_F(IngressUnderAttack, AtTheCapTheOldestIdleConnectionMakesRoomElse503) {
  Launch({"--max_connections=20", "--read_timeout_seconds=2", "--idle_timeout_seconds=30"});
  std::vector<std::unique_ptr<RawClient>> idle;
  for (int i = 0; i < 20; ++i) {
    idle.push_back(std::make_unique<RawClient>(port_));
    ASSERT_TRUE(idle.back()->Send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    ASSERT_EQ(StatusOf(idle.back()->Read(2s)), 200) << i;  // kept alive, now idle
  }
  RawClient newcomer(port_);
  ASSERT_TRUE(newcomer.Send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  EXPECT_EQ(StatusOf(newcomer.Read(2s)), 200) << "the full listener made room";
  EXPECT_TRUE(idle[0]->WaitClosed(2s)) << "the oldest idle connection was the one closed";

  // Every slot busy with a request (a head read, its body still coming: the listener says so with
  // 100 Continue): no room to make.
  std::vector<std::unique_ptr<RawClient>> busy;
  for (int i = 0; i < 20; ++i) {
    busy.push_back(std::make_unique<RawClient>(port_));
    ASSERT_TRUE(busy.back()->Send(PostHead("Content-Length: 1000\r\nExpect: 100-continue\r\n")));
    ASSERT_EQ(StatusOf(busy.back()->Read(2s)), 100) << i;
  }
  for (size_t i = 1; i < idle.size(); ++i)
    EXPECT_TRUE(idle[i]->WaitClosed(5s)) << "idle connections made room";
  EXPECT_TRUE(newcomer.WaitClosed(5s)) << "so did the newcomer, idle since its answer";
  RawClient refused(port_);
  std::string answer = refused.Read(2s);
  EXPECT_EQ(StatusOf(answer), 503) << answer;
  // The busy ones are dropped at the read timeout: room again.
  for (auto& c : busy) EXPECT_TRUE(c->WaitClosed(10s));
  ASSERT_TRUE(test::WaitUntil([&] { return Get("/healthz") == 200; }, 5s));
  EXPECT_GE(Refused("evicted"), 20);
  EXPECT_GE(Refused("connections"), 1);
}

// HEAD gets the headers of the answer GET would get, never its body (a load balancer probing with
// HEAD over keep-alive reads the next answer right after).
TEST_F(IngressUnderAttack, HeadAnswersCarryNoBody) {
  Launch();
  RawClient c(port_);
  ASSERT_TRUE(
      c.Send("HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /healthz HTTP/1.1\r\nHost: "
             "127.0.0.1\r\n\r\n"));
  c.WaitClosed(1500ms);  // both answers (the connection stays open: read what came)
  const std::string all = c.received();
  EXPECT_EQ(all.rfind("HTTP/1.1 200", 0), 0u) << all;
  size_t second = all.find("HTTP/1.1 200", 1);
  ASSERT_NE(second, std::string::npos) << all;
  EXPECT_EQ(all.substr(second - 4, 4), "\r\n\r\n")
      << "the HEAD answer ends at its headers: " << all;
  EXPECT_NE(all.find("Content-Length: 3"), std::string::npos) << all;
}

}  // namespace
}  // namespace convoy
