-- Outbound paces each business number at its own throughput from the registry (a coexistence
-- number at 20/s, an upgraded one up to 1,000/s) instead of one rate for all; it reads only what
-- that needs.
GRANT SELECT (phone_number_id, throughput, status) ON numbers TO convoy_outbound;
