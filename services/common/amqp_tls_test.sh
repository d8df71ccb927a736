#!/usr/bin/env bash
# Security: runs amqp_tls_test against a RabbitMQ node of its own with an amqps:// listener
# (scripts/infra.sh with CONVOY_AMQP_TLS_PORT: a throw-away CA and a server certificate for
# localhost), on free loopback ports below the ephemeral range, and a second CA that did not sign
# the broker. The node is stopped when the test ends, whatever the outcome.
#   services/common/amqp_tls_test.sh SOURCE_DIR TEST_BINARY [gtest arguments]
# CONVOY_TLS_TEST_PORTS=LOW-HIGH narrows the port range (default 24000-29999).
set -euo pipefail
root=$1 binary=$2
shift 2
run_dir=$(dirname "$binary")/amqp-tls-test
rm -rf "$run_dir"
mkdir -p "$run_dir"

read -r amqp dist mgmt prom amqps < <("$root/scripts/free_ports.py" 5 "${CONVOY_TLS_TEST_PORTS:-24000-29999}")
export CONVOY_RUN_DIR=$run_dir CONVOY_AMQP_PORT=$amqp CONVOY_AMQP_DIST_PORT=$dist CONVOY_AMQP_MGMT_PORT=$mgmt
export CONVOY_AMQP_PROM_PORT=$prom CONVOY_AMQP_TLS_PORT=$amqps
# Not the test suite's broker: this test's own.
unset CONVOY_AMQP_URL CONVOY_RABBIT_MGMT_URL CONVOY_PG_DSN CONVOY_RABBIT_NODE
. "$root/scripts/lib.sh"
trap '"$root/scripts/infra.sh" stop rabbit >/dev/null 2>&1 || true' EXIT
"$root/scripts/infra.sh" start rabbit

# Another CA, self-signed like the broker's, that signed nothing the broker holds.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj "/CN=convoy wrong CA" \
  -addext "basicConstraints=critical,CA:TRUE" -keyout "$run_dir/wrong-ca.key" -out "$run_dir/wrong-ca.pem" 2>/dev/null

export CONVOY_TLS_TEST_AMQPS_PORT=$amqps CONVOY_TLS_TEST_AMQP_PORT=$amqp
export CONVOY_TLS_TEST_CA_FILE=$run_dir/rabbitmq/tls/ca.pem CONVOY_TLS_TEST_WRONG_CA_FILE=$run_dir/wrong-ca.pem
export CONVOY_TLS_TEST_MGMT_URL=$CONVOY_RABBIT_MGMT_URL
"$binary" "$@"
