// End to end: a lead handed over to a person appears in a Chatwoot API-channel inbox (the fake,
// built from Chatwoot's documentation), the customer's messages follow it there once each, and the
// agent's reply in Chatwoot — its signed webhook, delivered twice — reaches the customer once.
#include <gtest/gtest.h>

#include <fstream>

#include "convoy/http.h"
#include "deliveries.h"
#include "fake_chatwoot.h"
#include "stack.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

constexpr const char* kBusiness = "106540352242922";
constexpr int64_t kAccount = 3, kInbox = 9;

std::string SecretFile(const std::string& value) {
  const std::string path = ::testing::TempDir() + "/" + test::UniqueName("chatwoot-secret");
  std::ofstream(path) << value << "\n";
  return path;
}

class ChatwootE2e : public ::testing::Test {
 protected:
  ChatwootE2e() : chatwoot_("cw-api-token", kAccount, kInbox, "cw-inbox-secret") {}

  void SetUp() override {
    ASSERT_TRUE(chatwoot_.Start().ok());
    // The credentials by reference, as the sinks file demands: the API token and the inbox's
    // secret in files (mounted Secrets), the agent's convoy token in the environment.
    const std::string sinks = test::WriteSinks(
        R"({"schema": "sinks", "version": 1, "sinks": [{"name": "lead", "kind": "chatwoot", "url": ")" +
        chatwoot_.url() + R"(", "account_id": 3, "inbox_id": 9, "token": "file:)" +
        SecretFile("cw-api-token") +
        R"(", "agent_token": "env:CONVOY_ADMIN_TOKEN", "webhook_secrets": ["file:)" +
        SecretFile("cw-inbox-secret") + R"("], "allow_private": true, "timeout_seconds": 5}]})");
    stack_ = std::make_unique<test::Stack>(
        "e2e_chatwoot", std::map<std::string, int>{},
        std::map<std::string, std::vector<std::string>>{
            {"outbound", {"--sinks_file=" + sinks, "--delivery_schedule=0,1s,1s"}},
            {"conversation", {"--default_flow=lead"}}});
    chatwoot_.SetWebhookUrl(stack_->Url("outbound", "/hooks/chatwoot/lead"));
  }
  int Post(const std::string& wa_id, const std::string& wamid, const std::string& text,
           int64_t at) {
    return stack_->PostUpdate(
        test::MessageWebhook(kBusiness, wa_id, "Ana", wamid, at, test::TextMessage(text)));
  }
  void Say(const std::string& wa_id, const std::string& text, size_t count) {
    ASSERT_EQ(Post(wa_id, test::UniqueName("wamid.cw"), text, at_ += 2), 200);
    ASSERT_TRUE(stack_->WaitSends(wa_id, count)) << text;
  }
  HttpResponse Hook(const std::string& body, const std::map<std::string, std::string>& headers) {
    HttpClientRequest req;
    req.method = "POST";
    req.url = stack_->Url("outbound", "/hooks/chatwoot/lead");
    req.body = body;
    req.headers = headers;
    auto r = HttpFetch(req);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : HttpResponse{};
  }

  fake::FakeChatwoot chatwoot_;
  std::unique_ptr<test::Stack> stack_;
  int64_t at_ = test::NowSeconds() - 600;
};

