#include "admin.h"

#include <glog/logging.h>
#include <rapidjson/document.h>

#include <chrono>
#include <ctime>

#include "convoy/crypto.h"
#include "convoy/json.h"
#include "convoy/rapidjson_util.h"
#include "convoy/topology.h"

namespace convoy::outbound {

namespace {

// Rows set to go again, and their commands written to the outbox (same transaction).
constexpr const char* kRequeue =
    "WITH again AS (UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = "
    "NULL, "
    "attempt_started_at = NULL, updated_at = now() WHERE id = ANY($1::bigint[]) AND status IN "
    "('parked', 'held') "
    "RETURNING id, command, correlation_id, conversation_key) "
    "INSERT INTO outbox (exchange, routing_key, dedupe_key, correlation_id, conversation_key, "
    "body, due_at) "
    "SELECT 'convoy.commands', 'outbound.deliver', 'replay:' || id || ':' || $2, correlation_id, "
    "conversation_key, "
    "command, now() FROM again";
constexpr const char* kHeldOf =
    "SELECT id FROM deliveries d WHERE status = 'held' AND sink = ANY($1::text[]) AND "
    "NOT EXISTS (SELECT 1 FROM sink_states s WHERE s.name = d.sink) ORDER BY id LIMIT 10000";

// A delivery is the tenant's whose number begins its conversation key (numbers never move between
// tenants). `$N::text IS NULL` is a global token.
std::string OfTenant(int n) {
  const std::string p = "$" + std::to_string(n) + "::text";
  return "(" + p +
         " IS NULL OR EXISTS (SELECT 1 FROM numbers n WHERE n.phone_number_id = "
         "split_part(d.conversation_key, ':', 1) AND n.tenant = " +
         p + "))";
}

std::optional<std::string> ScopeOf(const Caller& caller) {
  return caller.all_tenants() ? std::nullopt : std::optional<std::string>(caller.tenant);
}

std::string Stamp() {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count());
}

std::string IdArray(const PgRows& rows) {
  std::string ids = "{";
  for (size_t i = 0; i < rows.size(); ++i) ids += (i ? "," : "") + rows.get(i, 0);
  return ids + "}";
}

Result<int64_t> Requeue(PgConnection& db, const PgRows& ids) {
  if (ids.empty()) return int64_t{0};
  auto r = db.Exec(kRequeue, {IdArray(ids), Stamp()});
  if (!r.ok()) return r.status();
  return static_cast<int64_t>(r->affected);
}

std::string Array(const SinkSet& sinks, const std::string& only) {
  std::string a = "{";
  bool first = true;
  for (const auto& [name, s] : sinks.sinks) {
    if (!only.empty() && name != only) continue;
    a += (first ? "\"" : ",\"") + name + "\"";
    first = false;
  }
  return a + "}";
}

// A query parameter; empty when absent or empty.
std::optional<std::string> Param(const HttpRequest& r, const char* key) {
  auto it = r.query.find(key);
  return it == r.query.end() || it->second.empty() ? std::optional<std::string>()
                                                   : std::optional<std::string>(it->second);
}

// A list route: ?limit= (`fallback` when absent; a number up to 99999, else 400), then the one
// json_agg row `query(limit)` reads, answered as {"<key>": [...]}.
template <typename Query>
HttpResponse ListRoute(const HttpRequest& r, const char* fallback, const char* key, Query query) {
  std::string limit = Param(r, "limit").value_or(fallback);
  if (limit.find_first_not_of("0123456789") != std::string::npos || limit.size() > 5) {
    return JsonError(400, "invalid_argument", "limit is a number up to 99999");
  }
  Result<PgRows> rows = query(limit);
  if (!rows.ok()) return JsonError(503, "unavailable", rows.status().message());
  return JsonResponse(200, std::string("{\"") + key + "\":" + rows->get(0, 0) + "}");
}

HttpResponse List(PgConnection& db, const HttpRequest& r, const Caller& caller) {
  auto q = [&](const char* k) { return Param(r, k); };
  return ListRoute(r, "100", "deliveries", [&](const std::string& limit) {
    return db.Exec(
        "SELECT coalesce(json_agg(x), '[]'::json)::text FROM (SELECT d.id, d.result_id, d.sink, "
        "d.type, d.status, d.attempts, "
        "d.last_status_code, d.last_error, d.external_id, d.created_at, d.delivered_at, "
        "d.next_attempt_at, "
        "(SELECT count(*) FROM delivery_attempts a WHERE a.delivery_id = d.id) AS "
        "attempts_recorded "
        "FROM deliveries d WHERE ($1::text IS NULL OR d.status = $1) AND ($2::text IS NULL OR "
        "d.sink = $2) AND " +
            OfTenant(4) + " ORDER BY d.id DESC LIMIT $3::int) x",
        {q("status"), q("sink"), limit, ScopeOf(caller)});
  });
}

HttpResponse Replay(PgConnection& db, const HttpRequest& r, const Caller& caller) {
  rapidjson::Document d;
  d.Parse(r.body.c_str(), r.body.size());
  if (d.HasParseError() || !d.IsObject())
    return JsonError(400, "invalid_argument", "a JSON object: {\"id\": N} or {\"from\", \"to\"}");
  std::string status = JsonStr(d, "status").empty() ? "parked" : JsonStr(d, "status");
  if (status != "parked" && status != "held")
    return JsonError(400, "invalid_argument", "status is parked or held");
  Result<PgRows> ids = Status(Code::kInvalidArgument, "");
  if (JsonMember(d, "id").IsInt64()) {
    const std::string id = std::to_string(d["id"].GetInt64());
    auto seen = db.Exec("SELECT status FROM deliveries d WHERE id = $1::bigint AND " + OfTenant(2),
                        {id, ScopeOf(caller)});
    if (!seen.ok()) return JsonError(503, "unavailable", seen.status().message());
    if (seen->empty())
      return JsonError(404, "not_found", "no delivery " + id);  // or another tenant's
    ids = db.Exec("SELECT id FROM deliveries WHERE id = $1::bigint AND status = $2", {id, status});
  } else if (JsonMember(d, "from").IsInt64() && JsonMember(d, "to").IsInt64()) {
    ids = db.Exec(
        "SELECT id FROM deliveries d WHERE status = $3 AND created_at >= to_timestamp($1::bigint) "
        "AND "
        "created_at < to_timestamp($2::bigint) AND " +
            OfTenant(4) + " ORDER BY id LIMIT 10000",
        {std::to_string(d["from"].GetInt64()), std::to_string(d["to"].GetInt64()), status,
         ScopeOf(caller)});
  } else {
    return JsonError(400, "invalid_argument",
                     "name a delivery {\"id\": N} or a time range {\"from\": s, \"to\": s}");
  }
  if (!ids.ok()) return JsonError(503, "unavailable", ids.status().message());
  auto n = Requeue(db, *ids);
  if (!n.ok()) return JsonError(503, "unavailable", n.status().message());
  LOG(WARNING) << "service=outbound handler=api event=deliveries_replayed caller=" << caller.name
               << " count=" << *n;
  return JsonResponse(200, R"({"replayed":)" + std::to_string(*n) + "}");
}

HttpResponse Enable(PgConnection& db, const std::string& name, const SinkSet& sinks,
                    const Caller& caller) {
  if (!sinks.Find(name))
    return JsonError(404, "not_found", "no sink named '" + name + "' in --sinks_file");
  auto tx = PgTransaction::Begin(db);
  auto gone = tx.ok() ? db.Exec("DELETE FROM sink_states WHERE name = $1", {name})
                      : Result<PgRows>(tx.status());
  Result<int64_t> n = gone.ok() ? ReleaseHeld(db, sinks, name) : Result<int64_t>(gone.status());
  Status s = n.ok() ? tx->Commit() : n.status();
  if (!s.ok()) return JsonError(503, "unavailable", s.message());
  LOG(WARNING) << "service=outbound handler=api event=sink_enabled caller=" << caller.name
               << " sink=" << name << " released=" << *n;
  return JsonResponse(200, R"({"sink":")" + JsonEscape(name) + R"(","enabled":true,"released":)" +
                               std::to_string(*n) + "}");
}

// A tenant sees the templates of the WABAs its numbers are in.
HttpResponse ListTemplates(PgConnection& db, const HttpRequest& r, const Caller& caller) {
  return ListRoute(r, "1000", "templates", [&](const std::string& limit) {
    return db.Exec(
        "SELECT coalesce(json_agg(x), '[]'::json)::text FROM (SELECT t.waba_id, t.name, "
        "t.language, t.template_id, "
        "t.status, t.reason, t.category, t.quality, t.source, t.updated_at, s.synced_at FROM "
        "templates t "
        "LEFT JOIN template_syncs s ON s.waba_id = t.waba_id WHERE ($1::text IS NULL OR t.waba_id "
        "= $1) AND "
        "($2::text IS NULL OR t.status = $2) AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM "
        "numbers n WHERE "
        "n.waba_id = t.waba_id AND n.tenant = $4)) ORDER BY t.waba_id, t.name, t.language LIMIT "
        "$3::int) x",
        {Param(r, "waba_id"), Param(r, "status"), limit, ScopeOf(caller)});
  });
}

// The WABA's catalog read whole from Graph, with the token of one of its numbers (an active one
// first; never an offboarded one's) that the caller's tenant holds.
HttpResponse SyncTemplatesRoute(PgConnection& db, const HttpRequest& r, const Caller& caller,
                                const AdminSettings& settings) {
  rapidjson::Document d;
  d.Parse(r.body.c_str(), r.body.size());
  // A string: a WABA id is longer than a double holds exactly.
  const bool named = !d.HasParseError() && JsonMember(d, "waba_id").IsString();
  const std::string waba = named ? JsonStr(d, "waba_id") : "";
  if (waba.empty() || waba.size() > 32 ||
      waba.find_first_not_of("0123456789") != std::string::npos) {
    return JsonError(400, "invalid_argument",
                     R"(a JSON object naming the WABA: {"waba_id": "<digits>"})");
  }
  auto number = db.Exec(
      "SELECT phone_number_id FROM numbers WHERE waba_id = $1 AND status <> 'offboarded' AND "
      "($2::text IS NULL OR tenant = $2) ORDER BY status = 'active' DESC, phone_number_id LIMIT 1",
      {waba, ScopeOf(caller)});
  if (!number.ok()) return JsonError(503, "unavailable", number.status().message());
  if (number->empty())
    return JsonError(404, "not_found", "no number in the registry is in WABA " + waba);
  GraphNumbers graph(db, settings.graph);
  auto target = graph.For(number->get(0, 0));
  if (!target.ok()) return JsonError(503, "unavailable", target.status().message());
  auto sync = SyncTemplates(db, *target, waba, settings.template_sync);
  if (!sync.ok()) {
    const Code c = sync.status().code();
    LOG(WARNING) << "service=outbound handler=api event=templates_sync_failed caller="
                 << caller.name << " waba=" << waba << " error=" << sync.status().ToString();
    if (c == Code::kUnavailable || c == Code::kTimeout)
      return JsonError(503, "unavailable", sync.status().message());
    return JsonError(502, "graph_refused", sync.status().message());
  }
  LOG(WARNING) << "service=outbound handler=api event=templates_synced caller=" << caller.name
               << " waba=" << waba << " templates=" << sync->templates << " pages=" << sync->pages;
  return JsonResponse(200, R"({"waba_id":")" + waba + R"(","templates":)" +
                               std::to_string(sync->templates) + R"(,"pages":)" +
                               std::to_string(sync->pages) + R"(,"deleted":)" +
                               std::to_string(sync->deleted) + "}");
}

}  // namespace

