// The Chatwoot sink's pure parts: its configuration, what a delivery becomes in the inbox, the
// webhook signature, and every refusal of the reply webhook that happens before anything is read
// or changed (no database, no network).
#include "chatwoot.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>

#include "chatwoot_hook.h"
#include "convoy/json.h"
#include "convoy/metrics.h"
#include "fake_chatwoot.h"
#include "sinks.h"
#include "testsupport.h"

namespace convoy::outbound::chatwoot {
namespace {

constexpr const char* kConversation = "3f1c2a9e-0b7d-4c55-9e21-5a8f6d4e7b10";

Result<SinkSet> Parse(const std::string& sink_json) {
  return ParseSinks(R"({"sinks": [)" + sink_json + "]}", test::ShippedSchemas(),
                    std::chrono::seconds(15));
}

std::string ChatwootSink(const std::string& extra = "") {
  return R"({"name": "inbox", "kind": "chatwoot", "url": "https://8.8.8.8", "account_id": 3, "inbox_id": 9,
             "token": "env:CONVOY_TEST_CW_TOKEN", "agent_token": "env:CONVOY_TEST_CW_AGENT",
             "webhook_secrets": ["env:CONVOY_TEST_CW_SECRET"])" +
         extra + "}";
}

class ChatwootSinks : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("CONVOY_TEST_CW_TOKEN", "cw-api-token", 1);
    ::setenv("CONVOY_TEST_CW_AGENT", "convoy-agent-token", 1);
    ::setenv("CONVOY_TEST_CW_SECRET", "cw-secret-1", 1);
  }
};

TEST_F(ChatwootSinks, ASinkTakesItsCredentialsOnlyByReferenceAndNamesWhatIsMissing) {
  auto set = Parse(ChatwootSink());
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  const Sink& s = set->sinks.at("inbox");
  EXPECT_EQ(s.kind, Sink::Kind::kChatwoot);
  EXPECT_EQ(s.token, "cw-api-token");
  EXPECT_EQ(s.agent_token, "convoy-agent-token");
  EXPECT_EQ(s.keys, std::vector<std::string>{"cw-secret-1"});
  EXPECT_EQ(s.account_id, 3);
  EXPECT_EQ(s.inbox_id, 9);
  EXPECT_FALSE(s.share_phone);
  EXPECT_STREQ(KindName(s.kind), "chatwoot");

  auto fails = [](const std::string& json, const std::string& says) {
    auto r = Parse(json);
    ASSERT_FALSE(r.ok()) << json;
    EXPECT_NE(r.status().message().find(says), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("sink 'inbox'"), std::string::npos) << r.status().message();
    EXPECT_EQ(r.status().message().find("cw-api-token"), std::string::npos)
        << "never echoes a secret";
  };
  // The sink with one piece of it changed.
  auto with = [](const std::string& from, const std::string& to) {
    std::string json = ChatwootSink();
    json.replace(json.find(from), from.size(), to);
    return json;
  };
  fails(with("env:CONVOY_TEST_CW_TOKEN", "cw-api-token"), "\"token\" must be a reference");
  fails(with("env:CONVOY_TEST_CW_SECRET", "cw-secret-1"),
        "\"webhook_secrets\" must be a reference");
  fails(with("\"inbox_id\": 9,", ""), "\"account_id\" and \"inbox_id\"");
  fails(with("https://8.8.8.8", "https://8.8.8.8/api/v1"), "without a path");
  fails(with("CONVOY_TEST_CW_AGENT", "CONVOY_TEST_CW_NOT_SET"),
        "CONVOY_TEST_CW_NOT_SET is not set");
  fails(
      R"({"name": "inbox", "kind": "chatwoot", "url": "https://8.8.8.8", "account_id": 3, "inbox_id": 9,
             "token": "env:CONVOY_TEST_CW_TOKEN", "agent_token": "env:CONVOY_TEST_CW_AGENT"})",
      "\"webhook_secrets\"");
  EXPECT_TRUE(Parse(ChatwootSink(R"(, "share_phone": true)"))->sinks.at("inbox").share_phone);
}

