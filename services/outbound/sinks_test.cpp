// Sinks, signatures and the Shopify sink's pure parts: no network beyond name resolution of
// literal addresses.
#include "sinks.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <stdlib.h>

#include <fstream>

#include "convoy/crypto.h"
#include "convoy/json.h"
#include "deliverer.h"
#include "shopify.h"
#include "testsupport.h"

namespace convoy::outbound {
namespace {

const SchemaRegistry& Schemas() { return test::ShippedSchemas(); }

constexpr const char* kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

// The Standard Webhooks specification's own test vector: a receiver's library accepts what we sign.
TEST(StandardWebhooks, SignaturesReproduceTheSpecificationsTestVector) {
  auto key = WebhookSecretKey(kSecret);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(WebhookSignature({*key}, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                             R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  EXPECT_TRUE(VerifyWebhookSignature(
      {*key}, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", R"({"test": 2432232314})",
      "v1,bm9wZQ== v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", 1614265330));
  EXPECT_FALSE(VerifyWebhookSignature(
      {*key}, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", R"({"test": 2432232315})",
      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", 1614265330))
      << "another body";
  EXPECT_FALSE(VerifyWebhookSignature(
      {*key}, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", R"({"test": 2432232314})",
      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", 1614265330 + 301))
      << "too old";
  for (const char* bad :
       {"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!", "whsec_c2hvcnQ="}) {
    EXPECT_FALSE(WebhookSecretKey(bad).ok()) << bad;
  }
}

// Rotation: one signature per active secret, so a receiver that knows either one accepts.
TEST(StandardWebhooks, ARotatedSecretSignsWithBothAndEitherVerifies) {
  auto old_key = WebhookSecretKey(kSecret);
  auto new_key = WebhookSecretKey("whsec_" + Base64Encode(std::string(32, 'k')));
  ASSERT_TRUE(old_key.ok() && new_key.ok());
  std::string header = WebhookSignature({*old_key, *new_key}, "id-1", 1700000000, "{}");
  EXPECT_EQ(std::count(header.begin(), header.end(), ' '), 1) << header;
  EXPECT_TRUE(VerifyWebhookSignature({*old_key}, "id-1", "1700000000", "{}", header, 1700000000));
  EXPECT_TRUE(VerifyWebhookSignature({*new_key}, "id-1", "1700000000", "{}", header, 1700000000));
  EXPECT_FALSE(VerifyWebhookSignature({std::string(32, 'z')}, "id-1", "1700000000", "{}", header,
                                      1700000000));
}

TEST(Sinks, ConfigurationResolvesSecretsAndRefusesWhatIsWrongNamingTheSink) {
  ::setenv("CONVOY_TEST_SINK_SECRET", kSecret, 1);
  ::setenv("CONVOY_TEST_SHOP_TOKEN", "shpat_test", 1);
  std::string file = ::testing::TempDir() + "/sink-secret";
  std::ofstream(file) << kSecret << "\n";
  auto set = ParseSinks(R"({"sinks": [
      {"name": "listing", "kind": "webhook", "url": "https://8.8.8.8/hooks", "secrets": ["env:CONVOY_TEST_SINK_SECRET", "file:)" +
                            file + R"("]},
      {"name": "shop", "kind": "shopify", "store": "acme.myshopify.com", "token_env": "CONVOY_TEST_SHOP_TOKEN",
       "url": "http://127.0.0.1:9/admin/api/2026-04/graphql.json", "allow_private": true, "timeout_seconds": 5}]})",
                        Schemas(), std::chrono::seconds(15));
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  ASSERT_NE(set->Find("listing"), nullptr);
  EXPECT_EQ(set->Find("listing")->keys.size(), 2u);
  EXPECT_EQ(set->Find("listing")->timeout, std::chrono::seconds(15));
  EXPECT_EQ(set->Find("shop")->token, "shpat_test");
  EXPECT_EQ(set->Find("shop")->timeout, std::chrono::seconds(5));
  auto fails = [&](const std::string& json, const std::string& says) {
    auto r = ParseSinks(json, Schemas(), std::chrono::seconds(15));
    ASSERT_FALSE(r.ok()) << json;
    EXPECT_NE(r.status().message().find(says), std::string::npos) << r.status().message();
  };
  fails(
      R"({"sinks": [{"name": "a", "kind": "webhook", "url": "http://127.0.0.1:8080/x", "secrets": [")" +
          std::string(kSecret) + R"("]}]})",
      "allow_private");
  fails(
      R"({"sinks": [{"name": "a", "kind": "webhook", "url": "http://169.254.169.254/latest", "secrets": [")" +
          std::string(kSecret) + R"("]}]})",
      "169.254.169.254");
  fails(
      R"({"sinks": [{"name": "a", "kind": "webhook", "url": "https://8.8.8.8/x", "secrets": ["env:CONVOY_UNSET_VAR"]}]})",
      "sink 'a': environment variable CONVOY_UNSET_VAR is not set");
  fails(
      R"({"sinks": [{"name": "a", "kind": "webhook", "url": "https://8.8.8.8/x", "secrets": ["plain"]}]})",
      "whsec_");
  fails(R"({"sinks": [{"name": "a", "kind": "webhook", "url": "https://8.8.8.8/x"}]})", "secrets");
  fails(R"({"sinks": [{"name": "a", "kind": "shopify", "store": "x.myshopify.com"}]})", "token");
  fails(R"({"sinks": [{"name": "a", "kind": "ftp"}]})", "kind");
  fails(
      R"({"sinks": [{"name": "a", "kind": "webhook", "url": "https://user:pw@8.8.8.8/x", "secrets": [")" +
          std::string(kSecret) + R"("]}]})",
      "no credentials");
  EXPECT_TRUE(LoadSinks("", Schemas(), std::chrono::seconds(15)).ok())
      << "no file: no sinks, results held";
  EXPECT_FALSE(LoadSinks("/nonexistent/sinks.json", Schemas(), std::chrono::seconds(15)).ok());
}

