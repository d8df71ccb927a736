// Integration: account_update webhooks through a real RabbitMQ (convoy.inbound/account →
// conversation.events, as convoy-conversation consumes it) into a real PostgreSQL registry.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "convoy/consumer_group.h"
#include "convoy/metrics.h"
#include "convoy/rapidjson_util.h"
#include "convoy/topology.h"
#include "engine/account_events.h"
#include "engine/engine.h"
#include "engine/flow.h"
#include "engine/processor.h"
#include "testsupport.h"

namespace convoy::conversation {
namespace {

using namespace std::chrono_literals;

constexpr const char* kWaba =
    "102290129340398";  // the pywa fixtures' entry id (test::RegisterNumber's WABA)
constexpr const char* kOtherWaba = "102290129349999";

uint64_t Counted(const char* action) {
  return DefaultRegistry()
      .GetCounter("convoy_conversation_account_updates_total",
                  "account_update webhooks by what convoy did: paused, not_pausing, informational, "
                  "unknown_waba, "
                  "duplicate.",
                  std::string("action=\"") + action + "\"")
      .Value();
}

class AccountEvents : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(schemas_.LoadDir(test::SourcePath("proto-schemas")).ok());
    auto c = PgConnection::Connect(db_.dsn());
    ASSERT_TRUE(c.ok());
    sql_ = std::move(*c);
    ASSERT_TRUE(RunMigrations(*sql_, test::SourcePath("deploy/postgres")).ok());
    auto flows = FlowSet::LoadDir(test::SourcePath("deploy/flows"), schemas_);
    ASSERT_TRUE(flows.ok()) << flows.status().ToString();
    flows_ = std::make_unique<FlowSet>(std::move(*flows));
    engine_ = std::make_unique<Engine>(*flows_, EngineSettings{3600, 100, 600, "lead"});
    pub_.Start();
    ASSERT_TRUE(pub_.WaitConnected(20s));
    // As convoy-conversation wires conversation.events: batches into a Processor.
    const std::string dsn = db_.dsn();
    ASSERT_TRUE(consumers_
                    .AddBatch({amqp_, queues::kConversationEvents, 16, 5, 8}, 2,
                              [this, dsn]() -> Result<BatchHandler> {
                                auto db = PgConnection::Connect(dsn);
                                if (!db.ok()) return db.status();
                                std::shared_ptr<PgConnection> conn(std::move(*db));
                                auto p =
                                    std::make_shared<Processor>(*conn, schemas_, *engine_, nullptr);
                                return BatchHandler([conn, p](const std::vector<Delivery>& b) {
                                  return p->HandleBatch(b);
                                });
                              })
                    .ok());
    consumers_.Start();
    ASSERT_TRUE(test::WaitUntil([&] { return consumers_.connected(); }, 20s));
  }
  void TearDown() override { consumers_.Stop(); }

  void Register(const std::string& id, const std::string& waba, const std::string& status) {
    auto r = sql_->Exec(
        "INSERT INTO numbers (phone_number_id, tenant, waba_id, display_phone_number, "
        "graph_token_ref, "
        "status, source) VALUES ($1, 't', $2, '+1 555 0100', 'env:T', $3, 'api')",
        {id, waba, status});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  // What ingress publishes for the fixture's one change (webhook.cpp SplitAccountUpdate).
  void Publish(const std::string& fixture) {
    rapidjson::Document doc;
    doc.Parse(
        test::ReadFile(test::FixturePath("webhooks/pywa/account_update__" + fixture + ".json"))
            .c_str());
    ASSERT_FALSE(doc.HasParseError()) << fixture;
    const rapidjson::Value& entry = doc["entry"][0];
    const rapidjson::Value& value = entry["changes"][0]["value"];
    std::string waba = JsonStr(JsonMember(value, "waba_info"), "waba_id");
    if (waba.empty()) waba = JsonStr(entry, "id");
    const std::string event = JsonStr(value, "event"),
                      time = std::to_string(entry["time"].GetInt64());
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    value.Accept(w);
    AmqpMessage m;
    m.exchange = exchanges::kInbound;
    m.routing_key = "account";
    m.message_id = "account:" + JsonStr(entry, "id") + ":" + event + ":" + time;
    m.body = R"({"schema":"inbound.account","version":1,"correlation_id":"corr-)" + fixture +
             R"(","received_at":"2026-12-07T00:00:00Z","entry_id":")" + JsonStr(entry, "id") +
             R"(","waba_id":")" + waba + R"(","event":")" + event + R"(","time":)" + time +
             R"(,"account_update":)" + buf.GetString() + "}";
    m.headers = {{headers::kDedupeKey, m.message_id}, {headers::kCorrelationId, "corr-" + fixture}};
    ASSERT_TRUE(schemas_.Validate(m.body).ok()) << m.body;
    ASSERT_TRUE(pub_.PublishAndWait(std::move(m), 10s).ok());
  }
  int64_t Count(const std::string& sql) {
    auto r = sql_->Exec(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->get_int(0, 0) : -1;
  }
  // Whether the update's record is there (applied by a consumer, committed).
  bool Recorded(const std::string& event, int64_t rows = 1) {
    return test::WaitUntil(
        [&] {
          return Count("SELECT count(*) FROM account_updates WHERE event = '" + event + "'") ==
                 rows;
        },
        20s);
  }

  test::TestVhost vhost_{"account_events"};
  test::TestDatabase db_{"account_events"};
  AmqpOptions amqp_{vhost_.url(), "account-events-test"};
  Publisher pub_{amqp_};
  ConsumerGroup consumers_{pub_};
  SchemaRegistry schemas_;
  std::unique_ptr<PgConnection> sql_;
  std::unique_ptr<FlowSet> flows_;
  std::unique_ptr<Engine> engine_;
};

