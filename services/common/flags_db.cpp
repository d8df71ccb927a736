// Flags of the services that keep state in PostgreSQL and consume from the broker.
#include <gflags/gflags.h>

#include "convoy/config.h"
#include "convoy/flags.h"

DEFINE_string(pg_dsn, "host=127.0.0.1 port=21432 user=postgres dbname=postgres",
              "PostgreSQL connection string (libpq key=value or URI); env CONVOY_PG_DSN is used "
              "when the flag is not given");
DEFINE_validator(pg_dsn, &convoy::ValidateNonEmpty);
DEFINE_string(
    migrations_dir, "deploy/postgres",
    "Folder of numbered SQL migrations: the service refuses to start while one is not applied");
DEFINE_bool(migrate, false,
            "Apply pending migrations at start, under an advisory lock (needs the database owner's "
            "DSN: local "
            "benchmarks). Off by default: convoy-migrate applies them as the owner, and a "
            "service's role may not");
DEFINE_validator(migrations_dir, &convoy::ValidateNonEmpty);
DEFINE_string(schema_dir, "proto-schemas", "Folder of JSON Schemas for broker messages");
DEFINE_validator(schema_dir, &convoy::ValidateNonEmpty);
DEFINE_int32(consumer_threads, 4,
             "Consumers per work queue, each with its own broker and database connection");
DEFINE_validator(consumer_threads, &convoy::ValidatePositive);
DEFINE_int32(prefetch, 32, "Unacknowledged deliveries per consumer");
DEFINE_validator(prefetch, &convoy::ValidatePositive);
DEFINE_int32(max_attempts, 5, "Failures before a message is dead-lettered to its .dlq");
DEFINE_validator(max_attempts, &convoy::ValidatePositive);
DEFINE_int32(
    retention_interval_seconds, 600,
    "How often this service prunes the rows it owns that are past retention (10..86400 s)");
static bool ValidateRetentionInterval(const char* flag, int32_t v) {
  return convoy::InRange(flag, v, 10, 86400);
}
DEFINE_validator(retention_interval_seconds, &ValidateRetentionInterval);
DEFINE_int32(retention_days, 90,
             "Days the history is kept: transitions, identity changes, send logs, deliveries and "
             "their attempts, "
             "uploads, stored media and their files (1..3650)");
static bool ValidateRetentionDays(const char* flag, int32_t v) {
  return convoy::InRange(flag, v, 1, 3650);
}
DEFINE_validator(retention_days, &ValidateRetentionDays);
