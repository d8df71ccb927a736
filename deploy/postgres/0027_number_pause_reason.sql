-- Why and since when a number is paused (issue 27). A pause through the registry (PUT, a file)
-- says so; Meta's (source 'meta') names its cause: an account_update webhook that stops the
-- business's sending (conversation, account_events.cpp) or a send answered 131031 (account
-- locked) / 133010 (not registered) (outbound). A person resumes a number (PUT
-- /v1/numbers/{id} "status": "active"), which clears both; a deploy/numbers file saying active
-- does not undo a pause of Meta's.
ALTER TABLE numbers ADD COLUMN paused_reason text, ADD COLUMN paused_at timestamptz,
  ADD CONSTRAINT numbers_pause_is_paused CHECK (status = 'paused' OR (paused_reason IS NULL AND paused_at IS NULL));

-- Every account_update webhook, once (its dedupe key: the entry's id, event and time): what it
-- was, for which WABA, what convoy did (paused, not_pausing, informational, unknown_waba) and how
-- many numbers it paused. No personal data: the payload is Meta's about the business.
CREATE TABLE account_updates (
  dedupe_key     text PRIMARY KEY,
  waba_id        text NOT NULL,
  event          text NOT NULL,
  action         text NOT NULL,
  numbers_paused integer NOT NULL DEFAULT 0,
  reason         text,
  received_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX account_updates_waba ON account_updates (waba_id, received_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON account_updates TO convoy_conversation;
GRANT SELECT ON account_updates TO convoy_readonly;
-- Outbound pauses the number a send was refused for (131031, 133010) and names the reason in the
-- sends that wait: these columns only, never the number's tenant, token or flows.
GRANT SELECT (paused_reason), UPDATE (status, paused_reason, paused_at, source, updated_at) ON numbers TO convoy_outbound;