// The commented example a deployment starts from is a valid sinks file.
TEST(Sinks, TheShippedExampleIsAValidSinksFile) {
  std::ifstream in(test::SourcePath("deploy/sinks/shop-and-webhook.example.json"));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(text.empty());
  Status valid = Schemas().ValidateAs("sinks", 1, text);
  EXPECT_TRUE(valid.ok()) << valid.ToString();
  EXPECT_NE(text.find(R"(\"listing\": [\"acme-shop\", \"acme-hook\"])"), std::string::npos)
      << "it shows the number's map that uses it";
}

TEST(Sinks, TheScheduleIsParsedLikeSvixsDefault) {
  auto s = ParseSchedule("0,5s,5m,30m,2h,5h,10h,10h");
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->size(), 8u);
  EXPECT_EQ((*s)[1].count(), 5000);
  EXPECT_EQ((*s)[3].count(), 1800000);
  EXPECT_EQ((*s)[7].count(), 36000000);
  EXPECT_EQ((*ParseSchedule("0,250ms"))[1].count(), 250);
  for (const char* bad : {"", "5", "5x", "s", "1,,2s", "49h"})
    EXPECT_FALSE(ParseSchedule(bad).ok()) << bad;
}

TEST(Delivery, RetryAfterIsReadInSecondsOrAsAnHttpDate) {
  EXPECT_EQ(RetryAfterSeconds("7", 0), 7);
  EXPECT_EQ(RetryAfterSeconds("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470), 10);
  EXPECT_EQ(RetryAfterSeconds("soon", 0), -1);
  EXPECT_EQ(RetryAfterSeconds("", 0), -1);
}

// The body a receiver gets: its type's schema, photos as signed links or named as missing.
TEST(Delivery, TheListingBodyMatchesItsSchemaWithSignedPhotoLinks) {
  const std::string name = std::string(64, 'a') + ".jpg";
  std::string command =
      R"({"schema":"outbound.deliver","version":1,"correlation_id":"c","dedupe_key":"k",
    "conversation_key":"106540352242922:16505550000","phone_number_id":"106540352242922","result_id":"r-1",
    "sink":"listing","type":"listing.submitted","flow":"listing","outcome":"submitted","completed_at":1764500000,
    "wa_id":"16505550000","fields":{"email":"a@b.c","description":"Nike shoes","price":"35"},
    "photos":[{"field":"photos","media_id":"m1","sent_at":1,"stored_name":")" +
      name + R"("},
              {"field":"photos","media_id":"m2","sent_at":2,"missing":"not stored within 600 s of submission"}]})";
  ASSERT_TRUE(Schemas().Validate(command).ok()) << Schemas().Validate(command).ToString();
  std::string body = ResultBody(command, "https://media.example", "s3cret", 1764600000);
  EXPECT_TRUE(Schemas().ValidateAs("listing.submitted", 1, body).ok())
      << Schemas().ValidateAs("listing.submitted", 1, body).ToString();
  rapidjson::Document d;
  d.Parse(body.c_str());
  EXPECT_STREQ(d["timestamp"].GetString(), "2025-11-30T10:53:20Z");
  EXPECT_EQ(std::string(d["data"]["photos"][0]["url"].GetString()),
            "https://media.example/media/" + name +
                "?expires=1764600000&sig=" + MediaLinkSignature("s3cret", name, 1764600000));
  EXPECT_STREQ(d["data"]["photos"][1]["status"].GetString(), "missing");
  EXPECT_STREQ(d["data"]["contact"]["wa_id"].GetString(), "16505550000");
}

