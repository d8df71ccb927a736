// flow.completed is read (it was published to and read by nothing, and grew without a bound):
// each event counts once in convoy_flow_results_total by tenant, flow and outcome, labels only from
// the registry (the tenant conversation wrote) and the loaded flows; an event that does not match
// its schema is parked with the reason.
#include "jobs/results_feed.h"

#include <gtest/gtest.h>

#include "convoy/metrics.h"
#include "testsupport.h"

namespace convoy::conversation {
namespace {

uint64_t Results(const std::string& flow, const std::string& outcome,
                 const std::string& tenant = "unknown") {
  return DefaultRegistry()
      .GetCounter("convoy_flow_results_total", "",
                  "tenant=\"" + tenant + "\",flow=\"" + flow + "\",outcome=\"" + outcome + "\"")
      .Value();
}

Delivery Completed(const std::string& flow, const std::string& outcome, const std::string& who) {
  Delivery d;
  d.queue = "flow.completed";
  d.body =
      R"({"schema":"flow.completed","version":1,"correlation_id":"c1","dedupe_key":"k1",)"
      R"("conversation_key":"106540352242922:16505551234","phone_number_id":"106540352242922",)" +
      who + R"(,"flow":")" + flow + R"(","outcome":")" + outcome +
      R"(","fields":{"email":"a@b.co"},"photos":{}})";
  return d;
}

TEST(ResultsFeed, CountsEachResultByFlowAndOutcomeWithLabelsFromTheLoadedFlowsOnly) {
  auto known = [](const std::string& flow, const std::string& step) {
    return flow == "listing" && (step.empty() || step == "submitted" || step == "cancelled");
  };
  DeliveryHandler feed = ResultsFeed(test::ShippedSchemas(), known);
  const uint64_t submitted = Results("listing", "submitted"), other = Results("other", "other"),
                 odd_step = Results("listing", "other");
  EXPECT_EQ(feed(Completed("listing", "submitted", R"("wa_id":"16505551234")")).kind,
            Disposition::Kind::kAck);
  // A person known by a BSUID alone has no wa_id: still a valid result.
  EXPECT_EQ(feed(Completed("listing", "submitted", R"("user_id":"US.13491208655302741918")")).kind,
            Disposition::Kind::kAck);
  EXPECT_EQ(Results("listing", "submitted"), submitted + 2);
  // The tenant conversation wrote (the number's) labels the result.
  const uint64_t acme = Results("listing", "submitted", "acme");
  EXPECT_EQ(feed(Completed("listing", "submitted", R"("wa_id":"1","tenant":"acme")")).kind,
            Disposition::Kind::kAck);
  EXPECT_EQ(Results("listing", "submitted", "acme"), acme + 1);
  EXPECT_EQ(Results("listing", "submitted"), submitted + 2) << "counted under its tenant alone";
  // Names from outside the deployment's flows never become labels.
  EXPECT_EQ(feed(Completed("someone-elses-flow", "x", R"("wa_id":"1")")).kind,
            Disposition::Kind::kAck);
  EXPECT_EQ(feed(Completed("listing", "made-up", R"("wa_id":"1")")).kind, Disposition::Kind::kAck);
  EXPECT_EQ(Results("other", "other"), other + 1);
  EXPECT_EQ(Results("listing", "other"), odd_step + 1);
  // Not a flow.completed (no person, or another schema): parked with the reason.
  Disposition bad = feed(Completed("listing", "submitted", R"("note":"nobody")"));
  EXPECT_EQ(bad.kind, Disposition::Kind::kDeadLetter);
  EXPECT_NE(bad.reason.find("invalid flow.completed"), std::string::npos) << bad.reason;
  Delivery other_schema;
  other_schema.body = R"({"schema":"media.stored","version":1})";
  EXPECT_EQ(feed(other_schema).kind, Disposition::Kind::kDeadLetter);
}

Delivery Expired(const std::string& flow, const std::string& step, const std::string& extra = "") {
  Delivery d;
  d.queue = "flow.completed";
  d.body =
      R"({"schema":"flow.expired","version":1,"correlation_id":"expiry-1","dedupe_key":"k:flow.expired:1",)"
      R"("conversation_key":"106540352242922:16505551234","phone_number_id":"106540352242922","tenant":"acme",)"
      R"("flow":")" +
      flow + R"(","step":")" + step +
      R"(","on_timeout":"restart","expired_at":"2026-03-01T10:00:00Z",)"
      R"("ended_at":"2026-03-01T10:00:30Z","ended_by":"sweep")" +
      extra + "}";
  return d;
}

uint64_t ExpiredRuns(const std::string& flow, const std::string& step) {
  return DefaultRegistry()
      .GetCounter("convoy_flow_expired_total", "",
                  "tenant=\"acme\",flow=\"" + flow + "\",step=\"" + step + "\"")
      .Value();
}

// flow.expired shares the queue (bound to it on convoy.events): counted by where the person
// stopped, never taken for a result, never parked.
TEST(ResultsFeed, CountsEachExpiredRunByFlowAndTheStepThePersonStoppedAt) {
  auto known = [](const std::string& flow, const std::string& step) {
    return flow == "listing" && (step.empty() || step == "photos");
  };
  DeliveryHandler feed = ResultsFeed(test::ShippedSchemas(), known);
  const uint64_t photos = ExpiredRuns("listing", "photos"), odd = ExpiredRuns("listing", "other"),
                 results = Results("listing", "photos", "acme");
  EXPECT_EQ(feed(Expired("listing", "photos")).kind, Disposition::Kind::kAck);
  EXPECT_EQ(feed(Expired("listing", "made-up")).kind, Disposition::Kind::kAck);
  EXPECT_EQ(ExpiredRuns("listing", "photos"), photos + 1);
  EXPECT_EQ(ExpiredRuns("listing", "other"), odd + 1);
  EXPECT_EQ(Results("listing", "photos", "acme"), results) << "an expired run is no result";
  Disposition bad = feed(Expired("listing", "photos", R"(,"fields":{"email":"a@b.co"})"));
  EXPECT_EQ(bad.kind, Disposition::Kind::kDeadLetter)
      << "flow.expired carries none of the run's fields";
  EXPECT_NE(bad.reason.find("invalid flow.expired"), std::string::npos) << bad.reason;
}

}  // namespace
}  // namespace convoy::conversation
