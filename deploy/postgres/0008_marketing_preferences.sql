-- outbound: users who stopped marketing messages (a user_preferences webhook, or Meta's 131050
-- answering a send), per business number. A marketing template to them is refused without a
-- call until they resume. changed_at: when the user changed it (Meta's timestamp), so an older
-- webhook delivered late never undoes a newer one.
CREATE TABLE marketing_preferences (
  phone_number_id text NOT NULL,
  recipient       text NOT NULL,   -- phone (wa_id) or BSUID
  stopped         boolean NOT NULL,
  changed_at      timestamptz NOT NULL,
  source          text NOT NULL,   -- user_preferences, 131050
  PRIMARY KEY (phone_number_id, recipient)
);