// A restriction on messaging pauses every active number of the WABA, with the reason; not another
// WABA's, not an offboarded one. A redelivery changes nothing; reconnection does not resume them.
TEST_F(AccountEvents, ARestrictionPausesItsWabasNumbersWithTheReasonAndNoOtherWabas) {
  Register("106540352250001", kWaba, "active");
  Register("106540352250002", kWaba, "active");
  Register("106540352250003", kWaba, "offboarded");
  Register("106540352250004", kOtherWaba, "active");
  const uint64_t paused_before = Counted("paused"), duplicates_before = Counted("duplicate");
  Publish("account_restriction");
  ASSERT_TRUE(Recorded("ACCOUNT_RESTRICTION"));
  EXPECT_EQ(Count(std::string("SELECT count(*) FROM numbers WHERE waba_id = '") + kWaba +
                  "' AND status = 'paused' AND source = 'meta' AND paused_at IS NOT NULL AND "
                  "paused_reason = "
                  "'account_update ACCOUNT_RESTRICTION: RESTRICTED_BIZ_INITIATED_MESSAGING, "
                  "RESTRICTED_ADD_PHONE_NUMBER_ACTION'"),
            2);
  EXPECT_EQ(Count("SELECT count(*) FROM numbers WHERE phone_number_id = '106540352250003' AND "
                  "status = 'offboarded'"),
            1);
  EXPECT_EQ(Count("SELECT count(*) FROM numbers WHERE phone_number_id = '106540352250004' AND "
                  "status = 'active'"),
            1)
      << "another WABA's number is not paused";
  EXPECT_EQ(Count("SELECT numbers_paused FROM account_updates WHERE event = 'ACCOUNT_RESTRICTION'"),
            2);
  EXPECT_EQ(Counted("paused") - paused_before, 1u);

  // Meta again (at-least-once), then a reconnection: neither changes the registry.
  ASSERT_TRUE(
      sql_->Exec("UPDATE numbers SET status = 'active', paused_reason = NULL, paused_at = NULL "
                 "WHERE phone_number_id = '106540352250002'")
          .ok());  // a person resumed this one meanwhile
  Publish("account_restriction");
  ASSERT_TRUE(test::WaitUntil([&] { return Counted("duplicate") > duplicates_before; }, 20s));
  Publish("account_reconnected");
  ASSERT_TRUE(Recorded("ACCOUNT_RECONNECTED"));
  EXPECT_EQ(Count("SELECT count(*) FROM numbers WHERE phone_number_id = '106540352250001' AND "
                  "status = 'paused'"),
            1)
      << "reconnected is no resume: a person decides";
  EXPECT_EQ(Count("SELECT count(*) FROM numbers WHERE phone_number_id = '106540352250002' AND "
                  "status = 'active'"),
            1)
      << "a redelivery does not pause again what a person resumed";
  EXPECT_EQ(Count("SELECT count(*) FROM account_updates"), 2);
}

// An event for a WABA the registry does not know (PARTNER_REMOVED names the customer's WABA in
// waba_info) and an informational one are recorded and counted, and change nothing.
TEST_F(AccountEvents, UnknownWabasAndInformationalEventsAreCountedAndChangeNothing) {
  Register("106540352250011", kWaba, "active");
  const uint64_t unknown_before = Counted("unknown_waba"), info_before = Counted("informational");
  Publish("partner_removed");  // waba_info.waba_id 980198427658004: not registered
  Publish("pricing_tiering_update");
  ASSERT_TRUE(Recorded("PARTNER_REMOVED"));
  ASSERT_TRUE(Recorded("VOLUME_BASED_PRICING_TIER_UPDATE"));
  EXPECT_EQ(Count("SELECT count(*) FROM account_updates WHERE waba_id = '980198427658004' AND "
                  "action = 'unknown_waba'"),
            1);
  EXPECT_EQ(Counted("unknown_waba") - unknown_before, 1u);
  EXPECT_EQ(Counted("informational") - info_before, 1u);
  EXPECT_EQ(Count("SELECT count(*) FROM numbers WHERE status = 'active'"), 1) << "nothing paused";
  EXPECT_EQ(Count("SELECT count(*) FROM conversations"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM outbox"), 0);
}

}  // namespace
}  // namespace convoy::conversation
