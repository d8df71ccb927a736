#include "sender.h"

#include <glog/logging.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <optional>
#include <thread>

#include "convoy/events.h"
#include "convoy/log.h"
#include "convoy/metrics.h"
#include "convoy/rapidjson_util.h"
#include "convoy/rfc3339.h"
#include "convoy/topology.h"
#include "graph.h"
#include "order_statements.h"

namespace convoy::outbound {

namespace {

constexpr const char* kCallbackPrefix = "convoy:";
constexpr int64_t kWindowSeconds = 24 * 3600;  // Meta's customer-service window
constexpr int kWindowClosedCode = 131047;      // what Meta answers outside it
constexpr int kInvalidParameterCode = 100;     // what Meta answers for a message over its limits

// Where a dedupe key stands, without taking anything: settled, or claimed by an attempt of
// `age` seconds.
constexpr const char* kLookup =
    "SELECT status, coalesce(extract(epoch FROM clock_timestamp() - attempt_started_at)::float8, "
    "1e9) "
    "FROM outbound_messages WHERE dedupe_key = $1";
// Claims an attempt in one statement (the row lock of ON CONFLICT makes it atomic between
// replicas): the row is created 'sending', or moved to 'sending' unless it is settled or an
// attempt that may have reached Meta is younger than the reconcile time ($6 s). No row returned:
// not claimed. prev: the status before, for the log.
//
// A bot's send ($8 = 'bot') is not claimed when a person (or another app) took its conversation
// over after the send was written (owner_since later than the send's outbox row; the bot's last
// words of a handoff, written in the handoff's own transaction, still go): it is cancelled
// (kCancelForOwner). The takeover commits under the conversation's row lock; this statement sees
// it or precedes it.
#define TAKEN_OVER                                                                        \
  "SELECT 1 FROM conversations c WHERE c.conversation_key = $2 AND c.owner <> 'bot' AND " \
  "c.owner_since > "                                                                      \
  "coalesce((SELECT o.created_at FROM outbox o WHERE o.dedupe_key = $1), '-infinity')"
constexpr const char* kClaim =
    "WITH prev AS (SELECT status FROM outbound_messages WHERE dedupe_key = $1) "
    "INSERT INTO outbound_messages AS m (dedupe_key, conversation_key, phone_number_id, recipient, "
    "status, attempts, "
    "correlation_id, attempt_started_at, received_at, author) SELECT $1, $2, $3, $4, 'sending', 1, "
    "$5, "
    "clock_timestamp(), NULLIF($7, '')::timestamptz, $8 WHERE $8 <> 'bot' OR NOT EXISTS "
    "(" TAKEN_OVER
    ") "
    "ON CONFLICT (dedupe_key) DO UPDATE SET status = 'sending', attempts = m.attempts + 1, "
    "attempt_started_at = clock_timestamp(), updated_at = now(), author = coalesce(m.author, "
    "EXCLUDED.author) "
    "WHERE m.status NOT IN ('sent', 'delivered', 'read', 'failed') AND NOT (m.status IN "
    "('sending', 'uncertain') "
    "AND m.attempt_started_at > clock_timestamp() - make_interval(secs => $6::float8)) "
    "RETURNING m.attempts, coalesce((SELECT status FROM prev), 'new'), floor(extract(epoch FROM "
    "m.created_at))::bigint";
constexpr const char* kOwner = "SELECT c.owner FROM conversations c WHERE EXISTS (" TAKEN_OVER ")";
constexpr const char* kCancelForOwner =
    "INSERT INTO outbound_messages AS m (dedupe_key, conversation_key, phone_number_id, recipient, "
    "status, "
    "correlation_id, error_reason) VALUES ($1, $2, $3, $4, 'cancelled', $5, $6) ON CONFLICT "
    "(dedupe_key) DO UPDATE "
    "SET status = 'cancelled', error_reason = EXCLUDED.error_reason, updated_at = now() "
    "WHERE m.status NOT IN ('sent', 'delivered', 'read', 'failed', 'sending', 'uncertain', "
    "'cancelled')";
// A status webhook may have settled the row already (wamid set, sent or further): keep that.
constexpr const char* kMarkSent =
    "UPDATE outbound_messages SET status = 'sent', wamid = coalesce(wamid, $2), error_code = NULL, "
    "error_reason = NULL, updated_at = now() WHERE dedupe_key = $1 AND status IN ('sending', "
    "'uncertain', 'retrying')";
// Meta's answer named a wamid another row already holds: the send is recorded as sent (Meta took
// it) without the wamid, and the reason names the row that holds it.
constexpr const char* kMarkSentConflict =
    "UPDATE outbound_messages SET status = 'sent', error_code = NULL, error_reason = $2, "
    "updated_at = now() "
    "WHERE dedupe_key = $1 AND status IN ('sending', 'uncertain', 'retrying')";
// The send that holds a wamid, other than $2 (an integrity error when there is one).
constexpr const char* kWamidHolder =
    "SELECT dedupe_key FROM outbound_messages WHERE wamid = $1 AND dedupe_key IS DISTINCT FROM $2";
// Whether any send is known by this wamid or dedupe key (a status that moved nothing is stale), and
// who wrote it.
constexpr const char* kKnownSend =
    "SELECT dedupe_key, coalesce(author, '') FROM outbound_messages WHERE wamid = $1 OR dedupe_key "
    "= $2 LIMIT 1";
// An agent's send where its status stands (sent, delivered, read or failed): what its conversation
// tells the business (outbound.status_changed, then conversation.message_status).
constexpr const char* kAgentSend =
    "SELECT status, coalesce(conversation_key, ''), correlation_id, coalesce(wamid, ''), "
    "coalesce(error_code, 0), "
    "coalesce(error_reason, ''), author, floor(extract(epoch FROM updated_at))::bigint FROM "
    "outbound_messages "
    "WHERE dedupe_key = $1 AND author LIKE 'agent:%' AND status IN ('sent', 'delivered', 'read', "
    "'failed')";
constexpr const char* kMarkUncertain =
    "UPDATE outbound_messages SET status = 'uncertain', error_reason = $2, updated_at = now() "
    "WHERE dedupe_key = $1 AND status = 'sending'";
// No answer and no attempt left (or a typing indicator, never retried): the send is let go, its
// outcome unknown. A status webhook can still move it forward; it is no longer counted in doubt
// (nothing more will be done for it, so an alert on it could never clear).
constexpr const char* kMarkGivenUp =
    "UPDATE outbound_messages SET status = 'unknown', updated_at = now() WHERE dedupe_key = $1 AND "
    "status = 'uncertain'";
constexpr const char* kMarkRetrying =
    "UPDATE outbound_messages SET status = 'retrying', error_code = $2::int, error_reason = $3, "
    "updated_at = now() "
    "WHERE dedupe_key = $1 AND status = 'sending'";
constexpr const char* kMarkFailed =
    "INSERT INTO outbound_messages (dedupe_key, conversation_key, phone_number_id, recipient, "
    "status, attempts, "
    "error_code, error_reason, correlation_id, author) VALUES ($1, $2, $3, $4, 'failed', 0, "
    "$5::int, $6, $7, $8) "
    "ON CONFLICT (dedupe_key) DO UPDATE SET status = 'failed', error_code = EXCLUDED.error_code, "
    "error_reason = EXCLUDED.error_reason, updated_at = now(), "
    "author = coalesce(outbound_messages.author, EXCLUDED.author) "
    "WHERE outbound_messages.status NOT IN ('sent', 'delivered', 'read')";
// Statuses only move forward: (queued, sending, uncertain, retrying) < sent < delivered < read;
// failed ends it. Duplicates are no-ops. A row whose wamid is not known yet (the process died
// before recording Meta's answer) is found through the callback data's dedupe key. Written so that
// arm goes through the primary key: as "wamid IS NULL AND dedupe_key = $5" the planner walked the
// wamid index's NULLs (every send not answered yet: 3,000 rows scanned per status, 0.7 ms, the
// largest statement of a bench run by total time) whenever its statistics said they were few.
constexpr const char* kApplyStatus =
    "UPDATE outbound_messages SET status = $2, wamid = coalesce(wamid, $1), "
    "error_code = CASE WHEN $2 = 'failed' THEN coalesce($3::int, error_code) END, "
    "error_reason = CASE WHEN $2 = 'failed' THEN coalesce($4, error_reason) END, updated_at = "
    "now() "
    "WHERE (wamid = $1 OR (dedupe_key = $5 AND coalesce(wamid, $1) = $1)) AND "
    "(CASE status WHEN 'sent' THEN 2 WHEN 'delivered' THEN 3 WHEN 'read' THEN 4 WHEN 'failed' THEN "
    "5 ELSE 1 END) < "
    "(CASE $2 WHEN 'sent' THEN 2 WHEN 'delivered' THEN 3 WHEN 'read' THEN 4 WHEN 'failed' THEN 5 "
    "ELSE 0 END) "
    "RETURNING dedupe_key, coalesce(conversation_key, ''), correlation_id, phone_number_id, "
    "recipient, "
    "coalesce(author, '')";

constexpr int kMarketingStoppedCode = 131050;  // Meta's "user stopped marketing messages"
constexpr const char* kMarketingStopped =
    "SELECT source FROM marketing_preferences WHERE phone_number_id = $1 AND recipient = $2 AND "
    "stopped";
// A user's choice as of `changed_at` (seconds): an older one delivered late changes nothing.
constexpr const char* kSetMarketing =
    "INSERT INTO marketing_preferences (phone_number_id, recipient, stopped, changed_at, source) "
    "VALUES ($1, $2, $3::boolean, to_timestamp($4::bigint), $5) ON CONFLICT (phone_number_id, "
    "recipient) DO UPDATE "
    "SET stopped = EXCLUDED.stopped, changed_at = EXCLUDED.changed_at, source = EXCLUDED.source "
    "WHERE marketing_preferences.changed_at <= EXCLUDED.changed_at";
// A number's send rate from the registry (0018_number_throughput.sql).
constexpr const char* kNumberThroughput =
    "SELECT throughput, status, coalesce(paused_reason, ''), app FROM numbers WHERE "
    "phone_number_id = $1";
// A send refused for the number itself (131031, 133010) pauses it, with the reason, until a person
// resumes it (0027_number_pause_reason.sql). Only an active number: a pause already there keeps
// its own reason, an offboarded number stays so.
constexpr const char* kPauseNumber =
    "UPDATE numbers SET status = 'paused', source = 'meta', paused_reason = $2, paused_at = now(), "
    "updated_at = now() "
    "WHERE phone_number_id = $1 AND status = 'active' RETURNING 1";
// What Meta bills, kept on the message; whether it is the first time (a message is counted once,
// whichever of its statuses carries it) and the tenant of its number.
constexpr const char* kRecordPricing =
    "WITH old AS (SELECT dedupe_key, pricing IS NULL AS first, phone_number_id FROM "
    "outbound_messages "
    "WHERE wamid = $1 OR (dedupe_key = $3 AND coalesce(wamid, $1) = $1) FOR UPDATE) "
    "UPDATE outbound_messages m SET pricing = $2::jsonb FROM old WHERE m.dedupe_key = "
    "old.dedupe_key "
    "RETURNING old.first, coalesce((SELECT n.tenant FROM numbers n WHERE n.phone_number_id = "
    "old.phone_number_id), "
    "'unregistered')";

// A pricing label's value when it is one Meta documents, else "other": labels stay bounded
// whatever a webhook says.
std::string PricingLabel(const std::string& value, std::initializer_list<const char*> known) {
  for (const char* k : known) {
    if (value == k) return value;
  }
  return "other";
}

// Messages Meta prices, by tenant and by how: since July 2025 every message has its own price.
void CountPriced(const std::string& tenant, const rapidjson::Value& pricing) {
  const std::string category =
      PricingLabel(JsonStr(pricing, "category"),
                   {"marketing", "marketing_lite", "utility", "authentication",
                    "authentication_international", "service", "referral_conversion"});
  const std::string model = PricingLabel(JsonStr(pricing, "pricing_model"), {"PMP", "CBP"});
  const auto& billable = JsonMember(pricing, "billable");
  DefaultRegistry()
      .GetCounter("convoy_outbound_messages_priced_total",
                  "Messages Meta priced (the pricing of their status webhooks), once each, by the "
                  "number's tenant, "
                  "category, pricing model and whether billable.",
                  "tenant=\"" + tenant + "\",category=\"" + category + "\",pricing_model=\"" +
                      model + "\",billable=\"" +
                      (billable.IsBool() ? (billable.GetBool() ? "true" : "false") : "unknown") +
                      "\"")
      .Inc();
}

struct Metrics {
  Registry& r = DefaultRegistry();
  Counter& sent = Result("sent");
  Counter& read_receipt = Result("read_receipt");
  Counter& read_receipt_failed = Result("read_receipt_failed");
  Counter& duplicate = Result("duplicate");
  Counter& cancelled_for_owner = Result("cancelled_owner");
  Counter& failed = Result("failed");
  Counter& retried = Result("retry");
  Counter& uncertain = Result("uncertain");
  Counter& reconciling = Result("awaiting_status");
  Counter& paced = Result("paced");
  Counter& number_paused = Result("number_paused");
  Counter& graph_token_unresolved = Result("graph_token_unresolved");
  Counter& invalid = Result("invalid");
  Counter& record_retried = Result("record_retry");
  Counter& record_parked = Result("record_parked");
  Counter& statuses = r.GetCounter("convoy_outbound_statuses_total", "Status webhooks by effect.",
                                   "effect=\"applied\"");
  Counter& stale = r.GetCounter("convoy_outbound_statuses_total", "Status webhooks by effect.",
                                "effect=\"ignored\"");
  Counter& status_waiting = r.GetCounter("convoy_outbound_statuses_total",
                                         "Status webhooks by effect.", "effect=\"waiting\"");
  Counter& status_unknown = r.GetCounter("convoy_outbound_statuses_total",
                                         "Status webhooks by effect.", "effect=\"unknown\"");
  Counter& status_retried = r.GetCounter("convoy_outbound_statuses_total",
                                         "Status webhooks by effect.", "effect=\"retry\"");
  Counter& wamid_conflicts =
      r.GetCounter("convoy_outbound_wamid_conflicts_total",
                   "Graph answers or status webhooks naming a wamid another send already holds "
                   "(an integrity error: two dedupe keys, one message id).");
  Counter& errors =
      r.GetCounter("convoy_outbound_value_errors_total", "Value-level webhook errors received.");
  Counter& agent_statuses =
      r.GetCounter("convoy_outbound_agent_statuses_total",
                   "Delivery statuses of agents' messages told to their conversation (a status "
                   "may be told again; the conversation tells the business once).");
  Counter& wrong_app = r.GetCounter("convoy_outbound_statuses_total", "Status webhooks by effect.",
                                    "effect=\"wrong_app\"");
  Counter& status_batches =
      r.GetCounter("convoy_outbound_status_batches_total",
                   "Batches of status webhooks by how they were applied: together (one "
                   "transaction) or alone (rolled back, each in its own).",
                   "outcome=\"together\"");
  Counter& status_batches_alone =
      r.GetCounter("convoy_outbound_status_batches_total",
                   "Batches of status webhooks by how they were applied: together (one "
                   "transaction) or alone (rolled back, each in its own).",
                   "outcome=\"alone\"");
  Counter& preferences = r.GetCounter("convoy_outbound_preferences_total",
                                      "Marketing preferences by effect.", "effect=\"received\"");
  Counter& preferences_ignored =
      r.GetCounter("convoy_outbound_preferences_total", "Marketing preferences by effect.",
                   "effect=\"ignored\"");
  Counter& guard_sanitised = r.GetCounter(
      "convoy_outbound_guard_total", "Texts the content guard changed before sending, by action.",
      "action=\"sanitised\"");
  Counter& guard_replaced = r.GetCounter(
      "convoy_outbound_guard_total", "Texts the content guard changed before sending, by action.",
      "action=\"replaced\"");
  Histogram& webhook_to_send =
      r.GetHistogram("convoy_outbound_webhook_to_send_seconds",
                     "From ingress receiving a webhook to Meta accepting its reply.");
  Histogram& graph =
      r.GetHistogram("convoy_outbound_graph_seconds", "Graph API send call latency.");
  Counter& order_waits =
      r.GetCounter("convoy_outbound_order_waits_total",
                   "Times a send was held back because an earlier send of its conversation was "
                   "not settled yet (in flight, waiting out a retry, awaiting its status).");
  Histogram& order_held =
      r.GetHistogram("convoy_outbound_order_held_seconds",
                     "How long sends held back for an earlier send of their conversation waited.");
  Counter& Result(const char* what) {
    return r.GetCounter("convoy_outbound_sends_total", "Send commands by result.",
                        std::string("result=\"") + what + "\"");
  }
};
Metrics& M() {
  static Metrics* m = new Metrics();
  return *m;
}

// Graph errors by code; known="false" for a code convoy does not classify by name.
Counter& GraphErrors(int code, bool known) {
  return DefaultRegistry().GetCounter(
      "convoy_outbound_graph_errors_total", "Graph API errors answered to sends, by code.",
      "code=\"" + std::to_string(code) + "\",known=\"" + (known ? "true" : "false") + "\"");
}

// Numbers paused because Meta refused a send for the number itself (cause: the Graph code, one of
// two); conversation counts those paused by account_update webhooks.
Counter& PausedNumbers(int code) {
  return DefaultRegistry().GetCounter("convoy_numbers_paused_total",
                                      "Business numbers paused because Meta flagged them.",
                                      "cause=\"graph_" + std::to_string(code) + "\"");
}

int64_t SystemNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool Settled(const std::string& status) {
  return status == "sent" || status == "delivered" || status == "read" || status == "failed" ||
         status == "cancelled";
}

bool MayHaveReachedMeta(const std::string& status) {
  return status == "sending" || status == "uncertain";
}

bool ByAgent(const std::string& author) { return author.rfind("agent:", 0) == 0; }

// Moves a send's row after an attempt whose outcome is already decided (the delivery's disposition
// does not wait on it). Best effort, logged: each caller says what an unmoved row costs.
void MarkAfterAttempt(PgConnection& db, const char* sql, const PgParams& params,
                      const LogCtx& ctx) {
  Status s = db.Exec(sql, params).status();
  if (!s.ok()) LOG(WARNING) << ctx << "event=mark_failed error=" << s.ToString();
}

int64_t Millis(double seconds) { return static_cast<int64_t>(std::ceil(seconds * 1000)); }

int64_t EpochMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool ParseInt64(const std::string& s, int64_t* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size() && !s.empty();
}

// Meta accepted the send (2xx): its wamid ("?" when the answer named none), kept with the command
// while the record of it is retried, so that no redelivery, delay or replay calls Graph again.
constexpr const char* kAcceptedHeader = "x-graph-accepted";
constexpr const char* kUnknownWamid = "?";
constexpr const char* kRecordAttemptsHeader = "x-record-attempts";
// A status webhook waiting for the record of its send (epoch ms of its first look).
constexpr const char* kStatusWaitingHeader = "x-status-waiting-since";

// The send slots a message has reserved (epoch ms), kept with it while it waits for them.
constexpr const char* kPairSlotHeader = "x-pace-pair-at";
constexpr const char* kNumberSlotHeader = "x-pace-number-at";

// A send held back for an earlier send of its conversation: when it was first held (epoch ms).
constexpr const char* kOrderHeldHeader = "x-order-held-since";

// A retry is a new attempt: it reserves new slots (and a wait for its turn, measured once, is
// over).
Disposition Unpaced(Disposition d) {
  d.headers[kPairSlotHeader] = "";
  d.headers[kNumberSlotHeader] = "";
  d.headers[kOrderHeldHeader] = "";
  return d;
}

// A user stopped or resumed marketing messages (a user_preferences webhook).
Disposition ApplyPreference(PgConnection& db, const rapidjson::Document& doc, int64_t now) {
  const auto& pref = doc["preference"];
  std::string user = JsonStr(pref, "wa_id");
  if (user.empty()) user = JsonStr(pref, "user_id");
  const std::string category = JsonStr(pref, "category"), value = JsonStr(pref, "value");
  LogCtx ctx("outbound.status", JsonStr(doc, "correlation_id"), JsonStr(doc, "conversation_key"));
  if (category != "marketing_messages" || (value != "stop" && value != "resume")) {
    M().preferences_ignored.Inc();
    LOG(WARNING) << ctx << "event=preference_ignored category=" << category << " value=" << value;
    return Disposition::Ack();
  }
  int64_t at = std::atoll(JsonStr(pref, "timestamp").c_str());
  if (at > now + 300) {
    // A choice dated in the future would outrank every real one until then (the later one wins).
    M().preferences_ignored.Inc();
    LOG(WARNING) << ctx << "event=preference_ignored reason=future_timestamp at=" << at;
    return Disposition::Ack();
  }
  auto r =
      db.Exec(kSetMarketing, {JsonStr(doc, "phone_number_id"), user,
                              std::string(value == "stop" ? "true" : "false"),
                              std::to_string(at > 0 ? at : now), std::string("user_preferences")});
  if (!r.ok()) return DispositionFor(r.status());
  M().preferences.Inc();
  LOG(INFO) << ctx << "event=marketing_preference value=" << value << " applied=" << r->affected;
  return Disposition::Ack();
}

}  // namespace

struct Sender::Command {
  std::string dedupe, pnid, to, correlation, conversation, type, template_category;
  std::string author = "bot";  // bot, or agent:<name> (an agent's message through the API)
  std::string received_at;  // when ingress received the webhook this answers ("" when not a reply)
  std::string
      mark_read;  // the user's message to mark read with the typing indicator first ("" none)
  int64_t last_inbound_at = 0;
  std::string template_name, template_language;  // a template's (message.template)
};

int64_t GiveUpAt(bool is_template, int64_t last_inbound_at, int64_t first_attempt_at,
                 std::chrono::seconds deadline, std::string* why) {
  int64_t at = first_attempt_at + deadline.count();
  *why = "the send deadline (" + std::to_string(deadline.count()) + " s after the first attempt)";
  if (!is_template && last_inbound_at > 0 && last_inbound_at + kWindowSeconds < at) {
    at = last_inbound_at + kWindowSeconds;
    *why = "the customer service window closes";
  }
  return at;
}

std::string CallbackFor(const std::string& dedupe_key) {
  std::string cb = kCallbackPrefix + dedupe_key;
  return cb.size() <= 512 ? cb : "";  // Meta's limit; such a send cannot be reconciled by callback
}

std::string DedupeKeyFromCallback(const std::string& callback) {
  return callback.rfind(kCallbackPrefix, 0) == 0
             ? callback.substr(std::string(kCallbackPrefix).size())
             : "";
}

Sender::Sender(PgConnection& db, const SchemaRegistry& schemas, SenderSettings settings,
               EventPublisher events)
    : db_(db),
      schemas_(schemas),
      settings_(std::move(settings)),
      events_(std::move(events)),
      pacer_(db),
      graph_numbers_(db, {settings_.graph.base_url, settings_.graph.secrets,
                          settings_.pacing.rates_ttl, settings_.graph.token}),
      templates_(db),
      thread_control_(db, graph_numbers_,
                      {settings_.graph.timeout, settings_.thread_control_deadline}, events_) {
  if (!settings_.now) settings_.now = SystemNow;
  M();
}

Status Sender::Emit(const std::string& schema, const std::string& fields, const Delivery& d) {
  return events_ ? events_(EventFor(d, schema, fields)) : Status::Ok();
}

Status Sender::EmitAgentStatus(const std::string& dedupe_key) {
  if (!events_) return Status::Ok();
  auto r = db_.Exec(kAgentSend, {dedupe_key});
  if (!r.ok()) return r.status();
  if (r->empty()) return Status::Ok();
  const std::string status = r->get(0, 0), wamid = r->get(0, 3), reason = r->get(0, 5);
  const int64_t code = r->get_int(0, 4);
  AmqpMessage m;
  m.exchange = exchanges::kEvents;
  m.routing_key = "outbound.status_changed";
  m.message_id = "outbound.status_changed:" + dedupe_key + ":" + status;
  m.headers = {{headers::kDedupeKey, m.message_id},
               {headers::kCorrelationId, r->get(0, 2)},
               {headers::kConversationKey, r->get(0, 1)}};
  m.body =
      R"({"schema":"outbound.status_changed","version":1,"correlation_id":")" +
      JsonEscape(r->get(0, 2)) + R"(","dedupe_key":")" + JsonEscape(dedupe_key) +
      R"(","conversation_key":")" + JsonEscape(r->get(0, 1)) + R"(","status":")" + status +
      R"(","author":")" + JsonEscape(r->get(0, 6)) + "\"" +
      (wamid.empty() ? "" : R"(,"wamid":")" + JsonEscape(wamid) + "\"") +
      (status == "failed" && code != 0 ? R"(,"code":)" + std::to_string(code) : std::string()) +
      (status == "failed" && !reason.empty()
           ? R"(,"reason":")" + JsonEscape(reason.substr(0, 1000)) + "\""
           : "") +
      R"(,"at":)" + std::to_string(r->get_int(0, 7)) + "}";
  Status s = events_(std::move(m));
  if (s.ok()) M().agent_statuses.Inc();
  return s;
}

