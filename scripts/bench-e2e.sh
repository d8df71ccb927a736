#!/usr/bin/env bash
# End to end, the whole pipeline under a Meta-like load: N unique conversations posted at RATE/s
# by an open-loop client (convoy-loadgen --unique: each POST its own message and sender, signed
# as Meta signs, spread over --numbers business numbers), each answered once; the fake Graph API
# (convoy-fake-graph) records every reply and posts its sent, delivered and read statuses back as
# Meta does (the CPU figures are read once every reply's read status is applied). Prints the
# replies per second from the first POST to the last reply, the webhook latency, where each
# reply's time went (webhook received -> the conversation's commit -> the relay's publish ->
# outbound's claim -> the Graph call, from the database's timestamps and the fake's, joined by
# wamid), and the CPU seconds each process spent.
#   scripts/bench-e2e.sh [--pacing] [--numbers=K] [--no-typing] [--status-batch=B] [--warmup=S]
#                        [--bin=DIR] [RATE] [SECONDS]
# Defaults: 2000/s for 5 s (10,000 conversations), 4 numbers, pacing off (the fake is not Meta),
# the typing indicator on (--no-typing: conversation's --typing_indicator=false, one Graph call per
# reply instead of two, the way the peers of the issue-32 comparison answer), outbound's default
# --status_batch (--status-batch=1: one transaction per status, as before batches).
# The database is warmed first, as a running deployment's is: S seconds of the same load (default 1;
# other senders than the measured ones) are answered and read, then ANALYZE does
# what autovacuum has long done in production; only then do the clock and the CPU counters start.
# Without it every service's prepared statements keep the plans made for near-empty tables
# (sequential scans) through most of a run this short. --warmup=0: none, as before 2026-12-08.
# --bin: a build tree already built (its services/ and tests/ binaries), so two builds are compared
# in one sitting; without it the script builds this checkout. Migrations, schemas and flows still
# come from this checkout: compare builds that agree on them.
# The latency run: scripts/bench-e2e.sh --pacing 200 30 (a steady 200/s, Meta's pacing on).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
pacing=false; numbers=4; typing=true; status_batch=; warmup=; bin=; args=()
for a in "$@"; do
  case $a in
    --pacing) pacing=true ;;
    --numbers=*) numbers=${a#--numbers=} ;;
    --no-typing) typing=false ;;
    --status-batch=*) status_batch=${a#--status-batch=} ;;
    --warmup=*) warmup=${a#--warmup=} ;;
    --bin=*) bin=${a#--bin=} ;;
    -*) die "unknown option $a (usage: bench-e2e.sh [--pacing] [--numbers=K] [--no-typing] [--status-batch=B] [--warmup=S] [--bin=DIR] [RATE] [SECONDS])" ;;
    *) args+=("$a") ;;
  esac
