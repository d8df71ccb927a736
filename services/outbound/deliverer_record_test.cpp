// Integration: a sink's 2xx is recorded once, whatever the database says at that moment — against a
// real PostgreSQL (the deliveries table refusing the record, as it does while it restarts) and the
// fake webhook receiver. The deliverer is called as the consumer calls it, each disposition's
// headers carried to the next delivery as the delay tiers and a replay carry them.
#include <gtest/gtest.h>

#include "convoy/crypto.h"
#include "convoy/pg.h"
#include "convoy/startup.h"
#include "convoy/topology.h"
#include "deliverer.h"
#include "fake_sink.h"
#include "testsupport.h"

namespace convoy::outbound {
namespace {

using namespace std::chrono_literals;

constexpr const char* kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

std::string Command(const std::string& result_id) {
  return R"({"schema":"outbound.deliver","version":1,"correlation_id":"corr-)" + result_id +
         R"(","dedupe_key":")" + result_id +
         R"(:deliver","conversation_key":"106540352242922:16505550000","phone_number_id":"106540352242922",)"
         R"("result_id":")" +
         result_id +
         R"(","sink":"crm","type":"listing.submitted","flow":"listing","outcome":"submitted","completed_at":1764500000,)"
         R"("wa_id":"16505550000","fields":{"email":"kerry@example.com","description":"Nike running shoes, size 42, used, $35",)"
         R"("brand":"Nike","price":"35","condition":"used"},"photos":[]})";
}

// The next delivery of a command that went back with `disp`, as the consumer republishes it.
Delivery Again(const Delivery& d, const Disposition& disp) {
  Delivery next = d;
  for (const auto& [name, value] : disp.headers) {
    if (value.empty()) {
      next.headers.erase(name);
    } else {
      next.headers[name] = value;
    }
  }
  return next;
}

class DeliveryRecord : public ::testing::Test {
 protected:
  DeliveryRecord() : db_("delivrec"), receiver_({*WebhookSecretKey(kSecret)}) {}

