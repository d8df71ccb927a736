-- outbound: the sends in doubt ('sending' or 'uncertain': Meta may have taken them with no record
-- saying so), measured every few seconds by each outbound replica into a gauge; the partial index
-- holds only them, so the measure costs the same however long the send log grows.
CREATE INDEX outbound_messages_in_doubt ON outbound_messages (attempt_started_at)
  WHERE status IN ('sending', 'uncertain');
