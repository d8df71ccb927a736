#pragma once
// The consumer's side of the command ledger (the outbox rows of convoy.commands, migration
// 0005): when its consumer is done with a command (acked, or parked in its .dlq) the row is
// settled; while the command waits in a delay queue the row's due time moves to when it should
// be back. conversation's sweeper can then tell a command that is waiting from one that was lost.
#include "convoy/amqp.h"
#include "convoy/pg.h"

namespace convoy {

// Wraps a command handler: after each delivery its disposition is recorded (one statement on
// the handler's own connection). A record that fails is logged and left to the sweeper: it
// publishes the command again and the handler's idempotence absorbs it. max_attempts: the
// consumer's (a retry at the last attempt is parked).
DeliveryHandler Ledgered(DeliveryHandler inner, PgConnection& db, int max_attempts);

}  // namespace convoy
