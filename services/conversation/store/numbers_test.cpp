// Integration: the numbers registry against a real PostgreSQL — the file form, and the processor's
// refusal of updates for numbers it does not serve (the API: api_test.cpp, NumbersApi).
#include "store/numbers.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "convoy/json.h"
#include "convoy/metrics.h"
#include "convoy/topology.h"
#include "engine/engine.h"
#include "engine/flow.h"
#include "engine/processor.h"
#include "testsupport.h"

namespace convoy::conversation {
namespace {

constexpr const char* kSecond = "106540352249999";

std::string NumberJson(const std::string& id, const std::string& extra = "") {
  return R"({"phone_number_id": ")" + id +
         R"(", "tenant": "acme", "waba_id": "102290129340399", )"
         R"("display_phone_number": "+44 20 7946 0000", "graph_token": "env:ACME_GRAPH_TOKEN")" +
         extra + "}";
}

class NumbersDb : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(schemas_.LoadDir(test::SourcePath("proto-schemas")).ok());
    auto c = PgConnection::Connect(db_.dsn());
    ASSERT_TRUE(c.ok());
    conn_ = std::move(*c);
    ASSERT_TRUE(RunMigrations(*conn_, test::SourcePath("deploy/postgres")).ok());
  }
  int64_t Count(const std::string& sql) {
    auto r = conn_->Exec(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->get_int(0, 0) : -1;
  }
  test::TestDatabase db_{"conv_numbers"};
  std::unique_ptr<PgConnection> conn_;
  SchemaRegistry schemas_;
};

std::string TempDir(const std::string& name) {
  std::string dir = ::testing::TempDir() + "/" + test::UniqueName(name);
  EXPECT_EQ(::mkdir(dir.c_str(), 0755), 0);
  return dir;
}

void Write(const std::string& path, const std::string& body) {
  std::ofstream out(path);
  out << body;
}

TEST_F(NumbersDb, TheFileFormLoadsEveryFileAndABadOneNamesItself) {
  EXPECT_TRUE(LoadNumberFiles(*conn_, test::SourcePath("deploy/numbers"), schemas_).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM numbers WHERE phone_number_id = '106540352242922' AND "
                  "status = 'active' "
                  "AND tenant = 'demo' AND source = 'file'"),
            1)
      << "the demo number scripts/run.sh and the fixtures use";
  const std::string dir = TempDir("numbers");
  Write(dir + "/" + kSecond + ".json", NumberJson(kSecond, R"(, "graph_version": "v27.0")"));
  EXPECT_TRUE(LoadNumberFiles(*conn_, dir, schemas_).ok());
  EXPECT_EQ(Count(std::string("SELECT count(*) FROM numbers WHERE phone_number_id = '") + kSecond +
                  "' AND graph_version = 'v27.0'"),
            1);
  EXPECT_EQ(Count("SELECT count(*) FROM numbers WHERE phone_number_id = '106540352242922' AND "
                  "graph_version IS NULL"),
            1)
      << "the demo number calls under the deployment's version";
  // A file named for another number than it holds, and one with a token in clear: refused, named.
  const std::string bad = TempDir("numbers_bad");
  Write(bad + "/106540352241111.json", NumberJson("106540352241111"));
  Write(bad + "/106540352242222.json", NumberJson("106540352243333"));
  Status s = LoadNumberFiles(*conn_, bad, schemas_);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find(bad + "/106540352242222.json: "), std::string::npos) << s.ToString();
  EXPECT_EQ(Count("SELECT count(*) FROM numbers WHERE phone_number_id = '106540352241111'"), 0)
      << "a bad file changes nothing";
  // A default_flow that is not one of the number's flows: the same check as the API's.
  const std::string outside = TempDir("numbers_flows");
  Write(outside + "/106540352244444.json",
        NumberJson("106540352244444", R"(, "flows": ["listing"], "default_flow": "lead")"));
  s = LoadNumberFiles(*conn_, outside, schemas_);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("106540352244444.json: default_flow is not one of flows"),
            std::string::npos)
      << s.ToString();
  EXPECT_EQ(Count("SELECT count(*) FROM numbers WHERE phone_number_id = '106540352244444'"), 0);
}

