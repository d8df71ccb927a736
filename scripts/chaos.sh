#!/usr/bin/env bash
# The chaos run: N conversations (default 10000) posted at RATE webhooks/s (default 400), every
# webhook twice and shuffled, Meta-like retries, Graph faults, kill -9 of every service twice, of
# the broker once, a database crash-restart, all mid-stream. Prints accepted / answered once /
# answered twice / parked / lost and exits non-zero unless nothing was lost, answered twice or
# parked. Runs on a broker and a database of its own (ports 23xxx, .run/chaos), which it kills.
#   scripts/chaos.sh [N] [RATE] [SEED]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
n=${1:-10000}; rate=${2:-400}; seed=${3:-1}

"$here/setup.sh"
build_dir=$("$here/build.sh" | tail -n 1)

export CONVOY_RUN_DIR=$CONVOY_ROOT/.run/chaos
export CONVOY_AMQP_PORT=23672 CONVOY_AMQP_DIST_PORT=23682 CONVOY_AMQP_MGMT_PORT=23673 CONVOY_AMQP_PROM_PORT=23692
export CONVOY_PG_PORT=23432
unset CONVOY_AMQP_URL CONVOY_RABBIT_MGMT_URL CONVOY_PG_DSN CONVOY_RABBIT_NODE
. "$here/lib.sh"

cleanup() { "$here/infra.sh" stop all || true; }
trap cleanup EXIT
rm -rf "$CONVOY_RUN_DIR"
"$here/infra.sh" start all

export CONVOY_CHAOS_CONVERSATIONS=$n CONVOY_CHAOS_RATE=$rate CONVOY_CHAOS_SEED=$seed
export CONVOY_CHAOS_DRAIN_SECONDS=${CONVOY_CHAOS_DRAIN_SECONDS:-$((300 + n / 20))}
"$build_dir/tests/chaos_test" --gtest_color=no 2>"$CONVOY_RUN_DIR/chaos.log" | grep -E '^(chaos:|\[)'
