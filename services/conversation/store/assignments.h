#pragma once
// Checklist assignments (migration 0010): a manager's system assigns a checklist (a version of
// it) to an operator; the operator works on one at a time. Every change of status is a row in
// assignment_changes and an `assignment.<status>` event on convoy.events, written in the same
// transaction (the outbox). `assignment.started` carries the checklist to the operator's
// conversation, which runs the checklist flow.
//
//   pending --(the operator is free)--> active --> completed | cancelled | expired
//   pending --> cancelled
#include <chrono>
#include <string>

#include "convoy/pg.h"

namespace convoy::conversation {

struct AssignmentSettings {
  std::chrono::seconds ttl{24 * 3600};  // an active assignment not completed by then expires
  std::string flow = "checklist";       // the flow that runs it
};

// The operator's conversation key, as ingress builds it for a phone number or a BSUID.
std::string OperatorConversation(const std::string& phone_number_id, const std::string& op);

// Starts the operator's oldest pending assignment if none of theirs is active. Call inside a
// transaction. True when one was started.
Result<bool> ActivateNext(PgConnection& db, const std::string& phone_number_id,
                          const std::string& op, const AssignmentSettings& settings);

// Moves an assignment from one of `from` ("pending,active") to `to`, audited, with its event; the
// operator's next one starts when this one ends. answers_json: the answers to record, or "".
// Call inside a transaction. False when it was not in one of `from` (nothing changed).
Result<bool> MoveAssignment(PgConnection& db, const std::string& id, const std::string& from,
                            const std::string& to, const std::string& reason,
                            const std::string& answers_json, const AssignmentSettings& settings);

// Expires active assignments past their due time, oldest first, each in its own transaction
// (at most `max`); how many. Safe with several replicas (SKIP LOCKED).
Result<int> ExpireDue(PgConnection& db, const AssignmentSettings& settings, int max = 100);

// A new assignment (pending): audited, assignment.created emitted. Call inside its transaction.
Status AssignmentCreated(PgConnection& db, const std::string& id,
                         const AssignmentSettings& settings);

// An undeliverable assignment goes again (POST /v1/assignments/{id}/retry): pending in a new round
// (its events get keys of their own), audited, and started when the operator has none active.
// Call inside a transaction. False when it is not undeliverable (nothing changed).
Result<bool> RetryAssignment(PgConnection& db, const std::string& id,
                             const AssignmentSettings& settings);

// The answers so far (fields q1..qN as a JSON object), while the assignment is active.
Status RecordAnswers(PgConnection& db, const std::string& id, const std::string& answers_json);

}  // namespace convoy::conversation
