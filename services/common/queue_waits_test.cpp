// Integration: what consumers take bounds a work queue's oldest ready message, across a retry tier
// and through PostgreSQL (convoy/queue_waits.h). A real RabbitMQ and a real PostgreSQL.
#include "convoy/queue_waits.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>

#include "convoy/amqp.h"
#include "convoy/pg.h"
#include "convoy/topology.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;
using test::TestVhost;
using test::WaitUntil;

TEST(QueueWaits, WhatConsumersTakeBoundsTheOldestReadyMessageAcrossARetryTier) {
  // The database first: nothing below may hold the consumer's thread long enough to lose its
  // connection's heartbeats.
  test::TestDatabase db("queue_waits");
  auto owner = PgConnection::Connect(db.dsn());
  ASSERT_TRUE(owner.ok()) << owner.status().ToString();
  ASSERT_TRUE(RunMigrations(**owner, test::SourcePath("deploy/postgres")).ok());
  TestVhost vhost("queue_waits");
  AmqpOptions o{vhost.url(), "test-queue-waits"};
  Publisher pub(o);
  pub.Start();
  ASSERT_TRUE(pub.WaitConnected(20s));
  // A queue no other test of this binary consumes: the view is the process's.
  const std::string queue = queues::kOutboundExtract;

  // The first message was published 90 s ago (a stamp the publisher keeps), two more now.
  const int64_t old_stamp = UnixMillisNow() - 90000;
  const int64_t before = UnixMillisNow();
  for (const char* body : {"old", "b", "c"}) {
    AmqpMessage m;
    m.exchange = "";
    m.routing_key = queue;
    m.body = body;
    if (std::string(body) == "old") m.int_headers[headers::kPublishedAt] = old_stamp;
    ASSERT_TRUE(pub.PublishAndWait(m, 10s).ok());
  }

  // One at a time: the consumer holds the first until told, so two stay ready behind it.
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int64_t> retried_at{0}, back_since{0}, back_published{0};
  std::atomic<int> acked{0};
  ConsumerOptions co{o, queue, 1, 5};
  Consumer consumer(
      co,
      [&](const Delivery& d) {
        if (d.body == "old" && d.attempt == 0) {
          std::unique_lock<std::mutex> lock(mu);
          cv.wait(lock, [&] { return release; });
          retried_at = UnixMillisNow();
          return Disposition::Retry("unavailable: once");
        }
        if (d.body == "old") {
          back_since = WaitingSinceMs(d);
          back_published = std::atoll(d.Header(headers::kPublishedAt).c_str());
        }
        ++acked;
        return Disposition::Ack();
      },
      &pub);
  consumer.Start();
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto w = QueueWaits::Global().Snapshot();
        return w.count(queue) && w[queue].waiting_since_ms == old_stamp;
      },
      20s));
  EXPECT_GE(QueueWaits::Global().Snapshot()[queue].last_wait_ms, 90000);
  auto ready = QueueMessageCount(o, queue);
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(*ready, 2u);

  // Through the database, as the operations API reads it: the two ready have waited at most
  // since the message taken, which is 90 s or more.
  // Another process's row with an older time: the newest of all rows bounds the queue.
  ASSERT_TRUE((*owner)
                  ->Exec("INSERT INTO queue_waits VALUES ($1, 'outbound@elsewhere/1', now() - "
                         "interval '1 hour', now(), 5)",
                         {queue})
                  .ok());
  QueueWaitReporter reporter(db.RoleDsn("convoy_media"), "media@test/1");
  Status flushed = reporter.Flush();
  ASSERT_TRUE(flushed.ok()) << flushed.ToString();
  auto read = ReadQueueWaitAges(**owner);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_TRUE(read->count(queue));
  EXPECT_GE((*read)[queue], 90000);
  EXPECT_LE((*read)[queue], UnixMillisNow() - old_stamp + 1000);
  auto age = OldestReadyAgeSeconds({{queue, *ready}}, *read);
  ASSERT_TRUE(age.has_value());
  EXPECT_GE(*age, 90);
  EXPECT_LE(*age, 90 + (UnixMillisNow() - before) / 1000 + 2);

  // The first fails once: it goes through the 1 s tier and waits in the queue again from the
  // tier's end, its first publication kept. The two behind it are taken meanwhile.
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  ASSERT_TRUE(WaitUntil([&] { return acked == 3; }, 30s)) << acked;
  EXPECT_EQ(back_published.load(), old_stamp);
  EXPECT_GE(back_since.load(), retried_at.load() + RetryDelayMs(1));
  EXPECT_LE(back_since.load(), UnixMillisNow());
  const auto w = QueueWaits::Global().Snapshot()[queue];
  EXPECT_EQ(w.waiting_since_ms, back_since.load());
  EXPECT_GE(w.takes, 4u);
  // Fresh publications were stamped by the publisher as it took them.
  EXPECT_GE(w.waiting_since_ms, before);

  // The next write carries the newer time; an empty queue is 0 s old.
  ASSERT_TRUE(reporter.Flush().ok());
  read = ReadQueueWaitAges(**owner);
  ASSERT_TRUE(read.ok());
  EXPECT_LE((*read)[queue], UnixMillisNow() - back_since.load() + 1000);
  EXPECT_LT((*read)[queue], 60000) << "the newer time replaced the 90 s one";
  EXPECT_EQ(OldestReadyAgeSeconds({{queue, 0}}, *read), 0);
  consumer.Stop();
}

}  // namespace
}  // namespace convoy
