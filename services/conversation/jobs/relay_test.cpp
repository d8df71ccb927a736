// Integration: two relays (as two replicas would run them) share one outbox. Rows are claimed
// with FOR UPDATE SKIP LOCKED, so every row is published exactly once between them.
#include "jobs/relay.h"

#include <gtest/gtest.h>

#include "convoy/topology.h"
#include "testsupport.h"

namespace convoy::conversation {
namespace {

using namespace std::chrono_literals;

TEST(OutboxRelay, TwoReplicasPublishEveryRowOnce) {
  test::TestVhost vhost("relay");
  test::TestDatabase db("relay");
  auto conn = PgConnection::Connect(db.dsn());
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE(RunMigrations(**conn, test::SourcePath("deploy/postgres")).ok());
  constexpr int kRows = 2000;
  auto inserted = (*conn)->Exec(
      "INSERT INTO outbox (exchange, routing_key, dedupe_key, correlation_id, conversation_key, "
      "body) "
      "SELECT 'convoy.commands', 'outbound.send', 'k' || g, 'c' || g, '1:2', '{}' FROM "
      "generate_series(1, $1::int) g",
      {std::to_string(kRows)});
  ASSERT_TRUE(inserted.ok()) << inserted.status().ToString();

  AmqpOptions o{vhost.url(), "relay-test"};
  Publisher pub_a(o), pub_b(o);
  pub_a.Start();
  pub_b.Start();
  ASSERT_TRUE(pub_a.WaitConnected(20s) && pub_b.WaitConnected(20s));
  RelaySettings settings;
  settings.pg_dsn = db.dsn();
  settings.batch_size = 50;  // small batches: the two relays interleave
  OutboxRelay a(settings, pub_a), b(settings, pub_b);
  a.Start();
  b.Start();
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        auto left = (*conn)->Exec("SELECT count(*) FROM outbox WHERE published_at IS NULL");
        return left.ok() && left->get_int(0, 0) == 0;
      },
      60s));
  a.Stop();
  b.Stop();
  EXPECT_EQ(a.published() + b.published(), static_cast<uint64_t>(kRows));
  EXPECT_GT(a.published(), 0u);
  EXPECT_GT(b.published(), 0u) << "both replicas took part";
  auto queued = QueueMessageCount(o, queues::kOutboundSend);
  ASSERT_TRUE(queued.ok());
  EXPECT_EQ(*queued, static_cast<uint32_t>(kRows)) << "a row was published twice";
}

}  // namespace
}  // namespace convoy::conversation
