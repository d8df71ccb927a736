// End to end: WhatsApp identities as they are since 2026. A user may arrive with a phone number,
// a business-scoped user ID (BSUID), or both; one person keeps one conversation whichever comes,
// two people never share one, replies reach a user who shares no number, and WhatsApp's number
// and ID changes move the identity, not the conversation. Fixtures: webhooks/bsuid/.
#include <gtest/gtest.h>

#include <regex>

#include "convoy/amqp.h"
#include "convoy/pg.h"
#include "convoy/topology.h"
#include "stack.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

constexpr const char* kAlice = "US.13491208655302741918";  // username_only_a, with_phone_a
constexpr const char* kBob = "GB.20771945533210987654";    // username_only_b
constexpr const char* kAlicePhone = "16505550111";
constexpr const char* kAliceNewPhone = "16505550222";
constexpr const char* kAliceNewId = "US.55501234567890123456";

class Identity : public ::testing::Test {
 protected:
  // A bsuid/ fixture as a new update of this test: its ids made unique, sent `offset` s from now
  // (inside the 24-hour window; tests send them in the past and plain messages at "now", so the
  // order sent is the order posted), its text replaced when given.
  std::string Fixture(const std::string& name, int offset, const std::string& text = "") {
    std::string body = test::ReadFile(test::FixturePath("webhooks/bsuid/" + name));
    body =
        std::regex_replace(body, std::regex("\"wamid\\.BSUID\\."), "\"wamid." + tag_ + ".BSUID.");
    body = std::regex_replace(
        body, std::regex("\"timestamp\": \"[0-9]+\""),
        "\"timestamp\": \"" + std::to_string(test::NowSeconds() + offset) + "\"");
    if (!text.empty()) {
      auto at = body.find("\"body\": \"");
      auto end = body.find('"', at + 9);
      body.replace(at, end + 1 - at, "\"body\": \"" + text + "\"");
    }
    return body;
  }
  int64_t Count(const std::string& sql) {
    auto r = db_->Exec(sql);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    return r.ok() ? r->get_int(0, 0) : -1;
  }
  uint32_t Parked(const char* queue) {
    auto n = QueueMessageCount(AmqpOptions{stack_.vhost.url(), "identity-test"},
                               std::string(queue) + ".dlq");
    EXPECT_TRUE(n.ok());
    return n.ok() ? *n : 0;
  }
  void SetUp() override {
    auto c = PgConnection::Connect(stack_.db.dsn());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    db_ = std::move(*c);
  }

  std::string tag_ = test::UniqueName("id");
  test::Stack stack_{"identity"};
  std::unique_ptr<PgConnection> db_;
};

// The measured failure: two username-only users each text SELL. Each has a conversation of their
// own and is asked for their email at their BSUID; nothing is parked.
TEST_F(Identity, TwoUsernameOnlyUsersNeverShareAConversation) {
  ASSERT_EQ(stack_.PostUpdate(Fixture("username_only_a.json", -100)), 200);
  ASSERT_EQ(stack_.PostUpdate(Fixture("username_only_b.json", -90)), 200);
  const std::string ask_email = test::Stack::ListingOpening()[0];
  ASSERT_TRUE(stack_.WaitSends(kAlice, 1)) << stack_.graph.RequestsJson();
  ASSERT_TRUE(stack_.WaitSends(kBob, 1)) << stack_.graph.RequestsJson();
  ASSERT_TRUE(stack_.Drained(30s));
  EXPECT_EQ(stack_.graph.SentTexts(kAlice), std::vector<std::string>{ask_email});
  EXPECT_EQ(stack_.graph.SentTexts(kBob), std::vector<std::string>{ask_email});
  std::string sends = stack_.graph.RequestsJson();
  EXPECT_NE(sends.find(std::string("\"recipient\":\"") + kAlice + "\""), std::string::npos)
      << sends;
  EXPECT_EQ(sends.find("\"individual\",\"to\":\"US."), std::string::npos)
      << "a BSUID goes as recipient, never as to";
  EXPECT_EQ(Count("SELECT count(*) FROM conversations"), 2);
  EXPECT_EQ(Count("SELECT count(DISTINCT conversation_key) FROM identities"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM conversations WHERE conversation_key LIKE '%unknown%'"), 0);
  EXPECT_EQ(Parked(queues::kConversationInbound), 0u);
  EXPECT_EQ(Parked(queues::kOutboundSend), 0u);
  // Statuses of sends to a BSUID settle them (recipient_user_id, no recipient_id).
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        return Count(
                   "SELECT count(*) FROM outbound_messages WHERE status = 'sent' AND wamid IS NOT "
                   "NULL") == 2;
      },
      30s));
}

