#include "webhook.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "convoy/crypto.h"
#include "convoy/json.h"
#include "testsupport.h"

namespace convoy::ingress {
namespace {

const std::string kFixtures = CONVOY_FIXTURES_DIR;

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Signature, EveryFixtureVerifiesAgainstItsRawBytes) {
  auto sigs = test::FixtureSignatures();
  ASSERT_GE(sigs.size(), 10u);
  for (const auto& [file, sig] : sigs) {
    std::string body = Read(kFixtures + "/webhooks/" + file);
    ASSERT_FALSE(body.empty()) << file;
    EXPECT_TRUE(VerifySignature(body, sig, "test-app-secret")) << file;
    EXPECT_EQ(SignBody(body, "test-app-secret"), sig) << file;
  }
}

TEST(Signature, TamperedWrongSecretMissingOrMalformedIsRejected) {
  std::string body = Read(kFixtures + "/webhooks/text.json");
  std::string sig = test::FixtureSignatures()["text.json"];
  std::string tampered = body;
  tampered[tampered.size() / 2] ^= 1;
  EXPECT_FALSE(VerifySignature(tampered, sig, "test-app-secret"));
  EXPECT_FALSE(VerifySignature(body, sig, "wrong-secret"));
  EXPECT_FALSE(VerifySignature(body, "", "test-app-secret"));
  EXPECT_FALSE(VerifySignature(body, "sha256=", "test-app-secret"));
  std::string bad_hex = sig;
  bad_hex[10] = 'z';
  EXPECT_FALSE(VerifySignature(body, bad_hex, "test-app-secret"));
  EXPECT_FALSE(VerifySignature(body, "sha1=" + sig.substr(7), "test-app-secret"));
  EXPECT_FALSE(VerifySignature(body, sig, ""));
}

TEST(Signature, RawUnicodeEscapesVerifyOnlyAsReceived) {
  std::string raw = Read(kFixtures + "/webhooks/text_unicode_escaped.raw");
  std::string sig = test::FixtureSignatures()["text_unicode_escaped.raw"];
  EXPECT_TRUE(VerifySignature(raw, sig, "test-app-secret"));
  auto split = SplitWebhook(raw, "c", "t");
  ASSERT_TRUE(split.ok());
  ASSERT_EQ(split->updates.size(), 1u);
  // Our envelope re-serializes Meta's object; the signature holds only for the raw bytes.
  EXPECT_FALSE(VerifySignature(split->updates[0].body, sig, "test-app-secret"));
}

TEST(Split, BatchMixedYieldsEveryUpdateOfEveryEntryAndChange) {
  auto split = SplitWebhook(Read(kFixtures + "/webhooks/batch_mixed.json"), "corr", "now");
  ASSERT_TRUE(split.ok());
  std::map<std::string, int> kinds;
  std::map<std::string, int> numbers;
  for (const auto& u : split->updates) {
    kinds[KindName(u.kind)]++;
    numbers[u.conversation_key.substr(0, u.conversation_key.find(':'))]++;
  }
  EXPECT_EQ(kinds["message"], 4);
  EXPECT_EQ(kinds["status"], 1);
  EXPECT_EQ(numbers.size(), 2u) << "a second business number";
  int images = 0;
  for (const auto& u : split->updates)
    images += u.body.find("\"type\":\"image\"") != std::string::npos;
  EXPECT_EQ(images, 3);
}

TEST(Split, DedupeAndConversationKeys) {
  auto split = SplitWebhook(Read(kFixtures + "/webhooks/status_delivered.json"), "corr", "now");
  ASSERT_TRUE(split.ok());
  ASSERT_EQ(split->updates.size(), 1u);
  const auto& u = split->updates[0];
  EXPECT_EQ(u.kind, Update::Kind::kStatus);
  EXPECT_EQ(u.dedupe_key, u.message_id);
  EXPECT_NE(u.dedupe_key.find(":delivered"), std::string::npos);
  auto text = SplitWebhook(Read(kFixtures + "/webhooks/text.json"), "corr", "now");
  ASSERT_TRUE(text.ok());
  ASSERT_EQ(text->updates.size(), 1u);
  EXPECT_EQ(
      text->updates[0].conversation_key.substr(text->updates[0].conversation_key.find(':') + 1),
      "16505551234");
  EXPECT_EQ(text->updates[0].dedupe_key.rfind("wamid.", 0), 0u);
  EXPECT_NE(text->updates[0].body.find("\"correlation_id\":\"corr\""), std::string::npos);
}

// 2026 identities: a user known by a phone, a BSUID, or both. Ingress's key is a first guess (the
// phone, else the BSUID) that conversation resolves; the envelope carries both; a message with
// neither has no key at all (never a shared "unknown").
TEST(Split, BusinessScopedUserIdsKeyTheirOwnConversations) {
  auto first = [](const std::string& file) {
    auto split = SplitWebhook(Read(kFixtures + "/webhooks/bsuid/" + file), "c", "t");
    EXPECT_TRUE(split.ok() && split->updates.size() == 1) << file;
    return split.ok() && !split->updates.empty() ? split->updates[0] : Update{};
  };
  Update a = first("username_only_a.json"), b = first("username_only_b.json");
  EXPECT_EQ(a.conversation_key, "106540352242922:US.13491208655302741918");
  EXPECT_EQ(b.conversation_key, "106540352242922:GB.20771945533210987654");
  EXPECT_NE(a.body.find(R"("user_id":"US.13491208655302741918")"), std::string::npos) << a.body;
  EXPECT_NE(a.body.find(R"("parent_user_id":"US.ENT.11815799212886844830")"), std::string::npos)
      << a.body;
  EXPECT_EQ(a.body.find(R"("wa_id")"), std::string::npos) << "no phone was shared";
  Update both = first("with_phone_a.json");
  EXPECT_EQ(both.conversation_key, "106540352242922:16505550111");
  EXPECT_NE(both.body.find(R"("wa_id":"16505550111")"), std::string::npos);
  EXPECT_NE(both.body.find(R"("user_id":"US.13491208655302741918")"), std::string::npos);
  Update status = first("status_delivered_to_bsuid.json");
  EXPECT_EQ(status.kind, Update::Kind::kStatus);
  EXPECT_EQ(status.conversation_key, "106540352242922:US.13491208655302741918");
  Update changed = first("system_user_changed_user_id.json");
  EXPECT_EQ(changed.conversation_key, "106540352242922:US.55501234567890123456");

  std::string nobody = Read(kFixtures + "/webhooks/bsuid/username_only_a.json");
  for (const char* member : {"\"from_user_id\": \"US.13491208655302741918\",",
                             "\"user_id\": \"US.13491208655302741918\","}) {
    auto at = nobody.find(member);
    ASSERT_NE(at, std::string::npos) << member;
    nobody.erase(at, std::string(member).size());
  }
  auto split = SplitWebhook(nobody, "c", "t");
  ASSERT_TRUE(split.ok());
  ASSERT_EQ(split->updates.size(), 1u)
      << "accepted and published: conversation parks it with the reason";
  EXPECT_EQ(split->updates[0].conversation_key, "");
  EXPECT_EQ(split->updates[0].body.find("unknown"), std::string::npos);
}

// A contacts[] entry whose wa_id contradicts the message's `from` is not the sender's, though it
// is the only one: its BSUID (and name) would join another person to this conversation.
TEST(Split, AContactThatContradictsTheSenderIsNeverTakenAsTheSender) {
  std::string body = Read(kFixtures + "/webhooks/bsuid/with_phone_a.json");
  for (const char* member : {"\"from_user_id\": \"US.13491208655302741918\",\n",
                             "\"from_parent_user_id\": \"US.ENT.11815799212886844830\",\n"}) {
    auto at = body.find(member);
    ASSERT_NE(at, std::string::npos) << member;
    body.erase(at, std::string(member).size());
  }
  auto contact = body.find("\"wa_id\": \"16505550111\"");
  ASSERT_NE(contact, std::string::npos);
  body.replace(contact, std::string("\"wa_id\": \"16505550111\"").size(),
               "\"wa_id\": \"16505550999\"");
  auto split = SplitWebhook(body, "c", "t");
  ASSERT_TRUE(split.ok());
  ASSERT_EQ(split->updates.size(), 1u);
  const Update& u = split->updates[0];
  EXPECT_EQ(u.conversation_key, "106540352242922:16505550111");
  EXPECT_NE(u.body.find(R"("wa_id":"16505550111")"), std::string::npos) << u.body;
  EXPECT_EQ(u.body.find("US.13491208655302741918"), std::string::npos)
      << "another person's BSUID: " << u.body;
  EXPECT_EQ(u.body.find("Alice"), std::string::npos) << "another person's name: " << u.body;
  EXPECT_EQ(u.body.find("16505550999"), std::string::npos) << u.body;

  // The same contact agreeing with `from` is the sender's, BSUID and name included.
  auto agreeing = SplitWebhook(Read(kFixtures + "/webhooks/bsuid/with_phone_a.json"), "c", "t");
  ASSERT_TRUE(agreeing.ok());
  EXPECT_NE(agreeing->updates[0].body.find("Alice"), std::string::npos);
}

// The one update a split yields (an empty one, failing the test, when it yields another number).
Update OnlyUpdate(const Result<SplitResult>& split) {
  EXPECT_TRUE(split.ok()) << split.status().ToString();
  if (!split.ok()) return {};
  EXPECT_EQ(split->updates.size(), 1u);
  return split->updates.size() == 1 ? split->updates[0] : Update{};
}

// user_preferences (a user stopped or resumed marketing messages) is routed to outbound, which
// keeps it; a malformed one is counted as an unknown shape, never published.
TEST(Split, MarketingPreferencesAreUpdatesForOutbound) {
  const std::string body =
      R"({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"user_preferences",)"
      R"("value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881",)"
      R"("phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Kerry"},"wa_id":"16505551234"}],)"
      R"("user_preferences":[{"wa_id":"16505551234","detail":"User requested to stop marketing messages",)"
      R"("category":"marketing_messages","value":"stop","timestamp":"1796032800"},{"category":"x"}]}}]}]})";
  auto split = SplitWebhook(body, "c", "t");
  ASSERT_TRUE(split.ok());
  const Update u = OnlyUpdate(split);
  EXPECT_EQ(u.kind, Update::Kind::kPreference);
  EXPECT_EQ(u.routing_key, "preference");
  EXPECT_EQ(u.conversation_key, "106540352242922:16505551234");
  EXPECT_EQ(u.dedupe_key, "preference:106540352242922:" + Sha256Hex("16505551234").substr(0, 16) +
                              ":marketing_messages:stop:1796032800");
  EXPECT_EQ(u.dedupe_key.find("16505551234"), std::string::npos)
      << "the key is logged: no phone in it";
  EXPECT_NE(u.body.find(R"("schema":"inbound.preference")"), std::string::npos);
  EXPECT_EQ(split->unknown_shapes, 1);
  EXPECT_EQ(split->ignored_changes, 0);
}

// Template changes (status, quality, category) of a business account go to outbound, which keeps
// the catalog: one inbound.template each, with the WABA (entry[].id) and the change's time
// (entry[].time); a redelivery keys the same; one with no name, language, time or a WABA that is
// not a number is an unknown shape, never published.
TEST(Split, TemplateChangesAreUpdatesForOutbound) {
  auto change = [](const std::string& field, const std::string& value,
                   const std::string& entry = R"("id":"102290129340398","time":1751247548)") {
    return R"({"object":"whatsapp_business_account","entry":[{)" + entry +
           R"(,"changes":[{"field":")" + field + R"(","value":)" + value + "}]}]}";
  };
  const std::string named =
      R"("message_template_id":1689556908129832,"message_template_name":"order_confirmation","message_template_language":"en_US")";
  const std::vector<std::string> bodies = {
      change("message_template_status_update",
             "{" + named + R"(,"event":"PAUSED","reason":"NONE"})"),
      change("message_template_quality_update",
             "{" + named + R"(,"previous_quality_score":"GREEN","new_quality_score":"YELLOW"})"),
      change("template_category_update",
             "{" + named + R"(,"previous_category":"UTILITY","new_category":"MARKETING"})"),
  };
  std::set<std::string> keys;
  for (const auto& body : bodies) {
    auto a = SplitWebhook(body, "c1", "t1");
    auto b = SplitWebhook(body, "c2", "t2");
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a->updates.size(), 1u) << body;
    const Update& u = a->updates[0];
    EXPECT_EQ(u.kind, Update::Kind::kTemplate);
    EXPECT_EQ(u.routing_key, "template");
    EXPECT_EQ(u.conversation_key, "");
    EXPECT_EQ(u.dedupe_key, b->updates[0].dedupe_key) << "a redelivery must dedupe";
    EXPECT_EQ(u.dedupe_key.rfind("template:102290129340398:", 0), 0u) << u.dedupe_key;
    keys.insert(u.dedupe_key);
    EXPECT_NE(u.body.find(R"("schema":"inbound.template")"), std::string::npos);
    EXPECT_NE(u.body.find(R"("waba_id":"102290129340398")"), std::string::npos);
    EXPECT_NE(u.body.find(R"("event_time":1751247548)"), std::string::npos);
    EXPECT_EQ(a->ignored_changes, 0);
  }
  EXPECT_EQ(keys.size(), 3u) << "different changes, different keys";
  for (const auto& bad :
       {change("template_category_update",
               R"({"message_template_language":"en_US","new_category":"MARKETING"})"),
        change("template_category_update", "{" + named + "}", R"("id":"waba-x","time":1)"),
        change("template_category_update", "{" + named + "}", R"("id":"1")")}) {
    auto r = SplitWebhook(bad, "c", "t");
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->updates.empty()) << bad;
    EXPECT_EQ(r->unknown_shapes, 1) << bad;
  }
}

