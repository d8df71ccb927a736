// Integration: a run's inactivity timeout against a real PostgreSQL. The sweeper ends an overdue
// run once — its flow.expired in the outbox once, audited `expired` — and never one a message
// touched after its due time, even when the message's transaction holds the row as the sweeper
// reaches it. Migration 0032 gives runs already in progress the default due time.
#include "engine/run_timeouts.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstdlib>
#include <thread>

#include "convoy/json.h"
#include "convoy/rapidjson_util.h"
#include "engine/flow.h"
#include "testsupport.h"

namespace convoy::conversation {
namespace {

using namespace std::chrono_literals;

constexpr const char* kAna = "106540352242922:16505550001";

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class RunTimeoutsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = PgConnection::Connect(db_.dsn());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    conn_ = std::move(*c);
    ASSERT_TRUE(RunMigrations(*conn_, test::SourcePath("deploy/postgres")).ok());
    test::RegisterNumber(*conn_, test::kDemoNumber, "acme");
    auto flows = FlowSet::LoadDir(test::SourcePath("deploy/flows"), test::ShippedSchemas());
    ASSERT_TRUE(flows.ok()) << flows.status().ToString();
    flows_ = std::make_unique<FlowSet>(std::move(*flows));
    engine_ = std::make_unique<Engine>(*flows_, EngineSettings{});
  }
  // A conversation on the listing's email step, last written to by the person `ago` s ago, due
  // `due_in` s from now (negative: overdue).
  void Listing(const std::string& key, int due_in, int64_t ago = 90000) {
    const int64_t at = Now() - ago;
    const std::string state = R"({"flow":"listing","step":"email","entered_at":)" +
                              std::to_string(at) + R"(,"messages":1,"last_inbound_at":)" +
                              std::to_string(at) + R"(,"history":[["email",)" + std::to_string(at) +
                              "]]}";
    auto r = conn_->Exec(
        "INSERT INTO conversations (conversation_key, phone_number_id, wa_id, flow, state, "
        "run_expires_at) "
        "VALUES ($1, $2, split_part($1, ':', 2), 'listing', $3::jsonb, now() + make_interval(secs "
        "=> $4::int))",
        {key, std::string(test::kDemoNumber), state, std::to_string(due_in)});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  std::string One(const std::string& sql, const PgParams& params = {}) {
    auto r = conn_->Exec(sql, params);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && !r->empty() ? r->get(0, 0) : "?";
  }
  std::string Events(const std::string& key) {
    return One(
        "SELECT count(*) FROM outbox WHERE conversation_key = $1 AND routing_key = 'flow.expired'",
        {key});
  }
  test::TestDatabase db_{"run_timeouts"};
  std::unique_ptr<PgConnection> conn_;
  std::unique_ptr<FlowSet> flows_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(RunTimeoutsTest, TheSweeperEndsAnOverdueRunOnceWithItsEventInTheOutboxOnce) {
  Listing(kAna, -60);
  Listing("106540352242922:16505550002", 3600);  // not due yet
  auto swept = ExpireDueRuns(*conn_, *engine_, Now());
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(swept->expired, 1u);
  EXPECT_EQ(swept->touched, 0u);
  EXPECT_EQ(One("SELECT coalesce(flow, 'none') || ' ' || coalesce(run_expires_at::text, 'cleared') "
                "FROM conversations "
                "WHERE conversation_key = $1",
                {kAna}),
            "none cleared");
  EXPECT_EQ(One("SELECT from_step || ' > ' || to_step || ' ' || note FROM transitions WHERE "
                "conversation_key = $1",
                {kAna}),
            "listing/email > idle expired");
  ASSERT_EQ(Events(kAna), "1");
  const std::string body = One("SELECT body FROM outbox WHERE conversation_key = $1", {kAna});
  rapidjson::Document doc;
  Status valid = test::ShippedSchemas().ValidateAs("flow.expired", 1, body, &doc);
  ASSERT_TRUE(valid.ok()) << valid.ToString() << "\n" << body;
  EXPECT_EQ(JsonStr(doc, "flow"), "listing");
  EXPECT_EQ(JsonStr(doc, "step"), "email");
  EXPECT_EQ(JsonStr(doc, "tenant"), "acme");
  EXPECT_EQ(JsonStr(doc, "on_timeout"), "restart");
  EXPECT_EQ(JsonStr(doc, "ended_by"), "sweep");
  EXPECT_EQ(One("SELECT exchange || ' ' || (published_at IS NULL)::text FROM outbox WHERE "
                "conversation_key = $1",
                {kAna}),
            "convoy.events true")
      << "the relay publishes it";
  // Again, and from a second replica at once: nothing more.
  auto other = PgConnection::Connect(db_.dsn());
  ASSERT_TRUE(other.ok());
  for (PgConnection* replica : {conn_.get(), other->get()}) {
    auto again = ExpireDueRuns(*replica, *engine_, Now());
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(again->expired, 0u);
  }
  EXPECT_EQ(Events(kAna), "1");
  EXPECT_EQ(One("SELECT count(*) FROM transitions WHERE note = 'expired'"), "1");
  EXPECT_EQ(
      One("SELECT flow FROM conversations WHERE conversation_key = '106540352242922:16505550002'"),
      "listing");
}

// The message that arrived just before wins: it holds the row, moving the due time on, when the
// sweeper (which found the run overdue a moment earlier) asks for the row; the sweeper waits for
// it, looks again under the lock, and leaves the run alone.
TEST_F(RunTimeoutsTest, ARunTouchedAfterItsDueTimeIsNotEnded) {
  Listing(kAna, -60);
  auto message = PgConnection::Connect(db_.dsn());
  ASSERT_TRUE(message.ok());
  PgConnection& m = **message;
  ASSERT_TRUE(m.Begin().ok());
  ASSERT_TRUE(
      m.Exec("SELECT 1 FROM conversations WHERE conversation_key = $1 FOR UPDATE", {kAna}).ok());
  ASSERT_TRUE(
      m.Exec("UPDATE conversations SET run_expires_at = now() + interval '1 day', "
             "state = jsonb_set(state, '{step}', '\"description\"') WHERE conversation_key = $1",
             {kAna})
          .ok());
  auto sweeper_conn = PgConnection::Connect(db_.dsn());
  ASSERT_TRUE(sweeper_conn.ok());
  const std::string pid = (*sweeper_conn)->Exec("SELECT pg_backend_pid()::text")->get(0, 0);
  Result<std::string> note = std::string("not run");
  std::thread sweeper([&] { note = ExpireRunIfDue(**sweeper_conn, *engine_, kAna, Now()); });
  // The sweeper is waiting for the row.
  bool waiting = false;
  for (auto deadline = std::chrono::steady_clock::now() + 10s;
       !waiting && std::chrono::steady_clock::now() < deadline;) {
    waiting = One("SELECT coalesce(wait_event_type, '') FROM pg_stat_activity WHERE pid = $1::int",
                  {pid}) == "Lock";
    if (!waiting) std::this_thread::sleep_for(10ms);  // polling the condition, with a deadline
  }
  EXPECT_TRUE(waiting) << "the sweeper should be waiting for the message's row lock";
  ASSERT_TRUE(m.Commit().ok());
  sweeper.join();
  ASSERT_TRUE(note.ok()) << note.status().ToString();
  EXPECT_EQ(*note, "") << "not due any more under the lock";
  EXPECT_EQ(
      One("SELECT flow || '/' || (state->>'step') FROM conversations WHERE conversation_key = $1",
          {kAna}),
      "listing/description");
  EXPECT_EQ(Events(kAna), "0");
  EXPECT_EQ(One("SELECT count(*) FROM transitions"), "0");
  auto swept = ExpireDueRuns(*conn_, *engine_, Now());
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(swept->expired, 0u) << "due tomorrow";
}

// Upgrading: runs in progress get the default 24 h from their last change (an enquiry abandoned
// weeks ago ends at the first sweep); idle conversations and checklist runs (an active assignment)
// get none.
TEST(RunTimeoutMigration, RunsInProgressGetTheDefaultDueTimeAndChecklistsNone) {
  test::TestDatabase db("run_timeout_migration");
  auto c = PgConnection::Connect(db.dsn());
  ASSERT_TRUE(c.ok());
  PgConnection& conn = **c;
  const std::string before =
      ::testing::TempDir() + "/" + test::UniqueName("migrations_before_run_timeouts");
  ASSERT_EQ(
      std::system(("mkdir -p " + before + " && cp " + test::SourcePath("deploy/postgres") +
                   "/00[0-2]*.sql " + test::SourcePath("deploy/postgres") + "/0030_*.sql " + before)
                      .c_str()),
      0);
  ASSERT_TRUE(RunMigrations(conn, before).ok());
  auto ok = [&](const std::string& sql) {
    auto r = conn.Exec(sql);
    ASSERT_TRUE(r.ok()) << r.status().ToString() << "\n" << sql;
  };
  ok("INSERT INTO conversations (conversation_key, phone_number_id, wa_id, flow, updated_at) "
     "VALUES "
     "('1:lead', '1', 'lead', 'lead', now() - interval '30 days'), "
     "('1:recent', '1', 'recent', 'listing', now() - interval '1 hour'), "
     "('1:idle', '1', 'idle', NULL, now() - interval '30 days'), "
     "('1:operator', '1', 'operator', 'checklist', now() - interval '30 days')");
  ok("INSERT INTO checklists (id, version, definition, source) VALUES ('qa', 1, '{}', 'api')");
  ok("INSERT INTO assignments (id, checklist_id, checklist_version, operator, phone_number_id, "
     "reference, "
     "conversation_key, status) VALUES ('asg_1', 'qa', 1, 'operator', '1', 'R1', '1:operator', "
     "'active')");
  ASSERT_TRUE(RunMigrations(conn, test::SourcePath("deploy/postgres")).ok());
  auto r = conn.Exec(
      "SELECT conversation_key, coalesce((run_expires_at <= now())::text, 'none') FROM "
      "conversations ORDER BY 1");
  ASSERT_TRUE(r.ok() && r->size() == 4);
  EXPECT_EQ(r->get(0, 0) + " " + r->get(0, 1), "1:idle none");
  EXPECT_EQ(r->get(1, 0) + " " + r->get(1, 1), "1:lead true")
      << "due long ago: ends at the first sweep";
  EXPECT_EQ(r->get(2, 0) + " " + r->get(2, 1), "1:operator none") << "its assignment ends it";
  EXPECT_EQ(r->get(3, 0) + " " + r->get(3, 1), "1:recent false");
}

}  // namespace
}  // namespace convoy::conversation
