// Fault: the broker itself stops and starts again (the throw-away one scripts/test.sh started)
// under the running stack. Updates acknowledged before the stop are all answered, exactly once;
// POSTs during the stop get 503 and succeed when retried, as Meta retries them.
#include <gtest/gtest.h>

#include <cstdlib>
#include <thread>

#include "convoy/amqp.h"
#include "convoy/json.h"
#include "convoy/pg.h"
#include "convoy/topology.h"
#include "stack.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

int Infra(const std::string& args) {
  return std::system(
      ("bash " + test::SourcePath("scripts/infra.sh") + " " + args + " >&2").c_str());
}

TEST(BrokerRestart, AcknowledgedUpdatesSurviveAndAreAnsweredOnce) {
  if (std::getenv("CONVOY_RUN_DIR") == nullptr) {
    GTEST_SKIP()
        << "restarts the broker: runs only under scripts/test.sh, which owns a throw-away one";
  }
  test::Stack stack("broker_restart");
  constexpr int kUpdates = 40;
  for (int i = 0; i < kUpdates / 2; ++i)
    ASSERT_EQ(stack.PostUpdate(stack.TextUpdate("restart", i)), 200);

  ASSERT_EQ(Infra("stop rabbit"), 0);
  for (int i = kUpdates / 2; i < kUpdates; ++i) {
    EXPECT_EQ(stack.PostUpdate(stack.TextUpdate("restart", i)), 503)
        << "nothing may be acknowledged while the broker is down";
  }
  ASSERT_EQ(Infra("start rabbit"), 0);
  for (const char* service : {"ingress", "conversation", "media", "outbound"}) {
    ASSERT_TRUE(stack.WaitReady(service, 60s)) << service << " did not recover";
  }
  for (int i = kUpdates / 2; i < kUpdates; ++i) {  // Meta retries what got a 503
    ASSERT_TRUE(test::WaitUntil(
        [&] { return stack.PostUpdate(stack.TextUpdate("restart", i)) == 200; }, 30s))
        << "update " << i;
  }
  ASSERT_TRUE(test::WaitUntil([&] { return stack.graph.SendCount() >= kUpdates; }, 120s))
      << stack.graph.SendCount() << " of " << kUpdates << " replies";
  ASSERT_TRUE(stack.Drained(60s));
  stack.ExpectEachAnsweredOnce("restart", kUpdates);
}

// The broker killed (kill -9) while replies wait in every delay tier that a send passes through
// (the pacing tier and the retry tiers up to 30 s), and kept down past the longest of those
// delays: every message expires while the broker is down or at its boot, before the work queue
// it returns to is available. Each must still be sent, exactly once. With classic delay queues
// (at-most-once dead-lettering) every one of them was dropped.
TEST(BrokerRestart, RepliesWaitingInDelayTiersSurviveABrokerKilledPastTheirDelay) {
  if (std::getenv("CONVOY_RUN_DIR") == nullptr) {
    GTEST_SKIP()
        << "kills the broker: runs only under scripts/test.sh, which owns a throw-away one";
  }
  test::Stack stack("broker_tiers");
  const std::vector<std::string> tiers = {"250ms", "1s", "5s", "30s"};
  constexpr int kPerTier = 10;
  std::vector<std::string> recipients;
  {
    AmqpOptions o{stack.vhost.url(), "test-tiers"};
    o.declare_topology = false;
    Publisher pub(o);
    pub.Start();
    ASSERT_TRUE(pub.WaitConnected(20s));
    PublishBatch batch;
    for (const auto& tier : tiers) {
      for (int i = 0; i < kPerTier; ++i) {
        std::string to = "4915" + std::to_string(recipients.size() + 100000);
        std::string dedupe = "tiers-" + tier + "-" + std::to_string(i);
        recipients.push_back(to);
        AmqpMessage m;
        m.exchange = exchanges::kRetry;
        m.routing_key = DelayQueueName(queues::kOutboundSend, tier);
        m.message_id = dedupe;
        m.body = R"({"schema":"outbound.send","version":1,"correlation_id":"corr-)" + dedupe +
                 R"(","dedupe_key":")" + dedupe + R"(","conversation_key":"106540352242922:)" + to +
                 R"(","phone_number_id":"106540352242922","to":")" + to +
                 R"(","last_inbound_at":)" + std::to_string(test::NowSeconds()) +
                 R"(,"message":{"type":"text","text":{"body":"reply )" + dedupe + R"("}}})";
        m.headers = {{headers::kDedupeKey, dedupe}, {headers::kCorrelationId, "corr-" + dedupe}};
        m.int_headers[headers::kAttempt] = 1;
        pub.Publish(std::move(m), batch.Add());
      }
    }
    ASSERT_TRUE(batch.Wait(std::chrono::steady_clock::now() + 20s).ok());
    pub.Stop();
  }
  const auto published = std::chrono::steady_clock::now();
  ASSERT_EQ(Infra("kill rabbit"), 0);
  // The fault itself: the broker stays down longer than the longest delay above.
  std::this_thread::sleep_until(published + 35s);
  ASSERT_EQ(Infra("start rabbit"), 0);
  ASSERT_TRUE(stack.WaitReady("outbound", 60s)) << "outbound did not recover";
  const size_t expected = tiers.size() * kPerTier;
  EXPECT_TRUE(test::WaitUntil([&] { return stack.graph.SendCount() >= expected; }, 90s))
      << stack.graph.SendCount() << " of " << expected
      << " replies sent after the broker came back";
  ASSERT_TRUE(stack.Drained(60s));
  for (const auto& to : recipients) EXPECT_EQ(stack.graph.SentTexts(to).size(), 1u) << to;
  EXPECT_EQ(stack.graph.SendCount(), expected);
  auto parked = QueueMessageCount(AmqpOptions{stack.vhost.url(), "test"},
                                  std::string(queues::kOutboundSend) + ".dlq");
  ASSERT_TRUE(parked.ok());
  EXPECT_EQ(*parked, 0u);
}

}  // namespace
}  // namespace convoy
