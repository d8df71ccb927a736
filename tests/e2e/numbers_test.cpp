// End to end: the numbers registry (issue 27). A signed update for a phone_number_id the
// deployment does not serve — never registered, or offboarded — is accepted by ingress (200, so
// Meta does not retry for 7 days), recorded and counted by conversation, and starts no flow, no
// send and no media fetch; a registered number is still answered.
#include <gtest/gtest.h>

#include <algorithm>

#include "convoy/http.h"
#include "convoy/pg.h"
#include "stack.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

class Numbers : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { stack_ = new test::Stack("numbers"); }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  int64_t Count(const std::string& sql, const PgParams& params = {}) {
    auto db = PgConnection::Connect(stack_->db.dsn());
    EXPECT_TRUE(db.ok());
    if (!db.ok()) return -1;
    auto r = (*db)->Exec(sql, params);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->get_int(0, 0) : -1;
  }
  double Counted(const std::string& status) {
    return std::max(0.0, stack_->Metric("conversation", "convoy_conversation_unknown_number_updates_total{status=\"" +
                                                             status + "\"}"));
  }
  // Posts a text and a photo from `wa_id` to `number`, signed as Meta signs; both must get 200.
  void PostTextAndPhoto(const std::string& number, const std::string& wa_id) {
    const int64_t now = test::NowSeconds();
    EXPECT_EQ(stack_->PostUpdate(test::MessageWebhook(number, wa_id, "Kerry", test::UniqueName("wamid.n"), now,
                                                      test::TextMessage("SELL"))),
              200);
    EXPECT_EQ(stack_->PostUpdate(test::MessageWebhook(number, wa_id, "Kerry", test::UniqueName("wamid.n"), now,
                                                      test::ImageMessage("1003383421387256"))),
              200);
  }
  // Nothing of the number's reached a conversation, the dedupe table, the audit or the outbox, and
  // the Graph fake never heard of the sender.
  void ExpectUntouched(const std::string& number, const std::string& wa_id) {
    EXPECT_EQ(Count("SELECT count(*) FROM conversations WHERE phone_number_id = $1", {number}), 0);
    EXPECT_EQ(Count("SELECT count(*) FROM inbound_messages WHERE conversation_key LIKE $1", {number + ":%"}), 0);
    EXPECT_EQ(Count("SELECT count(*) FROM outbox WHERE conversation_key LIKE $1", {number + ":%"}), 0);
    EXPECT_TRUE(stack_->graph.SentTexts(wa_id).empty());
  }
  static test::Stack* stack_;
};

test::Stack* Numbers::stack_ = nullptr;

TEST_F(Numbers, UnknownAndOffboardedNumbersAreRecordedNeverAnsweredAndARegisteredOneIs) {
  auto& stack = *stack_;
  const std::string unknown = "106540352240404", offboarded = "106540352240410";
  // A number put and offboarded through the API.
  auto put = stack.Api("PUT", "/v1/numbers/" + offboarded,
                 R"({"phone_number_id": ")" + offboarded + R"(", "tenant": "acme", "waba_id": "102290129340399", )"
                 R"("display_phone_number": "15550783882", "graph_token": "env:ACME_GRAPH_TOKEN"})");
  ASSERT_EQ(put.status, 201) << put.body;
  auto gone = stack.Api("DELETE", "/v1/numbers/" + offboarded);
  ASSERT_EQ(gone.status, 200) << gone.body;
  const size_t downloads = stack.graph.DownloadRequests();

  PostTextAndPhoto(unknown, "16505550404");
  PostTextAndPhoto(offboarded, "16505550410");
  ASSERT_TRUE(test::WaitUntil([&] { return Counted("unknown") >= 2 && Counted("offboarded") >= 2; }, 30s))
      << "unknown " << Counted("unknown") << ", offboarded " << Counted("offboarded");
  // A registered number, posted after: answered as ever.
  ASSERT_EQ(stack.PostMessage("16505550922", test::TextMessage("SELL")), 200);
  ASSERT_TRUE(stack.WaitSends("16505550922", 1)) << stack.graph.RequestsJson();
  ASSERT_TRUE(stack.Drained(30s));

  EXPECT_EQ(Counted("unknown"), 2);
  EXPECT_EQ(Counted("offboarded"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM unknown_number_updates WHERE phone_number_id = $1 AND status = 'unknown' "
                  "AND kind = 'message'",
                  {unknown}),
            2);
  EXPECT_EQ(Count("SELECT count(*) FROM unknown_number_updates WHERE phone_number_id = $1 AND status = 'offboarded'",
                  {offboarded}),
            2);
  ExpectUntouched(unknown, "16505550404");
  ExpectUntouched(offboarded, "16505550410");
  EXPECT_EQ(stack.graph.DownloadRequests(), downloads) << "a photo for an unknown number was fetched";
  for (const auto& r : stack.graph.ReadReceipts()) EXPECT_EQ(r.find("wamid.n"), std::string::npos) << r;
  EXPECT_EQ(Count("SELECT count(*) FROM conversations WHERE phone_number_id = $1", {std::string(test::kDemoNumber)}), 1);
}

}  // namespace
}  // namespace convoy
