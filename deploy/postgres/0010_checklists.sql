-- conversation: checklists (versioned definitions) and their assignments to operators. An
-- assignment keeps the version it was created with; an operator works on one at a time (the
-- partial unique index); every change of status is a row in assignment_changes.
CREATE TABLE checklists (
  id         text NOT NULL,
  version    integer NOT NULL,
  definition jsonb NOT NULL,
  source     text NOT NULL,  -- api, file
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id, version)
);

CREATE TABLE assignments (
  id                text PRIMARY KEY,
  checklist_id      text NOT NULL,
  checklist_version integer NOT NULL,
  operator          text NOT NULL,  -- a phone number (wa_id) or a BSUID
  operator_name     text,
  phone_number_id   text NOT NULL,
  reference         text NOT NULL,  -- the manager system's id
  conversation_key  text NOT NULL,
  status            text NOT NULL CHECK (status IN ('pending', 'active', 'completed', 'cancelled', 'expired')),
  answers           jsonb NOT NULL DEFAULT '{}'::jsonb,
  idempotency_key   text UNIQUE,
  request_hash      text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  started_at        timestamptz,
  ended_at          timestamptz,
  expires_at        timestamptz,
  updated_at        timestamptz NOT NULL DEFAULT now(),
  UNIQUE (phone_number_id, reference),
  FOREIGN KEY (checklist_id, checklist_version) REFERENCES checklists (id, version)
);
CREATE UNIQUE INDEX assignments_one_active_per_operator ON assignments (phone_number_id, operator) WHERE status = 'active';
CREATE INDEX assignments_pending ON assignments (phone_number_id, operator, created_at) WHERE status = 'pending';
CREATE INDEX assignments_due ON assignments (expires_at) WHERE status = 'active';
CREATE INDEX assignments_by_status ON assignments (status, created_at);

CREATE TABLE assignment_changes (
  id            bigserial PRIMARY KEY,
  assignment_id text NOT NULL REFERENCES assignments (id),
  from_status   text,
  to_status     text NOT NULL,
  reason        text NOT NULL,
  at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX assignment_changes_by_assignment ON assignment_changes (assignment_id, id);
