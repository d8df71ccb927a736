-- The outbox is also the ledger of commands (exchange convoy.commands: outbound.send, media.fetch,
-- media.upload). A command stays unsettled until its consumer settles it (done, or parked in its
-- .dlq); while it waits in a delay queue its consumer moves due_at to when it should be back. A
-- command overdue by a margin was lost somewhere (a purged queue, a bug): the sweeper in
-- conversation publishes it again (the consumers' dedupe keys make that safe), at most
-- --sweep_max times, then records it as abandoned.
ALTER TABLE outbox ADD COLUMN due_at timestamptz;
ALTER TABLE outbox ADD COLUMN settled_at timestamptz;
ALTER TABLE outbox ADD COLUMN outcome text;
ALTER TABLE outbox ADD COLUMN sweeps integer NOT NULL DEFAULT 0;
-- Commands published before the ledger existed are taken as settled: no consumer tracked them.
-- Those not yet published are tracked from now on, like any new one.
UPDATE outbox SET settled_at = published_at, outcome = 'before_ledger'
  WHERE exchange = 'convoy.commands' AND published_at IS NOT NULL;
UPDATE outbox SET due_at = created_at WHERE exchange = 'convoy.commands' AND settled_at IS NULL;
CREATE INDEX outbox_unsettled ON outbox (due_at) WHERE settled_at IS NULL AND due_at IS NOT NULL;
