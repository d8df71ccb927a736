// End to end, issue 29's proof for "runs end": a listing abandoned for longer than its inactivity
// timeout (--inactivity_timeout_seconds=10 here), with conversation killed and started again
// meanwhile, ends — its due time was in PostgreSQL, so the restarted service's sweeper ends it,
// flow.expired reaches conversation's reader of flow.completed and is counted, nothing is said to
// the seller — and the seller's next message starts a new run instead of answering the old step.
#include <gtest/gtest.h>

#include "convoy/pg.h"
#include "stack.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

TEST(RunTimeoutE2e, AListingAbandonedPastItsTimeoutAcrossARestartStartsANewRunAtTheNextMessage) {
  test::Stack env(
      "e2e_run_timeout", {},
      {{"conversation", {"--inactivity_timeout_seconds=10", "--sweep_interval_seconds=1"}}});
  const std::string seller = "16505550093", key = "106540352242922:" + seller;
  env.StartListing(seller);  // waiting for photos
  env.Kill("conversation");
  auto db = PgConnection::Connect(env.db.dsn());
  ASSERT_TRUE(db.ok());
  auto one = [&](const std::string& sql) {
    auto r = (*db)->Exec(sql, {key});
    return r.ok() && !r->empty() ? r->get(0, 0) : "";
  };
  // Until the run is due (a condition on the database's clock, not a sleep).
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        return one("SELECT (run_expires_at <= now())::text FROM conversations WHERE "
                   "conversation_key = $1") == "true";
      },
      30s));
  EXPECT_EQ(one("SELECT flow FROM conversations WHERE conversation_key = $1"), "listing")
      << "nobody ended it while the service was down";
  env.Launch("conversation");
  ASSERT_TRUE(env.WaitReady("conversation", 60s));
  // The restarted service's sweeper ends it, and the relay publishes flow.expired (bound: an
  // unroutable event would come back and hold the outbox).
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        return one("SELECT count(*) FROM outbox WHERE conversation_key = $1 AND routing_key = "
                   "'flow.expired' "
                   "AND published_at IS NOT NULL") == "1";
      },
      30s))
      << env.services["conversation"]->process.Log();
  EXPECT_EQ(one("SELECT coalesce(flow, 'none') FROM conversations WHERE conversation_key = $1"),
            "none");
  EXPECT_EQ(one("SELECT note || ' ' || from_step FROM transitions WHERE conversation_key = $1 AND "
                "note = 'expired'"),
            "expired listing/photos");
  const std::string counted =
      R"(convoy_flow_expired_total{tenant="demo",flow="listing",step="photos"})";
  EXPECT_TRUE(test::WaitUntil([&] { return env.Metric("conversation", counted) == 1; }, 30s))
      << "read from flow.completed and counted, not parked";
  EXPECT_EQ(env.graph.SentTexts(seller).size(), 3u) << "nothing is said to the seller at expiry";

  // "SELL" answered the photo step ("Send photos...") before; now it starts a new listing.
  ASSERT_EQ(env.PostMessage(seller, test::TextMessage("SELL")), 200);
  ASSERT_TRUE(env.WaitSends(seller, 4)) << env.graph.RequestsJson();
  EXPECT_EQ(env.graph.SentTexts(seller).at(3), test::Stack::ListingOpening().at(0));
  EXPECT_EQ(
      one("SELECT flow || '/' || (state->>'step') FROM conversations WHERE conversation_key = $1"),
      "listing/email");
  ASSERT_TRUE(env.Drained(30s));
  EXPECT_EQ(one("SELECT count(*) FROM outbox WHERE conversation_key = $1 AND routing_key = "
                "'flow.expired'"),
            "1")
      << "expired once";
}

}  // namespace
}  // namespace convoy
