// Flags every service has.
#include <gflags/gflags.h>

#include "convoy/config.h"
#include "convoy/flags.h"

DEFINE_string(amqp_url, "amqp://guest:guest@127.0.0.1:21672/%2f",
              "RabbitMQ URL, amqp://user:pass@host:port/vhost; env CONVOY_AMQP_URL is used when the flag is not given");
DEFINE_validator(amqp_url, &convoy::ValidateAmqpUrl);
DEFINE_string(http_host, "127.0.0.1", "Address the HTTP server listens on (0.0.0.0 in a container)");
DEFINE_validator(http_host, &convoy::ValidateNonEmpty);
DEFINE_int32(http_port, 8080, "HTTP port for the service's routes and /healthz, /readyz, /metrics (0: a free port)");
DEFINE_validator(http_port, &convoy::ValidatePort);
DEFINE_int32(http_threads, 16, "HTTP worker threads");
DEFINE_validator(http_threads, &convoy::ValidatePositive);