Disposition Sender::Fail(const Command& c, const Delivery& d, int code, const std::string& reason,
                         bool dead_letter) {
  LogCtx ctx("outbound.send", c.correlation, c.conversation, c.dedupe);
  Status s = db_.Exec(kMarkFailed, {c.dedupe, c.conversation, c.pnid, c.to, std::to_string(code),
                                    reason, c.correlation, c.author})
                 .status();
  if (!s.ok()) return DispositionFor(s);
  M().failed.Inc();
  LOG(WARNING) << ctx << "event=send_failed code=" << code << " reason=" << reason;
  // A read receipt that did not go is worth no retry, no parking and no news for the flow.
  if (c.type == "typing_indicator") return Disposition::Ack();
  Status e = Emit("outbound.failed",
                  R"("code":)" + std::to_string(code) + R"(,"reason":")" + JsonEscape(reason) +
                      R"(","attempts":)" + std::to_string(d.attempt + 1),
                  d);
  if (!e.ok()) return Disposition::Retry("could not emit outbound.failed: " + e.ToString());
  // An agent's message that failed: the business hears it (a redelivery, settled, tells it again).
  if (ByAgent(c.author)) {
    Status a = EmitAgentStatus(c.dedupe);
    if (!a.ok())
      return Disposition::Retry("could not emit outbound.status_changed: " + a.ToString());
  }
  return dead_letter ? Disposition::DeadLetter(reason, code) : Disposition::Ack();
}