// A checklist answer's PDF reaches the receiver with its type and the sender's file name, beside
// its signed link (and, inline, as itself); the body still matches the checklist's schema.
TEST(Delivery, AChecklistBodyCarriesADocumentsTypeAndName) {
  const std::string pdf = std::string(64, 'b') + ".pdf";
  std::string command =
      R"({"schema":"outbound.deliver","version":1,"correlation_id":"c","dedupe_key":"k",
    "conversation_key":"106540352242922:16505550000","phone_number_id":"106540352242922","result_id":"r-2",
    "sink":"checklist","type":"checklist.completed","flow":"checklist","outcome":"submitted","completed_at":1764500000,
    "wa_id":"16505550000","fields":{"assignment_id":"asg_1","reference":"MGR-1","checklist":"Line QA","q1":"OK"},
    "photos":[{"field":"q1","media_id":"m1","sent_at":1,"stored_name":")" +
      pdf + R"(",
               "mime_type":"application/pdf","filename":"inspection report.pdf"}]})";
  ASSERT_TRUE(Schemas().Validate(command).ok()) << Schemas().Validate(command).ToString();
  std::string body = ResultBody(command, "https://media.example", "s3cret", 1764600000);
  EXPECT_TRUE(Schemas().ValidateAs("checklist.completed", 1, body).ok())
      << Schemas().ValidateAs("checklist.completed", 1, body).ToString();
  rapidjson::Document d;
  d.Parse(body.c_str());
  const auto& p = d["data"]["photos"][0];
  EXPECT_STREQ(p["mime_type"].GetString(), "application/pdf");
  EXPECT_STREQ(p["filename"].GetString(), "inspection report.pdf");
  EXPECT_STREQ(p["status"].GetString(), "stored");
  // Carried inline (a sink with attach inline), the PDF goes as itself: its own type, its bytes.
  auto carried = ResultBody(
      command, "https://media.example", "s3cret", 1764600000,
      [](const std::string&) -> Result<std::string> { return std::string("%PDF-1.4\n%%EOF\n"); });
  ASSERT_TRUE(carried.ok()) << carried.status().ToString();
  EXPECT_TRUE(Schemas().ValidateAs("checklist.completed", 1, *carried).ok())
      << Schemas().ValidateAs("checklist.completed", 1, *carried).ToString();
  rapidjson::Document inlined;
  inlined.Parse(carried->c_str());
  EXPECT_STREQ(inlined["data"]["photos"][0]["content_type"].GetString(), "application/pdf");
  EXPECT_STREQ(inlined["data"]["photos"][0]["content_base64"].GetString(), "JVBERi0xLjQKJSVFT0YK");
}