TEST(Split, ValueLevelErrorsAreUpdatesWithStableDedupeKeys) {
  std::string body = Read(kFixtures + "/webhooks/value_error_rate_limit.json");
  auto a = SplitWebhook(body, "c1", "t1");
  auto b = SplitWebhook(body, "c2", "t2");
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->updates.size(), 1u);
  EXPECT_EQ(a->updates[0].kind, Update::Kind::kError);
  EXPECT_EQ(a->updates[0].dedupe_key, b->updates[0].dedupe_key) << "a redelivery must dedupe";
}

// account_update: one inbound.account per change, for conversation, keyed by the entry's id,
// event and time (a redelivery dedupes); the WABA is waba_info's when Meta names it (PARTNER_*
// events come under the partner's entry id). Without an event or a time it is an unknown shape.
TEST(Split, AccountUpdatesAreUpdatesForConversation) {
  const std::string dir = kFixtures + "/webhooks/pywa/";
  const Update u =
      OnlyUpdate(SplitWebhook(Read(dir + "account_update__account_restriction.json"), "c", "t"));
  EXPECT_EQ(u.kind, Update::Kind::kAccount);
  EXPECT_EQ(u.routing_key, "account");
  EXPECT_EQ(u.dedupe_key, "account:102290129340398:ACCOUNT_RESTRICTION:1641330498");
  EXPECT_EQ(u.message_id, u.dedupe_key);
  EXPECT_EQ(u.conversation_key, "");
  EXPECT_TRUE(test::ShippedSchemas().Validate(u.body).ok()) << u.body;
  EXPECT_NE(u.body.find(R"("waba_id":"102290129340398")"), std::string::npos) << u.body;
  EXPECT_NE(u.body.find("RESTRICTED_BIZ_INITIATED_MESSAGING"), std::string::npos)
      << "Meta's value travels whole";
  auto again = SplitWebhook(Read(dir + "account_update__account_restriction.json"), "c2", "t2");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->updates[0].dedupe_key, u.dedupe_key) << "a redelivery must dedupe";

  const Update removed =
      OnlyUpdate(SplitWebhook(Read(dir + "account_update__partner_removed.json"), "c", "t"));
  EXPECT_NE(removed.body.find(R"("entry_id":"2949482758682047","waba_id":"980198427658004")"),
            std::string::npos)
      << removed.body;

  auto broken =
      SplitWebhook(R"({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[)"
                   R"({"field":"account_update","value":{"event":"ACCOUNT_DELETED"}},)"
                   R"({"field":"account_update","value":{}}]}]})",
                   "c", "t");
  ASSERT_TRUE(broken.ok());
  EXPECT_TRUE(broken->updates.empty());
  EXPECT_EQ(broken->unknown_shapes, 2) << "no entry time, no event: not published";
}