// Alice writes by BSUID only, then with her phone and BSUID, then by phone only: one flow, in
// one conversation; replies go to her BSUID until her phone is known, then to her phone.
TEST_F(Identity, APersonSwitchingBetweenBsuidAndPhoneKeepsOneFlow) {
  ASSERT_EQ(stack_.PostUpdate(Fixture("username_only_a.json", -100, "SELL")), 200);
  ASSERT_TRUE(stack_.WaitSends(kAlice, 1));
  ASSERT_EQ(stack_.PostUpdate(Fixture("with_phone_a.json", -90, "alice@example.com")), 200);
  ASSERT_TRUE(stack_.WaitSends(kAlicePhone, 1)) << stack_.graph.RequestsJson();
  ASSERT_EQ(
      stack_.PostMessage(kAlicePhone, test::TextMessage("Nike running shoes, size 42, used, $35")),
      200);
  ASSERT_TRUE(stack_.WaitSends(kAlicePhone, 2)) << stack_.graph.RequestsJson();
  ASSERT_TRUE(stack_.Drained(30s));
  const auto& opening = test::Stack::ListingOpening();
  EXPECT_EQ(stack_.graph.SentTexts(kAlice), std::vector<std::string>{opening[0]});
  EXPECT_EQ(stack_.graph.SentTexts(kAlicePhone),
            (std::vector<std::string>{opening[1], opening[2]}));
  EXPECT_EQ(Count("SELECT count(*) FROM conversations"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM identities"), 2)
      << "her BSUID and her phone, one conversation";
  EXPECT_EQ(Count("SELECT count(*) FROM identity_changes WHERE change = 'linked'"), 2);
}

// The reverse order: phone first, then BSUID only (after a message that carried both).
TEST_F(Identity, PhoneFirstThenBsuidOnlyStaysInTheSameConversation) {
  ASSERT_EQ(stack_.PostMessage(kAlicePhone, test::TextMessage("SELL"), test::NowSeconds() - 110),
            200);
  ASSERT_TRUE(stack_.WaitSends(kAlicePhone, 1));
  ASSERT_EQ(stack_.PostUpdate(Fixture("with_phone_a.json", -90, "alice@example.com")), 200);
  ASSERT_TRUE(stack_.WaitSends(kAlicePhone, 2));
  ASSERT_EQ(stack_.PostUpdate(
                Fixture("username_only_a.json", -80, "Nike running shoes, size 42, used, $35")),
            200);
  ASSERT_TRUE(stack_.WaitSends(kAlicePhone, 3))
      << "replies go to her phone, which is known" << stack_.graph.RequestsJson();
  EXPECT_EQ(stack_.graph.SentTexts(kAlicePhone), test::Stack::ListingOpening());
  EXPECT_TRUE(stack_.graph.SentTexts(kAlice).empty());
  EXPECT_EQ(Count("SELECT count(*) FROM conversations"), 1);
}

// WhatsApp's system messages move an identity, never the conversation: after a number change the
// new number reaches Alice's flow and the old one (someone else's now) starts a conversation of
// its own; after an ID change the new BSUID reaches her flow. Neither notice is answered.
TEST_F(Identity, NumberAndIdChangesMoveTheIdentityNotTheConversation) {
  ASSERT_EQ(stack_.PostUpdate(Fixture("with_phone_a.json", -100, "SELL")), 200);
  ASSERT_TRUE(stack_.WaitSends(kAlicePhone, 1));
  ASSERT_EQ(stack_.PostUpdate(Fixture("system_user_changed_number.json", -90)), 200);
  // (Deliveries of different keys may be applied in any order: the next messages are posted once
  // the notice was applied, as they would come after it.)
  auto applied = [&](const char* change) {
    return test::WaitUntil(
        [&] {
          return Count(std::string("SELECT count(*) FROM identity_changes WHERE change = '") +
                       change + "'") == 1;
        },
        30s);
  };
  ASSERT_TRUE(applied("number_changed"));
  ASSERT_EQ(stack_.PostMessage(kAliceNewPhone, test::TextMessage("alice@example.com"),
                               test::NowSeconds() - 86),
            200);
  ASSERT_TRUE(stack_.WaitSends(kAliceNewPhone, 1)) << stack_.graph.RequestsJson();
  EXPECT_EQ(stack_.graph.SentTexts(kAliceNewPhone),
            std::vector<std::string>{test::Stack::ListingOpening()[1]});
  EXPECT_EQ(stack_.graph.SentTexts(kAlicePhone).size(), 1u) << "the notice itself is not answered";
  // Her old number, now someone else's: a conversation of its own (the menu), not Alice's flow.
  ASSERT_EQ(stack_.PostMessage(kAlicePhone, test::TextMessage("hello"), test::NowSeconds() - 85),
            200);
  ASSERT_TRUE(stack_.WaitSends(kAlicePhone, 2));
  EXPECT_NE(stack_.graph.SentTexts(kAlicePhone)[1], test::Stack::ListingOpening()[2]);
  EXPECT_EQ(Count("SELECT count(*) FROM conversations"), 2);

  ASSERT_EQ(stack_.PostUpdate(Fixture("system_user_changed_user_id.json", -80)), 200);
  ASSERT_TRUE(applied("user_id_changed"));
  std::string by_new_id =
      Fixture("username_only_a.json", -70, "Nike running shoes, size 42, used, $35");
  by_new_id = std::regex_replace(by_new_id, std::regex(kAlice), kAliceNewId);
  by_new_id = std::regex_replace(by_new_id, std::regex("\\.A\\.1\""), ".A.9\"");
  ASSERT_EQ(stack_.PostUpdate(by_new_id), 200);
  ASSERT_TRUE(stack_.WaitSends(kAliceNewPhone, 2)) << stack_.graph.RequestsJson();
  EXPECT_EQ(stack_.graph.SentTexts(kAliceNewPhone)[1], test::Stack::ListingOpening()[2]);
  ASSERT_TRUE(stack_.Drained(30s));
  EXPECT_EQ(Count("SELECT count(*) FROM identities WHERE identity IN ('16505550111', "
                  "'US.13491208655302741918') "
                  "AND conversation_key = (SELECT conversation_key FROM identities WHERE identity "
                  "= '16505550222')"),
            0)
      << "the old number and the old BSUID no longer lead to Alice";
  EXPECT_EQ(Count("SELECT count(*) FROM identity_changes WHERE change IN ('number_changed', "
                  "'user_id_changed')"),
            2);
  EXPECT_EQ(Parked(queues::kConversationInbound), 0u);
}

// A message with no usable identity (no from, no from_user_id) is accepted (Meta got its 200),
// parked with that reason, and never answered or merged into a shared conversation.
TEST_F(Identity, AMessageWithNoIdentityIsParkedWithTheReason) {
  std::string body = Fixture("username_only_a.json", -100);
  body = std::regex_replace(body, std::regex("\"from_user_id\": \"[^\"]*\",?"), "");
  body = std::regex_replace(body, std::regex("\"user_id\": \"[^\"]*\",?"), "");
  ASSERT_EQ(stack_.PostUpdate(body), 200);
  ASSERT_TRUE(test::WaitUntil([&] { return Parked(queues::kConversationInbound) == 1; }, 30s));
  auto parked = TakeMessages(AmqpOptions{stack_.vhost.url(), "identity-test"},
                             std::string(queues::kConversationInbound) + ".dlq", 1);
  ASSERT_TRUE(parked.ok() && parked->size() == 1);
  EXPECT_NE((*parked)[0].Header(headers::kDeathReason).find("no usable identity"),
            std::string::npos)
      << (*parked)[0].Header(headers::kDeathReason);
  EXPECT_EQ(stack_.graph.SendCount(), 0u);
  EXPECT_EQ(Count("SELECT count(*) FROM conversations"), 0);
}

}  // namespace
}  // namespace convoy
