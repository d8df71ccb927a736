#pragma once
// PostgreSQL through libpq, behind plain types. pg.cpp is the only file that includes
// <libpq-fe.h>. A PgConnection is used by one thread at a time.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "convoy/status.h"

namespace convoy {

// Rows copied out of a PGresult: text format, NULL as nullopt.
class PgRows {
 public:
  PgRows() = default;
  PgRows(std::vector<std::string> columns,
         std::vector<std::vector<std::optional<std::string>>> rows)
      : columns_(std::move(columns)), rows_(std::move(rows)) {}
  size_t size() const { return rows_.size(); }
  bool empty() const { return rows_.empty(); }
  const std::optional<std::string>& at(size_t row, size_t col) const { return rows_[row][col]; }
  // The value, or "" for NULL.
  std::string get(size_t row, size_t col) const { return rows_[row][col].value_or(""); }
  int64_t get_int(size_t row, size_t col) const;
  size_t affected = 0;  // rows affected by INSERT/UPDATE/DELETE

 private:
  std::vector<std::string> columns_;
  std::vector<std::vector<std::optional<std::string>>> rows_;
};

using PgParams = std::vector<std::optional<std::string>>;

class PgConnection {
 public:
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  static Result<std::unique_ptr<PgConnection>> Connect(const std::string& dsn);

  // One parameterized statement (PQexecParams, text params). Errors: kUnavailable when the
  // connection is gone (after which Reconnect() is tried on the next call), kTimeout for
  // serialization failures and deadlocks (retry the transaction), kRejected for constraint
  // violations, kInvalidArgument otherwise.
  Result<PgRows> Exec(const std::string& sql, const PgParams& params = {});
  // Several statements without parameters (migrations).
  Status ExecScript(const std::string& sql);

  // BEGIN, COMMIT and ROLLBACK by hand; code that opens a transaction holds a PgTransaction,
  // which rolls back on every path that does not commit.
  Status Begin();
  // COMMIT. When the connection is lost with the COMMIT sent, its outcome is looked up on the
  // server that is the primary now (pg.cpp SettleCommit): Ok only if the transaction is known to
  // have committed; kUnavailable if it did not, or if that cannot be told within 60 s.
  Status Commit();
  void Rollback();  // best effort

  bool healthy() const;
  Status Reconnect();
  int socket() const;
  // Waits up to timeout_ms for a NOTIFY on a channel this connection LISTENs to.
  Result<bool> WaitNotify(int timeout_ms);

 private:
  PgConnection() = default;
  struct InDoubtCommit {
    std::string xid;                 // the transaction's id (txid_current_if_assigned)
    double server_clock_before = 0;  // the server's clock just before COMMIT (epoch seconds)
    std::string server_started;      // pg_postmaster_start_time() of the server it ran on
    double seconds_to_loss = 0;      // from sending COMMIT to seeing the connection lost
    std::string error;
  };
  Status SettleCommit(const InDoubtCommit& doubt);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A transaction that rolls back when it leaves scope unless its Commit() answered OK (userver's
// Transaction): an early return, an error path or a forgotten branch cannot leave a transaction
// open on the connection. Statements still go through the connection (conn.Exec). Commit() is
// PgConnection::Commit(), in-doubt settling included; when it fails, what is left is rolled back
// (best effort, as Rollback()), so the connection takes the next BEGIN cleanly.
class PgTransaction {
 public:
  // Sends BEGIN on `conn`, which must outlive the transaction.
  static Result<PgTransaction> Begin(PgConnection& conn);
  PgTransaction(PgTransaction&& other) noexcept;
  PgTransaction& operator=(PgTransaction&&) = delete;
  PgTransaction(const PgTransaction&) = delete;
  PgTransaction& operator=(const PgTransaction&) = delete;
  ~PgTransaction() { Rollback(); }

  Status Commit();
  // Rolls back now (before the scope ends: to use the connection outside the transaction, or to
  // say that throwing the work away is the intent). Does nothing once committed or rolled back.
  void Rollback();

 private:
  explicit PgTransaction(PgConnection& conn) : conn_(&conn) {}
  PgConnection* conn_;  // null once committed or rolled back (or moved from)
};

// Applies deploy/postgres/NNNN_*.sql files in order, each once, recorded in
// schema_migrations, under an advisory lock so replicas starting together don't race.
// Run by convoy-migrate as the database owner (services only with --migrate).
Status RunMigrations(PgConnection& conn, const std::string& dir);
// What a service does at start instead: kUnavailable naming the first migration of `dir` that
// is not applied yet. Needs nothing but SELECT on schema_migrations.
Status CheckMigrations(PgConnection& conn, const std::string& dir);

// A PostgreSQL text[] literal of the values ("{\"a\",\"b\"}"), for one parameter ($1::text[]).
std::string PgTextArray(const std::vector<std::string>& values);

}  // namespace convoy
