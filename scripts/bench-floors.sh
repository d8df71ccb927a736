#!/usr/bin/env bash
# The CPU floor of one reply on this machine (issue 32): each part run ALONE at its own ceiling
# (load pipelined or batched the best way the part allows), its CPU time per unit of work read
# from /proc/PID/stat (utime + stime, plus cutime + cstime of reaped children, of that part's
# processes only), times the units of that work one reply needs, summed, against the 2.5 ms target.
# The units per reply are measured too, in one short pipeline run (bench-e2e.sh --no-typing, with
# pg_stat_statements on): POSTs into ingress, Graph calls, messages the broker received, delivered
# and acked (its global counters), write transactions (xids), commits (pg_stat_database) and
# statements (pg_stat_statements) per reply. The parts, each alone:
#   load generator    convoy-loadgen --unique (signs each body) against the bare listener: per POST
#   HTTP receipt      convoy-bare-listener at wrk max: per POST (the floor of ingress)
#   ingress           convoy-ingress at wrk max: per POST, and the broker's CPU per confirmed message
#   fake Graph API    convoy-fake-graph at its ceiling: per call; then at 1000 calls/s without and
#                     with its status webhooks (to ingress, counted there): per status posted
#   RabbitMQ          convoy-amqp-bench (pipelined confirms, persistent) into a quorum queue, drained
#                     at once by a consumer (python3-pika, prefetch 2000, acks of 200 at a time):
#                     per message
#   PostgreSQL        pgbench, one small INSERT per transaction, 32 clients: per commit
#   conversation      the listing mix preloaded while it runs (convoy-conversation-bench): per
#                     message, with PostgreSQL's and the broker's CPU per message beside it
#   outbound          sends preloaded while it runs, pacing off, against the in-process fake of
#                     convoy-outbound-bench: per send; then the delivered and read statuses of
#                     those sends (its default --status_batch): per status; PostgreSQL's beside
# Needs the pipeline's bench ports (bench-e2e.sh: 24080-24090) free; its own processes listen on
# 27080-27096, its broker and database on the CONVOY_FLOORS_* ports (27672/27682/27673/27692,
# 27432) under CONVOY_FLOORS_RUN_DIR (emptied first).
#   scripts/bench-floors.sh [SECONDS] [E2E_RATE] [E2E_SECONDS]   (defaults 5 s per run, 500/s, 2 s)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
secs=${1:-5}; e2e_rate=${2:-500}; e2e_secs=${3:-2}
for v in "$secs" "$e2e_rate" "$e2e_secs"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || die "usage: $0 [SECONDS] [E2E_RATE] [E2E_SECONDS] (positive integers)"
done
"$here/setup.sh" >/dev/null
# The consumer of the broker's run is Debian's python3-pika (setup.sh), under the system python3.
py=/usr/bin/python3
bin=$("$here/build.sh" | tail -n 1)
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
# pg_stat_statements only for the pipeline run (it counts statements); restarted without it after.
export CONVOY_PG_OPTIONS="-c shared_preload_libraries=pg_stat_statements"
start_private_infra "${CONVOY_FLOORS_RUN_DIR:-$CONVOY_ROOT/.run/floors}" "${CONVOY_FLOORS_AMQP_PORT:-27672}" \
  "${CONVOY_FLOORS_AMQP_DIST_PORT:-27682}" "${CONVOY_FLOORS_AMQP_MGMT_PORT:-27673}" \
  "${CONVOY_FLOORS_AMQP_PROM_PORT:-27692}" "${CONVOY_FLOORS_PG_PORT:-27432}"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  "$here/infra.sh" stop all || true
}
trap cleanup EXIT
log_dir=$CONVOY_RUN_DIR/bench; mkdir -p "$log_dir"
export CONVOY_APP_SECRET=bench-secret CONVOY_VERIFY_TOKEN=bench CONVOY_GRAPH_TOKEN=bench-graph
tick=$(getconf CLK_TCK)
field() { sed -n "s/.*[ ^]$1=\([0-9.]*\).*/\1/p" <<<" $2" | head -n 1; }
# CPU clock ticks: a process's own (threads included); with its reaped children's (a tree).
cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }
cpu_tree() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat"; }
broker_sid=$(cat "$CONVOY_RUN_DIR/rabbitmq/server.pid")
broker_cpu() {  # every process of the broker's session (beam.smp, erl_child_setup, ...)
  local t=0 p
  for p in $(pgrep -s "$broker_sid"); do [ -r "/proc/$p/stat" ] && t=$((t + $(cpu_tree "$p"))); done
  echo "$t"
}
pg_cpu() {  # the postmaster (with the backends it reaped) and its live children
  local t=0 p pm
  pm=$(head -n 1 "$CONVOY_RUN_DIR/postgres/data/postmaster.pid")
  t=$(cpu_tree "$pm")
  for p in $(pgrep -P "$pm"); do [ -r "/proc/$p/stat" ] && t=$((t + $(cpu_of "$p"))); done
  echo "$t"
}
us_per() { awk -v d="$1" -v n="$2" -v t="$tick" 'BEGIN {if (n > 0) printf "%.1f", d * 1e6 / t / n; else print "nan"}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.3f", a / b; else print "nan"}'; }
# run_counted OUT CMD...: runs CMD (stdout to OUT) and prints the CPU ticks it and its children used.
run_counted() {
  local out=$1; shift
  bash -c '"$@" >"$0" || exit; awk "{print \$16 + \$17}" /proc/$$/stat' "$out" "$@"
}
started_at=$SECONDS
load_avg() { cut -d' ' -f1-3 /proc/loadavg; }
declare -A R  # every measured figure, printed at the end
R[load_before]=$(load_avg)

