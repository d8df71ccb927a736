// Integration: the command ledger's sweeper and the consumer side (Ledgered) against a real
// PostgreSQL. A command is swept only when it is unsettled, published, and overdue by the margin;
// never while it waits (due in the future), once settled, or before the relay published it.
#include "jobs/sweeper.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "convoy/ledger.h"
#include "convoy/topology.h"
#include "testsupport.h"

namespace convoy::conversation {
namespace {

using namespace std::chrono_literals;

class SweeperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = PgConnection::Connect(db_.dsn());
    ASSERT_TRUE(c.ok());
    conn_ = std::move(*c);
    ASSERT_TRUE(RunMigrations(*conn_, test::SourcePath("deploy/postgres")).ok());
  }
  // A command row as the processor writes it, published `published_ago` s ago (-1: not yet),
  // due `due_in` s from now.
  void Command(const std::string& key, int published_ago, int due_in) {
    auto r = conn_->Exec(
        "INSERT INTO outbox (exchange, routing_key, dedupe_key, correlation_id, conversation_key, "
        "body, due_at, "
        "published_at) VALUES ('convoy.commands', 'outbound.send', $1, 'c', '1:2', '{}', "
        "now() + make_interval(secs => $2::int), "
        "CASE WHEN $3::int < 0 THEN NULL ELSE now() - make_interval(secs => $3::int) END)",
        {key, std::to_string(due_in), std::to_string(published_ago)});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  std::string Field(const std::string& key, const std::string& expr) {
    auto r = conn_->Exec(
        "SELECT coalesce((" + expr + ")::text, '') FROM outbox WHERE dedupe_key = $1", {key});
    EXPECT_TRUE(r.ok() && r->size() == 1) << key;
    return r.ok() && r->size() == 1 ? r->get(0, 0) : "?";
  }
  test::TestDatabase db_{"sweeper"};
  std::unique_ptr<PgConnection> conn_;
};

TEST_F(SweeperTest, OnlyOverdueUnsettledPublishedCommandsAreRequeued) {
  SweepSettings s;
  s.margin = 60s;
  Command("lost", 600, -300);        // published 10 min ago, due 5 min ago: past the margin
  Command("late", 600, -30);         // due 30 s ago: within the margin
  Command("waiting", 600, 300);      // pushed back by its consumer: waits in a delay queue
  Command("unpublished", -1, -300);  // the relay has not published it yet
  Command("settled", 600, -300);
  ASSERT_TRUE(
      conn_
          ->Exec(
              "UPDATE outbox SET settled_at = now(), outcome = 'done' WHERE dedupe_key = 'settled'")
          .ok());
  auto r = SweepOnce(*conn_, s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->requeued, 1u);
  EXPECT_EQ(r->abandoned, 0u);
  EXPECT_EQ(Field("lost", "published_at"), "") << "marked for the relay to publish again";
  EXPECT_EQ(Field("lost", "sweeps"), "1");
  for (const char* key : {"late", "waiting", "settled"})
    EXPECT_NE(Field(key, "published_at"), "") << key;
  // Published again just now: not overdue until the margin passes again.
  ASSERT_TRUE(conn_->Exec("UPDATE outbox SET published_at = now() WHERE dedupe_key = 'lost'").ok());
  r = SweepOnce(*conn_, s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->requeued, 0u);
}

TEST_F(SweeperTest, ACommandLostEveryTimeIsAbandonedAfterTheLastSweep) {
  SweepSettings s;
  s.margin = 1s;
  s.max_sweeps = 2;
  Command("poison", 600, -300);
  for (int sweep = 1; sweep <= 3; ++sweep) {
    auto r = SweepOnce(*conn_, s);
    ASSERT_TRUE(r.ok());
    if (sweep <= 2) {
      EXPECT_EQ(r->requeued, 1u) << sweep;
    } else {
      EXPECT_EQ(r->abandoned, 1u);
    }
    // The relay publishes it, and it is lost again.
    ASSERT_TRUE(conn_
                    ->Exec("UPDATE outbox SET published_at = now() - interval '1 hour', due_at = "
                           "now() - interval "
                           "'1 hour' WHERE dedupe_key = 'poison' AND settled_at IS NULL")
                    .ok());
  }
  EXPECT_EQ(Field("poison", "outcome"), "abandoned");
  auto r = SweepOnce(*conn_, s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->requeued + r->abandoned, 0u) << "an abandoned command is left to an operator";
  // It was only late: its consumer finishes it after all, and the ledger says so.
  DeliveryHandler done = Ledgered([](const Delivery&) { return Disposition::Ack(); }, *conn_, 5);
  Delivery d;
  d.queue = queues::kOutboundSend;
  d.headers[headers::kDedupeKey] = "poison";
  done(d);
  EXPECT_EQ(Field("poison", "outcome"), "done");
}

// Upgrading a database that has commands from before the ledger: the published ones are taken as
// settled (no consumer tracked them), the ones still waiting for the relay are tracked.
TEST(CommandLedgerMigration, TracksOnlyCommandsNotYetPublished) {
  test::TestDatabase db("ledger_migration");
  auto c = PgConnection::Connect(db.dsn());
  ASSERT_TRUE(c.ok());
  const std::string before =
      ::testing::TempDir() + "/" + test::UniqueName("migrations_before_ledger");
  ASSERT_EQ(std::system(("mkdir -p " + before + " && cp " + test::SourcePath("deploy/postgres") +
                         "/000[1-4]_*.sql " + before)
                            .c_str()),
            0);
  ASSERT_TRUE(RunMigrations(**c, before).ok());
  ASSERT_TRUE(
      (*c)->Exec("INSERT INTO outbox (exchange, routing_key, dedupe_key, correlation_id, body, "
                 "published_at) "
                 "VALUES ('convoy.commands', 'outbound.send', 'old-published', 'c', '{}', now()), "
                 "('convoy.commands', 'outbound.send', 'old-waiting', 'c', '{}', NULL)")
          .ok());
  ASSERT_TRUE(RunMigrations(**c, test::SourcePath("deploy/postgres")).ok());
  auto r = (*c)->Exec(
      "SELECT dedupe_key, coalesce(outcome, ''), (due_at IS NOT NULL)::text FROM outbox ORDER BY "
      "dedupe_key");
  ASSERT_TRUE(r.ok() && r->size() == 2);
  EXPECT_EQ(r->get(0, 0) + ":" + r->get(0, 1), "old-published:before_ledger");
  EXPECT_EQ(r->get(1, 0) + ":" + r->get(1, 1) + ":" + r->get(1, 2), "old-waiting::true");
}

TEST_F(SweeperTest, OneSweeperAtATime) {
  Command("lost", 600, -300);
  auto other = PgConnection::Connect(db_.dsn());
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE((*other)->Begin().ok());
  ASSERT_TRUE((*other)->Exec("SELECT pg_advisory_xact_lock(7406021)").ok());
  SweepSettings s;
  s.margin = 1s;
  auto r = SweepOnce(*conn_, s);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->skipped);
  EXPECT_EQ(r->requeued, 0u);
  ASSERT_TRUE((*other)->Commit().ok());
  r = SweepOnce(*conn_, s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->requeued, 1u);
}

