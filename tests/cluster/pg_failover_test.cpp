// Cluster: a PostgreSQL primary committing synchronously to a streaming standby
// (tests/cluster/run_cluster_test.sh starts the pair; the DSN with both hosts and
// target_session_attrs=read-write comes in CONVOY_CLUSTER_PG_DSN). Writers apply work as convoy's
// consumers do (a dedupe key and a change in one transaction; a failed one is retried) while the
// primary is fenced and the standby promoted. Every commit a writer was told of is on the new
// primary, nothing was applied twice, and each writer carries on there with no step of its own.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "cluster_env.h"
#include "convoy/pg.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

struct Writer {
  int done = 0;  // keys applied, as the writer was told (a commit's OK, or its dedupe row there)
  int committed = 0;  // of them, by this writer's own COMMIT that answered OK
  int retried = 0;    // attempts that failed (the connection, the failover) and were tried again
};

// One key: its dedupe row and the writer's counter in one transaction. A duplicate (the key is
// there: an earlier attempt did commit) changes nothing and counts as done.
Result<bool> Apply(PgConnection& db, int w, const std::string& key) {
  auto tx = PgTransaction::Begin(db);
  if (!tx.ok()) return tx.status();
  auto seen =
      db.Exec("INSERT INTO failover_seen (k, writer) VALUES ($1, $2::int) ON CONFLICT DO NOTHING",
              {key, std::to_string(w)});
  if (!seen.ok()) return seen.status();
  if (seen->affected == 0) return false;
  auto bump =
      db.Exec("UPDATE failover_counts SET n = n + 1 WHERE writer = $1::int", {std::to_string(w)});
  if (!bump.ok()) return bump.status();
  Status s = tx->Commit();
  if (!s.ok()) return s;
  return true;
}

TEST(DatabaseFailover, EveryCommitAWriterWasToldOfIsOnThePromotedStandbyAndNoneTwice) {
  const std::string dsn = test::Env("CONVOY_CLUSTER_PG_DSN");
  ASSERT_FALSE(dsn.empty()) << "run through tests/cluster/run_cluster_test.sh";
  constexpr int kWriters = 4, kKeys = 400;
  {
    auto owner = PgConnection::Connect(dsn);
    ASSERT_TRUE(owner.ok()) << owner.status().ToString();
    ASSERT_TRUE(
        (*owner)
            ->ExecScript("DROP TABLE IF EXISTS failover_seen, failover_counts; "
                         "CREATE TABLE failover_seen (k text PRIMARY KEY, writer int NOT NULL); "
                         "CREATE TABLE failover_counts (writer int PRIMARY KEY, n int NOT NULL); "
                         "INSERT INTO failover_counts SELECT g, 0 FROM generate_series(0, " +
                         std::to_string(kWriters - 1) + ") g")
            .ok());
  }
  std::vector<Writer> writers(kWriters);
  std::atomic<int> total{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      auto db = PgConnection::Connect(dsn);
      ASSERT_TRUE(db.ok()) << db.status().ToString();
      for (int i = 0; i < kKeys;) {
        auto r = Apply(**db, w, std::to_string(w) + ":" + std::to_string(i));
        if (!r.ok()) {
          ++writers[w].retried;
          // The primary is gone and the standby not promoted yet: nothing answers for a moment.
          if (!(*db)->healthy()) std::this_thread::sleep_for(50ms);
          ASSERT_LT(writers[w].retried, 2000) << r.status().ToString();
          continue;
        }
        if (*r) ++writers[w].committed;
        ++writers[w].done;
        ++total;
        ++i;
      }
    });
  }
  // A quarter of the work done on the first primary, then the failover under the writers.
  ASSERT_TRUE(test::WaitUntil([&] { return total.load() >= kWriters * kKeys / 4; }, 120s));
  const int before = total.load();
  const auto t0 = std::chrono::steady_clock::now();
  test::Infra("failover pg");
  const double failover_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto& t : threads) t.join();
  ASSERT_LT(before, kWriters * kKeys) << "the failover came after the work: it proved nothing";

  auto db = PgConnection::Connect(dsn);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto port = (*db)->Exec("SELECT inet_server_port()::text, pg_is_in_recovery()::text");
  ASSERT_TRUE(port.ok());
  EXPECT_EQ(port->get(0, 1), "false");
  int retried = 0, committed = 0;
  for (int w = 0; w < kWriters; ++w) {
    auto counts = (*db)->Exec(
        "SELECT (SELECT n FROM failover_counts WHERE writer = $1::int), "
        "(SELECT count(*) FROM failover_seen WHERE writer = $1::int)",
        {std::to_string(w)});
    ASSERT_TRUE(counts.ok()) << counts.status().ToString();
    EXPECT_EQ(writers[w].done, kKeys);
    EXPECT_EQ(counts->get_int(0, 1), kKeys)
        << "writer " << w << ": every key on the new primary (none lost)";
    EXPECT_EQ(counts->get_int(0, 0), kKeys) << "writer " << w << ": each key's change applied once";
    // A COMMIT whose answer the failover took is looked up, not retried into a duplicate: with
    // the lookup every key is committed by an OK (without it, a commit that did happen answers an
    // error and its retry finds the key there).
    EXPECT_EQ(writers[w].committed, kKeys)
        << "writer " << w << ": a commit in doubt was not settled";
    retried += writers[w].retried;
    committed += writers[w].committed;
  }
  std::cout << "failover: " << before << " of " << kWriters * kKeys << " keys done before it, "
            << "fence + promote took " << failover_s << " s, " << retried << " attempts retried, "
            << committed << " keys committed by an OK, " << (kWriters * kKeys - committed)
            << " found already there on retry; now on :" << port->get(0, 0) << "\n";
}

}  // namespace
}  // namespace convoy
