-- The console (issue 30): an audit log of every write through the API, and the search of the
-- conversations list.
--
-- The audit log: every write through convoy-conversation's /v1/ API, who did
-- it and how it ended, shown at GET /v1/audit. A write that changes a conversation is recorded in
-- the transaction that changes it (its row and this one commit together or not at all); every
-- other write, and every refused or failed one, right after its answer is decided.
--
-- actor: the token's name (never the token); caller_tenant: the token's tenant or '*'; tenant:
-- whose data the write was about (the target's tenant, else the caller's own), the one a tenant's
-- token reads by, NULL when neither says (a global token's write on a global route): such rows
-- are read by global tokens alone. route: the route's template (/v1/conversations/{id}/take),
-- target: its {id}; filter: the request's query parameters, count: how many things it changed,
-- where the route says; reason: the request body's "reason", when it has one.
--
-- Append-only for the service: it may INSERT and SELECT, never UPDATE or DELETE its own history.
CREATE TABLE audit_log (
  id            bigserial PRIMARY KEY,
  at            timestamptz NOT NULL DEFAULT clock_timestamp(),
  actor         text NOT NULL CHECK (actor ~ '^[A-Za-z0-9._-]{1,64}$'),  -- CONVOY_ADMIN_TOKEN's is upper case
  role          text NOT NULL CHECK (role IN ('viewer', 'agent', 'manager', 'operator', 'admin')),
  caller_tenant text NOT NULL,
  tenant        text,
  method        text NOT NULL CHECK (method IN ('POST', 'PUT', 'PATCH', 'DELETE')),
  route         text NOT NULL CHECK (length(route) <= 200),
  target        text CHECK (length(target) <= 200),
  filter        jsonb,
  count         bigint,
  reason        text CHECK (length(reason) <= 1000),
  status        integer NOT NULL CHECK (status BETWEEN 100 AND 599)
);
-- GET /v1/audit pages newest first by id, for one tenant or for all.
CREATE INDEX audit_log_tenant ON audit_log (tenant, id);

GRANT SELECT, INSERT ON audit_log TO convoy_conversation;
GRANT USAGE ON SEQUENCE audit_log_id_seq TO convoy_conversation;
GRANT SELECT ON audit_log TO convoy_readonly;

-- The console's search (GET /v1/conversations?q=): any part of a customer's phone number or BSUID,
-- or of anything said in the conversation, by trigram (pg_trgm is a trusted extension: the
-- database owner that runs migrations may create it). The conversations index reads wa_id and
-- user_id alone, never `state`, so the updates a message makes to a conversation's state stay HOT.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX conversations_search ON conversations
  USING gin ((coalesce(wa_id, '') || ' ' || coalesce(user_id, '')) gin_trgm_ops);
CREATE INDEX conversation_messages_search ON conversation_messages USING gin (body gin_trgm_ops);
