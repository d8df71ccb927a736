-- outbound: results delivered to the business's sinks (a Standard Webhooks-signed POST, a Shopify
-- draft product), exactly once per (result, sink). The row keeps the command, so a parked or held
-- delivery can be replayed without the broker. An attempt is claimed ('attempting', attempts + 1,
-- attempt_started_at) before the call; a row left 'attempting' (the process died during the call)
-- or 'uncertain' (no answer) may have reached the sink: a webhook goes again with the same
-- webhook-id (the receiver's idempotency key), a Shopify product is looked up by its tag first.
CREATE TABLE deliveries (
  id                 bigserial PRIMARY KEY,
  result_id          text NOT NULL,
  sink               text NOT NULL,
  type               text NOT NULL,
  conversation_key   text,
  correlation_id     text NOT NULL,
  command            text NOT NULL,
  status             text NOT NULL CHECK (status IN ('pending', 'attempting', 'uncertain', 'retrying', 'delivered',
                                                     'held', 'parked')),
  attempts           integer NOT NULL DEFAULT 0,  -- in this round (a replay starts a new round)
  next_attempt_at    timestamptz,
  attempt_started_at timestamptz,
  last_status_code   integer,
  last_error         text,
  external_id        text,  -- what the sink created (a Shopify product id)
  external_detail    text,  -- and what else a later attempt needs of it (the product's variant id)
  completed_at       timestamptz,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  delivered_at       timestamptz,
  UNIQUE (result_id, sink)
);
CREATE INDEX deliveries_by_status ON deliveries (status, created_at);

-- Every attempt: what was sent where and what came back (the first 1 KiB of the answer).
CREATE TABLE delivery_attempts (
  id             bigserial PRIMARY KEY,
  delivery_id    bigint NOT NULL REFERENCES deliveries (id),
  attempt        integer NOT NULL,
  started_at     timestamptz NOT NULL,
  duration_ms    integer NOT NULL,
  status_code    integer,
  response       text,
  error          text,
  outcome        text NOT NULL
);
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, id);

-- A sink a receiver answered 410 Gone is disabled: its new results are held, not dropped, until
-- an operator enables it again (POST /v1/sinks/{name}/enable on convoy-outbound).
CREATE TABLE sink_states (
  name        text PRIMARY KEY,
  disabled_at timestamptz NOT NULL DEFAULT now(),
  reason      text NOT NULL
);
