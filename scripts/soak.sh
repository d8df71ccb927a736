#!/usr/bin/env bash
# Memory under a long run: N unique conversations posted at RATE/s in one open-loop run by the same
# Meta-like client as bench-e2e.sh (convoy-loadgen --unique: each POST its own sender and message,
# signed, spread over 4 business numbers), each answered once into the fake Graph API, which posts a
# signed "sent" status webhook back for every reply, as Meta does. It prints the resident memory
# (VmRSS of /proc/<pid>/status) of each service at start, then each time another tenth of the
# replies is in, while the load goes on (the first tenth is the warm-up), and at the end; then each
# service's growth after warm-up in %, and exits 1 if any grew more than 10 % (or a reply is missing).
#   scripts/soak.sh [--bin=DIR] [--idle=SECONDS] [N] [RATE]
# Defaults: 100,000 conversations at 150/s (about 11 minutes; what this 2-core machine sustains
# with the broker and the database beside it), no idle wait. --bin: a build tree already built
# (its services/ and tests/ binaries), so two builds can be compared in one sitting; without it the
# script builds (scripts/build.sh). --idle: after the last reply, wait SECONDS with no load and
# print the RSS again (what a service gives back when idle). Services listen on free ports in
# CONVOY_SOAK_PORTS (LOW-HIGH, default 24000-29999); the broker and database are scripts/lib.sh's
# (started, and stopped afterwards, if not running), each run in a scratch vhost and database.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
bin=""; idle=0; args=()
for a in "$@"; do
  case $a in
    --bin=*) bin=${a#--bin=} ;;
    --idle=*) idle=${a#--idle=} ;;
    -*) die "unknown option $a (usage: soak.sh [--bin=DIR] [--idle=SECONDS] [N] [RATE])" ;;
    *) args+=("$a") ;;
  esac
done
total=${args[0]:-100000}; rate=${args[1]:-150}; slices=10; numbers=4; max_growth=10
[[ $total =~ ^[0-9]+$ && $rate =~ ^[0-9]+$ && $idle =~ ^[0-9]+$ ]] || die "N, RATE and --idle are whole numbers"
[ "$total" -ge $((slices * rate)) ] || die "N ($total) must be at least $slices x RATE ($((slices * rate)))"
# The load lasts a whole number of seconds at RATE (loadgen's unit): N is rounded to a multiple of
# 10 x RATE, so that each tenth is a whole number of replies.
seconds=$(( (total / slices + rate / 2) / rate * slices )); total=$((rate * seconds)); per_slice=$((total / slices))
if [ -z "$bin" ]; then bin=$("$here/build.sh" | tail -n 1); fi
for b in services/ingress/convoy-ingress services/conversation/convoy-conversation services/media/convoy-media \
         services/outbound/convoy-outbound tests/convoy-fake-graph tests/convoy-loadgen; do
  [ -x "$bin/$b" ] || die "$bin/$b is not built"
done
started=()
start_infra rabbit started
start_infra pg started
name=soak_$$
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  drop_vhost "$name"
  drop_db "$name"
  for s in "${started[@]}"; do "$here/infra.sh" stop "$s" || true; done
}
trap cleanup EXIT
url=$(scratch_vhost "$name")
dsn=$(scratch_db "$name")
read -r p_graph p_ingress p_conversation p_media p_outbound <<<"$("$here/free_ports.py" 5 "${CONVOY_SOAK_PORTS:-24000-29999}" | tr '\n' ' ')"
export CONVOY_APP_SECRET=soak-secret CONVOY_VERIFY_TOKEN=soak CONVOY_GRAPH_TOKEN=soak-graph
log_dir=$CONVOY_RUN_DIR/soak; mkdir -p "$log_dir" "$log_dir/media"
declare -A pid_of
start() {  # start NAME PORT ARGS...
  local svc=$1 port=$2; shift 2
  "$@" --http_port="$port" >"$log_dir/$svc.log" 2>&1 &
  pids+=($!); pid_of[$svc]=$!
  wait_for "$svc on :$port" 90 curl -sf "http://127.0.0.1:$port/readyz" || {
    tail -n 20 "$log_dir/$svc.log" >&2; die "$svc did not become ready"; }
}
graph=http://127.0.0.1:$p_graph
db_flags=(--amqp_url="$url" --pg_dsn="$dsn" --schema_dir="$CONVOY_ROOT/proto-schemas"
          --migrations_dir="$CONVOY_ROOT/deploy/postgres" --migrate --declare_topology)
