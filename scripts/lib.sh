# Shared settings for convoy's scripts. Source it; it defines no side effects.
# Every value can be overridden from the environment.
CONVOY_ROOT=${CONVOY_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
CONVOY_RUN_DIR=${CONVOY_RUN_DIR:-$CONVOY_ROOT/.run}
CONVOY_BUILD_DIR=${CONVOY_BUILD_DIR:-$CONVOY_ROOT/build}
# Fixed ports stay below the ephemeral range (32768-60999), so a client socket can never hold one.
CONVOY_AMQP_PORT=${CONVOY_AMQP_PORT:-21672}
CONVOY_AMQP_DIST_PORT=${CONVOY_AMQP_DIST_PORT:-21682}
CONVOY_AMQP_MGMT_PORT=${CONVOY_AMQP_MGMT_PORT:-21673}
CONVOY_AMQP_PROM_PORT=${CONVOY_AMQP_PROM_PORT:-21692}
CONVOY_PG_PORT=${CONVOY_PG_PORT:-21432}
CONVOY_RABBIT_NODE=${CONVOY_RABBIT_NODE:-convoy-$CONVOY_AMQP_PORT@localhost}
CONVOY_AMQP_URL=${CONVOY_AMQP_URL:-amqp://guest:guest@127.0.0.1:$CONVOY_AMQP_PORT/%2f}
CONVOY_RABBIT_MGMT_URL=${CONVOY_RABBIT_MGMT_URL:-http://127.0.0.1:$CONVOY_AMQP_MGMT_PORT}
CONVOY_PG_DSN=${CONVOY_PG_DSN:-host=127.0.0.1 port=$CONVOY_PG_PORT user=postgres dbname=postgres}
export CONVOY_ROOT CONVOY_RUN_DIR CONVOY_BUILD_DIR CONVOY_AMQP_URL CONVOY_RABBIT_MGMT_URL CONVOY_PG_DSN

# start_infra WHAT ARRAY: starts rabbit or pg (scripts/infra.sh) unless it runs already, and
# appends WHAT to the array named ARRAY only when this call started it, so that a script stops
# only what it started (never the broker a developer or another script is using).
start_infra() {
  local out rc=0
  out=$("$CONVOY_ROOT/scripts/infra.sh" start "$1" 2>&1) || rc=$?
  printf '%s\n' "$out" >&2
  [ $rc -eq 0 ] || return $rc
  grep -q "already running" <<<"$out" || eval "$2+=(\"\$1\")"
}

# start_private_infra RUN_DIR AMQP_PORT DIST_PORT MGMT_PORT PROM_PORT PG_PORT: a throw-away broker
# and database of the calling script's own, under RUN_DIR (emptied first) on these ports, so a
# running local stack is untouched; stopped when the script exits (the EXIT trap).
start_private_infra() {
  export CONVOY_RUN_DIR=$1 CONVOY_AMQP_PORT=$2 CONVOY_AMQP_DIST_PORT=$3 CONVOY_AMQP_MGMT_PORT=$4
  export CONVOY_AMQP_PROM_PORT=$5 CONVOY_PG_PORT=$6
  unset CONVOY_AMQP_URL CONVOY_RABBIT_MGMT_URL CONVOY_PG_DSN CONVOY_RABBIT_NODE
  . "$CONVOY_ROOT/scripts/lib.sh"
  trap '"$CONVOY_ROOT/scripts/infra.sh" stop all || true' EXIT
  rm -rf "$CONVOY_RUN_DIR"
  "$CONVOY_ROOT/scripts/infra.sh" start all
}

# Throw-away vhosts and databases for one script run (benchmarks), on the running broker and
# PostgreSQL. scratch_vhost/scratch_db print the URL/DSN of what they created.
rabbit_mgmt() { curl -sf -u guest:guest -X "$1" "$CONVOY_RABBIT_MGMT_URL/api/$2" -H 'content-type: application/json' ${3:+-d "$3"}; }
psql_admin() { psql "$CONVOY_PG_DSN" -qAt -v ON_ERROR_STOP=1 -c "$1"; }
scratch_vhost() {
  rabbit_mgmt PUT "vhosts/$1" '{}' >/dev/null &&
    rabbit_mgmt PUT "permissions/$1/guest" '{"configure":".*","write":".*","read":".*"}' >/dev/null &&
    echo "${CONVOY_AMQP_URL%/*}/$1"
}
drop_vhost() { rabbit_mgmt DELETE "vhosts/$1" >/dev/null || true; }
scratch_db() { psql_admin "CREATE DATABASE $1" && echo "${CONVOY_PG_DSN/dbname=postgres/dbname=$1}"; }
drop_db() { psql_admin "DROP DATABASE IF EXISTS $1" >/dev/null || true; }

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# wait_for DESCRIPTION SECONDS COMMAND...: run COMMAND until it succeeds or the deadline passes.
# COMMAND exiting with 100 means "will never succeed": stop waiting at once.
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs)) rc
  while true; do
    rc=0
    "$@" >/dev/null 2>&1 || rc=$?
    [ $rc -eq 0 ] && return 0
    [ $rc -eq 100 ] && { log "gave up waiting for $what"; return 1; }
    [ $SECONDS -lt $deadline ] || { log "timed out after ${secs}s waiting for $what"; return 1; }
    sleep 0.2
  done
}
