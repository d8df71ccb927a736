// End to end: results reach the business. A submitted listing is POSTed to the sink's receiver,
// signed as Standard Webhooks says, once; failures are retried on the schedule with the same
// webhook-id (Retry-After honoured); 410 disables the sink and what it holds goes when it is
// enabled; exhausted deliveries are parked and replayable; a rotated secret verifies either way.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <sys/stat.h>

#include "convoy/crypto.h"
#include "convoy/http.h"
#include "convoy/json.h"
#include "convoy/pg.h"
#include "deliveries.h"
#include "fake_sink.h"
#include "ingress.h"
#include "stack.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;
using test::kAdminToken;

class Delivery : public ::testing::Test {
 protected:
  // A stack whose outbound knows the sinks in `sinks_json` ("[...]").
  void Up(const std::string& prefix, const std::string& sinks_json,
          const std::string& schedule = "0,1s,1s,1s",
          std::vector<std::string> conversation_flags = {}) {
    std::string file =
        test::WriteSinks(R"({"schema": "sinks", "version": 1, "sinks": )" + sinks_json + "}");
    stack_ = std::make_unique<test::Stack>(
        prefix, std::map<std::string, int>{},
        std::map<std::string, std::vector<std::string>>{
            {"outbound", {"--sinks_file=" + file, "--delivery_schedule=" + schedule}},
            {"conversation", conversation_flags}});
    auto db = PgConnection::Connect(stack_->db.dsn());
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
  }
  int64_t Count(const std::string& sql, const PgParams& params = {}) {
    auto r = db_->Exec(sql, params);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    return r.ok() ? r->get_int(0, 0) : -1;
  }
  std::string StatusOf(const std::string& result_id) {
    auto r = db_->Exec("SELECT status FROM deliveries WHERE result_id = $1", {result_id});
    return r.ok() && !r->empty() ? r->get(0, 0) : "";
  }
  bool WaitStatus(const std::string& result_id, const std::string& status,
                  std::chrono::seconds deadline = 30s) {
    return test::WaitUntil([&] { return StatusOf(result_id) == status; }, deadline);
  }
  void Publish(const std::string& result_id, const std::string& sink = "listing",
               const std::string& correlation = "") {
    convoy::Status s =
        test::PublishDeliver(*stack_, test::DeliverCommand(result_id, sink), result_id + ":deliver",
                             correlation.empty() ? "corr-" + result_id : correlation);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  HttpResponse Admin(const std::string& method, const std::string& path,
                     const std::string& body = "", const std::string& token = kAdminToken) {
    HttpClientRequest req;
    req.method = method;
    req.url = stack_->Url("outbound", path);
    req.body = body;
    if (!token.empty()) req.headers["Authorization"] = "Bearer " + token;
    auto r = HttpFetch(req);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : HttpResponse{};
  }
  std::string OutboundLog() { return stack_->services["outbound"]->process.Log(); }
  // A seller lists an item over WhatsApp with these photos and submits it.
  void SubmitListing(const std::string& seller, const std::vector<std::string>& photos) {
    auto& env = *stack_;
    ASSERT_NO_FATAL_FAILURE(env.StartListing(seller));
    for (const auto& photo : photos)
      ASSERT_EQ(env.PostMessage(seller, test::ImageMessage(photo)), 200);
    ASSERT_TRUE(env.WaitSends(seller, 4));
    ASSERT_EQ(env.PostMessage(seller, test::TextMessage("DONE")), 200);
    ASSERT_TRUE(env.WaitSends(seller, 5));
    ASSERT_EQ(env.PostMessage(seller, test::ButtonReplyMessage("flaws_no", "NO, SKIP")), 200);
    ASSERT_TRUE(env.WaitSends(seller, 6));
    ASSERT_EQ(env.PostMessage(seller, test::ButtonReplyMessage("submit", "SUBMIT")), 200);
  }

  std::unique_ptr<test::Stack> stack_;
  std::unique_ptr<PgConnection> db_;
};

// A listing submitted over WhatsApp reaches the receiver once, signed, with photo links the
// receiver can fetch without convoy's media token.
TEST_F(Delivery, ASubmittedListingReachesTheReceiverOnceSignedWithWorkingPhotoLinks) {
  fake::FakeReceiver receiver({test::Key(test::kOldSecret)});
  ASSERT_TRUE(receiver.Start().ok());
  Up("e2e_deliver_listing",
     "[" +
         test::WebhookSink("listing", receiver.url(),
                           R"([")" + std::string(test::kOldSecret) + R"("])") +
         "]");
  auto& env = *stack_;
  const std::string seller = "16505550071";
  auto photos = env.RegisterPhotos("e2e-deliver-photo-", 2);
  ASSERT_NO_FATAL_FAILURE(SubmitListing(seller, photos));
  ASSERT_TRUE(receiver.WaitFor(1, 60s)) << OutboundLog();
  ASSERT_TRUE(env.Drained(30s));
  ASSERT_TRUE(test::WaitUntil(
      [&] { return Count("SELECT count(*) FROM deliveries WHERE status = 'delivered'") == 1; },
      30s));

  auto requests = receiver.Requests();
  ASSERT_EQ(requests.size(), 1u) << "delivered once";
  const auto& r = requests[0];
  EXPECT_TRUE(r.verified) << "the signature verifies with the receiver's secret: " << r.signature;
  EXPECT_EQ(r.answered, 200);
  EXPECT_NE(r.id.find(":completed"), std::string::npos)
      << "webhook-id is the result's dedupe key: " << r.id;
  SchemaRegistry schemas;
  ASSERT_TRUE(schemas.LoadDir(test::SourcePath("proto-schemas")).ok());
  EXPECT_TRUE(schemas.ValidateAs("listing.submitted", 1, r.body).ok())
      << schemas.ValidateAs("listing.submitted", 1, r.body).ToString();
  rapidjson::Document body;
  body.Parse(r.body.c_str());
  EXPECT_STREQ(body["type"].GetString(), "listing.submitted");
  EXPECT_EQ(std::string(body["data"]["result_id"].GetString()), r.id);
  EXPECT_STREQ(body["data"]["fields"]["price"].GetString(), "35");
  EXPECT_STREQ(body["data"]["contact"]["wa_id"].GetString(), seller.c_str());
  const auto& sent = body["data"]["photos"];
  ASSERT_EQ(sent.Size(), 2u) << r.body;
  std::set<std::string> fetched, fixtures;
  for (const auto& p : sent.GetArray()) {
    ASSERT_STREQ(p["status"].GetString(), "stored")
        << "every photo was stored before the listing went";
    std::string url = p["url"].GetString();
    HttpClientRequest get;
    get.url = url;  // no media token
    auto served = HttpFetch(get);
    ASSERT_TRUE(served.ok()) << served.status().ToString();
    EXPECT_EQ(served->status, 200) << url;
    fetched.insert(served->body);
    get.url = url.substr(0, url.size() - 1) + (url.back() == '0' ? "1" : "0");
    auto tampered = HttpFetch(get);
    ASSERT_TRUE(tampered.ok());
    EXPECT_EQ(tampered->status, 403) << "a tampered link is refused";
  }
  for (const char* f : {"media/photo1.jpg", "media/photo2.jpg"})
    fixtures.insert(test::ReadFile(test::FixturePath(f)));
  EXPECT_EQ(fetched, fixtures);
  EXPECT_EQ(Count("SELECT count(*) FROM delivery_attempts WHERE outcome = 'delivered'"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM delivery_attempts"), 1);
}

// A sink that asks for the photos inline gets their bytes in the body, beside the links, so the
// evidence outlives the 7-day links and media's retention.
TEST_F(Delivery, ASinkThatAsksForPhotosInlineGetsTheirBytes) {
  fake::FakeReceiver receiver({test::Key(test::kOldSecret)});
  ASSERT_TRUE(receiver.Start().ok());
  std::string sink = test::WebhookSink("listing", receiver.url(),
                                       R"([")" + std::string(test::kOldSecret) + R"("])");
  sink.insert(sink.size() - 1, R"(, "attach": "inline")");
  Up("e2e_deliver_inline", "[" + sink + "]");
  auto& env = *stack_;
  auto photos = env.RegisterPhotos("e2e-inline-photo-", 2);
  ASSERT_NO_FATAL_FAILURE(SubmitListing("16505550078", photos));
  ASSERT_TRUE(receiver.WaitFor(1, 60s)) << OutboundLog();
  auto requests = receiver.Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_TRUE(requests[0].verified);
  rapidjson::Document body;
  body.Parse(requests[0].body.c_str());
  ASSERT_TRUE(body.IsObject());
  const auto& sent = body["data"]["photos"];
  ASSERT_EQ(sent.Size(), 2u);
  std::set<std::string> carried, fixtures;
  for (const auto& p : sent.GetArray()) {
    ASSERT_TRUE(p.HasMember("content_base64")) << requests[0].body.substr(0, 400);
    EXPECT_STREQ(p["content_type"].GetString(), "image/jpeg");
    auto bytes = Base64Decode(p["content_base64"].GetString());
    ASSERT_TRUE(bytes.ok());
    carried.insert(*bytes);
    EXPECT_TRUE(p.HasMember("url")) << "the link too";
  }
  for (const char* f : {"media/photo1.jpg", "media/photo2.jpg"})
    fixtures.insert(test::ReadFile(test::FixturePath(f)));
  EXPECT_EQ(carried, fixtures);
}

// SELL to a draft product: the number sends its listings to the business's Shopify store and to
// its webhook; the draft has the photos, the seller's email and WhatsApp id (as metafields, never
// in the description), and each sink gets the result once.
TEST_F(Delivery, AListingBecomesADraftProductWithItsPhotosAndSellerAndReachesTheWebhookToo) {
  fake::FakeReceiver receiver({test::Key(test::kOldSecret)});
  ASSERT_TRUE(receiver.Start().ok());
  fake::FakeShopify shop("shpat_e2e");
  ASSERT_TRUE(shop.Start().ok());
  Up("e2e_deliver_shop",
     "[" +
         test::WebhookSink("acme-hook", receiver.url(),
                           R"([")" + std::string(test::kOldSecret) + R"("])") +
         R"(, {"name": "acme-shop", "kind": "shopify", "store": "acme.myshopify.com", "url": ")" +
         shop.url() + R"(", "token": "shpat_e2e", "allow_private": true}])");
  ASSERT_EQ(
      Count("WITH u AS (UPDATE numbers SET sinks = '{\"listing\": [\"acme-shop\", \"acme-hook\"]}' "
            "WHERE phone_number_id = $1 RETURNING 1) SELECT count(*) FROM u",
            {std::string(test::kDemoNumber)}),
      1);
  auto& env = *stack_;
  const std::string seller = "16505550079";
  auto photos = env.RegisterPhotos("e2e-shop-photo-", 2);
  ASSERT_NO_FATAL_FAILURE(SubmitListing(seller, photos));
  ASSERT_TRUE(receiver.WaitFor(1, 60s)) << OutboundLog();
  ASSERT_TRUE(test::WaitUntil(
      [&] { return Count("SELECT count(*) FROM deliveries WHERE status = 'delivered'") == 2; },
      60s))
      << OutboundLog();
  ASSERT_TRUE(env.Drained(30s));

