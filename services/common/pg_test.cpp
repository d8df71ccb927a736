// Integration: a real PostgreSQL, one database per test.
#include "convoy/pg.h"

#include <dirent.h>
#include <gtest/gtest.h>

#include <memory>
#include <regex>
#include <thread>

#include "tcp_proxy.h"
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
  EXPECT_EQ((*c)->Exec("INSERT INTO t VALUES ($1)", {std::string("a")}).status().code(),
            Code::kRejected);
  // The message names the constraint but never quotes the row (PostgreSQL's DETAIL would).
  ASSERT_TRUE((*c)->Exec("INSERT INTO t VALUES ($1)", {std::string("16505550111")}).ok());
  auto dup = (*c)->Exec("INSERT INTO t VALUES ($1)", {std::string("16505550111")});
  EXPECT_NE(dup.status().message().find("(constraint t_pkey)"), std::string::npos)
      << dup.status().message();
  EXPECT_EQ(dup.status().message().find("16505550111"), std::string::npos)
      << dup.status().message();
  EXPECT_EQ((*c)->Exec("SELEC 1").status().code(), Code::kInvalidArgument);
  auto ins = (*c)->Exec("INSERT INTO t VALUES ($1) ON CONFLICT DO NOTHING RETURNING k",
                        {std::string("a")});
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
    return kv.substr(at + key.size() + 1,
                     end == std::string::npos ? std::string::npos : end - at - key.size() - 1);
  };
  for (const std::string& dsn :
       {"postgresql://" + value("user") + "@" + value("host") + ":" + value("port") + "/" +
            db.name(),
        "postgres://" + value("user") + "@" + value("host") + ":" + value("port") + "/" +
            db.name() + "?connect_timeout=2&application_name=convoy-test",
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
  auto prepared =
      (*c)->Exec("SELECT count(*) FROM pg_prepared_statements WHERE statement = $1", {sql});
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

// The DSN with its port replaced: the same database through a proxy.
std::string ThroughPort(const std::string& dsn, int port) {
  return std::regex_replace(dsn, std::regex("port=[0-9]+"), "port=" + std::to_string(port));
}

int PortOf(const std::string& dsn) {
  std::smatch m;
  return std::regex_search(dsn, m, std::regex("port=([0-9]+)")) ? std::stoi(m[1]) : 5432;
}

// A database with table t, and a connection to it through a proxy that can cut it at its COMMIT,
// with a transaction open that inserted `key`.
class CommitInDoubt : public ::testing::Test {
 protected:
  void Open(const std::string& key) {
    db_ = std::make_unique<test::TestDatabase>(std::string("pg_in_doubt_") + key);
    auto owner = PgConnection::Connect(db_->dsn());
    ASSERT_TRUE(owner.ok());
    owner_ = std::move(*owner);
    ASSERT_TRUE(owner_->Exec("CREATE TABLE t (k text PRIMARY KEY)").ok());
    proxy_ = std::make_unique<test::TcpProxy>(PortOf(db_->dsn()));
    ASSERT_TRUE(proxy_->Start());
    auto c = PgConnection::Connect(ThroughPort(db_->dsn(), proxy_->port()));
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    conn_ = std::move(*c);
    ASSERT_TRUE(conn_->Begin().ok());
    ASSERT_TRUE(conn_->Exec("INSERT INTO t VALUES ($1)", {key}).ok());
  }
  int64_t Rows() {
    auto r = owner_->Exec("SELECT count(*) FROM t");
    return r.ok() ? r->get_int(0, 0) : -1;
  }
  std::unique_ptr<test::TestDatabase> db_;
  std::unique_ptr<PgConnection> owner_, conn_;
  std::unique_ptr<test::TcpProxy> proxy_;
};

// A COMMIT reaches the server and commits, and its answer is lost with the connection (the server
// died, or the network, after acting): Commit() looks the outcome up on a new connection and says
// OK, so the caller acks rather than applying the work a second time. Before the lookup, a lost
// answer was an error whatever the server had done.
TEST_F(CommitInDoubt, ACommitWhoseAnswerIsLostIsLookedUpAndFoundCommitted) {
  Open("committed");
  proxy_->CutAtRequest("COMMIT", /*deliver=*/true);
  bool seen = false;
  std::thread cutter([&] {
    // The server committed (another session sees the row); then the connection goes.
    seen = test::WaitUntil([&] { return Rows() == 1; }, std::chrono::seconds(10));
    proxy_->DropHeld();
  });
  Status s = conn_->Commit();
  cutter.join();
  ASSERT_TRUE(proxy_->cut());
  ASSERT_TRUE(seen);
  EXPECT_TRUE(s.ok()) << s.ToString();
  auto again = conn_->Exec("SELECT count(*) FROM t");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->get_int(0, 0), 1);
}

// The COMMIT never reached the server and the connection went: the server rolls the transaction
// back, and Commit() says so after looking it up (never OK: the caller must not ack).
TEST_F(CommitInDoubt, ACommitThatNeverArrivedIsLookedUpAndFoundNotCommitted) {
  Open("lost");
  proxy_->CutAtRequest("COMMIT", /*deliver=*/false);
  std::thread cutter([&] {
    test::WaitUntil([&] { return proxy_->cut(); }, std::chrono::seconds(10));
    proxy_->DropHeld();
  });
  Status s = conn_->Commit();
  cutter.join();
  ASSERT_TRUE(proxy_->cut());
  EXPECT_EQ(s.code(), Code::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("did not commit"), std::string::npos) << s.ToString();
  EXPECT_EQ(Rows(), 0);
}

// A COMMIT after the session was replaced, or after a statement of the transaction failed, is never
// an OK: the first would commit nothing on a fresh session, the second is rolled back by the
// server.
TEST(PgConnection, ACommitThatCannotCommitSaysSo) {
  test::TestDatabase db("pg_commit_refused");
  auto c = PgConnection::Connect(db.dsn());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Exec("CREATE TABLE t (k text PRIMARY KEY)").ok());
  ASSERT_TRUE((*c)->Begin().ok());
  ASSERT_TRUE((*c)->Exec("INSERT INTO t VALUES ('a')").ok());
  EXPECT_EQ((*c)->Exec("INSERT INTO t VALUES ('a')").status().code(), Code::kRejected);
  Status failed = (*c)->Commit();
  EXPECT_EQ(failed.code(), Code::kInternal) << failed.ToString();
  (*c)->Rollback();

  ASSERT_TRUE((*c)->Begin().ok());
  ASSERT_TRUE((*c)->Exec("INSERT INTO t VALUES ('b')").ok());
  auto pid = (*c)->Exec("SELECT pg_backend_pid()");
  ASSERT_TRUE(pid.ok());
  auto admin = PgConnection::Connect(test::PgDsn());
  ASSERT_TRUE(admin.ok());
  ASSERT_TRUE((*admin)->Exec("SELECT pg_terminate_backend($1::int)", {pid->get(0, 0)}).ok());
  EXPECT_EQ((*c)->Exec("SELECT 1").status().code(), Code::kUnavailable);
  Status lost = (*c)->Commit();
  EXPECT_EQ(lost.code(), Code::kUnavailable) << lost.ToString();
  auto rows = (*c)->Exec("SELECT count(*) FROM t");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(rows->get_int(0, 0), 0);
}