Disposition Sender::Record(const Command& c, const Delivery& d, const std::string& wamid) {
  LogCtx ctx("outbound.send", c.correlation, c.conversation, c.dedupe);
  auto marked = db_.Exec(
      kMarkSent, {c.dedupe, wamid.empty() ? std::nullopt : std::optional<std::string>(wamid)});
  if (!marked.ok() && marked.status().code() == Code::kRejected && !wamid.empty()) {
    // Meta's ids are unique: a wamid another send holds is an integrity error, not a retry. The
    // send is still recorded as sent (Meta took it), naming the holder.
    auto holder = db_.Exec(kWamidHolder, {wamid, c.dedupe});
    if (holder.ok() && !holder->empty()) {
      M().wamid_conflicts.Inc();
      LOG(ERROR) << ctx << "event=wamid_conflict wamid=" << wamid
                 << " held_by=" << holder->get(0, 0);
      marked = db_.Exec(kMarkSentConflict,
                        {c.dedupe, "integrity error: Meta answered wamid " + wamid +
                                       ", which send " + holder->get(0, 0) + " already holds"});
    }
  }
  if (!marked.ok()) {
    // Retried on its own, carrying the wamid, through the delay queues (a failed record is no
    // failed send: the send's attempt count and retry budget stay as they are); after
    // record_attempts it is parked, and a replay finishes the record.
    int64_t tries = 0;
    if (!ParseInt64(d.Header(kRecordAttemptsHeader), &tries)) tries = 0;
    ++tries;
    const std::string shown = wamid.empty() ? "not named" : wamid;
    Disposition next;
    if (tries >= settings_.record_attempts) {
      M().record_parked.Inc();
      LOG(ERROR) << ctx << "event=record_parked wamid=" << shown << " tries=" << tries
                 << " error=" << marked.status().ToString();
      next = Disposition::DeadLetter("Meta accepted the send (wamid " + shown +
                                     ") but recording it failed " + std::to_string(tries) +
                                     " times: " + marked.status().ToString() +
                                     "; a replay records it without sending again");
    } else {
      M().record_retried.Inc();
      LOG(WARNING) << ctx << "event=record_retry wamid=" << shown << " tries=" << tries
                   << " error=" << marked.status().ToString();
      next = Disposition::Delay(
          "recording the send Meta accepted (wamid " + shown + "): " + marked.status().ToString(),
          RetryDelayMs(static_cast<int>(tries), 0));
    }
    next.headers = {{kAcceptedHeader, wamid.empty() ? kUnknownWamid : wamid},
                    {kRecordAttemptsHeader, std::to_string(tries)}};
    return next;
  }
  if (c.type == "typing_indicator") return Disposition::Ack();
  // Nothing goes to the conversation for a send Meta accepted: the send log above is its record
  // (status, wamid, time), and no flow step waits for it. An outbound.sent event per reply cost a
  // broker message and a conversation transaction that wrote one audit row ("recorded") and
  // changed nothing; only a failure (outbound.failed) moves a flow. Those still queued from an
  // older outbound are read as before.
  if (ByAgent(c.author)) {
    // An agent's message went: the business hears it. Not told, only the telling is retried (the
    // wamid travels with it, as for a record): Graph is not called again.
    Status a = EmitAgentStatus(c.dedupe);
    if (!a.ok()) {
      Disposition again =
          Disposition::Retry("could not emit outbound.status_changed: " + a.ToString());
      again.headers = {{kAcceptedHeader, wamid.empty() ? kUnknownWamid : wamid}};
      return again;
    }
  }
  return Disposition::Ack();
}

