#!/usr/bin/env bash
# cluster: the tests that need three RabbitMQ nodes (tests/cluster/broker_failover_test.cpp) and a
# PostgreSQL primary with a standby (pg_failover_test.cpp) on a cluster of this run's own — its
# runtime folder and ports (node 1 on 28672, nodes 2 and 3 100 and 200 above each port; PostgreSQL
# on 28432 and 28532: scripts/infra.sh start cluster), stopped and deleted at the end.
#   tests/cluster/run_cluster_test.sh SOURCE_DIR BUILD_DIR [gtest arguments]
set -euo pipefail
root=$1 build=$2
shift 2
export CONVOY_RUN_DIR=$build/run-cluster
export CONVOY_AMQP_PORT=${CONVOY_CLUSTER_AMQP_PORT:-28672} CONVOY_AMQP_DIST_PORT=${CONVOY_CLUSTER_AMQP_DIST_PORT:-28682}
export CONVOY_AMQP_MGMT_PORT=${CONVOY_CLUSTER_AMQP_MGMT_PORT:-28673} CONVOY_AMQP_PROM_PORT=${CONVOY_CLUSTER_AMQP_PROM_PORT:-28692}
export CONVOY_PG_PORT=${CONVOY_CLUSTER_PG_PORT:-28432}  # the standby 100 above
unset CONVOY_AMQP_URL CONVOY_RABBIT_MGMT_URL CONVOY_PG_DSN CONVOY_RABBIT_NODE
. "$root/scripts/lib.sh"
trap '"$root/scripts/infra.sh" reset cluster || true' EXIT
"$root/scripts/infra.sh" reset cluster >/dev/null 2>&1 || true
rm -rf "$CONVOY_RUN_DIR"
"$root/scripts/infra.sh" start cluster
export CONVOY_CLUSTER_AMQP_URLS=$("$root/scripts/infra.sh" urls cluster)
export CONVOY_CLUSTER_PG_DSN=$("$root/scripts/infra.sh" dsn cluster)
export CONVOY_CLUSTER_INFRA="$root/scripts/infra.sh"
"$build/tests/cluster_test" "$@"