  auto products = shop.Products();
  ASSERT_EQ(products.size(), 1u) << "one draft";
  const auto& p = products[0];
  EXPECT_EQ(p.status, "DRAFT");
  EXPECT_EQ(p.title, "Nike running shoes, size 42, used, $35");
  EXPECT_EQ(p.media.size(), 2u) << "both photos, as signed links";
  auto meta = [&](const std::string& key) {
    return p.metafields.count(key) ? p.metafields.at(key) : "(none)";
  };
  EXPECT_EQ(meta("convoy.seller_email"), "kerry@example.com");
  EXPECT_EQ(meta("convoy.seller_whatsapp"), seller);
  EXPECT_EQ(p.description_html.find("kerry@example.com"), std::string::npos);
  EXPECT_EQ(p.description_html.find(seller), std::string::npos);
  auto requests = receiver.Requests();
  ASSERT_EQ(requests.size(), 1u) << "the webhook once";
  EXPECT_EQ(meta("convoy.result_id"), requests[0].id)
      << "the draft names the result the webhook got";
  EXPECT_EQ(Count("SELECT count(DISTINCT result_id) FROM deliveries"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM deliveries WHERE sink IN ('acme-shop', 'acme-hook')"), 2);
}

// A photo still being fetched at SUBMIT holds the listing back, but not forever: after
// --result_photo_wait_seconds the listing goes with that photo named as missing (the reminder
// travels through a delay queue), and the photo stored later sends nothing more.
TEST_F(Delivery, AListingWaitsForItsPhotosAtMostTheBoundThenGoesWithTheMissingOneNamed) {
  fake::FakeReceiver receiver({test::Key(test::kOldSecret)});
  ASSERT_TRUE(receiver.Start().ok());
  Up("e2e_deliver_wait",
     "[" +
         test::WebhookSink("listing", receiver.url(),
                           R"([")" + std::string(test::kOldSecret) + R"("])") +
         "]",
     "0,1s,1s,1s", {"--result_photo_wait_seconds=3"});
  auto& env = *stack_;
  const std::string seller = "16505550072";
  auto photos = env.RegisterPhotos("e2e-wait-photo-", 2);
  env.graph.Inject(200, 0, 1, 12000,
                   "_download/" + photos[1]);  // the second photo's bytes come 12 s late
  const std::string stored = "convoy_media_fetches_total{outcome=\"stored\"}";
  ASSERT_NO_FATAL_FAILURE(env.StartListing(seller));
  ASSERT_EQ(env.PostMessage(seller, test::ImageMessage(photos[0])), 200);
  ASSERT_EQ(env.PostMessage(seller, test::ImageMessage(photos[1])), 200);
  ASSERT_TRUE(env.WaitSends(seller, 4));
  ASSERT_TRUE(test::WaitUntil([&] { return env.Metric("media", stored) >= 1; }, 30s));
  ASSERT_EQ(env.PostMessage(seller, test::TextMessage("DONE")), 200);
  ASSERT_TRUE(env.WaitSends(seller, 5));
  ASSERT_EQ(env.PostMessage(seller, test::ButtonReplyMessage("flaws_no", "NO, SKIP")), 200);
  ASSERT_TRUE(env.WaitSends(seller, 6));
  ASSERT_EQ(env.PostMessage(seller, test::ButtonReplyMessage("submit", "SUBMIT")), 200);
  const int64_t submitted = test::NowSeconds();
  ASSERT_TRUE(receiver.WaitFor(1, 30s)) << OutboundLog();
  EXPECT_LT(env.Metric("media", stored), 2) << "it went before the slow photo was stored";
  EXPECT_GE(receiver.Requests()[0].at_ms / 1000, submitted + 2) << "not before the bound";
  rapidjson::Document body;
  body.Parse(receiver.Requests()[0].body.c_str());
  const auto& sent = body["data"]["photos"];
  ASSERT_EQ(sent.Size(), 2u);
  EXPECT_STREQ(sent[0]["status"].GetString(), "stored");
  EXPECT_STREQ(sent[1]["status"].GetString(), "missing");
  EXPECT_STREQ(sent[1]["reason"].GetString(), "not stored within 3 s of submission");
  // The slow photo arrives: uploaded where the listing's photos go, and no second delivery.
  ASSERT_TRUE(test::WaitUntil([&] { return env.Metric("media", stored) >= 2; }, 60s));
  ASSERT_TRUE(env.Drained(30s));
  EXPECT_EQ(receiver.Count(), 1u);
  EXPECT_EQ(Count("SELECT count(*) FROM deliveries"), 1);
}

// 503, 503, 200: three attempts with one webhook-id, one success row; a redelivered command
// after that sends nothing more.
TEST_F(Delivery, AFailingReceiverGetsTheSameWebhookIdUntilItTakesItAndNeverAgain) {
  fake::FakeReceiver receiver({test::Key(test::kOldSecret)});
  ASSERT_TRUE(receiver.Start().ok());
  receiver.Script({{503, {}, 0}, {503, {}, 0}});
  Up("e2e_deliver_retry", "[" +
                              test::WebhookSink("listing", receiver.url(),
                                                R"([")" + std::string(test::kOldSecret) + R"("])") +
                              "]");
  Publish("result-retry-1");
  ASSERT_TRUE(WaitStatus("result-retry-1", "delivered")) << OutboundLog();
  auto requests = receiver.Requests();
  ASSERT_EQ(requests.size(), 3u);
  for (const auto& r : requests) {
    EXPECT_EQ(r.id, "result-retry-1");
    EXPECT_TRUE(r.verified);
  }
  EXPECT_EQ(requests[0].answered, 503);
  EXPECT_EQ(requests[2].answered, 200);
  EXPECT_GE(requests[1].at_ms - requests[0].at_ms, 1000) << "the schedule's second delay";
  EXPECT_EQ(
      Count("SELECT count(*) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id "
            "WHERE d.result_id = 'result-retry-1'"),
      3);
  EXPECT_EQ(Count("SELECT count(*) FROM delivery_attempts WHERE outcome = 'delivered'"), 1);
  EXPECT_EQ(
      Count("SELECT count(*) FROM delivery_attempts WHERE status_code = 503 AND outcome = 'retry'"),
      2);
  // The same result again (a redelivery, a replayed flow.completed): acknowledged, not sent.
  Publish("result-retry-1", "listing", "corr-duplicate-1");
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        return stack_->Metric("outbound",
                              R"(convoy_deliveries_total{sink="listing",outcome="duplicate"})") >=
               1;
      },
      30s));
  ASSERT_TRUE(stack_->Drained(30s));
  EXPECT_EQ(receiver.Count(), 3u);
}