// The state of one claimed attempt: when it started, what the row said before, and when retrying
// ends (the retry budget is time: a next attempt that would come after give_up_at is not made).
struct Sender::Attempt {
  int64_t now = 0;       // seconds since the epoch, read once per delivery
  std::string previous;  // the row's status before this claim ("new" for a first one)
  int64_t first_attempt_at = 0;
  int64_t give_up_at = 0;
  std::string give_up_why;
  int attempts = 0;             // this one included
  bool typing = false;          // a read receipt, not a message: not paced, never retried
  std::string base_url, token;  // the number's Graph API and token
  std::string body;             // the send request

  bool OutOfTime(int64_t next_delay_ms) const {
    return now + (next_delay_ms + 999) / 1000 > give_up_at;
  }
  std::string BudgetSpent() const {
    return " (after " + std::to_string(attempts) + " attempts over " +
           std::to_string(now - first_attempt_at) + " s; the next would come after " + give_up_why +
           ")";
  }
};

Sender::Command Sender::ParseCommand(const rapidjson::Document& cmd) {
  Command c;
  c.dedupe = JsonStr(cmd, "dedupe_key");
  c.pnid = JsonStr(cmd, "phone_number_id");
  c.to = JsonStr(cmd, "to");
  if (c.to.empty()) c.to = JsonStr(cmd, "recipient");  // a BSUID: the person shares no phone number
  c.correlation = JsonStr(cmd, "correlation_id");
  c.conversation = JsonStr(cmd, "conversation_key");
  c.type = JsonStr(JsonMember(cmd, "message"), "type");
  c.template_category = JsonStr(cmd, "template_category");
  c.received_at = JsonStr(cmd, "received_at");
  c.mark_read = JsonStr(cmd, "mark_read");
  if (!JsonStr(cmd, "author").empty()) c.author = JsonStr(cmd, "author");
  const auto& last = JsonMember(cmd, "last_inbound_at");
  c.last_inbound_at = last.IsInt64() ? last.GetInt64() : 0;
  const auto& tpl = JsonMember(JsonMember(cmd, "message"), "template");
  c.template_name = JsonStr(tpl, "name");
  c.template_language = JsonStr(JsonMember(tpl, "language"), "code");
  return c;
}

