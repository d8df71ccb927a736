// The statements that keep one conversation's commands in the order they were written: each finds
// the first command of the same conversation and kind written before this one (a lower outbox id)
// that is not settled. In one header so that their plans are tested (order_statements_test.cpp):
// each searches the outbox's partial index of unsettled commands by conversation and id, through a
// LATERAL subquery, whatever the statistics were when a session prepared it. As plain joins, the
// plans prepared on a small analyzed outbox read every unsettled command of every conversation and
// filtered them: a benchmark's backlog made every send pay for all the others (bench-e2e.sh on a
// warmed database, 2026-12-08: PostgreSQL 8.9-9.1 ms per reply, against 5.8-6.6 with these).
#pragma once

namespace convoy::outbound {

// Where a send stands (its status and the age of its attempt, as sender.cpp's kLookup), and the
// first send of the same conversation written before this one (a lower outbox id) that is not
// settled yet: neither settled in the ledger (done, parked, abandoned) nor settled here (accepted
// by Meta, failed for good, let go). Its dedupe key and in how many ms it is due back from a delay
// queue (0 when due or in flight); "" when this send is next in its conversation or has no outbox
// row (a command from elsewhere). One row always: status "" when no attempt yet.
inline constexpr const char* kLookupInOrder =
    "SELECT coalesce(m.status, ''), coalesce(extract(epoch FROM clock_timestamp() - "
    "m.attempt_started_at)::float8, 1e9), "
    "coalesce(e.dedupe_key, ''), coalesce(e.due_ms, 0), coalesce(m.author, '') "
    "FROM (SELECT $1::text AS k) me LEFT JOIN outbound_messages m ON m.dedupe_key = me.k "
    "LEFT JOIN LATERAL (SELECT o.dedupe_key, greatest(0, extract(epoch FROM o.due_at - now()) * "
    "1000)::bigint AS due_ms "
    "FROM outbox mine CROSS JOIN LATERAL (SELECT o.dedupe_key, o.due_at FROM outbox o "
    "WHERE o.conversation_key = mine.conversation_key AND o.id < mine.id "
    "AND o.settled_at IS NULL AND o.routing_key = 'outbound.send' "
    "AND NOT EXISTS (SELECT 1 FROM outbound_messages s WHERE s.dedupe_key = o.dedupe_key "
    "AND s.status IN ('sent', 'delivered', 'read', 'failed', 'unknown')) ORDER BY o.id LIMIT 1) o "
    "WHERE mine.dedupe_key = me.k) e ON true";

// One conversation, one order at the business: a delivery that carries its conversation (a
// handoff, a customer's message while a person answers) waits for every delivery written before
// it for the same conversation (a lower outbox id) to settle: delivered, parked or held. Its
// dedupe key and in how many ms it is due back (0: due or in flight); no row: this one is next.
inline constexpr const char* kEarlierDelivery =
    "SELECT o.dedupe_key, greatest(0, extract(epoch FROM o.due_at - now()) * 1000)::bigint FROM "
    "outbox mine CROSS JOIN LATERAL (SELECT o.dedupe_key, o.due_at FROM outbox o "
    "WHERE o.conversation_key = mine.conversation_key AND o.id < mine.id "
    "AND o.settled_at IS NULL AND o.routing_key = 'outbound.deliver' ORDER BY o.id LIMIT 1) o "
    "WHERE mine.dedupe_key = $1";

// The first send of the same conversation written before this command (a lower outbox id) that is
// not settled, and in how many ms it is due back: the command keeps its place among the sends, as
// a send does (kLookupInOrder).
inline constexpr const char* kEarlierThreadControl =
    "SELECT o.dedupe_key, greatest(0, extract(epoch FROM o.due_at - now()) * 1000)::bigint FROM "
    "outbox mine CROSS JOIN LATERAL (SELECT o.dedupe_key, o.due_at FROM outbox o "
    "WHERE o.conversation_key = mine.conversation_key AND o.id < mine.id "
    "AND o.settled_at IS NULL AND o.routing_key = 'outbound.send' "
    "AND NOT EXISTS (SELECT 1 FROM outbound_messages s WHERE s.dedupe_key = o.dedupe_key "
    "AND s.status IN ('sent', 'delivered', 'read', 'failed', 'unknown', 'cancelled')) "
    "AND NOT EXISTS (SELECT 1 FROM thread_controls t WHERE t.dedupe_key = o.dedupe_key "
    "AND t.status IN ('done', 'failed', 'unknown')) ORDER BY o.id LIMIT 1) o "
    "WHERE mine.dedupe_key = $1";

}  // namespace convoy::outbound
