// Fault: the database goes away under a running conversation service (its connections are cut
// and new ones refused), then comes back. Updates keep arriving meanwhile. Nothing Meta got a
// 200 for is lost: failed deliveries wait in the retry tiers and are applied once the database
// is back; /readyz says not ready while it is gone.
#include <gtest/gtest.h>

#include "stack.h"
#include "tcp_proxy.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

int PgPort() {
  std::string dsn = test::PgDsn();
  return std::atoi(dsn.c_str() + dsn.find("port=") + 5);
}

TEST(DatabaseOutage, UpdatesDuringTheOutageAreAppliedAfterItAndNothingTwice) {
  test::TcpProxy proxy(PgPort());
  ASSERT_TRUE(proxy.Start());
  test::Stack stack("db_outage", {{"conversation", proxy.port()}});
  constexpr int kBefore = 10, kDuring = 20;
  for (int i = 0; i < kBefore; ++i) ASSERT_EQ(stack.PostUpdate(stack.TextUpdate("dbout", i)), 200);
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
  for (int i = kBefore; i < kBefore + kDuring; ++i)
    ASSERT_EQ(stack.PostUpdate(stack.TextUpdate("dbout", i)), 200);
  const std::string failed = "convoy_conversation_updates_total{result=\"transient_failure\"}";
  ASSERT_TRUE(test::WaitUntil([&] { return stack.Metric("conversation", failed) >= 1; }, 30s))
      << "no delivery met the outage";

  proxy.SetBlocked(false);
  ASSERT_TRUE(stack.WaitReady("conversation", 30s));
  // Deliveries that failed wait out their retry tier (1 s, then 5 s, ...).
  ASSERT_TRUE(test::WaitUntil([&] { return stack.graph.SendCount() >= kBefore + kDuring; }, 90s))
      << stack.graph.SendCount() << " replies";
  ASSERT_TRUE(stack.Drained(30s));
  stack.ExpectEachAnsweredOnce("dbout", kBefore + kDuring);
}

}  // namespace
}  // namespace convoy
