-- Meta's thread control (issue 29): POST /v1/conversations/{id}/pass and /take move a thread between
-- convoy's app and the number's partner app through Graph's POST /{phone_number_id}/thread_control.
--
-- The app a number shares its threads with (Meta's Conversation Routing: a helpdesk partner, or
-- Meta's business agent). NULL: the number is convoy's alone, and pass/take answer 409.
ALTER TABLE numbers ADD COLUMN partner_app_id text CHECK (partner_app_id ~ '^[0-9]{1,32}$');

-- The thread-control command a conversation waits for (its dedupe key), set under the row lock by
-- the API and cleared by outbound's answer (outbound.thread_controlled): one at a time, and no agent
-- message while a pass is on its way.
ALTER TABLE conversations ADD COLUMN thread_control text;

-- outbound calls thread_control at most once per command: the row is claimed ('calling') before the
-- call and settled by its answer. A call with no answer is 'unknown' and never made again (Meta
-- says nothing back to the app that passed or took: no status webhook can settle it).
CREATE TABLE thread_controls (
  dedupe_key         text PRIMARY KEY,
  conversation_key   text NOT NULL,
  phone_number_id    text NOT NULL,
  action             text NOT NULL CHECK (action IN ('pass', 'release', 'take')),
  status             text NOT NULL CHECK (status IN ('calling', 'retrying', 'done', 'failed', 'unknown')),
  attempts           integer NOT NULL DEFAULT 1,
  error_code         integer,
  error_reason       text,
  correlation_id     text NOT NULL,
  attempt_started_at timestamptz,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX thread_controls_updated ON thread_controls (updated_at);
GRANT SELECT, INSERT, UPDATE, DELETE ON thread_controls TO convoy_outbound;
GRANT SELECT ON thread_controls TO convoy_readonly;

-- Who wrote a send (outbound.send `author`: bot, or agent:<name>), set at its claim: the delivery
-- statuses of an agent's message go to the conversation's sink (conversation.message_status).
ALTER TABLE outbound_messages ADD COLUMN author text;
-- The last delivery status of an agent's message the business's sink was told: each status once,
-- never one before it (sent < delivered < read, failed).
ALTER TABLE conversation_messages ADD COLUMN status_told text;