TEST(Shopify, ADraftProductCarriesItsResultTagAndPhotoLinks) {
  auto p = shopify::ListingProduct({{"description", "Nike running shoes, size 42. Barely worn"},
                                    {"brand", "Nike"},
                                    {"price", "35,5"},
                                    {"condition", "used"}},
                                   "Shop");
  EXPECT_EQ(p.title, "Nike running shoes, size 42");
  EXPECT_EQ(p.vendor, "Nike");
  EXPECT_EQ(p.price, "35.50");
  EXPECT_NE(p.description_html.find("<p>Condition: used</p>"), std::string::npos);
  p.tag = shopify::TagFor("r-1");
  EXPECT_EQ(p.tag.size(), 47u);
  p.media = {{"https://m/media/x.jpg?sig=1", "alt"}};
  rapidjson::Document d;
  std::string req = shopify::ProductCreateRequest(p);
  d.Parse(req.c_str());
  ASSERT_FALSE(d.HasParseError());
  EXPECT_STREQ(d["variables"]["product"]["status"].GetString(), "DRAFT");
  EXPECT_EQ(std::string(d["variables"]["product"]["tags"][0].GetString()), p.tag);
  EXPECT_STREQ(d["variables"]["media"][0]["originalSource"].GetString(),
               "https://m/media/x.jpg?sig=1");
  EXPECT_FALSE(d["variables"]["product"].HasMember("metafields"));
  // The seller goes on the draft as metafields, never into its description.
  shopify::AddSeller(p, "r-1", "kerry@example.com", "");
  shopify::AddSeller(p, "", "", "US.13491208655302741918");
  rapidjson::Document seller;
  seller.Parse(shopify::ProductCreateRequest(p).c_str());
  const auto& meta = seller["variables"]["product"]["metafields"];
  ASSERT_EQ(meta.Size(), 3u);
  EXPECT_STREQ(meta[0]["namespace"].GetString(), "convoy");
  EXPECT_STREQ(meta[0]["key"].GetString(), "result_id");
  EXPECT_STREQ(meta[1]["key"].GetString(), "seller_email");
  EXPECT_STREQ(meta[1]["value"].GetString(), "kerry@example.com");
  EXPECT_STREQ(meta[1]["type"].GetString(), "single_line_text_field");
  EXPECT_STREQ(meta[2]["key"].GetString(), "seller_whatsapp");
  EXPECT_STREQ(meta[2]["value"].GetString(), "US.13491208655302741918");
  EXPECT_EQ(shopify::ListingProduct({{"description", "x"}, {"email", "kerry@example.com"}}, "")
                .description_html.find("kerry"),
            std::string::npos)
      << "a published product's description never names the seller";
  EXPECT_EQ(shopify::ListingProduct({{"description", "x"}, {"brand", "none"}}, "").vendor,
            "convoy");
}

TEST(Shopify, AnswersAndTheQueryCostBucketAreRead) {
  auto a =
      shopify::ParseAnswer(R"({"data":{"productCreate":{"product":{"id":"gid://shopify/Product/1",
      "variants":{"nodes":[{"id":"gid://shopify/ProductVariant/2"}]}},"userErrors":[]}},
      "extensions":{"cost":{"requestedQueryCost":20,"throttleStatus":{"maximumAvailable":100,"currentlyAvailable":5,"restoreRate":50}}}})",
                           "create");
  EXPECT_EQ(a.product_id, "gid://shopify/Product/1");
  EXPECT_EQ(a.variant_id, "gid://shopify/ProductVariant/2");
  EXPECT_FALSE(a.throttled);
  shopify::Throttle t;
  EXPECT_EQ(t.WaitFor("s", 20).count(), 0) << "nothing known: no wait";
  t.Update("s", a);
  auto wait = t.WaitFor("s", 20).count();
  EXPECT_GT(wait, 250);
  EXPECT_LE(wait, 300) << "15 points at 50/s";
  auto throttled =
      shopify::ParseAnswer(R"({"errors":[{"message":"Throttled","extensions":{"code":"THROTTLED"}}],
      "extensions":{"cost":{"requestedQueryCost":20,"throttleStatus":{"maximumAvailable":100,"currentlyAvailable":0,"restoreRate":10}}}})",
                           "create");
  EXPECT_TRUE(throttled.throttled);
  EXPECT_TRUE(throttled.errors.empty());
  EXPECT_EQ(shopify::Throttle::WaitAfterThrottled(throttled, 20).count(), 2000);
  auto refused = shopify::ParseAnswer(
      R"({"data":{"productCreate":{"product":null,"userErrors":[{"field":["title"],"message":"can't be blank"}]}}})",
      "create");
  EXPECT_EQ(refused.user_errors, "title: can't be blank");
  auto found = shopify::ParseAnswer(
      R"({"data":{"products":{"nodes":[{"id":"gid://shopify/Product/9","variants":{"nodes":[]}}]}}})",
      "find");
  EXPECT_EQ(found.product_id, "gid://shopify/Product/9");
}

// A store (or whatever answers in its place) nesting its answer a million deep: a clear error
// the delivery is failed with, never a crash of outbound on every redelivery.
TEST(Shopify, AnAnswerNestedAMillionDeepIsAClearError) {
  const size_t depth = 1000000;
  auto deep = shopify::ParseAnswer(
      R"({"data":)" + std::string(depth, '[') + std::string(depth, ']') + "}", "create");
  EXPECT_TRUE(deep.product_id.empty());
  auto top = shopify::ParseAnswer(std::string(depth, '{'), "create");
  EXPECT_EQ(top.errors, "not a GraphQL answer");
}

}  // namespace
}  // namespace convoy::outbound