// The consumer's side: a done or parked command is settled; one sent to a delay queue is due
// when it comes back, so the sweeper leaves it alone while it waits.
TEST_F(SweeperTest, ConsumersSettleOrPushBackTheirCommands) {
  Command("acked", 5, -5);
  Command("parked", 5, -5);
  Command("retried", 5, -5);
  Command("paced", 5, -5);
  Command("last-try", 5, -5);
  Disposition next;
  DeliveryHandler inner = [&next](const Delivery&) { return next; };
  DeliveryHandler h = Ledgered(inner, *conn_, /*max_attempts=*/5);
  auto deliver = [&](const std::string& key, Disposition d, int attempt = 0) {
    next = std::move(d);
    Delivery del;
    del.queue = queues::kOutboundSend;
    del.headers[headers::kDedupeKey] = key;
    del.attempt = attempt;
    h(del);
  };
  deliver("acked", Disposition::Ack());
  deliver("parked", Disposition::DeadLetter("bad"));
  deliver("retried", Disposition::Retry("503"), 2);  // third attempt: the 30 s tier
  deliver("paced", Disposition::Delay("slot", 120000));
  deliver("last-try", Disposition::Retry("503"), 4);  // the consumer parks it
  EXPECT_EQ(Field("acked", "outcome"), "done");
  EXPECT_EQ(Field("parked", "outcome"), "parked");
  EXPECT_EQ(Field("last-try", "outcome"), "parked");
  EXPECT_EQ(Field("retried", "settled_at"), "");
  EXPECT_EQ(Field("retried", "round(extract(epoch FROM due_at - now()))"), "30");
  EXPECT_EQ(Field("paced", "round(extract(epoch FROM due_at - now()))"), "120");
  SweepSettings s;
  s.margin = 1s;
  auto r = SweepOnce(*conn_, s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->requeued, 0u) << "nothing here is lost";
}

}  // namespace
}  // namespace convoy::conversation