// Conversation Routing and coexistence fixtures (tests/fixtures/webhooks/threads/README.md: each
// from Meta's reference page it names).
std::string Threads(const std::string& file) {
  return Read(test::SourcePath("tests/fixtures/webhooks/threads/" + file));
}

// What conversation accepts, and the member of the envelope that says it.
void ExpectValid(const Update& u) {
  EXPECT_TRUE(test::ShippedSchemas().Validate(u.body).ok()) << u.body;
}
bool Has(const Update& u, const std::string& member) {
  return u.body.find(member) != std::string::npos;
}

// Where an update goes: its kind and routing key, its conversation and its dedupe key (the broker's
// message id too), with an envelope its consumer accepts.
void ExpectRouted(const Update& u, Update::Kind kind, const std::string& routing_key,
                  const std::string& key, const std::string& dedupe) {
  EXPECT_EQ(std::string(KindName(u.kind)), KindName(kind)) << u.body;
  EXPECT_EQ(u.routing_key, routing_key);
  EXPECT_EQ(u.conversation_key, key);
  EXPECT_EQ(u.dedupe_key, dedupe);
  EXPECT_EQ(u.message_id, dedupe);
  ExpectValid(u);
}

// standby: a thread another app (or Meta's agent) owns. The customer's message is an
// inbound.message like any, on channel "standby", keyed by its sender; its dedupe key never equals
// the wamid, which another of convoy's apps may get on `messages` and answer.
TEST(Split, StandbyMessagesAreMessagesOnTheStandbyChannel) {
  const Update u = OnlyUpdate(SplitWebhook(Threads("standby_text.json"), "c", "t"));
  ExpectRouted(u, Update::Kind::kStandby, "message", "106540352242922:16505551234",
               "standby:wamid.HBgLMTY1MDU1NTEyMzQVAgASGBRTVEFOREJZMDAwMDAwMDAwMDAxAA==");
  EXPECT_TRUE(Has(u, R"("channel":"standby")")) << u.body;
  EXPECT_FALSE(Has(u, R"("direction")")) << "the customer wrote it: in, the default";
  EXPECT_TRUE(Has(u, R"("profile_name":"Kerry Fisher")")) << "standby's own contacts[]";
  EXPECT_TRUE(Has(u, R"("body":"Is the blue one still available?")"));

  const Update owned = OnlyUpdate(SplitWebhook(
      test::MessageWebhook("106540352242922", "16505551234", "Kerry Fisher",
                           "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBRTVEFOREJZMDAwMDAwMDAwMDAxAA==",
                           1796032800, test::TextMessage("Is the blue one still available?")),
      "c", "t"));
  EXPECT_EQ(owned.kind, Update::Kind::kMessage)
      << "the same message to the app that owns the thread";
  EXPECT_EQ("standby:" + owned.dedupe_key, u.dedupe_key);
  EXPECT_FALSE(Has(owned, R"("channel")")) << "messages: the default, not written";

  const Update bsuid = OnlyUpdate(SplitWebhook(Threads("standby_text_bsuid.json"), "c", "t"));
  EXPECT_EQ(bsuid.conversation_key, "106540352242922:US.13491208655302741918");
  EXPECT_TRUE(Has(bsuid, R"("user_id":"US.13491208655302741918")"));
  EXPECT_FALSE(Has(bsuid, R"("wa_id")")) << "no phone was shared";
  ExpectValid(bsuid);
}

