#include "fake_sink.h"

#include <rapidjson/document.h>

#include <algorithm>

#include "convoy/crypto.h"
#include "convoy/json.h"
#include "convoy/rapidjson_util.h"
#include "fake_ids.h"

namespace convoy::fake {

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

HttpResponse Json(int status, const std::string& body) {
  return {status, "application/json", body, {}, ""};
}

}  // namespace

FakeReceiver::FakeReceiver(std::vector<std::string> keys, std::string host, int port)
    : keys_(std::move(keys)), host_(std::move(host)), port_(port) {}

FakeReceiver::~FakeReceiver() {
  ReleaseDelayed();
  if (server_) server_->Stop();
}

Status FakeReceiver::Start() {
  server_ = std::make_unique<HttpServer>(HttpServerOptions{host_, port_, 4 << 20});
  server_->Route("POST", "/hooks", [this](const HttpRequest& r) { return Handle(r); });
  server_->Route("GET", "/_fake/requests",
                 [this](const HttpRequest&) { return Json(200, RequestsJson()); });
  return server_->Start();
}

std::string FakeReceiver::url() const {
  return "http://127.0.0.1:" + std::to_string(server_->port()) + "/hooks";
}

void FakeReceiver::Script(std::vector<Answer> answers) {
  std::lock_guard<std::mutex> lock(mu_);
  script_ = std::move(answers);
  release_ = false;
}

HttpResponse FakeReceiver::Handle(const HttpRequest& r) {
  Request req;
  req.id = r.Header("webhook-id");
  req.timestamp = r.Header("webhook-timestamp");
  req.signature = r.Header("webhook-signature");
  req.body = r.body;
  req.at_ms = NowMs();
  req.verified = VerifyWebhookSignature(keys_, req.id, req.timestamp, req.body, req.signature,
                                        req.at_ms / 1000);
  Answer a;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!script_.empty()) {
      a = script_.front();
      script_.erase(script_.begin());
    }
    if (!req.verified) a = Answer{401, {}, 0};  // a receiver refuses what it cannot verify
    req.answered = a.status;
    requests_.push_back(req);
    cv_.notify_all();
    if (a.delay_ms > 0)
      cv_.wait_for(lock, std::chrono::milliseconds(a.delay_ms), [&] { return release_; });
  }
  HttpResponse resp =
      Json(a.status, a.status / 100 == 2 ? "{\"ok\":true}" : "{\"error\":\"scripted\"}");
  resp.headers = a.headers;
  return resp;
}

std::vector<FakeReceiver::Request> FakeReceiver::Requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

std::string FakeReceiver::RequestsJson() const {
  std::string out = "[";
  for (const auto& r : Requests()) {
    if (out.size() > 1) out += ",";
    out += R"({"id":")" + JsonEscape(r.id) + R"(","timestamp":")" + JsonEscape(r.timestamp) +
           R"(","verified":)" + (r.verified ? "true" : "false") + R"(,"answered":)" +
           std::to_string(r.answered) + R"(,"body":)" + (r.body.empty() ? "null" : r.body) + "}";
  }
  return out + "]";
}

size_t FakeReceiver::Count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_.size();
}

bool FakeReceiver::WaitFor(size_t count, std::chrono::milliseconds deadline) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, deadline, [&] { return requests_.size() >= count; });
}

void FakeReceiver::ReleaseDelayed() {
  std::lock_guard<std::mutex> lock(mu_);
  release_ = true;
  cv_.notify_all();
}

FakeShopify::FakeShopify(std::string token, double bucket_max, double restore_rate)
    : token_(std::move(token)),
      max_(bucket_max),
      rate_(restore_rate),
      available_(bucket_max),
      refilled_(std::chrono::steady_clock::now()),
      first_id_(1000000000000 + StartNonce() % 8000000000000) {}

FakeShopify::~FakeShopify() {
  ReleaseDelayed();
  if (server_) server_->Stop();
}

Status FakeShopify::Start() {
  server_ = std::make_unique<HttpServer>(HttpServerOptions{"127.0.0.1", 0, 4 << 20});
  server_->Route("POST", "/admin/api/", [this](const HttpRequest& r) { return Handle(r); });
  return server_->Start();
}

std::string FakeShopify::url() const {
  return "http://127.0.0.1:" + std::to_string(server_->port()) + "/admin/api/2026-04/graphql.json";
}

