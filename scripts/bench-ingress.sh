#!/usr/bin/env bash
# Ingress under load, from one run on this machine, each number beside its ceiling:
#   1. convoy-bare-listener: the same HTTP layer answering 200 with no work (framework ceiling)
#   2. convoy-ingress: verify, split, publish with confirms, then 200
#   3. convoy-amqp-bench: the broker's confirmed-publish rate (broker ceiling)
# and checks that the queue holds exactly as many messages as ingress answered 200 for.
#   scripts/bench-ingress.sh [SECONDS] [CONNECTIONS]       (defaults 10 s, 32 connections)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
seconds=${1:-10}; conns=${2:-32}
command -v wrk >/dev/null || "$here/setup.sh"
bin=$("$here/build.sh" | tail -n 1)
started=()
start_infra rabbit started
vhost=bench-ingress-$$
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  drop_vhost "$vhost"
  for s in "${started[@]}"; do "$here/infra.sh" stop "$s" || true; done
}
trap cleanup EXIT
url=$(scratch_vhost "$vhost")
export CONVOY_APP_SECRET=bench-secret CONVOY_VERIFY_TOKEN=bench
export BODY_FILE=$CONVOY_ROOT/tests/data/bench-webhook.json
export SIGNATURE=$("$bin/tests/convoy-webhook" --file="$BODY_FILE" --print_only | head -n 1 | cut -d' ' -f2)
log_dir=$CONVOY_RUN_DIR/bench; mkdir -p "$log_dir"

rate=${BENCH_RATE:-2000}
run_rate() {  # run_rate PORT -> "RESULT ..." line at a fixed $rate POST/s (open loop)
  "$bin/tests/convoy-loadgen" --port="$1" --rate="$rate" --seconds="$seconds" --connections="$conns" \
    --body_file="$BODY_FILE" --signature="$SIGNATURE" | grep '^RESULT'
}
run_wrk() {  # run_wrk PORT -> "RESULT ..." line
  wrk -t2 -c"$conns" -d"${seconds}s" --timeout 5s -s "$CONVOY_ROOT/tests/bench/post.lua" \
    "http://127.0.0.1:$1/webhook" | grep '^RESULT'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # user + system, in 1/100 s
port=${CONVOY_AMQP_URL##*:}; port=${port%%/*}
broker_pid=$(ss -ltnpH "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2 || true)
peak_rss_mb() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }

"$bin/tests/convoy-bare-listener" --http_port=18091 >"$log_dir/bare.log" 2>&1 & pids+=($!); bare_pid=$!
wait_for "bare listener" 20 curl -sf http://127.0.0.1:18091/healthz
t0=$(cpu_ticks "$bare_pid")
bare=$(run_wrk 18091)
bare_cpu=$(( $(cpu_ticks "$bare_pid") - t0 ))
bare_fixed=$(run_rate 18091)
bare_rss=$(peak_rss_mb "$bare_pid")

"$bin/services/ingress/convoy-ingress" --amqp_url="$url" --declare_topology --http_port=18090 ${INGRESS_FLAGS:-} >"$log_dir/ingress.log" 2>&1 & pids+=($!); ing_pid=$!
wait_for "ingress ready" 30 curl -sf http://127.0.0.1:18090/readyz
t0=$(cpu_ticks "$ing_pid"); b0=$([ -n "$broker_pid" ] && cpu_ticks "$broker_pid" || echo 0)
ingress=$(run_wrk 18090)
ingress_cpu=$(( $(cpu_ticks "$ing_pid") - t0 ))
broker_cpu=$(( $([ -n "$broker_pid" ] && cpu_ticks "$broker_pid" || echo 0) - b0 ))
ingress_fixed=$(run_rate 18090)
ingress_rss=$(peak_rss_mb "$ing_pid")
metrics=$(curl -sf http://127.0.0.1:18090/metrics)
ok=$(sed -n 's/^convoy_ingress_requests_total{outcome="200"} //p' <<<"$metrics")
queued=$("$bin/tests/convoy-amqp-bench" --amqp_url="$url" --count_queue=conversation.inbound)
broker=$("$bin/tests/convoy-amqp-bench" --amqp_url="$url" --messages=20000 --serial_messages=1000 --body_bytes=1100 |
  sed -n 's/^| pipelined confirms (convoy Publisher) | [0-9]* | \([0-9]*\) .*/\1/p')

ratio=$(awk -v a="$(field rps "$ingress")" -v b="$(field rps "$bare")" 'BEGIN {printf "%.0f", 100*a/b}')
echo
echo "ingress benchmark: $seconds s per run, $conns connections, wrk -t2, body $(wc -c <"$BODY_FILE") bytes ($(nproc) cores)"
echo
echo "| server, load | POST/s | p50 ms | p99 ms | p99.9 ms | non-2xx | peak RSS MiB |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for row in "bare listener, wrk max:$bare:$bare_rss" "convoy-ingress, wrk max:$ingress:$ingress_rss" \
           "bare listener, fixed $rate/s:$bare_fixed:$bare_rss" "convoy-ingress, fixed $rate/s:$ingress_fixed:$ingress_rss"; do
  name=${row%%:*}; rest=${row#*:}; res=${rest%:*}; rss=${rest##*:}
  echo "| $name | $(field rps "$res") | $(field p50_ms "$res") | $(field p99_ms "$res") | $(field p999_ms "$res") | $(field non2xx "$res") | $rss |"
done
echo
per_post() { awk -v t="$1" -v r="$2" -v s="$seconds" 'BEGIN {if (r > 0) printf "%.0f", t * 10000 / (r * s); else print "-"}'; }
echo "CPU per POST at wrk max: bare listener $(per_post "$bare_cpu" "$(field rps "$bare")") us, ingress $(per_post "$ingress_cpu" "$(field rps "$ingress")") us + broker $(per_post "$broker_cpu" "$(field rps "$ingress")") us ($(nproc) cores shared with wrk)"
echo "ingress/bare throughput: ${ratio}%   broker ceiling (pipelined confirmed publishes/s): $broker"
echo "answered 200: $ok   messages in conversation.inbound: $queued   $([ "$ok" = "$queued" ] && echo "(equal)" || echo "(MISMATCH)")"