Disposition Sender::HandleSend(const Delivery& d) {
  LogCtx ctx = CommandContext(d, "outbound.send");
  if (auto invalid = RefuseInvalid(d, schemas_, ctx)) {
    M().invalid.Inc();
    return *invalid;
  }
  rapidjson::Document cmd;
  cmd.Parse(d.body.c_str(), d.body.size());
  if (JsonStr(cmd, "schema") == "outbound.thread_control") return thread_control_.Handle(d);
  Command c = ParseCommand(cmd);
  ctx = LogCtx("outbound.send", c.correlation, c.conversation, c.dedupe);
  // 0. Meta took this command already (an earlier delivery learned it and could not record it):
  // only the record is left to write. Graph is not called again.
  if (const std::string accepted = d.Header(kAcceptedHeader); !accepted.empty()) {
    return Record(c, d, accepted == kUnknownWamid ? "" : accepted);
  }
  Attempt a;
  if (auto done = SettledOrHeld(c, d, ctx)) return std::move(*done);
  a.now = settings_.now();
  if (auto refused = RefuseWithoutCall(c, d, a.now, ctx)) return std::move(*refused);
  if (auto held = PrepareCall(c, d, ctx, &a)) return std::move(*held);
  a.typing = c.type == "typing_indicator";
  if (auto wait = PaceSend(c, d, a)) return std::move(*wait);
  if (auto done = Claim(c, d, ctx, &a)) return std::move(*done);
  auto resp = CallGraph(c, a, ctx);
  if (!resp.ok()) return SettleNoAnswer(c, a, resp.status(), ctx);
  if (resp->status / 100 == 2) return SettleAccepted(c, d, *resp, ctx);
  return SettleRefused(c, d, a, *resp, ctx);
}

// 1. Settled already, or an earlier attempt's outcome still to be learned? Or held for order.
std::optional<Disposition> Sender::SettledOrHeld(const Command& c, const Delivery& d,
                                                 const LogCtx& ctx) {
  auto row = db_.Exec(kLookupInOrder, {c.dedupe});
  if (!row.ok()) return DispositionFor(row.status());
  if (row->empty()) return Disposition::Retry("the send lookup returned no row");
  if (const std::string status = row->get(0, 0); !status.empty()) {
    double age = std::stod(row->get(0, 1));
    if (Settled(status)) {
      M().duplicate.Inc();
      LOG(INFO) << ctx << "event=already_settled status=" << status;
      if (ByAgent(row->get(0, 4))) {  // told again: an earlier delivery may have failed to
        Status a = EmitAgentStatus(c.dedupe);
        if (!a.ok())
          return Disposition::Retry("could not emit outbound.status_changed: " + a.ToString());
      }
      return Disposition::Ack();
    }
    double reconcile = static_cast<double>(settings_.reconcile.count());
    if (MayHaveReachedMeta(status) && age < reconcile) {
      M().reconciling.Inc();
      return Unpaced(Disposition::Delay(
          "awaiting the status of an attempt that may have reached Meta", Millis(reconcile - age)));
    }
  }
  // 1b. One conversation, one order: an earlier send of this conversation not settled yet (in
  // flight, waiting out a retry, awaiting its status) holds this one back, so that replies reach
  // Meta in the order the conversation wrote them. Held, it looks again when the earlier one is
  // due back (at least 250 ms, at most 5 s later). Other conversations never wait for it.
  if (const std::string earlier = row->get(0, 2);
      !earlier.empty() && c.type != "typing_indicator") {
    int64_t since = 0;
    const bool first = !ParseInt64(d.Header(kOrderHeldHeader), &since);
    if (first) since = EpochMillis();
    M().order_waits.Inc();
    if (first) {
      LOG(INFO) << ctx << "event=held_for_order earlier=" << earlier;
    } else {
      VLOG(1) << ctx << "event=held_for_order earlier=" << earlier
              << " held_ms=" << EpochMillis() - since;
    }
    const int64_t due_ms = row->get_int(0, 3);
    Disposition wait = Disposition::Delay("waiting for the conversation's earlier send " + earlier,
                                          std::clamp<int64_t>(due_ms + 50, 250, 5000));
    wait.headers[kOrderHeldHeader] = std::to_string(since);
    return wait;
  }
  if (int64_t since = 0; ParseInt64(d.Header(kOrderHeldHeader), &since)) {
    M().order_held.Observe(std::max<int64_t>(0, EpochMillis() - since) / 1000.0);
  }
  return std::nullopt;
}

// 2. Meta's customer-service window and message limits, and a user's stop of marketing messages:
// refused here, without a call. A paused number's sends wait.
std::optional<Disposition> Sender::RefuseWithoutCall(Command& c, const Delivery& d, int64_t now,
                                                     const LogCtx& ctx) {
  if (c.type == "template") {
    // The catalog of the number's WABA (templates.h): a template not APPROVED in its language fails
    // here, without a call; the catalog's category, when it knows one, is the one that counts.
    auto verdict = templates_.Check(c.pnid, c.template_name, c.template_language);
    if (!verdict.ok()) return DispositionFor(verdict.status());
    if (!verdict->allowed) return Fail(c, d, verdict->code, verdict->reason, false);
    if (!verdict->category.empty()) c.template_category = verdict->category;
  }
  if (c.type == "template" && c.template_category == "marketing") {
    auto pref = db_.Exec(kMarketingStopped, {c.pnid, c.to});
    if (!pref.ok()) return DispositionFor(pref.status());
    if (!pref->empty()) {
      return Fail(c, d, kMarketingStoppedCode,
                  "the user stopped marketing messages (" + pref->get(0, 0) +
                      "): a marketing template is not sent until they resume",
                  false);
    }
  }
  if (c.type != "template" && c.last_inbound_at > 0 && now - c.last_inbound_at > kWindowSeconds) {
    return Fail(c, d, kWindowClosedCode,
                "outside the 24-hour customer service window: the recipient last wrote " +
                    std::to_string((now - c.last_inbound_at) / 3600) +
                    " h ago (a template is needed)",
                false);
  }
  // A number the registry has paused (an account problem, a person's decision): its sends wait,
  // uncalled and uncounted, and go when it is active again. Nothing is dropped.
  if (c.type != "typing_indicator") {
    if (KnownNumber n = Number(c.pnid); n.paused) return WaitWhilePaused(ctx, c.pnid, n);
  }
  return std::nullopt;
}

// The request (after the content guard) and the number's own Graph token and API version.
std::optional<Disposition> Sender::PrepareCall(const Command& c, const Delivery& d,
                                               const LogCtx& ctx, Attempt* a) {
  // The content guard: the last look at the text before it leaves (a list of services never goes).
  std::string guarded;
  if (settings_.guard) {
    GuardOutcome g;
    guarded = settings_.guard->CheckCommand(d.body, &g);
    if (g.changed) {
      std::string rules;
      for (const auto& r : g.rules) rules += (rules.empty() ? "" : ",") + r;
      (g.replaced ? M().guard_replaced : M().guard_sanitised).Inc();
      LOG(WARNING) << ctx
                   << "event=content_guard action=" << (g.replaced ? "replaced" : "sanitised")
                   << " rules=" << rules;
    }
  }
  auto request = BuildSendRequest(
      guarded.empty() ? d.body : guarded, CallbackFor(c.dedupe),
      {settings_.media_base_url, settings_.link_secret, a->now + settings_.link_ttl.count()});
  if (!request.ok()) return Fail(c, d, kInvalidParameterCode, request.status().message(), false);
  // The number's own Graph token and API version (issue 27). A token that cannot be resolved holds
  // the number's sends back, uncalled and uncounted as attempts, like a pause: never another's
  // token.
  auto graph = graph_numbers_.For(c.pnid);
  if (!graph.ok() && graph.status().code() == Code::kUnavailable)
    return DispositionFor(graph.status());
  if (!graph.ok()) {
    M().graph_token_unresolved.Inc();
    LOG_EVERY_N(WARNING, 100) << ctx << "event=graph_token_unresolved phone_number_id=" << c.pnid
                              << " error=\"" << graph.status().message()
                              << "\" (logged every 100th)";
    return Unpaced(
        Disposition::Delay(graph.status().message() + " (business number " + c.pnid + ")",
                           settings_.paused_recheck.count()));
  }
  a->body = std::move(*request);
  a->base_url = graph->base_url;
  a->token = graph->token;
  return std::nullopt;
}

