// The only file that includes libpq. Every PGresult is checked in CheckResult().
#include "convoy/pg.h"

#include <dirent.h>
#include <glog/logging.h>
#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "convoy/log.h"

namespace convoy {

int64_t PgRows::get_int(size_t row, size_t col) const {
  const auto& v = rows_[row][col];
  return v ? std::stoll(*v) : 0;
}

struct PgConnection::Impl {
  std::string dsn;
  PGconn* conn = nullptr;
  // Parameterized statements prepared on this connection (the SQL text is the key): the server
  // parses and plans each once per connection instead of once per call. Prepared statements
  // live as long as the session, so a reconnect empties it.
  std::unordered_map<std::string, std::string> prepared;
  ~Impl() {
    if (conn) PQfinish(conn);
  }
};

namespace {

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The one place a PGresult becomes a Status (and rows).
Result<PgRows> CheckResult(PGconn* conn, PGresult* res, const std::string& what) {
  if (!res) {
    return Status(Code::kUnavailable, what + ": " + Trim(PQerrorMessage(conn)));
  }
  ExecStatusType st = PQresultStatus(res);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
    int nrows = PQntuples(res), ncols = PQnfields(res);
    std::vector<std::string> cols;
    for (int c = 0; c < ncols; ++c) cols.emplace_back(PQfname(res, c));
    std::vector<std::vector<std::optional<std::string>>> rows(nrows);
    for (int r = 0; r < nrows; ++r) {
      rows[r].reserve(ncols);
      for (int c = 0; c < ncols; ++c) {
        if (PQgetisnull(res, r, c)) {
          rows[r].emplace_back(std::nullopt);
        } else {
          rows[r].emplace_back(std::string(PQgetvalue(res, r, c), PQgetlength(res, r, c)));
        }
      }
    }
    PgRows out(std::move(cols), std::move(rows));
    const char* affected = PQcmdTuples(res);
    out.affected = (affected && *affected) ? std::strtoull(affected, nullptr, 10) : 0;
    PQclear(res);
    return out;
  }
  const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  std::string sqlstate = state ? state : "";
  // The primary message and the constraint, never the DETAIL: it quotes the row's values (a phone
  // number in a unique key, say), and this message reaches logs and dead-letter headers.
  const char* primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
  const char* constraint = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
  std::string msg = what + ": " + (sqlstate.empty() ? "" : sqlstate + " ") +
                    (primary ? std::string(primary) : Trim(PQresultErrorMessage(res))) +
                    (constraint ? std::string(" (constraint ") + constraint + ")" : "");
  PQclear(res);
  if (PQstatus(conn) != CONNECTION_OK || sqlstate.rfind("08", 0) == 0 ||
      sqlstate.rfind("57P", 0) == 0) {
    return Status(Code::kUnavailable, msg);
  }
  if (sqlstate == "40001" || sqlstate == "40P01" || sqlstate == "55P03")
    return Status(Code::kTimeout, msg);
  if (sqlstate.rfind("23", 0) == 0) return Status(Code::kRejected, msg);
  return Status(Code::kInvalidArgument, msg);
}

}  // namespace

PgConnection::~PgConnection() = default;

Result<std::unique_ptr<PgConnection>> PgConnection::Connect(const std::string& dsn) {
  std::unique_ptr<PgConnection> c(new PgConnection());
  c->impl_ = std::make_unique<Impl>();
  c->impl_->dsn = dsn;
  Status s = c->Reconnect();
  if (!s.ok()) return s;
  return c;
}

