// The plans of the statements that keep a conversation's commands in order (order_statements.h):
// prepared once per session, as the services prepare them, on an analyzed outbox where nearly
// every command is settled and a backlog waits, each must search the unsettled commands by the
// conversation, not read them all.
#include "order_statements.h"

#include <gtest/gtest.h>

#include <string>

#include "convoy/pg.h"
#include "convoy/startup.h"
#include "testsupport.h"

namespace convoy::outbound {
namespace {

class OrderStatements : public ::testing::Test {
 protected:
  OrderStatements() : db_("order_statements") {}

  void SetUp() override {
    DatabaseService base;
    Status s = PrepareDatabaseService(test::SourcePath("proto-schemas"), db_.dsn(),
                                      test::SourcePath("deploy/postgres"), /*migrate=*/true, &base);
    ASSERT_TRUE(s.ok()) << s.ToString();
    auto conn = PgConnection::Connect(db_.dsn());
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    sql_ = std::move(*conn);
    // 3,000 commands settled long ago, analyzed (as autovacuum would have); then, after the
    // statistics were taken, a backlog: 300 sends and 300 deliveries not settled, one per
    // conversation, as after an outage.
    ASSERT_TRUE(
        sql_->ExecScript("INSERT INTO outbox (exchange, routing_key, dedupe_key, correlation_id, "
                         "conversation_key, body, settled_at, outcome) "
                         "SELECT 'convoy.commands', CASE WHEN g % 2 = 0 THEN 'outbound.send' ELSE "
                         "'outbound.deliver' END, 'old-' || g, 'c', 'conv-' || (g % 500), '{}', "
                         "now(), 'done' FROM generate_series(1, 3000) g;"
                         "ANALYZE outbox; ANALYZE outbound_messages; ANALYZE thread_controls;"
                         "INSERT INTO outbox (exchange, routing_key, dedupe_key, correlation_id, "
                         "conversation_key, body) "
                         "SELECT 'convoy.commands', r, r || '-' || g, 'c', 'conv-' || g, '{}' "
                         "FROM generate_series(1, 300) g, "
                         "unnest(ARRAY['outbound.send', 'outbound.deliver']) r;")
            .ok());
  }

  // The generic plan of `statement` (one text parameter), the one a session settles on after its
  // first executions, as EXPLAIN prints it.
  std::string GenericPlan(const std::string& name, const std::string& statement) {
    EXPECT_TRUE(sql_->ExecScript("SET plan_cache_mode = force_generic_plan; PREPARE " + name +
                                 "(text) AS " + statement)
                    .ok());
    auto rows = sql_->Exec("EXPLAIN EXECUTE " + name + "('outbound.send-7')");
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    std::string plan;
    for (size_t i = 0; rows.ok() && i < rows->size(); ++i) plan += rows->get(i, 0) + "\n";
    return plan;
  }

  test::TestDatabase db_;
  std::unique_ptr<PgConnection> sql_;
};

// Searched with the conversation in the index condition: the backlog of other conversations is
// never read.
bool SearchedByConversation(const std::string& plan) {
  for (size_t at = plan.find("Index Cond:"); at != std::string::npos;
       at = plan.find("Index Cond:", at + 1)) {
    const std::string line = plan.substr(at, plan.find('\n', at) - at);
    if (line.find("conversation_key = mine.conversation_key") != std::string::npos) return true;
  }
  return false;
}

TEST_F(OrderStatements, EachSearchesTheUnsettledCommandsByConversationWhateverTheStatistics) {
  for (const auto& [name, statement] :
       {std::pair<std::string, std::string>{"send_order", kLookupInOrder},
        {"delivery_order", kEarlierDelivery},
        {"thread_control_order", kEarlierThreadControl}}) {
    const std::string plan = GenericPlan(name, statement);
    EXPECT_TRUE(SearchedByConversation(plan)) << name << ":\n" << plan;
  }
}

}  // namespace
}  // namespace convoy::outbound
