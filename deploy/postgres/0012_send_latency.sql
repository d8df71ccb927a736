-- outbound: when ingress received the webhook a reply answers (outbound.send's received_at), so
-- webhook-to-send latency (attempt_started_at - received_at) can be measured per send:
-- `convoyctl health` and `convoyctl stats` read it.
ALTER TABLE outbound_messages ADD COLUMN received_at timestamptz;
CREATE INDEX outbound_messages_attempt_started ON outbound_messages (attempt_started_at) WHERE received_at IS NOT NULL;
