-- Each Meta app verifies its own webhooks (issue 27): ingress serves /webhook/{app} with that app's
-- secret and stamps the app into every inbound envelope. An update for a registered number that
-- came through another app than the number's (numbers.app) is refused like an unknown number's:
-- recorded here as 'wrong_app'. `app` is the app an inbound update came through (NULL for internal
-- events, and for rows recorded before this migration).
ALTER TABLE unknown_number_updates
  DROP CONSTRAINT unknown_number_updates_status_check,
  ADD CONSTRAINT unknown_number_updates_status_check CHECK (status IN ('unknown', 'offboarded', 'wrong_app')),
  ADD COLUMN app text CHECK (app ~ '^[a-z0-9][a-z0-9_-]{0,63}$');
