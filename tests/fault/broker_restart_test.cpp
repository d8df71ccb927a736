// Fault: the broker itself stops and starts again (the throw-away one scripts/test.sh started)
// under the running stack. Updates acknowledged before the stop are all answered, exactly once;
// POSTs during the stop get 503 and succeed when retried, as Meta retries them.
#include <gtest/gtest.h>

#include <cstdlib>

#include "stack.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

int Infra(const std::string& args) {
  return std::system(("bash " + test::SourcePath("scripts/infra.sh") + " " + args + " >&2").c_str());
}

TEST(BrokerRestart, AcknowledgedUpdatesSurviveAndAreAnsweredOnce) {
  if (std::getenv("CONVOY_RUN_DIR") == nullptr) {
    GTEST_SKIP() << "restarts the broker: runs only under scripts/test.sh, which owns a throw-away one";
  }
  test::Stack stack("broker_restart");
  constexpr int kUpdates = 40;
  for (int i = 0; i < kUpdates / 2; ++i) ASSERT_EQ(stack.PostUpdate(stack.TextUpdate("restart", i)), 200);

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
    ASSERT_TRUE(test::WaitUntil([&] { return stack.PostUpdate(stack.TextUpdate("restart", i)) == 200; }, 30s))
        << "update " << i;
  }
  ASSERT_TRUE(test::WaitUntil([&] { return stack.graph.SendCount() >= kUpdates; }, 120s))
      << stack.graph.SendCount() << " of " << kUpdates << " replies";
  ASSERT_TRUE(stack.Drained(60s));
  stack.ExpectEachAnsweredOnce("restart", kUpdates);
}

}  // namespace
}  // namespace convoy
