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

start_private_infra "$CONVOY_ROOT/.run/chaos" 23672 23682 23673 23692 23432

export CONVOY_CHAOS_CONVERSATIONS=$n CONVOY_CHAOS_RATE=$rate CONVOY_CHAOS_SEED=$seed
export CONVOY_CHAOS_DRAIN_SECONDS=${CONVOY_CHAOS_DRAIN_SECONDS:-$((300 + n / 20))}
"$build_dir/tests/chaos_test" --gtest_color=no 2>"$CONVOY_RUN_DIR/chaos.log" | grep -E '^(chaos:|\[)'