TEST_F(Delivery, RetryAfterIsHonoured) {
  fake::FakeReceiver receiver({test::Key(test::kOldSecret)});
  ASSERT_TRUE(receiver.Start().ok());
  receiver.Script({{429, {{"Retry-After", "7"}}, 0}});
  Up("e2e_deliver_after", "[" +
                              test::WebhookSink("listing", receiver.url(),
                                                R"([")" + std::string(test::kOldSecret) + R"("])") +
                              "]");
  Publish("result-after-1");
  ASSERT_TRUE(WaitStatus("result-after-1", "delivered", 60s)) << OutboundLog();
  auto requests = receiver.Requests();
  ASSERT_EQ(requests.size(), 2u);
  const int64_t gap = requests[1].at_ms - requests[0].at_ms;
  EXPECT_GE(gap, 7000) << "Retry-After: 7 (the schedule alone would wait 1 s)";
  EXPECT_LT(gap, 12000);
}

// 410 disables the sink: a later result is held, not sent and not dropped; enabling the sink
// sends what it held, with the same webhook-ids.
TEST_F(Delivery, GoneDisablesTheSinkAndEnablingItDeliversWhatWasHeld) {
  fake::FakeReceiver receiver({test::Key(test::kOldSecret)});
  ASSERT_TRUE(receiver.Start().ok());
  receiver.Script({{410, {}, 0}});
  Up("e2e_deliver_gone", "[" +
                             test::WebhookSink("listing", receiver.url(),
                                               R"([")" + std::string(test::kOldSecret) + R"("])") +
                             "]");
  Publish("result-gone-1");
  ASSERT_TRUE(WaitStatus("result-gone-1", "held")) << OutboundLog();
  EXPECT_EQ(Count("SELECT count(*) FROM sink_states WHERE name = 'listing'"), 1);
  Publish("result-gone-2");
  ASSERT_TRUE(WaitStatus("result-gone-2", "held")) << OutboundLog();
  EXPECT_EQ(receiver.Count(), 1u) << "nothing is sent to a disabled sink";
  auto held = Admin("GET", "/v1/deliveries?status=held");
  EXPECT_EQ(held.status, 200);
  EXPECT_NE(held.body.find("result-gone-2"), std::string::npos) << held.body;
  EXPECT_EQ(Admin("POST", "/v1/sinks/listing/enable", "", "wrong").status, 401);
  EXPECT_EQ(Admin("POST", "/v1/sinks/nosuch/enable").status, 404);
  auto enabled = Admin("POST", "/v1/sinks/listing/enable");
  EXPECT_EQ(enabled.status, 200) << enabled.body;
  EXPECT_NE(enabled.body.find("\"released\":2"), std::string::npos) << enabled.body;
  ASSERT_TRUE(WaitStatus("result-gone-1", "delivered")) << OutboundLog();
  ASSERT_TRUE(WaitStatus("result-gone-2", "delivered")) << OutboundLog();
  std::map<std::string, int> ids;
  for (const auto& r : receiver.Requests()) ids[r.id]++;
  EXPECT_EQ(ids, (std::map<std::string, int>{{"result-gone-1", 2}, {"result-gone-2", 1}}));
  EXPECT_EQ(Count("SELECT count(*) FROM sink_states"), 0);
}

