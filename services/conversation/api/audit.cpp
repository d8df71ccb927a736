#include "api/audit.h"

#include <glog/logging.h>
#include <rapidjson/document.h>

#include "api/conversations_api.h"
#include "convoy/metrics.h"
#include "convoy/rapidjson_util.h"
#include "store/transcript.h"

namespace convoy::conversation {

namespace {

constexpr size_t kMaxReason = 1000;

// The entry's tenant: a tenant's token writes in its own tenant, whatever it named (another
// tenant's id is a 404 to it, and its attempt is its own tenant's to read, never the other's). A
// global token's write belongs to the tenant of what it changed, when that has one.
constexpr const char* kInsert =
    "INSERT INTO audit_log (actor, role, caller_tenant, tenant, method, route, target, filter, "
    "count, reason, status) "
    "VALUES ($1, $2, $3, coalesce(NULLIF($3, '*'), CASE "
    "WHEN $5 LIKE '/v1/conversations/%' THEN (SELECT n.tenant FROM conversations c JOIN numbers n "
    "ON "
    "n.phone_number_id = c.phone_number_id WHERE c.id = $11::uuid) "
    "WHEN $5 LIKE '/v1/assignments/%' THEN (SELECT tenant FROM assignments WHERE id = $6) "
    "WHEN $5 LIKE '/v1/numbers/%' THEN (SELECT tenant FROM numbers WHERE phone_number_id = $6) "
    "WHEN $5 LIKE '/v1/checklists/%' THEN (SELECT tenant FROM checklists WHERE id = $6 ORDER BY "
    "version DESC LIMIT 1) "
    "END), $4, $5, NULLIF($6, ''), $7::jsonb, $8::bigint, $9, $10::int)";

Counter& WriteFailures() {
  static Counter& c =
      DefaultRegistry().GetCounter("convoy_audit_write_failures_total",
                                   "Audit log entries that could not be written after their answer "
                                   "(each is logged in full at ERROR).");
  return c;
}

// The path's segment where the pattern has a {placeholder}.
std::string TargetOf(const std::string& pattern, const std::string& path) {
  size_t p = 0, q = 0;
  while (p < pattern.size() && q < path.size()) {
    const size_t pe = pattern.find('/', p + 1), qe = path.find('/', q + 1);
    const std::string seg =
        pattern.substr(p + 1, (pe == std::string::npos ? pattern.size() : pe) - p - 1);
    if (!seg.empty() && seg.front() == '{') {
      return path.substr(q + 1, (qe == std::string::npos ? path.size() : qe) - q - 1)
          .substr(0, 200);
    }
    if (pe == std::string::npos || qe == std::string::npos) break;
    p = pe;
    q = qe;
  }
  return "";
}

std::string Describe(const AuditEntry& e) {
  return "actor=" + e.actor + " role=" + e.role + " caller_tenant=" + e.caller_tenant +
         " method=" + e.method + " route=\"" + e.route + "\" target=" + e.target +
         " status=" + std::to_string(e.status) +
         " count=" + (e.count ? std::to_string(*e.count) : "-") +
         " filter=" + e.filter_json.value_or("-") +
         " reason_bytes=" + std::to_string(e.reason ? e.reason->size() : 0);
}

}  // namespace

bool IsWrite(const HttpRequest& r) { return r.method != "GET" && r.method != "HEAD"; }

AuditEntry AuditOf(const HttpRequest& r, const std::string& route, const Caller& caller) {
  AuditEntry e;
  e.actor = caller.name;
  e.role = RoleName(caller.role);
  e.caller_tenant = caller.tenant;
  e.method = r.method;
  e.route = route;
  e.target = TargetOf(route, r.path);
  if (!r.query.empty()) {
    std::string f = "{";
    for (const auto& [k, v] : r.query)
      f += (f.size() > 1 ? "," : "") + JsonQuote(k) + ":" + JsonQuote(v);
    e.filter_json = f + "}";
  }
  rapidjson::Document d;
  d.Parse(r.body.c_str(), r.body.size());
  if (!d.HasParseError() && d.IsObject() && d.HasMember("reason") && d["reason"].IsString()) {
    std::string reason(d["reason"].GetString(), d["reason"].GetStringLength());
    if (reason.size() > kMaxReason) {
      reason.resize(kMaxReason);
      while (!reason.empty() && (static_cast<unsigned char>(reason.back()) & 0xC0) == 0x80)
        reason.pop_back();
      if (!reason.empty() && (static_cast<unsigned char>(reason.back()) & 0x80))
        reason.pop_back();  // a cut lead byte
    }
    e.reason = reason;
  }
  return e;
}

Status RecordAudit(PgConnection& db, AuditEntry& e) {
  Status s = db.Exec(kInsert,
                     {e.actor, e.role, e.caller_tenant, e.method, e.route, e.target, e.filter_json,
                      e.count ? std::optional<std::string>(std::to_string(*e.count)) : std::nullopt,
                      e.reason, std::to_string(e.status),
                      ValidUuid(e.target) ? std::optional<std::string>(e.target) : std::nullopt})
                 .status();
  if (s.ok()) e.recorded = true;
  return s;
}

void RecordAuditAfter(const std::string& pg_dsn, AuditEntry& e) {
  if (e.recorded) return;
  auto db = PgConnection::Connect(pg_dsn);
  Status s = db.ok() ? RecordAudit(**db, e) : db.status();
  if (!s.ok()) {
    WriteFailures().Inc();
    LOG(ERROR) << "service=conversation handler=api event=audit_write_failed " << Describe(e)
               << " error=" << s.ToString();
  }
}

HttpResponse ListAudit(PgConnection& db, const HttpRequest& r,
                       const std::optional<std::string>& tenant, bool mask) {
  const std::string limit = Query(r, "limit").value_or("50");
  if (!Digits(limit, 3) || std::stoi(limit) < 1 || std::stoi(limit) > 200) {
    return JsonError(400, "invalid_argument", "limit is 1 to 200");
  }
  auto cursor = Query(r, "cursor");
  if (cursor && !Digits(*cursor, 18))
    return JsonError(400, "invalid_argument", "cursor is the next_cursor of a page, unchanged");
  auto rows = db.Exec(
      "SELECT json_build_object('id', id, 'at', at, 'actor', actor, 'role', role, 'caller_tenant', "
      "caller_tenant, "
      "'tenant', tenant, 'method', method, 'route', route, 'target', target, 'filter', filter, "
      "'count', count, "
      "'reason', CASE WHEN $4::bool THEN '(' || length(reason) || ' characters, hidden)' ELSE "
      "reason END, "
      "'status', status)::text, id FROM audit_log WHERE ($1::text IS NULL OR tenant = $1) AND "
      "($2::bigint IS NULL OR id < $2::bigint) ORDER BY id DESC LIMIT $3::int",
      {tenant, cursor, std::to_string(std::stoi(limit) + 1), mask ? "true" : "false"});
  if (!rows.ok()) return JsonError(503, "unavailable", rows.status().message());
  const size_t n = std::min<size_t>(rows->size(), static_cast<size_t>(std::stoi(limit)));
  std::string out = "{\"entries\":[";
  for (size_t i = 0; i < n; ++i) out += (i ? "," : "") + rows->get(i, 0);
  out += "]";
  if (rows->size() > n) out += ",\"next_cursor\":" + JsonQuote(rows->get(n - 1, 1));
  return JsonResponse(200, out + "}");
}

}  // namespace convoy::conversation
