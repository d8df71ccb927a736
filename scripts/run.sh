#!/usr/bin/env bash
# Runs the whole convoy stack on loopback: sets up what is missing, builds, starts RabbitMQ,
# PostgreSQL, the four services and the fake Graph API, plays a short demo conversation
# through the real webhook endpoint and prints it as a transcript. Then keeps running until
# Ctrl-C and stops everything it started.
#   scripts/run.sh          run until Ctrl-C
#   scripts/run.sh --demo   exit after the transcript
# Run it again any number of times: the data under $CONVOY_RUN_DIR stays, each demo is a new
# conversation, and the fakes' ids are new each start. Every port can be moved (CONVOY_*_PORT);
# CONVOY_PREBUILT=1 runs the binaries in $CONVOY_BUILD_DIR as they are (no set-up, no build).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
demo_only=false
[ "${1:-}" = "--demo" ] && demo_only=true

if [ "${CONVOY_PREBUILT:-0}" = 1 ]; then
  bin=$CONVOY_BUILD_DIR
else
  "$here/setup.sh" >&2
  bin=$("$here/build.sh" 2>&1 | tail -n 1)
fi
[ -x "$bin/services/ingress/convoy-ingress" ] || die "build failed: run scripts/build.sh to see why"

LOG_DIR=$CONVOY_RUN_DIR/logs
mkdir -p "$LOG_DIR" "$CONVOY_RUN_DIR/media"
# Local-only secrets: the demo signs its own webhooks with this app secret.
export CONVOY_APP_SECRET=${CONVOY_APP_SECRET:-local-app-secret}
export CONVOY_VERIFY_TOKEN=${CONVOY_VERIFY_TOKEN:-local-verify-token}
export CONVOY_GRAPH_TOKEN=${CONVOY_GRAPH_TOKEN:-local-graph-token}
export CONVOY_MEDIA_LINK_SECRET=${CONVOY_MEDIA_LINK_SECRET:-local-media-link-secret}
export CONVOY_ADMIN_TOKEN=${CONVOY_ADMIN_TOKEN:-local-admin-token}
# The business's webhook receiver (convoy-fake-receiver) and the secret it verifies with.
export CONVOY_SINK_SECRET=${CONVOY_SINK_SECRET:-whsec_bG9jYWwtc2luay1zZWNyZXQtb2YtMzItYnl0ZXMh}
RECEIVER_PORT=${CONVOY_FAKE_RECEIVER_PORT:-8091}
INGRESS_PORT=${CONVOY_INGRESS_PORT:-8080}
CONVERSATION_PORT=${CONVOY_CONVERSATION_PORT:-8081}
MEDIA_PORT=${CONVOY_MEDIA_PORT:-8082}
OUTBOUND_PORT=${CONVOY_OUTBOUND_PORT:-8083}
GRAPH_PORT=${CONVOY_FAKE_GRAPH_PORT:-8090}
GRAPH_URL=http://127.0.0.1:$GRAPH_PORT/v24.0
DEMO_MEDIA_ID=900000000000001

pids=()
stop_all() {
  trap - EXIT INT TERM
  log "stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  "$here/infra.sh" stop all
}
trap stop_all EXIT
trap 'exit 130' INT TERM

"$here/infra.sh" start all

start() {  # start NAME PORT ARGS...
  local name=$1 port=$2; shift 2
  "$@" --http_port="$port" >"$LOG_DIR/$name.log" 2>&1 &
  pids+=($!)
  wait_for "$name on :$port" 60 curl -sf "http://127.0.0.1:$port/readyz" || {
    tail -n 20 "$LOG_DIR/$name.log" >&2; die "$name did not become ready"; }
  log "$name ready on :$port"
}
# The set-up steps first, each with its own rights: the broker topology as convoy-topology (the
# one user that may declare) and the migrations as the database owner. Then every service
# connects as a broker user and a database role of its own (README: Broker users, Database
# roles); the local broker's users and their local passwords come from deploy/rabbitmq/definitions.json.
part_url() { sed "s#://[^@]*@#://convoy-$1:convoy-$1-local@#" <<<"$CONVOY_AMQP_URL"; }
part_dsn() { sed "s#user=[^ ]*#user=convoy_$1#" <<<"$CONVOY_PG_DSN"; }
"$bin/services/common/convoy-topology" --upgrade --amqp_url="$(part_url topology)" >"$LOG_DIR/topology.log" 2>&1 ||
  { cat "$LOG_DIR/topology.log" >&2; die "declaring the broker topology failed"; }
