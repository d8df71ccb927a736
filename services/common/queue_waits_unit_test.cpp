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
  w.Taken(q, 7000, 6500);  // a clock behind the publisher's: no negative wait
  EXPECT_EQ(w.Snapshot()[q].last_wait_ms, 0);
}

TEST(QueueWaits, TheOldestReadyAgeIsBoundedByEachReadyPartsNewestTake) {
  const std::map<std::string, int64_t> since = {{"q.0", 100000}, {"q.1", 40000}};
  EXPECT_EQ(OldestReadyAgeSeconds({{"q.0", 0}, {"q.1", 0}}, since, 200000), 0);
  EXPECT_EQ(OldestReadyAgeSeconds({{"q.0", 3}, {"q.1", 0}}, since, 200000), 100);
  EXPECT_EQ(OldestReadyAgeSeconds({{"q.0", 3}, {"q.1", 1}}, since, 200000), 160)
      << "the oldest part decides";
  EXPECT_EQ(OldestReadyAgeSeconds({{"q.0", 3}, {"q.2", 1}}, since, 200000), std::nullopt)
      << "a part with messages nobody took from has no bound";
  EXPECT_EQ(OldestReadyAgeSeconds({{"q.2", 0}}, since, 200000), 0);
}

}  // namespace
}  // namespace convoy
