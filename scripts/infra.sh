#!/usr/bin/env bash
# Starts and stops convoy's private RabbitMQ node and PostgreSQL cluster on loopback, under
# $CONVOY_RUN_DIR (git-ignored). Ports come from scripts/lib.sh and can be overridden.
#   scripts/infra.sh start|stop|status [rabbit|pg]    (default: both)
#   scripts/infra.sh kill rabbit|pg     (fault tests: kill -9 the broker; crash PostgreSQL with an
#                                        immediate shutdown, which recovers from its WAL on start)
#   scripts/infra.sh start|stop|status cluster   three RabbitMQ nodes in one cluster: node 1 is the
#                                        usual one, nodes 2 and 3 listen 100 and 200 ports above
#                                        each of its ports (amqp, dist, management, prometheus)
#   scripts/infra.sh kill|pause|resume rabbit N    kill -9 node N; SIGSTOP it (a hung node: its
#                                        sockets stay open, nothing answers); SIGCONT it
#   scripts/infra.sh urls cluster        the nodes' amqp:// URLs, comma-separated (--amqp_url)
#   The cluster also has a PostgreSQL pair: node 1 (the usual port) the primary, node 2 (100 above)
#   a streaming standby it commits synchronously to (synchronous_standby_names), so a promoted
#   standby has every row a client was told is committed.
#   scripts/infra.sh dsn cluster         the pair's libpq DSN (both hosts, target_session_attrs=read-write)
#   scripts/infra.sh failover pg         fence the primary (immediate stop; it will not start again as
#                                        a primary) and promote the standby
#   scripts/infra.sh status pg-pair      each node's port and role
#   scripts/infra.sh reset cluster       stop it all and delete its folders (a fresh start)
# CONVOY_PG_OPTIONS adds server settings at start, e.g. to see where statement time goes:
#   CONVOY_PG_OPTIONS="-c shared_preload_libraries=pg_stat_statements" scripts/infra.sh start pg
# CONVOY_AMQP_TLS_PORT (opt-in; local runs stay plain) adds an amqps:// listener on that port, with
# a throw-away CA and a server certificate for localhost/127.0.0.1 made at first start in
# $CONVOY_RUN_DIR/rabbitmq/tls (clients verify against its ca.pem):
#   CONVOY_AMQP_TLS_PORT=21671 scripts/infra.sh start rabbit
set -euo pipefail
. "$(dirname "$0")/lib.sh"

RABBIT_DIR=$CONVOY_RUN_DIR/rabbitmq
CLUSTER_NODES=3
# Node N of the cluster (1: the usual node): its folder, ports and name.
use_node() {
  local n=$1 shift_by=$(( ($1 - 1) * 100 ))
  [ "$n" -ge 1 ] && [ "$n" -le $CLUSTER_NODES ] || die "no rabbit node $n (1..$CLUSTER_NODES)"
  [ "$n" -eq 1 ] && return 0
  RABBIT_DIR=$CONVOY_RUN_DIR/rabbitmq-$n
  CONVOY_AMQP_PORT=$((CONVOY_AMQP_PORT + shift_by)) CONVOY_AMQP_DIST_PORT=$((CONVOY_AMQP_DIST_PORT + shift_by))
  CONVOY_AMQP_MGMT_PORT=$((CONVOY_AMQP_MGMT_PORT + shift_by)) CONVOY_AMQP_PROM_PORT=$((CONVOY_AMQP_PROM_PORT + shift_by))
  CONVOY_RABBIT_NODE=convoy-$CONVOY_AMQP_PORT@localhost
  CONVOY_RABBIT_MGMT_URL=http://127.0.0.1:$CONVOY_AMQP_MGMT_PORT
  unset CONVOY_AMQP_TLS_PORT
}
PG_DIR=$CONVOY_RUN_DIR/postgres
PG_STANDBY_NAME=convoy_standby
# As root, the cluster belongs to the postgres user, which must reach the folder. A checkout
# under a private home is not reachable: then the cluster lives in a folder of its own in /tmp,
# named after the runtime folder so start and stop agree.
mkdir -p "$CONVOY_RUN_DIR"
if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$CONVOY_RUN_DIR" 2>/dev/null; then
  PG_DIR=/tmp/convoy-pg-$(printf '%s' "$CONVOY_RUN_DIR" | md5sum | cut -c1-12)