  void SetUp() override {
    ASSERT_TRUE(receiver_.Start().ok());
    Status s = PrepareDatabaseService(test::SourcePath("proto-schemas"), db_.dsn(),
                                      test::SourcePath("deploy/postgres"),
                                      /*migrate=*/true, &base_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    auto owner = PgConnection::Connect(db_.dsn());
    ASSERT_TRUE(owner.ok()) << owner.status().ToString();
    owner_ = std::move(*owner);
    auto conn = PgConnection::Connect(db_.RoleDsn("convoy_outbound"));  // as outbound runs
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    conn_ = std::move(*conn);
    Sink sink;
    sink.name = "crm";
    sink.url = receiver_.url();
    sink.keys = {*WebhookSecretKey(kSecret)};
    sink.allow_private = true;
    sink.timeout = 5s;
    sinks_.sinks.emplace(sink.name, sink);
  }

  void StartDeliverer(int record_attempts) {
    DeliverySettings settings;
    settings.schedule = {0ms, 0ms, 0ms};
    settings.record_attempts = record_attempts;
    deliverer_ = std::make_unique<Deliverer>(*conn_, base_.schemas, sinks_, settings, throttle_);
  }

  // The deliveries table refuses to mark a delivery delivered (testsupport.h RefuseUpdates).
  void RefuseRecords(int times) {
    test::RefuseUpdates(*owner_, "deliveries",
                        "NEW.status = 'delivered' AND OLD.status <> 'delivered'", times);
  }
  void StopRefusing() {
    ASSERT_TRUE(owner_->Exec("UPDATE fault_switch SET refusing = false", {}).ok());
  }
  int64_t Refused() { return std::atoll(Row("SELECT " + test::kRefusedSoFar).c_str()); }
  std::string Row(const std::string& sql) {
    auto r = owner_->Exec(sql, {});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && !r->empty() ? r->get(0, 0) : "";
  }

  // The first delivery of result_id's command, handled.
  Disposition First(const std::string& result_id, Delivery* d) {
    d->queue = queues::kOutboundDeliver;
    d->body = Command(result_id);
    return deliverer_->Handle(*d);
  }

  test::TestDatabase db_;
  fake::FakeReceiver receiver_;
  DatabaseService base_;
  std::unique_ptr<PgConnection> owner_, conn_;
  SinkSet sinks_;
  shopify::Throttle throttle_;
  std::unique_ptr<Deliverer> deliverer_;
};

// The receiver answers 200 and the record of it fails twice: the command goes back through the
// delay tiers carrying the answer, the third delivery records it, and the receiver was called once.
TEST_F(DeliveryRecord, ASinksYesWhoseRecordFailsIsRecordedWithoutASecondPost) {
  StartDeliverer(8);
  RefuseRecords(2);
  Delivery d;
  Disposition first = First("rec-1", &d);
  ASSERT_EQ(first.kind, Disposition::Kind::kDelay) << first.reason;
  EXPECT_NE(first.reason.find("recording the delivery the sink took (HTTP 200)"), std::string::npos)
      << first.reason;
  EXPECT_EQ(first.headers["x-sink-took"], "200");
  EXPECT_EQ(first.headers["x-record-attempts"], "1");
  EXPECT_EQ(receiver_.Count(), 1u);
  EXPECT_EQ(Row("SELECT status FROM deliveries WHERE result_id = 'rec-1'"), "attempting");

  Delivery second = Again(d, first);
  Disposition again = deliverer_->Handle(second);
  ASSERT_EQ(again.kind, Disposition::Kind::kDelay) << again.reason;
  EXPECT_EQ(again.headers["x-record-attempts"], "2");

  Disposition done = deliverer_->Handle(Again(second, again));
  EXPECT_EQ(done.kind, Disposition::Kind::kAck) << done.reason;
  EXPECT_EQ(Refused(), 2);
  EXPECT_EQ(Row("SELECT status || ' ' || last_status_code || ' ' || attempts FROM deliveries "
                "WHERE result_id = 'rec-1'"),
            "delivered 200 1");
  EXPECT_EQ(Row("SELECT count(*) FROM delivery_attempts"), "1");
  EXPECT_EQ(receiver_.Count(), 1u) << "the record was retried, not the POST";

  // A duplicate of the command (the outbox's sweeper) is acked without a call.
  EXPECT_EQ(deliverer_->Handle(d).kind, Disposition::Kind::kAck);
  EXPECT_EQ(receiver_.Count(), 1u);
}

// The record keeps failing: after record_attempts the command is parked carrying the answer, and a
// replay (the parked message with its headers) records it without a second POST.
TEST_F(DeliveryRecord, ARecordThatKeepsFailingIsParkedWithTheAnswerAndAReplayFinishesIt) {
  StartDeliverer(2);
  RefuseRecords(0);
  Delivery d;
  Disposition first = First("rec-2", &d);
  ASSERT_EQ(first.kind, Disposition::Kind::kDelay) << first.reason;
  Delivery second = Again(d, first);
  Disposition parked = deliverer_->Handle(second);
  ASSERT_EQ(parked.kind, Disposition::Kind::kDeadLetter) << parked.reason;
  EXPECT_NE(parked.reason.find("the sink took the delivery (HTTP 200) but recording it failed 2 "
                               "times"),
            std::string::npos)
      << parked.reason;
  EXPECT_NE(parked.reason.find("a replay records it without delivering again"), std::string::npos);
  EXPECT_EQ(parked.headers["x-sink-took"], "200");
  EXPECT_EQ(receiver_.Count(), 1u);

  StopRefusing();
  EXPECT_EQ(deliverer_->Handle(Again(second, parked)).kind, Disposition::Kind::kAck);
  EXPECT_EQ(Row("SELECT status FROM deliveries WHERE result_id = 'rec-2'"), "delivered");
  EXPECT_EQ(receiver_.Count(), 1u) << "the replay recorded the delivery, it did not POST again";
  EXPECT_EQ(Refused(), 2);
}

}  // namespace
}  // namespace convoy::outbound
