#!/usr/bin/env bash
# Confirmed-publish rate of convoy's Publisher (pipelined confirms) beside waiting for each
# confirm, measured in one run against the local broker, in a throw-away vhost.
#   scripts/bench-amqp.sh [--messages N] [--serial_messages N] [--body_bytes N]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
bin=$("$here/build.sh" | tail -n 1)
started=()
start_infra rabbit started
vhost=bench-$$
cleanup() { drop_vhost "$vhost"; for s in "${started[@]}"; do "$here/infra.sh" stop "$s" || true; done; }
trap cleanup EXIT
url=$(scratch_vhost "$vhost")
"$bin/tests/convoy-amqp-bench" --amqp_url="$url" "$@"