fi
PG_PRIMARY_PORT=$CONVOY_PG_PORT
# PostgreSQL node N of the pair (1: the usual one; 2: 100 ports above, its folder beside).
use_pg_node() {
  [ "$1" -eq 1 ] || [ "$1" -eq 2 ] || die "no postgres node $1 (1..2)"
  [ "$1" -eq 1 ] && return 0
  PG_DIR=$PG_DIR-2
  CONVOY_PG_PORT=$((CONVOY_PG_PORT + 100))
}
RABBIT_BIN=/usr/lib/rabbitmq/bin
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)

rabbit_env() {
  export HOME=$RABBIT_DIR/home
  export RABBITMQ_NODENAME=$CONVOY_RABBIT_NODE

  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT=$CONVOY_AMQP_PORT
  export RABBITMQ_DIST_PORT=$CONVOY_AMQP_DIST_PORT
  export RABBITMQ_MNESIA_BASE=$RABBIT_DIR/mnesia
  export RABBITMQ_LOG_BASE=$RABBIT_DIR/log
  export RABBITMQ_ENABLED_PLUGINS_FILE=$RABBIT_DIR/enabled_plugins
  export RABBITMQ_CONFIG_FILE=$RABBIT_DIR/rabbitmq.conf
  # Settings rabbitmq.conf cannot express (the at-least-once dead-lettering retry), shipped.
  export RABBITMQ_ADVANCED_CONFIG_FILE=$CONVOY_ROOT/deploy/rabbitmq/advanced.config
  export RABBITMQ_PID_FILE=$RABBIT_DIR/rabbit.pid
  export ERL_EPMD_ADDRESS=127.0.0.1
  export ERL_CRASH_DUMP=$RABBIT_DIR/log/erl_crash.dump
}

rabbitctl() { ( rabbit_env; "$RABBIT_BIN/rabbitmqctl" -n "$CONVOY_RABBIT_NODE" "$@" ); }

rabbit_running() { rabbitctl status >/dev/null 2>&1; }

# Succeeds once the node is up; 100 (stop waiting) if the server process died.
rabbit_started() {
  kill -0 "$(cat "$RABBIT_DIR/server.pid")" 2>/dev/null || return 100
  rabbitctl await_startup --timeout 5
}

# A throw-away CA and a server certificate signed by it (localhost and 127.0.0.1), valid 7 days.
rabbit_tls_files() {
  local dir=$RABBIT_DIR/tls
  [ -f "$dir/server.pem" ] && openssl x509 -checkend 3600 -noout -in "$dir/server.pem" >/dev/null 2>&1 && return 0
  command -v openssl >/dev/null || die "openssl is not installed (needed for CONVOY_AMQP_TLS_PORT)"
  mkdir -p "$dir"
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 "${ec[@]}" -keyout "$dir/ca.key" -out "$dir/ca.pem" -days 7 -subj "/CN=convoy throw-away CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req "${ec[@]}" -keyout "$dir/server.key" -out "$dir/server.csr" -subj "/CN=localhost" 2>/dev/null
  printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" > "$dir/server.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 7 \
    -extfile "$dir/server.ext" -out "$dir/server.pem" 2>/dev/null
  chmod 600 "$dir/ca.key" "$dir/server.key"
  log "rabbitmq: TLS certificates made in $dir (clients trust $dir/ca.pem)"
}

