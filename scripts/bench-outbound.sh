#!/usr/bin/env bash
# The outbound service against the fake Graph API, from one run on this machine:
#   1. ceiling: the fake Graph API's own rate, posted to from as many threads as outbound has
#      send consumers (what one machine's HTTP stack allows; outbound cannot beat it)
#   2. throughput: SENDS commands preloaded into outbound.send, outbound started with pacing
#      off: sends/s at the fake, first to last (each one a claim, a call and a log update)
#   3. pacing: 80/s (burst 20) to one business number, 80 x (WINDOW + 6) commands preloaded, each
#      to its own recipient: the steady rate over WINDOW seconds after the burst, and the busiest
#      second. Target: within 2 % of 80/s.
#   4. statuses: the delivered and read statuses of the throughput run's sends preloaded into
#      outbound.status, outbound started with --status_batch=1 (a transaction per status) and then
#      with its default: statuses/s until the last is applied, and CPU ms per status of outbound
#      and of PostgreSQL (the postmaster and its children) over the drain.
#   scripts/bench-outbound.sh [SENDS] [WINDOW] [CONSUMERS]   (defaults 10000, 30 s, 4)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
sends=${1:-10000}; window=${2:-30}; consumers=${3:-4}
for v in "$sends" "$window" "$consumers"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || die "usage: $0 [SENDS] [WINDOW] [CONSUMERS] (positive integers)"
done
"$here/setup.sh" >/dev/null
bin=$("$here/build.sh" | tail -n 1)
started=()
start_infra rabbit started
start_infra pg started
vhost=bench-outbound-$$ db=bench_outbound_$$
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
graph_port=18095 http_port=18083
export CONVOY_GRAPH_TOKEN=bench-token
log_dir=$CONVOY_RUN_DIR/bench; mkdir -p "$log_dir"
: >"$log_dir/outbound.log"; : >"$log_dir/outbound-bench.log"
tool() { "$bin/tests/convoy-outbound-bench" --amqp_url="$url" --graph_port="$graph_port" "$@" 2>>"$log_dir/outbound-bench.log" | grep '^RESULT'; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
outbound() {  # starts convoy-outbound with extra flags; sets $svc
  "$bin/services/outbound/convoy-outbound" --amqp_url="$url" --pg_dsn="$dsn" --http_port="$http_port" \
    --schema_dir="$CONVOY_ROOT/proto-schemas" --migrations_dir="$CONVOY_ROOT/deploy/postgres" --migrate --declare_topology \
    --graph_base_url="http://127.0.0.1:$graph_port/v24.0" --consumer_threads="$consumers" "$@" \
    >>"$log_dir/outbound.log" 2>&1 &
  svc=$!; pids+=("$svc")
}
measure() {  # the fake Graph API up first (outbound's first call must find it), then outbound; sets $svc
  local n=$1 out=$2; shift 2
  tool --mode=measure --sends="$n" --window_seconds="$window" >"$out" &
  local m=$!
  wait_for "the fake Graph API" 30 curl -sf "http://127.0.0.1:$graph_port/_fake/requests" || die "fake Graph API did not start"
  outbound "$@"
  wait_for "convoy-outbound ready" 60 curl -sf "http://127.0.0.1:$http_port/readyz" ||
    die "convoy-outbound did not get ready; see $log_dir/outbound.log"
  wait "$m" || die "outbound did not send $n messages; see $log_dir"
}

log "ceiling: the fake Graph API from $consumers threads"
ceiling=$(tool --mode=ceiling --connections="$consumers" --seconds=5)
log "ceiling: $ceiling"

log "throughput: $sends commands preloaded, pacing off"
tool --mode=preload --tag=t --sends="$sends" >/dev/null
measure "$sends" "$log_dir/throughput.out" --pacing=false
throughput=$(cat "$log_dir/throughput.out")
rss=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$svc/status")
kill "$svc"; wait "$svc" 2>/dev/null || true
log "throughput: $throughput"

paced_n=$((80 * (window + 6)))
log "pacing: $paced_n commands preloaded, 80/s"
tool --mode=preload --tag=p --sends="$paced_n" >/dev/null
measure "$paced_n" "$log_dir/pacing.out" --pacing=true --number_rate=80 --number_burst=20
pacing=$(cat "$log_dir/pacing.out")
kill "$svc"; wait "$svc" 2>/dev/null || true
log "pacing: $pacing"

cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # clock ticks, user + system
tick=$(getconf CLK_TCK)
postmaster=$(head -n 1 "$CONVOY_RUN_DIR/postgres/data/postmaster.pid" 2>/dev/null || true)
pg_cpu() {
  local t=0
  [ -n "$postmaster" ] || { echo 0; return; }
  for p in "$postmaster" $(pgrep -P "$postmaster"); do [ -r "/proc/$p/stat" ] && t=$((t + $(cpu_of "$p"))); done
  echo "$t"
}
psql "$dsn" -Atq -F $'\t' -c "SELECT wamid, dedupe_key FROM outbound_messages WHERE wamid IS NOT NULL" >"$log_dir/wamids.tsv"
statuses_total=$(( 2 * $(wc -l <"$log_dir/wamids.tsv") ))
read_count() { psql "$dsn" -Atq -c "SELECT count(*) FROM outbound_messages WHERE status = 'read'"; }
all_read() { [ "$(read_count)" -ge "$((statuses_total / 2))" ]; }
drain() {  # drain BATCH: sets $result, "RESULT ..." for the preloaded statuses applied with --status_batch=BATCH
  local batch=$1 t0 p0 o
  psql "$dsn" -Atq -c "UPDATE outbound_messages SET status = 'sent' WHERE wamid IS NOT NULL"
  tool --mode=statuses --wamids_file="$log_dir/wamids.tsv" >/dev/null
  t0=$(date +%s%3N); p0=$(pg_cpu)
  outbound --pacing=false --status_batch="$batch"
  wait_for "$statuses_total statuses applied" 600 all_read || die "statuses not applied; see $log_dir/outbound.log"
  o=$(cpu_of "$svc")
  local t1; t1=$(date +%s%3N)
  result="RESULT statuses=$statuses_total batch=$batch"
  result+=" seconds=$(awk -v a="$t1" -v b="$t0" 'BEGIN{printf "%.1f", (a-b)/1000}')"
  result+=" per_s=$(awk -v a="$t1" -v b="$t0" -v n="$statuses_total" 'BEGIN{printf "%.0f", n*1000/(a-b)}')"
  result+=" outbound_cpu_ms=$(awk -v c="$o" -v t="$tick" -v n="$statuses_total" 'BEGIN{printf "%.3f", c*1000/t/n}')"
  result+=" postgres_cpu_ms=$(awk -v a="$(pg_cpu)" -v b="$p0" -v t="$tick" -v n="$statuses_total" 'BEGIN{printf "%.3f", (a-b)*1000/t/n}')"
  kill "$svc"; wait "$svc" 2>/dev/null || true
}
log "statuses: $statuses_total preloaded, one transaction each"
drain 1; one=$result
log "statuses: $one"
log "statuses: $statuses_total preloaded, in batches"
drain 32; batched=$result
log "statuses: $batched"

rate=$(field window_rate "$pacing")
echo
echo "outbound benchmark: $consumers send consumers, fake Graph API in-process with the measuring tool ($(nproc) cores, broker and database on this machine)"
echo
echo "| run | sends | sends/s | busiest second |"
echo "|---|---:|---:|---:|"
echo "| fake Graph API ceiling, $consumers threads posting | $(field posts "$ceiling") | $(field posts_per_s "$ceiling") | - |"
echo "| outbound, pacing off (preloaded queue) | $(field sends "$throughput") | $(field sends_per_s "$throughput") | $(field busiest_second "$throughput") |"
echo "| outbound, paced at 80/s: ${window} s steady window | $(field sends "$pacing") | $rate | $(field busiest_second "$pacing") |"
echo
echo "outbound/ceiling: $(awk -v a="$(field sends_per_s "$throughput")" -v b="$(field posts_per_s "$ceiling")" 'BEGIN {printf "%.0f%%", 100*a/b}')   pacing error: $(awk -v r="$rate" 'BEGIN {printf "%+.2f%%", 100*(r-80)/80}') (target within 2 %)   Graph calls: $(field calls "$throughput") for $(field sends "$throughput") sends   peak RSS: ${rss} MiB"
echo
echo "| statuses (delivered, read) | statuses | statuses/s | outbound CPU ms/status | postgres CPU ms/status |"
echo "|---|---:|---:|---:|---:|"
echo "| one transaction each (--status_batch=1) | $(field statuses "$one") | $(field per_s "$one") | $(field outbound_cpu_ms "$one") | $(field postgres_cpu_ms "$one") |"
echo "| in batches (--status_batch=32) | $(field statuses "$batched") | $(field per_s "$batched") | $(field outbound_cpu_ms "$batched") | $(field postgres_cpu_ms "$batched") |"
awk -v r="$rate" 'BEGIN {exit !(r >= 78.4 && r <= 81.6)}' || { echo "pacing outside 2 % of 80/s" >&2; exit 1; }
