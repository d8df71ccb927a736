-- The numbers registry (issue 27): the WhatsApp business numbers this deployment serves, each
-- one business's (tenant).
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

-- conversation owns it; convoyctl reads it.
GRANT SELECT, INSERT, UPDATE, DELETE ON numbers TO convoy_conversation;
GRANT SELECT ON numbers TO convoy_readonly;
