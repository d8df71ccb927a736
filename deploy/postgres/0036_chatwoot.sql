-- Chatwoot sinks (issue 29): the Chatwoot conversation that mirrors a convoy conversation, per sink.
--
-- Written by outbound when a handoff (or the first customer message after one) reaches a chatwoot
-- sink, read for every later message, and read back when an agent's reply comes in through the
-- inbox's webhook (POST /hooks/chatwoot/{sink}) to find the convoy conversation it answers.
-- conversation_id is convoy's public id (conversations.id, a random uuid), never the key that
-- holds the customer's phone number. updated_at moves with every delivery, and a row untouched for
-- --retention_days is pruned like the rest of outbound's history (a later handoff finds the Chatwoot
-- conversation again through its contact, or starts a new one).
CREATE TABLE chatwoot_conversations (
  sink                     text NOT NULL,
  conversation_id          uuid NOT NULL,
  chatwoot_conversation_id bigint NOT NULL,  -- Chatwoot's id in the sink's account (its display id)
  chatwoot_contact_id      bigint NOT NULL,
  created_at               timestamptz NOT NULL DEFAULT now(),
  updated_at               timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (sink, conversation_id),
  UNIQUE (sink, chatwoot_conversation_id)
);
CREATE INDEX chatwoot_conversations_updated ON chatwoot_conversations (updated_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON chatwoot_conversations TO convoy_outbound;
GRANT SELECT ON chatwoot_conversations TO convoy_readonly;
