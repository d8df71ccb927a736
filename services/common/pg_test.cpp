// Integration: a real PostgreSQL, one database per test.
#include "convoy/pg.h"

#include <dirent.h>
#include <gtest/gtest.h>

#include <thread>

#include "testsupport.h"

namespace convoy {
namespace {

size_t CountMigrationFiles(const std::string& dir) {
  size_t n = 0;
  DIR* d = opendir(dir.c_str());
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() > 4 && name.substr(name.size() - 4) == ".sql") ++n;
  }
  closedir(d);
  return n;
}

TEST(Migrations, ReplicasStartingTogetherApplyEachFileOnce) {
  test::TestDatabase db("pg_migrations");
  std::string dir = test::SourcePath("deploy/postgres");
  std::vector<std::thread> threads;
  std::vector<Status> results(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto c = PgConnection::Connect(db.dsn());
      results[i] = c.ok() ? RunMigrations(**c, dir) : c.status();
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& s : results) EXPECT_TRUE(s.ok()) << s.ToString();
  auto c = PgConnection::Connect(db.dsn());
  ASSERT_TRUE(c.ok());
  auto rows = (*c)->Exec("SELECT count(*) FROM schema_migrations");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(static_cast<size_t>(rows->get_int(0, 0)), CountMigrationFiles(dir));
  // Running again changes nothing.
  EXPECT_TRUE(RunMigrations(**c, dir).ok());
}

TEST(PgConnection, ErrorsAreClassified) {
  test::TestDatabase db("pg_errors");
  auto c = PgConnection::Connect(db.dsn());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Exec("CREATE TABLE t (k text PRIMARY KEY)").ok());
  ASSERT_TRUE((*c)->Exec("INSERT INTO t VALUES ($1)", {std::string("a")}).ok());
  EXPECT_EQ((*c)->Exec("INSERT INTO t VALUES ($1)", {std::string("a")}).status().code(), Code::kRejected);
  // The message names the constraint but never quotes the row (PostgreSQL's DETAIL would).
  ASSERT_TRUE((*c)->Exec("INSERT INTO t VALUES ($1)", {std::string("16505550111")}).ok());
  auto dup = (*c)->Exec("INSERT INTO t VALUES ($1)", {std::string("16505550111")});
  EXPECT_NE(dup.status().message().find("(constraint t_pkey)"), std::string::npos) << dup.status().message();
  EXPECT_EQ(dup.status().message().find("16505550111"), std::string::npos) << dup.status().message();
  EXPECT_EQ((*c)->Exec("SELEC 1").status().code(), Code::kInvalidArgument);
  auto ins = (*c)->Exec("INSERT INTO t VALUES ($1) ON CONFLICT DO NOTHING RETURNING k", {std::string("a")});
  ASSERT_TRUE(ins.ok());
  EXPECT_TRUE(ins->empty());
  auto null = (*c)->Exec("SELECT $1::text", {std::nullopt});
  ASSERT_TRUE(null.ok());
  EXPECT_FALSE(null->at(0, 0).has_value());
  auto down = PgConnection::Connect("host=127.0.0.1 port=1 user=postgres dbname=x");
  EXPECT_EQ(down.status().code(), Code::kUnavailable);
}

// Both forms people have: key=value and the URI (postgresql://user@host:port/db). The connect
// timeout convoy adds never changes the database name, and the DSN's own timeout wins.
TEST(PgConnection, ConnectsWithAUriDsnAsWithKeyValue) {
  test::TestDatabase db("pg_uri");
  const std::string kv = db.dsn();
  auto value = [&](const std::string& key) {
    auto at = kv.find(key + "=");
    auto end = kv.find(' ', at);
    return kv.substr(at + key.size() + 1, end == std::string::npos ? std::string::npos : end - at - key.size() - 1);
  };
  for (const std::string& dsn : {"postgresql://" + value("user") + "@" + value("host") + ":" + value("port") + "/" + db.name(),
                                 "postgres://" + value("user") + "@" + value("host") + ":" + value("port") + "/" + db.name() +
                                     "?connect_timeout=2&application_name=convoy-test",
                                 kv + " connect_timeout=3"}) {
    auto c = PgConnection::Connect(dsn);
    ASSERT_TRUE(c.ok()) << dsn << ": " << c.status().ToString();
    auto name = (*c)->Exec("SELECT current_database(), current_setting('application_name')");
    ASSERT_TRUE(name.ok());
    EXPECT_EQ(name->get(0, 0), db.name()) << dsn;
  }
  auto bad = PgConnection::Connect("postgresql://nobody@127.0.0.1:1/x");
  EXPECT_EQ(bad.status().code(), Code::kUnavailable);
}

// A database restart or a killed backend: the failing call says kUnavailable, the next one
// reconnects.
TEST(PgConnection, ReconnectsAfterTheBackendIsKilled) {
  test::TestDatabase db("pg_reconnect");
  auto c = PgConnection::Connect(db.dsn());
  ASSERT_TRUE(c.ok());
  auto pid = (*c)->Exec("SELECT pg_backend_pid()");
  ASSERT_TRUE(pid.ok());
  auto admin = PgConnection::Connect(test::PgDsn());
  ASSERT_TRUE(admin.ok());
  ASSERT_TRUE((*admin)->Exec("SELECT pg_terminate_backend($1::int)", {pid->get(0, 0)}).ok());
  auto broken = (*c)->Exec("SELECT 1");
  EXPECT_EQ(broken.status().code(), Code::kUnavailable) << broken.status().ToString();
  auto again = (*c)->Exec("SELECT 1");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->get_int(0, 0), 1);
}

// A statement with parameters is prepared once per session and then only executed; a new session
// (after a reconnect) prepares it again rather than calling one that died with the old session.
TEST(PgConnection, PreparedStatementsSurviveAReconnect) {
  test::TestDatabase db("pg_prepared");
  auto c = PgConnection::Connect(db.dsn());
  ASSERT_TRUE(c.ok());
  const std::string sql = "SELECT $1::int + 1";
  for (int i = 0; i < 3; ++i) {
    auto r = (*c)->Exec(sql, {std::to_string(i)});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->get_int(0, 0), i + 1);
  }
  auto prepared = (*c)->Exec("SELECT count(*) FROM pg_prepared_statements WHERE statement = $1", {sql});
  ASSERT_TRUE(prepared.ok()) << prepared.status().ToString();
  EXPECT_EQ(prepared->get_int(0, 0), 1) << "prepared once, on this session";
  auto pid = (*c)->Exec("SELECT pg_backend_pid()");
  ASSERT_TRUE(pid.ok());
  auto admin = PgConnection::Connect(test::PgDsn());
  ASSERT_TRUE(admin.ok());
  ASSERT_TRUE((*admin)->Exec("SELECT pg_terminate_backend($1::int)", {pid->get(0, 0)}).ok());
  EXPECT_EQ((*c)->Exec(sql, {"5"}).status().code(), Code::kUnavailable);
  auto again = (*c)->Exec(sql, {"6"});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->get_int(0, 0), 7);
}

}  // namespace
}  // namespace convoy
