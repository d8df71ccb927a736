-- Each number calls Graph with its own token and under its own API version (issue 27), so one
-- tenant can move to a new version ahead of the others. graph_version NULL: the deployment's, the
-- version in --graph_base_url. The token stays a reference (graph_token_ref); outbound and media
-- resolve it in their own environment or files, never the database.
ALTER TABLE numbers ADD COLUMN graph_version text CHECK (graph_version ~ '^v[0-9]{1,3}\.[0-9]$');

-- Outbound calls Graph for a number's sends and read receipts; media downloads a number's inbound
-- media. Each reads only which token and version that number calls with.
GRANT SELECT (graph_token_ref, graph_version) ON numbers TO convoy_outbound;
GRANT SELECT (phone_number_id, graph_token_ref, graph_version) ON numbers TO convoy_media;