// Exhausted: parked with the reason; replayed (by id, then by time range) it goes again.
TEST_F(Delivery, AnExhaustedDeliveryIsParkedWithTheReasonAndCanBeReplayed) {
  fake::FakeReceiver receiver({test::Key(test::kOldSecret)});
  ASSERT_TRUE(receiver.Start().ok());
  receiver.Script({{500, {}, 0}, {500, {}, 0}, {500, {}, 0}, {500, {}, 0}});
  Up("e2e_deliver_park",
     "[" +
         test::WebhookSink("listing", receiver.url(),
                           R"([")" + std::string(test::kOldSecret) + R"("])") +
         "]",
     "0,1s");
  Publish("result-park-1");
  Publish("result-park-2");
  ASSERT_TRUE(WaitStatus("result-park-1", "parked")) << OutboundLog();
  ASSERT_TRUE(WaitStatus("result-park-2", "parked")) << OutboundLog();
  auto why = db_->Exec("SELECT last_error FROM deliveries WHERE result_id = 'result-park-1'");
  ASSERT_TRUE(why.ok());
  EXPECT_EQ(why->get(0, 0), "exhausted after 2 attempts: HTTP 500");
  EXPECT_EQ(receiver.Count(), 4u);
  EXPECT_EQ(Admin("POST", "/v1/deliveries/replay", "{\"id\": \"x\"}").status, 400);
  auto id = db_->Exec("SELECT id FROM deliveries WHERE result_id = 'result-park-1'");
  auto one = Admin("POST", "/v1/deliveries/replay", "{\"id\": " + id->get(0, 0) + "}");
  EXPECT_NE(one.body.find("\"replayed\":1"), std::string::npos) << one.body;
  ASSERT_TRUE(WaitStatus("result-park-1", "delivered")) << OutboundLog();
  EXPECT_EQ(StatusOf("result-park-2"), "parked") << "a replay by id replays that one";
  const int64_t now = test::NowSeconds();
  auto range = Admin(
      "POST", "/v1/deliveries/replay",
      "{\"from\": " + std::to_string(now - 600) + ", \"to\": " + std::to_string(now + 60) + "}");
  EXPECT_NE(range.body.find("\"replayed\":1"), std::string::npos) << range.body;
  ASSERT_TRUE(WaitStatus("result-park-2", "delivered")) << OutboundLog();
  EXPECT_EQ(receiver.Count(), 6u);
}

