-- Each service connects as a role of its own, with privileges on exactly the tables it touches;
-- migrations run as the database owner (convoy-migrate). ingress has no database and no role.
-- A later migration that adds a table grants it in the same way, to the roles that need it
-- (tests/security/least_privilege_test.cpp fails on a table no role may use).
--
-- The roles are created here when missing, able to log in but without a password: a local
-- PostgreSQL with trust authentication lets them in; a production cluster sets their passwords
-- (CloudNativePG managed roles, k8s/overlays/prod) and refuses a role without one.
DO $$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['convoy_conversation', 'convoy_media', 'convoy_outbound', 'convoy_readonly'] LOOP
    BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
        EXECUTE format('CREATE ROLE %I LOGIN', r);
      END IF;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;  -- created by a migration of another database at the same moment
    END;
  END LOOP;
END $$;

-- Every service reads which migrations are applied, and refuses to start while one is pending.
GRANT SELECT ON schema_migrations TO convoy_conversation, convoy_media, convoy_outbound, convoy_readonly;

-- conversation: the conversations, their state, identities, dedupe, history, checklists and the outbox.
GRANT SELECT, INSERT, UPDATE, DELETE ON conversations, inbound_messages, transitions, identities, identity_changes,
  conversation_context, checklists, assignments, assignment_changes, outbox TO convoy_conversation;
GRANT USAGE ON SEQUENCE transitions_id_seq, identity_changes_id_seq, conversation_context_seq_seq,
  assignment_changes_id_seq, outbox_id_seq TO convoy_conversation;

-- media: the stored photos and the uploads; and it settles the outbox rows of the commands it finished.
GRANT SELECT, INSERT, UPDATE, DELETE ON media_objects, media_uploads TO convoy_media;
GRANT SELECT (dedupe_key, settled_at, outcome), UPDATE (settled_at, outcome, due_at) ON outbox TO convoy_media;

-- outbound: sends, pacing, preferences, deliveries to the sinks; it settles its commands' outbox
-- rows and writes the commands of deliveries an operator sends again.
GRANT SELECT, INSERT, UPDATE, DELETE ON outbound_messages, rate_buckets, marketing_preferences, deliveries,
  delivery_attempts, sink_states TO convoy_outbound;
GRANT USAGE ON SEQUENCE deliveries_id_seq, delivery_attempts_id_seq, outbox_id_seq TO convoy_outbound;
GRANT SELECT (dedupe_key, settled_at, outcome), UPDATE (settled_at, outcome, due_at), INSERT ON outbox TO convoy_outbound;

-- convoyctl (operators): reads everything, changes nothing.
GRANT SELECT ON ALL TABLES IN SCHEMA public TO convoy_readonly;
