// The HTTP wrapper over loopback: bodies arrive byte-exact, oversize bodies get 413 unread,
// and the built-in health routes answer.
#include "convoy/http.h"

#include <gtest/gtest.h>

#include <atomic>

#include "convoy/metrics.h"

namespace convoy {
namespace {

class HttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<HttpServer>(HttpServerOptions{"127.0.0.1", 0, 4096, [this] { return ready_.load(); }});
    server_->Route("POST", "/echo", [](const HttpRequest& r) {
      return HttpResponse{200, "application/octet-stream", r.body, {{"X-Seen", r.Header("x-test")}}};
    });
    ASSERT_TRUE(server_->Start().ok());
  }
  Result<HttpResponse> Post(const std::string& path, const std::string& body) {
    HttpClientRequest req;
    req.method = "POST";
    req.url = "http://127.0.0.1:" + std::to_string(server_->port()) + path;
    req.body = body;
    req.headers["X-Test"] = "v";
    return HttpFetch(req);
  }
  std::atomic<bool> ready_{false};
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpTest, BodiesArriveByteExact) {
  for (size_t size : {size_t{1}, size_t{985}, size_t{4096}}) {
    std::string body;
    for (size_t i = 0; i < size; ++i) body += static_cast<char>(i * 7 % 251);
    auto r = Post("/echo", body);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, body) << "size " << size;
    EXPECT_EQ(r->headers["x-seen"], "v");
  }
}

TEST_F(HttpTest, OversizeBodyIs413AndUnknownRoutesAre404Or405) {
  auto r = Post("/echo", std::string(4097, 'x'));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(Post("/nowhere", "x")->status, 404);
  HttpClientRequest get;
  get.url = "http://127.0.0.1:" + std::to_string(server_->port()) + "/echo";
  EXPECT_EQ(HttpFetch(get)->status, 405);
}

TEST_F(HttpTest, HealthReadinessAndMetrics) {
  auto get = [&](const std::string& path) {
    HttpClientRequest req;
    req.url = "http://127.0.0.1:" + std::to_string(server_->port()) + path;
    return HttpFetch(req);
  };
  EXPECT_EQ(get("/healthz")->status, 200);
  EXPECT_EQ(get("/readyz")->status, 503);
  ready_ = true;
  EXPECT_EQ(get("/readyz")->status, 200);
  DefaultRegistry().GetCounter("convoy_http_test_total", "A test counter.").Inc();
  auto m = get("/metrics");
  EXPECT_NE(m->body.find("convoy_http_test_total 1"), std::string::npos);
}

TEST(HttpFetch, RefusedConnectionIsUnavailable) {
  HttpClientRequest req;
  req.url = "http://127.0.0.1:1/";
  req.timeout = std::chrono::milliseconds(2000);
  auto r = HttpFetch(req);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(IsTransient(r.status().code()));
}

}  // namespace
}  // namespace convoy