// A pause says why and since when; a person's PUT active clears both. A file put again at a start
// says active but does not resume a number Meta paused (only a person does, through the API).
TEST_F(NumbersDb, APauseKeepsItsReasonUntilAPersonResumesIt) {
  auto entry = ParseNumber(kSecond, NumberJson(kSecond, R"(, "status": "paused")"), schemas_);
  ASSERT_TRUE(entry.ok()) << entry.status().ToString();
  ASSERT_TRUE(PutNumber(*conn_, *entry, "api").ok());
  auto shown = ShowNumber(*conn_, kSecond);
  ASSERT_TRUE(shown.ok());
  EXPECT_NE(shown->find(R"x("paused_reason":"paused through the registry (api)")x"),
            std::string::npos)
      << *shown;
  EXPECT_NE(shown->find(R"("paused_at":")"), std::string::npos) << *shown;
  // What account_events.cpp and outbound do when Meta stops the number.
  ASSERT_TRUE(
      conn_->Exec("UPDATE numbers SET status = 'active', paused_reason = NULL, paused_at = NULL")
          .ok());
  ASSERT_TRUE(
      conn_
          ->Exec(
              std::string("UPDATE numbers SET status = 'paused', source = 'meta', paused_reason = "
                          "'account_update ACCOUNT_OFFBOARDED', paused_at = now() WHERE "
                          "phone_number_id = '") +
              kSecond + "'")
          .ok());
  const std::string dir = TempDir("numbers_restart");
  Write(dir + "/" + kSecond + ".json", NumberJson(kSecond));  // status active by default
  ASSERT_TRUE(LoadNumberFiles(*conn_, dir, schemas_).ok());
  EXPECT_EQ(
      Count(std::string("SELECT count(*) FROM numbers WHERE phone_number_id = '") + kSecond +
            "' AND status = 'paused' AND paused_reason = 'account_update ACCOUNT_OFFBOARDED'"),
      1)
      << "a start does not resume what Meta paused";
  entry = ParseNumber(kSecond, NumberJson(kSecond), schemas_);
  ASSERT_TRUE(entry.ok());
  ASSERT_TRUE(PutNumber(*conn_, *entry, "api").ok());
  EXPECT_EQ(Count(std::string("SELECT count(*) FROM numbers WHERE phone_number_id = '") + kSecond +
                  "' AND status = 'active' AND paused_reason IS NULL AND paused_at IS NULL AND "
                  "source = 'api'"),
            1)
      << "a person's PUT active resumes it and clears the reason";
}

// 0033: templates_language loses its default, and every en_US becomes NULL (the flow's language),
// since a row that took 0017's default cannot be told from one that said en_US; other languages
// were said outright and stay. A file that says en_US gets it back when it is put again.
TEST(NumbersMigration, TemplatesLanguageEnUsBecomesTheFlowsAndOthersStay) {
  test::TestDatabase db("conv_tl_migration");
  auto c = PgConnection::Connect(db.dsn());
  ASSERT_TRUE(c.ok());
  PgConnection& conn = **c;
  const std::string before = TempDir("migrations_before"),
                    all = test::SourcePath("deploy/postgres");
  for (const std::string& f : test::ListDir(all)) {
    if (f.size() > 4 && f.compare(f.size() - 4, 4, ".sql") == 0 && f < "0033") {
      Write(before + "/" + f, test::ReadFile(all + "/" + f));
    }
  }
  ASSERT_TRUE(RunMigrations(conn, before).ok());
  for (const char* id : {"106540352240001", "106540352240002"})
    test::RegisterNumber(conn, id, "acme");
  ASSERT_TRUE(conn.Exec("UPDATE numbers SET templates_language = 'es' WHERE phone_number_id = "
                        "'106540352240002'")
                  .ok());
  ASSERT_TRUE(RunMigrations(conn, all).ok());
  auto rows = conn.Exec(
      "SELECT coalesce(templates_language, 'NULL') FROM numbers ORDER BY phone_number_id");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ(rows->get(0, 0), "NULL") << "0017's default en_US: the flow's language from now on";
  EXPECT_EQ(rows->get(1, 0), "es");
  test::RegisterNumber(conn, "106540352240003", "acme");
  auto fresh = conn.Exec(
      "SELECT templates_language IS NULL FROM numbers WHERE phone_number_id = '106540352240003'");
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->get(0, 0), "t") << "no default any more";
}

