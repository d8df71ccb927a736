-- Where a number's results go (issue 27, "its sinks"; issue 28, several sinks per result): the
-- flow's complete step names a sink ("listing", "lead"); a number maps that name to one or more
-- sinks of outbound's --sinks_file, e.g. {"listing": ["acme-shop", "acme-hook"]}. A name the
-- number does not map goes to the sink of that name, as before. Each (result, sink) is delivered
-- exactly once (deliveries' UNIQUE (result_id, sink)).
ALTER TABLE numbers ADD COLUMN sinks jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(sinks) = 'object');