rabbit_start() {
  [ -x "$RABBIT_BIN/rabbitmq-server" ] || die "rabbitmq-server is not installed: run scripts/setup.sh"
  if rabbit_running; then log "rabbitmq: already running on :$CONVOY_AMQP_PORT"; return 0; fi
  mkdir -p "$RABBIT_DIR/home" "$RABBIT_DIR/mnesia" "$RABBIT_DIR/log"
  echo '[rabbitmq_management,rabbitmq_prometheus,rabbitmq_consistent_hash_exchange].' > "$RABBIT_DIR/enabled_plugins"
  cat > "$RABBIT_DIR/rabbitmq.conf" <<CONF
management.tcp.port = $CONVOY_AMQP_MGMT_PORT
management.tcp.ip = 127.0.0.1
prometheus.tcp.port = $CONVOY_AMQP_PROM_PORT
prometheus.tcp.ip = 127.0.0.1
load_definitions = $CONVOY_ROOT/deploy/rabbitmq/definitions.json
log.file.level = warning
CONF
  if [ -n "${CONVOY_AMQP_TLS_PORT:-}" ]; then
    rabbit_tls_files
    cat >> "$RABBIT_DIR/rabbitmq.conf" <<CONF
listeners.ssl.default = 127.0.0.1:$CONVOY_AMQP_TLS_PORT
ssl_options.cacertfile = $RABBIT_DIR/tls/ca.pem
ssl_options.certfile = $RABBIT_DIR/tls/server.pem
ssl_options.keyfile = $RABBIT_DIR/tls/server.key
ssl_options.versions.1 = tlsv1.3
ssl_options.versions.2 = tlsv1.2
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
CONF
    log "rabbitmq: amqps:// listener on :$CONVOY_AMQP_TLS_PORT"
  fi
  log "rabbitmq: starting node $CONVOY_RABBIT_NODE on :$CONVOY_AMQP_PORT (management :$CONVOY_AMQP_MGMT_PORT)"
  ( rabbit_env; setsid "$RABBIT_BIN/rabbitmq-server" >"$RABBIT_DIR/log/stdout.log" 2>&1 < /dev/null &
    echo $! > "$RABBIT_DIR/server.pid" )
  wait_for "rabbitmq startup" 120 rabbit_started || {
    grep -E "eaddrinuse|BOOT FAILED|Error during startup|could_not_start" "$RABBIT_DIR/log/stdout.log" | head -n 5 >&2
    tail -n 15 "$RABBIT_DIR/log/stdout.log" >&2
    die "rabbitmq did not start (log: $RABBIT_DIR/log/stdout.log)"; }
  # This node's own listener (CONVOY_RABBIT_MGMT_URL may name a whole cluster's, for clients).
  wait_for "rabbitmq management API" 120 curl -sf -u guest:guest "http://127.0.0.1:$CONVOY_AMQP_MGMT_PORT/api/health/checks/local-alarms"
  log "rabbitmq: ready"
}

rabbit_stop() {
  if rabbit_running; then
    log "rabbitmq: stopping"
    rabbitctl stop >/dev/null 2>&1 || true
  fi
  # The Erlang VM may linger briefly after stop returns; make sure nothing of ours is left.
  pkill -f "beam.*-sname $CONVOY_RABBIT_NODE" 2>/dev/null || true
  pkill -f "beam.*$CONVOY_RABBIT_NODE" 2>/dev/null || true
}

# kill -9 of the broker's VM (the server script's child) and the script itself.
rabbit_kill() {
  local pid
  pid=$(cat "$RABBIT_DIR/server.pid" 2>/dev/null) || { log "rabbitmq: no pid file"; return 0; }
  log "rabbitmq: kill -9"
  pkill -9 -P "$pid" 2>/dev/null || true
  kill -9 "$pid" 2>/dev/null || true
  wait_for "rabbitmq to die" 30 bash -c "! kill -0 $pid 2>/dev/null && ! pgrep -P $pid >/dev/null"
  pkill -9 -f "beam.*$RABBIT_DIR/" 2>/dev/null || true
}

# As root, initdb and postgres must run as the postgres OS user.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_dir_usable() { [ "$(id -u)" -ne 0 ] || runuser -u postgres -- test -w "$PG_DIR"; }

pg_running() { [ -n "$PG_BIN" ] && as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1; }