TEST(ConversationService, ABadNumberFileStopsTheStartNamingTheFile) {
  test::TestDatabase db("conv_badnumber");
  const std::string dir = TempDir("numbers_start");
  Write(
      dir + "/106540352242922.json",
      R"({"phone_number_id": "106540352242922", "tenant": "demo", "waba_id": "1", "display_phone_number": "15550783881", )"
      R"("graph_token": "EAAGm0PX4ZCpsBAK"})");
  test::ChildProcess service;
  ASSERT_TRUE(
      service.Start({test::BinaryPath("services/conversation/convoy-conversation"),
                     "--pg_dsn=" + db.dsn(), "--amqp_url=amqp://guest:guest@127.0.0.1:1/%2f",
                     "--http_port=0", "--schema_dir=" + test::SourcePath("proto-schemas"),
                     "--migrations_dir=" + test::SourcePath("deploy/postgres"), "--migrate",
                     "--flows_dir=" + test::SourcePath("deploy/flows"), "--numbers_dir=" + dir},
                    dir + "/service.log"));
  EXPECT_EQ(service.Wait(), 1);
  std::string log = service.Log();
  EXPECT_NE(log.find(dir + "/106540352242922.json: graph_token says where the Graph token is"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("--numbers_dir"), std::string::npos) << log;
  EXPECT_EQ(log.find("EAAGm0PX4ZCpsBAK"), std::string::npos) << "the token reached the log";
}

// The processor: an update for a number the registry does not serve is recorded and counted,
// and nothing else happens.
class UnknownNumbers : public NumbersDb {
 protected:
  void SetUp() override {
    NumbersDb::SetUp();
    test::RegisterNumber(*conn_, test::kDemoNumber);
    auto flows = FlowSet::LoadDir(test::SourcePath("deploy/flows"), schemas_);
    ASSERT_TRUE(flows.ok()) << flows.status().ToString();
    flows_ = std::make_unique<FlowSet>(std::move(*flows));
    engine_ = std::make_unique<Engine>(*flows_, EngineSettings{3600, 100, 600, "lead"});
  }
  // `app`: the Meta app ingress says the webhook came through; empty: none named (an older
  // ingress).
  static Delivery Text(const std::string& number, const std::string& wamid, const std::string& text,
                       const std::string& app = "") {
    const std::string wa_id = "16505551234";
    Delivery d;
    d.queue = queues::kConversationInbound;
    d.body = std::string("{") + (app.empty() ? "" : R"("app":")" + app + R"(",)") +
             R"("schema":"inbound.message","version":1,"correlation_id":"corr-)" + wamid +
             R"(","received_at":"2026-01-01T00:00:00.000Z","phone_number_id":")" + number +
             R"(","wa_id":")" + wa_id + R"(","conversation_key":")" + number + ":" + wa_id +
             R"(","profile_name":"Kerry","message":{"from":")" + wa_id + R"(","id":")" + wamid +
             R"(","timestamp":"1750000000","type":"text","text":{"body":")" + text + R"("}}})";
    d.headers[headers::kDedupeKey] = wamid;
    d.headers[headers::kCorrelationId] = "corr-" + wamid;
    d.headers[headers::kConversationKey] = number + ":" + wa_id;
    return d;
  }
  static uint64_t Counted(const char* status) {
    return DefaultRegistry()
        .GetCounter("convoy_conversation_unknown_number_updates_total", "",
                    std::string("status=\"") + status + "\"")
        .Value();
  }
  // Nothing of the number's reached a conversation, the dedupe table, the audit or the outbox.
  void ExpectUntouched(const std::string& number) {
    EXPECT_EQ(Count("SELECT count(*) FROM conversations WHERE phone_number_id = '" + number + "'"),
              0);
    EXPECT_EQ(Count("SELECT count(*) FROM inbound_messages WHERE conversation_key LIKE '" + number +
                    ":%'"),
              0);
    EXPECT_EQ(
        Count("SELECT count(*) FROM transitions WHERE conversation_key LIKE '" + number + ":%'"),
        0);
    EXPECT_EQ(Count("SELECT count(*) FROM outbox WHERE conversation_key LIKE '" + number + ":%'"),
              0);
  }
  std::unique_ptr<FlowSet> flows_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(UnknownNumbers, AnUnknownNumbersUpdateIsRecordedCountedAndNeverApplied) {
  Processor p(*conn_, schemas_, *engine_, nullptr);
  const uint64_t before = Counted("unknown");
  const std::string stranger = "106540352240000";
  EXPECT_EQ(p.Handle(Text(stranger, "wamid.unk1", "SELL")).kind, Disposition::Kind::kAck);
  EXPECT_EQ(p.Handle(Text(stranger, "wamid.unk1", "SELL")).kind,
            Disposition::Kind::kAck);  // Meta again
  EXPECT_EQ(Counted("unknown") - before, 1u);
  EXPECT_EQ(
      Count("SELECT count(*) FROM unknown_number_updates WHERE phone_number_id = '" + stranger +
            "' AND status = 'unknown' AND kind = 'message' AND dedupe_key_sha256 = "
            "encode(sha256('wamid.unk1'), 'hex')"),
      1);
  EXPECT_EQ(
      Count("SELECT count(*) FROM unknown_number_updates WHERE dedupe_key_sha256 LIKE '%wamid%'"),
      0);
  ExpectUntouched(stranger);
  // The registered number is answered as ever.
  EXPECT_EQ(p.Handle(Text(test::kDemoNumber, "wamid.known1", "hello")).kind,
            Disposition::Kind::kAck);
  EXPECT_GE(Count(std::string("SELECT count(*) FROM outbox WHERE conversation_key LIKE '") +
                  test::kDemoNumber + ":%'"),
            1);
}

