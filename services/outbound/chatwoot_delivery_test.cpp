// Integration: deliveries to a Chatwoot sink against a real PostgreSQL (the deliverer's claim,
// attempts and chatwoot_conversations), Chatwoot played by the fake built from its documentation.
#include <gtest/gtest.h>

#include "chatwoot.h"
#include "convoy/pg.h"
#include "convoy/startup.h"
#include "convoy/topology.h"
#include "deliverer.h"
#include "fake_chatwoot.h"
#include "testsupport.h"

namespace convoy::outbound {
namespace {

using namespace std::chrono_literals;

constexpr int64_t kAccount = 3, kInbox = 9;
constexpr const char* kAna = "3f1c2a9e-0b7d-4c55-9e21-5a8f6d4e7b10";
constexpr const char* kOmar = "8d0e4b1f-6a2c-4f7e-b3d9-1c5a7e9f2b40";

std::string Command(const std::string& result_id, const std::string& type,
                    const std::string& conversation) {
  return R"({"schema":"outbound.deliver","version":1,"correlation_id":"corr-)" + result_id +
         R"(","dedupe_key":")" + result_id +
         R"(:deliver","conversation_key":"106540352242922:971500000111","phone_number_id":"106540352242922",)"
         R"("result_id":")" +
         result_id + R"(","sink":"inbox","type":")" + type +
         R"(","flow":"lead","outcome":"handoff","completed_at":1765094400,"wa_id":"971500000111",)"
         R"("fields":{"name":"Ana Lima"},"photos":[],"conversation":)" +
         conversation + "}";
}

std::string Handoff(const std::string& result_id, const std::string& conversation_id) {
  return Command(
      result_id, "lead.handoff",
      R"({"id":")" + conversation_id +
          R"(","owner":"human","reason":"qualified","messages":[)"
          R"({"seq":1,"direction":"in","author":"customer","kind":"text","body":"Hello","at":"2026-12-07T08:00:00Z"}]})");
}

std::string Said(const std::string& result_id, const std::string& conversation_id,
                 const std::string& text) {
  return Command(result_id, "conversation.message",
                 R"({"id":")" + conversation_id +
                     R"(","owner":"human","message":{"kind":"text","at":1765094400,"body":")" +
                     text + R"(","author":"customer"}})");
}

class ChatwootDelivery : public ::testing::Test {
 protected:
  ChatwootDelivery() : db_("chatwoot"), chatwoot_("cw-api-token", kAccount, kInbox, "cw-secret") {}