HttpResponse FakeShopify::Handle(const HttpRequest& r) {
  if (r.Header("x-shopify-access-token") != token_) {
    return Json(401, R"({"errors":"[API] Invalid API key or access token"})");
  }
  rapidjson::Document d;
  d.Parse(r.body.c_str(), r.body.size());
  if (d.HasParseError() || !d.IsObject()) return Json(400, R"({"errors":"bad json"})");
  const std::string query = JsonStr(d, "query");
  const auto& vars = JsonMember(d, "variables");
  std::unique_lock<std::mutex> lock(mu_);
  ++calls_;
  cv_.notify_all();
  auto now = std::chrono::steady_clock::now();
  available_ =
      std::min(max_, available_ + std::chrono::duration<double>(now - refilled_).count() * rate_);
  refilled_ = now;
  const double cost = query.find("productCreate") != std::string::npos ? 20 : 10;
  auto extensions = [&](double available) {
    return R"("extensions":{"cost":{"requestedQueryCost":)" + std::to_string(cost) +
           R"(,"throttleStatus":{"maximumAvailable":)" + std::to_string(max_) +
           R"(,"currentlyAvailable":)" + std::to_string(available) + R"(,"restoreRate":)" +
           std::to_string(rate_) + "}}}";
  };
  if (available_ < cost) {
    ++throttled_;
    return Json(200, R"({"errors":[{"message":"Throttled","extensions":{"code":"THROTTLED"}}],)" +
                         extensions(available_) + "}");
  }
  available_ -= cost;
  if (query.find("productCreate") != std::string::npos) {
    const auto& p = JsonMember(vars, "product");
    Product product;
    product.id = "gid://shopify/Product/" + std::to_string(first_id_ + 2 * products_.size());
    product.variant_id =
        "gid://shopify/ProductVariant/" + std::to_string(first_id_ + 2 * products_.size() + 1);
    product.title = JsonStr(p, "title");
    product.description_html = JsonStr(p, "descriptionHtml");
    product.vendor = JsonStr(p, "vendor");
    product.status = JsonStr(p, "status");
    product.created_ms = NowMs();
    const auto& tags = JsonMember(p, "tags");
    if (tags.IsArray()) {
      for (const auto& t : tags.GetArray()) product.tags.push_back(t.GetString());
    }
    const auto& metafields = JsonMember(p, "metafields");
    if (metafields.IsArray()) {
      for (const auto& m : metafields.GetArray()) {
        product.metafields[JsonStr(m, "namespace") + "." + JsonStr(m, "key")] = JsonStr(m, "value");
      }
    }
    const auto& media = JsonMember(vars, "media");
    if (media.IsArray()) {
      for (const auto& m : media.GetArray()) product.media.push_back(JsonStr(m, "originalSource"));
    }
    if (product.title.empty()) {
      return Json(
          200,
          R"({"data":{"productCreate":{"product":null,"userErrors":[{"field":["title"],"message":"Title can't be blank"}]}},)" +
              extensions(available_) + "}");
    }
    products_.push_back(product);
    std::string body = R"({"data":{"productCreate":{"product":{"id":")" + product.id +
                       R"(","variants":{"nodes":[{"id":")" + product.variant_id +
                       R"("}]}},"userErrors":[]}},)" + extensions(available_) + "}";
    if (delay_next_create_ms_ > 0) {
      int delay = delay_next_create_ms_;
      delay_next_create_ms_ = 0;
      cv_.wait_for(lock, std::chrono::milliseconds(delay), [&] { return release_; });
    }
    return Json(200, body);
  }
  if (query.find("products(") != std::string::npos) {
    std::string q = JsonStr(vars, "q");  // tag:'convoy-...'
    std::string tag = q.size() > 6 ? q.substr(5, q.size() - 6) : "";
    std::string nodes;
    for (const auto& p : products_) {
      if (NowMs() - p.created_ms < search_lag_ms) continue;  // not indexed yet
      if (std::find(p.tags.begin(), p.tags.end(), tag) == p.tags.end()) continue;
      nodes = R"({"id":")" + p.id + R"(","variants":{"nodes":[{"id":")" + p.variant_id + R"("}]}})";
      break;
    }
    return Json(
        200, R"({"data":{"products":{"nodes":[)" + nodes + "]}}," + extensions(available_) + "}");
  }
  if (query.find("productVariantsBulkUpdate") != std::string::npos) {
    std::string product_id = JsonStr(vars, "productId");
    const auto& variants = JsonMember(vars, "variants");
    for (auto& p : products_) {
      if (p.id == product_id && variants.IsArray() && !variants.Empty())
        p.price = JsonStr(variants[0], "price");
    }
    return Json(200, R"({"data":{"productVariantsBulkUpdate":{"userErrors":[]}},)" +
                         extensions(available_) + "}");
  }
  return Json(200, R"({"errors":[{"message":"unknown query"}]})");
}

std::vector<FakeShopify::Product> FakeShopify::Products() const {
  std::lock_guard<std::mutex> lock(mu_);
  return products_;
}

size_t FakeShopify::Calls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_;
}

size_t FakeShopify::ThrottledAnswers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return throttled_;
}

void FakeShopify::DelayNextCreate(int delay_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  delay_next_create_ms_ = delay_ms;
  release_ = false;
}

bool FakeShopify::WaitForCalls(size_t count, std::chrono::milliseconds deadline) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, deadline, [&] { return calls_ >= count; });
}

void FakeShopify::ReleaseDelayed() {
  std::lock_guard<std::mutex> lock(mu_);
  release_ = true;
  cv_.notify_all();
}

}  // namespace convoy::fake