// A status on standby (Meta Business Agent's message delivered) goes to outbound like any status;
// what the owner sent (an echo nested as its send request) is recorded in the conversation, out.
TEST(Split, StandbyStatusesAndTheOwnersEchoes) {
  ExpectRouted(OnlyUpdate(SplitWebhook(Threads("standby_status_delivered.json"), "c", "t")),
               Update::Kind::kStatus, "status", "106540352242922:16505551234",
               "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBRTVEFOREJZRUNITzAwMDAwMDAxAA==:delivered");

  // The customer: the send's `to`.
  const Update echo = OnlyUpdate(SplitWebhook(Threads("standby_echo_text.json"), "c", "t"));
  ExpectRouted(echo, Update::Kind::kStandby, "message", "106540352242922:16505551234",
               "standby:wamid.HBgLMTY1MDU1NTEyMzQVAgARGBRTVEFOREJZRUNITzAwMDAwMDAxAA==");
  EXPECT_TRUE(Has(echo, R"("channel":"standby","direction":"out")")) << echo.body;
  EXPECT_TRUE(Has(
      echo,
      R"("message":{"id":"wamid.HBgLMTY1MDU1NTEyMzQVAgARGBRTVEFOREJZRUNITzAwMDAwMDAxAA==","timestamp":"1796032805","messaging_product":"whatsapp","to":"16505551234")"))
      << echo.body;
}