"$bin/services/common/convoy-migrate" --pg_dsn="$CONVOY_PG_DSN" --migrations_dir="$CONVOY_ROOT/deploy/postgres" \
  >"$LOG_DIR/migrate.log" 2>&1 || { cat "$LOG_DIR/migrate.log" >&2; die "migrating the database failed"; }
log "topology declared, schema current"
db_flags() {  # db_flags PART: sets the array db_flags_of to the flags of a service with a database
  db_flags_of=(--amqp_url="$(part_url "$1")" --pg_dsn="$(part_dsn "$1")" --schema_dir="$CONVOY_ROOT/proto-schemas"
               --migrations_dir="$CONVOY_ROOT/deploy/postgres")
}
start fake-graph "$GRAPH_PORT" "$bin/tests/convoy-fake-graph" --media="$DEMO_MEDIA_ID=$CONVOY_ROOT/tests/data/demo-photo.jpg:image/jpeg" \
  --status_webhook_url="http://127.0.0.1:$INGRESS_PORT/webhook"
start fake-receiver "$RECEIVER_PORT" "$bin/tests/convoy-fake-receiver"
# Sinks: the listing and the lead go to the local receiver. It is on loopback, which a sink may reach only
# when it says so ("allow_private": a local run; production sinks are public HTTPS endpoints).
cat >"$CONVOY_RUN_DIR/sinks.json" <<JSON
{"schema": "sinks", "version": 1, "sinks": [
  {"name": "listing", "kind": "webhook", "url": "http://127.0.0.1:$RECEIVER_PORT/hooks",
   "secrets": ["env:CONVOY_SINK_SECRET"], "allow_private": true},
  {"name": "lead", "kind": "webhook", "url": "http://127.0.0.1:$RECEIVER_PORT/hooks",
   "secrets": ["env:CONVOY_SINK_SECRET"], "allow_private": true}]}
JSON
start ingress "$INGRESS_PORT" "$bin/services/ingress/convoy-ingress" --amqp_url="$(part_url ingress)"
db_flags conversation
start conversation "$CONVERSATION_PORT" "$bin/services/conversation/convoy-conversation" "${db_flags_of[@]}" --flows_dir="$CONVOY_ROOT/deploy/flows" \
  --numbers_dir="$CONVOY_ROOT/deploy/numbers" --default_flow=lead \
  --ops_amqp_url="$(part_url ops)" --outbound_admin_url="http://127.0.0.1:$OUTBOUND_PORT" \
  --rabbitmq_management_url="$CONVOY_RABBIT_MGMT_URL" --media_api_url="http://127.0.0.1:$MEDIA_PORT" \
  --media_public_url="http://127.0.0.1:$MEDIA_PORT"
db_flags media
start media "$MEDIA_PORT" "$bin/services/media/convoy-media" "${db_flags_of[@]}" --graph_base_url="$GRAPH_URL" --media_dir="$CONVOY_RUN_DIR/media" \
  --media_public --upload_destinations="listing=http://127.0.0.1:$GRAPH_PORT/_fake/upload" --upload_allow_private
db_flags outbound
start outbound "$OUTBOUND_PORT" "$bin/services/outbound/convoy-outbound" "${db_flags_of[@]}" --graph_base_url="$GRAPH_URL" \
  --sinks_file="$CONVOY_RUN_DIR/sinks.json" --media_public_url="http://127.0.0.1:$MEDIA_PORT" \
  --content_guard_file="$CONVOY_ROOT/deploy/guard/content-guard.json"