# The fake posts a signed "sent" status webhook for every reply, as Meta does: the status path runs too.
start fake-graph "$p_graph" "$bin/tests/convoy-fake-graph" --status_webhook_url="http://127.0.0.1:$p_ingress/webhook"
start ingress "$p_ingress" "$bin/services/ingress/convoy-ingress" --amqp_url="$url" --declare_topology
numbers_dir=$log_dir/numbers; rm -rf "$numbers_dir"; mkdir -p "$numbers_dir"
for ((p = 0; p < numbers; p++)); do
  id=$(printf '10654035224%04d' "$p")
  printf '{"phone_number_id": "%s", "tenant": "soak", "waba_id": "102290129340398", "display_phone_number": "1555078%04d", "graph_token": "env:CONVOY_GRAPH_TOKEN"}\n' \
    "$id" "$p" >"$numbers_dir/$id.json"
done
start conversation "$p_conversation" "$bin/services/conversation/convoy-conversation" "${db_flags[@]}" \
  --flows_dir="$CONVOY_ROOT/deploy/flows" --numbers_dir="$numbers_dir"
start media "$p_media" "$bin/services/media/convoy-media" "${db_flags[@]}" --graph_base_url="$graph/v24.0" \
  --media_dir="$log_dir/media"
start outbound "$p_outbound" "$bin/services/outbound/convoy-outbound" "${db_flags[@]}" --graph_base_url="$graph/v24.0" \
  --pacing=false

services=(ingress conversation media outbound)
rss_of() { awk '/^VmRSS:/ {print $2}' "/proc/${pid_of[$1]}/status"; }  # KiB
mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k / 1024}'; }
declare -A at_start at_warm at_end
rss_line() {  # rss_line LABEL ARRAY: prints every service's RSS now, and keeps it in ARRAY
  local line="RSS_MIB $1" svc kib
  for svc in "${services[@]}"; do
    kib=$(rss_of "$svc"); line+=" $svc=$(mib "$kib")"
    [ -z "${2:-}" ] || eval "$2[\$svc]=\$kib"
  done
  echo "$line"
}
replies() { curl -sf "$graph/_fake/count" | sed -n 's/.*"sends":\([0-9]*\).*/\1/p'; }
replied() { [ "$(replies)" -ge "$1" ]; }
rss_line start at_start
# One open-loop run for the whole soak, as Meta's traffic comes: no pause in which a service could
# catch its breath (a pause is where memory kept for "later" is released, and hides what grows).
# The RSS is read while the load goes on, each time another tenth of the replies is in.
"$bin/tests/convoy-loadgen" --port="$p_ingress" --rate="$rate" --seconds="$seconds" --connections=16 --unique \
  --numbers="$numbers" --body_file="$CONVOY_ROOT/tests/data/bench-unique-webhook.json" >"$log_dir/loadgen.out" 2>&1 &
loadgen=$!; pids+=($loadgen)
began=$SECONDS
for ((s = 1; s <= slices; s++)); do
  wait_for "$((s * per_slice)) replies" $((seconds + 600)) replied $((s * per_slice)) ||
    die "only $(replies) of $((s * per_slice)) replies (see $log_dir/*.log)"
  if [ "$s" -eq 1 ]; then rss_line "warm-up(replies=$per_slice,s=$((SECONDS - began)))" at_warm
  else rss_line "replies=$((s * per_slice)),s=$((SECONDS - began))"; fi
done
wait "$loadgen" || die "the client failed: $(cat "$log_dir/loadgen.out")"
echo "LOADGEN $(cat "$log_dir/loadgen.out")"
rss_line end at_end
elapsed=$((SECONDS - began))
echo "RESULT conversations=$total rate=$rate replies=$(replies) seconds=$elapsed"
if [ "$idle" -gt 0 ]; then
  sleep "$idle"  # the measurement itself: what an idle minute gives back
  rss_line "idle(${idle}s)"
fi
fail=0 line="GROWTH_AFTER_WARMUP_PCT"
for svc in "${services[@]}"; do
  g=$(awk -v a="${at_end[$svc]}" -v b="${at_warm[$svc]}" 'BEGIN{printf "%.1f", (a - b) * 100 / b}')
  line+=" $svc=$g"
  awk -v g="$g" -v m="$max_growth" 'BEGIN{exit !(g > m)}' && fail=1
done
echo "$line (limit $max_growth %)"
for svc in "${services[@]}"; do
  echo "SUMMARY $svc start=$(mib "${at_start[$svc]}") warm=$(mib "${at_warm[$svc]}") end=$(mib "${at_end[$svc]}") MiB"
done
[ $fail -eq 0 ] || { log "a service grew more than $max_growth % after warm-up"; exit 1; }
