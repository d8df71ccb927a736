#include "graph.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <fstream>
#include <sstream>

#include "convoy/crypto.h"
#include "convoy/topology.h"
#include "sender.h"

namespace convoy::outbound {
namespace {

std::string Read(const std::string& name) {
  std::ifstream in(std::string(CONVOY_FIXTURES_DIR) + "/graph/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The fixtures wrap Graph errors as {"http_status": N, "body": {...}}.
GraphError FromFixture(const std::string& name) {
  std::string text = Read(name);
  auto status_at = text.find("\"http_status\"");
  int status = std::atoi(text.c_str() + text.find(':', status_at) + 1);
  auto body_at = text.find('{', text.find("\"body\""));
  auto body_end = text.rfind('}');
  return ParseGraphError(status, text.substr(body_at, body_end - body_at));
}

TEST(GraphErrors, ClassifiedByCodeNotHttpStatus) {
  auto throughput = FromFixture("error_130429_throughput.json");
  EXPECT_EQ(throughput.http_status, 400);
  EXPECT_EQ(throughput.code, 130429);
  EXPECT_EQ(throughput.klass, GraphErrorClass::kRateLimited);
  EXPECT_EQ(FromFixture("error_131056_pair_rate.json").klass, GraphErrorClass::kRateLimited);
  EXPECT_EQ(FromFixture("error_131047_reengagement.json").klass, GraphErrorClass::kPermanent);
  EXPECT_EQ(FromFixture("error_131026_undeliverable.json").klass, GraphErrorClass::kPermanent);
  EXPECT_EQ(FromFixture("error_2_service_unavailable.json").klass, GraphErrorClass::kTransient);
  EXPECT_EQ(FromFixture("error_131000_unknown.json").klass, GraphErrorClass::kTransient);
}

TEST(GraphErrors, WithoutAGraphErrorTheHttpStatusDecides) {
  EXPECT_EQ(ParseGraphError(502, "<html>bad gateway</html>").klass, GraphErrorClass::kTransient);
  EXPECT_EQ(ParseGraphError(429, "").klass, GraphErrorClass::kTransient);
  EXPECT_EQ(ParseGraphError(400, "{}").klass, GraphErrorClass::kPermanent);
  EXPECT_EQ(ClassifyGraphError(400, 100), GraphErrorClass::kPermanent);
  EXPECT_EQ(ClassifyGraphError(401, 190), GraphErrorClass::kPermanent);
}

TEST(SendRequest, MatchesMetasShape) {
  auto body = BuildSendRequest(
      R"({"schema":"outbound.send","version":1,"correlation_id":"c","dedupe_key":"k",
      "phone_number_id":"1","to":"16505551234","message":{"type":"text","text":{"body":"Hi"}}})");
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(
      *body,
      R"({"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"text","text":{"body":"Hi"}})");
  EXPECT_FALSE(BuildSendRequest("{}").ok());
  auto wamid = ParseSendResponse(Read("send_ok_response.json"));
  ASSERT_TRUE(wamid.ok());
  EXPECT_EQ(wamid->rfind("wamid.", 0), 0u);
  EXPECT_FALSE(ParseSendResponse(R"({"messages":[]})").ok());
}

TEST(GraphErrors, EveryCodeTheIssueNamesIsClassified) {
  for (int code : {130429, 131056})
    EXPECT_EQ(ClassifyGraphError(400, code), GraphErrorClass::kRateLimited) << code;
  for (int code : {2, 131000, 131016, 131057})
    EXPECT_EQ(ClassifyGraphError(400, code), GraphErrorClass::kTransient) << code;
  for (int code : {131047, 131026, 131051, 131048, 100, 190}) {
    EXPECT_EQ(ClassifyGraphError(400, code), GraphErrorClass::kPermanent) << code;
  }
  EXPECT_EQ(ClassifyGraphError(503, 0), GraphErrorClass::kTransient);
  EXPECT_EQ(ClassifyGraphError(401, 0), GraphErrorClass::kPermanent);
  EXPECT_EQ(ClassifyGraphError(403, 0), GraphErrorClass::kPermanent);
}

// The codes of 2025-26 (issue 12): each classified with a meaning; the template pause waits for
// its end; account problems are flagged for alerts; an unknown 4xx code is permanent, an unknown
// 5xx transient.
TEST(GraphErrors, TheCodesOf2025And2026AreClassified) {
  for (int code :
       {131049, 131050, 131042, 133010, 131031, 368,    130497, 131052, 131053, 131062,
        131063, 131064, 130472, 137000, 132000, 132001, 132005, 132007, 132012, 132016}) {
    EXPECT_EQ(ClassifyGraphError(400, code), GraphErrorClass::kPermanent) << code;
    ASSERT_NE(KnownGraphError(code), nullptr) << code;
    EXPECT_GT(std::string(KnownGraphError(code)->meaning).size(), 5u) << code;
  }
  EXPECT_EQ(ClassifyGraphError(400, 132015), GraphErrorClass::kTransient)
      << "a paused template is sent after the pause";
  EXPECT_EQ(KnownGraphError(132015)->min_retry_ms, 600000);
  for (int code : {131042, 368, 130497, 133010, 132016, 190})
    EXPECT_TRUE(KnownGraphError(code)->account_problem) << code;
  // Only these two stop the number itself: it is paused and its sends wait (sender.cpp).
  for (int code : {131031, 133010}) EXPECT_TRUE(PausesNumber(code)) << code;
  for (int code : {131042, 368, 130497, 190, 131047}) EXPECT_FALSE(PausesNumber(code)) << code;
  EXPECT_FALSE(KnownGraphError(131062)->account_problem);
  EXPECT_EQ(KnownGraphError(999999), nullptr);
  EXPECT_EQ(ClassifyGraphError(400, 999999), GraphErrorClass::kPermanent);
  EXPECT_EQ(ClassifyGraphError(500, 999999), GraphErrorClass::kTransient);
  auto bsuid = FromFixture("error_131062_bsuid_not_supported.json");
  EXPECT_EQ(bsuid.code, 131062);
  EXPECT_EQ(bsuid.klass, GraphErrorClass::kPermanent);
}

// A user who shares no phone number is sent to by BSUID, as Meta's `recipient`; `to` wins when a
// command carries both.
TEST(SendRequest, ABsuidGoesAsRecipient) {
  auto body = BuildSendRequest(
      R"({"schema":"outbound.send","version":1,"correlation_id":"c","dedupe_key":"k",
      "phone_number_id":"1","recipient":"US.13491208655302741918","message":{"type":"text","text":{"body":"Hi"}}})");
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_EQ(
      *body,
      R"({"messaging_product":"whatsapp","recipient_type":"individual","recipient":"US.13491208655302741918","type":"text","text":{"body":"Hi"}})");
  auto both = BuildSendRequest(
      R"({"to":"16505551234","recipient":"US.1","message":{"type":"text","text":{"body":"Hi"}}})");
  ASSERT_TRUE(both.ok());
  EXPECT_NE(both->find(R"("to":"16505551234")"), std::string::npos);
  EXPECT_EQ(both->find("US.1"), std::string::npos);
  EXPECT_FALSE(BuildSendRequest(R"({"message":{"type":"text","text":{"body":"Hi"}}})").ok())
      << "no recipient at all";
}

std::string Command(const std::string& message) {
  return R"({"schema":"outbound.send","version":1,"correlation_id":"c","dedupe_key":"k","phone_number_id":"1",)"
         R"("to":"16505551234","message":)" +
         message + "}";
}

std::string Text(size_t chars, const std::string& unit = "a") {
  std::string body;
  for (size_t i = 0; i < chars; ++i) body += unit;
  return Command(R"({"type":"text","text":{"body":")" + body + R"("}})");
}

std::string Buttons(int n, size_t title_chars = 3, bool same_ids = false) {
  std::string buttons;
  for (int i = 0; i < n; ++i) {
    buttons += std::string(i ? "," : "") + R"({"type":"reply","reply":{"id":"b)" +
               std::to_string(same_ids ? 0 : i) + R"(","title":")" + std::string(title_chars, 't') +
               R"("}})";
  }
  return Command(
      R"({"type":"interactive","interactive":{"type":"button","body":{"text":"Pick"},"action":{"buttons":[)" +
      buttons + "]}}}");
}

