-- Local compose only: the services' database roles with local passwords, created when the
-- postgres volume is first initialised. deploy/postgres/0014_service_roles.sql (run by the
-- migrate container as the owner) grants them their tables; production sets real passwords
-- (CloudNativePG managed roles, k8s/overlays/prod).
CREATE ROLE convoy_conversation LOGIN PASSWORD 'convoy_conversation-local';
CREATE ROLE convoy_media LOGIN PASSWORD 'convoy_media-local';
CREATE ROLE convoy_outbound LOGIN PASSWORD 'convoy_outbound-local';
CREATE ROLE convoy_readonly LOGIN PASSWORD 'convoy_readonly-local';
