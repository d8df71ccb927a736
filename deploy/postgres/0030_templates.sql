-- The template catalog (issue 27, "templates in step with Meta"): per WhatsApp business account,
-- each template's status, category and quality, kept by outbound from Meta's
-- message_template_status_update, message_template_quality_update and template_category_update
-- webhooks (inbound.template) and from a sync of GET /{waba_id}/message_templates. A send naming a
-- template that is not APPROVED in its language fails without a call; a MARKETING one goes to
-- /{phone_number_id}/marketing_messages.
--
-- Each of status, category and quality carries the time Meta says it changed (the webhook's
-- entry[].time, or the moment a sync read it): a change older than the one kept, delivered late
-- or redelivered, changes nothing. NULL: not known yet (a quality update for a template whose
-- status no update or sync has told).
CREATE TABLE templates (
  waba_id     text NOT NULL CHECK (waba_id ~ '^[0-9]{1,32}$'),
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 512),
  language    text NOT NULL CHECK (length(language) BETWEEN 1 AND 32),
  template_id text,              -- Meta's message_template_id
  status      text,              -- APPROVED, PENDING, REJECTED, PAUSED, DISABLED, ... (Meta's words)
  status_at   timestamptz,
  reason      text,              -- Meta's reason for the last status
  category    text,              -- MARKETING, UTILITY, AUTHENTICATION
  category_at timestamptz,
  quality     text,              -- GREEN, YELLOW, RED, UNKNOWN
  quality_at  timestamptz,
  source      text NOT NULL CHECK (source IN ('webhook', 'sync')),  -- what changed it last
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (waba_id, name, language)
);

-- When each WABA's catalog was last read whole from Graph. A WABA that was never synced has a
-- partial catalog at best (the webhooks since): a template it does not know is sent unchecked;
-- once synced, a template the catalog does not know fails like one that is not approved.
CREATE TABLE template_syncs (
  waba_id    text PRIMARY KEY CHECK (waba_id ~ '^[0-9]{1,32}$'),
  synced_at  timestamptz NOT NULL,
  templates  integer NOT NULL,
  pages      integer NOT NULL
);

-- outbound keeps both, and finds a number's WABA; convoyctl reads them.
GRANT SELECT, INSERT, UPDATE, DELETE ON templates, template_syncs TO convoy_outbound;
GRANT SELECT (waba_id) ON numbers TO convoy_outbound;
GRANT SELECT ON templates, template_syncs TO convoy_readonly;