// 3. Pacing: the recipient's slot, then the number's, reserved once and carried in headers.
std::optional<Disposition> Sender::PaceSend(const Command& c, const Delivery& d, const Attempt& a) {
  if (!settings_.pacing.enabled || a.typing) return std::nullopt;
  const Bucket number{"number:" + c.pnid, NumberRate(c.pnid), settings_.pacing.number_burst};
  const Bucket pair{"pair:" + c.pnid + ":" + c.to, settings_.pacing.pair_rate,
                    settings_.pacing.pair_burst};
  return Pace(d, pair, number);
}

// 4. Claim the attempt (another replica may hold the same command). A bot's reply to a
// conversation a person took over is cancelled here, never sent.
std::optional<Disposition> Sender::Claim(const Command& c, const Delivery& d, const LogCtx& ctx,
                                         Attempt* a) {
  auto claimed =
      db_.Exec(kClaim, {c.dedupe, c.conversation, c.pnid, c.to, c.correlation,
                        std::to_string(settings_.reconcile.count()), c.received_at, c.author});
  if (!claimed.ok()) return DispositionFor(claimed.status());
  if (claimed->empty() && c.author == "bot" && !c.conversation.empty()) {
    auto owner = db_.Exec(kOwner, {c.dedupe, c.conversation});
    if (!owner.ok()) return DispositionFor(owner.status());
    if (!owner->empty() && owner->get(0, 0) != "bot") {
      // A person (or another app) took the conversation over while this reply waited: never sent.
      const std::string why =
          "the conversation is owned by " + owner->get(0, 0) + ": the bot's reply is cancelled";
      Status s =
          db_.Exec(kCancelForOwner, {c.dedupe, c.conversation, c.pnid, c.to, c.correlation, why})
              .status();
      if (!s.ok()) return DispositionFor(s);
      M().cancelled_for_owner.Inc();
      LOG(INFO) << ctx << "event=send_cancelled reason=owner owner=" << owner->get(0, 0);
      return Disposition::Ack();
    }
  }
  if (claimed->empty()) {
    // Settled, or in flight elsewhere, since the lookup.
    auto now_row = db_.Exec(kLookup, {c.dedupe});
    if (!now_row.ok()) return DispositionFor(now_row.status());
    M().duplicate.Inc();
    if (now_row->empty() || Settled(now_row->get(0, 0))) return Disposition::Ack();
    double age = std::stod(now_row->get(0, 1));
    return Unpaced(Disposition::Delay("another attempt is in flight",
                                      Millis(settings_.reconcile.count() - age)));
  }
  a->previous = claimed->get(0, 1);
  if (MayHaveReachedMeta(a->previous))
    LOG(WARNING) << ctx << "event=resend_after_reconcile previous=" << a->previous;
  a->first_attempt_at = claimed->get_int(0, 2);
  a->give_up_at = GiveUpAt(c.type == "template", c.last_inbound_at, a->first_attempt_at,
                           settings_.send_deadline, &a->give_up_why);
  a->attempts = d.attempt + 1;
  return std::nullopt;
}

// 5. The call: the read receipt with the typing indicator first (on a first claim), then the send.
Result<HttpResponse> Sender::CallGraph(const Command& c, const Attempt& a, const LogCtx& ctx) {
  HttpClientRequest req;
  req.method = "POST";
  req.url = a.base_url + "/" + c.pnid + "/messages";
  req.headers["Authorization"] = "Bearer " + a.token;
  req.headers["X-Correlation-Id"] = c.correlation;
  req.timeout = settings_.graph.timeout;
  if (!c.mark_read.empty() && a.previous == "new") {
    // The user's message marked read with "typing…", just before the answer, on this first claim
    // only (a retry or a resend after reconcile shows no indicator after the fact). Best effort:
    // it is not retried and does not hold the send.
    req.body = ReadReceiptRequest(c.mark_read);
    auto receipt = HttpFetch(req);
    if (receipt.ok() && receipt->status / 100 == 2) {
      M().read_receipt.Inc();
    } else {
      M().read_receipt_failed.Inc();
      LOG(WARNING) << ctx << "event=read_receipt_failed message_id=" << c.mark_read << " error="
                   << (receipt.ok() ? "HTTP " + std::to_string(receipt->status)
                                    : receipt.status().ToString());
    }
  }
  // A marketing template goes through the Marketing Messages API, everything else to /messages.
  req.url =
      a.base_url + "/" + c.pnid + "/" + SendEndpoint(c.type == "template", c.template_category);
  req.body = a.body;
  auto started = std::chrono::steady_clock::now();
  auto resp = HttpFetch(req);
  M().graph.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  return resp;
}

// No answer: Meta may have taken it. Reconciled before any resend.
Disposition Sender::SettleNoAnswer(const Command& c, const Attempt& a, const Status& error,
                                   const LogCtx& ctx) {
  // No answer: Meta may have taken it. Reconciled before any resend (a row left 'sending' by a
  // failed mark is reconciled the same way).
  MarkAfterAttempt(db_, kMarkUncertain, {c.dedupe, error.ToString()}, ctx);
  M().uncertain.Inc();
  LOG(WARNING) << ctx << "event=graph_no_answer error=" << error.ToString();
  // Given up: a row left 'uncertain' by a failed mark stays counted in doubt until a status
  // webhook settles it; failing the delivery instead would send it again after reconcile.
  if (a.typing) {  // by the time it could go again, the reply is there
    MarkAfterAttempt(db_, kMarkGivenUp, {c.dedupe}, ctx);
    return Disposition::Ack();
  }
  const int64_t reconcile_ms = settings_.reconcile.count() * 1000;
  if (a.OutOfTime(RetryDelayMs(a.attempts, reconcile_ms))) {
    MarkAfterAttempt(db_, kMarkGivenUp, {c.dedupe}, ctx);
    return Disposition::DeadLetter(
        "no answer from Meta on the last attempt (outcome unknown, reconciled by status "
        "webhooks): " +
        error.ToString() + a.BudgetSpent());
  }
  return Unpaced(Disposition::Retry(error.ToString(), reconcile_ms));
}

// A 2xx: Meta took it. Recorded (Record).
Disposition Sender::SettleAccepted(const Command& c, const Delivery& d, const HttpResponse& resp,
                                   const LogCtx& ctx) {
  auto wamid = ParseSendResponse(resp.body);
  std::string id = wamid.ok() ? *wamid : "";
  (c.type == "typing_indicator" ? M().read_receipt : M().sent).Inc();
  if (const double received = c.received_at.empty() ? 0 : ParseRfc3339(c.received_at);
      received > 0) {
    const double now_s =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    M().webhook_to_send.Observe(std::max(0.0, now_s - received));
  }
  LOG(INFO) << ctx << "event=sent wamid=" << id << " to=" << Personal(c.to)
            << " attempt=" << d.attempt + 1;
  return Record(c, d, id);
}

