#!/usr/bin/env bash
# The conversation service under load, from one run on this machine, beside its ceiling:
#   1. drain: 10 messages per listing conversation (SELL, email, description, 6 photos, DONE)
#      preloaded into conversation.inbound, then the service started: applied messages/s,
#      measured in the database from the first to the last transaction
#   2. latency: the same mix published at a fixed rate to the running service (open loop):
#      p50/p99 from publish to the commit of the delivery's transaction (track_commit_timestamp)
#   3. pgbench: the same statements as one delivery's transaction (tests/bench/conversation_tx.sql)
#      with as many connections as the service's inbound consumers, on the same database
#   scripts/bench-conversation.sh [CONVERSATIONS] [RATE] [CONSUMERS]   (defaults 3000, 1000/s, 4)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
conversations=${1:-3000}; rate=${2:-1000}; consumers=${3:-4}
for v in "$conversations" "$rate" "$consumers"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || die "usage: $0 [CONVERSATIONS] [RATE] [CONSUMERS] (positive integers)"
done
"$here/setup.sh" >/dev/null
bin=$("$here/build.sh" | tail -n 1)
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
started=()
start_infra rabbit started
start_infra pg started
vhost=bench-conversation-$$ db=bench_conversation_$$
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  drop_vhost "$vhost"
  drop_db "$db"
  for s in "${started[@]}"; do "$here/infra.sh" stop "$s" || true; done
}
trap cleanup EXIT
url=$(scratch_vhost "$vhost")
dsn=$(scratch_db "$db")
log_dir=$CONVOY_RUN_DIR/bench; mkdir -p "$log_dir"
tool() { "$bin/tests/convoy-conversation-bench" --amqp_url="$url" --pg_dsn="$dsn" "$@" 2>>"$log_dir/conversation-bench.log" | grep '^RESULT'; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }

log "preloading $((conversations * 10)) messages"
tool --mode=preload --tag=drain --conversations="$conversations" --wait=false >/dev/null
"$bin/services/conversation/convoy-conversation" --amqp_url="$url" --pg_dsn="$dsn" --http_port=18081 \
  --schema_dir="$CONVOY_ROOT/proto-schemas" --migrations_dir="$CONVOY_ROOT/deploy/postgres" --migrate --declare_topology \
  --flows_dir="$CONVOY_ROOT/deploy/flows" --numbers_dir="$CONVOY_ROOT/deploy/numbers" --consumer_threads="$consumers" >"$log_dir/conversation.log" 2>&1 &
pids+=($!); svc=$!
drain=$(tool --mode=preload --tag=drain --conversations="$conversations" --publish=false)
log "drain: $drain"
latency=$(tool --mode=rate --tag=rate --rate="$rate" --conversations="$((rate * 10 / 10))")
log "fixed rate: $latency"
rss=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$svc/status")
tx=$(curl -sf http://127.0.0.1:18081/metrics | awk '
  /^convoy_conversation_transaction_seconds_sum/ {s=$2} /^convoy_conversation_transaction_seconds_count/ {c=$2}
  END {if (c > 0) printf "%.2f", 1000*s/c}')
kill "$svc"; wait "$svc" 2>/dev/null || true
pgb=$("$PG_BIN/pgbench" -n -c "$consumers" -j 2 -T 10 -f "$CONVOY_ROOT/tests/bench/conversation_tx.sql" "$dsn" 2>&1 |
  sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | head -n 1)

echo
echo "conversation benchmark: $conversations listing conversations x 10 messages, $consumers inbound consumers ($(nproc) cores, broker and database on this machine)"
echo
echo "| run | messages | applied msg/s | p50 ms | p99 ms | max ms |"
echo "|---|---:|---:|---:|---:|---:|"
echo "| drain a preloaded queue | $(field messages "$drain") | $(field applied_per_s "$drain") | - | - | - |"
echo "| fixed $rate msg/s (open loop) | $(field messages "$latency") | $(field applied_per_s "$latency") | $(field p50_ms "$latency") | $(field p99_ms "$latency") | $(field max_ms "$latency") |"
echo "| pgbench, same transaction, $consumers connections | - | ${pgb%.*} | - | - | - |"
echo
echo "service/pgbench: $(awk -v a="$(field applied_per_s "$drain")" -v b="$pgb" 'BEGIN {printf "%.0f%%", 100*a/b}')   mean transaction (service's histogram): ${tx} ms   peak RSS: ${rss} MiB"
echo "latency: from publish to the commit of the delivery's transaction ($(sed -n 's/.*until=\([a-z_]*\).*/\1/p' <<<"$latency"))"
