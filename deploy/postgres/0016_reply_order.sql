-- One conversation, one order of replies: outbound releases a send only once every send written
-- before it for the same conversation (a lower outbox id, same conversation_key) is settled. The
-- unsettled sends of a conversation are few; this index finds them without reading the rest.
CREATE INDEX outbox_unsettled_sends ON outbox (conversation_key, id)
  WHERE settled_at IS NULL AND routing_key = 'outbound.send';

-- outbound reads which conversation a send belongs to and what was written before it.
GRANT SELECT (id, conversation_key, routing_key, due_at) ON outbox TO convoy_outbound;
