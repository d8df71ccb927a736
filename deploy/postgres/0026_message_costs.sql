-- What Meta bills, summed per conversation, number and tenant (issue 27, "cost per conversation"):
-- since July 2025 every message has its own price, so a business sizing its bill counts messages by
-- category and whether they were billable. From the pricing outbound keeps on each message (0007);
-- convoyctl and dashboards read it, nothing writes it.
CREATE VIEW message_costs AS
SELECT m.conversation_key, m.phone_number_id, n.tenant,
       m.pricing->>'category' AS category, m.pricing->>'pricing_model' AS pricing_model,
       count(*) AS messages,
       count(*) FILTER (WHERE m.pricing->>'billable' = 'true') AS billable,
       min(m.created_at) AS first_at, max(m.created_at) AS last_at
FROM outbound_messages m LEFT JOIN numbers n ON n.phone_number_id = m.phone_number_id
WHERE m.pricing IS NOT NULL
GROUP BY m.conversation_key, m.phone_number_id, n.tenant, m.pricing->>'category', m.pricing->>'pricing_model';
GRANT SELECT ON message_costs TO convoy_readonly;
