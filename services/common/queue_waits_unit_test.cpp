// Unit: when a delivery began to wait, a queue's view, and the oldest ready message's bound.
#include <gtest/gtest.h>

#include "convoy/amqp.h"
#include "convoy/queue_waits.h"
#include "convoy/topology.h"

namespace convoy {
namespace {

TEST(QueueWaits, WaitingSinceIsTheLaterOfPublishedAndRequeued) {
  Delivery d;
  EXPECT_EQ(WaitingSinceMs(d), 0) << "from a version before the headers: unknown";
  d.headers[headers::kPublishedAt] = "1700000000000";
  EXPECT_EQ(WaitingSinceMs(d), 1700000000000);
  d.headers[headers::kRequeuedAt] = "1700000060000";
  EXPECT_EQ(WaitingSinceMs(d), 1700000060000) << "back from a tier: waits from its end";
  d.headers[headers::kRequeuedAt] = "12abc";
  EXPECT_EQ(WaitingSinceMs(d), 1700000000000) << "a malformed header is ignored";
  d.headers[headers::kPublishedAt] = "-5";
  EXPECT_EQ(WaitingSinceMs(d), 0);
}

TEST(QueueWaits, KeepsTheNewestTimeAndTheLastWait) {
  QueueWaits& w = QueueWaits::Global();
  const std::string q = "unit.queue.waits";
  w.Taken(q, 0, 5000);
  EXPECT_EQ(w.Snapshot().count(q), 0u) << "an unknown time is not recorded";
  w.Taken(q, 2000, 5000);
  w.Taken(q, 1000, 6000);  // an older one taken after (a redelivery): the newest time stays
  auto s = w.Snapshot()[q];
  EXPECT_EQ(s.waiting_since_ms, 2000);
  EXPECT_EQ(s.taken_ms, 6000);
  EXPECT_EQ(s.last_wait_ms, 5000);
  EXPECT_EQ(s.takes, 2u);
  w.Taken(q, 9000, 8500);  // from a clock ahead of this one: counts as taken when it began
  EXPECT_EQ(w.Snapshot()[q].last_wait_ms, 0);
  EXPECT_EQ(w.Snapshot()[q].waiting_since_ms, 8500) << "a future time cannot hold the bound at 0";
}

TEST(QueueWaits, TheOldestReadyAgeIsBoundedByEachReadyPartsNewestTake) {
  const std::map<std::string, int64_t> ages = {{"q.0", 100000}, {"q.1", 159001}};
  EXPECT_EQ(OldestReadyAgeSeconds({{"q.0", 0}, {"q.1", 0}}, ages), 0);
  EXPECT_EQ(OldestReadyAgeSeconds({{"q.0", 3}, {"q.1", 0}}, ages), 100);
  EXPECT_EQ(OldestReadyAgeSeconds({{"q.0", 3}, {"q.1", 1}}, ages), 160)
      << "the oldest part decides, rounded up: a bound stays one";
  EXPECT_EQ(OldestReadyAgeSeconds({{"q.0", 3}, {"q.2", 1}}, ages), std::nullopt)
      << "a part with messages nobody took from has no bound";
  EXPECT_EQ(OldestReadyAgeSeconds({{"q.2", 0}}, ages), 0);
  EXPECT_EQ(OldestReadyAgeSeconds({{"q.0", 1}}, {{"q.0", -40}}), 0) << "never negative";
}

TEST(QueueWaits, ADelayComesBackAfterTheTierItsRoutingKeyNames) {
  // x-requeued-at is the delay's tier end: the tier DelayRoutingKey picks, for paced and other
  // queues, for waits between, below and above the tiers.
  for (const char* q : {queues::kOutboundSend, queues::kMediaFetch}) {
    for (int64_t ms : {0LL, 250LL, 1000LL, 1500LL, 7000LL, 45000LL, 3600000LL}) {
      const int64_t tier = DelayTierMs(q, ms);
      EXPECT_EQ(DelayRoutingKey(q, ms), DelayRoutingKey(q, tier)) << q << " " << ms;
      EXPECT_TRUE(tier <= ms || tier == ShortestDelayMs(q)) << q << " " << ms;
    }
  }
}

}  // namespace
}  // namespace convoy