Result<int64_t> ReleaseHeld(PgConnection& db, const SinkSet& sinks, const std::string& only_sink) {
  auto ids = db.Exec(kHeldOf, {Array(sinks, only_sink)});
  if (!ids.ok()) return ids.status();
  return Requeue(db, *ids);
}

const std::vector<RouteRule>& AdminRoutes() {
  // Every /v1/ route of this service, the role it needs, and whether a tenant's token may call it.
  static const auto* const kRoutes = new std::vector<RouteRule>{
      // method  path                         role              scope
      {"GET", "/v1/deliveries", Role::kViewer, Scope::kTenant},
      {"POST", "/v1/deliveries/replay", Role::kOperator, Scope::kTenant},
      {"POST", "/v1/sinks/{name}/enable", Role::kOperator, Scope::kGlobal},
      {"GET", "/v1/templates", Role::kViewer, Scope::kTenant},
      {"POST", "/v1/templates/sync", Role::kOperator, Scope::kTenant},
  };
  return *kRoutes;
}

HttpResponse HandleAdmin(const HttpRequest& r, const AdminSettings& settings,
                         const SinkSet& sinks) {
  const std::string open =
      "set --tokens_file or CONVOY_ADMIN_TOKEN (or --admin_token_file) to open the admin API";
  auto tokens = settings.tokens ? settings.tokens->get() : std::make_shared<const TokenSet>();
  // A person conversation's OIDC proxy signed in comes with conversation's vouch, good for the
  // routes conversation forwards alone (forward.h there); role and tenant are checked as for a
  // token.
  static const std::vector<std::string> kForwarded = {"/v1/deliveries", "/v1/deliveries/replay"};
  Admission in = r.Header("authorization").empty() && !r.Header(kVouchHeader).empty()
                     ? AdmitVouched(r, settings.forward_secret, AdminRoutes(), kForwarded,
                                    "outbound", static_cast<int64_t>(std::time(nullptr)))
                     : Admit(r, *tokens, AdminRoutes(), "outbound", open);
  if (in.refused) return *in.refused;
  const std::string route = in.route->pattern;
  // A tenant's token lists and replays its tenant's deliveries alone.
  auto db = PgConnection::Connect(settings.pg_dsn);
  if (!db.ok()) return JsonError(503, "unavailable", db.status().message());
  if (route == "/v1/deliveries") return List(**db, r, in.caller);
  if (route == "/v1/deliveries/replay") return Replay(**db, r, in.caller);
  if (route == "/v1/templates") return ListTemplates(**db, r, in.caller);
  if (route == "/v1/templates/sync") return SyncTemplatesRoute(**db, r, in.caller, settings);
  const std::string sinks_prefix = "/v1/sinks/", enable = "/enable";
  return Enable(
      **db, r.path.substr(sinks_prefix.size(), r.path.size() - sinks_prefix.size() - enable.size()),
      sinks, in.caller);
}

}  // namespace convoy::outbound
