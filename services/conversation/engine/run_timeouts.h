#pragma once
// A run's inactivity timeout (migration 0032). conversations.run_expires_at is when the
// conversation's run ends unless the person writes first: the processor sets it in the
// conversation's transaction as the run advances (NextRunDue) and, for a message sent at or after
// it, ends the run before applying the message (ExpireLockedRun), so that message is routed fresh
// whether or not the sweeper came first. The sweeper (ExpireDueRuns, on the relay's thread every
// --sweep_interval_seconds) ends the others. Either way under the conversation's row lock, the due
// time re-checked under it: the engine's kRunExpired transition (the run ends, or stays for a flow
// with on_timeout resume), audited in `transitions` (note `expired` or `expired_kept`),
// flow.expired on convoy.events through the outbox, and the due time cleared. Nothing is said to
// the person: outside the 24-hour window only a template could be.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "convoy/pg.h"
#include "engine/engine.h"

namespace convoy::conversation {

// What noticed a run's due time had passed.
struct RunExpiry {
  std::string conversation_key;
  // The update that noticed (its audit row's trigger and correlation); "" for the sweeper: made
  // from the due time.
  std::string correlation_id, trigger_dedupe_key;
  std::string ended_by = "sweep";  // sweep | message
};

// Ends the run of a conversation whose row this transaction has locked and whose due time it
// found passed: *state is its state before, and after. Saves the state, clears the due time,
// audits, and writes flow.expired (a flow with on_timeout resume keeps its run; one with
// `assignment` is left to its assignment: only the due time is cleared). The audit note, in *note
// when given.
Status ExpireLockedRun(PgConnection& db, const Engine& engine, const RunExpiry& expiry, int64_t now,
                       ConversationState* state, std::string* note = nullptr);

// The due time after a transition, as the processor's save takes it.
struct RunDue {
  // nullopt keeps it, "0" clears it (no run that can expire), "N" sets it N seconds from now (the
  // person wrote, or the run moved to another step or flow) ...
  std::optional<std::string> seconds;
  // ... rounded up to a multiple of this many seconds: a 100th of the timeout, from 1 s to 15
  // minutes (864 s for 24 h). The messages of a lively run then mostly leave the indexed column as
  // it was, so their updates of the row stay HOT (no new index entries); a run ends at most 1 %
  // after its timeout, never before.
  std::string granularity = "1";
};
RunDue NextRunDue(const Engine& engine, const ConversationState& before,
                  const ConversationState& after, bool from_person);

// One conversation, in a transaction of its own: its row locked (waiting for a message being
// applied to it), the due time checked again under the lock, the run ended. The audit note, or
// "" when it was not due (a message came first, or another replica ended it).
Result<std::string> ExpireRunIfDue(PgConnection& db, const Engine& engine,
                                   const std::string& conversation_key, int64_t now);

struct RunSweep {
  size_t expired = 0;    // ended (or reported, for a flow that resumes)
  size_t touched = 0;    // due when found, no longer under the lock
  bool skipped = false;  // another replica was sweeping
};

// The sweeper's pass: due runs, longest overdue first, at most `max`, each by ExpireRunIfDue. One
// replica at a time (a session advisory lock); `now` is the engine's clock.
Result<RunSweep> ExpireDueRuns(PgConnection& db, const Engine& engine, int64_t now, int max = 500);

}  // namespace convoy::conversation
