-- pgbench: the statements of one conversation delivery (processor.cpp), with the same shapes of
-- data: dedupe insert, conversation upsert and row lock (with the run's due time checked), state update
-- (the due time moved on), audit row, outbox row.
\set conv random(1, 20000)
\set id random(1, 1000000000000)
BEGIN;
INSERT INTO inbound_messages (dedupe_key, conversation_key, kind, wa_timestamp, correlation_id)
  VALUES ('pgbench.' || :client_id || '.' || :id, '106540352242922:2' || :conv, 'message', 1750000000, 'pgbench')
  ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key;
INSERT INTO conversations (conversation_key, phone_number_id, wa_id)
  VALUES ('106540352242922:2' || :conv, '106540352242922', '2' || :conv) ON CONFLICT (conversation_key) DO NOTHING;
SELECT state::text, coalesce(wa_id, ''), coalesce(user_id, ''),
  coalesce(run_expires_at <= least(now(), to_timestamp(1750000004)), false)::int FROM conversations
  WHERE conversation_key = '106540352242922:2' || :conv FOR UPDATE;
UPDATE conversations SET state = '{"flow":"listing","step":"photos","entered_at":1750000002,"messages":5,"last_inbound_at":1750000004,"fields":{"brand":"Nike","condition":"used","description":"Nike running shoes, size 42, used, $35","email":"seller@example.com","price":"35","size":"42"},"photos":{"photos":[{"id":"media.1","at":1750000003},{"id":"media.2","at":1750000004}]},"acked":["photos"],"history":[["email",1750000000],["description",1750000001],["photos",1750000002]]}'::jsonb,
  flow = 'listing', version = version + 1, updated_at = now(),
  run_expires_at = to_timestamp(ceil((extract(epoch FROM now()) + 86400) / 864) * 864) WHERE conversation_key = '106540352242922:2' || :conv;
INSERT INTO transitions (conversation_key, from_step, to_step, trigger_dedupe_key, correlation_id, note, wa_timestamp)
  VALUES ('106540352242922:2' || :conv, 'listing/photos', 'listing/photos', 'pgbench.' || :client_id || '.' || :id, 'pgbench', 'photo', 1750000004);
INSERT INTO outbox (exchange, routing_key, dedupe_key, correlation_id, conversation_key, body)
  VALUES ('convoy.commands', 'media.fetch', 'pgbench.' || :client_id || '.' || :id || ':fetch', 'pgbench', '106540352242922:2' || :conv,
  '{"schema":"media.fetch","version":1,"correlation_id":"pgbench","dedupe_key":"k","conversation_key":"106540352242922:2","phone_number_id":"106540352242922","media_id":"media.1","mime_type":"image/jpeg","sha256":"SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI="}')
  ON CONFLICT (dedupe_key) DO NOTHING;
END;
