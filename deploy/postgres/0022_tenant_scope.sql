-- Tenants never meet (issue 27). A record belongs to the tenant of its business number, and a
-- number never moves between tenants (PUT /v1/numbers answers 409), so every key that starts with
-- a phone_number_id (conversations, identities, outbox and deliveries by conversation key) names
-- its tenant. Assignments and checklists carry theirs outright: a tenant's token lists, shows,
-- cancels and creates only its own, and an Idempotency-Key is one tenant's, not the deployment's.

-- A checklist defined by a tenant's token is that tenant's; one from deploy/checklists/ or a
-- global token (tenant NULL) is shared by every tenant. Ids stay unique across the deployment.
ALTER TABLE checklists ADD COLUMN tenant text;

-- An assignment's tenant is its number's, fixed when it is created.
ALTER TABLE assignments ADD COLUMN tenant text;
UPDATE assignments a SET tenant = n.tenant FROM numbers n WHERE n.phone_number_id = a.phone_number_id;
CREATE INDEX assignments_by_tenant ON assignments (tenant, created_at);
ALTER TABLE assignments DROP CONSTRAINT assignments_idempotency_key_key;
CREATE UNIQUE INDEX assignments_idempotency ON assignments (coalesce(tenant, ''), idempotency_key)
  WHERE idempotency_key IS NOT NULL;

-- outbound lists a tenant's deliveries by the tenant of the number in their conversation key.
GRANT SELECT (phone_number_id, tenant) ON numbers TO convoy_outbound;