sends() { curl -sf "http://127.0.0.1:$GRAPH_PORT/_fake/requests" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
last_reply() {  # a text's body, or an interactive message's body and [buttons]
  curl -sf "http://127.0.0.1:$GRAPH_PORT/_fake/requests" | python3 -c '
import json, sys
m = json.load(sys.stdin)[-1]["body"]
if m.get("type") == "interactive":
    i = m["interactive"]
    print(i["body"]["text"] + "  [" + " | ".join(b["reply"]["title"] for b in i["action"]["buttons"]) + "]")
else:
    print(m.get("text", {}).get("body", "[" + m.get("type", "?") + "]"))' | sed '2,$s/^/           /'
}
replies_reached() { [ "$(sends)" -ge "$1" ]; }

# A sender of its own per run: the database persists, and each demo starts a new conversation.
demo_from=1650555$(printf '%04d' $((RANDOM % 10000)))
say() {  # say DESCRIPTION convoy-webhook-flags...
  local shown=$1; shift
  local before; before=$(sends)
  printf '  Kerry  > %s\n' "$shown"
  "$bin/tests/convoy-webhook" --url="http://127.0.0.1:$INGRESS_PORT/webhook" --name="Kerry" --from="$demo_from" "$@" >/dev/null ||
    die "ingress refused the webhook"
  wait_for "a reply" 30 replies_reached $((before + 1)) || die "no reply within 30 s (see $LOG_DIR)"
  printf '  convoy < %s\n' "$(last_reply)"
}

echo
echo "Demo conversation (WhatsApp webhooks signed like Meta's, through the real pipeline):"
say "Hi there" --text="Hi there"
say "SELL" --text="SELL"
say "kerry@example.com" --text="kerry@example.com"
say "Nike running shoes, size 42, used, \$35" --text="Nike running shoes, size 42, used, \$35"
say "[photo]" --image_id="$DEMO_MEDIA_ID"
say "DONE" --text="DONE"
say "[taps NO, SKIP]" --button_id=flaws_no --text="NO, SKIP"
say "[taps SUBMIT]" --button_id=submit --text="SUBMIT"
delivered() {
  curl -sf "http://127.0.0.1:$RECEIVER_PORT/_fake/requests" | python3 -c '
import json, sys
got = [r for r in json.load(sys.stdin) if r["answered"] == 200]
sys.exit(0 if got else 1)'
}
wait_for "the listing at the business's receiver" 30 delivered || die "the listing did not reach the receiver (see $LOG_DIR)"
curl -sf "http://127.0.0.1:$RECEIVER_PORT/_fake/requests" | python3 -c '
import json, sys
r = [r for r in json.load(sys.stdin) if r["answered"] == 200][-1]
b = r["body"]
print("  business < %s, webhook-id %s, signature %s" % (b["type"], r["id"], "verified" if r["verified"] else "NOT verified"))
print("             price %s, %d photo(s): %s" % (b["data"]["fields"].get("price"), len(b["data"]["photos"]),
      ", ".join(p.get("url", p.get("reason", "")) for p in b["data"]["photos"])))'
echo
echo "A second enquiry, by the lead flow (--default_flow=lead; the greeting went with the first reply):"
say "Hello, I need a golden visa" --text="Hello, I need a golden visa"
say "Kerry Smith" --text="Kerry Smith"
say "British" --text="British"
say "kerry@example.com, weekdays after 5pm" --text="kerry@example.com, weekdays after 5pm"
lead_delivered() {
  curl -sf "http://127.0.0.1:$RECEIVER_PORT/_fake/requests" | python3 -c '
import json, sys
sys.exit(0 if any(r["answered"] == 200 and r["body"]["type"] == "lead.qualified" for r in json.load(sys.stdin)) else 1)'
}
wait_for "the lead at the business's receiver" 30 lead_delivered || die "the lead did not reach the receiver (see $LOG_DIR)"
curl -sf "http://127.0.0.1:$RECEIVER_PORT/_fake/requests" | python3 -c '
import json, sys
r = [r for r in json.load(sys.stdin) if r["answered"] == 200 and r["body"]["type"] == "lead.qualified"][-1]
f = r["body"]["data"]["fields"]
print("  business < lead.qualified, signature %s: %s, %s, %s, %s, call %s" % (
      "verified" if r["verified"] else "NOT verified", f["service"], f["name"], f["nationality"], f["email"], f["best_time"]))'
echo
echo "RabbitMQ management UI: $CONVOY_RABBIT_MGMT_URL  (user guest, password guest)"
echo "Metrics:"
for svc in ingress:$INGRESS_PORT conversation:$CONVERSATION_PORT media:$MEDIA_PORT outbound:$OUTBOUND_PORT; do
  echo "  ${svc%%:*}: http://127.0.0.1:${svc##*:}/metrics"
done
echo "Webhook endpoint: http://127.0.0.1:$INGRESS_PORT/webhook   Logs: $LOG_DIR"
echo "Deliveries: curl -H 'Authorization: Bearer $CONVOY_ADMIN_TOKEN' http://127.0.0.1:$OUTBOUND_PORT/v1/deliveries"
echo "Business receiver: http://127.0.0.1:$RECEIVER_PORT/_fake/requests"
echo "Stored media: $CONVOY_RUN_DIR/media, served at http://127.0.0.1:$MEDIA_PORT/media/<name> (open: --media_public, local only)"
$demo_only && exit 0
echo "Running. Ctrl-C stops everything."
wait -n "${pids[@]}" || true
die "a service exited: see $LOG_DIR"
