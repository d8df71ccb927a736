-- convoy's first schema: dedupe, conversations with their lock row, audit, outbox, outbound
-- message log, stored media.

-- conversation: one row per processed update; a duplicate delivery stops at this insert.
CREATE TABLE inbound_messages (
  dedupe_key       text PRIMARY KEY,
  conversation_key text NOT NULL,
  kind             text NOT NULL,
  wa_timestamp     bigint,
  correlation_id   text NOT NULL,
  processed_at     timestamptz NOT NULL DEFAULT now()
);

-- conversation: the per-conversation lock is SELECT ... FOR UPDATE on this row.
CREATE TABLE conversations (
  conversation_key text PRIMARY KEY,
  phone_number_id  text NOT NULL,
  wa_id            text NOT NULL,
  flow             text,
  state            jsonb NOT NULL DEFAULT '{}'::jsonb,
  version          bigint NOT NULL DEFAULT 0,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);

-- conversation: the audit of every state transition.
CREATE TABLE transitions (
  id                 bigserial PRIMARY KEY,
  conversation_key   text NOT NULL REFERENCES conversations (conversation_key),
  from_step          text NOT NULL,
  to_step            text NOT NULL,
  trigger_dedupe_key text NOT NULL,
  correlation_id     text NOT NULL,
  at                 timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX transitions_by_conversation ON transitions (conversation_key, id);

-- conversation: effects written in the same transaction, published by the relay.
CREATE TABLE outbox (
  id               bigserial PRIMARY KEY,
  exchange         text NOT NULL,
  routing_key      text NOT NULL,
  dedupe_key       text NOT NULL UNIQUE,
  correlation_id   text NOT NULL,
  conversation_key text,
  body             text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  published_at     timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- outbound: the message log, exactly one row per send dedupe key.
CREATE TABLE outbound_messages (
  dedupe_key       text PRIMARY KEY,
  conversation_key text,
  phone_number_id  text NOT NULL,
  recipient        text NOT NULL,
  status           text NOT NULL,   -- queued, sending, sent, delivered, read, failed
  attempts         integer NOT NULL DEFAULT 0,
  wamid            text UNIQUE,
  error_code       integer,
  error_reason     text,
  correlation_id   text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);

-- media: verified, stored objects.
CREATE TABLE media_objects (
  media_id    text PRIMARY KEY,
  stored_name text NOT NULL,
  sha256      text NOT NULL,
  size        bigint NOT NULL,
  mime_type   text NOT NULL,
  stored_at   timestamptz NOT NULL DEFAULT now()
);
