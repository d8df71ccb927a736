-- An assignment whose opening template never reached the operator (issue 28): 'undeliverable',
-- with the reason in assignment_changes, until the manager retries it
-- (POST /v1/assignments/{id}/retry: back to pending, a new round). Each round's events have dedupe
-- keys of their own, so a retried assignment is started (and its template sent) again.
ALTER TABLE assignments DROP CONSTRAINT assignments_status_check;
ALTER TABLE assignments ADD CONSTRAINT assignments_status_check
  CHECK (status IN ('pending', 'active', 'completed', 'cancelled', 'expired', 'undeliverable'));
ALTER TABLE assignments ADD COLUMN round integer NOT NULL DEFAULT 1 CHECK (round BETWEEN 1 AND 1000);
