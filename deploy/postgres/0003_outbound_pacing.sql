-- outbound: exactly-once sends and pacing shared by every replica.
-- attempt_started_at: when the current attempt was claimed. A row left 'sending' (a crash) or
-- 'uncertain' (no answer from Meta) may have reached Meta: it is reconciled from the status
-- webhooks (biz_opaque_callback_data names the dedupe key) before any resend.
ALTER TABLE outbound_messages ADD COLUMN attempt_started_at timestamptz;
-- Token buckets (per business number, per recipient): tokens as of updated_at; rates and
-- bursts are the services' flags, the state is here so replicas share one budget.
CREATE TABLE rate_buckets (
  bucket     text PRIMARY KEY,
  tokens     double precision NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
