#include "sender.h"

#include <glog/logging.h>
#include <rapidjson/document.h>

#include "convoy/events.h"
#include "convoy/log.h"
#include "convoy/rapidjson_util.h"
#include "convoy/metrics.h"
#include "convoy/topology.h"
#include "graph.h"

namespace convoy::outbound {

namespace {

constexpr const char* kClaim =
    "INSERT INTO outbound_messages (dedupe_key, conversation_key, phone_number_id, recipient, status, attempts, "
    "correlation_id) VALUES ($1, $2, $3, $4, 'sending', 1, $5) "
    "ON CONFLICT (dedupe_key) DO UPDATE SET attempts = outbound_messages.attempts + 1, status = 'sending', "
    "updated_at = now() WHERE outbound_messages.status IN ('queued', 'retrying', 'sending') RETURNING attempts";
constexpr const char* kMarkSent =
    "UPDATE outbound_messages SET status = 'sent', wamid = $2, error_code = NULL, error_reason = NULL, "
    "updated_at = now() WHERE dedupe_key = $1";
constexpr const char* kMarkRetrying =
    "UPDATE outbound_messages SET status = 'retrying', error_code = $2::int, error_reason = $3, updated_at = now() "
    "WHERE dedupe_key = $1";
constexpr const char* kMarkFailed =
    "UPDATE outbound_messages SET status = 'failed', error_code = $2::int, error_reason = $3, updated_at = now() "
    "WHERE dedupe_key = $1";
// Statuses only move forward: sent < delivered < read; failed ends it. Duplicates are no-ops.
constexpr const char* kApplyStatus =
    "UPDATE outbound_messages SET status = $2, error_code = coalesce($3::int, error_code), "
    "error_reason = coalesce($4, error_reason), updated_at = now() WHERE wamid = $1 AND "
    "(CASE status WHEN 'sent' THEN 2 WHEN 'delivered' THEN 3 WHEN 'read' THEN 4 WHEN 'failed' THEN 5 ELSE 1 END) < "
    "(CASE $2 WHEN 'sent' THEN 2 WHEN 'delivered' THEN 3 WHEN 'read' THEN 4 WHEN 'failed' THEN 5 ELSE 0 END)";

struct Metrics {
  Registry& r = DefaultRegistry();
  Counter& sent = Result("sent");
  Counter& duplicate = Result("duplicate");
  Counter& failed = Result("failed");
  Counter& retried = Result("retry");
  Counter& invalid = Result("invalid");
  Counter& statuses = r.GetCounter("convoy_outbound_statuses_total", "Status webhooks by effect.", "effect=\"applied\"");
  Counter& stale = r.GetCounter("convoy_outbound_statuses_total", "Status webhooks by effect.", "effect=\"ignored\"");
  Counter& errors = r.GetCounter("convoy_outbound_value_errors_total", "Value-level webhook errors received.");
  Histogram& graph = r.GetHistogram("convoy_outbound_graph_seconds", "Graph API send call latency.");
  Counter& Result(const char* what) {
    return r.GetCounter("convoy_outbound_sends_total", "Send commands by result.", std::string("result=\"") + what + "\"");
  }
};
Metrics& M() {
  static Metrics* m = new Metrics();
  return *m;
}

}  // namespace

Sender::Sender(PgConnection& db, const SchemaRegistry& schemas, GraphSettings graph, EventPublisher events)
    : db_(db), schemas_(schemas), graph_(std::move(graph)), events_(std::move(events)) {
  M();
}

Status Sender::Emit(const std::string& schema, const std::string& fields, const Delivery& d) {
  return events_ ? events_(EventFor(d, schema, fields)) : Status::Ok();
}

Disposition Sender::HandleSend(const Delivery& d) {
  Status valid = schemas_.Validate(d.body);
  LogCtx ctx("outbound.send", d.Header(headers::kCorrelationId), d.Header(headers::kConversationKey),
             d.Header(headers::kDedupeKey));
  if (!valid.ok()) {
    M().invalid.Inc();
    LOG(WARNING) << ctx << "event=invalid_command reason=" << valid.message();
    return Disposition::DeadLetter(valid.ToString());
  }
  rapidjson::Document cmd;
  cmd.Parse(d.body.c_str(), d.body.size());
  std::string dedupe = JsonStr(cmd, "dedupe_key"), pnid = JsonStr(cmd, "phone_number_id"), to = JsonStr(cmd, "to");
  std::string correlation = JsonStr(cmd, "correlation_id"), conversation = JsonStr(cmd, "conversation_key");
  ctx = LogCtx("outbound.send", correlation, conversation, dedupe);
  auto claim = db_.Exec(kClaim, {dedupe, conversation, pnid, to, correlation});
  if (!claim.ok()) return DispositionFor(claim.status());
  if (claim->empty()) {
    M().duplicate.Inc();
    LOG(INFO) << ctx << "event=already_sent";
    return Disposition::Ack();
  }
  auto request = BuildSendRequest(d.body);
  if (!request.ok()) return DispositionFor(request.status());
  HttpClientRequest req;
  req.method = "POST";
  req.url = graph_.base_url + "/" + pnid + "/messages";
  req.headers["Authorization"] = "Bearer " + graph_.token;
  req.headers["X-Correlation-Id"] = correlation;
  req.body = *request;
  req.timeout = graph_.timeout;
  auto started = std::chrono::steady_clock::now();
  auto resp = HttpFetch(req);
  M().graph.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  if (!resp.ok()) {
    db_.Exec(kMarkRetrying, {dedupe, std::nullopt, resp.status().ToString()});
    M().retried.Inc();
    LOG(WARNING) << ctx << "event=graph_unreachable error=" << resp.status().ToString();
    return Disposition::Retry(resp.status().ToString());
  }
  if (resp->status / 100 == 2) {
    auto wamid = ParseSendResponse(resp->body);
    std::string id = wamid.ok() ? *wamid : "";
    Status s = db_.Exec(kMarkSent, {dedupe, id.empty() ? std::nullopt : std::optional<std::string>(id)}).status();
    if (!s.ok()) LOG(ERROR) << ctx << "event=log_update_failed error=" << s.ToString();
    M().sent.Inc();
    LOG(INFO) << ctx << "event=sent wamid=" << id << " to=" << to;
    Status e = Emit("outbound.sent", R"("wamid":")" + JsonEscape(id.empty() ? "unknown" : id) + "\"", d);
    if (!e.ok()) LOG(WARNING) << ctx << "event=emit_failed error=" << e.ToString();
    return Disposition::Ack();
  }
  GraphError err = ParseGraphError(resp->status, resp->body);
  std::string reason = "graph " + std::to_string(err.code) + ": " + err.message;
  if (err.klass == GraphErrorClass::kPermanent) {
    db_.Exec(kMarkFailed, {dedupe, std::to_string(err.code), reason});
    M().failed.Inc();
    LOG(WARNING) << ctx << "event=send_failed code=" << err.code << " reason=" << err.message;
    Status e = Emit("outbound.failed",
                    R"("code":)" + std::to_string(err.code) + R"(,"reason":")" + JsonEscape(err.message) + "\"", d);
    if (!e.ok()) return Disposition::Retry("could not emit outbound.failed: " + e.ToString());
    return Disposition::Ack();
  }
  db_.Exec(kMarkRetrying, {dedupe, std::to_string(err.code), reason});
  M().retried.Inc();
  LOG(WARNING) << ctx << "event=send_retry class=" << GraphErrorClassName(err.klass) << " code=" << err.code;
  return Disposition::Retry(reason);
}

