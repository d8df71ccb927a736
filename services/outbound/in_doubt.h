#pragma once
// Sends in doubt: rows 'sending' or 'uncertain', whose attempt Meta may have taken with no record
// saying so (the process died between Graph's answer and the record, or the answer was lost).
// Each is settled by its status webhook or, after --reconcile_seconds without one, sent again;
// one older than that window means neither happened. Measured on a schedule into gauges, so an
// alert can see it (deploy/prometheus: ConvoySendsInDoubt).
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "convoy/periodic.h"
#include "convoy/pg.h"

namespace convoy::outbound {

struct InDoubt {
  int64_t count = 0;
  int64_t oldest_seconds = 0;  // since the oldest one's attempt started (0 when none)
};
Result<InDoubt> MeasureInDoubt(PgConnection& db);

// A thread that measures every `interval` on a connection of its own (reconnecting as needed)
// into convoy_outbound_in_doubt_sends and convoy_outbound_in_doubt_oldest_seconds, and exports
// the reconcile window as convoy_outbound_reconcile_seconds.
class InDoubtMonitor {
 public:
  InDoubtMonitor(std::string pg_dsn, std::chrono::seconds interval, std::chrono::seconds reconcile);
  void Start() { loop_.Start(); }
  void Stop() { loop_.Stop(); }

 private:
  void Measure();  // on the loop's thread only
  std::string dsn_;
  std::unique_ptr<PgConnection> db_;
  Periodic loop_;  // last: stopped first, while the rest is still there
};

}  // namespace convoy::outbound
