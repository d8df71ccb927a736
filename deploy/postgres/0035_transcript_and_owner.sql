-- People join the conversation (issue 29): what was said, and who answers.
--
-- A conversation's public id: the API and the console name a conversation by it, never by its
-- key (the key holds the customer's phone number). Random, so one id says nothing of another.
ALTER TABLE conversations ADD COLUMN id uuid NOT NULL DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX conversations_id ON conversations (id);

-- Who answers: the bot (a flow), a human (an agent of the business, through the API or its inbox)
-- or elsewhere (another app, or Meta's agent, owns the thread). Changed only inside the
-- conversation's transaction (its row lock), so a bot reply still queued when a human takes over
-- is cancelled at outbound's claim, never sent. owner_sink: where, while human, each customer
-- message goes (the sink name of the step or request that handed it over).
ALTER TABLE conversations
  ADD COLUMN owner text NOT NULL DEFAULT 'bot' CHECK (owner IN ('bot', 'human', 'elsewhere')),
  ADD COLUMN owner_agent text,
  ADD COLUMN owner_since timestamptz,
  ADD COLUMN owner_sink text,
  -- The customer's last message (the 24-hour window opens there): listed and filtered on.
  ADD COLUMN last_inbound_at timestamptz;
CREATE INDEX conversations_owner ON conversations (owner, updated_at, id) WHERE owner <> 'bot';
CREATE INDEX conversations_updated ON conversations (updated_at, id);
CREATE INDEX conversations_number ON conversations (phone_number_id, updated_at, id);

-- The transcript: every message in (the customer's, a standby, an echo of what the business typed
-- in the WhatsApp Business app) and out (a flow's reply, a template, an agent's message), one row
-- per update or send dedupe key. An outgoing row's delivery status and wamid are outbound's
-- (outbound_messages, joined on the send's dedupe key when read): never copied, never stale.
-- Kept for --retention_days like the rest of the history.
CREATE TABLE conversation_messages (
  seq              bigserial PRIMARY KEY,
  conversation_key text NOT NULL,
  direction        text NOT NULL CHECK (direction IN ('in', 'out')),
  author           text NOT NULL CHECK (author ~ '^(customer|bot|business_app|agent:[a-z0-9._-]{1,64})$'),
  kind             text NOT NULL,  -- Meta's type (text, image, button, interactive, location...), template
  body             text,           -- the text, caption, button title or template name
  media_id         text,           -- an incoming photo or document (media_objects names the stored file)
  channel          text NOT NULL DEFAULT 'messages' CHECK (channel IN ('messages', 'standby', 'echo', 'history', 'api')),
  dedupe_key       text NOT NULL UNIQUE,  -- in: the update's; out: the send's (outbound_messages.dedupe_key)
  wa_timestamp     bigint,
  at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversation_messages_by_conversation ON conversation_messages (conversation_key, seq);
CREATE INDEX conversation_messages_at ON conversation_messages (at);

GRANT SELECT, INSERT, UPDATE, DELETE ON conversation_messages TO convoy_conversation;
GRANT USAGE ON SEQUENCE conversation_messages_seq_seq TO convoy_conversation;
GRANT SELECT ON conversation_messages TO convoy_readonly;
-- conversation shows each outgoing message's status; outbound's claim re-checks who owns the
-- conversation before a bot's send.
GRANT SELECT (dedupe_key, status, wamid, error_code, updated_at) ON outbound_messages TO convoy_conversation;
GRANT SELECT (conversation_key, owner, owner_since) ON conversations TO convoy_outbound;

-- outbound releases a delivery that carries its conversation only after those written before it
-- for the same conversation settled (the order an inbox mirrors it in): found by this index.
CREATE INDEX outbox_unsettled_deliveries ON outbox (conversation_key, id)
  WHERE settled_at IS NULL AND routing_key = 'outbound.deliver';

-- An agent's message outside the 24-hour window is refused with the templates that could reopen
-- it: conversation reads the number's approved ones.
GRANT SELECT (waba_id, name, language, status, category) ON templates TO convoy_conversation;
-- ... and whether the takeover came after the send was written (the bot's last words of a handoff
-- are written in the handoff's own transaction, and go).
GRANT SELECT (created_at) ON outbox TO convoy_outbound;
