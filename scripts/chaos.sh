#!/usr/bin/env bash
# The chaos run: N conversations (default 10000) posted at RATE webhooks/s (default 400), every
# webhook twice and shuffled, Meta-like retries, Graph faults, kill -9 of every service twice, of
# the broker once, a database crash-restart, all mid-stream. Prints accepted / answered once /
# answered twice / parked / lost and exits non-zero unless nothing was lost, answered twice or
# parked. Runs on a broker and a database of its own (ports 23xxx, .run/chaos), which it kills.
#   scripts/chaos.sh [N] [RATE] [SEED]
#   scripts/chaos.sh --cluster [N] [RATE] [SEED]   three broker nodes, a database primary with a
#     synchronous standby and two replicas of every service (ports 29xxx, build/run-chaos_test);
#     the faults: the first inbound partition's leader node killed, another node SIGSTOPped for
#     30 s, the database failed over, one replica of each service killed, a rolling restart.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
cluster=0
if [ "${1:-}" = --cluster ]; then cluster=1; shift; fi
n=${1:-10000}; rate=${2:-400}; seed=${3:-1}

"$here/setup.sh"
build_dir=$("$here/build.sh" | tail -n 1)

export CONVOY_CHAOS_CONVERSATIONS=$n CONVOY_CHAOS_RATE=$rate CONVOY_CHAOS_SEED=$seed
export CONVOY_CHAOS_DRAIN_SECONDS=${CONVOY_CHAOS_DRAIN_SECONDS:-$((300 + n / 20))}
if [ $cluster = 1 ]; then
  export CONVOY_CHAOS_CLUSTER=1 CONVOY_CLUSTER_BINARY=chaos_test CONVOY_CLUSTER_PORT_BASE=29
  "$CONVOY_ROOT/tests/cluster/run_cluster_test.sh" "$CONVOY_ROOT" "$build_dir" --gtest_color=no \
    2>"$build_dir/chaos-cluster.log" | grep -E '^(chaos:|\[)'
  exit "${PIPESTATUS[0]}"
fi
start_private_infra "$CONVOY_ROOT/.run/chaos" 23672 23682 23673 23692 23432
"$build_dir/tests/chaos_test" --gtest_color=no 2>"$CONVOY_RUN_DIR/chaos.log" | grep -E '^(chaos:|\[)'