// smb_message_echoes: what the business typed in the WhatsApp Business app. The customer is the
// echo's recipient (`to`, or `to_user_id` alone), never its `from` (the business's own number).
TEST(Split, BusinessAppEchoesAreKeyedByTheCustomerTheyWentTo) {
  const Update u = OnlyUpdate(SplitWebhook(Threads("smb_echo_text.json"), "c", "t"));
  ExpectRouted(u, Update::Kind::kEcho, "message", "106540352242922:16505551234",
               "echo:wamid.HBgLMTY0NjcwNDM1OTUVAgARGBRTTUJFQ0hPMDAwMDAwMDAwMDAxAA==");
  EXPECT_TRUE(Has(u, R"("wa_id":"16505551234")")) << u.body;
  EXPECT_TRUE(Has(u, R"("channel":"echo","direction":"out")")) << u.body;

  const Update bsuid = OnlyUpdate(SplitWebhook(Threads("smb_echo_text_bsuid.json"), "c", "t"));
  EXPECT_EQ(bsuid.conversation_key, "106540352242922:US.13491208655302741918");
  EXPECT_TRUE(
      Has(bsuid,
          R"("user_id":"US.13491208655302741918","parent_user_id":"US.ENT.11815799212886844830")"))
      << bsuid.body;
  EXPECT_FALSE(Has(bsuid, R"("wa_id")"));
  ExpectValid(bsuid);
}

