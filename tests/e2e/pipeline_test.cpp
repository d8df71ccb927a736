// End to end: the four services as processes, a real broker and database (a vhost and a
// database of this test's own), the fake Graph API in-process.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "convoy/amqp.h"
#include "convoy/http.h"
#include "convoy/pg.h"
#include "convoy/topology.h"
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
  // Meta's text fixture, written now (inside the 24-hour window) and signed again.
  std::string body = env.TextUpdate("", 4, 10);
  auto resp = env.PostWebhook(body, ingress::SignBody(body, kAppSecret));
  ASSERT_EQ(resp.status, 200) << resp.body;
  std::string correlation = resp.headers["x-correlation-id"];
  ASSERT_EQ(correlation.size(), 32u);
  ASSERT_TRUE(test::WaitUntil([&] { return env.graph.SendCount() >= 1; }, 30s))
      << env.graph.RequestsJson();
  std::string sends = env.graph.RequestsJson();
  EXPECT_NE(sends.find("\"to\":\"16505551234\""), std::string::npos) << sends;
  EXPECT_NE(sends.find("\"correlation_id\":\"" + correlation + "\""), std::string::npos) << sends;

  // Meta redelivers the same webhook: accepted again, but no second transition or send.
  auto again = env.PostWebhook(body, ingress::SignBody(body, kAppSecret));
  ASSERT_EQ(again.status, 200);
  const std::string dup = "convoy_conversation_updates_total{result=\"duplicate\"}";
  ASSERT_TRUE(test::WaitUntil([&] { return env.Metric("conversation", dup) >= 1; }, 30s));
  // The reply Meta accepted is recorded in the send log, and the conversation hears nothing of it:
  // once everything settled, it applied no event for the send.
  ASSERT_TRUE(env.Drained(30s));
  EXPECT_EQ(env.graph.SendCount(), 1u) << env.graph.RequestsJson();
  {
    auto db = PgConnection::Connect(env.db.dsn());
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    auto sent = (*db)->Exec(
        "SELECT (SELECT count(*) > 0 FROM outbound_messages WHERE status IN ('sent', 'delivered', "
        "'read') AND correlation_id = $1), (SELECT count(*) FROM inbound_messages WHERE dedupe_key "
        "LIKE 'outbound.sent:%')",
        {correlation});
    ASSERT_TRUE(sent.ok()) << sent.status().ToString();
    EXPECT_EQ(sent->get(0, 0), "t") << "the reply, sent, in the send log";
    EXPECT_EQ(sent->get(0, 1), "0") << "an outbound.sent event the conversation applied";
  }
  // The message was marked read with the typing indicator before the reply: once, whatever was
  // redelivered.
  const auto at = body.find("\"wamid.");
  const std::string wamid = body.substr(at + 1, body.find('"', at + 1) - at - 1);
  ASSERT_TRUE(test::WaitUntil([&] { return !env.graph.ReadReceipts().empty(); }, 10s));
  auto receipts = env.graph.ReadReceipts();
  EXPECT_EQ(std::count(receipts.begin(), receipts.end(), wamid + ":typing"), 1) << wamid;

  for (const char* service : {"ingress", "conversation", "outbound"}) {
    EXPECT_TRUE(env.Logged(service, correlation)) << service << " never logged the correlation id";
  }
}