# 1. Units per reply, from one short pipeline run: counters read after the services are ready
# (before the first POST) and once every reply's read status is applied (before bench-e2e.sh's
# fake ceiling run, which would add its own).
psql_admin "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
prom_sum() {  # prom_sum METRIC: the broker's global counter, summed over its labels
  curl -sf "http://127.0.0.1:$CONVOY_AMQP_PROM_PORT/metrics" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 {s += $2} END {printf "%d", s}'
}
broker_counters() {  # "received routed delivered acked": the broker's global counters
  echo "$(prom_sum rabbitmq_global_messages_received_total) $(prom_sum rabbitmq_global_messages_routed_total)" \
    "$(prom_sum rabbitmq_global_messages_delivered_total) $(prom_sum rabbitmq_global_messages_acknowledged_total)"
}
pg_counters() {  # "next-xid xact_commit statements commit-statements" of the pipeline run's database, one query
  psql_admin "WITH db AS (SELECT oid, datname FROM pg_database WHERE datname LIKE 'bench_e2e_%'),
    s AS (SELECT s.query, s.calls FROM pg_stat_statements s JOIN db ON db.oid = s.dbid)
    SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint || ' ' ||
      (SELECT xact_commit FROM pg_stat_database p JOIN db USING (datname)) || ' ' ||
      (SELECT coalesce(sum(calls), 0) FROM s WHERE query !~* '^\s*(begin|commit)') || ' ' ||
      (SELECT coalesce(sum(calls), 0) FROM s WHERE query ~* '^\s*commit')"
}
ingress_posts() {  # every POST convoy-ingress of the pipeline run answered, whatever the outcome
  curl -sf http://127.0.0.1:24080/metrics | awk '/^convoy_ingress_requests_total\{/ {s += $2} END {printf "%d", s}'
}
log "units: scripts/bench-e2e.sh --no-typing --warmup=0 $e2e_rate $e2e_secs"
# The broker publishes nothing while the services start: its baseline is taken before. The
# database's is taken once outbound is ready (after every migration), in one query.
read -r c0_recv c0_routed c0_deliv c0_ack <<<"$(broker_counters)"
"$here/bench-e2e.sh" --no-typing --warmup=0 "$e2e_rate" "$e2e_secs" >"$log_dir/floors-e2e.out" 2>"$log_dir/floors-e2e.err" &
e2e=$!; pids+=("$e2e")
outbound_up() { curl -sf http://127.0.0.1:24083/readyz; }
until outbound_up >/dev/null 2>&1; do
  kill -0 "$e2e" 2>/dev/null || { tail -n 20 "$log_dir/floors-e2e.err" >&2; die "bench-e2e.sh ended before its services were ready"; }
  sleep 0.05
done
read -r c0_xid c0_commit c0_stmt c0_cstmt <<<"$(pg_counters)"
posts_at_baseline=$(ingress_posts)
statuses_line() { grep -q '^STATUSES' "$log_dir/floors-e2e.out"; }
wait_for "the pipeline run's read statuses" 600 statuses_line || die "bench-e2e.sh did not finish; see $log_dir/floors-e2e.err"
read -r c1_xid c1_commit c1_stmt c1_cstmt <<<"$(pg_counters)"
read -r c1_recv c1_routed c1_deliv c1_ack <<<"$(broker_counters)"
posts=$(ingress_posts)
fake_count=$(curl -sf http://127.0.0.1:24090/_fake/count)
wait "$e2e" || die "bench-e2e.sh failed; see $log_dir/floors-e2e.err"
e2e_out=$(cat "$log_dir/floors-e2e.out")
replies=$(field replies "$(grep '^RESULT' <<<"$e2e_out")")
loadgen_posts=$(field requests "$(grep '^LOADGEN' <<<"$e2e_out")")
graph_sends=$(sed -n 's/.*"sends":\([0-9]*\).*/\1/p' <<<"$fake_count")
graph_other=$(sed -n 's/.*"read_receipts":\([0-9]*\).*/\1/p' <<<"$fake_count")
[ "$graph_sends" -eq "$replies" ] || die "the fake had $graph_sends sends when read ($replies replies): counters not clean"
R[u_posts]=$(ratio "$posts" "$replies")
R[u_loadgen_posts]=$(ratio "$loadgen_posts" "$replies")
R[u_status_posts]=$(ratio "$((posts - loadgen_posts))" "$replies")
R[u_graph_calls]=$(ratio "$((graph_sends + graph_other))" "$replies")
R[u_received]=$(ratio "$((c1_recv - c0_recv))" "$replies")
R[u_routed]=$(ratio "$((c1_routed - c0_routed))" "$replies")
R[u_delivered]=$(ratio "$((c1_deliv - c0_deliv))" "$replies")
R[u_acked]=$(ratio "$((c1_ack - c0_ack))" "$replies")
R[u_xids]=$(ratio "$((c1_xid - c0_xid))" "$replies")
R[u_xact_commit]=$(ratio "$((c1_commit - c0_commit))" "$replies")
R[u_statements]=$(ratio "$((c1_stmt - c0_stmt))" "$replies")
R[u_commit_statements]=$(ratio "$((c1_cstmt - c0_cstmt))" "$replies")
R[e2e_cpu]=$(grep '^CPU_MS_PER_REPLY' <<<"$e2e_out")
log "units: replies=$replies posts=$posts (at baseline $posts_at_baseline) loadgen=$loadgen_posts graph=$fake_count"
R[posts_at_baseline]=$posts_at_baseline
[ "$posts_at_baseline" -eq 0 ] || log "note: $posts_at_baseline of $posts POSTs were in before the database's baseline"

"$here/infra.sh" stop pg >/dev/null
unset CONVOY_PG_OPTIONS
"$here/infra.sh" start pg >/dev/null 2>&1

vhost=floors_$$ db=floors_$$
url=$(scratch_vhost "$vhost")
dsn=$(scratch_db "$db")

# 2. HTTP receipt and the load generator: the bare listener at wrk max, then loadgen (--unique,
# one signed body each, as in bench-e2e.sh) at more than the listener takes.
BODY_FILE=$CONVOY_ROOT/tests/data/bench-webhook.json
SIGNATURE=$("$bin/tests/convoy-webhook" --file="$BODY_FILE" --print_only | head -n 1 | cut -d' ' -f2)
export BODY_FILE SIGNATURE
run_wrk() {
  wrk -t2 -c32 -d"${secs}s" --timeout 5s -s "$CONVOY_ROOT/tests/bench/post.lua" "http://127.0.0.1:$1/webhook" | grep '^RESULT'
}
"$bin/tests/convoy-bare-listener" --http_port=27091 >"$log_dir/floors-bare.log" 2>&1 & pids+=($!); bare=$!
wait_for "bare listener" 20 curl -sf http://127.0.0.1:27091/healthz || die "bare listener did not start"
t0=$(cpu_of "$bare"); res=$(run_wrk 27091); t1=$(cpu_of "$bare")
R[bare_rps]=$(field rps "$res"); R[bare_us]=$(us_per "$((t1 - t0))" "$(field requests "$res")")
log "bare listener, wrk max: $res"
t0=$(cpu_of "$bare")
lg_ticks=$(run_counted "$log_dir/floors-loadgen.out" "$bin/tests/convoy-loadgen" --port=27091 --rate=20000 \
  --seconds="$secs" --connections=32 --unique --numbers=4 --body_file="$CONVOY_ROOT/tests/data/bench-unique-webhook.json")
t1=$(cpu_of "$bare"); res=$(grep '^RESULT' "$log_dir/floors-loadgen.out")
R[loadgen_rps]=$(field rps "$res"); R[loadgen_us]=$(us_per "$lg_ticks" "$(field requests "$res")")
R[bare_us_loadgen]=$(us_per "$((t1 - t0))" "$(field requests "$res")")
log "loadgen --unique into the bare listener: $res"

# 3. ingress at wrk max (the broker's CPU beside it), in the throw-away vhost it declares.
"$bin/services/ingress/convoy-ingress" --amqp_url="$url" --declare_topology --http_port=27090 >"$log_dir/floors-ingress.log" 2>&1 &
pids+=($!); ing=$!
wait_for "ingress ready" 30 curl -sf http://127.0.0.1:27090/readyz || die "ingress did not get ready"
t0=$(cpu_of "$ing"); b0=$(broker_cpu); m0=$(prom_sum rabbitmq_global_messages_confirmed_total)
res=$(run_wrk 27090)
t1=$(cpu_of "$ing"); b1=$(broker_cpu); m1=$(prom_sum rabbitmq_global_messages_confirmed_total)
R[ingress_rps]=$(field rps "$res"); R[ingress_us]=$(us_per "$((t1 - t0))" "$(field requests "$res")")
R[ingress_broker_us]=$(us_per "$((b1 - b0))" "$((m1 - m0))"); R[ingress_confirmed]=$((m1 - m0))
log "ingress, wrk max: $res (broker confirmed $((m1 - m0)))"

# 4. The fake Graph API at its ceiling; then at 1000 calls/s without and with its status webhooks
# (three per call, to ingress, counted there: the run ends when ingress has answered every one),
# the difference being the status posts' CPU.
graph_send=(--path=/v24.0/106540352240000/messages --seconds=2 --connections=32 --unique
            --authorization="Bearer $CONVOY_GRAPH_TOKEN" --body_file="$CONVOY_ROOT/tests/data/bench-graph-send.json")
fake_run() {  # fake_run RATE [FAKE FLAGS...]: sets $res (loadgen's RESULT) and $fake_ticks
  local rate=$1 f t0 i0 calls; shift
  "$bin/tests/convoy-fake-graph" --http_port=27096 "$@" >>"$log_dir/floors-fake.log" 2>&1 & pids+=($!); f=$!
  wait_for "fake Graph API" 20 curl -sf http://127.0.0.1:27096/_fake/count || die "fake Graph API did not start"
  i0=$(ingress_total); t0=$(cpu_of "$f")
  res=$("$bin/tests/convoy-loadgen" --port=27096 --rate="$rate" "${graph_send[@]}")
  calls=$(field requests "$res")
  if [ $# -gt 0 ]; then
    all_statuses_in() { [ "$(ingress_total)" -ge "$((i0 + 3 * calls))" ]; }
    wait_for "$((3 * calls)) status webhooks" 300 all_statuses_in ||
      die "the fake posted $(( $(ingress_total) - i0 )) of $((3 * calls)) statuses"
  fi
  fake_ticks=$(( $(cpu_of "$f") - t0 ))
  kill "$f"; wait "$f" 2>/dev/null || true
}
ingress_total() { curl -sf http://127.0.0.1:27090/metrics | awk '/^convoy_ingress_requests_total\{/ {s += $2} END {printf "%d", s}'; }
fake_run 10000
R[fake_rps]=$(field rps "$res"); R[fake_us]=$(us_per "$fake_ticks" "$(field requests "$res")")
log "fake Graph API ceiling: $res"
fake_run 1000
ref_ticks=$fake_ticks ref_calls=$(field requests "$res")
R[fake_us_1000]=$(us_per "$ref_ticks" "$ref_calls")
fake_run 1000 --status_webhook_url=http://127.0.0.1:27090/webhook --status_webhook_statuses=sent,delivered,read
calls=$(field requests "$res")
R[fake_us_with_statuses]=$(us_per "$fake_ticks" "$calls")
R[fake_status_us]=$(awk -v w="${R[fake_us_with_statuses]}" -v c="${R[fake_us_1000]}" 'BEGIN {printf "%.1f", (w - c) / 3}')
log "fake Graph API at 1000/s with 3 status webhooks per call: $res (${R[fake_us_with_statuses]} us per call, without ${R[fake_us_1000]})"
kill "$ing"; wait "$ing" 2>/dev/null || true

# 5. RabbitMQ: persistent messages (1100 bytes) published with pipelined confirms into a quorum
# queue nobody else uses (media.upload) while one consumer drains it, acking 200 at a time.
rmq_n=$((secs * 5000))
cat >"$log_dir/floors-consume.py" <<'PY'
import sys, pika
url, queue, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
conn = pika.BlockingConnection(pika.URLParameters(url))
ch = conn.channel()
ch.basic_qos(prefetch_count=2000)
got = 0
def on_message(channel, method, _props, _body):
    global got
    got += 1
    if got % 200 == 0 or got == n:
        channel.basic_ack(method.delivery_tag, multiple=True)
    if got == n:
        channel.stop_consuming()
ch.basic_consume(queue, on_message)
ch.start_consuming()
conn.close()
print("RESULT consumed=%d" % got)
PY
b0=$(broker_cpu); r0=$(prom_sum rabbitmq_global_messages_received_total); s0=$SECONDS
"$py" "$log_dir/floors-consume.py" "$url" media.upload "$((rmq_n + 1))" >"$log_dir/floors-consume.out" &
cons=$!; pids+=("$cons")
amqp=$("$bin/tests/convoy-amqp-bench" --amqp_url="$url" --messages="$rmq_n" --serial_messages=1 --body_bytes=1100)
wait "$cons" || die "the consumer did not get every message"
b1=$(broker_cpu); r1=$(prom_sum rabbitmq_global_messages_received_total)
R[rmq_msgs]=$((r1 - r0)); R[rmq_us]=$(us_per "$((b1 - b0))" "$((r1 - r0))")
R[rmq_rate]=$(awk -v n="$((r1 - r0))" -v s="$((SECONDS - s0))" 'BEGIN {printf "%.0f", n / (s > 0 ? s : 1)}')
R[rmq_publish_rate]=$(sed -n 's/^| pipelined confirms (convoy Publisher) | [0-9]* | \([0-9]*\) .*/\1/p' <<<"$amqp")
log "broker: $((r1 - r0)) messages published, delivered and acked; $(cat "$log_dir/floors-consume.out")"

# 6. PostgreSQL: one small INSERT per transaction, 32 clients (pgbench), fsync on.
psql "$dsn" -qAt -c "CREATE TABLE floor_commit (id bigserial PRIMARY KEY, v text NOT NULL)"
echo "INSERT INTO floor_commit (v) VALUES ('x');" >"$log_dir/floors-insert.sql"
p0=$(pg_cpu)
pgb=$("$PG_BIN/pgbench" -n -c 32 -j 2 -T "$secs" -f "$log_dir/floors-insert.sql" "$dsn" 2>&1)
p1=$(pg_cpu)
pg_tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$pgb")
R[pg_tps]=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$pgb" | head -n 1); R[pg_us]=$(us_per "$((p1 - p0))" "$pg_tx")
R[pg_rows]=$(psql "$dsn" -qAt -c "SELECT count(*) FROM floor_commit")
log "pgbench: $pg_tx transactions, ${R[pg_tps]} tps, ${R[pg_rows]} rows"

# 7. conversation: started on an empty queue, then 10-message listing conversations published
# (pipelined) while it runs; the tool waits until the database has every one applied.
conv_n=$((secs * 100))
conv_vhost=floors_conv_$$ conv_db=floors_conv_$$
conv_url=$(scratch_vhost "$conv_vhost"); conv_dsn=$(scratch_db "$conv_db")
"$bin/services/conversation/convoy-conversation" --amqp_url="$conv_url" --pg_dsn="$conv_dsn" --http_port=27081 \
  --schema_dir="$CONVOY_ROOT/proto-schemas" --migrations_dir="$CONVOY_ROOT/deploy/postgres" --migrate --declare_topology \
  --flows_dir="$CONVOY_ROOT/deploy/flows" --numbers_dir="$CONVOY_ROOT/deploy/numbers" --consumer_threads=4 \
  >"$log_dir/floors-conversation.log" 2>&1 & pids+=($!); conv=$!
wait_for "conversation ready" 60 curl -sf http://127.0.0.1:27081/readyz || die "conversation did not get ready"
t0=$(cpu_of "$conv"); p0=$(pg_cpu); b0=$(broker_cpu)
res=$("$bin/tests/convoy-conversation-bench" --amqp_url="$conv_url" --pg_dsn="$conv_dsn" --mode=preload --tag=floor \
  --conversations="$conv_n" 2>>"$log_dir/floors-conversation-bench.log" | grep '^RESULT')
t1=$(cpu_of "$conv"); p1=$(pg_cpu); b1=$(broker_cpu)
msgs=$(field messages "$res")
R[conv_msgs]=$msgs R[conv_rate]=$(field applied_per_s "$res")
R[conv_us]=$(us_per "$((t1 - t0))" "$msgs"); R[conv_pg_us]=$(us_per "$((p1 - p0))" "$msgs")
R[conv_broker_us]=$(us_per "$((b1 - b0))" "$msgs")
log "conversation: $res"
kill "$conv"; wait "$conv" 2>/dev/null || true

# 8. outbound: the in-process fake of convoy-outbound-bench up first, outbound started on an
# empty queue, then the sends published while it runs (pacing off); then those sends' delivered
# and read statuses published while it runs (its default --status_batch).
out_n=$((secs * 500))
out_vhost=floors_out_$$ out_db=floors_out_$$
out_url=$(scratch_vhost "$out_vhost"); out_dsn=$(scratch_db "$out_db")
otool() { "$bin/tests/convoy-outbound-bench" --amqp_url="$out_url" --graph_port=27095 "$@" 2>>"$log_dir/floors-outbound-bench.log"; }
otool --mode=measure --sends="$out_n" --window_seconds=1 --skip_seconds=0 >"$log_dir/floors-outbound-measure.out" &
m=$!; pids+=("$m")
wait_for "the outbound bench's fake Graph API" 30 curl -sf http://127.0.0.1:27095/_fake/requests || die "no fake Graph API"
"$bin/services/outbound/convoy-outbound" --amqp_url="$out_url" --pg_dsn="$out_dsn" --http_port=27083 \
  --schema_dir="$CONVOY_ROOT/proto-schemas" --migrations_dir="$CONVOY_ROOT/deploy/postgres" --migrate --declare_topology \
  --graph_base_url="http://127.0.0.1:27095/v24.0" --consumer_threads=4 --pacing=false \
  >"$log_dir/floors-outbound.log" 2>&1 & pids+=($!); out=$!
wait_for "outbound ready" 60 curl -sf http://127.0.0.1:27083/readyz || die "outbound did not get ready"
t0=$(cpu_of "$out"); p0=$(pg_cpu)
otool --mode=preload --tag=floor --sends="$out_n" >/dev/null
wait "$m" || die "outbound did not send $out_n messages; see $log_dir/floors-outbound*.log"
t1=$(cpu_of "$out"); p1=$(pg_cpu)
res=$(grep '^RESULT' "$log_dir/floors-outbound-measure.out")
R[out_sends]=$(field sends "$res") R[out_rate]=$(field sends_per_s "$res")
R[out_us]=$(us_per "$((t1 - t0))" "${R[out_sends]}"); R[out_pg_us]=$(us_per "$((p1 - p0))" "${R[out_sends]}")
log "outbound sends: $res"
psql "$out_dsn" -Atq -F $'\t' -c "SELECT wamid, dedupe_key FROM outbound_messages WHERE wamid IS NOT NULL" >"$log_dir/floors-wamids.tsv"
statuses=$(( 2 * $(wc -l <"$log_dir/floors-wamids.tsv") ))
all_read() { [ "$(psql "$out_dsn" -Atq -c "SELECT count(*) FROM outbound_messages WHERE status = 'read'")" -ge "$((statuses / 2))" ]; }
t0=$(cpu_of "$out"); p0=$(pg_cpu); s0=$(date +%s%3N)
otool --mode=statuses --wamids_file="$log_dir/floors-wamids.tsv" >/dev/null
wait_for "$statuses statuses applied" 300 all_read || die "statuses not applied; see $log_dir/floors-outbound.log"
t1=$(cpu_of "$out"); p1=$(pg_cpu)
R[out_statuses]=$statuses
R[out_status_rate]=$(awk -v n="$statuses" -v ms="$(( $(date +%s%3N) - s0 ))" 'BEGIN {printf "%.0f", n * 1000 / ms}')
R[out_status_us]=$(us_per "$((t1 - t0))" "$statuses"); R[out_status_pg_us]=$(us_per "$((p1 - p0))" "$statuses")
log "outbound statuses: $statuses applied"
kill "$out"; wait "$out" 2>/dev/null || true

# The table: each part's CPU per unit alone x its units per reply.
R[seconds]=$((SECONDS - started_at)) R[load_after]=$(load_avg)
for k in "${!R[@]}"; do printf '%s\t%s\n' "$k" "${R[$k]}"; done >"$log_dir/floors.tsv"
python3 - "$log_dir/floors.tsv" "$(nproc)" <<'PY'
import sys
R = dict(line.rstrip("\n").split("\t", 1) for line in open(sys.argv[1]))
f = lambda k: float(R[k])
rows = [  # part, unit, us per unit alone, how measured alone, units per reply, what the units are
    ("load generator", "POST", f("loadgen_us"), "convoy-loadgen --unique at %s POST/s" % R["loadgen_rps"],
     f("u_loadgen_posts"), "its POSTs"),
    ("ingress (floor: bare HTTP listener)", "POST", f("bare_us"), "wrk max, %s POST/s" % R["bare_rps"],
     f("u_posts"), "POSTs into ingress"),
    ("RabbitMQ", "message", f("rmq_us"), "publish+deliver+ack, %s msg/s" % R["rmq_rate"],
     f("u_received"), "messages published"),
    ("PostgreSQL", "commit", f("pg_us"), "pgbench INSERT, 32 clients, %s tps" % R["pg_tps"],
     f("u_xids"), "write transactions"),
    ("conversation", "message", f("conv_us"), "listing mix, %s msg/s" % R["conv_rate"],
     f("u_loadgen_posts"), "inbound messages"),
    ("outbound", "send", f("out_us"), "pacing off, %s sends/s" % R["out_rate"],
     f("u_graph_calls"), "Graph calls"),
    ("outbound", "status", f("out_status_us"), "batched, %s statuses/s" % R["out_status_rate"],
     f("u_status_posts"), "status webhooks"),
    ("fake Graph API", "call", f("fake_us"), "ceiling, %s calls/s" % R["fake_rps"],
     f("u_graph_calls"), "Graph calls"),
    ("fake Graph API", "status post", f("fake_status_us"), "1000 calls/s, with - without (%s us/call)" % R["fake_us_1000"],
     f("u_status_posts"), "status webhooks"),
]
print()
print("CPU floor of one reply (issue 32): each part alone at its ceiling, x its units per reply (%s cores)" % sys.argv[2])
print()
print("| part | unit | CPU us/unit alone | measured alone | units/reply | counted as | CPU ms/reply |")
print("|---|---|---:|---|---:|---|---:|")
total = 0.0
for part, unit, us, how, n, what in rows:
    ms = us * n / 1000
    total += ms
    print("| %s | %s | %.1f | %s | %.3f | %s | %.3f |" % (part, unit, us, how, n, what, ms))
print("| **sum** | | | | | | **%.3f** |" % total)
print()
print("units per reply, from scripts/bench-e2e.sh --no-typing (pg_stat_statements on): "
      "POSTs into ingress %s (load generator %s, status webhooks %s), Graph calls %s, "
      "broker: received %s routed %s delivered %s acked %s, PostgreSQL: write transactions %s, "
      "xact_commit %s (pg_stat_database, flushed up to 1 s late), statements %s "
      "(pg_stat_statements, BEGIN/COMMIT apart), COMMIT statements %s" % tuple(R[k] for k in (
          "u_posts", "u_loadgen_posts", "u_status_posts", "u_graph_calls", "u_received", "u_routed",
          "u_delivered", "u_acked", "u_xids", "u_xact_commit", "u_statements", "u_commit_statements")))
print("that pipeline run's own figures: %s" % R["e2e_cpu"])
own = (f("ingress_us") * f("u_posts") + f("conv_pg_us") * f("u_loadgen_posts") + f("out_pg_us") * f("u_graph_calls")
       + f("out_status_pg_us") * f("u_status_posts")) / 1000
others = total - (f("bare_us") * f("u_posts") + f("pg_us") * f("u_xids")) / 1000
print("beside the floors: ingress %.1f us/POST at wrk max (%s POST/s; the broker %.1f us per confirmed message); "
      "PostgreSQL %.1f us per conversation message, %.1f per send, %.1f per status (the services' own runs); "
      "the broker %.1f us per message in conversation's run; fake Graph API %.1f us per call with its 3 status posts (1000/s)"
      % (f("ingress_us"), R["ingress_rps"], f("ingress_broker_us"), f("conv_pg_us"), f("out_pg_us"),
         f("out_status_pg_us"), f("conv_broker_us"), f("fake_us_with_statuses")))
print("OWN_CEILING_CPU_MS_PER_REPLY=%.3f (the sum with ingress as it is and PostgreSQL as the services use it)" % (others + own))
print("run: %s s; load average before: %s; after: %s" % (R["seconds"], R["load_before"], R["load_after"]))
print("FLOOR_CPU_MS_PER_REPLY=%.3f target=2.5 %s" % (total, "met" if total <= 2.5 else "over by %.3f" % (total - 2.5)))
PY