// A database with table t (k text PRIMARY KEY) and a connection to it.
class PgTransactionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = PgConnection::Connect(db_.dsn());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    conn_ = std::move(*c);
    ASSERT_TRUE(conn_->Exec("CREATE TABLE t (k text PRIMARY KEY)").ok());
  }
  // A transaction begun, that inserted `key`.
  Result<PgTransaction> Inserting(const std::string& key) {
    auto tx = PgTransaction::Begin(*conn_);
    if (!tx.ok()) return tx.status();
    Status s = conn_->Exec("INSERT INTO t VALUES ($1)", {key}).status();
    if (!s.ok()) return s;
    return tx;
  }
  int64_t Rows() {
    auto r = conn_->Exec("SELECT count(*) FROM t");
    return r.ok() ? r->get_int(0, 0) : -1;
  }
  test::TestDatabase db_{"pg_tx"};
  std::unique_ptr<PgConnection> conn_;
};

// A transaction that leaves its scope without a Commit() that answered OK is rolled back, and the
// connection takes the next BEGIN; one that committed stays committed.
TEST_F(PgTransactionTest, RollsBackWhenItLeavesScopeUnlessCommitted) {
  {
    auto tx = Inserting("a");
    ASSERT_TRUE(tx.ok()) << tx.status().ToString();
    EXPECT_EQ(Rows(), 1);
  }
  EXPECT_EQ(Rows(), 0);
  {
    auto tx = Inserting("b");
    ASSERT_TRUE(tx.ok()) << tx.status().ToString();
    Status s = tx->Commit();
    EXPECT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(tx->Commit().code(), Code::kInternal);  // nothing left to commit
  }
  EXPECT_EQ(Rows(), 1);
  {
    auto tx = Inserting("c");
    ASSERT_TRUE(tx.ok()) << tx.status().ToString();
    tx->Rollback();
    EXPECT_EQ(Rows(), 1);  // outside the transaction, before its scope ends
  }
  EXPECT_EQ(Rows(), 1);
}

// A COMMIT refused (a statement of the transaction failed) leaves an aborted transaction open on
// the session; leaving the scope ends it, so the next BEGIN on the connection works.
TEST_F(PgTransactionTest, AFailedCommitLeavesTheConnectionReadyForTheNext) {
  {
    auto tx = Inserting("a");
    ASSERT_TRUE(tx.ok()) << tx.status().ToString();
    EXPECT_EQ(conn_->Exec("INSERT INTO t VALUES ('a')").status().code(), Code::kRejected);
    EXPECT_EQ(tx->Commit().code(), Code::kInternal);
  }
  auto tx = Inserting("b");
  ASSERT_TRUE(tx.ok()) << tx.status().ToString();
  Status s = tx->Commit();
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Rows(), 1);
}

}  // namespace
}  // namespace convoy
