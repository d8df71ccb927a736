#!/usr/bin/env bash
# cluster: the tests that need three RabbitMQ nodes (tests/cluster/broker_failover_test.cpp) and a
# PostgreSQL primary with a standby (pg_failover_test.cpp) on a cluster of this run's own — its
# runtime folder and ports (node 1 on 28672, nodes 2 and 3 100 and 200 above each port; PostgreSQL
# on 28432 and 28532: scripts/infra.sh start cluster), stopped and deleted at the end.
#   tests/cluster/run_cluster_test.sh SOURCE_DIR BUILD_DIR [gtest arguments]
# CONVOY_CLUSTER_BINARY runs another test binary of BUILD_DIR/tests on such a cluster (the chaos
# run's cluster mode: chaos_test), CONVOY_CLUSTER_PORT_BASE its ports' first two digits (28).
set -euo pipefail
root=$1 build=$2
shift 2
binary=${CONVOY_CLUSTER_BINARY:-cluster_test}
base=${CONVOY_CLUSTER_PORT_BASE:-28}
export CONVOY_RUN_DIR=$build/run-$binary
export CONVOY_AMQP_PORT=${base}672 CONVOY_AMQP_DIST_PORT=${base}682 CONVOY_AMQP_MGMT_PORT=${base}673 CONVOY_AMQP_PROM_PORT=${base}692
export CONVOY_PG_PORT=${base}432  # the standby 100 above
unset CONVOY_AMQP_URL CONVOY_RABBIT_MGMT_URL CONVOY_PG_DSN CONVOY_RABBIT_NODE
. "$root/scripts/lib.sh"
trap '"$root/scripts/infra.sh" reset cluster || true' EXIT
"$root/scripts/infra.sh" reset cluster >/dev/null 2>&1 || true
rm -rf "$CONVOY_RUN_DIR"
"$root/scripts/infra.sh" start cluster
export CONVOY_CLUSTER_AMQP_URLS=$("$root/scripts/infra.sh" urls cluster)
export CONVOY_CLUSTER_PG_DSN=$("$root/scripts/infra.sh" dsn cluster)
export CONVOY_CLUSTER_INFRA="$root/scripts/infra.sh"
# What the test support reads (test::Stack and friends): every node, the pair's DSN.
export CONVOY_AMQP_URL=$CONVOY_CLUSTER_AMQP_URLS CONVOY_PG_DSN=$CONVOY_CLUSTER_PG_DSN
CONVOY_RABBIT_MGMT_URL=http://127.0.0.1:$CONVOY_AMQP_MGMT_PORT,http://127.0.0.1:$((CONVOY_AMQP_MGMT_PORT + 100)),http://127.0.0.1:$((CONVOY_AMQP_MGMT_PORT + 200))
export CONVOY_RABBIT_MGMT_URL
"$build/tests/$binary" "$@"