Disposition Sender::HandleStatus(const Delivery& d) {
  Status valid = schemas_.Validate(d.body);
  LogCtx ctx("outbound.status", d.Header(headers::kCorrelationId), d.Header(headers::kConversationKey),
             d.Header(headers::kDedupeKey));
  if (!valid.ok()) {
    LOG(WARNING) << ctx << "event=invalid_status reason=" << valid.message();
    return Disposition::DeadLetter(valid.ToString());
  }
  rapidjson::Document doc;
  doc.Parse(d.body.c_str(), d.body.size());
  if (JsonStr(doc, "schema") == "inbound.error") {
    M().errors.Inc();
    LOG(WARNING) << ctx << "event=value_error code=" << JsonStr(doc["error"], "code") << " title=" << JsonStr(doc["error"], "title");
    return Disposition::Ack();
  }
  const auto& st = doc["status"];
  std::string wamid = JsonStr(st, "id"), status = JsonStr(st, "status");
  std::optional<std::string> code, reason;
  if (st.HasMember("errors") && st["errors"].IsArray() && !st["errors"].Empty()) {
    code = JsonStr(st["errors"][0], "code");
    reason = JsonStr(st["errors"][0], "title");
  }
  auto r = db_.Exec(kApplyStatus, {wamid, status, code, reason});
  if (!r.ok()) return DispositionFor(r.status());
  (r->affected ? M().statuses : M().stale).Inc();
  LOG(INFO) << ctx << "event=status status=" << status << " wamid=" << wamid << " applied=" << r->affected;
  return Disposition::Ack();
}

}  // namespace convoy::outbound
