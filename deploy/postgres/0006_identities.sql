-- One person, one conversation (WhatsApp identities since 2026). A person is known to a business
-- number by a phone number, a business-scoped user ID (BSUID), or both; each identity points at
-- the one conversation of its person. conversation resolves a message's identities under
-- advisory locks on them, in its transaction, and audits every change.
CREATE TABLE identities (
  phone_number_id  text NOT NULL,
  identity         text NOT NULL,   -- a phone number (wa_id), a BSUID (CC.xxx) or a group id
  conversation_key text NOT NULL REFERENCES conversations (conversation_key),
  linked_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (phone_number_id, identity)
);
CREATE INDEX identities_by_conversation ON identities (conversation_key);

CREATE TABLE identity_changes (
  id                 bigserial PRIMARY KEY,
  conversation_key   text NOT NULL,
  change             text NOT NULL,   -- linked, merged, number_changed, user_id_changed
  identity           text NOT NULL,
  previous           text,
  trigger_dedupe_key text NOT NULL,
  correlation_id     text NOT NULL,
  at                 timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX identity_changes_by_conversation ON identity_changes (conversation_key, id);

-- Where replies go: the phone when known (Meta's `to`), else the BSUID (`recipient`).
ALTER TABLE conversations ALTER COLUMN wa_id DROP NOT NULL;
ALTER TABLE conversations ADD COLUMN user_id text;
ALTER TABLE conversations ADD COLUMN parent_user_id text;

-- Conversations from before: their key names their phone. The shared "unknown" key of earlier
-- versions is no one's identity.
INSERT INTO identities (phone_number_id, identity, conversation_key)
  SELECT phone_number_id, wa_id, conversation_key FROM conversations WHERE wa_id NOT IN ('', 'unknown')
  ON CONFLICT DO NOTHING;
