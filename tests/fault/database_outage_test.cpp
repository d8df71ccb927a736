// Fault: the database goes away under a running conversation service (its connections are cut
// and new ones refused), then comes back. Updates keep arriving meanwhile. Nothing Meta got a
// 200 for is lost: failed deliveries wait in the retry tiers and are applied once the database
// is back; /readyz says not ready while it is gone.
#include <gtest/gtest.h>

#include "convoy/amqp.h"
#include "convoy/topology.h"
#include "stack.h"
#include "tcp_proxy.h"
#include "testsupport.h"
#include "webhook.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

int PgPort() {
  std::string dsn = test::PgDsn();
  return std::atoi(dsn.c_str() + dsn.find("port=") + 5);
}

std::string Update(const std::string& base, int i) {
  std::string body = base;
  body.insert(body.find("\"wamid.") + 7, "DBOUT" + std::to_string(i) + "x");
  auto text_at = body.find("Does it come in another color?");
  body.replace(text_at, 30, "db-outage message " + std::to_string(i));
  return body;
}

TEST(DatabaseOutage, UpdatesDuringTheOutageAreAppliedAfterItAndNothingTwice) {
  test::TcpProxy proxy(PgPort());
  ASSERT_TRUE(proxy.Start());
  test::Stack stack("db_outage", {{"conversation", proxy.port()}});
  const std::string base = test::ReadFile(test::FixturePath("webhooks/text.json"));
  auto post = [&](int i) {
    std::string body = Update(base, i);
    return stack.PostWebhook(body, ingress::SignBody(body, test::kAppSecret)).status;
  };
  constexpr int kBefore = 10, kDuring = 20;
  for (int i = 0; i < kBefore; ++i) ASSERT_EQ(post(i), 200);
  ASSERT_TRUE(test::WaitUntil([&] { return stack.graph.SendCount() == kBefore; }, 30s));

  proxy.SetBlocked(true);
  int status = 0;
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        test::HttpGet(stack.Url("conversation", "/readyz"), &status);
        return status == 503;
      },
      30s))
      << "conversation still ready with its database gone";
  for (int i = kBefore; i < kBefore + kDuring; ++i) ASSERT_EQ(post(i), 200);
  const std::string failed = "convoy_conversation_updates_total{result=\"transient_failure\"}";
  ASSERT_TRUE(test::WaitUntil([&] { return stack.Metric("conversation", failed) >= 1; }, 30s))
      << "no delivery met the outage";

  proxy.SetBlocked(false);
  ASSERT_TRUE(stack.WaitReady("conversation", 30s));
  // Deliveries that failed wait out their retry tier (1 s, then 5 s, ...).
  ASSERT_TRUE(test::WaitUntil([&] { return stack.graph.SendCount() >= kBefore + kDuring; }, 90s))
      << stack.graph.SendCount() << " replies";
  AmqpOptions o{stack.vhost.url(), "db-outage-check"};
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        for (const char* q : {queues::kConversationInbound, queues::kOutboundSend}) {
          auto n = QueueMessageCount(o, q);
          if (!n.ok() || *n != 0) return false;
        }
        return true;
      },
      30s));
  std::string sends = stack.graph.RequestsJson();
  EXPECT_EQ(stack.graph.SendCount(), static_cast<size_t>(kBefore + kDuring));
  for (int k = 0; k < kBefore + kDuring; ++k) {
    std::string needle = "db-outage message " + std::to_string(k) + "\\\"";
    size_t first = sends.find(needle);
    EXPECT_NE(first, std::string::npos) << "update " << k << " lost";
    EXPECT_EQ(sends.find(needle, first + 1), std::string::npos) << "update " << k << " answered twice";
  }
  auto parked = QueueMessageCount(o, "conversation.inbound.dlq");
  ASSERT_TRUE(parked.ok());
  EXPECT_EQ(*parked, 0u);
}

}  // namespace
}  // namespace convoy
