-- conversation: flows as data. The audit says why a transition happened (started, answered,
-- late_photo, superseded, ...) and when the user sent the update that caused it.
ALTER TABLE transitions ADD COLUMN note text NOT NULL DEFAULT '';
ALTER TABLE transitions ADD COLUMN wa_timestamp bigint;
