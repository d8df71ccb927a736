#!/usr/bin/env bash
# e2e: the local stack run twice on the same data, as a new user would — scripts/run.sh --demo,
# then scripts/run.sh (the demo again, then running) — on a runtime folder, broker, database and
# ports of its own (free ones below the ephemeral range), with the binaries of this build. After
# the second demo: no message parked, no send left short of `sent` or without its own wamid, no
# wamid conflict, `convoyctl health` exit 0.
#   tests/e2e/run_twice_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
root=$1 build=$2
run_dir=$build/run-twice
rm -rf "$run_dir"
mkdir -p "$run_dir"

# Eleven free loopback ports in 24000-29999: below the ephemeral range, as scripts/lib.sh's are.
read -r amqp dist mgmt prom pg ingress conversation media outbound graph receiver < <("$root/scripts/free_ports.py" 11)
export CONVOY_RUN_DIR=$run_dir CONVOY_BUILD_DIR=$build CONVOY_PREBUILT=1
export CONVOY_AMQP_PORT=$amqp CONVOY_AMQP_DIST_PORT=$dist CONVOY_AMQP_MGMT_PORT=$mgmt CONVOY_AMQP_PROM_PORT=$prom
export CONVOY_PG_PORT=$pg CONVOY_INGRESS_PORT=$ingress CONVOY_CONVERSATION_PORT=$conversation CONVOY_MEDIA_PORT=$media
export CONVOY_OUTBOUND_PORT=$outbound CONVOY_FAKE_GRAPH_PORT=$graph CONVOY_FAKE_RECEIVER_PORT=$receiver
# Not the test suite's broker and database: this run's own.
unset CONVOY_AMQP_URL CONVOY_RABBIT_MGMT_URL CONVOY_PG_DSN CONVOY_RABBIT_NODE
. "$root/scripts/lib.sh"

run_pid=
finish() {
  local rc=$?
  if [ -n "$run_pid" ] && kill -0 "$run_pid" 2>/dev/null; then
    # What Ctrl-C does (a background job of a script ignores SIGINT; run.sh traps TERM alike).
    kill -TERM "$run_pid" 2>/dev/null || true
    wait_for "run.sh to stop what it started" 90 bash -c "! kill -0 $run_pid" || kill -KILL "$run_pid" 2>/dev/null || true
    wait "$run_pid" 2>/dev/null || true
  fi
  "$root/scripts/infra.sh" stop all >/dev/null 2>&1 || true
  if [ $rc -ne 0 ]; then
    for f in "$run_dir"/run1.log "$run_dir"/run2.log "$run_dir"/logs/outbound.log; do
      [ -f "$f" ] && { echo "--- tail of $f"; tail -n 40 "$f"; }
    done
  fi
  exit $rc
}
trap finish EXIT

log "first run: scripts/run.sh --demo"
"$root/scripts/run.sh" --demo >"$run_dir/run1.log" 2>&1 || die "the first run failed"
grep -q "business < lead.qualified" "$run_dir/run1.log" || die "the first demo did not finish"

log "second run, same data: scripts/run.sh"
"$root/scripts/run.sh" >"$run_dir/run2.log" 2>&1 &
run_pid=$!
second_running() {
  kill -0 "$run_pid" 2>/dev/null || return 100
  grep -q "Running. Ctrl-C stops everything." "$run_dir/run2.log"
}
wait_for "the second demo" 180 second_running || die "the second run did not get through its demo"

sql() { psql "$CONVOY_PG_DSN" -qAt -v ON_ERROR_STOP=1 -c "$1"; }
# Messages in the status queue, its delay queues and every parking queue.
waiting_or_parked() {
  curl -sf -u guest:guest "$CONVOY_RABBIT_MGMT_URL/api/queues" | python3 -c '
import json, sys
print(sum(q.get("messages", 0) for q in json.load(sys.stdin)
          if q["name"].startswith("outbound.status") or q["name"].endswith(".dlq")))'
}
settled() {
  [ "$(waiting_or_parked)" = 0 ] &&
    [ "$(sql "SELECT count(*) FROM outbound_messages WHERE status NOT IN ('sent', 'delivered', 'read') OR wamid IS NULL")" = 0 ]
}
wait_for "every send recorded and every status applied" 60 settled || {
  sql "SELECT dedupe_key, status, coalesce(wamid, '-'), coalesce(error_reason, '') FROM outbound_messages
       WHERE status NOT IN ('sent', 'delivered', 'read') OR wamid IS NULL" >&2
  die "sends short of sent, or messages waiting or parked: $(waiting_or_parked)"; }

sends=$(sql "SELECT count(*) FROM outbound_messages")
distinct=$(sql "SELECT count(DISTINCT wamid) FROM outbound_messages")
[ "$sends" -ge 24 ] || die "only $sends sends recorded over two demos"
[ "$sends" = "$distinct" ] || die "$sends sends but $distinct distinct wamids"
conflicts=$(curl -sf "http://127.0.0.1:$outbound/metrics" | awk '$1 == "convoy_outbound_wamid_conflicts_total" {print $2}')
[ "${conflicts:-0}" = 0 ] || die "$conflicts wamid conflicts"
"$build/services/convoyctl/convoyctl" health || die "convoyctl health exited $?"
log "two runs on one .run/: $sends sends, each sent with a wamid of its own, nothing parked, health ok"