std::string List(int rows) {
  std::string r;
  for (int i = 0; i < rows; ++i)
    r += std::string(i ? "," : "") + R"({"id":"r)" + std::to_string(i) + R"(","title":"Row"})";
  return Command(
      R"({"type":"interactive","interactive":{"type":"list","body":{"text":"Pick"},"action":{"button":"Open",)"
      R"("sections":[{"title":"S","rows":[)" +
      r + "]}]}}}");
}

// Meta's limits are checked before a message leaves; a violation names what is over.
TEST(SendRequest, MetasLimitsAreCheckedBeforeSending) {
  EXPECT_TRUE(BuildSendRequest(Text(4096)).ok());
  auto over = BuildSendRequest(Text(4097));
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().message(), "text body has 4097 characters; Meta allows 1 to 4096");
  EXPECT_TRUE(BuildSendRequest(Text(4096, "\xc3\xa9")).ok()) << "characters, not bytes";
  EXPECT_FALSE(BuildSendRequest(Text(0)).ok());
  EXPECT_TRUE(BuildSendRequest(Buttons(3, 20)).ok());
  auto four = BuildSendRequest(Buttons(4));
  ASSERT_FALSE(four.ok());
  EXPECT_EQ(four.status().message(), "reply buttons: Meta allows 1 to 3 buttons, got 4");
  auto long_title = BuildSendRequest(Buttons(2, 21));
  ASSERT_FALSE(long_title.ok());
  EXPECT_EQ(long_title.status().message(), "button 1 title has 21 characters; Meta allows 1 to 20");
  EXPECT_FALSE(BuildSendRequest(Buttons(0)).ok());
  EXPECT_FALSE(BuildSendRequest(Buttons(2, 3, true)).ok()) << "button ids must differ";
  EXPECT_TRUE(BuildSendRequest(List(10)).ok());
  auto rows = BuildSendRequest(List(11));
  ASSERT_FALSE(rows.ok());
  EXPECT_EQ(rows.status().message(), "list: Meta allows at most 10 rows, got 11");
  EXPECT_FALSE(BuildSendRequest(Command(R"({"type":"image","image":{}})")).ok());
  EXPECT_TRUE(BuildSendRequest(Command(R"({"type":"image","image":{"id":"123"}})")).ok());
  EXPECT_TRUE(
      BuildSendRequest(Command(R"({"type":"image","image":{"link":"https://example.com/a.jpg"}})"))
          .ok());
  EXPECT_TRUE(
      BuildSendRequest(
          Command(R"({"type":"template","template":{"name":"hello","language":{"code":"en"}}})"))
          .ok());
  EXPECT_FALSE(
      BuildSendRequest(Command(R"({"type":"template","template":{"name":"hello"}})")).ok());
  EXPECT_FALSE(BuildSendRequest(Command(R"({"type":"sticker","sticker":{"id":"1"}})")).ok());
}

// An agent's photo names a file stored in convoy-media; Meta gets a signed link to it that
// convoy-media accepts (and no trace of the stored name's field), or the send is refused when
// outbound has no link to give.
TEST(SendRequest, AStoredPhotoGoesAsASignedLinkToConvoyMedia) {
  const std::string name = std::string(64, 'a') + ".jpg";
  const std::string cmd =
      Command(R"({"type":"image","image":{"media":")" + name + R"(","caption":"Our office"}})");
  auto body = BuildSendRequest(cmd, "", {"https://media.example.com", "link-secret", 1900000000});
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  rapidjson::Document d;
  d.Parse(body->c_str());
  ASSERT_TRUE(d.IsObject()) << *body;
  const auto& image = d["image"];
  EXPECT_FALSE(image.HasMember("media")) << *body;
  EXPECT_STREQ(image["caption"].GetString(), "Our office");
  const std::string link = image["link"].GetString();
  EXPECT_EQ(link, MediaLink("https://media.example.com", "link-secret", name, 1900000000));
  const std::string sig = link.substr(link.find("sig=") + 4);
  EXPECT_EQ(CheckMediaLink("link-secret", name, "1900000000", sig, 1800000000), LinkCheck::kValid);
  auto unlinked = BuildSendRequest(cmd);
  ASSERT_FALSE(unlinked.ok());
  EXPECT_NE(unlinked.status().message().find("--media_public_url"), std::string::npos);
  EXPECT_FALSE(BuildSendRequest(Command(R"({"type":"image","image":{"media":"../x.jpg"}})"), "",
                                {"https://media.example.com", "link-secret", 1900000000})
                   .ok());
}

TEST(SendRequest, CarriesTheCallbackDataMetaEchoesInStatuses) {
  auto body = BuildSendRequest(Text(2), "convoy:k");
  ASSERT_TRUE(body.ok());
  EXPECT_NE(body->find(R"("biz_opaque_callback_data":"convoy:k")"), std::string::npos) << *body;
  EXPECT_FALSE(BuildSendRequest(Text(2), std::string(513, 'x')).ok());
}

// The retry budget is time: a transient failure is retried until the window closes or the send
// deadline passes, whichever comes first, never "after 5 attempts in 13 minutes".
TEST(RetryBudget, EndsAtTheWindowOrTheDeadlineWhicheverIsSooner) {
  std::string why;
  const int64_t t0 = 1'790'000'000;
  // Written to 1 h ago, first attempt now, 24 h deadline: the window (23 h left) ends it.
  EXPECT_EQ(GiveUpAt(false, t0 - 3600, t0, std::chrono::hours(24), &why), t0 - 3600 + 24 * 3600);
  EXPECT_EQ(why, "the customer service window closes");
  // A 2 h deadline comes first.
  EXPECT_EQ(GiveUpAt(false, t0 - 3600, t0, std::chrono::hours(2), &why), t0 + 2 * 3600);
  EXPECT_NE(why.find("send deadline"), std::string::npos);
  // A template has no window.
  EXPECT_EQ(GiveUpAt(true, t0 - 23 * 3600, t0, std::chrono::hours(24), &why), t0 + 24 * 3600);
  // Unknown last inbound time: the deadline alone.
  EXPECT_EQ(GiveUpAt(false, 0, t0, std::chrono::hours(24), &why), t0 + 24 * 3600);
}

TEST(RetryBudget, BacksOffUpToTheLongestTierAndKeepsItThere) {
  // Attempt n waits the n-th tier; past the last tier, the last one again: an hour of Meta being
  // down costs ~6 attempts and then one every 10 minutes, not a parked reply.
  EXPECT_EQ(RetryDelayMs(1), 1000);
  EXPECT_EQ(RetryDelayMs(2), 5000);
  EXPECT_EQ(RetryDelayMs(5), 600000);
  EXPECT_EQ(RetryDelayMs(40), 600000);
  EXPECT_EQ(RetryDelayMs(1, 30000), 30000);  // a reconcile wait is never cut short
}

}  // namespace
}  // namespace convoy::outbound