// The listing flow through all four services: the seller's answers, a burst of photos (each
// fetched, verified and stored by media), buttons, and the submitted listing on flow.completed.
TEST_F(Pipeline, ListingWithAPhotoBurstIsSubmittedWithEveryPhoto) {
  auto& env = *env_;
  const std::string seller = "16505550042";
  auto photos = env.RegisterPhotos("e2e-photo-", 3);
  const std::string stored = "convoy_media_fetches_total{outcome=\"stored\"}";
  double stored_before = std::max(0.0, env.Metric("media", stored));
  ASSERT_NO_FATAL_FAILURE(env.StartListing(seller));

  // The first photo: its correlation id is in all four services' logs.
  std::string first = test::MessageWebhook("106540352242922", seller, "Kerry", "wamid.e2e.photo0",
                                           std::time(nullptr), test::ImageMessage(photos[0]));
  auto resp = env.PostWebhook(first, ingress::SignBody(first, kAppSecret));
  ASSERT_EQ(resp.status, 200) << resp.body;
  std::string correlation = resp.headers["x-correlation-id"];
  ASSERT_TRUE(env.WaitSends(seller, 4));
  // Two more in the same second: no second acknowledgement.
  ASSERT_EQ(env.PostMessage(seller, test::ImageMessage(photos[1])), 200);
  ASSERT_EQ(env.PostMessage(seller, test::ImageMessage(photos[2])), 200);
  ASSERT_TRUE(
      test::WaitUntil([&] { return env.Metric("media", stored) >= stored_before + 3; }, 30s))
      << env.services["media"]->process.Log();
  struct stat st;
  std::string sha = "fa8aa1abdbfbb5186a5bf6e2b21a846751414f2f598718e13d40e644b0fec4c3";
  EXPECT_EQ(::stat((env.dir + "/media/" + sha + ".jpg").c_str(), &st), 0)
      << "stored under its content hash";
  // Served to a holder of the media token, and to nobody else.
  HttpClientRequest get;
  get.url = env.Url("media", "/media/" + sha + ".jpg");
  get.headers["Authorization"] = std::string("Bearer ") + test::kMediaToken;
  auto served = HttpFetch(get);
  ASSERT_TRUE(served.ok()) << served.status().ToString();
  EXPECT_EQ(served->status, 200);
  EXPECT_EQ(served->content_type, "image/jpeg");
  EXPECT_EQ(served->body, test::ReadFile(test::FixturePath("media/photo1.jpg")));
  get.headers.clear();
  auto anonymous = HttpFetch(get);
  ASSERT_TRUE(anonymous.ok());
  EXPECT_EQ(anonymous->status, 401);

  // The conversation has heard back from media for every photo before the seller goes on.
  auto db = PgConnection::Connect(env.db.dsn());
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        auto n = (*db)->Exec(
            "SELECT count(*) FROM conversations, jsonb_array_elements(state->'photos'->'photos') p "
            "WHERE conversation_key = $1 AND p ? 'stored'",
            {"106540352242922:" + seller});
        return n.ok() && n->get_int(0, 0) == 3;
      },
      30s));
  ASSERT_EQ(env.PostMessage(seller, test::TextMessage("DONE")), 200);
  ASSERT_TRUE(env.WaitSends(seller, 5));
  ASSERT_EQ(env.PostMessage(seller, test::ButtonReplyMessage("flaws_no", "NO, SKIP")), 200);
  ASSERT_TRUE(env.WaitSends(seller, 6));
  ASSERT_EQ(env.PostMessage(seller, test::ButtonReplyMessage("submit", "SUBMIT")), 200);
  ASSERT_TRUE(env.WaitSends(seller, 7));
  ASSERT_TRUE(env.Drained(30s));
  std::vector<std::string> expected = test::Stack::ListingOpening();
  expected.insert(
      expected.end(),
      {
          "Got it! 📸\n\nKeep sending. Text DONE when finished.",
          "Great! Got 3 photos 📸\n\nAny flaws or special notes? [NO, SKIP|YES, ADD]",
          "Here is your listing:\nDescription: Nike running shoes, size 42, used, $35\nBrand: "
          "Nike\nSize: 42\n"
          "Condition: used\nPrice: 35\nPhotos: 3\nEmail: kerry@example.com\nSubmit it? "
          "[SUBMIT|CANCEL]",
          "Submitted! Your listing with 3 photos is on its way. Send SELL to list another item.",
      });
  EXPECT_EQ(env.graph.SentTexts(seller), expected);

  // The flow.completed event, as written with the transition (conversation reads the queue for
  // its results count, so the event is read here from the outbox it was published from).
  auto completed = (*db)->Exec(
      "SELECT body FROM outbox WHERE routing_key = 'flow.completed' AND conversation_key = $1",
      {"106540352242922:" + seller});
  ASSERT_TRUE(completed.ok()) << completed.status().ToString();
  ASSERT_EQ(completed->size(), 1u);
  const std::string listing = completed->get(0, 0);
  EXPECT_TRUE(test::WaitUntil(
      [&] {
        auto left = QueueMessageCount({env.vhost.url(), "e2e-completed"}, queues::kFlowCompleted);
        return left.ok() && *left == 0;
      },
      30s))
      << "flow.completed is read, not left to grow";
  for (const auto& id : photos)
    EXPECT_NE(listing.find("\"media_id\":\"" + id + "\""), std::string::npos) << listing;
  EXPECT_NE(listing.find("\"stored_name\":\"" + sha + ".jpg\""), std::string::npos) << listing;
  // SUBMIT uploaded the three stored photos to the listing's destination, once each.
  ASSERT_TRUE(test::WaitUntil([&] { return env.graph.Uploaded().size() >= 3; }, 30s))
      << env.services["media"]->process.Log();
  std::set<std::string> uploaded, fixtures;
  for (const auto& bytes : env.graph.Uploaded()) uploaded.insert(bytes);
  for (const char* f : {"photo1.jpg", "photo2.jpg", "photo3.jpg"}) {
    fixtures.insert(test::ReadFile(test::FixturePath(std::string("media/") + f)));
  }
  EXPECT_EQ(uploaded, fixtures);
  EXPECT_EQ(env.graph.Uploaded().size(), 3u);
  // The uploads' media.uploaded events reach the conversation and draw no reply.
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        auto n = (*db)->Exec(
            "SELECT count(*) FROM transitions WHERE conversation_key = $1 AND "
            "trigger_dedupe_key LIKE 'media.uploaded:%'",
            {"106540352242922:" + seller});
        return n.ok() && n->get_int(0, 0) == 3;
      },
      30s));
  ASSERT_TRUE(env.Drained(30s));
  EXPECT_EQ(env.graph.SentTexts(seller), expected) << "nothing said after SUBMIT's answer";
  for (const char* service : {"ingress", "conversation", "media", "outbound"}) {
    EXPECT_TRUE(env.Logged(service, correlation)) << service << " never logged the correlation id";
    // Nothing the seller said or is reachable by reaches a log unmasked (--log_personal_data off).
    const std::string log = env.services[service]->process.Log();
    for (const std::string& personal : {seller, std::string("kerry@example.com"),
                                        std::string("Nike running shoes"), std::string("Kerry")}) {
      EXPECT_EQ(log.find(personal), std::string::npos)
          << service << " logged \"" << personal << "\"";
    }
  }
}