TEST_F(UnknownNumbers, AnOffboardedNumberIsRefusedAndAPausedOneStillApplied) {
  const std::string gone = "106540352240001", paused = "106540352240002";
  test::RegisterNumber(*conn_, gone, "acme", "offboarded");
  test::RegisterNumber(*conn_, paused, "acme", "paused");
  Processor p(*conn_, schemas_, *engine_, nullptr);
  const uint64_t before = Counted("offboarded");
  // In one batch with a known number's update: each gets its own fate.
  auto out = p.HandleBatch({Text(gone, "wamid.off1", "hello"),
                            Text(test::kDemoNumber, "wamid.known2", "hello"),
                            Text(paused, "wamid.paused1", "hello")});
  ASSERT_EQ(out.size(), 3u);
  for (const auto& d : out) EXPECT_EQ(d.kind, Disposition::Kind::kAck);
  EXPECT_EQ(Counted("offboarded") - before, 1u);
  EXPECT_EQ(Count("SELECT count(*) FROM unknown_number_updates WHERE phone_number_id = '" + gone +
                  "' AND status = 'offboarded'"),
            1);
  ExpectUntouched(gone);
  EXPECT_GE(Count(std::string("SELECT count(*) FROM outbox WHERE conversation_key LIKE '") +
                  test::kDemoNumber + ":%'"),
            1);
  // paused: applied like active in this slice (its sends are not held yet).
  EXPECT_GE(Count("SELECT count(*) FROM outbox WHERE conversation_key LIKE '" + paused + ":%'"), 1);
}