Status PgConnection::Reconnect() {
  if (impl_->conn) PQfinish(impl_->conn);
  impl_->prepared.clear();
  // The DSN may be key=value ("host=... dbname=...") or a URI ("postgresql://user@host:5432/db"):
  // libpq expands either from dbname. connect_timeout comes first so the DSN's own wins; appended
  // to a URI it would have become part of the database name.
  const char* keys[] = {"connect_timeout", "dbname", nullptr};
  const char* values[] = {"5", impl_->dsn.c_str(), nullptr};
  impl_->conn = PQconnectdbParams(keys, values, 1);
  if (PQstatus(impl_->conn) != CONNECTION_OK) {
    return Status(Code::kUnavailable, "postgres connect: " + Trim(PQerrorMessage(impl_->conn)));
  }
  // Server NOTICEs ("already exists, skipping") are not errors; keep them out of the logs.
  PQsetNoticeProcessor(
      impl_->conn, [](void*, const char*) {}, nullptr);
  return Status::Ok();
}

bool PgConnection::healthy() const { return impl_->conn && PQstatus(impl_->conn) == CONNECTION_OK; }

int PgConnection::socket() const { return impl_->conn ? PQsocket(impl_->conn) : -1; }

Result<PgRows> PgConnection::Exec(const std::string& sql, const PgParams& params) {
  if (!healthy()) {
    Status s = Reconnect();
    if (!s.ok()) return s;
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  if (values.empty()) {
    return CheckResult(
        impl_->conn,
        PQexecParams(impl_->conn, sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0),
        sql.substr(0, 60));
  }
  // Statements with parameters are the code's fixed SQL; the bound keeps a caller that builds
  // its text from values from growing the session without limit (past it: unprepared).
  constexpr size_t kMaxPrepared = 512;
  auto it = impl_->prepared.find(sql);
  if (it == impl_->prepared.end() && impl_->prepared.size() < kMaxPrepared) {
    std::string name = "convoy_" + std::to_string(impl_->prepared.size());
    auto prepared =
        CheckResult(impl_->conn, PQprepare(impl_->conn, name.c_str(), sql.c_str(), 0, nullptr),
                    sql.substr(0, 60));
    if (!prepared.ok()) return prepared.status();
    it = impl_->prepared.emplace(sql, std::move(name)).first;
  }
  PGresult* res =
      it != impl_->prepared.end()
          ? PQexecPrepared(impl_->conn, it->second.c_str(), static_cast<int>(values.size()),
                           values.data(), nullptr, nullptr, 0)
          : PQexecParams(impl_->conn, sql.c_str(), static_cast<int>(values.size()), nullptr,
                         values.data(), nullptr, nullptr, 0);
  return CheckResult(impl_->conn, res, sql.substr(0, 60));
}

Status PgConnection::ExecScript(const std::string& sql) {
  if (!healthy()) {
    Status s = Reconnect();
    if (!s.ok()) return s;
  }
  return CheckResult(impl_->conn, PQexec(impl_->conn, sql.c_str()), "script").status();
}

Status PgConnection::Begin() { return Exec("BEGIN").status(); }

namespace {

// What PostgreSQL knows of transaction `xid` now: "committed", "aborted", "in progress", or ""
// when it cannot say (too old, or the lookup failed). An id past the server's history ("in the
// future": the transaction never reached this server) is "aborted".
std::string TxStatus(PgConnection& db, const std::string& xid) {
  auto r = db.Exec("SELECT txid_status($1::bigint)", {xid});
  if (!r.ok())
    return r.status().message().find("in the future") != std::string::npos ? "aborted" : "";
  return r->get(0, 0);
}

}  // namespace

Status PgConnection::Commit() {
  // A COMMIT is sent only on the session that ran the transaction: a reconnect here would commit
  // nothing and answer OK.
  if (!healthy())
    return Status(Code::kUnavailable,
                  "postgres connection lost before COMMIT: the transaction did not commit");
  if (PQtransactionStatus(impl_->conn) == PQTRANS_INERROR) {
    return Status(Code::kInternal,
                  "COMMIT of a transaction that had already failed: it was rolled back");
  }
  // Before COMMIT goes out: the transaction's id (null when it wrote nothing), the server's clock
  // and its instance (its start time), so that if the answer is lost the outcome can be looked up.
  auto before = Exec(
      "SELECT txid_current_if_assigned()::text, extract(epoch from clock_timestamp())::text, "
      "pg_postmaster_start_time()::text");
  if (!before.ok()) return before.status();
  const auto sent = std::chrono::steady_clock::now();
  auto done = Exec("COMMIT");
  if (done.ok() || done.status().code() != Code::kUnavailable) return done.status();
  const auto xid = before->at(0, 0);
  if (!xid) {
    return Status(Code::kUnavailable,
                  "postgres connection lost during COMMIT of a transaction that wrote nothing");
  }
  InDoubtCommit doubt;
  doubt.xid = *xid;
  doubt.server_clock_before = std::stod(before->get(0, 1));
  doubt.server_started = before->get(0, 2);
  doubt.seconds_to_loss =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count();
  doubt.error = done.status().message();
  return SettleCommit(doubt);
}

// The answer to a COMMIT was lost with its connection (a crash, a failover, a cut network): whether
// it committed is looked up on whichever server is the primary now (a multi-host DSN with
// target_session_attrs=read-write finds it), never guessed. Ok only when the transaction is known
// to have committed; kUnavailable when it is known not to have, or when that cannot be told within
// the deadline (a caller retries, and its dedupe keys make a retry of a commit that did happen
// harmless; an OK for one that did not would lose it).
//
// An id says "committed" for the wrong transaction when the server lost the tail of its WAL (a
// crash, or a standby promoted before it received it) and has since given the same id to another
// one. Ours committed before the connection was lost, on the old server's clock (its commit record,
// replicated, keeps that time); another's commits after the server came back. So a "committed"
// counts only if its commit timestamp (track_commit_timestamp) falls before the loss; without
// commit timestamps, only on the instance the transaction ran on, never restarted since (a backend
// crash that reinitialises the server in place goes unseen there: turn commit timestamps on).
Status PgConnection::SettleCommit(const InDoubtCommit& doubt) {
  constexpr auto kDeadline = std::chrono::seconds(60);
  const auto until = std::chrono::steady_clock::now() + kDeadline;
  LOG(WARNING) << "event=commit_in_doubt xid=" << doubt.xid << " error=\"" << doubt.error
               << "\" action=look_up_outcome";
  auto backoff = std::chrono::milliseconds(100);
  std::string last = "no server answered";
  while (true) {
    Status s = Reconnect();
    if (!s.ok()) last = s.message();
    const std::string st = s.ok() ? TxStatus(*this, doubt.xid) : "";
    if (st == "aborted") {
      LOG(WARNING) << "event=commit_settled xid=" << doubt.xid << " outcome=not_committed";
      return Status(Code::kUnavailable,
                    "postgres connection lost during COMMIT; looked up: transaction " + doubt.xid +
                        " did not commit (" + doubt.error + ")");
    }
    if (st == "committed") {
      auto ts = Exec(
          "SELECT extract(epoch from pg_xact_commit_timestamp(($1::bigint % "
          "4294967296)::text::xid))::text",
          {doubt.xid});
      if (ts.ok() && !ts->get(0, 0).empty()) {
        // The commit timestamp against the old server's clock before COMMIT plus the time until
        // the loss was seen, with 100 ms for the first answer's trip.
        const double at = std::stod(ts->get(0, 0));
        if (at <= doubt.server_clock_before + doubt.seconds_to_loss + 0.1) {
          LOG(WARNING) << "event=commit_settled xid=" << doubt.xid << " outcome=committed";
          return Status::Ok();
        }
        LOG(WARNING) << "event=commit_settled xid=" << doubt.xid
                     << " outcome=not_committed reason=id_given_again";
        return Status(Code::kUnavailable,
                      "postgres connection lost during COMMIT; looked up: transaction " +
                          doubt.xid + " did not commit (its id was given again after the loss)");
      }
      // Without commit timestamps: the same instance, never restarted, gave the id to no one else.
      auto here = Exec("SELECT pg_postmaster_start_time()::text");
      if (here.ok() && here->get(0, 0) == doubt.server_started) {
        LOG(WARNING) << "event=commit_settled xid=" << doubt.xid << " outcome=committed";
        return Status::Ok();
      }
      last = "transaction " + doubt.xid +
             " shows committed on another server than it ran on, and without commit "
             "timestamps (track_commit_timestamp) that cannot be told from another transaction "
             "given its id";
      break;
    }
    if (!st.empty())
      last = "transaction " + doubt.xid + " still " + st;  // its session has not ended yet
    if (std::chrono::steady_clock::now() + backoff > until) break;
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
  }
  LOG(ERROR) << "event=commit_in_doubt xid=" << doubt.xid << " outcome=unknown reason=\"" << last
             << "\"";
  return Status(Code::kUnavailable, "postgres COMMIT in doubt: " + last + " (" + doubt.error + ")");
}
void PgConnection::Rollback() {
  if (healthy()) {
    PQclear(PQexec(impl_->conn, "ROLLBACK"));
  }
}

Result<PgTransaction> PgTransaction::Begin(PgConnection& conn) {
  Status s = conn.Begin();
  if (!s.ok()) {
    conn.Rollback();  // a BEGIN refused inside an aborted transaction leaves nothing open either
    return s;
  }
  return PgTransaction(conn);
}

PgTransaction::PgTransaction(PgTransaction&& other) noexcept : conn_(other.conn_) {
  other.conn_ = nullptr;
}

Status PgTransaction::Commit() {
  if (!conn_) return Status(Code::kInternal, "COMMIT of a transaction that is over");
  Status s = conn_->Commit();
  if (s.ok()) conn_ = nullptr;
  return s;
}

void PgTransaction::Rollback() {
  if (conn_) conn_->Rollback();
  conn_ = nullptr;
}

Result<bool> PgConnection::WaitNotify(int timeout_ms) {
  if (!healthy()) return Status(Code::kUnavailable, "postgres connection lost");
  auto drain = [&]() -> bool {
    bool got = false;
    while (PGnotify* n = PQnotifies(impl_->conn)) {
      got = true;
      PQfreemem(n);
    }
    return got;
  };
  if (!PQconsumeInput(impl_->conn))
    return Status(Code::kUnavailable, Trim(PQerrorMessage(impl_->conn)));
  if (drain()) return true;
  pollfd pfd{PQsocket(impl_->conn), POLLIN, 0};
  int rc = ::poll(&pfd, 1, timeout_ms);
  if (rc <= 0) return false;
  if (!PQconsumeInput(impl_->conn))
    return Status(Code::kUnavailable, Trim(PQerrorMessage(impl_->conn)));
  return drain();
}

namespace {
constexpr const char* kMigrationLockKey = "7204116520951";  // any constant shared by replicas
constexpr const char* kCreateMigrations =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT "
    "now())";
constexpr const char* kAppliedVersions = "SELECT version FROM schema_migrations";
constexpr const char* kRecordMigration =
    "INSERT INTO schema_migrations (version, name) VALUES ($1::int, $2)";
}  // namespace

namespace {
constexpr const char* kMigrationLockTimeout = "SET LOCAL lock_timeout = '5s'";
}  // namespace

namespace {
using MigrationFiles = std::vector<std::pair<int, std::string>>;

Result<MigrationFiles> ListMigrations(const std::string& dir) {
  MigrationFiles files;
  DIR* d = opendir(dir.c_str());
  if (!d) return Status(Code::kNotFound, "migrations folder not found: " + dir);
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() < 9 || name.substr(name.size() - 4) != ".sql" || !std::isdigit(name[0]))
      continue;
    files.emplace_back(std::atoi(name.c_str()), name);
  }
  closedir(d);
  std::sort(files.begin(), files.end());
  for (size_t i = 1; i < files.size(); ++i) {
    if (files[i].first == files[i - 1].first) {
      return Status(Code::kInvalidArgument,
                    "two migrations numbered " + std::to_string(files[i].first));
    }
  }
  return files;
}
}  // namespace

