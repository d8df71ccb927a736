#include "in_doubt.h"

#include <glog/logging.h>

#include "convoy/log.h"
#include "convoy/metrics.h"

namespace convoy::outbound {

namespace {

// The partial index outbound_messages_in_doubt (0013) keeps this cheap however long the log is.
constexpr const char* kInDoubt =
    "SELECT count(*), coalesce(floor(extract(epoch FROM clock_timestamp() - "
    "min(attempt_started_at))), 0)::bigint "
    "FROM outbound_messages WHERE status IN ('sending', 'uncertain')";

Gauge& InDoubtSends() {
  return DefaultRegistry().GetGauge(
      "convoy_outbound_in_doubt_sends",
      "Sends Meta may have taken with no record saying so ('sending' or 'uncertain').");
}
Gauge& OldestInDoubt() {
  return DefaultRegistry().GetGauge("convoy_outbound_in_doubt_oldest_seconds",
                                    "Age of the oldest send in doubt (0 when none).");
}

}  // namespace

Result<InDoubt> MeasureInDoubt(PgConnection& db) {
  auto r = db.Exec(kInDoubt);
  if (!r.ok()) return r.status();
  return InDoubt{r->get_int(0, 0), r->get_int(0, 1)};
}

InDoubtMonitor::InDoubtMonitor(std::string pg_dsn, std::chrono::seconds interval,
                               std::chrono::seconds reconcile)
    : dsn_(std::move(pg_dsn)), loop_(interval, [this] { Measure(); }) {
  DefaultRegistry()
      .GetGauge("convoy_outbound_reconcile_seconds",
                "--reconcile_seconds: how long a send in doubt waits for its status webhook before "
                "it is sent again.")
      .Set(reconcile.count());
  InDoubtSends();
  OldestInDoubt();
}

void InDoubtMonitor::Measure() {
  if (!db_) {
    auto c = PgConnection::Connect(dsn_);
    if (c.ok()) db_ = std::move(*c);
  }
  auto m = db_ ? MeasureInDoubt(*db_)
               : Result<InDoubt>(Status(Code::kUnavailable, "no database connection"));
  if (m.ok()) {
    InDoubtSends().Set(m->count);
    OldestInDoubt().Set(m->oldest_seconds);
  } else {
    LOG_EVERY_N(WARNING, 20) << LogCtx("outbound")
                             << "event=in_doubt_unmeasured error=" << m.status().ToString();
  }
}

}  // namespace convoy::outbound