// The example a deployment starts from is a valid sinks file, and holds no credential in clear.
TEST(ChatwootSinksExample, TheShippedExampleIsValidAndNamesItsCredentialsByReference) {
  const std::string text = test::ReadFile(test::SourcePath("deploy/sinks/chatwoot.example.json"));
  ASSERT_FALSE(text.empty());
  Status valid = test::ShippedSchemas().ValidateAs("sinks", 1, text);
  EXPECT_TRUE(valid.ok()) << valid.ToString();
  for (const char* ref :
       {R"("token": "file:)", R"("webhook_secrets": ["file:)", R"("agent_token": "env:)"}) {
    EXPECT_NE(text.find(ref), std::string::npos) << ref;
  }
}

std::string Handoff(
    const std::string& fields = R"({"name": "Ana Lima", "service": "golden visa"})") {
  return R"({"schema":"outbound.deliver","version":1,"correlation_id":"c1","dedupe_key":"r1:deliver",)"
         R"("conversation_key":"106540352242922:971500000111","phone_number_id":"106540352242922","result_id":"r1",)"
         R"("sink":"inbox","type":"lead.handoff","flow":"lead","outcome":"not_understood","completed_at":1765094400,)"
         R"("wa_id":"971500000111","fields":)" +
         fields + R"(,"photos":[],"conversation":{"id":")" + kConversation +
         R"(","owner":"human","reason":"not_understood","messages":[)"
         R"({"seq":1,"direction":"in","author":"customer","kind":"text","body":"Hello","at":"2026-12-07T08:00:00Z"},)"
         R"({"seq":2,"direction":"out","author":"bot","kind":"text","body":"How can I help you today?","at":"2026-12-07T08:00:01Z"},)"
         R"({"seq":3,"direction":"in","author":"customer","kind":"image","media_id":"m-1","body":"my passport","at":"2026-12-07T08:00:05Z"}]}})";
}

std::string CustomerMessage(const std::string& message) {
  return R"({"schema":"outbound.deliver","version":1,"correlation_id":"c2","dedupe_key":"r2:deliver",)"
         R"("conversation_key":"106540352242922:971500000111","phone_number_id":"106540352242922","result_id":"r2",)"
         R"("sink":"inbox","type":"conversation.message","flow":"conversation","outcome":"message","completed_at":1765094400,)"
         R"("wa_id":"971500000111","fields":{},"photos":[],"conversation":{"id":")" +
         std::string(kConversation) + R"(","owner":"human","message":)" + message + "}}";
}

TEST(ChatwootPlan,
     AHandoffIsOneNoteWithTheTranscriptAndTheContactNeverCarriesThePhoneUnlessShared) {
  Plan p = PlanFor(Handoff(), false);
  ASSERT_EQ(p.what, Mirror::kHandoff) << p.why_nothing;
  EXPECT_EQ(p.conversation_id, kConversation);
  EXPECT_EQ(ContactIdentifier(p.conversation_id), std::string("convoy:") + kConversation);
  EXPECT_EQ(p.contact_name, "Ana Lima");
  EXPECT_EQ(p.phone_number, "");
  EXPECT_EQ(p.source_id, SourceId("r1"));
  EXPECT_EQ(p.source_id.size(), 7u + 32u);
  EXPECT_EQ(p.content,
            "Handed over by convoy (lead.handoff), reason: not_understood.\n"
            "Collected:\n- name: Ana Lima\n- service: golden visa\n"
            "Transcript (3 messages, oldest first):\n"
            "[2026-12-07T08:00:00Z] customer: Hello\n"
            "[2026-12-07T08:00:01Z] bot: How can I help you today?\n"
            "[2026-12-07T08:00:05Z] customer: [image] my passport");
  for (const std::string& s : {p.content, p.contact_name, ContactIdentifier(p.conversation_id)}) {
    EXPECT_EQ(s.find("971500000111"), std::string::npos) << s;
  }
  // No name collected: the number's last 4 digits, as logs show it; shared: the phone in E.164.
  EXPECT_EQ(PlanFor(Handoff("{}"), false).contact_name, "WhatsApp ···0111");
  EXPECT_EQ(PlanFor(Handoff("{}"), true).phone_number, "+971500000111");
}

