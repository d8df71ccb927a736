-- How long messages wait in each work queue, as each consumer process last saw it
-- (services/common/include/convoy/queue_waits.h): RabbitMQ 3.10's quorum queues report no head
-- message's age, so the console's operations screen bounds it with these. One row per queue (a
-- partition under its own name) and consumer process ("<service>@<host>"), written every 5 s by
-- that process while it takes messages; rows untouched for 7 days are deleted by conversation.
CREATE TABLE queue_waits (
  queue         text        NOT NULL,
  consumer      text        NOT NULL,
  waiting_since timestamptz NOT NULL,  -- the newest time a message it took began to wait
  taken_at      timestamptz NOT NULL,  -- when it last took one
  last_wait_ms  bigint      NOT NULL,  -- how long that one had waited
  PRIMARY KEY (queue, consumer)
);
GRANT SELECT, INSERT, UPDATE ON queue_waits TO convoy_conversation, convoy_media, convoy_outbound;
GRANT DELETE ON queue_waits TO convoy_conversation;
GRANT SELECT ON queue_waits TO convoy_readonly;