// history: each backfilled message in its customer's conversation (the thread's id or context),
// "out" when the business's number sent it; a declined history is Meta's value-level error.
TEST(Split, HistoryBackfillIsRecordedPerCustomerWithItsDirection) {
  auto split = SplitWebhook(Threads("history_backfill.json"), "c", "t");
  ASSERT_TRUE(split.ok());
  ASSERT_EQ(split->updates.size(), 4u);
  std::vector<std::string> got;
  for (const auto& u : split->updates) {
    EXPECT_EQ(u.kind, Update::Kind::kHistory);
    EXPECT_EQ(u.routing_key, "message");
    EXPECT_EQ(u.dedupe_key.rfind("history:wamid.", 0), 0u) << u.dedupe_key;
    EXPECT_TRUE(Has(u, R"("channel":"history")"));
    ExpectValid(u);
    got.push_back(u.conversation_key + (Has(u, R"("direction":"out")") ? " out" : " in"));
  }
  EXPECT_EQ(got,
            (std::vector<std::string>{
                "106540352242922:16505551234 in", "106540352242922:16505551234 out",
                "106540352242922:16505551234 out", "106540352242922:US.13491208655302741918 in"}));
  EXPECT_TRUE(
      Has(split->updates[0], R"("wa_id":"16505551234","user_id":"US.20771945533210987654")"))
      << "the thread's context names both";
  EXPECT_EQ(split->unknown_shapes, 0);
  EXPECT_EQ(split->history_dropped, 0);

  const Update declined = OnlyUpdate(SplitWebhook(Threads("history_declined.json"), "c", "t"));
  EXPECT_EQ(declined.kind, Update::Kind::kError);
  EXPECT_EQ(declined.dedupe_key.rfind("error:106540352242922:2593109:", 0), 0u)
      << declined.dedupe_key;
}