TEST(ChatwootPlan, ACustomerMessageIsAnIncomingMessageAndWhatIsNotAConversationIsRefused) {
  Plan text =
      PlanFor(CustomerMessage(
                  R"({"kind":"text","at":1765094400,"body":"Are you there?","author":"customer"})"),
              false);
  ASSERT_EQ(text.what, Mirror::kMessage);
  EXPECT_EQ(text.content, "Are you there?");
  EXPECT_NE(text.source_id, PlanFor(Handoff(), false).source_id);
  EXPECT_EQ(
      PlanFor(CustomerMessage(R"({"kind":"image","at":1,"media_id":"m-2","author":"customer"})"),
              false)
          .content,
      "[image]");
  EXPECT_EQ(
      PlanFor(CustomerMessage(R"({"kind":"location","at":1,"author":"customer"})"), false).content,
      "[location]");
  // A listing has no conversation: parked, with the reason.
  Plan listing = PlanFor(R"({"type":"listing.submitted","result_id":"r3","fields":{}})", false);
  EXPECT_EQ(listing.what, Mirror::kInvalid);
  EXPECT_NE(listing.why_nothing.find("listing.submitted carries none"), std::string::npos)
      << listing.why_nothing;
  std::string key_as_id = Handoff();
  key_as_id.replace(key_as_id.find(kConversation), 36, "106540352242922:971500000111");
  EXPECT_EQ(PlanFor(key_as_id, false).what, Mirror::kInvalid)
      << "only convoy's uuid goes into Chatwoot";
  // A conversation delivery with nothing to show (a status) is delivered without a call.
  std::string status = CustomerMessage(R"({"kind":"text","at":1,"author":"customer"})");
  status.replace(status.find("\"conversation.message\""), 22, "\"conversation.message_status\"");
  status.replace(status.find(",\"message\":"), 11, ",\"status\":");
  EXPECT_EQ(PlanFor(status, false).what, Mirror::kNothing);
}

// Chatwoot's signature as its own code makes it (docs/chatwoot.md), reproduced from a vector
// computed apart: printf '%s' '1765094400.{...}' | openssl dgst -sha256 -hmac cw-secret-1.
TEST(ChatwootSignature, ReproducesChatwootsAndRefusesAnotherSecretBodyOrTime) {
  const std::string body = R"({"event":"message_created","id":42})";
  const std::string sig = "sha256=904dd40a9994ca1aac77bbd5b13f7a4965138230f36c84628694549ed17905e0";
  EXPECT_EQ(Signature("cw-secret-1", "1765094400", body), sig);
  EXPECT_TRUE(VerifySignature({"cw-secret-1"}, "1765094400", body, sig, 1765094400));
  EXPECT_TRUE(VerifySignature({"old", "cw-secret-1"}, "1765094400", body, sig, 1765094400 + 300))
      << "rotation";
  EXPECT_FALSE(VerifySignature({"cw-secret-2"}, "1765094400", body, sig, 1765094400));
  EXPECT_FALSE(VerifySignature({"cw-secret-1"}, "1765094400", body + " ", sig, 1765094400));
  EXPECT_FALSE(VerifySignature({"cw-secret-1"}, "1765094400", body, sig, 1765094400 + 301))
      << "replayed late";
  EXPECT_FALSE(VerifySignature({"cw-secret-1"}, "1765094401", body, sig, 1765094400));
  EXPECT_FALSE(VerifySignature({"cw-secret-1"}, "", body, sig, 1765094400));
  EXPECT_FALSE(VerifySignature({"cw-secret-1"}, "1765094400", body, "", 1765094400));
  EXPECT_FALSE(VerifySignature({"cw-secret-1"}, "1765094400", body, sig.substr(7), 1765094400))
      << "no sha256=";
}