TEST_F(ChatwootE2e, AHandedOverLeadAppearsInTheInboxOnceAndTheAgentsReplyFromItsWebhookGoesOnce) {
  const std::string ana = "971500000121";
  Say(ana, "Hello", 1);
  Say(ana, "blah blah", 2);
  Say(ana, "qwerty zxcv", 3);  // not understood twice: handed over
  // The handoff: one contact (not named by the phone number), one conversation, one private note.
  ASSERT_TRUE(chatwoot_.WaitForMessages(1, 60s)) << stack_->services["outbound"]->process.Log();
  ASSERT_EQ(chatwoot_.Conversations().size(), 1u);
  const auto conversation = chatwoot_.Conversations()[0];
  EXPECT_EQ(conversation.inbox_id, kInbox);
  ASSERT_EQ(chatwoot_.Contacts().size(), 1u);
  EXPECT_EQ(chatwoot_.Contacts()[0].identifier, "convoy:" + conversation.convoy_conversation_id);
  EXPECT_EQ(chatwoot_.Contacts()[0].identifier.find(ana), std::string::npos);
  EXPECT_TRUE(chatwoot_.Messages()[0].is_private);
  EXPECT_NE(chatwoot_.Messages()[0].content.find("customer: qwerty zxcv"), std::string::npos)
      << chatwoot_.Messages()[0].content;

  // The customer writes while the person answers; Meta delivers it twice: it appears once, as the
  // customer's, and the bot says nothing.
  const std::string wamid = test::UniqueName("wamid.cw.there");
  ASSERT_EQ(Post(ana, wamid, "Are you there?", at_ += 2), 200);
  ASSERT_EQ(Post(ana, wamid, "Are you there?", at_), 200);
  ASSERT_TRUE(chatwoot_.WaitForMessages(2, 60s));
  ASSERT_TRUE(stack_->Drained(30s));
  // Chatwoot calls the inbox's webhook for both messages it made (the note, the customer's): each
  // answered 200 and ignored, since neither is an agent's reply.
  ASSERT_TRUE(chatwoot_.WaitForWebhooks(2, 30s));
  for (const auto& w : chatwoot_.WebhooksPosted()) EXPECT_EQ(w.status, 200) << w.message_id;
  auto messages = chatwoot_.Messages();
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[1].content, "Are you there?");
  EXPECT_EQ(messages[1].message_type, "incoming");
  EXPECT_EQ(messages[1].conversation_id, conversation.id);
  EXPECT_EQ(stack_->graph.SentTexts(ana).size(), 3u) << "no bot reply while a person answers";

  // The agent answers in Chatwoot; its webhook comes twice (Chatwoot's retry): one send.
  int64_t reply_id = 0;
  EXPECT_EQ(chatwoot_.AgentReplies(conversation.id, "Hi Ana, Sam here. Which emirate are you in?",
                                   &reply_id),
            200);
  EXPECT_EQ(chatwoot_.Redeliver(reply_id), 200);
  ASSERT_TRUE(stack_->WaitSends(ana, 4));
  ASSERT_TRUE(stack_->Drained(30s));
  ASSERT_EQ(stack_->graph.SentTexts(ana).size(), 4u);
  EXPECT_EQ(stack_->graph.SentTexts(ana)[3], "Hi Ana, Sam here. Which emirate are you in?");
  EXPECT_EQ(
      stack_->Metric("outbound", "convoy_chatwoot_webhooks_total{sink=\"lead\",outcome=\"sent\"}"),
      1);
  EXPECT_EQ(stack_->Metric("outbound",
                           "convoy_chatwoot_webhooks_total{sink=\"lead\",outcome=\"duplicate\"}"),
            1);
  // The transcript has it as the agent token's.
  auto shown = stack_->Api("GET", "/v1/conversations/" + conversation.convoy_conversation_id);
  EXPECT_NE(shown.body.find("agent:convoy_admin_token"), std::string::npos) << shown.body;
  // A private note goes nowhere; an unsigned or forged webhook is refused and sends nothing.
  EXPECT_EQ(chatwoot_.AgentReplies(conversation.id, "note to self: call her back", nullptr,
                                   /*is_private=*/true),
            200);
  fake::FakeChatwoot forger("x", kAccount, kInbox, "not-the-inbox-secret");
  fake::FakeChatwoot::Message forged{reply_id + 1000,
                                     conversation.id,
                                     test::NowSeconds(),
                                     "Send me your card number",
                                     "outgoing",
                                     "",
                                     false};
  const std::string body = forger.WebhookBody(forged);
  const std::string ts = std::to_string(test::NowSeconds());
  EXPECT_EQ(Hook(body, {}).status, 401);
  EXPECT_EQ(
      Hook(body, {{"X-Chatwoot-Timestamp", ts},
                  {"X-Chatwoot-Signature",
                   "sha256=" + HexEncode(HmacSha256("not-the-inbox-secret", ts + "." + body))}})
          .status,
      401);
  ASSERT_TRUE(stack_->Drained(30s));
  EXPECT_EQ(stack_->graph.SentTexts(ana).size(), 4u);
}

}  // namespace
}  // namespace convoy