// Two secrets sign every request: a receiver that knows only the new one, or only the old one,
// verifies it.
TEST_F(Delivery, ARotatedSecretIsAcceptedByAReceiverThatKnowsEitherOne) {
  fake::FakeReceiver receiver({test::Key(test::NewSecret())});
  ASSERT_TRUE(receiver.Start().ok());
  Up("e2e_deliver_rotate", "[" +
                               test::WebhookSink("listing", receiver.url(),
                                                 R"([")" + std::string(test::kOldSecret) +
                                                     R"(", ")" + test::NewSecret() + R"("])") +
                               "]");
  Publish("result-rotate-1");
  ASSERT_TRUE(WaitStatus("result-rotate-1", "delivered")) << OutboundLog();
  auto r = receiver.Requests().at(0);
  EXPECT_TRUE(r.verified) << "the receiver that knows the new secret";
  EXPECT_TRUE(VerifyWebhookSignature({test::Key(test::kOldSecret)}, r.id, r.timestamp, r.body,
                                     r.signature, test::NowSeconds()))
      << "a receiver that knows only the old secret: " << r.signature;
  EXPECT_FALSE(VerifyWebhookSignature({std::string(32, 'x')}, r.id, r.timestamp, r.body,
                                      r.signature, test::NowSeconds()));
}

