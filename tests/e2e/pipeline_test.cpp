// End to end: the four services as processes, a real broker and database (a vhost and a
// database of this test's own), the fake Graph API in-process.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <sstream>

#include "convoy/http.h"
#include "fake_graph.h"
#include "stack.h"
#include "testsupport.h"
#include "webhook.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

using test::kAppSecret;

class Pipeline : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { env_ = new test::Stack("e2e"); }
  static void TearDownTestSuite() {
    delete env_;
    env_ = nullptr;
  }
  static test::Stack* env_;
};

test::Stack* Pipeline::env_ = nullptr;

TEST_F(Pipeline, TextMessageTravelsTheWholePipelineAndIsAnsweredOnce) {
  auto& env = *env_;
  std::string body = test::ReadFile(test::FixturePath("webhooks/text.json"));
  auto resp = env.PostWebhook(body, test::FixtureSignatures()["text.json"]);
  ASSERT_EQ(resp.status, 200) << resp.body;
  std::string correlation = resp.headers["x-correlation-id"];
  ASSERT_EQ(correlation.size(), 32u);
  ASSERT_TRUE(test::WaitUntil([&] { return env.graph.SendCount() >= 1; }, 30s)) << env.graph.RequestsJson();
  std::string sends = env.graph.RequestsJson();
  EXPECT_NE(sends.find("\"to\":\"16505551234\""), std::string::npos) << sends;
  EXPECT_NE(sends.find("\"correlation_id\":\"" + correlation + "\""), std::string::npos) << sends;

  // Meta redelivers the same webhook: accepted again, but no second transition or send.
  auto again = env.PostWebhook(body, test::FixtureSignatures()["text.json"]);
  ASSERT_EQ(again.status, 200);
  const std::string dup = "convoy_conversation_updates_total{result=\"duplicate\"}";
  ASSERT_TRUE(test::WaitUntil([&] { return env.Metric("conversation", dup) >= 1; }, 30s));
  // The reply was sent and its outbound.sent event came back through conversation.events.
  const std::string applied = "convoy_conversation_updates_total{result=\"applied\"}";
  ASSERT_TRUE(test::WaitUntil([&] { return env.Metric("conversation", applied) >= 2; }, 30s));
  EXPECT_EQ(env.graph.SendCount(), 1u) << env.graph.RequestsJson();

  for (const char* service : {"ingress", "conversation", "outbound"}) {
    EXPECT_TRUE(env.Logged(service, correlation)) << service << " never logged the correlation id";
  }
}

TEST_F(Pipeline, PhotoIsFetchedStoredAndAcknowledgedWithOneCorrelationIdInAllFourServices) {
  auto& env = *env_;
  size_t sends_before = env.graph.SendCount();
  auto resp = env.PostWebhook(test::ReadFile(test::FixturePath("webhooks/image_with_caption.json")),
                              test::FixtureSignatures()["image_with_caption.json"]);
  ASSERT_EQ(resp.status, 200) << resp.body;
  std::string correlation = resp.headers["x-correlation-id"];
  ASSERT_TRUE(test::WaitUntil([&] { return env.Metric("media", "convoy_media_fetches_total{outcome=\"stored\"}") >= 1; },
                              30s))
      << env.services["media"]->process.Log();
  struct stat st;
  std::string sha = "fa8aa1abdbfbb5186a5bf6e2b21a846751414f2f598718e13d40e644b0fec4c3";
  EXPECT_EQ(::stat((env.dir + "/media/" + sha + ".jpg").c_str(), &st), 0) << "stored under its content hash";
  ASSERT_TRUE(test::WaitUntil([&] { return env.graph.SendCount() == sends_before + 1; }, 30s));
  EXPECT_NE(env.graph.RequestsJson().find("Got your photo"), std::string::npos);
  for (const char* service : {"ingress", "conversation", "media", "outbound"}) {
    EXPECT_TRUE(env.Logged(service, correlation)) << service << " never logged the correlation id";
  }
}

TEST_F(Pipeline, BadInputGetsAClearAnswerAndPublishesNothing) {
  auto& env = *env_;
  std::string body = test::ReadFile(test::FixturePath("webhooks/text.json"));
  double published = env.Metric("ingress", "convoy_ingress_updates_published_total{kind=\"message\"}");
  EXPECT_EQ(env.PostWebhook(body, "sha256=" + std::string(64, '0')).status, 401);
  EXPECT_EQ(env.PostWebhook("{broken", ingress::SignBody("{broken", kAppSecret)).status, 400);
  std::string big(4 << 20, ' ');
  EXPECT_EQ(env.PostWebhook(big, ingress::SignBody(big, kAppSecret)).status, 413);
  EXPECT_GE(env.Metric("ingress", "convoy_ingress_requests_total{outcome=\"413\"}"), 1);
  EXPECT_GE(env.Metric("ingress", "convoy_ingress_requests_total{outcome=\"401\"}"), 1);
  EXPECT_GE(env.Metric("ingress", "convoy_ingress_requests_total{outcome=\"400\"}"), 1);
  int status = 0;
  std::string challenge = test::HttpGet(
      env.Url("ingress", "/webhook?hub.mode=subscribe&hub.verify_token=e2e-verify&hub.challenge=42"), &status);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(challenge, "42");
  test::HttpGet(env.Url("ingress", "/webhook?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=42"), &status);
  EXPECT_EQ(status, 403);
  EXPECT_EQ(env.Metric("ingress", "convoy_ingress_updates_published_total{kind=\"message\"}"), published);
}

// Graph answers 503 (error 2) once: outbound parks the command in the 1 s delay queue, gets it
// back, and sends it exactly once.
TEST_F(Pipeline, GraphOutageIsRetriedThroughADelayQueueAndSentOnce) {
  auto& env = *env_;
  std::string body = env.TextUpdate("retry", 0);  // a new message id: a new update, not a redelivery
  size_t before = env.graph.SendCount();
  const std::string retries = "convoy_outbound_sends_total{result=\"retry\"}";
  double retried = env.Metric("outbound", retries);
  const std::string sent = "convoy_outbound_sends_total{result=\"sent\"}";
  double sent_before = env.Metric("outbound", sent);
  env.graph.Inject(503, 2, 1, 0, "/messages");
  ASSERT_EQ(env.PostUpdate(body), 200);
  ASSERT_TRUE(test::WaitUntil([&] { return env.graph.SendCount() == before + 1; }, 30s))
      << env.services["outbound"]->process.Log();
  EXPECT_EQ(env.Metric("outbound", retries), retried + 1);
  // The retry tier's copy was acked and logged as sent; nothing is left to send a second time.
  ASSERT_TRUE(test::WaitUntil([&] { return env.Metric("outbound", sent) == sent_before + 1; }, 10s));
  EXPECT_EQ(env.graph.SendCount(), before + 1);
}

}  // namespace
}  // namespace convoy