// Meta refused it: failed for good, retried (paced down for a rate limit), or held with its paused
// number.
Disposition Sender::SettleRefused(const Command& c, const Delivery& d, const Attempt& a,
                                  const HttpResponse& resp, const LogCtx& ctx) {
  GraphError err = ParseGraphError(resp.status, resp.body);
  const GraphErrorInfo* known = KnownGraphError(err.code);
  GraphErrors(err.code, known != nullptr).Inc();
  std::string reason = "graph " + std::to_string(err.code) + ": " + err.message;
  if (known) reason += " (" + std::string(known->meaning) + ")";
  if (known && known->account_problem) {
    // The business account itself (payment, policy, token, registration): every send fails
    // until a person acts.
    LOG(ERROR) << ctx << "event=account_problem code=" << err.code << " meaning=\""
               << known->meaning << "\"";
  }
  if (err.code == kMarketingStoppedCode) {
    Status p = db_.Exec(kSetMarketing, {c.pnid, c.to, std::string("true"), std::to_string(a.now),
                                        std::string("131050")})
                   .status();
    if (!p.ok()) return DispositionFor(p);
  }
  if (PausesNumber(err.code) && !a.typing) {
    // Meta refuses the number itself: it is paused (by this send or another since) and this send
    // waits with the others instead of failing. A number the registry does not hold cannot be
    // resumed by anyone: its send fails as the table says.
    auto paused = db_.Exec(kPauseNumber, {c.pnid, reason});
    if (!paused.ok()) return DispositionFor(paused.status());
    if (!paused->empty()) {
      PausedNumbers(err.code).Inc();
      LOG(ERROR) << ctx << "event=number_paused_by_meta phone_number_id=" << c.pnid << " reason=\""
                 << reason << "\" (its sends wait until a person sets it active: PUT /v1/numbers/"
                 << c.pnid << ")";
    }
    numbers_.erase(c.pnid);
    if (KnownNumber n = Number(c.pnid); n.paused) {
      // Unmarked ('sending'), the send waits out reconcile after the resume: later, not twice.
      MarkAfterAttempt(db_, kMarkRetrying, {c.dedupe, std::to_string(err.code), reason}, ctx);
      return WaitWhilePaused(ctx, c.pnid, n);
    }
  }
  if (err.klass == GraphErrorClass::kPermanent || a.typing)
    return Fail(c, d, err.code, reason, false);
  int64_t min_delay_ms = known ? known->min_retry_ms : 0;
  if (err.klass == GraphErrorClass::kRateLimited) {
    // Meta asks for 4^n s between retries on a pair-rate error; a throughput error costs the
    // number a second of sends. Either way the bucket itself slows down, for every replica.
    bool pair_rate = err.code == 131056;
    double backoff = pair_rate ? std::pow(4.0, d.attempt + 1) : 1.0;
    min_delay_ms = Millis(backoff);
    if (settings_.pacing.enabled) {
      Bucket bucket = pair_rate
                          ? Bucket{"pair:" + c.pnid + ":" + c.to, settings_.pacing.pair_rate, 1}
                          : Bucket{"number:" + c.pnid, NumberRate(c.pnid), 1};
      Status p = pacer_.Penalize(bucket, backoff);
      if (!p.ok()) LOG(WARNING) << ctx << "event=penalize_failed error=" << p.ToString();
    }
  }
  if (a.OutOfTime(RetryDelayMs(a.attempts, min_delay_ms)))
    return Fail(c, d, err.code, reason + a.BudgetSpent(), true);
  // Meta refused it: a row left 'sending' by a failed mark only makes the retry wait out reconcile.
  MarkAfterAttempt(db_, kMarkRetrying, {c.dedupe, std::to_string(err.code), reason}, ctx);
  M().retried.Inc();
  LOG(WARNING) << ctx << "event=send_retry class=" << GraphErrorClassName(err.klass)
               << " code=" << err.code << " attempt=" << d.attempt + 1;
  return Unpaced(Disposition::Retry(reason, min_delay_ms, err.code));
}

Sender::KnownNumber Sender::Number(const std::string& phone_number_id) {
  const auto now = std::chrono::steady_clock::now();
  auto it = numbers_.find(phone_number_id);
  if (it != numbers_.end() && now - it->second.read_at < settings_.pacing.rates_ttl)
    return it->second;
  KnownNumber known{settings_.pacing.number_rate, false, now, "", ""};
  auto r = db_.Exec(kNumberThroughput, {phone_number_id});
  if (r.ok() && !r->empty()) {
    known.rate = static_cast<double>(r->get_int(0, 0));
    known.paused = r->get(0, 1) == "paused";
    known.paused_reason = r->get(0, 2);
    known.app = r->get(0, 3);
  } else if (!r.ok()) {
    // The registry cannot be read now: what was known, else the default; looked up again next time.
    LOG_EVERY_N(WARNING, 100) << "service=outbound event=number_unread error="
                              << r.status().ToString();
    return it != numbers_.end() ? it->second : known;
  }
  if (numbers_.size() > 10000) numbers_.clear();  // bounded: a deployment serves far fewer numbers
  return numbers_[phone_number_id] = known;
}

Disposition Sender::WaitWhilePaused(const LogCtx& ctx, const std::string& phone_number_id,
                                    const KnownNumber& number) {
  M().number_paused.Inc();
  const std::string why = number.paused_reason.empty() ? "" : ": " + number.paused_reason;
  LOG_EVERY_N(WARNING, 100) << ctx << "event=number_paused phone_number_id=" << phone_number_id
                            << " reason=\"" << number.paused_reason << "\"";
  return Unpaced(Disposition::Delay(
      "the business number " + phone_number_id + " is paused in the numbers registry" + why,
      settings_.paused_recheck.count()));
}