// A huge backfill publishes at most the limit a change (every message past it counted, none
// published); under the default, 1,000 of 1,005 go and 5 are counted.
TEST(Split, AHistoryPastItsLimitIsCutAndTheRestCounted) {
  auto three = SplitWebhook(Threads("history_backfill.json"), "c", "t", SplitLimits{3});
  ASSERT_TRUE(three.ok());
  EXPECT_EQ(three->updates.size(), 3u);
  EXPECT_EQ(three->history_dropped, 1);

  auto split =
      SplitWebhook(test::HistoryWebhook("16505551234", "bulk", 1005, 1795950000), "c", "t");
  ASSERT_TRUE(split.ok());
  EXPECT_EQ(split->updates.size(), 1000u) << "the default limit";
  EXPECT_EQ(split->history_dropped, 5);
  std::set<std::string> keys;
  for (const auto& u : split->updates) keys.insert(u.dedupe_key);
  EXPECT_EQ(keys.size(), 1000u);
}

// messaging_handovers: one inbound.handover for the customer's conversation (routing key "message",
// keyed like its messages, so ordered with them); the person is a digest in the dedupe key; a
// redelivery keys the same. A type convoy does not know, or one naming no user, is an unknown
// shape.
TEST(Split, HandoversAreUpdatesForTheConversationsPartition) {
  const Update passed = OnlyUpdate(SplitWebhook(Threads("handover_control_passed.json"), "c", "t"));
  ExpectRouted(passed, Update::Kind::kHandover, "message", "106540352242922:16505551234",
               "handover:106540352242922:" + Sha256Hex("16505551234").substr(0, 16) +
                   ":control_passed:1796032900");
  EXPECT_EQ(passed.dedupe_key.find("16505551234"), std::string::npos)
      << "the key is logged: no phone in it";
  for (const char* member :
       {R"("schema":"inbound.handover")", R"("waba_id":"102290129340398")",
        R"("wa_id":"16505551234")", R"("action":"control_passed")", R"("timestamp":"1796032900")",
        R"("previous_owner_app_id":"1066355071287456")", R"("new_owner_role":"escalation")",
        R"("metadata":"WhatsApp user requested human agent")", R"("conversation_context")"}) {
    EXPECT_TRUE(Has(passed, member)) << member << " in " << passed.body;
  }
  EXPECT_EQ(
      OnlyUpdate(SplitWebhook(Threads("handover_control_passed.json"), "c2", "t2")).dedupe_key,
      passed.dedupe_key);

  const Update taken = OnlyUpdate(SplitWebhook(Threads("handover_control_taken.json"), "c", "t"));
  EXPECT_EQ(taken.conversation_key, passed.conversation_key);
  EXPECT_TRUE(Has(taken, R"("action":"control_taken")"));
  EXPECT_NE(taken.dedupe_key, passed.dedupe_key);
  ExpectValid(taken);

  const Update bsuid =
      OnlyUpdate(SplitWebhook(Threads("handover_control_taken_bsuid.json"), "c", "t"));
  EXPECT_EQ(bsuid.conversation_key, "106540352242922:US.13491208655302741918");
  EXPECT_TRUE(Has(bsuid, R"("user_id":"US.13491208655302741918")"));
  EXPECT_EQ(bsuid.dedupe_key.find("US.1349"), std::string::npos);
  ExpectValid(bsuid);

  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {R"("type": "control_taken")", R"("type": "control_shared")"},
           {R"("phone_number": "16505551234")", R"("name": "Kerry")"},
           {R"("timestamp": "1796032960",)", ""}}) {
    std::string body = Threads("handover_control_taken.json");
    body.replace(body.find(from), from.size(), to);
    auto r = SplitWebhook(body, "c", "t");
    ASSERT_TRUE(r.ok()) << to;
    EXPECT_TRUE(r->updates.empty()) << to;
    EXPECT_EQ(r->unknown_shapes, 1) << to;
  }
}