class ChatwootHook : public ChatwootSinks {
 protected:
  void SetUp() override {
    ChatwootSinks::SetUp();
    auto set = Parse(ChatwootSink());
    ASSERT_TRUE(set.ok()) << set.status().ToString();
    sinks_ = *set;
    // An unreachable database: a request that got as far as reading it would answer 503.
    settings_.pg_dsn = "host=127.0.0.1 port=1 dbname=none connect_timeout=1";
    settings_.conversation_api_url = "http://127.0.0.1:1";
    settings_.now = [] { return int64_t{1765094400}; };
  }
  // What the fake Chatwoot would send for a message, signed with `secret` at `ts`.
  HttpRequest Signed(const fake::FakeChatwoot::Message& m,
                     const std::string& secret = "cw-secret-1", int64_t account = 3,
                     const std::string& ts = "1765094400") {
    fake::FakeChatwoot cw("t", account, 9, secret);
    HttpRequest r;
    r.method = "POST";
    r.path = "/hooks/chatwoot/inbox";
    r.body = cw.WebhookBody(m);
    r.headers["x-chatwoot-timestamp"] = ts;
    r.headers["x-chatwoot-signature"] = Signature(secret, ts, r.body);
    return r;
  }
  SinkSet sinks_;
  HookSettings settings_;
};

TEST_F(ChatwootHook, UnknownUnsignedOrStaleRequestsAreRefusedAndWhatIsNotAnAgentsReplyIsIgnored) {
  fake::FakeChatwoot::Message reply{77, 12, 1765094400, "Hi, Sam here", "outgoing", "", false};
  // Unknown sink, another kind of sink: 404.
  HttpRequest r = Signed(reply);
  r.path = "/hooks/chatwoot/nope";
  EXPECT_EQ(HandleHook(r, sinks_, settings_).status, 404);
  // Unsigned, another secret, a changed body, an old timestamp: 401.
  r = Signed(reply);
  r.headers.erase("x-chatwoot-signature");
  EXPECT_EQ(HandleHook(r, sinks_, settings_).status, 401);
  EXPECT_EQ(HandleHook(Signed(reply, "cw-secret-2"), sinks_, settings_).status, 401);
  r = Signed(reply);
  r.body.replace(r.body.find("Hi, Sam here"), 12, "Hi, Eve here");
  EXPECT_EQ(HandleHook(r, sinks_, settings_).status, 401);
  EXPECT_EQ(HandleHook(Signed(reply, "cw-secret-1", 3, "1765093000"), sinks_, settings_).status,
            401);
  // Signed, but for another account: 404. A customer's message and a private note: 200, ignored.
  EXPECT_EQ(HandleHook(Signed(reply, "cw-secret-1", 4), sinks_, settings_).status, 404);
  fake::FakeChatwoot::Message incoming = reply, note = reply;
  incoming.message_type = "incoming";
  note.is_private = true;
  for (const auto& m : {incoming, note}) {
    HttpResponse ignored = HandleHook(Signed(m), sinks_, settings_);
    EXPECT_EQ(ignored.status, 200);
    EXPECT_NE(ignored.body.find("ignored"), std::string::npos) << ignored.body;
  }
  // An agent's reply with no text (an attachment alone): 422, so Chatwoot shows it failed.
  fake::FakeChatwoot::Message empty = reply;
  empty.content = "";
  EXPECT_EQ(HandleHook(Signed(empty), sinks_, settings_).status, 422);
  // A signed agent's reply gets as far as the database (unreachable here): 503, Chatwoot retries.
  EXPECT_EQ(HandleHook(Signed(reply), sinks_, settings_).status, 503);
  auto counted = [](const char* outcome) {
    return DefaultRegistry()
        .GetCounter("convoy_chatwoot_webhooks_total", "",
                    std::string("sink=\"inbox\",outcome=\"") + outcome + "\"")
        .Value();
  };
  EXPECT_EQ(counted("refused"), 4u);
  EXPECT_EQ(counted("ignored"), 2u);
}

}  // namespace
}  // namespace convoy::outbound::chatwoot
