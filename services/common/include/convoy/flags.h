#pragma once
// Flags shared by several services, declared here and defined once in flags.cpp, so each has
// one description, one default and one validator. A service's --help lists what it links.
#include <gflags/gflags_declare.h>

#include "convoy/amqp.h"
#include "convoy/http.h"

DECLARE_string(amqp_url);
DECLARE_bool(declare_topology);
DECLARE_string(amqp_ca_file);
DECLARE_string(amqp_cert_file);
DECLARE_string(amqp_key_file);
DECLARE_string(http_host);
DECLARE_int32(http_port);
DECLARE_int32(metrics_port);
DECLARE_int32(http_threads);
DECLARE_int32(read_timeout_seconds);
DECLARE_int32(idle_timeout_seconds);
DECLARE_int32(max_connections);
DECLARE_int32(max_body_memory_bytes);

namespace convoy {
// The broker connection from --amqp_url, --declare_topology, --amqp_ca_file, --amqp_cert_file,
// --amqp_key_file and the environment's CONVOY_AMQP_USERNAME / CONVOY_AMQP_PASSWORD (which replace
// the URL's credentials), checked (ValidateAmqpOptions): an error names the flag to fix.
Result<AmqpOptions> AmqpOptionsFromFlags(const std::string& name);
// The listener's limits from --read_timeout_seconds, --idle_timeout_seconds, --max_connections,
// --max_body_memory_bytes and --http_threads, and --metrics_port.
HttpLimits HttpLimitsFromFlags();
}  // namespace convoy

// Services with a database.
DECLARE_string(pg_dsn);
DECLARE_string(migrations_dir);
DECLARE_bool(migrate);
DECLARE_string(schema_dir);
DECLARE_int32(consumer_threads);
DECLARE_int32(prefetch);
DECLARE_int32(max_attempts);
DECLARE_int32(retention_interval_seconds);
DECLARE_int32(retention_days);

// Services that call the Graph API.
DECLARE_string(graph_base_url);
DECLARE_string(graph_token_file);
DECLARE_int32(graph_timeout_ms);
DECLARE_int32(graph_token_check_seconds);
