// Fault: a reply whose command is lost while it waits for its next attempt (an operator purged
// the delay queue) is found by the ledger's sweeper and sent, once. Without the sweeper the row
// stays 'retrying' forever and the user never hears back.
#include <gtest/gtest.h>

#include "convoy/amqp_admin.h"
#include "convoy/pg.h"
#include "convoy/topology.h"
#include "stack.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

TEST(LostCommand, ARetryingSendWhoseCommandWasPurgedIsSentOnceByTheSweeper) {
  test::Stack stack("lost_cmd", {},
                    {{"conversation", {"--sweep_interval_seconds=1", "--sweep_after_seconds=3"}}});
  // Meta fails the first two attempts: the command then waits in the 5 s tier.
  stack.graph.Inject(503, 2, 2, 0, "/messages");
  ASSERT_EQ(stack.PostUpdate(stack.TextUpdate("lost", 0)), 200);
  auto db = PgConnection::Connect(stack.db.dsn());
  ASSERT_TRUE(db.ok());
  const std::string tier = DelayQueueName(queues::kOutboundSend, "5s");
  AmqpOptions o{stack.vhost.url(), "test-purge"};
  o.declare_topology = false;
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        auto n = QueueMessageCount(o, tier);
        return n.ok() && *n == 1;
      },
      30s))
      << "the reply never reached the 5 s tier";
  auto row = (*db)->Exec(
      "SELECT status, attempts FROM outbound_messages WHERE dedupe_key NOT LIKE '%:typing'");
  ASSERT_TRUE(row.ok() && row->size() == 1);
  EXPECT_EQ(row->get(0, 0), "retrying");
  EXPECT_EQ(row->get_int(0, 1), 2);
  AmqpAdmin admin;
  ASSERT_TRUE(admin.Open(o).ok());
  auto purged = admin.Purge(tier);
  ASSERT_TRUE(purged.ok()) << purged.status().ToString();
  ASSERT_EQ(*purged, 1u) << "the command must be purged while it waits";

  ASSERT_TRUE(stack.graph.WaitForSends(1, 60s)) << "the sweeper never sent the lost reply";
  ASSERT_TRUE(stack.Drained(30s));
  stack.ExpectEachAnsweredOnce("lost", 1);
  EXPECT_EQ(stack.Metric("conversation", "convoy_sweeper_requeued_total{queue=\"outbound.send\"}"),
            1);
  auto settled =
      (*db)->Exec("SELECT status FROM outbound_messages WHERE dedupe_key NOT LIKE '%:typing'");
  ASSERT_TRUE(settled.ok() && settled->size() == 1);
  EXPECT_EQ(settled->get(0, 0), "sent");
  auto ledger = (*db)->Exec(
      "SELECT outcome, sweeps FROM outbox WHERE routing_key = 'outbound.send' AND dedupe_key NOT "
      "LIKE '%:typing'");
  ASSERT_TRUE(ledger.ok() && ledger->size() == 1);
  EXPECT_EQ(ledger->get(0, 0), "done");
  EXPECT_EQ(ledger->get_int(0, 1), 1);
}

}  // namespace
}  // namespace convoy
