-- Why and since when a number is paused (issue 27). A pause through the registry (PUT, a file)
-- says so; Meta's (source 'meta') names its cause. A person resumes a number (PUT
-- /v1/numbers/{id} "status": "active"), which clears both; a deploy/numbers file saying active
-- does not undo a pause of Meta's.
ALTER TABLE numbers ADD COLUMN paused_reason text, ADD COLUMN paused_at timestamptz,
  ADD CONSTRAINT numbers_pause_is_paused CHECK (status = 'paused' OR (paused_reason IS NULL AND paused_at IS NULL));
