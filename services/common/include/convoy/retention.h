#pragma once
// Retention: nothing grows forever. Each service prunes the tables it owns, in small batches
// (one autocommitted DELETE of at most `batch` rows at a time, never inside a transaction, never
// touching a conversation's row, so no conversation lock is ever held or waited for), one replica
// at a time (a session advisory lock per service), every --retention_interval_seconds.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "convoy/periodic.h"
#include "convoy/pg.h"

namespace convoy {

struct PruneRule {
  std::string table;
  // A condition on the table's rows naming those old enough to go; $1 is the rule's age as an
  // interval ("now() - $1::interval").
  std::string old_rows;
  int64_t age_seconds = 0;
  std::string key_column;  // the table's key: batches are picked and deleted by it
  // Runs on each batch's keys before their rows are deleted (media: their files); an error stops
  // the pass, the rows stay.
  std::function<Status(PgConnection& db, const std::vector<std::string>& keys)> before_delete;
};

// One pass: every rule until its old rows are gone (or max_batches per rule). Rows deleted per
// table; kUnavailable when another replica holds the lock (nothing done).
Result<std::map<std::string, int64_t>> PruneOnce(PgConnection& db, const std::string& lock_name,
                                                 const std::vector<PruneRule>& rules,
                                                 int batch = 1000, int max_batches = 1000);

// A thread that runs PruneOnce every `interval` on its own connection (reconnecting as needed)
// and counts convoy_retention_deleted_total{table}. The first pass runs one interval after start.
class RetentionLoop {
 public:
  RetentionLoop(std::string pg_dsn, std::string lock_name, std::vector<PruneRule> rules,
                std::chrono::seconds interval);
  void Start() { loop_.Start(); }
  void Stop() { loop_.Stop(); }

 private:
  void Pass();  // on the loop's thread only
  std::string dsn_, lock_;
  std::vector<PruneRule> rules_;
  std::unique_ptr<PgConnection> db_;
  Periodic loop_;  // last: stopped first, while the rest is still there
};

}  // namespace convoy