TEST(Split, PywaCorpusMatchesItsIndex) {
  auto rows = test::PywaIndex();
  ASSERT_EQ(rows.size(), 60u);
  for (const auto& row : rows) {
    std::string body = Read(kFixtures + "/webhooks/pywa/" + row.file);
    EXPECT_TRUE(VerifySignature(body, row.signature, "test-app-secret")) << row.file;
    auto split = SplitWebhook(body, "c", "t");
    ASSERT_TRUE(split.ok()) << row.file << ": " << split.status().ToString();
    int m = 0, s = 0, e = 0, a = 0;
    for (const auto& u : split->updates) {
      m += u.kind == Update::Kind::kMessage;
      s += u.kind == Update::Kind::kStatus;
      e += u.kind == Update::Kind::kError;
      a += u.kind == Update::Kind::kAccount;
    }
    EXPECT_EQ(m, row.messages) << row.file;
    EXPECT_EQ(s, row.statuses) << row.file;
    EXPECT_EQ(e, row.errors) << row.file;
    EXPECT_EQ(a, row.field == "account_update" ? 1 : 0) << row.file;
    if (row.field == "message_template_status_update") {
      ASSERT_EQ(split->updates.size(), 1u) << row.file;
      EXPECT_EQ(split->updates[0].kind, Update::Kind::kTemplate) << row.file;
      EXPECT_EQ(split->ignored_changes, 0) << row.file;
    } else if (row.field != "messages" && row.field != "account_update") {
      EXPECT_GE(split->ignored_changes, 1) << row.file;
    }
  }
}

TEST(Split, MalformedJsonHasAOneLineReason) {
  auto r = SplitWebhook("{\"object\":", "c", "t");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
  EXPECT_FALSE(SplitWebhook("[1,2]", "c", "t").ok());
  auto other = SplitWebhook(R"({"object":"page","entry":[]})", "c", "t");
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->ignored_object);
  EXPECT_TRUE(other->updates.empty());
}

// A number out of a double's range parses to infinity, which no envelope can carry as JSON (the
// fuzzer found it in a value-level error's fields): the body is refused as malformed, whole.
TEST(Split, ANumberOutOfRangeIsRefusedNotPublishedAsBrokenJson) {
  const std::string huge =
      "13" + std::string(120, '0') + "1E300";  // the fuzzer's shape: digits, then an exponent
  auto r = SplitWebhook(
      R"({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages",)"
      R"("value":{"metadata":{"phone_number_id":"106540352242922"},"errors":[{"code":130429,"x":)" +
          huge + "}]}}]}]}",
      "c", "t");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "a number is out of range (not a finite double)");
}

}  // namespace
}  // namespace convoy::ingress
