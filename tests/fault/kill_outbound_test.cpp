// Fault: kill -9 the outbound service while sends are in flight, among them sends Meta has
// accepted but not yet answered (the fake Graph API takes each send at once and answers 40 ms
// later), restart it, and check that every reply reached the user exactly once: a send whose
// outcome died with the process is settled from Meta's status webhook, not sent again.
#include <gtest/gtest.h>

#include "convoy/pg.h"
#include "stack.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

TEST(KillOutbound, NoReplySentTwiceNoneLost) {
  test::Stack stack("kill_out", {}, {{"outbound", {"--reconcile_seconds=5"}}});
  constexpr int kUpdates = 60, kSenders = 20;
  stack.graph.Inject(200, 0, 100000, 40, "/messages");  // accepted at once, answered 40 ms later
  for (int i = 0; i < kUpdates; ++i)
    ASSERT_EQ(stack.PostUpdate(stack.TextUpdate("killout", i, kSenders)), 200);
  // Mid-stream: some replies sent, one or two accepted by Meta and not yet answered, the rest
  // queued.
  ASSERT_TRUE(test::WaitUntil([&] { return stack.graph.SendCount() >= 10; }, 60s))
      << stack.graph.SendCount();
  stack.Kill("outbound");
  size_t at_kill = stack.graph.SendCount();
  ASSERT_LT(at_kill, static_cast<size_t>(kUpdates)) << "the kill must land mid-stream";
  auto db = PgConnection::Connect(stack.db.dsn());
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  // What the dead process left: attempts claimed but never recorded by it.
  auto open = (*db)->Exec(
      "SELECT count(*) FROM outbound_messages WHERE status IN ('sending', 'uncertain')");
  ASSERT_TRUE(open.ok());
  stack.Launch("outbound");
  ASSERT_TRUE(stack.WaitReady("outbound", 60s)) << stack.services["outbound"]->process.Log();
  ASSERT_TRUE(test::WaitUntil([&] { return stack.graph.SendCount() >= kUpdates; }, 90s))
      << stack.graph.SendCount() << " of " << kUpdates << " replies sent";
  ASSERT_TRUE(stack.Drained(60s));
  auto sent = (*db)->Exec(
      "SELECT count(*) FROM outbound_messages WHERE status = 'sent' AND dedupe_key NOT LIKE "
      "'%:typing'");
  ASSERT_TRUE(sent.ok());
  EXPECT_EQ(sent->get_int(0, 0), kUpdates);
  stack.ExpectEachAnsweredOnce("killout", kUpdates);
  // Settled without a call after the restart: the sends the killed process had in flight.
  double settled = stack.Metric("outbound", "convoy_outbound_sends_total{result=\"duplicate\"}");
  std::cout << "sends at the kill: " << at_kill
            << ", attempts open after it: " << open->get_int(0, 0)
            << ", redelivered sends settled without a call: " << settled << "\n";
}

}  // namespace
}  // namespace convoy
