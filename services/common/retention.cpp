#include "convoy/retention.h"

#include <glog/logging.h>

#include "convoy/log.h"
#include "convoy/metrics.h"

namespace convoy {

namespace {

Counter& Deleted(const std::string& table) {
  return DefaultRegistry().GetCounter("convoy_retention_deleted_total",
                                      "Rows removed by retention, by table.",
                                      "table=\"" + table + "\"");
}

}  // namespace

Result<std::map<std::string, int64_t>> PruneOnce(PgConnection& db, const std::string& lock_name,
                                                 const std::vector<PruneRule>& rules, int batch,
                                                 int max_batches) {
  auto locked = db.Exec("SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                        {"convoy:retention:" + lock_name});
  if (!locked.ok()) return locked.status();
  if (locked->get(0, 0) != "t") return Status(Code::kUnavailable, "another replica is pruning");
  std::map<std::string, int64_t> deleted;
  Status failed = Status::Ok();
  for (const auto& rule : rules) {
    const std::string& key = rule.key_column;
    const std::string pick = "SELECT " + key + "::text FROM " + rule.table + " WHERE " +
                             rule.old_rows + " LIMIT " + std::to_string(batch);
    // The condition again: a row that changed since it was picked (a command settled late) stays.
    const std::string remove = "DELETE FROM " + rule.table + " WHERE " + key +
                               "::text = ANY($2::text[]) AND " + rule.old_rows;
    int64_t total = 0;
    for (int b = 0; b < max_batches; ++b) {
      auto rows = db.Exec(pick, {std::to_string(rule.age_seconds) + " seconds"});
      if (!rows.ok()) {
        failed = rows.status();
        break;
      }
      if (rows->empty()) break;
      std::vector<std::string> keys;
      for (size_t i = 0; i < rows->size(); ++i) keys.push_back(rows->get(i, 0));
      const std::string array = PgTextArray(keys);
      if (rule.before_delete) {
        Status s = rule.before_delete(db, keys);
        if (!s.ok()) {
          failed = s;
          break;
        }
      }
      auto gone = db.Exec(remove, {std::to_string(rule.age_seconds) + " seconds", array});
      if (!gone.ok()) {
        failed = gone.status();
        break;
      }
      total += static_cast<int64_t>(gone->affected);
      if (rows->size() < static_cast<size_t>(batch)) break;
    }
    deleted[rule.table] += total;
    if (total > 0) Deleted(rule.table).Inc(static_cast<uint64_t>(total));
    if (!failed.ok()) break;
  }
  // Best effort: a lock not given back goes with the session (a lost connection's at once).
  Status unlocked = db.Exec("SELECT pg_advisory_unlock(hashtextextended($1, 0))",
                            {"convoy:retention:" + lock_name})
                        .status();
  if (!unlocked.ok())
    LOG(WARNING) << LogCtx("retention") << "event=retention_unlock_failed lock=" << lock_name
                 << " error=" << unlocked.ToString();
  if (!failed.ok()) return failed;
  return deleted;
}

RetentionLoop::RetentionLoop(std::string pg_dsn, std::string lock_name,
                             std::vector<PruneRule> rules, std::chrono::seconds interval)
    : dsn_(std::move(pg_dsn)),
      lock_(std::move(lock_name)),
      rules_(std::move(rules)),
      loop_(
          interval, [this] { Pass(); }, Periodic::First::kAfterInterval) {}

void RetentionLoop::Pass() {
  if (!db_) {
    auto c = PgConnection::Connect(dsn_);
    if (!c.ok()) {
      LOG(WARNING) << LogCtx("retention")
                   << "event=retention_skipped error=" << c.status().ToString();
      return;
    }
    db_ = std::move(*c);
  }
  auto r = PruneOnce(*db_, lock_, rules_);
  if (!r.ok()) {
    if (r.status().code() != Code::kUnavailable || db_->healthy()) {
      LOG(WARNING) << LogCtx("retention")
                   << "event=retention_failed error=" << r.status().ToString();
    }
    return;
  }
  std::string summary;
  for (const auto& [table, n] : *r) {
    if (n > 0) summary += " " + table + "=" + std::to_string(n);
  }
  if (!summary.empty())
    LOG(INFO) << LogCtx("retention") << "event=retention_pass deleted" << summary;
}

}  // namespace convoy
