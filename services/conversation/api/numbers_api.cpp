#include "api/numbers_api.h"

#include <glog/logging.h>

#include "convoy/pg.h"
#include "store/numbers.h"

namespace convoy::conversation {

namespace {

HttpResponse Unavailable(const Status& s) { return JsonError(503, "unavailable", s.message()); }

std::string Query(const HttpRequest& r, const char* key) {
  auto it = r.query.find(key);
  return it == r.query.end() ? "" : it->second;
}

HttpResponse Put(PgConnection& db, const std::string& id, const HttpRequest& r,
                 const SchemaRegistry& schemas) {
  auto entry = ParseNumber(id, r.body, schemas);
  if (!entry.ok()) return JsonError(400, "invalid_argument", entry.status().message());
  Status consistent = CheckNumber(*entry);  // well-formed, but saying what cannot be
  if (!consistent.ok()) return JsonError(422, "default_flow_not_run", consistent.message());
  auto put = PutNumber(db, *entry, "api");
  if (!put.ok()) return Unavailable(put.status());
  if (*put == PutOutcome::kOtherTenant) {
    return JsonError(
        409, "conflict",
        "number " + id + " belongs to another tenant; a number never moves between tenants");
  }
  LOG(INFO) << "service=conversation handler=api event=number_put phone_number_id=" << id
            << " tenant=" << entry->tenant << " status=" << entry->status << " change="
            << (*put == PutOutcome::kCreated   ? "created"
                : *put == PutOutcome::kUpdated ? "updated"
                                               : "none");
  auto shown = ShowNumber(db, id);
  if (!shown.ok()) return Unavailable(shown.status());
  return JsonResponse(*put == PutOutcome::kCreated ? 201 : 200, *shown);
}

HttpResponse Show(PgConnection& db, const std::string& id,
                  const std::optional<std::string>& tenant) {
  // Another tenant's number is not there, for a tenant's token: the same 404 as an unknown one.
  if (tenant) {
    auto mine =
        db.Exec("SELECT 1 FROM numbers WHERE phone_number_id = $1 AND tenant = $2", {id, *tenant});
    if (!mine.ok()) return Unavailable(mine.status());
    if (mine->empty()) return JsonError(404, "not_found", "no number " + id + " in the registry");
  }
  auto shown = ShowNumber(db, id);
  if (!shown.ok()) {
    return shown.status().code() == Code::kNotFound
               ? JsonError(404, "not_found", shown.status().message())
               : Unavailable(shown.status());
  }
  return JsonResponse(200, *shown);
}

}  // namespace

std::optional<HttpResponse> HandleNumbersApi(const HttpRequest& r, const std::string& pg_dsn,
                                             const SchemaRegistry& schemas,
                                             const std::optional<std::string>& tenant) {
  const std::string numbers = "/v1/numbers";
  if (r.path != numbers && r.path.rfind(numbers + "/", 0) != 0) return std::nullopt;
  if (r.path == numbers || r.path == numbers + "/") {
    if (r.method != "GET")
      return JsonError(405, "method_not_allowed",
                       "GET /v1/numbers; PUT, GET or DELETE /v1/numbers/{phone_number_id}");
    const std::string status = Query(r, "status");
    if (!status.empty() && status != "active" && status != "paused" && status != "offboarded") {
      return JsonError(400, "invalid_argument", "status is one of active, paused, offboarded");
    }
    auto db = PgConnection::Connect(pg_dsn);
    if (!db.ok()) return Unavailable(db.status());
    // A tenant's token lists its own numbers whatever ?tenant= says.
    const std::string asked = Query(r, "tenant");
    if (tenant && !asked.empty() && asked != *tenant) return JsonResponse(200, R"({"numbers":[]})");
    auto list = ListNumbers(**db, status, tenant.value_or(asked));
    if (!list.ok()) return Unavailable(list.status());
    return JsonResponse(200, *list);
  }
  const std::string id = r.path.substr(numbers.size() + 1);
  if (r.method != "PUT" && r.method != "GET" && r.method != "DELETE") {
    return JsonError(405, "method_not_allowed", "PUT, GET or DELETE /v1/numbers/{phone_number_id}");
  }
  if (id.empty() || id.size() > 32 || id.find_first_not_of("0123456789") != std::string::npos) {
    return JsonError(400, "invalid_argument",
                     "a phone_number_id is Meta's numeric id of the number (1-32 digits)");
  }
  auto db = PgConnection::Connect(pg_dsn);
  if (!db.ok()) return Unavailable(db.status());
  if (r.method == "GET") return Show(**db, id, tenant);
  // The routes that change the registry are global (a tenant's token is refused before here).
  if (tenant) return JsonError(404, "not_found", "no number " + id + " in the registry");
  if (r.method == "PUT") return Put(**db, id, r, schemas);
  Status s = OffboardNumber(**db, id);
  if (!s.ok())
    return s.code() == Code::kNotFound ? JsonError(404, "not_found", s.message()) : Unavailable(s);
  LOG(INFO) << "service=conversation handler=api event=number_offboarded phone_number_id=" << id;
  return Show(**db, id, std::nullopt);
}

}  // namespace convoy::conversation
