-- media: quotas against abuse by a WhatsApp user, counted per UTC day in the database so every
-- replica sees the same counts. One row per (day, user) and per (day, business number): the bucket
-- '<day>|user|<conversation key>' or '<day>|number|<phone_number_id>'. A charge is recorded per
-- media id in the same transaction as its counts: a redelivered fetch (or one that died between
-- its charge and its media_objects row) finds it and is never counted twice.
CREATE TABLE media_quota_usage (
  bucket text PRIMARY KEY,
  day    date NOT NULL,
  photos integer NOT NULL DEFAULT 0,
  bytes  bigint NOT NULL DEFAULT 0
);
CREATE INDEX media_quota_usage_day ON media_quota_usage (day);

CREATE TABLE media_quota_charges (
  media_id   text PRIMARY KEY,
  day        date NOT NULL,
  bytes      bigint NOT NULL,
  charged_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX media_quota_charges_charged_at ON media_quota_charges (charged_at);

-- Only media counts and prunes them (0014_service_roles.sql); operators may read them.
GRANT SELECT, INSERT, UPDATE, DELETE ON media_quota_usage, media_quota_charges TO convoy_media;
GRANT SELECT ON media_quota_usage, media_quota_charges TO convoy_readonly;