// A user's update for a registered number that came through another Meta app than the number's is
// refused like an unknown number's: that app's secret vouches for its own numbers, not this one.
TEST_F(UnknownNumbers, AnUpdateThroughAnotherAppThanTheNumbersIsRefused) {
  auto acme = ParseNumber(kSecond, NumberJson(kSecond, R"(, "app": "acme")"), schemas_);
  ASSERT_TRUE(acme.ok()) << acme.status().ToString();
  ASSERT_TRUE(PutNumber(*conn_, *acme, "api").ok());
  Processor p(*conn_, schemas_, *engine_, nullptr);
  const uint64_t before = Counted("wrong_app");
  EXPECT_EQ(p.Handle(Text(kSecond, "wamid.wrong1", "SELL", "default")).kind,
            Disposition::Kind::kAck);
  EXPECT_EQ(p.Handle(Text(kSecond, "wamid.wrong1", "SELL", "default")).kind,
            Disposition::Kind::kAck);  // Meta again
  // No app named (an older ingress, or a message queued before it stamped one): the app default.
  EXPECT_EQ(p.Handle(Text(kSecond, "wamid.wrong2", "SELL")).kind, Disposition::Kind::kAck);
  auto batch = p.HandleBatch({Text(test::kDemoNumber, "wamid.wrong3", "hello", "acme"),
                              Text(test::kDemoNumber, "wamid.right1", "hello", "default")});
  for (const auto& d : batch) EXPECT_EQ(d.kind, Disposition::Kind::kAck);
  EXPECT_EQ(Counted("wrong_app") - before, 3u);
  EXPECT_EQ(
      Count(std::string("SELECT count(*) FROM unknown_number_updates WHERE phone_number_id = '") +
            kSecond + "' AND status = 'wrong_app' AND app = 'default' AND kind = 'message'"),
      2);
  EXPECT_EQ(
      Count(std::string("SELECT count(*) FROM unknown_number_updates WHERE phone_number_id = '") +
            test::kDemoNumber +
            "' AND status = 'wrong_app' AND app = 'acme' AND "
            "dedupe_key_sha256 = encode(sha256('wamid.wrong3'), 'hex')"),
      1);
  ExpectUntouched(kSecond);
  EXPECT_EQ(Count(std::string(
                "SELECT count(*) FROM inbound_messages WHERE dedupe_key IN ('wamid.wrong3', "
                "'wamid.right1')")),
            1)
      << "the demo number's update through its own app is applied, the other app's is not";
  // Through its own app, the number is answered as ever.
  EXPECT_EQ(p.Handle(Text(kSecond, "wamid.right2", "SELL", "acme")).kind, Disposition::Kind::kAck);
  EXPECT_GE(Count(std::string("SELECT count(*) FROM outbox WHERE conversation_key LIKE '") +
                  kSecond + ":%'"),
            1);
  // An internal event names no app: convoy made it from an update already let through.
  Delivery sent;
  sent.queue = queues::kConversationEvents;
  sent.body =
      std::string(
          R"({"schema":"outbound.sent","version":1,"correlation_id":"corr-sent","dedupe_key":"reply-1",)") +
      R"("conversation_key":")" + kSecond + R"(:16505551234","wamid":"wamid.sent1"})";
  sent.headers[headers::kDedupeKey] = "outbound.sent:reply-1";
  EXPECT_EQ(p.Handle(sent).kind, Disposition::Kind::kAck);
  EXPECT_EQ(
      Count("SELECT count(*) FROM inbound_messages WHERE dedupe_key = 'outbound.sent:reply-1'"), 1);
  EXPECT_EQ(Counted("wrong_app") - before, 3u);
}

}  // namespace
}  // namespace convoy::conversation