TEST_F(Pipeline, BadInputGetsAClearAnswerAndPublishesNothing) {
  auto& env = *env_;
  std::string body = test::ReadFile(test::FixturePath("webhooks/text.json"));
  double published =
      env.Metric("ingress", "convoy_ingress_updates_published_total{kind=\"message\"}");
  EXPECT_EQ(env.PostWebhook(body, "sha256=" + std::string(64, '0')).status, 401);
  EXPECT_EQ(env.PostWebhook("{broken", ingress::SignBody("{broken", kAppSecret)).status, 400);
  std::string big(4 << 20, ' ');
  EXPECT_EQ(env.PostWebhook(big, ingress::SignBody(big, kAppSecret)).status, 413);
  EXPECT_GE(env.Metric("ingress", "convoy_ingress_requests_total{outcome=\"413\"}"), 1);
  EXPECT_GE(env.Metric("ingress", "convoy_ingress_requests_total{outcome=\"401\"}"), 1);
  EXPECT_GE(env.Metric("ingress", "convoy_ingress_requests_total{outcome=\"400\"}"), 1);
  int status = 0;
  std::string challenge = test::HttpGet(
      env.Url("ingress",
              "/webhook?hub.mode=subscribe&hub.verify_token=e2e-verify&hub.challenge=42"),
      &status);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(challenge, "42");
  test::HttpGet(
      env.Url("ingress", "/webhook?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=42"),
      &status);
  EXPECT_EQ(status, 403);
  EXPECT_EQ(env.Metric("ingress", "convoy_ingress_updates_published_total{kind=\"message\"}"),
            published);
}

// Meta's own fixture was written in 2025: the reply falls outside the 24-hour customer-service
// window, so outbound refuses it without calling Meta (as Meta would with 131047), records the
// failure, and the conversation hears of it through outbound.failed.
TEST_F(Pipeline, AReplyOutsideTheCustomerServiceWindowIsNotSentAndTheConversationHears) {
  auto& env = *env_;
  size_t calls = env.graph.SendCount();
  // A sender of its own, who has not written since (the window is per recipient).
  std::string body = test::ReadFile(test::FixturePath("webhooks/text.json"));
  for (auto at = body.find("16505551234"); at != std::string::npos;
       at = body.find("16505551234", at)) {
    body.replace(at, 11, "16505559999");
  }
  ASSERT_EQ(env.PostUpdate(body), 200);
  auto db = PgConnection::Connect(env.db.dsn());
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  const std::string key =
      "106540352242922:16505559999:wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=";
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        auto n = (*db)->Exec("SELECT count(*) FROM transitions WHERE trigger_dedupe_key = $1",
                             {"outbound.failed:" + key + ":reply"});
        return n.ok() && n->get_int(0, 0) == 1;
      },
      30s))
      << env.services["outbound"]->process.Log();
  auto row = (*db)->Exec(
      "SELECT status, error_code, attempts FROM outbound_messages WHERE dedupe_key = $1",
      {key + ":reply"});
  ASSERT_TRUE(row.ok() && row->size() == 1) << (row.ok() ? "no row" : row.status().ToString());
  EXPECT_EQ(row->get(0, 0), "failed");
  EXPECT_EQ(row->get(0, 1), "131047");
  EXPECT_EQ(row->get(0, 2), "0") << "no attempt was made";
  EXPECT_EQ(env.graph.SendCount(), calls) << "Meta was not called";
}

// Graph answers 503 (error 2) once: outbound parks the command in the 1 s delay queue, gets it
// back, and sends it exactly once.
TEST_F(Pipeline, GraphOutageIsRetriedThroughADelayQueueAndSentOnce) {
  auto& env = *env_;
  std::string body =
      env.TextUpdate("retry", 0);  // a new message id: a new update, not a redelivery
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
  ASSERT_TRUE(
      test::WaitUntil([&] { return env.Metric("outbound", sent) == sent_before + 1; }, 10s));
  EXPECT_EQ(env.graph.SendCount(), before + 1);
}

}  // namespace
}  // namespace convoy
