#include "jobs/sweeper.h"

#include <glog/logging.h>

#include "convoy/log.h"
#include "convoy/metrics.h"

namespace convoy::conversation {
namespace {

constexpr const char* kTryLock = "SELECT pg_try_advisory_xact_lock(7406021)";  // "convoy sweeper"
constexpr const char* kSweep =
    "WITH overdue AS (SELECT id FROM outbox WHERE settled_at IS NULL AND due_at IS NOT NULL "
    "AND published_at IS NOT NULL AND greatest(due_at, published_at) < now() - make_interval(secs "
    "=> $1::float8) "
    "ORDER BY due_at LIMIT $2::int FOR UPDATE SKIP LOCKED) "
    "UPDATE outbox o SET sweeps = o.sweeps + 1, due_at = now(), "
    "published_at = CASE WHEN o.sweeps < $3::int THEN NULL ELSE o.published_at END, "
    "settled_at = CASE WHEN o.sweeps < $3::int THEN NULL ELSE now() END, "
    "outcome = CASE WHEN o.sweeps < $3::int THEN NULL ELSE 'abandoned' END "
    "FROM overdue WHERE o.id = overdue.id "
    "RETURNING o.routing_key, o.dedupe_key, o.correlation_id, coalesce(o.conversation_key, ''), "
    "(o.settled_at IS NOT NULL)::int, o.sweeps";

Counter& Requeued(const std::string& queue) {
  return DefaultRegistry().GetCounter(
      "convoy_sweeper_requeued_total",
      "Commands found lost (overdue, unsettled) and published again.", "queue=\"" + queue + "\"");
}
Counter& Abandoned(const std::string& queue) {
  return DefaultRegistry().GetCounter(
      "convoy_sweeper_abandoned_total",
      "Commands found lost after their last sweep: given up, needs an operator.",
      "queue=\"" + queue + "\"");
}

}  // namespace

Result<SweepResult> SweepOnce(PgConnection& db, const SweepSettings& settings) {
  SweepResult result;
  auto tx = PgTransaction::Begin(db);
  if (!tx.ok()) return tx.status();
  auto locked = db.Exec(kTryLock, {});
  if (!locked.ok()) return locked.status();
  if (locked->get(0, 0) != "t") {
    result.skipped = true;
    return result;
  }
  auto rows =
      db.Exec(kSweep, {std::to_string(settings.margin.count()), std::to_string(settings.batch),
                       std::to_string(settings.max_sweeps)});
  if (!rows.ok()) return rows.status();
  Status s = tx->Commit();
  if (!s.ok()) return s;
  for (size_t i = 0; i < rows->size(); ++i) {
    const std::string queue = rows->get(i, 0);
    LogCtx ctx("sweeper", rows->get(i, 2), rows->get(i, 3), rows->get(i, 1));
    if (rows->get_int(i, 4) != 0) {
      ++result.abandoned;
      Abandoned(queue).Inc();
      LOG(ERROR) << ctx << "event=command_abandoned queue=" << queue
                 << " sweeps=" << rows->get(i, 5);
    } else {
      ++result.requeued;
      Requeued(queue).Inc();
      LOG(WARNING) << ctx << "event=command_requeued queue=" << queue
                   << " sweep=" << rows->get(i, 5);
    }
  }
  return result;
}

}  // namespace convoy::conversation
