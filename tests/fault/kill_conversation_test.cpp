// Fault: kill -9 the conversation service in the middle of a stream of updates (some
// committed, some not, some committed but not acked, outbox rows waiting), restart it, and
// check DESIGN.md's promises: every update Meta got a 200 for is applied, and every reply is
// sent exactly once.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "convoy/amqp.h"
#include "convoy/topology.h"
#include "stack.h"
#include "testsupport.h"
#include "webhook.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

// text.json with its id and text replaced: a distinct update from one of three senders.
std::string Webhook(const std::string& base, int i) {
  std::string body = base;
  auto id_at = body.find("\"wamid.");
  body.insert(id_at + 7, "KILL" + std::to_string(i) + "x");
  auto from_at = body.find("16505551234");
  while (from_at != std::string::npos) {  // spread over three conversations
    body.replace(from_at, 11, "1650555123" + std::to_string(i % 3));
    from_at = body.find("16505551234", from_at + 11);
  }
  auto text_at = body.find("\"body\": \"");
  if (text_at == std::string::npos) text_at = body.find("\"body\":\"");
  auto quote = body.find('"', body.find(':', text_at) + 1);
  auto end = body.find('"', quote + 1);
  body.replace(quote + 1, end - quote - 1, "kill-test message " + std::to_string(i));
  return body;
}

TEST(KillConversation, NothingLostNothingSentTwice) {
  test::Stack stack("kill_conv");
  const std::string base = test::ReadFile(test::FixturePath("webhooks/text.json"));
  constexpr int kUpdates = 60;
  const std::string applied = "convoy_conversation_updates_total{result=\"applied\"}";
  int i = 0;
  for (; i < kUpdates / 2; ++i) {
    std::string body = Webhook(base, i);
    ASSERT_EQ(stack.PostWebhook(body, ingress::SignBody(body, test::kAppSecret)).status, 200);
  }
  // Mid-stream: some updates applied, others still queued or in flight.
  ASSERT_TRUE(test::WaitUntil([&] { return stack.Metric("conversation", applied) >= 5; }, 30s));
  stack.Kill("conversation");
  for (; i < kUpdates; ++i) {
    std::string body = Webhook(base, i);
    ASSERT_EQ(stack.PostWebhook(body, ingress::SignBody(body, test::kAppSecret)).status, 200)
        << "ingress must keep accepting while conversation is down";
  }
  stack.Launch("conversation");
  ASSERT_TRUE(stack.WaitReady("conversation", 60s)) << stack.services["conversation"]->process.Log();
  ASSERT_TRUE(test::WaitUntil([&] { return stack.graph.SendCount() >= kUpdates; }, 90s))
      << stack.graph.SendCount() << " of " << kUpdates << " replies sent";

  // Quiesce: nothing left to deliver anywhere, then count again.
  AmqpOptions o{stack.vhost.url(), "kill-check"};
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        for (const char* q : {queues::kConversationInbound, queues::kConversationEvents, queues::kOutboundSend}) {
          auto n = QueueMessageCount(o, q);
          if (!n.ok() || *n != 0) return false;
        }
        return true;
      },
      60s));
  std::string sends = stack.graph.RequestsJson();
  EXPECT_EQ(stack.graph.SendCount(), static_cast<size_t>(kUpdates)) << sends;
  for (int k = 0; k < kUpdates; ++k) {
    std::string needle = "kill-test message " + std::to_string(k) + "\\\"";
    size_t first = sends.find(needle);
    EXPECT_NE(first, std::string::npos) << "reply to update " << k << " lost";
    EXPECT_EQ(sends.find(needle, first + 1), std::string::npos) << "reply to update " << k << " sent twice";
  }
  for (const char* q : {"conversation.inbound.dlq", "outbound.send.dlq"}) {
    auto n = QueueMessageCount(o, q);
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(*n, 0u) << q;
  }
}

}  // namespace
}  // namespace convoy
