#include "store/assignments.h"

#include <glog/logging.h>

#include "convoy/log.h"
#include "convoy/metrics.h"
#include "convoy/topology.h"

namespace convoy::conversation {

namespace {

// The assignment.<status> event, written to the outbox: what changed and the assignment as it is
// now. The assignment.<event> event ($4: created, started, completed, cancelled, expired,
// undeliverable), written to the outbox: what changed and the assignment as it is now; `started`
// carries the checklist. A retried assignment's later rounds have keys of their own (":<round>").
constexpr const char* kEvent =
    "INSERT INTO outbox (exchange, routing_key, dedupe_key, correlation_id, conversation_key, "
    "body) "
    "SELECT 'convoy.events', 'assignment.' || $4, k.key, 'assignment-' || a.id, "
    "a.conversation_key, json_build_object('schema', 'assignment.' || $4, 'version', 1, "
    "'correlation_id', 'assignment-' || a.id, 'dedupe_key', k.key, "
    "'conversation_key', a.conversation_key, 'phone_number_id', a.phone_number_id, "
    "'assignment_id', a.id, "
    "'operator', a.operator, 'reference', a.reference, 'status', a.status, 'reason', $2::text, "
    "'assignment', CASE WHEN $4 = 'started' THEN json_build_object('id', a.id, 'title', "
    "c.definition->>'title', "
    "'reference', a.reference, 'operator_name', coalesce(a.operator_name, ''), 'flow', $3::text, "
    "'questions', c.definition->'questions') END)::text "
    "FROM assignments a JOIN checklists c ON c.id = a.checklist_id AND c.version = "
    "a.checklist_version, "
    "LATERAL (SELECT 'assignment.' || $4 || ':' || a.id || CASE WHEN a.round > 1 THEN ':' || "
    "a.round ELSE '' END AS key) k "
    "WHERE a.id = $1 ON CONFLICT (dedupe_key) DO NOTHING";
constexpr const char* kAudit =
    "INSERT INTO assignment_changes (assignment_id, from_status, to_status, reason) VALUES ($1, "
    "$2, $3, $4)";

Counter& Moves(const std::string& to) {
  return DefaultRegistry().GetCounter("convoy_assignments_total", "Assignment status changes.",
                                      "status=\"" + to + "\"");
}

}  // namespace

std::string OperatorConversation(const std::string& phone_number_id, const std::string& op) {
  return phone_number_id + ":" + op;
}

Result<bool> ActivateNext(PgConnection& db, const std::string& phone_number_id,
                          const std::string& op, const AssignmentSettings& settings) {
  // One active per operator (a partial unique index backs it): the row lock on the pending one and
  // the index make two starts at once safe.
  auto busy = db.Exec(
      "SELECT 1 FROM assignments WHERE phone_number_id = $1 AND operator = $2 AND status = "
      "'active'",
      {phone_number_id, op});
  if (!busy.ok()) return busy.status();
  if (!busy->empty()) return false;
  auto next = db.Exec(
      "UPDATE assignments SET status = 'active', started_at = now(), updated_at = now(), "
      "expires_at = now() + make_interval(secs => $3::float8) WHERE id = (SELECT id FROM "
      "assignments "
      "WHERE phone_number_id = $1 AND operator = $2 AND status = 'pending' ORDER BY created_at, id "
      "LIMIT 1 "
      "FOR UPDATE SKIP LOCKED) RETURNING id",
      {phone_number_id, op, std::to_string(settings.ttl.count())});
  if (!next.ok()) return next.status();
  if (next->empty()) return false;
  const std::string id = next->get(0, 0);
  Status s = db.Exec(kAudit, {id, std::string("pending"), std::string("active"),
                              std::string("the operator is free")})
                 .status();
  if (s.ok())
    s = db.Exec(kEvent,
                {id, std::string("the operator is free"), settings.flow, std::string("started")})
            .status();
  if (!s.ok()) return s;
  Moves("active").Inc();
  LOG(INFO) << LogCtx("assignments") << "event=assignment_started assignment=" << id;
  return true;
}

Result<bool> MoveAssignment(PgConnection& db, const std::string& id, const std::string& from,
                            const std::string& to, const std::string& reason,
                            const std::string& answers_json, const AssignmentSettings& settings) {
  auto cur = db.Exec(
      "SELECT status, phone_number_id, operator FROM assignments WHERE id = $1 FOR UPDATE", {id});
  if (!cur.ok()) return cur.status();
  if (cur->empty()) return false;
  const std::string was = cur->get(0, 0);
  if (("," + from + ",").find("," + was + ",") == std::string::npos) return false;
  auto moved = db.Exec(
      "UPDATE assignments SET status = $2, ended_at = now(), updated_at = now(), "
      "answers = coalesce($3::jsonb, answers) WHERE id = $1",
      {id, to, answers_json.empty() ? std::nullopt : std::optional<std::string>(answers_json)});
  if (!moved.ok()) return moved.status();
  Status s = db.Exec(kAudit, {id, was, to, reason}).status();
  if (s.ok()) s = db.Exec(kEvent, {id, reason, settings.flow, to}).status();
  if (!s.ok()) return s;
  Moves(to).Inc();
  LOG(INFO) << LogCtx("assignments") << "event=assignment_" << to << " assignment=" << id
            << " reason=\"" << reason << "\"";
  if (was == "active") {
    auto next = ActivateNext(db, cur->get(0, 1), cur->get(0, 2), settings);
    if (!next.ok()) return next.status();
  }
  return true;
}

Result<int> ExpireDue(PgConnection& db, const AssignmentSettings& settings, int max) {
  int n = 0;
  for (; n < max; ++n) {
    auto tx = PgTransaction::Begin(db);
    if (!tx.ok()) return tx.status();
    auto due = db.Exec(
        "SELECT id FROM assignments WHERE status = 'active' AND expires_at <= now() ORDER BY "
        "expires_at "
        "LIMIT 1 FOR UPDATE SKIP LOCKED");
    if (!due.ok()) return due.status();
    if (due->empty()) break;  // rolled back as it leaves the loop
    auto moved = MoveAssignment(
        db, due->get(0, 0), "active", "expired",
        "not completed within " + std::to_string(settings.ttl.count()) + " s", "", settings);
    Status s = moved.ok() ? tx->Commit() : moved.status();
    if (!s.ok()) return s;
  }
  return n;
}

Status AssignmentCreated(PgConnection& db, const std::string& id,
                         const AssignmentSettings& settings) {
  Status s =
      db.Exec(kAudit, {id, std::nullopt, std::string("pending"), std::string("assigned")}).status();
  if (s.ok())
    s = db.Exec(kEvent, {id, std::string("assigned"), settings.flow, std::string("created")})
            .status();
  if (s.ok()) Moves("pending").Inc();
  return s;
}

Result<bool> RetryAssignment(PgConnection& db, const std::string& id,
                             const AssignmentSettings& settings) {
  auto cur = db.Exec(
      "SELECT phone_number_id, operator FROM assignments WHERE id = $1 AND status = "
      "'undeliverable' FOR UPDATE",
      {id});
  if (!cur.ok()) return cur.status();
  if (cur->empty()) return false;
  auto again = db.Exec(
      "UPDATE assignments SET status = 'pending', round = round + 1, started_at = NULL, ended_at = "
      "NULL, "
      "expires_at = NULL, updated_at = now() WHERE id = $1",
      {id});
  Status s = again.ok() ? db.Exec(kAudit, {id, std::string("undeliverable"), std::string("pending"),
                                           std::string("retried by the manager")})
                              .status()
                        : again.status();
  if (!s.ok()) return s;
  Moves("pending").Inc();
  LOG(INFO) << LogCtx("assignments") << "event=assignment_retried assignment=" << id;
  auto started = ActivateNext(db, cur->get(0, 0), cur->get(0, 1), settings);
  if (!started.ok()) return started.status();
  return true;
}

Status RecordAnswers(PgConnection& db, const std::string& id, const std::string& answers_json) {
  return db
      .Exec(
          "UPDATE assignments SET answers = $2::jsonb, updated_at = now() WHERE id = $1 AND status "
          "= 'active'",
          {id, answers_json})
      .status();
}

}  // namespace convoy::conversation
