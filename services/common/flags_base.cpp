// Flags every service has.
#include <gflags/gflags.h>

#include <cstdlib>

#include "convoy/config.h"
#include "convoy/flags.h"

DEFINE_string(
    amqp_url, "amqp://guest:guest@127.0.0.1:21672/%2f",
    "RabbitMQ URL, amqp://user:pass@host:port/vhost, or a cluster's nodes' URLs comma-separated (a "
    "connection goes to the first that answers); env CONVOY_AMQP_URL is used when the flag is not "
    "given");
DEFINE_validator(amqp_url, &convoy::ValidateAmqpUrl);
DEFINE_bool(
    declare_topology, false,
    "Declare convoy's exchanges, queues and bindings on connect. Off by default: `convoy-topology "
    "--upgrade` declares them, and a service's own broker user may not (README: Broker users)");
DEFINE_string(amqp_ca_file, "",
              "amqps:// only: PEM file of the CA(s) the broker's certificate must chain to (empty: "
              "the system's "
              "trust store; env CONVOY_AMQP_CA_FILE when the flag is not given). The broker is "
              "always verified, chain "
              "and host name; a plain amqp:// URL with this set is refused");
DEFINE_string(
    amqp_cert_file, "",
    "amqps:// only: client certificate (PEM) for a broker that asks for one, with --amqp_key_file "
    "(env CONVOY_AMQP_CERT_FILE)");
DEFINE_string(
    amqp_key_file, "",
    "amqps:// only: the client certificate's private key (PEM, unencrypted), with --amqp_cert_file "
    "(env CONVOY_AMQP_KEY_FILE)");
DEFINE_string(http_host, "127.0.0.1",
              "Address the HTTP server listens on (0.0.0.0 in a container)");
DEFINE_validator(http_host, &convoy::ValidateNonEmpty);
DEFINE_int32(http_port, 8080,
             "HTTP port for the service's routes and /healthz, /readyz, /metrics (unless "
             "--metrics_port; 0: a free port)");
DEFINE_validator(http_port, &convoy::ValidatePort);
DEFINE_int32(metrics_port, -1,
             "-1: /metrics on --http_port (local runs). A port: /metrics only on a listener of its "
             "own there (with "
             "/healthz and /readyz), and --http_port answers 404 for it, so a NetworkPolicy can "
             "open it to the "
             "monitoring namespace alone; the deployments use 9180");
DEFINE_validator(metrics_port, &convoy::ValidateMetricsPort);
DEFINE_int32(http_threads, 16,
             "HTTP threads: the listener's I/O threads (its handlers run on them) and the HTTP "
             "client's pool");
DEFINE_validator(http_threads, &convoy::ValidatePositive);
DEFINE_int32(read_timeout_seconds, 10,
             "A request whose headers and body have not all arrived this long after its first byte "
             "is dropped");
DEFINE_validator(read_timeout_seconds, &convoy::ValidatePositive);
DEFINE_int32(idle_timeout_seconds, 60,
             "A keep-alive connection with no request for this long is closed");
DEFINE_validator(idle_timeout_seconds, &convoy::ValidatePositive);
DEFINE_int32(max_connections, 1000,
             "HTTP connections open at once; past it the one idle the longest is closed to make "
             "room, and a new "
             "one gets 503 when every one is busy with a request");
DEFINE_validator(max_connections, &convoy::ValidatePositive);
DEFINE_int32(
    max_body_memory_bytes, 64 << 20,
    "Request bodies the listener holds in memory at once, all connections together; past it 503");
DEFINE_validator(max_body_memory_bytes, &convoy::ValidatePositive);

namespace convoy {

Result<AmqpOptions> AmqpOptionsFromFlags(const std::string& name) {
  AmqpOptions options;
  options.url = FLAGS_amqp_url;
  options.name = name;
  options.declare_topology = FLAGS_declare_topology;
  options.ca_file = FLAGS_amqp_ca_file;
  options.cert_file = FLAGS_amqp_cert_file;
  options.key_file = FLAGS_amqp_key_file;
  // The part's generated credentials, apart from the broker's address (k8s: the Topology
  // Operator's Secret); they replace the URL's user and password.
  if (const char* user = std::getenv("CONVOY_AMQP_USERNAME"); user && *user)
    options.username = user;
  if (const char* password = std::getenv("CONVOY_AMQP_PASSWORD"); password && *password)
    options.password = password;
  Status s = ValidateAmqpOptions(options);
  if (!s.ok()) return s;
  return options;
}

HttpLimits HttpLimitsFromFlags() {
  HttpLimits limits;
  limits.read_timeout = std::chrono::seconds(FLAGS_read_timeout_seconds);
  limits.idle_timeout = std::chrono::seconds(FLAGS_idle_timeout_seconds);
  limits.max_connections = static_cast<size_t>(FLAGS_max_connections);
  limits.max_body_memory_bytes = static_cast<size_t>(FLAGS_max_body_memory_bytes);
  limits.threads = static_cast<size_t>(FLAGS_http_threads);
  limits.metrics_port = FLAGS_metrics_port;
  return limits;
}

}  // namespace convoy
