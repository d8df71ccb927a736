-- The console's operations screen (issue 30) shows `convoyctl health` from convoy-conversation:
-- its role reads what those checks count, column by column, and nothing it could change.
--   errors, p95, failed sends: outbound_messages' status and times (status, updated_at are 0035's)
--   errors: delivery_attempts' outcome and start
GRANT SELECT (received_at, attempt_started_at) ON outbound_messages TO convoy_conversation;
GRANT SELECT (outcome, started_at) ON delivery_attempts TO convoy_conversation;
