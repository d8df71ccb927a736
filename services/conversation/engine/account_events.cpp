#include "engine/account_events.h"

#include <glog/logging.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <vector>

#include "convoy/log.h"
#include "convoy/metrics.h"
#include "convoy/rapidjson_util.h"
#include "convoy/topology.h"

namespace convoy::conversation {

namespace {

using rapidjson::Value;

// First delivery only (a redelivery inserts nothing and changes nothing).
constexpr const char* kRecord =
    "INSERT INTO account_updates (dedupe_key, waba_id, event, action, reason) VALUES ($1, $2, $3, "
    "$4, NULLIF($5, '')) "
    "ON CONFLICT (dedupe_key) DO NOTHING RETURNING 1";
constexpr const char* kWabaKnown = "SELECT 1 FROM numbers WHERE waba_id = $1 LIMIT 1";
// The WABA's active numbers (or, when the event names one, that number only) pause with the
// reason; a number already paused keeps its own, an offboarded one stays offboarded.
constexpr const char* kPause =
    "UPDATE numbers SET status = 'paused', source = 'meta', paused_reason = $2, paused_at = now(), "
    "updated_at = now() "
    "WHERE waba_id = $1 AND status = 'active' AND ($3 = '' OR phone_number_id = $3 OR "
    "regexp_replace(display_phone_number, '[^0-9]', '', 'g') = $3) RETURNING phone_number_id";
constexpr const char* kRecordPaused =
    "UPDATE account_updates SET numbers_paused = $2::int WHERE dedupe_key = $1";

struct Metrics {
  Registry& r = DefaultRegistry();
  Counter& Action(const char* action) {
    return r.GetCounter(
        "convoy_conversation_account_updates_total",
        "account_update webhooks by what convoy did: paused, not_pausing, informational, "
        "unknown_waba, duplicate.",
        std::string("action=\"") + action + "\"");
  }
  Counter& paused = Action("paused");
  Counter& not_pausing = Action("not_pausing");
  Counter& informational = Action("informational");
  Counter& unknown_waba = Action("unknown_waba");
  Counter& duplicate = Action("duplicate");
  Counter& numbers_paused = r.GetCounter("convoy_numbers_paused_total",
                                         "Business numbers paused because Meta flagged them.",
                                         "cause=\"account_update\"");
};
Metrics& M() {
  static Metrics* m = new Metrics();
  return *m;
}

Counter& ActionCounter(const std::string& action) {
  if (action == "paused") return M().paused;
  if (action == "not_pausing") return M().not_pausing;
  if (action == "unknown_waba") return M().unknown_waba;
  return M().informational;
}

}  // namespace

AccountDecision DecideAccountUpdate(const Value& v) {
  const std::string event = JsonStr(v, "event");
  const std::string head = "account_update " + event;
  if (event == "ACCOUNT_OFFBOARDED" || event == "ACCOUNT_DELETED") return {"paused", head};
  if (event == "PARTNER_REMOVED") {
    const std::string why = JsonStr(JsonMember(v, "disconnection_info"), "reason");
    return {"paused", why.empty() ? head : head + ": " + why};
  }
  if (event == "DISABLED_UPDATE") {
    const Value& ban = JsonMember(v, "ban_info");
    const std::string state = JsonStr(ban, "waba_ban_state"), date = JsonStr(ban, "waba_ban_date");
    std::string detail =
        head + ": " + (state.empty() ? "no ban state" : state) + (date.empty() ? "" : " " + date);
    return {state == "DISABLE" ? "paused" : "not_pausing", detail};
  }
  if (event == "ACCOUNT_RESTRICTION") {
    std::string types;
    bool messaging = false;
    const Value& info = JsonMember(v, "restriction_info");
    if (info.IsArray()) {
      for (const auto& r : info.GetArray()) {
        const std::string type = JsonStr(r, "restriction_type");
        if (type.empty()) continue;
        types += (types.empty() ? "" : ", ") + type;
        messaging = messaging || type == "RESTRICTED_BIZ_INITIATED_MESSAGING" ||
                    type == "RESTRICTED_CUSTOMER_INITIATED_MESSAGING";
      }
    }
    return {messaging ? "paused" : "not_pausing",
            head + ": " + (types.empty() ? "no restriction named" : types)};
  }
  if (event == "ACCOUNT_VIOLATION") {
    return {"not_pausing",
            head + ": " + JsonStr(JsonMember(v, "violation_info"), "violation_type")};
  }
  if (event == "ACCOUNT_RECONNECTED") return {"not_pausing", head};
  return {"informational", head};
}

Disposition ApplyAccountUpdate(PgConnection& db, const Value& doc, const Delivery& d) {
  const std::string waba = JsonStr(doc, "waba_id"), event = JsonStr(doc, "event");
  std::string dedupe = d.Header(headers::kDedupeKey);
  if (dedupe.empty()) {
    const Value& time = JsonMember(doc, "time");
    dedupe = "account:" + JsonStr(doc, "entry_id") + ":" + event + ":" +
             (time.IsInt64() ? std::to_string(time.GetInt64()) : "");
  }
  LogCtx ctx{d.queue, JsonStr(doc, "correlation_id"), "", dedupe};
  const Value& value = JsonMember(doc, "account_update");
  AccountDecision decision = DecideAccountUpdate(value);
  // A number's own event names it (phone_number); else every number of the WABA.
  std::string number = JsonStr(value, "phone_number_id");
  if (number.empty()) number = JsonStr(value, "phone_number");
  number.erase(
      std::remove_if(number.begin(), number.end(), [](char c) { return c < '0' || c > '9'; }),
      number.end());
  bool first = false;
  std::vector<std::string> paused;
  auto tx = PgTransaction::Begin(db);
  auto apply = [&]() -> Status {
    auto known = db.Exec(kWabaKnown, {waba});
    if (!known.ok()) return known.status();
    if (known->empty()) decision.action = "unknown_waba";
    auto recorded = db.Exec(kRecord, {dedupe, waba, event, decision.action, decision.reason});
    if (!recorded.ok()) return recorded.status();
    first = !recorded->empty();
    if (!first || decision.action != "paused") return Status::Ok();
    auto r = db.Exec(kPause, {waba, decision.reason, number});
    if (!r.ok()) return r.status();
    for (size_t i = 0; i < r->size(); ++i) paused.push_back(r->get(i, 0));
    return db.Exec(kRecordPaused, {dedupe, std::to_string(paused.size())}).status();
  };
  Status s = tx.ok() ? apply() : tx.status();
  if (s.ok()) s = tx->Commit();
  if (!s.ok()) {
    LOG(WARNING) << ctx << "event=account_update_failed waba_id=" << waba
                 << " error=" << s.ToString();
    return DispositionFor(s);
  }
  if (!first) {
    M().duplicate.Inc();
    LOG(INFO) << ctx << "event=duplicate_ignored waba_id=" << waba;
    return Disposition::Ack();
  }
  ActionCounter(decision.action).Inc();
  M().numbers_paused.Inc(paused.size());
  std::string names;
  for (const auto& p : paused) names += (names.empty() ? "" : ",") + p;
  if (decision.action == "paused") {
    LOG(WARNING) << ctx << "event=numbers_paused waba_id=" << waba
                 << " numbers=" << (names.empty() ? "none" : names) << " reason=\""
                 << decision.reason
                 << "\" (a person resumes them: PUT /v1/numbers/{id} status active)";
  } else {
    LOG(INFO) << ctx << "event=account_update waba_id=" << waba << " action=" << decision.action
              << " reason=\"" << decision.reason << "\"";
  }
  return Disposition::Ack();
}

}  // namespace convoy::conversation