  void SetUp() override {
    ASSERT_TRUE(chatwoot_.Start().ok());
    Status s = PrepareDatabaseService(test::SourcePath("proto-schemas"), db_.dsn(),
                                      test::SourcePath("deploy/postgres"),
                                      /*migrate=*/true, &base_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    // As outbound runs: its own role.
    auto conn = PgConnection::Connect(db_.RoleDsn("convoy_outbound"));
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    conn_ = std::move(*conn);
    Sink sink;
    sink.name = "inbox";
    sink.kind = Sink::Kind::kChatwoot;
    sink.url = chatwoot_.url();
    sink.account_id = kAccount;
    sink.inbox_id = kInbox;
    sink.token = "cw-api-token";
    sink.allow_private = true;
    sink.timeout = 1s;
    sinks_.sinks.emplace(sink.name, sink);
    DeliverySettings settings;
    settings.schedule = {0ms, 0ms, 0ms, 0ms, 0ms};
    deliverer_ = std::make_unique<Deliverer>(*conn_, base_.schemas, sinks_, settings, throttle_);
  }

  Disposition Deliver(const std::string& body) {
    Delivery d;
    d.queue = queues::kOutboundDeliver;
    d.body = body;
    return deliverer_->Handle(d);
  }
  // Delivers until acked (an attempt in flight, or uncertain, is given time): the dispositions.
  std::vector<Disposition::Kind> DeliverUntilAcked(const std::string& body) {
    std::vector<Disposition::Kind> kinds;
    test::WaitUntil(
        [&] {
          kinds.push_back(Deliver(body).kind);
          return kinds.back() == Disposition::Kind::kAck;
        },
        30s);
    return kinds;
  }
  std::string Row(const std::string& sql) {
    auto r = conn_->Exec(sql, {});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && !r->empty() ? r->get(0, 0) : "";
  }

  test::TestDatabase db_;
  fake::FakeChatwoot chatwoot_;
  DatabaseService base_;
  std::unique_ptr<PgConnection> conn_;
  SinkSet sinks_;
  shopify::Throttle throttle_;
  std::unique_ptr<Deliverer> deliverer_;
};

TEST_F(ChatwootDelivery,
       AHandoffOpensOneConversationAndEachMessageGoesInOnceEvenWhenItsAnswerIsLost) {
  // The handoff, its command delivered twice: one contact, one conversation, one private note.
  EXPECT_EQ(Deliver(Handoff("h1", kAna)).kind, Disposition::Kind::kAck);
  EXPECT_EQ(Deliver(Handoff("h1", kAna)).kind, Disposition::Kind::kAck);
  ASSERT_EQ(chatwoot_.Contacts().size(), 1u);
  EXPECT_EQ(chatwoot_.Contacts()[0].identifier, std::string("convoy:") + kAna);
  EXPECT_EQ(chatwoot_.Contacts()[0].name, "Ana Lima");
  EXPECT_EQ(chatwoot_.Contacts()[0].phone_number, "") << "the phone number stays with convoy";
  ASSERT_EQ(chatwoot_.Conversations().size(), 1u);
  const int64_t conversation = chatwoot_.Conversations()[0].id;
  EXPECT_EQ(chatwoot_.Conversations()[0].convoy_conversation_id, kAna);
  ASSERT_EQ(chatwoot_.Messages().size(), 1u);
  EXPECT_TRUE(chatwoot_.Messages()[0].is_private);
  EXPECT_EQ(chatwoot_.Messages()[0].message_type, "outgoing");
  EXPECT_NE(chatwoot_.Messages()[0].content.find("[2026-12-07T08:00:00Z] customer: Hello"),
            std::string::npos);
  auto mapped = chatwoot::ChatwootConversation(*conn_, "inbox", kAna);
  ASSERT_TRUE(mapped.ok());
  EXPECT_EQ(*mapped, conversation);
  EXPECT_EQ(*chatwoot::ConvoyConversation(*conn_, "inbox", conversation), kAna);

  // The first customer message is made in Chatwoot but its answer never comes back (1 s timeout):
  // the next attempt finds it by its source_id instead of posting it again.
  chatwoot_.DelayNextMessage(3000);
  auto kinds = DeliverUntilAcked(Said("m1", kAna, "Are you there?"));
  ASSERT_EQ(kinds.back(), Disposition::Kind::kAck);
  EXPECT_GE(kinds.size(), 2u) << "the first attempt was uncertain";
  chatwoot_.ReleaseDelayed();
  EXPECT_EQ(Row("SELECT string_agg(outcome, ',' ORDER BY attempt) FROM delivery_attempts a JOIN "
                "deliveries d ON "
                "d.id = a.delivery_id WHERE d.result_id = 'm1'"),
            "uncertain,delivered");
  EXPECT_EQ(Deliver(Said("m2", kAna, "I need a golden visa")).kind, Disposition::Kind::kAck);
  auto messages = chatwoot_.Messages();
  ASSERT_EQ(messages.size(), 3u) << "the note and two messages, each once";
  EXPECT_EQ(messages[1].content, "Are you there?");
  EXPECT_EQ(messages[2].content, "I need a golden visa");
  for (size_t i : {1, 2}) {
    EXPECT_EQ(messages[i].message_type, "incoming");
    EXPECT_FALSE(messages[i].is_private);
    EXPECT_EQ(messages[i].conversation_id, conversation);
  }
  EXPECT_EQ(Row("SELECT external_id FROM deliveries WHERE result_id = 'm1'"),
            std::to_string(messages[1].id));
  EXPECT_EQ(chatwoot_.Calls("POST /contacts"), 1u);
  EXPECT_EQ(chatwoot_.Calls("POST /conversations"), 1u);

  // convoy forgot the pair (pruned by retention): the next message finds the contact and its
  // conversation instead of making new ones.
  ASSERT_EQ(
      Row("WITH d AS (DELETE FROM chatwoot_conversations RETURNING 1) SELECT count(*) FROM d"),
      "1");
  EXPECT_EQ(Deliver(Said("m3", kAna, "thanks")).kind, Disposition::Kind::kAck);
  EXPECT_EQ(chatwoot_.Contacts().size(), 1u);
  EXPECT_EQ(chatwoot_.Conversations().size(), 1u);
  EXPECT_EQ(chatwoot_.Messages().back().conversation_id, conversation);
  EXPECT_EQ(*chatwoot::ChatwootConversation(*conn_, "inbox", kAna), conversation);

  // Another person's handoff is a conversation of its own.
  EXPECT_EQ(Deliver(Handoff("h2", kOmar)).kind, Disposition::Kind::kAck);
  EXPECT_EQ(chatwoot_.Contacts().size(), 2u);
  EXPECT_EQ(chatwoot_.Conversations().size(), 2u);
}

TEST_F(ChatwootDelivery,
       WhatChatwootRefusesIsParkedWithTheReasonAndAResultWithNoConversationTooWithoutACall) {
  sinks_.sinks.at("inbox").token = "a-wrong-token";
  EXPECT_EQ(Deliver(Handoff("h1", kAna)).kind, Disposition::Kind::kAck);
  EXPECT_EQ(Row("SELECT status || ': ' || last_error FROM deliveries WHERE result_id = 'h1'"),
            "parked: contact search: HTTP 401 (Chatwoot refused the sink's token)");
  EXPECT_TRUE(chatwoot_.Contacts().empty());
  const size_t calls = chatwoot_.Calls();
  std::string listing = Handoff("l1", kAna);
  listing.replace(listing.find(",\"conversation\":"),
                  listing.size() - listing.find(",\"conversation\":") - 1, "");
  EXPECT_EQ(Deliver(listing).kind, Disposition::Kind::kAck);
  EXPECT_NE(Row("SELECT last_error FROM deliveries WHERE result_id = 'l1'").find("carries none"),
            std::string::npos);
  EXPECT_EQ(chatwoot_.Calls(), calls);
}

}  // namespace
}  // namespace convoy::outbound