pg_start() {
  [ -n "$PG_BIN" ] || die "postgresql is not installed: run scripts/setup.sh"
  if pg_running; then log "postgres: already running on :$CONVOY_PG_PORT"; return 0; fi
  [ ! -f "$PG_DIR/fenced" ] || die "postgres on :$CONVOY_PG_PORT was fenced by a failover ($PG_DIR/fenced): its" \
    "history may hold commits its standby never had; start it again only as a new standby (remove the folder)"
  mkdir -p "$PG_DIR"
  [ "$(id -u)" -ne 0 ] || chown postgres: "$PG_DIR"
  pg_dir_usable || die "the postgres user cannot use $PG_DIR"
  if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
    log "postgres: initdb in $PG_DIR/data"
    as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 >"$PG_DIR/initdb.log" 2>&1 \
      || { cat "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
  fi
  log "postgres: starting on :$CONVOY_PG_PORT"
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -c port=$CONVOY_PG_PORT -c unix_socket_directories=$PG_DIR -c max_connections=300 -c fsync=on -c shared_buffers=256MB -c track_commit_timestamp=on ${PG_EXTRA_OPTIONS:-} ${CONVOY_PG_OPTIONS:-}" >/dev/null \
    || { tail -n 40 "$PG_DIR/postgres.log" >&2; die "postgres did not start"; }
  log "postgres: ready"
}

# A crash as the server sees one: every backend stops at once, no checkpoint; the next start
# replays the WAL.
pg_kill() {
  if pg_running; then
    log "postgres: immediate shutdown (crash)"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
}

pg_stop() {
  if pg_running; then
    log "postgres: stopping"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
}

pg_sql() { as_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$CONVOY_PG_PORT" -U postgres -d postgres -qAtX -c "$1"; }
pg_in_recovery() { [ "$(pg_sql 'SELECT pg_is_in_recovery()' 2>/dev/null)" = t ]; }
pg_writable() { [ "$(pg_sql 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; }
pg_streaming() { [ "$(pg_sql "SELECT count(*) FROM pg_stat_replication WHERE application_name = '$PG_STANDBY_NAME' AND state = 'streaming'" 2>/dev/null)" = 1 ]; }

# Node 1 the primary, committing synchronously to node 2, a streaming standby cloned from it
# (pg_basebackup) at first start. After a failover node 2 runs alone and node 1 stays fenced.
pg_pair_start() {
  if [ ! -f "$PG_DIR/fenced" ]; then
    PG_EXTRA_OPTIONS="-c synchronous_standby_names=$PG_STANDBY_NAME -c wal_level=replica -c max_wal_senders=4" pg_start
  fi
  (
    primary_port=$CONVOY_PG_PORT
    use_pg_node 2
    if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
      mkdir -p "$PG_DIR"
      [ "$(id -u)" -ne 0 ] || chown postgres: "$PG_DIR"
      log "postgres: cloning node 1 (:$primary_port) into the standby (:$CONVOY_PG_PORT)"
      as_pg "$PG_BIN/pg_basebackup" -D "$PG_DIR/data" -R -X stream -c fast \
        -d "host=127.0.0.1 port=$primary_port user=postgres application_name=$PG_STANDBY_NAME" \
        >"$PG_DIR/basebackup.log" 2>&1 || { cat "$PG_DIR/basebackup.log" >&2; die "pg_basebackup failed"; }
    fi
    pg_start
    if pg_in_recovery; then
      ( CONVOY_PG_PORT=$primary_port; wait_for "the standby to stream" 60 pg_streaming ) || die "the standby does not stream"
      log "postgres: standby :$CONVOY_PG_PORT streams from :$primary_port (synchronous)"
    fi
  )
}

pg_pair_stop() {
  ( use_pg_node 2; pg_stop )
  pg_stop
}

pg_pair_dsn() {
  echo "host=127.0.0.1,127.0.0.1 port=$PG_PRIMARY_PORT,$((PG_PRIMARY_PORT + 100)) user=postgres dbname=postgres target_session_attrs=read-write connect_timeout=3"
}

# The primary is fenced first (an immediate stop, and a mark that keeps it from starting again as a
# primary), then the standby promoted: never two primaries. The standby has every commit a client
# was told of (synchronous replication); it runs alone after, committing without waiting.
pg_failover() {
  local n primary="" standby=""
  for n in 1 2; do
    ( use_pg_node "$n"; pg_running ) || continue
    if ( use_pg_node "$n"; pg_in_recovery ); then standby=$n; else primary=$n; fi
  done
  [ -n "$standby" ] || die "no running standby to promote"
  if [ -n "$primary" ]; then
    ( use_pg_node "$primary"
      touch "$PG_DIR/fenced"
      as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
      log "postgres: node $primary (:$CONVOY_PG_PORT) fenced" )
  fi
  ( use_pg_node "$standby"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -w -t 60 promote >/dev/null || die "promotion failed"
    wait_for "node $standby to accept writes" 60 pg_writable || die "node $standby did not leave recovery"
    log "postgres: node $standby (:$CONVOY_PG_PORT) promoted: the primary now" )
}

pg_pair_status() {
  local n
  for n in 1 2; do
    ( use_pg_node "$n"
      if ! pg_running; then echo "postgres node $n: stopped$([ -f "$PG_DIR/fenced" ] && echo ', fenced')"
      elif pg_in_recovery; then echo "postgres node $n: standby (:$CONVOY_PG_PORT)"
      else echo "postgres node $n: primary (:$CONVOY_PG_PORT)"; fi )
  done
}

# Nodes 2 and 3 share node 1's Erlang cookie and join its cluster; every quorum queue then has a
# member on each node.
cluster_start() {
  rabbit_start
  local first=$CONVOY_RABBIT_NODE cookie=$RABBIT_DIR/home/.erlang.cookie n
  for n in $(seq 2 $CLUSTER_NODES); do
    (
      use_node "$n"
      if rabbit_running && rabbitctl cluster_status 2>/dev/null | grep -q "$first"; then
        log "rabbitmq: node $n already in the cluster"; exit 0
      fi
      mkdir -p "$RABBIT_DIR/home"
      install -m 0400 "$cookie" "$RABBIT_DIR/home/.erlang.cookie"
      rabbit_start
      { rabbitctl stop_app && rabbitctl reset && rabbitctl join_cluster "$first" && rabbitctl start_app; } \
        >"$RABBIT_DIR/log/join.log" 2>&1 || { tail -n 20 "$RABBIT_DIR/log/join.log" >&2; die "node $n could not join $first"; }
      # The queues the definitions file declared on node 1 before the cluster formed have their one
      # member there; each joining node takes a member of every one (queues declared from now on
      # get three: RabbitMQ's default group size). In production: rabbitmq-queues grow, the same.
      ( rabbit_env; "$RABBIT_BIN/rabbitmq-queues" -n "$CONVOY_RABBIT_NODE" grow "$CONVOY_RABBIT_NODE" all ) \
        >>"$RABBIT_DIR/log/join.log" 2>&1 || { tail -n 20 "$RABBIT_DIR/log/join.log" >&2; die "node $n took no queue members"; }
      log "rabbitmq: node $n ($CONVOY_RABBIT_NODE, :$CONVOY_AMQP_PORT) joined $first"
    )
  done
}

# Nodes 2 and 3 where they were ever started, then node 1.
cluster_stop() {
  local n
  for n in $(seq $CLUSTER_NODES -1 2); do
    [ -d "$CONVOY_RUN_DIR/rabbitmq-$n" ] && ( use_node "$n"; rabbit_stop )
  done
  rabbit_stop
}

cluster_urls() {
  local n urls=""
  for n in $(seq 1 $CLUSTER_NODES); do
    urls+=$( use_node "$n"; printf '%samqp://guest:guest@127.0.0.1:%s/%%2f' "${urls:+,}" "$CONVOY_AMQP_PORT" )
  done
  echo "$urls"
}

# The Erlang VM of node N (the server script's child), for SIGSTOP/SIGCONT.
rabbit_vm_pid() { pgrep -f "beam.*$RABBIT_DIR/" | head -n 1; }

rabbit_signal() {
  local sig=$1 pid
  pid=$(rabbit_vm_pid) || die "rabbitmq node $CONVOY_RABBIT_NODE is not running"
  kill "-$sig" "$pid"
  log "rabbitmq: SIG$sig to $CONVOY_RABBIT_NODE (pid $pid)"
}

cmd=${1:-status}; what=${2:-all}
if [ "$what" = rabbit ] && [ -n "${3:-}" ]; then use_node "$3"; fi
case "$cmd:$what" in
  start:all) rabbit_start; pg_start ;;
  start:rabbit) rabbit_start ;;
  start:pg) pg_start ;;
  stop:all) cluster_stop; pg_pair_stop ;;
  stop:rabbit) rabbit_stop ;;
  stop:pg) pg_pair_stop ;;
  kill:rabbit) rabbit_kill ;;
  pause:rabbit) rabbit_signal STOP ;;
  resume:rabbit) rabbit_signal CONT ;;
  start:cluster) cluster_start; pg_pair_start ;;
  stop:cluster) cluster_stop; pg_pair_stop ;;
  urls:cluster) cluster_urls ;;
  dsn:cluster) pg_pair_dsn ;;
  reset:cluster)  # stopped, and every folder of it gone (a test's fresh start)
    cluster_stop; pg_pair_stop
    rm -rf "$CONVOY_RUN_DIR"/rabbitmq "$CONVOY_RUN_DIR"/rabbitmq-[0-9] "$PG_DIR" "$PG_DIR-2" ;;
  failover:pg) pg_failover ;;
  status:pg-pair) pg_pair_status ;;
  status:cluster)
    pg_pair_status
    for n in $(seq 1 $CLUSTER_NODES); do
      ( use_node "$n"; rabbit_running && echo "rabbitmq node $n: running (:$CONVOY_AMQP_PORT)" || echo "rabbitmq node $n: stopped" )
    done ;;
  kill:pg) pg_kill ;;
  status:*)
    rabbit_running && echo "rabbitmq: running ($CONVOY_AMQP_URL, management $CONVOY_RABBIT_MGMT_URL)" || echo "rabbitmq: stopped"
    pg_running && echo "postgres: running ($CONVOY_PG_DSN)" || echo "postgres: stopped" ;;
  *) die "usage: $0 start|stop|status [all|rabbit|pg|cluster] | kill rabbit [N]|pg | pause|resume rabbit N | urls|dsn cluster | failover pg | status pg-pair" ;;
esac
