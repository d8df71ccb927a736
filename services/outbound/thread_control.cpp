#include "thread_control.h"

#include <glog/logging.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

#include "convoy/http.h"
#include "convoy/json.h"
#include "convoy/log.h"
#include "convoy/metrics.h"
#include "convoy/rapidjson_util.h"
#include "convoy/topology.h"
#include "graph.h"
#include "order_statements.h"

namespace convoy::outbound {

namespace {

// Where the command stands: its status, Graph's code and reason, and how old its attempt is (s).
constexpr const char* kLookup =
    "SELECT status, coalesce(error_code, 0), coalesce(error_reason, ''), "
    "coalesce(extract(epoch FROM clock_timestamp() - attempt_started_at)::float8, 1e9) "
    "FROM thread_controls WHERE dedupe_key = $1";
// Claims the call: a new row, or one whose last attempt Meta answered with a transient error.
constexpr const char* kClaim =
    "INSERT INTO thread_controls AS t (dedupe_key, conversation_key, phone_number_id, action, "
    "status, correlation_id, "
    "attempt_started_at) VALUES ($1, $2, $3, $4, 'calling', $5, clock_timestamp()) ON CONFLICT "
    "(dedupe_key) DO UPDATE "
    "SET status = 'calling', attempts = t.attempts + 1, attempt_started_at = clock_timestamp(), "
    "updated_at = now() "
    "WHERE t.status = 'retrying' RETURNING t.attempts, floor(extract(epoch FROM "
    "t.created_at))::bigint";
constexpr const char* kSettle =
    "UPDATE thread_controls SET status = $2, error_code = NULLIF($3, '0')::int, error_reason = "
    "NULLIF($4, ''), "
    "updated_at = now() WHERE dedupe_key = $1 AND status = 'calling'";
// A claim left 'calling' by a process that died mid-call: unknown, never called again.
constexpr const char* kAbandon =
    "UPDATE thread_controls SET status = 'unknown', error_reason = $2, updated_at = now() WHERE "
    "dedupe_key = $1 AND "
    "status = 'calling' AND attempt_started_at < clock_timestamp() - make_interval(secs => "
    "$3::float8)";

Counter& Calls(const std::string& action, const char* outcome) {
  // action is the schema's enum (three values), outcome one of five: bounded labels.
  return DefaultRegistry().GetCounter("convoy_outbound_thread_controls_total",
                                      "Meta thread_control calls (pass, release, take) by outcome.",
                                      "action=\"" + action + "\",outcome=\"" + outcome + "\"");
}

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct ThreadControl::Command {
  std::string dedupe, pnid, conversation, correlation, action, agent, partner, to;
};

std::string ThreadControlRequest(const std::string& command_json) {
  rapidjson::Document c;
  c.Parse(command_json.c_str(), command_json.size());
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  auto str = [&](const char* k, const std::string& v) {
    w.Key(k);
    w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
  };
  w.StartObject();
  str("messaging_product", "whatsapp");
  if (!JsonStr(c, "to").empty()) {
    str("to", JsonStr(c, "to"));
  } else {
    str("recipient", JsonStr(c, "recipient"));
  }
  const std::string action = JsonStr(c, "action");
  str("action", action);
  if (c.HasMember("metadata")) str("metadata", JsonStr(c, "metadata"));
  if (action == "pass" && !JsonStr(c, "target_role").empty()) {
    w.Key("control_pass");
    w.StartObject();
    str("target_role", JsonStr(c, "target_role"));
    w.EndObject();
  }
  w.EndObject();
  return b.GetString();
}

ThreadControl::ThreadControl(PgConnection& db, GraphNumbers& graph, ThreadControlSettings settings,
                             EventPublisher events)
    : db_(db), graph_(graph), settings_(settings), events_(std::move(events)) {}

Disposition ThreadControl::Tell(const Command& c, const Delivery& d, const std::string& outcome,
                                int code, const std::string& reason) {
  std::string fields = R"("action":")" + c.action + R"(","outcome":")" + outcome + "\"";
  if (code != 0) fields += R"(,"code":)" + std::to_string(code);
  if (!reason.empty()) fields += R"(,"reason":")" + JsonEscape(reason.substr(0, 2000)) + "\"";
  if (!c.agent.empty()) fields += R"(,"agent":")" + JsonEscape(c.agent) + "\"";
  fields += R"(,"partner_app_id":")" + JsonEscape(c.partner) + "\"";
  Status s = events_ ? events_(EventFor(d, "outbound.thread_controlled", fields)) : Status::Ok();
  if (!s.ok())
    return Disposition::Retry("could not emit outbound.thread_controlled: " + s.ToString());
  return Disposition::Ack();
}

