-- conversation: a run's inactivity timeout (issue 29). run_expires_at is when the conversation's run
-- ends unless the person writes first: set in the conversation's transaction each time the run
-- advances (its flow's inactivity_timeout_seconds, else --inactivity_timeout_seconds, 24 h), cleared
-- when the run ends, never set for a checklist (its assignment's expires_at ends it). The sweeper
-- finds the due ones by the partial index; the conversation's row lock and a re-check of this
-- column decide.
ALTER TABLE conversations ADD COLUMN run_expires_at timestamptz;
CREATE INDEX conversations_run_due ON conversations (run_expires_at) WHERE run_expires_at IS NOT NULL;

-- Runs that began before this migration get the default 24 h from their last change, so an
-- enquiry abandoned weeks ago ends at the first sweep instead of taking the next message as an
-- answer. A checklist run (its operator has an active assignment) is left to its assignment.
UPDATE conversations c SET run_expires_at = c.updated_at + interval '24 hours'
WHERE c.flow IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.conversation_key = c.conversation_key AND a.status = 'active');
