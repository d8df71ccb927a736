#include "engine/run_timeouts.h"

#include <glog/logging.h>

#include <algorithm>

#include "convoy/crypto.h"
#include "convoy/log.h"
#include "convoy/topology.h"
#include "engine/state_codec.h"

namespace convoy::conversation {

namespace {

constexpr const char* kTryLock = "SELECT pg_try_advisory_lock(7406029)";  // "convoy run timeouts"
constexpr const char* kUnlock = "SELECT pg_advisory_unlock(7406029)";
constexpr const char* kDueRuns =
    "SELECT conversation_key FROM conversations WHERE run_expires_at <= now() ORDER BY "
    "run_expires_at LIMIT $1::int";
// The row lock (waiting for a transaction applying a message), and the due time as it is now.
constexpr const char* kLockIfDue =
    "SELECT state::text, coalesce(run_expires_at <= now(), false)::int FROM conversations WHERE "
    "conversation_key = $1 "
    "FOR UPDATE";
// The due time, to the microsecond (the event's key: one per due time, so a run expires once) and
// in whole seconds (the engine's: a message sent before it still belongs to the run).
constexpr const char* kDue =
    "SELECT (extract(epoch FROM run_expires_at) * 1000000)::bigint::text, floor(extract(epoch FROM "
    "run_expires_at))::bigint "
    "FROM conversations WHERE conversation_key = $1 AND run_expires_at IS NOT NULL";
// flow.expired (proto-schemas/flow.expired.v1.json), written before the due time is cleared.
constexpr const char* kEvent =
    "INSERT INTO outbox (exchange, routing_key, dedupe_key, correlation_id, conversation_key, "
    "body) "
    "SELECT 'convoy.events', $9, $2, $3, c.conversation_key, json_strip_nulls(json_build_object("
    "'schema', 'flow.expired', 'version', 1, 'correlation_id', $3::text, 'dedupe_key', $2::text, "
    "'conversation_key', c.conversation_key, 'phone_number_id', c.phone_number_id, 'tenant', "
    "n.tenant, "
    "'flow', $4::text, 'step', $5::text, 'on_timeout', $6::text, "
    "'expired_at', to_char(c.run_expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    "'ended_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    "'last_activity_at', CASE WHEN $7::bigint > 0 THEN "
    "to_char(to_timestamp($7::bigint) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') END, "
    "'ended_by', $8::text))::text "
    "FROM conversations c LEFT JOIN numbers n ON n.phone_number_id = c.phone_number_id "
    "WHERE c.conversation_key = $1 ON CONFLICT (dedupe_key) DO NOTHING";
constexpr const char* kSave =
    "UPDATE conversations SET state = $2::jsonb, flow = $3, version = version + 1, updated_at = "
    "now(), "
    "run_expires_at = NULL WHERE conversation_key = $1";
constexpr const char* kAudit =
    "INSERT INTO transitions (conversation_key, from_step, to_step, trigger_dedupe_key, "
    "correlation_id, note) "
    "VALUES ($1, $2, $3, $4, $5, $6)";

std::string Where(const ConversationState& s) {
  return s.flow.empty() ? "idle" : s.flow + "/" + s.step;
}

}  // namespace

Status ExpireLockedRun(PgConnection& db, const Engine& engine, const RunExpiry& expiry, int64_t now,
                       ConversationState* state, std::string* note) {
  const std::string& key = expiry.conversation_key;
  auto due = db.Exec(kDue, {key});
  if (!due.ok()) return due.status();
  if (due->empty()) return Status(Code::kInternal, "the run has no due time to expire by");
  const std::string event_key = key + ":flow.expired:" + due->get(0, 0);
  const std::string trigger =
      expiry.trigger_dedupe_key.empty() ? event_key : expiry.trigger_dedupe_key;
  const std::string correlation = expiry.correlation_id.empty()
                                      ? "expiry-" + Sha256Hex(event_key).substr(0, 24)
                                      : expiry.correlation_id;
  Event e;
  e.kind = Event::Kind::kRunExpired;
  e.id = key + ":" + trigger;
  e.due_at = due->get_int(0, 1);
  Transition t = engine.Advance(*state, e, now);
  LogCtx ctx("run_timeouts", correlation, key, trigger);
  for (const Effect& effect : t.effects) {
    if (effect.kind != Effect::Kind::kFlowExpired) {
      LOG(DFATAL) << ctx
                  << "event=run_expiry_effect_dropped kind=" << static_cast<int>(effect.kind);
      continue;
    }
    Status s = db.Exec(kEvent, {key, event_key, correlation, effect.flow, effect.outcome,
                                std::string(effect.resumed ? "resume" : "restart"),
                                std::to_string(effect.last_activity_at), expiry.ended_by,
                                std::string(routing::kFlowExpired)})
                   .status();
    if (!s.ok()) return s;
  }
  Status s = db.Exec(kSave, {key, EncodeState(t.state),
                             t.state.flow.empty() ? std::nullopt
                                                  : std::optional<std::string>(t.state.flow)})
                 .status();
  if (s.ok())
    s = db.Exec(kAudit, {key, Where(*state), Where(t.state), trigger, correlation, t.note})
            .status();
  if (!s.ok()) return s;
  LOG(INFO) << ctx << "event=run_expired from=" << Where(*state) << " to=" << Where(t.state)
            << " note=" << t.note << " by=" << expiry.ended_by;
  if (note) *note = t.note;
  *state = std::move(t.state);
  return Status::Ok();
}

RunDue NextRunDue(const Engine& engine, const ConversationState& before,
                  const ConversationState& after, bool from_person) {
  RunDue due;
  const int64_t timeout = engine.RunTimeoutSeconds(after);
  if (timeout == 0) {
    due.seconds = "0";
  } else if (from_person || before.flow != after.flow || before.step != after.step) {
    due.seconds = std::to_string(timeout);
    due.granularity = std::to_string(std::clamp<int64_t>(timeout / 100, 1, 900));
  }
  return due;
}

Result<std::string> ExpireRunIfDue(PgConnection& db, const Engine& engine,
                                   const std::string& conversation_key, int64_t now) {
  auto tx = PgTransaction::Begin(db);
  if (!tx.ok()) return tx.status();
  auto locked = db.Exec(kLockIfDue, {conversation_key});
  if (!locked.ok()) return locked.status();
  if (locked->empty() || locked->get_int(0, 1) == 0) return std::string();
  ConversationState state = DecodeState(locked->get(0, 0));
  std::string note;
  Status s = ExpireLockedRun(db, engine, {conversation_key, "", "", "sweep"}, now, &state, &note);
  if (s.ok()) s = tx->Commit();
  if (!s.ok()) return s;
  return note;
}

Result<RunSweep> ExpireDueRuns(PgConnection& db, const Engine& engine, int64_t now, int max) {
  RunSweep sweep;
  auto locked = db.Exec(kTryLock);
  if (!locked.ok()) return locked.status();
  if (locked->get(0, 0) != "t") {
    sweep.skipped = true;
    return sweep;
  }
  Status failed;
  auto due = db.Exec(kDueRuns, {std::to_string(max)});
  if (!due.ok()) failed = due.status();
  for (size_t i = 0; failed.ok() && i < due->size(); ++i) {
    auto note = ExpireRunIfDue(db, engine, due->get(i, 0), now);
    if (!note.ok()) {
      failed = note.status();
    } else if (note->empty()) {
      ++sweep.touched;
    } else if (note->rfind("expired", 0) == 0) {
      ++sweep.expired;
    }
  }
  (void)db.Exec(kUnlock);  // a lost connection released it already
  if (!failed.ok()) return failed;
  return sweep;
}

}  // namespace convoy::conversation
