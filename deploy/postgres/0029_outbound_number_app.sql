-- Statuses and marketing preferences reach outbound straight from ingress. A webhook signed by
-- another Meta app than its number's (whoever holds one business's app secret signing for
-- another's number) is refused there as conversation refuses such a message: outbound reads the
-- number's app.
GRANT SELECT (app) ON numbers TO convoy_outbound;