Status CheckMigrations(PgConnection& conn, const std::string& dir) {
  auto files = ListMigrations(dir);
  if (!files.ok()) return files.status();
  // A service's role may read schema_migrations but not create it: look before reading.
  auto exists = conn.Exec("SELECT to_regclass('schema_migrations') IS NOT NULL");
  if (!exists.ok()) return exists.status();
  std::vector<int> done;
  if (exists->get(0, 0) == "t") {
    auto applied = conn.Exec(kAppliedVersions);
    if (!applied.ok()) return applied.status();
    for (size_t r = 0; r < applied->size(); ++r)
      done.push_back(static_cast<int>(applied->get_int(r, 0)));
  }
  std::vector<std::string> pending;
  for (const auto& [version, name] : *files) {
    if (std::find(done.begin(), done.end(), version) == done.end()) pending.push_back(name);
  }
  if (pending.empty()) return Status::Ok();
  return Status(
      Code::kUnavailable,
      "the database schema is behind this binary: " + std::to_string(pending.size()) +
          " migration(s) not applied, the first " + pending.front() +
          "; apply them with convoy-migrate as the database owner (README: Database roles)");
}

Status RunMigrations(PgConnection& conn, const std::string& dir) {
  auto listed = ListMigrations(dir);
  if (!listed.ok()) return listed.status();
  const MigrationFiles& files = *listed;
  auto lock = conn.Exec(std::string("SELECT pg_advisory_lock(") + kMigrationLockKey + ")");
  if (!lock.ok()) return lock.status();
  // Unlocking is best effort: a lock it could not give back goes with the session.
  auto unlock = [&] {
    Status u =
        conn.Exec(std::string("SELECT pg_advisory_unlock(") + kMigrationLockKey + ")").status();
    if (!u.ok())
      LOG(WARNING) << LogCtx{"migrations"}
                   << "event=migration_unlock_failed error=" << u.ToString();
  };
  Status s = conn.Exec(kCreateMigrations).status();
  auto applied = s.ok() ? conn.Exec(kAppliedVersions) : Result<PgRows>(s);
  if (!applied.ok()) {
    unlock();
    return applied.status();
  }
  std::vector<int> done;
  for (size_t r = 0; r < applied->size(); ++r)
    done.push_back(static_cast<int>(applied->get_int(r, 0)));
  for (const auto& [version, name] : files) {
    if (std::find(done.begin(), done.end(), version) != done.end()) continue;
    std::ifstream in(dir + "/" + name);
    std::stringstream sql;
    sql << in.rdbuf();
    // Other replicas keep serving while a new version migrates: a DDL statement waits at most
    // lock_timeout for their locks, and a lock timeout or a deadlock with their traffic is tried
    // again (with backoff) instead of failing the start.
    for (int attempt = 1;; ++attempt) {
      {
        auto tx = PgTransaction::Begin(conn);
        s = tx.status();
        if (s.ok()) s = conn.Exec(kMigrationLockTimeout).status();
        if (s.ok()) s = conn.ExecScript(sql.str());
        if (s.ok()) s = conn.Exec(kRecordMigration, {std::to_string(version), name}).status();
        if (s.ok()) s = tx->Commit();
      }  // rolled back here unless committed
      if (s.ok()) break;
      if (s.code() != Code::kTimeout || attempt >= 20) {
        unlock();
        return Status(s.code(), "migration " + name + ": " + s.message());
      }
      LOG(WARNING) << LogCtx{"migrations"} << "event=migration_retry name=" << name
                   << " attempt=" << attempt << " error=" << s.ToString();
      std::this_thread::sleep_for(
          std::chrono::milliseconds(std::min(100 << std::min(attempt, 5), 3000)));
    }
    LOG(INFO) << LogCtx{"migrations"} << "event=migration_applied name=" << name;
  }
  unlock();
  return Status::Ok();
}

std::string PgTextArray(const std::vector<std::string>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    out += i ? ",\"" : "\"";
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

}  // namespace convoy
