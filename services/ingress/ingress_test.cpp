#include "ingress.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "convoy/metrics.h"
#include "webhook.h"

namespace convoy::ingress {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fake broker: records publishes and answers with a chosen outcome (or never).
struct FakeBroker {
  std::vector<AmqpMessage> published;
  std::vector<PublishCallback> held;  // outcomes never given (answer == false)
  bool answer = true;
  PublishOutcome outcome = PublishOutcome::kConfirmed;
  PublishFn fn() {
    return [this](AmqpMessage m, PublishCallback cb) {
      published.push_back(std::move(m));
      if (answer) {
        cb(outcome);
      } else {
        held.push_back(std::move(cb));
      }
    };
  }
};

HttpRequest Post(const std::string& body, const std::string& secret = "test-app-secret") {
  HttpRequest r;
  r.method = "POST";
  r.path = "/webhook";
  r.body = body;
  r.headers["x-hub-signature-256"] = SignBody(body, secret);
  return r;
}

IngressSettings Settings() { return {"test-app-secret", "verify-me", std::chrono::milliseconds(200)}; }

TEST(WebhookHandler, VerificationNeedsModeAndToken) {
  FakeBroker broker;
  WebhookHandler h(Settings(), broker.fn());
  HttpRequest r;
  r.query = {{"hub.mode", "subscribe"}, {"hub.verify_token", "verify-me"}, {"hub.challenge", "1158201444"}};
  auto ok = h.Verify(r);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "1158201444");
  r.query["hub.verify_token"] = "wrong";
  EXPECT_EQ(h.Verify(r).status, 403);
  r.query.erase("hub.mode");
  r.query["hub.verify_token"] = "verify-me";
  EXPECT_EQ(h.Verify(r).status, 403);
}

TEST(WebhookHandler, AcknowledgesOnlyAfterEveryConfirm) {
  FakeBroker broker;
  WebhookHandler h(Settings(), broker.fn());
  auto resp = h.Receive(Post(Read(std::string(CONVOY_FIXTURES_DIR) + "/webhooks/batch_mixed.json")));
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(broker.published.size(), 5u);
  ASSERT_TRUE(resp.headers.count("X-Correlation-Id"));
  for (const auto& m : broker.published) {
    EXPECT_EQ(m.headers.at("x-correlation-id"), resp.headers["X-Correlation-Id"]);
    EXPECT_FALSE(m.headers.at("x-dedupe-key").empty());
    EXPECT_FALSE(m.message_id.empty());
  }
}

// During a rotation both secrets verify, each counted by which matched; a third never does, and
// without a previous secret the old one is refused.
TEST(WebhookHandler, BothSecretsVerifyDuringARotation) {
  std::string text = Read(std::string(CONVOY_FIXTURES_DIR) + "/webhooks/text.json");
  auto& registry = DefaultRegistry();
  auto& current = registry.GetCounter("convoy_ingress_signatures_verified_total", "", "secret=\"current\"");
  auto& previous = registry.GetCounter("convoy_ingress_signatures_verified_total", "", "secret=\"previous\"");
  FakeBroker broker;
  IngressSettings rotating = Settings();
  rotating.previous_app_secret = "old-app-secret";
  WebhookHandler h(rotating, broker.fn());
  uint64_t current_before = current.Value(), previous_before = previous.Value();
  EXPECT_EQ(h.Receive(Post(text)).status, 200);
  EXPECT_EQ(h.Receive(Post(text, "old-app-secret")).status, 200);
  EXPECT_EQ(h.Receive(Post(text, "older-app-secret")).status, 401);
  EXPECT_EQ(current.Value() - current_before, 1u);
  EXPECT_EQ(previous.Value() - previous_before, 1u);
  WebhookHandler after(Settings(), broker.fn());
  EXPECT_EQ(after.Receive(Post(text, "old-app-secret")).status, 401) << "the rotation is over: the old secret is refused";
}

TEST(WebhookHandler, ErrorMappingIsExhaustive) {
  std::string text = Read(std::string(CONVOY_FIXTURES_DIR) + "/webhooks/text.json");
  {
    FakeBroker broker;
    WebhookHandler h(Settings(), broker.fn());
    EXPECT_EQ(h.Receive(Post(text, "wrong")).status, 401);
    HttpRequest unsigned_req = Post(text);
    unsigned_req.headers.clear();
    EXPECT_EQ(h.Receive(unsigned_req).status, 401);
    EXPECT_EQ(h.Receive(Post("{not json")).status, 400);
    EXPECT_TRUE(broker.published.empty()) << "nothing is published for a rejected POST";
    EXPECT_EQ(h.Receive(Post(R"({"object":"instagram","entry":[]})")).status, 200);
    EXPECT_TRUE(broker.published.empty());
  }
  for (auto outcome : {PublishOutcome::kNacked, PublishOutcome::kReturned, PublishOutcome::kUnavailable,
                       PublishOutcome::kOverloaded, PublishOutcome::kRejected}) {
    FakeBroker broker;
    broker.outcome = outcome;
    WebhookHandler h(Settings(), broker.fn());
    EXPECT_EQ(h.Receive(Post(text)).status, 503) << PublishOutcomeName(outcome);
  }
  FakeBroker silent;
  silent.answer = false;  // the broker holds the publish and never confirms: the deadline answers 503
  IngressSettings s = Settings();
  s.publish_deadline = std::chrono::milliseconds(300);
  WebhookHandler h(s, silent.fn());
  auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(h.Receive(Post(text)).status, 503);
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(300)) << "answered at the deadline";
  ASSERT_EQ(silent.held.size(), 1u);
  silent.held[0](PublishOutcome::kConfirmed);  // a confirm after the answer changes nothing
  // A publisher that drops the callback without an outcome: answered 503 at once, never left hanging.
  WebhookHandler dropping(Settings(), [](AmqpMessage, PublishCallback) {});
  EXPECT_EQ(dropping.Receive(Post(text)).status, 503);
}

}  // namespace
}  // namespace convoy::ingress