std::optional<Disposition> Sender::Pace(const Delivery& d, const Bucket& pair,
                                        const Bucket& number) {
  const int64_t in_thread_ms = ShortestDelayMs(queues::kOutboundSend);
  int64_t slot = 0;
  std::map<std::string, std::string> reserved;
  for (const auto& [header, bucket] :
       {std::make_pair(kPairSlotHeader, &pair), std::make_pair(kNumberSlotHeader, &number)}) {
    int64_t at = 0;
    if (!ParseInt64(d.Header(header), &at)) {
      auto wait = pacer_.Reserve(*bucket);
      if (!wait.ok()) return DispositionFor(wait.status());
      at = EpochMillis() + Millis(*wait);
      reserved[header] = std::to_string(at);
    }
    slot = std::max(slot, at);
    int64_t wait_ms = at - EpochMillis();
    if (wait_ms > in_thread_ms) {
      M().paced.Inc();
      Disposition delay = Disposition::Delay("paced by " + bucket->key, wait_ms);
      delay.headers = std::move(reserved);
      delay.headers[kOrderHeldHeader] = "";  // its turn came (measured); now its slot
      return delay;
    }
  }
  // Within the shortest delay queue of the slot: wait here (at most that long).
  int64_t wait_ms = slot - EpochMillis();
  if (wait_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
  return std::nullopt;
}

Disposition Sender::HandleStatus(const Delivery& d) {
  LogCtx ctx = CommandContext(d, "outbound.status");
  if (auto invalid = RefuseInvalid(d, schemas_, ctx)) return *invalid;
  rapidjson::Document doc;
  doc.Parse(d.body.c_str(), d.body.size());
  // Through another Meta app than its number's: Meta never sends that, so whoever signed it holds
  // another business's app secret. Counted and dropped, never applied (an envelope without an app
  // is from an older ingress: the default app).
  const std::string app = JsonStr(doc, "app"), pnid = JsonStr(doc, "phone_number_id");
  if (!app.empty()) {
    const KnownNumber number = Number(pnid);
    if (!number.app.empty() && number.app != app) {
      M().wrong_app.Inc();
      LOG_EVERY_N(WARNING, 100) << ctx << "event=wrong_app_update phone_number_id=" << pnid
                                << " app=" << app << " number_app=" << number.app;
      return Disposition::Ack();
    }
  }
  const std::string schema = JsonStr(doc, "schema");
  if (in_batch_ && (schema == "inbound.preference" || schema == "inbound.template")) {
    in_batch_->alone = true;  // with transactions of their own
    return Disposition::Ack();
  }
  if (schema == "inbound.preference") return ApplyPreference(db_, doc, settings_.now());
  if (schema == "inbound.template") return templates_.Apply(d.body);
  if (JsonStr(doc, "schema") == "inbound.error") {
    M().errors.Inc();
    LOG(WARNING) << ctx << "event=value_error code=" << JsonStr(doc["error"], "code")
                 << " title=" << JsonStr(doc["error"], "title");
    return Disposition::Ack();
  }
  const auto& st = doc["status"];
  std::string wamid = JsonStr(st, "id"), status = JsonStr(st, "status");
  std::string dedupe = DedupeKeyFromCallback(JsonStr(st, "biz_opaque_callback_data"));
  std::optional<std::string> code, reason;
  if (st.HasMember("errors") && st["errors"].IsArray() && !st["errors"].Empty()) {
    code = JsonStr(st["errors"][0], "code");
    reason = JsonStr(st["errors"][0], "title");
  }
  const std::optional<std::string> key =
      dedupe.empty() ? std::nullopt : std::optional<std::string>(dedupe);
  // A database failure is no fault of the status: it waits in the retry tiers. While the database
  // is away altogether the wait is not counted against the status's attempts: however long the
  // outage, the status is applied when the database returns (parked, it could no longer settle
  // a send in doubt, which would then be sent again).
  auto retry = [&](const Status& s) {
    if (in_batch_) {
      in_batch_->abandon = true;  // the transaction is lost: each alone says what to do
      return Disposition::Ack();
    }
    M().status_retried.Inc();
    const std::string why = "applying status " + status + " of " + wamid + ": " + s.ToString();
    if (s.code() == Code::kUnavailable) return Disposition::Delay(why, 5000);
    return Disposition::Retry(why);
  };
  auto r = db_.Exec(kApplyStatus, {wamid, status, code, reason, key});
  if (!r.ok() && r.status().code() == Code::kRejected) {
    auto holder = db_.Exec(kWamidHolder, {wamid, key});
    if (holder.ok() && !holder->empty()) {
      M().wamid_conflicts.Inc();
      LOG(ERROR) << ctx << "event=wamid_conflict wamid=" << wamid
                 << " held_by=" << holder->get(0, 0) << " status_for=" << dedupe;
      return Disposition::DeadLetter("integrity error: status " + status + " for send " + dedupe +
                                     " names wamid " + wamid + ", which send " + holder->get(0, 0) +
                                     " already holds");
    }
  }
  if (!r.ok()) return retry(r.status());
  // An agent's send this status concerns, told to its conversation where it now stands (a status
  // that moved nothing tells it again: the telling of an earlier delivery may have failed).
  std::string agent_send = r->affected && ByAgent(r->get(0, 5)) ? r->get(0, 0) : "";
  if (!r->affected) {
    auto known = db_.Exec(kKnownSend, {wamid, key});
    if (!known.ok()) return retry(known.status());
    if (!known->empty() && ByAgent(known->get(0, 1))) agent_send = known->get(0, 0);
    if (known->empty()) {
      // No send holds this wamid: Meta's status came before convoy wrote down Meta's answer (the
      // record is in flight, or being retried), or the message is not convoy's. It waits for the
      // record as long as an uncertain send waits for its status, then is let go.
      int64_t since = 0;
      if (!ParseInt64(d.Header(kStatusWaitingHeader), &since)) since = EpochMillis();
      const int64_t waited = EpochMillis() - since;
      if (waited < static_cast<int64_t>(settings_.reconcile.count()) * 1000) {
        M().status_waiting.Inc();
        Disposition wait =
            Disposition::Delay("no send holds wamid " + wamid + " yet: waiting for its record",
                               std::max<int64_t>(1000, waited));
        wait.headers[kStatusWaitingHeader] = std::to_string(since);
        return wait;
      }
      M().status_unknown.Inc();
      LOG(WARNING) << ctx << "event=status_of_unknown_send status=" << status << " wamid=" << wamid
                   << " waited_ms=" << waited;
      return Disposition::Ack();
    }
  }
  if (st.HasMember("pricing") && st["pricing"].IsObject()) {
    // What Meta bills for the message, from whichever status carries it (even one too late to
    // move the status).
    rapidjson::StringBuffer b;
    rapidjson::Writer<rapidjson::StringBuffer> w(b);
    st["pricing"].Accept(w);
    auto p = db_.Exec(kRecordPricing, {wamid, std::string(b.GetString(), b.GetSize()), key});
    if (!p.ok()) return retry(p.status());
    if (!p->empty() && p->get(0, 0) == "t") {
      if (in_batch_) {
        auto pricing = std::make_shared<rapidjson::Document>();
        pricing->CopyFrom(st["pricing"], pricing->GetAllocator());
        in_batch_->after.push_back(
            [tenant = p->get(0, 1), pricing] { CountPriced(tenant, *pricing); });
      } else {
        CountPriced(p->get(0, 1), st["pricing"]);
      }
    }
  }
  if (in_batch_ && r->affected && status == "failed") {
    in_batch_->abandon = true;  // tells the conversation, may stop marketing: alone
    return Disposition::Ack();
  }
  const bool applied = r->affected;
  auto report = [applied, ctx, status, wamid] {
    (applied ? M().statuses : M().stale).Inc();
    LOG(INFO) << ctx << "event=status status=" << status << " wamid=" << wamid
              << " applied=" << applied;
  };
  if (in_batch_) {
    in_batch_->after.push_back(std::move(report));
    in_batch_->agent_send = agent_send;
    return Disposition::Ack();
  }
  report();
  if (r->affected && status == "failed" && code && *code == std::to_string(kMarketingStoppedCode)) {
    int64_t at = std::atoll(JsonStr(st, "timestamp").c_str());
    Status p = db_.Exec(kSetMarketing,
                        {r->get(0, 3), r->get(0, 4), std::string("true"),
                         std::to_string(at > 0 ? at : settings_.now()), std::string("131050")})
                   .status();
    if (!p.ok()) return retry(p);
  }
  if (r->affected && status == "failed") {
    // Meta took the message but could not deliver it: the conversation hears of it as of any
    // failure.
    Delivery send;
    send.headers = {{headers::kDedupeKey, r->get(0, 0)},
                    {headers::kConversationKey, r->get(0, 1)},
                    {headers::kCorrelationId, r->get(0, 2)}};
    Status e =
        Emit("outbound.failed",
             R"("code":)" + std::to_string(code ? std::atoi(code->c_str()) : 0) + R"(,"reason":")" +
                 JsonEscape(reason.value_or("failed after delivery to Meta")) + "\"",
             send);
    if (!e.ok()) return Disposition::Retry("could not emit outbound.failed: " + e.ToString());
  }
  if (!agent_send.empty()) {
    Status a = EmitAgentStatus(agent_send);
    if (!a.ok())
      return Disposition::Retry("could not emit outbound.status_changed: " + a.ToString());
  }
  return Disposition::Ack();
}

std::vector<Disposition> Sender::HandleStatusBatch(const std::vector<Delivery>& batch) {
  std::vector<Disposition> out;
  if (batch.size() < 2) {
    for (const auto& d : batch) out.push_back(HandleStatus(d));
    return out;
  }
  out.assign(batch.size(), Disposition::Ack());
  std::vector<InBatch> each(batch.size());
  auto tx = PgTransaction::Begin(db_);
  Status s = tx.status();
  bool together = s.ok();
  for (size_t i = 0; together && i < batch.size(); ++i) {
    in_batch_ = &each[i];
    out[i] = HandleStatus(batch[i]);
    in_batch_ = nullptr;
    together = !each[i].abandon;
  }
  if (together) {
    s = tx->Commit();
    together = s.ok();
  }
  if (!together) {
    if (tx.ok()) tx->Rollback();  // before the connection is used again, one delivery at a time
    M().status_batches_alone.Inc();
    LOG(INFO) << "service=outbound handler=outbound.status event=status_batch_alone size="
              << batch.size() << (s.ok() ? "" : " error=" + s.ToString());
    for (size_t i = 0; i < batch.size(); ++i) out[i] = HandleStatus(batch[i]);
    return out;
  }
  M().status_batches.Inc();
  for (size_t i = 0; i < batch.size(); ++i) {
    for (auto& f : each[i].after) f();
    if (each[i].alone) {
      out[i] = HandleStatus(batch[i]);
    } else if (!each[i].agent_send.empty()) {
      Status a = EmitAgentStatus(each[i].agent_send);
      if (!a.ok())
        out[i] = Disposition::Retry("could not emit outbound.status_changed: " + a.ToString());
    }
  }
  return out;
}

}  // namespace convoy::outbound
