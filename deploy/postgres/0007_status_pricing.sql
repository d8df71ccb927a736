-- outbound: what Meta bills for a message (the `pricing` object of its status webhooks: billable,
-- pricing_model, category, type), from whichever status carries it.
ALTER TABLE outbound_messages ADD COLUMN pricing jsonb;
