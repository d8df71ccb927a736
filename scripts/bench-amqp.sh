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
mgmt() { curl -sf -u guest:guest -X "$1" "$CONVOY_RABBIT_MGMT_URL/api/$2" -H 'content-type: application/json' ${3:+-d "$3"}; }
cleanup() { mgmt DELETE "vhosts/$vhost" || true; for s in "${started[@]}"; do "$here/infra.sh" stop "$s" || true; done; }
trap cleanup EXIT
mgmt PUT "vhosts/$vhost" '{}'
mgmt PUT "permissions/$vhost/guest" '{"configure":".*","write":".*","read":".*"}'
base=${CONVOY_AMQP_URL%/*}
"$bin/tests/convoy-amqp-bench" --amqp_url="$base/$vhost" "$@"