done
rate=${args[0]:-2000}; seconds=${args[1]:-5}; n=$((rate * seconds))
warmup=${warmup:-1}
[[ $warmup =~ ^[0-9]+$ ]] || die "--warmup takes whole seconds, not '$warmup'"
warmup=$((10#$warmup))
warm=$((rate * warmup))  # conversations answered before the measured run
if [ -z "$bin" ]; then bin=$("$here/build.sh" | tail -n 1); fi
for b in services/ingress/convoy-ingress services/conversation/convoy-conversation services/media/convoy-media \
  services/outbound/convoy-outbound tests/convoy-fake-graph tests/convoy-loadgen; do
  [ -x "$bin/$b" ] || die "$bin/$b is not built"
done
started=()
start_infra rabbit started
start_infra pg started
name=bench_e2e_$$
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
export CONVOY_APP_SECRET=bench-secret CONVOY_VERIFY_TOKEN=bench CONVOY_GRAPH_TOKEN=bench-graph
log_dir=$CONVOY_RUN_DIR/bench; mkdir -p "$log_dir" "$log_dir/e2e-media"
declare -A pid_of
start() {  # start NAME PORT ARGS...
  local svc=$1 port=$2; shift 2
  "$@" --http_port="$port" >"$log_dir/e2e-$svc.log" 2>&1 &
  pids+=($!); pid_of[$svc]=$!
  wait_for "$svc on :$port" 90 curl -sf "http://127.0.0.1:$port/readyz" || {
    tail -n 20 "$log_dir/e2e-$svc.log" >&2; die "$svc did not become ready"; }
}
graph=http://127.0.0.1:24090
db_flags=(--amqp_url="$url" --pg_dsn="$dsn" --schema_dir="$CONVOY_ROOT/proto-schemas"
          --migrations_dir="$CONVOY_ROOT/deploy/postgres" --migrate --declare_topology)
# As Meta does, every reply's sent, delivered and read statuses come back as webhooks of their own
# (after the send was answered): the status path runs at its real weight.
start fake-graph 24090 "$bin/tests/convoy-fake-graph" --status_webhook_url=http://127.0.0.1:24080/webhook \
  --status_webhook_statuses=sent,delivered,read
start ingress 24080 "$bin/services/ingress/convoy-ingress" --amqp_url="$url" --declare_topology
# The load generator's business numbers (10654035224{P}, P = 0000..K-1), in the numbers registry:
# an update for a number it does not have starts nothing.
numbers_dir=$log_dir/e2e-numbers; rm -rf "$numbers_dir"; mkdir -p "$numbers_dir"
for ((p = 0; p < numbers; p++)); do
  id=$(printf '10654035224%04d' "$p")
  printf '{"phone_number_id": "%s", "tenant": "bench", "waba_id": "102290129340398", "display_phone_number": "1555078%04d", "graph_token": "env:CONVOY_GRAPH_TOKEN"}\n' \
    "$id" "$p" >"$numbers_dir/$id.json"
done
start conversation 24081 "$bin/services/conversation/convoy-conversation" "${db_flags[@]}" --flows_dir="$CONVOY_ROOT/deploy/flows" \
  --numbers_dir="$numbers_dir" --typing_indicator="$typing"
start media 24082 "$bin/services/media/convoy-media" "${db_flags[@]}" --graph_base_url="$graph/v24.0" --media_dir="$log_dir/e2e-media"
start outbound 24083 "$bin/services/outbound/convoy-outbound" "${db_flags[@]}" --graph_base_url="$graph/v24.0" --pacing="$pacing" \
  ${status_batch:+--status_batch="$status_batch"}

cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # clock ticks, user + system
broker_sid=$(cat "$CONVOY_RUN_DIR/rabbitmq/server.pid" 2>/dev/null || true)
broker_cpu() {  # every process of the broker's session (infra.sh starts it with setsid)
  local t=0
  [ -n "$broker_sid" ] || { echo 0; return; }
  for p in $(pgrep -s "$broker_sid"); do [ -r "/proc/$p/stat" ] && t=$((t + $(cpu_of "$p"))); done
  echo "$t"
}
postmaster=$(head -n 1 "$CONVOY_RUN_DIR/postgres/data/postmaster.pid" 2>/dev/null || true)
pg_cpu() {  # the postmaster and its children (the services' connections live as long as they do)
  local t=0
  [ -n "$postmaster" ] || { echo 0; return; }
  for p in "$postmaster" $(pgrep -P "$postmaster"); do [ -r "/proc/$p/stat" ] && t=$((t + $(cpu_of "$p"))); done
  echo "$t"
}
replies() { curl -sf "$graph/_fake/count" | sed -n 's/.*"sends":\([0-9]*\).*/\1/p'; }
read_count() { psql "$dsn" -Atq -c "SELECT count(*) FROM outbound_messages WHERE status = 'read'"; }
if ((warm > 0)); then
  # Senders numbered from 900,000,000 up: never one of the measured run's (0 .. N-1).
  warm_result=$("$bin/tests/convoy-loadgen" --port=24080 --rate="$rate" --seconds="$warmup" --connections=32 --unique \
    --numbers="$numbers" --first=900000000 --body_file="$CONVOY_ROOT/tests/data/bench-unique-webhook.json")
  grep -q ' non2xx=0 ' <<<"$warm_result" || die "the warm-up's POSTs were refused: $warm_result"
  warm_read() { [ "$(read_count)" -ge "$warm" ]; }
  wait_for "the warm-up's $warm replies read" 600 warm_read || die "only $(read_count) of the warm-up's $warm replies read"
  psql "$dsn" -Atq -c "ANALYZE" >/dev/null
  echo "WARMUP conversations=$warm answered_and_read=$(read_count) then ANALYZE"
fi
declare -A before
for svc in "${!pid_of[@]}"; do before[$svc]=$(cpu_of "${pid_of[$svc]}"); done
broker_before=$(broker_cpu)
pg_before=$(pg_cpu)
all_replied() { [ "$(replies)" -ge "$((warm + n))" ]; }

start_ms=$(date +%s%3N)
result=$("$bin/tests/convoy-loadgen" --port=24080 --rate="$rate" --seconds="$seconds" --connections=32 --unique --numbers="$numbers" \
  --body_file="$CONVOY_ROOT/tests/data/bench-unique-webhook.json")
wait_for "$n replies" 600 all_replied || die "only $(($(replies) - warm)) of $n replies (see $log_dir/e2e-*.log)"
all_read() { [ "$(read_count)" -ge "$((warm + n))" ]; }
# The CPU figures include every reply's three statuses: read once each reply's last one is applied.
wait_for "$n replies read" 600 all_read || die "only $(($(read_count) - warm)) of $n replies' read statuses applied"
echo "STATUSES replies_read=$(($(read_count) - warm)) seconds_after_first_post=$(( ($(date +%s%3N) - start_ms) / 1000 ))"
tick=$(getconf CLK_TCK)
# CPU seconds per process for the run, and the same per reply (ms): the budget a reply costs. Read
# here, before this script's own queries below (the stage query alone would add seconds to
# PostgreSQL's figure).
declare -A used
for svc in ingress conversation media outbound fake-graph; do
  used[$svc]=$(awk -v a="$(cpu_of "${pid_of[$svc]}")" -v b="${before[$svc]}" -v t="$tick" 'BEGIN{printf "%.2f", (a-b)/t}')
done
used[rabbitmq]=$(awk -v a="$(broker_cpu)" -v b="$broker_before" -v t="$tick" 'BEGIN{printf "%.2f", (a-b)/t}')
used[postgres]=$(awk -v a="$(pg_cpu)" -v b="$pg_before" -v t="$tick" 'BEGIN{printf "%.2f", (a-b)/t}')
curl -sf "$graph/_fake/requests" | python3 -c '
import json, sys
start, n = int(sys.argv[1]), int(sys.argv[2])
sends = [s for s in json.load(sys.stdin) if s["at_ms"] >= start]  # the warm-up sends came before
last = max(s["at_ms"] for s in sends)
per = {}
for s in sends:
    per[s["to"]] = per.get(s["to"], 0) + 1
twice = sum(1 for v in per.values() if v > 1)
secs = (last - start) / 1000
print("RESULT conversations=%d replies=%d answered_twice=%d seconds=%.1f replies_per_s=%.0f" % (n, len(sends), twice, secs, len(sends) / secs))
' "$start_ms" "$n"
echo "LOADGEN $result"
# Where each reply's time went. inbound_messages' row is written once, by the conversation's
# transaction: its commit timestamp (track_commit_timestamp) is that commit.
curl -sf "$graph/_fake/requests" >"$log_dir/e2e-sends.json"
psql "$dsn" -Atq -F ' ' -c "
  WITH c AS (SELECT correlation_id, min(extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1000) AS at
               FROM inbound_messages GROUP BY correlation_id)
  SELECT o.wamid, extract(epoch FROM o.received_at) * 1000, c.at,
         extract(epoch FROM x.published_at) * 1000, extract(epoch FROM o.attempt_started_at) * 1000
    FROM outbound_messages o JOIN outbox x ON x.dedupe_key = o.dedupe_key
    LEFT JOIN c ON c.correlation_id = o.correlation_id
   WHERE o.wamid IS NOT NULL AND o.received_at IS NOT NULL" >"$log_dir/e2e-stages.txt"
python3 - "$log_dir/e2e-sends.json" "$log_dir/e2e-stages.txt" "$start_ms" <<'PY'
import json, sys
graph_at = {s["wamid"]: s["at_ms"] for s in json.load(open(sys.argv[1])) if s["at_ms"] >= int(sys.argv[3])}
names = ["webhook->commit", "commit->relay", "relay->claim", "claim->graph", "webhook->graph"]
stages = {k: [] for k in names}
for line in open(sys.argv[2]):
    f = line.split()
    if len(f) != 5 or f[0] not in graph_at or "" in f:
        continue
    received, commit, relay, claim = (float(v) for v in f[1:])
    at = graph_at[f[0]]
    for k, v in zip(names, [commit - received, relay - commit, claim - relay, at - claim, at - received]):
        stages[k].append(v)
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] if v else float("nan")
print("STAGES_MS replies=%d " % len(stages["webhook->graph"]) +
      " ".join("%s=p50:%.1f,p99:%.1f" % (k, pct(v, 0.50), pct(v, 0.99)) for k, v in stages.items()))
PY
# The fake Graph API's own ceiling, measured in the same run once the replies are in (after the
# CPU figures above were read): sends posted to it directly by the same client, open loop, at
# more than it can take, so the rate reached is its ceiling on these cores.
fake_before=$(cpu_of "${pid_of[fake-graph]}")
ceiling=$("$bin/tests/convoy-loadgen" --port=24090 --path=/v24.0/106540352240000/messages --rate=10000 --seconds=2 \
  --connections=32 --unique --authorization="Bearer $CONVOY_GRAPH_TOKEN" \
  --body_file="$CONVOY_ROOT/tests/data/bench-graph-send.json")
fake_calls=$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$ceiling")
echo "FAKE_GRAPH_CEILING $ceiling cpu_us_per_call=$(awk -v a="$(cpu_of "${pid_of[fake-graph]}")" -v b="$fake_before" \
  -v t="$tick" -v n="$fake_calls" 'BEGIN{printf "%.0f", (a-b) / t * 1e6 / n}')"
line="CPU_SECONDS" per="CPU_MS_PER_REPLY" total=0
for k in ingress conversation media outbound fake-graph rabbitmq postgres; do
  line+=" $k=$(awk -v v="${used[$k]}" 'BEGIN{printf "%.1f", v}')"
  per+=" $k=$(awk -v v="${used[$k]}" -v n="$n" 'BEGIN{printf "%.2f", v * 1000 / n}')"
  total=$(awk -v a="$total" -v v="${used[$k]}" 'BEGIN{print a + v}')
done
echo "$line"
echo "$per total=$(awk -v v="$total" -v n="$n" 'BEGIN{printf "%.2f", v * 1000 / n}') (2 cores: at most $(awk -v v="$total" -v n="$n" 'BEGIN{printf "%.0f", 2 * n / v}') replies/s)"
