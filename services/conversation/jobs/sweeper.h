#pragma once
// The command ledger's sweeper (migration 0005): a command published from the outbox that its
// consumer has neither settled nor pushed back (due_at) for longer than a margin was lost on the
// way — a purged queue, a bug — and nothing else would ever send it. Any replica may sweep; one
// does at a time (a transaction-level advisory lock).
#include <chrono>
#include <cstddef>

#include "convoy/pg.h"

namespace convoy::conversation {

struct SweepSettings {
  std::chrono::seconds interval{30};  // how often a replica tries
  std::chrono::seconds margin{900};   // how far past its due time a command counts as lost
  int max_sweeps = 3;                 // published again at most this often, then abandoned
  int batch = 500;
};

struct SweepResult {
  size_t requeued = 0, abandoned = 0;
  bool skipped = false;  // another replica was sweeping
};

// One pass: overdue commands are marked unpublished, so the relay publishes them again (the
// consumers' dedupe keys absorb a copy that was only late), or settled as 'abandoned' once swept
// max_sweeps times. Counted in convoy_sweeper_requeued_total / convoy_sweeper_abandoned_total by
// queue, and logged with their ids.
Result<SweepResult> SweepOnce(PgConnection& db, const SweepSettings& settings);

}  // namespace convoy::conversation