// A sink whose URL reaches inside the network is refused at start unless it says allow_private.
TEST(DeliveryConfig, ASinkOnAPrivateAddressIsRefusedAtStartNamingIt) {
  std::string file = test::WriteSinks(
      R"({"sinks": [{"name": "listing", "kind": "webhook", "url": "http://10.0.0.5/hooks",
      "secrets": [")" +
      std::string(test::kOldSecret) + R"("]}]})");
  test::ChildProcess p;
  std::string log = ::testing::TempDir() + "/" + test::UniqueName("outbound-ssrf") + ".log";
  ASSERT_TRUE(p.Start({test::BinaryPath("services/outbound/convoy-outbound"),
                       "--sinks_file=" + file, "--schema_dir=" + test::SourcePath("proto-schemas"),
                       "--pg_dsn=host=127.0.0.1 port=1 dbname=none", "--http_port=0"},
                      log, {{"CONVOY_GRAPH_TOKEN", "t"}, {"CONVOY_MEDIA_LINK_SECRET", "s"}}));
  int code = p.Wait();
  EXPECT_EQ(code, 1);
  EXPECT_NE(p.Log().find("sink 'listing': 10.0.0.5 resolves to 10.0.0.5"), std::string::npos)
      << p.Log();
}

}  // namespace
}  // namespace convoy
