// Fault: kill -9 the conversation service in the middle of a stream of updates (some
// committed, some not, some committed but not acked, outbox rows waiting), restart it, and
// check docs/design.md's promises: every update Meta got a 200 for is applied, and every reply is
// sent exactly once.
#include <gtest/gtest.h>

#include "stack.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

TEST(KillConversation, NothingLostNothingSentTwice) {
  test::Stack stack("kill_conv");
  constexpr int kUpdates = 60, kSenders = 3;
  const std::string applied = "convoy_conversation_updates_total{result=\"applied\"}";
  int i = 0;
  for (; i < kUpdates / 2; ++i)
    ASSERT_EQ(stack.PostUpdate(stack.TextUpdate("kill", i, kSenders)), 200);
  // Mid-stream: some updates applied, others still queued or in flight.
  ASSERT_TRUE(test::WaitUntil([&] { return stack.Metric("conversation", applied) >= 5; }, 30s));
  stack.Kill("conversation");
  for (; i < kUpdates; ++i) {
    ASSERT_EQ(stack.PostUpdate(stack.TextUpdate("kill", i, kSenders)), 200)
        << "ingress must keep accepting while conversation is down";
  }
  stack.Launch("conversation");
  ASSERT_TRUE(stack.WaitReady("conversation", 60s))
      << stack.services["conversation"]->process.Log();
  ASSERT_TRUE(test::WaitUntil([&] { return stack.graph.SendCount() >= kUpdates; }, 90s))
      << stack.graph.SendCount() << " of " << kUpdates << " replies sent";
  ASSERT_TRUE(stack.Drained(60s));
  stack.ExpectEachAnsweredOnce("kill", kUpdates);
}

}  // namespace
}  // namespace convoy
