-- The numbers registry (issue 27): the WhatsApp business numbers this deployment serves, each
-- one business's (tenant). An update for a phone_number_id that is not here, or is offboarded,
-- starts no flow and no send: conversation records it in unknown_number_updates and acks it.
-- Rows come from PUT /v1/numbers/{phone_number_id} or deploy/numbers/<phone_number_id>.json
-- (proto-schemas/number.v1.json). An offboarded number is kept for the record, never deleted.
CREATE TABLE numbers (
  phone_number_id      text PRIMARY KEY CHECK (phone_number_id ~ '^[0-9]{1,32}$'),
  tenant               text NOT NULL,
  waba_id              text NOT NULL CHECK (waba_id ~ '^[0-9]{1,32}$'),
  display_phone_number text NOT NULL,
  app                  text NOT NULL DEFAULT 'default',  -- whose app secret verifies its webhooks
  -- Where the Graph token is, never the token: env:NAME or file:/absolute/path.
  graph_token_ref      text NOT NULL CHECK (graph_token_ref ~ '^(env:[A-Za-z_][A-Za-z0-9_]*|file:/.+)$'),
  throughput           integer NOT NULL DEFAULT 80 CHECK (throughput BETWEEN 1 AND 1000),  -- messages/s
  coexistence          boolean NOT NULL DEFAULT false,  -- shared with the WhatsApp Business app: 20/s
  default_flow         text,
  greeting             text,
  templates_language   text NOT NULL DEFAULT 'en_US',
  status               text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'offboarded')),
  source               text NOT NULL,  -- api, file
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now(),
  CHECK (NOT coexistence OR throughput <= 20)
);
CREATE INDEX numbers_tenant ON numbers (tenant);

-- Updates for numbers convoy does not serve: what arrived and when, nothing of its content. The
-- dedupe key (a wamid carries the sender's phone number) is kept as its SHA-256 only: enough to
-- record a redelivery once, nothing to read back.
CREATE TABLE unknown_number_updates (
  dedupe_key_sha256 text PRIMARY KEY,
  phone_number_id   text NOT NULL,
  status            text NOT NULL CHECK (status IN ('unknown', 'offboarded')),
  kind              text NOT NULL,  -- message, or the internal event's schema
  received_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX unknown_number_updates_number ON unknown_number_updates (phone_number_id, received_at);

-- conversation owns both; convoyctl reads them.
GRANT SELECT, INSERT, UPDATE, DELETE ON numbers, unknown_number_updates TO convoy_conversation;
GRANT SELECT ON numbers, unknown_number_updates TO convoy_readonly;
