-- media: uploads of stored files to a flow's destination, one row per dedupe key. An attempt is
-- claimed ('uploading', attempts + 1) before the call; a second delivery of the same key waits
-- while an attempt is younger than the upload timeout, and is acked once the row is settled.
CREATE TABLE media_uploads (
  dedupe_key         text PRIMARY KEY,
  stored_name        text NOT NULL,
  destination        text NOT NULL,
  status             text NOT NULL CHECK (status IN ('uploading', 'uploaded', 'failed')),
  attempts           integer NOT NULL DEFAULT 0,
  url                text,
  error_reason       text,
  correlation_id     text NOT NULL,
  attempt_started_at timestamptz,
  updated_at         timestamptz NOT NULL DEFAULT now()
);
