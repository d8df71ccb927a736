#pragma once
// Fakes of the business's systems that results are delivered to, owned by tests:
//   FakeReceiver  a webhook receiver that verifies Standard Webhooks signatures with the secrets
//                 it knows, records every request, and answers from a script (status, headers,
//                 delay), then 200.
//   FakeShopify   a Shopify Admin GraphQL endpoint: productCreate, products(query: "tag:'...'"),
//                 productVariantsBulkUpdate, with a query-cost bucket (THROTTLED when empty), a
//                 search index that lags writes, and a delayed answer (the product is made at
//                 once, the answer comes late: an attempt whose outcome the caller cannot know).
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "convoy/http.h"

namespace convoy::fake {

class FakeReceiver {
 public:
  struct Answer {
    int status = 200;
    std::map<std::string, std::string> headers;
    int delay_ms = 0;
  };
  struct Request {
    std::string id, timestamp, signature, body;
    bool verified = false;  // the signature matched a known secret, timestamp within 5 min
    int64_t at_ms = 0;
    int answered = 0;
  };
  // keys: decoded secrets (convoy::WebhookSecretKey) the receiver verifies with.
  explicit FakeReceiver(std::vector<std::string> keys, std::string host = "127.0.0.1",
                        int port = 0);
  ~FakeReceiver();
  Status Start();
  std::string url() const;                   // http://127.0.0.1:port/hooks
  void Script(std::vector<Answer> answers);  // the next requests' answers, in order; then 200
  std::vector<Request> Requests() const;
  // As GET /_fake/requests answers: [{"id","timestamp","verified","answered","body":{...}}]
  std::string RequestsJson() const;
  size_t Count() const;
  bool WaitFor(size_t count, std::chrono::milliseconds deadline) const;
  // Lets a delayed answer go now (a test that killed the caller need not wait it out).
  void ReleaseDelayed();

 private:
  HttpResponse Handle(const HttpRequest& r);
  std::vector<std::string> keys_;
  std::string host_;
  int port_;
  std::unique_ptr<HttpServer> server_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<Answer> script_;
  std::vector<Request> requests_;
  bool release_ = false;
};

class FakeShopify {
 public:
  struct Product {
    std::string id, variant_id, title, description_html, vendor, status, price;
    std::vector<std::string> tags, media;
    std::map<std::string, std::string> metafields;  // "namespace.key" → value
    int64_t created_ms = 0;
  };
  FakeShopify(std::string token, double bucket_max = 1000, double restore_rate = 50);
  ~FakeShopify();
  Status Start();
  std::string url() const;  // http://127.0.0.1:port/admin/api/2026-04/graphql.json
  std::vector<Product> Products() const;
  size_t Calls() const;  // GraphQL calls answered (any outcome)
  size_t ThrottledAnswers() const;
  // The next productCreate makes its product at once and answers after delay_ms.
  void DelayNextCreate(int delay_ms);
  bool WaitForCalls(size_t count, std::chrono::milliseconds deadline) const;
  void ReleaseDelayed();
  int search_lag_ms = 1000;  // a product is found by products(query:) this long after it was made

 private:
  HttpResponse Handle(const HttpRequest& r);
  std::string token_;
  double max_, rate_, available_;
  std::chrono::steady_clock::time_point refilled_;
  std::unique_ptr<HttpServer> server_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<Product> products_;
  // Numeric ids like Shopify's, unique per start (a store never reuses one): from a random base.
  const uint64_t first_id_;
  size_t calls_ = 0, throttled_ = 0;
  int delay_next_create_ms_ = 0;
  bool release_ = false;
};

}  // namespace convoy::fake