Disposition ThreadControl::Handle(const Delivery& d) {
  rapidjson::Document cmd;
  cmd.Parse(d.body.c_str(), d.body.size());
  Command c;
  c.dedupe = JsonStr(cmd, "dedupe_key");
  c.pnid = JsonStr(cmd, "phone_number_id");
  c.conversation = JsonStr(cmd, "conversation_key");
  c.correlation = JsonStr(cmd, "correlation_id");
  c.action = JsonStr(cmd, "action");
  c.agent = JsonStr(cmd, "agent");
  c.partner = JsonStr(cmd, "partner_app_id");
  c.to = JsonStr(cmd, "to").empty() ? JsonStr(cmd, "recipient") : JsonStr(cmd, "to");
  const LogCtx ctx("outbound.send", c.correlation, c.conversation, c.dedupe);

  // 1. Settled already (a redelivery, or a publish of the outcome that failed): told again.
  auto row = db_.Exec(kLookup, {c.dedupe});
  if (!row.ok()) return DispositionFor(row.status());
  const double wait_s = std::chrono::duration<double>(settings_.timeout).count() + 5;
  if (!row->empty()) {
    const std::string status = row->get(0, 0);
    if (status == "done" || status == "failed" || status == "unknown") {
      return Tell(c, d, status, static_cast<int>(row->get_int(0, 1)), row->get(0, 2));
    }
    if (status == "calling") {
      // Another attempt is calling now, or died calling: its outcome cannot be learned.
      auto abandoned =
          db_.Exec(kAbandon, {c.dedupe,
                              "the process calling thread_control stopped before Meta answered "
                              "(outcome unknown; never called again)",
                              std::to_string(wait_s)});
      if (!abandoned.ok()) return DispositionFor(abandoned.status());
      if (abandoned->affected == 0) {
        return Disposition::Delay(
            "another attempt is calling thread_control",
            static_cast<int64_t>((wait_s - std::stod(row->get(0, 3))) * 1000) + 100);
      }
      Calls(c.action, "unknown").Inc();
      LOG(WARNING) << ctx << "event=thread_control_abandoned action=" << c.action;
      return Tell(c, d, "unknown", 0,
                  "the process calling thread_control stopped before Meta answered");
    }
  }
  // 2. Its place among the conversation's sends.
  auto earlier = db_.Exec(kEarlierThreadControl, {c.dedupe});
  if (!earlier.ok()) return DispositionFor(earlier.status());
  if (!earlier->empty()) {
    LOG(INFO) << ctx << "event=held_for_order earlier=" << earlier->get(0, 0);
    return Disposition::Delay("waiting for the conversation's earlier send " + earlier->get(0, 0),
                              std::clamp<int64_t>(earlier->get_int(0, 1) + 50, 250, 5000));
  }
  // 3. The number's own token, never another's (as sends).
  auto graph = graph_.For(c.pnid);
  if (!graph.ok()) {
    if (graph.status().code() == Code::kUnavailable) return DispositionFor(graph.status());
    LOG_EVERY_N(WARNING, 100) << ctx << "event=graph_token_unresolved phone_number_id=" << c.pnid;
    return Disposition::Delay(graph.status().message() + " (business number " + c.pnid + ")",
                              30000);
  }
  // 4. The claim: one call at a time, never two for an outcome not known.
  auto claimed = db_.Exec(kClaim, {c.dedupe, c.conversation, c.pnid, c.action, c.correlation});
  if (!claimed.ok()) return DispositionFor(claimed.status());
  if (claimed->empty())
    return Disposition::Delay("thread_control claimed elsewhere since the lookup", 1000);
  const int attempts = static_cast<int>(claimed->get_int(0, 0));
  const int64_t first_at = claimed->get_int(0, 1);
  // 5. The call.
  HttpClientRequest req;
  req.method = "POST";
  req.url = graph->base_url + "/" + c.pnid + "/thread_control";
  req.headers["Authorization"] = "Bearer " + graph->token;
  req.headers["X-Correlation-Id"] = c.correlation;
  req.timeout = settings_.timeout;
  req.body = ThreadControlRequest(d.body);
  auto resp = HttpFetch(req);
  auto settle = [&](const char* status, int code, const std::string& reason) -> Disposition {
    Status s = db_.Exec(kSettle, {c.dedupe, status, std::to_string(code), reason}).status();
    if (!s.ok()) return DispositionFor(s);  // back here: step 1 finds it calling, and waits it out
    Calls(c.action, status).Inc();
    return Tell(c, d, status, code, reason);
  };
  if (!resp.ok()) {
    LOG(WARNING) << ctx << "event=thread_control_no_answer action=" << c.action
                 << " error=" << resp.status().ToString();
    return settle("unknown", 0,
                  "no answer from Meta (" + resp.status().ToString() + "): not called again");
  }
  if (resp->status / 100 == 2) {
    LOG(INFO) << ctx << "event=thread_control action=" << c.action << " to=" << Personal(c.to)
              << " partner_app_id=" << c.partner << " attempt=" << attempts;
    return settle("done", 0, "");
  }
  GraphError err = ParseGraphError(resp->status, resp->body);
  const GraphErrorInfo* known = KnownGraphError(err.code);
  std::string reason = "graph " + std::to_string(err.code) + ": " + err.message;
  if (known) reason += " (" + std::string(known->meaning) + ")";
  const int64_t next_ms = RetryDelayMs(attempts, known ? known->min_retry_ms : 0);
  if (err.klass == GraphErrorClass::kPermanent ||
      Now() + (next_ms + 999) / 1000 > first_at + settings_.deadline.count()) {
    if (err.klass != GraphErrorClass::kPermanent) {
      reason += " (after " + std::to_string(attempts) + " attempts; the next would come after " +
                std::to_string(settings_.deadline.count()) + " s)";
    }
    LOG(WARNING) << ctx << "event=thread_control_failed action=" << c.action
                 << " code=" << err.code;
    return settle("failed", err.code, reason);
  }
  Status s = db_.Exec(kSettle, {c.dedupe, "retrying", std::to_string(err.code), reason}).status();
  if (!s.ok()) return DispositionFor(s);
  Calls(c.action, "retry").Inc();
  LOG(WARNING) << ctx << "event=thread_control_retry action=" << c.action << " code=" << err.code;
  return Disposition::Retry(reason, next_ms, err.code);
}

}  // namespace convoy::outbound
