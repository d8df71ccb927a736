// The plan of the identity look-up (processor_internal.h, kFindIdentities), prepared once per
// session as the conversation service prepares it, while its numbers had few users: every message
// must probe its identities by the primary key, not read all of its number's identities.
#include <gtest/gtest.h>

#include <string>

#include "convoy/pg.h"
#include "convoy/startup.h"
#include "engine/processor_internal.h"
#include "testsupport.h"

namespace convoy::conversation {
namespace {

TEST(IdentityPlan, EachIdentityIsProbedByKeyWhateverTheStatistics) {
  test::TestDatabase db("identity_plan");
  DatabaseService base;
  Status s = PrepareDatabaseService(test::SourcePath("proto-schemas"), db.dsn(),
                                    test::SourcePath("deploy/postgres"), /*migrate=*/true, &base);
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto conn = PgConnection::Connect(db.dsn());
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  auto& sql = **conn;
  // A session prepares the look-up while 4 numbers have 10 users each (a new deployment, no
  // statistics yet) and keeps its plan while 2,000 more users each arrive.
  auto users = [](int from, int to) {
    return "INSERT INTO conversations (conversation_key, phone_number_id, wa_id) SELECT 'n' || "
           "(g % 4) || ':' || g, 'n' || (g % 4), '1650' || g FROM generate_series(" +
           std::to_string(from) + ", " + std::to_string(to) +
           ") g; INSERT INTO identities (phone_number_id, identity, conversation_key) SELECT 'n' "
           "|| (g % 4), '1650' || g, 'n' || (g % 4) || ':' || g FROM generate_series(" +
           std::to_string(from) + ", " + std::to_string(to) + ") g;";
  };
  ASSERT_TRUE(sql.ExecScript(users(1, 40)).ok());
  ASSERT_TRUE(sql.ExecScript(std::string("SET plan_cache_mode = force_generic_plan; PREPARE "
                                         "find(text, text[]) AS ") +
                             processor_internal::kFindIdentities)
                  .ok());
  ASSERT_TRUE(sql.Exec("EXECUTE find('n1', '{16505,US.1}')").ok());
  ASSERT_TRUE(sql.ExecScript(users(41, 8040)).ok());
  auto rows = sql.Exec("EXPLAIN EXECUTE find('n1', '{16505,US.1}')");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  std::string plan;
  bool probed = false;
  for (size_t i = 0; i < rows->size(); ++i) {
    const std::string line = rows->get(i, 0);
    plan += line + "\n";
    if (line.find("Index Cond:") != std::string::npos &&
        line.find("phone_number_id = $1") != std::string::npos &&
        line.find("identity = k.id") != std::string::npos)
      probed = true;
  }
  EXPECT_TRUE(probed) << plan;
}

}  // namespace
}  // namespace convoy::conversation
