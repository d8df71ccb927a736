#include "api/api.h"

#include <glog/logging.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <random>
#include <regex>

#include "api/forward.h"
#include "api/numbers_api.h"
#include "convoy/crypto.h"
#include "convoy/log.h"
#include "convoy/rapidjson_util.h"
#include "store/numbers.h"
#include "store/transcript.h"

namespace convoy::conversation {

namespace {

HttpResponse Unavailable(const Status& s) { return JsonError(503, "unavailable", s.message()); }

bool ValidId(const std::string& id) {
  static const std::regex kId("^[a-z0-9][a-z0-9_-]{0,63}$");
  return std::regex_match(id, kId);
}

// What the schema cannot say: an answer that needs a note is one of the question's answers.
Status CheckChecklist(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.c_str(), json.size());
  const auto& qs = JsonMember(d, "questions");
  for (rapidjson::SizeType i = 0; qs.IsArray() && i < qs.Size(); ++i) {
    const auto& answers = JsonMember(qs[i], "answers");
    const auto& notes = JsonMember(qs[i], "note_required");
    for (rapidjson::SizeType n = 0; notes.IsArray() && n < notes.Size(); ++n) {
      bool known = false;
      for (rapidjson::SizeType a = 0; answers.IsArray() && a < answers.Size(); ++a) {
        known |= answers[a].IsString() && notes[n].IsString() &&
                 std::string(answers[a].GetString()) == notes[n].GetString();
      }
      if (!known) {
        return Status(Code::kInvalidArgument,
                      "questions[" + std::to_string(i) + "].note_required: \"" +
                          std::string(notes[n].IsString() ? notes[n].GetString() : "") +
                          "\" is not one of the question's answers");
      }
    }
  }
  return Status::Ok();
}

std::string NewAssignmentId() {
  std::random_device rd;
  std::string raw;
  for (int i = 0; i < 12; ++i) raw += static_cast<char>(rd() & 0xFF);
  return "asg_" + HexEncode(raw);
}

// The assignment as the API shows it.
constexpr const char* kShow =
    "SELECT json_build_object('id', a.id, 'checklist', json_build_object('id', a.checklist_id, "
    "'version', "
    "a.checklist_version, 'title', c.definition->>'title', 'questions', "
    "jsonb_array_length(c.definition->'questions')), "
    "'answered', (SELECT count(*) FROM jsonb_object_keys(a.answers)), "
    "'operator', a.operator, 'operator_name', a.operator_name, 'phone_number_id', "
    "a.phone_number_id, "
    "'reference', a.reference, 'status', a.status, 'answers', a.answers, 'created_at', "
    "a.created_at, "
    "'started_at', a.started_at, 'ended_at', a.ended_at, 'expires_at', a.expires_at, "
    "'changes', (SELECT coalesce(json_agg(json_build_object('from', h.from_status, 'to', "
    "h.to_status, 'reason', "
    "h.reason, 'at', h.at) ORDER BY h.id), '[]'::json) FROM assignment_changes h WHERE "
    "h.assignment_id = a.id))::text "
    "FROM assignments a JOIN checklists c ON c.id = a.checklist_id AND c.version = "
    "a.checklist_version WHERE a.id = $1 "
    "AND ($2::text IS NULL OR a.tenant = $2)";

// The tenant a caller is confined to, or none for a global (`*`) token: every query of a
// tenant-scoped route takes it as `($n::text IS NULL OR tenant = $n)` (TenantScope:
// checklists_api.h).
TenantScope ScopeOf(const Caller& caller) {
  return caller.all_tenants() ? TenantScope() : TenantScope(caller.tenant);
}

// Another tenant's assignment is not there: the same 404 as one that never was.
Result<std::string> Show(PgConnection& db, const std::string& id, const TenantScope& scope) {
  auto r = db.Exec(kShow, {id, scope});
  if (!r.ok()) return r.status();
  if (r->empty()) return Status(Code::kNotFound, "no assignment " + id);
  return r->get(0, 0);
}

// 404 for an assignment the caller cannot see (none, or another tenant's), 503 when the database
// failed; nothing when it is there.
std::optional<HttpResponse> Unseen(PgConnection& db, const std::string& id,
                                   const TenantScope& scope) {
  auto mine = Show(db, id, scope);
  if (mine.ok()) return std::nullopt;
  return mine.status().code() == Code::kNotFound
             ? JsonError(404, "not_found", mine.status().message())
             : Unavailable(mine.status());
}

HttpResponse Put(PgConnection& db, const std::string& id, const HttpRequest& r,
                 const SchemaRegistry& schemas, const TenantScope& scope) {
  if (!ValidId(id))
    return JsonError(
        400, "invalid_argument",
        "a checklist id is 1-64 of a-z, 0-9, _ and -, starting with a letter or digit");
  Status valid = schemas.ValidateAs("checklist", 1, r.body);
  if (valid.ok()) valid = CheckChecklist(r.body);
  if (!valid.ok()) return JsonError(400, "invalid_argument", valid.message());
  auto v = PutChecklist(db, id, r.body, "api", scope);
  if (!v.ok()) {
    return v.status().code() == Code::kRejected ? JsonError(409, "conflict", v.status().message())
                                                : Unavailable(v.status());
  }
  return JsonResponse(v->created ? 201 : 200, R"({"id":")" + id + R"(","version":)" +
                                                  std::to_string(v->version) + R"(,"created":)" +
                                                  (v->created ? "true" : "false") + "}");
}

// Why no assignment goes from this number, or nothing: one the registry does not know or offboarded
// would run a conversation nothing ever answers (`why`); one whose `flows` leaves the checklist
// flow out does not run checklists.
std::optional<HttpResponse> CannotSend(const NumberLookup& number, const std::string& pnid,
                                       const std::string& flow, const std::string& why) {
  if (number.status == NumberStatus::kUnknown || number.status == NumberStatus::kOffboarded) {
    return JsonError(422, "number_not_active",
                     "phone_number_id " + pnid + " is " + NumberStatusName(number.status) +
                         " in the numbers registry: " + why);
  }
  Status runs = NumberRuns(pnid, number.flows, flow);
  if (!runs.ok()) {
    return JsonError(
        422, "flow_not_run",
        runs.message() + ": add " + flow + " to the number's flows to send it checklists");
  }
  return std::nullopt;
}

HttpResponse Create(PgConnection& db, const HttpRequest& r, const ApiSettings& settings,
                    const SchemaRegistry& schemas, const TenantScope& scope) {
  rapidjson::Document d;
  Status valid = schemas.ValidateAs("assignment.request", 1, r.body, &d);
  if (!valid.ok()) return JsonError(400, "invalid_argument", valid.message());
  const std::string checklist = JsonStr(d, "checklist"), op = JsonStr(d, "operator"),
                    pnid = JsonStr(d, "phone_number_id"), reference = JsonStr(d, "reference"),
                    name = JsonStr(d, "operator_name");
  const std::string key = r.Header("idempotency-key");
  const std::string hash = Sha256Hex(r.body);
  if (key.size() > 255)
    return JsonError(400, "invalid_argument", "Idempotency-Key is at most 255 characters");
  auto tx = PgTransaction::Begin(db);
  if (!tx.ok()) return Unavailable(tx.status());
  auto done = [&](int status, const std::string& id) {
    Status c = tx->Commit();
    if (!c.ok()) return Unavailable(c);
    auto shown = Show(db, id, scope);
    return shown.ok() ? JsonResponse(status, *shown) : Unavailable(shown.status());
  };
  // The assignment is its number's tenant's. A tenant's token names only its own numbers: another
  // tenant's is as unknown to it as one that is not registered (the same 422, nothing else said).
  auto owner = db.Exec("SELECT tenant FROM numbers WHERE phone_number_id = $1", {pnid});
  if (!owner.ok()) return Unavailable(owner.status());
  const TenantScope tenant = owner->empty() ? TenantScope() : TenantScope(owner->get(0, 0));
  if (scope && tenant != scope) {
    return JsonError(422, "number_not_active",
                     "phone_number_id " + pnid +
                         " is unknown in the numbers registry: a checklist goes only "
                         "from a registered, active number of yours");
  }
  // One request at a time per key and per reference: a retry racing the original waits for it.
  // An Idempotency-Key is the tenant's own: another tenant's use of the same key is another
  // request.
  const std::string key_scope = "idempotency:" + tenant.value_or("") + ":" + key;
  Status s = db.Exec("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                     {"assignment:" + pnid + ":" + reference})
                 .status();
  if (s.ok() && !key.empty())
    s = db.Exec("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", {key_scope}).status();
  if (!s.ok()) return Unavailable(s);
  if (!key.empty()) {
    auto seen = db.Exec(
        "SELECT id, request_hash FROM assignments WHERE idempotency_key = $1 AND "
        "coalesce(tenant, '') = coalesce($2, '')",
        {key, tenant});
    if (!seen.ok()) return Unavailable(seen.status());
    if (!seen->empty()) {
      if (seen->get(0, 1) != hash) {
        return JsonError(409, "idempotency_conflict",
                         "Idempotency-Key " + key + " was used for a different request");
      }
      return done(201, seen->get(0, 0));  // the first answer again
    }
  }
  auto existing =
      db.Exec("SELECT id FROM assignments WHERE phone_number_id = $1 AND reference = $2",
              {pnid, reference});
  if (!existing.ok()) return Unavailable(existing.status());
  if (!existing->empty()) return done(200, existing->get(0, 0));  // never a second conversation
  // Only a registered, active number sends a checklist: one the registry does not know, or that
  // was offboarded, would run a conversation that nothing ever answers.
  auto number = LookupNumber(db, pnid);
  if (!number.ok()) return Unavailable(number.status());
  if (auto refused = CannotSend(*number, pnid, settings.assignments.flow,
                                "a checklist goes only from a registered, active number")) {
    return *refused;
  }
  // A shared checklist, or one of the number's own tenant: never another tenant's.
  auto version = db.Exec(
      "SELECT max(version) FROM checklists WHERE id = $1 AND (tenant IS NULL OR tenant = $2)",
      {checklist, tenant});
  if (!version.ok()) return Unavailable(version.status());
  if (version->get(0, 0).empty())
    return JsonError(404, "not_found",
                     "no checklist " + checklist + " (PUT /v1/checklists/" + checklist + ")");
  const std::string id = NewAssignmentId();
  s = db.Exec(
            "INSERT INTO assignments (id, checklist_id, checklist_version, operator, "
            "operator_name, phone_number_id, "
            "reference, conversation_key, status, idempotency_key, request_hash, tenant) VALUES "
            "($1, $2, $3::int, $4, "
            "NULLIF($5, ''), $6, $7, $8, 'pending', $9, $10, $11)",
            {id, checklist, version->get(0, 0), op, name, pnid, reference,
             OperatorConversation(pnid, op),
             key.empty() ? std::nullopt : std::optional<std::string>(key), hash, tenant})
          .status();
  if (s.ok()) s = AssignmentCreated(db, id, settings.assignments);
  if (!s.ok()) return Unavailable(s);
  auto started = ActivateNext(db, pnid, op, settings.assignments);
  if (!started.ok()) return Unavailable(started.status());
  LOG(INFO) << "service=conversation handler=api event=assignment_created assignment=" << id
            << " checklist=" << checklist << " version=" << version->get(0, 0)
            << " started=" << (*started ? "true" : "false");
  return done(201, id);
}

HttpResponse Cancel(PgConnection& db, const std::string& id, const ApiSettings& settings,
                    const TenantScope& scope) {
  if (auto unseen = Unseen(db, id, scope)) return *unseen;
  auto tx = PgTransaction::Begin(db);
  if (!tx.ok()) return Unavailable(tx.status());
  auto moved = MoveAssignment(db, id, "pending,active", "cancelled", "cancelled by the manager", "",
                              settings.assignments);
  if (!moved.ok()) return Unavailable(moved.status());
  Status s = tx->Commit();
  if (!s.ok()) return Unavailable(s);
  auto shown = Show(db, id, scope);
  if (!shown.ok()) return Unavailable(shown.status());
  if (!*moved) {
    auto status = db.Exec("SELECT status FROM assignments WHERE id = $1", {id});
    return JsonError(
        409, "conflict",
        "assignment " + id + " is already " + (status.ok() ? status->get(0, 0) : "ended"));
  }
  return JsonResponse(200, *shown);
}

// How many times one assignment is tried (0024_assignment_undeliverable.sql's CHECK).
constexpr int64_t kMaxRounds = 1000;

// An undeliverable assignment goes again; anything else is a 409 naming its status.
HttpResponse Retry(PgConnection& db, const std::string& id, const ApiSettings& settings,
                   const TenantScope& scope) {
  if (auto unseen = Unseen(db, id, scope)) return *unseen;
  // As for a new assignment: only from a registered, active number (an offboarded one would
  // start a checklist that nothing ever sends), and a bounded number of rounds.
  auto of = db.Exec("SELECT phone_number_id, round FROM assignments WHERE id = $1", {id});
  if (!of.ok() || of->empty())
    return Unavailable(of.ok() ? Status(Code::kNotFound, "assignment " + id) : of.status());
  auto number = LookupNumber(db, of->get(0, 0));
  if (!number.ok()) return Unavailable(number.status());
  if (auto refused = CannotSend(*number, of->get(0, 0), settings.assignments.flow,
                                "the assignment cannot be sent again")) {
    return *refused;
  }
  if (of->get_int(0, 1) >= kMaxRounds) {
    return JsonError(409, "conflict",
                     "assignment " + id + " was tried " + std::to_string(kMaxRounds) +
                         " times: assign the checklist again with a new reference");
  }
  auto tx = PgTransaction::Begin(db);
  if (!tx.ok()) return Unavailable(tx.status());
  auto again = RetryAssignment(db, id, settings.assignments);
  Status s = again.ok() && *again ? tx->Commit() : again.status();
  if (!again.ok() || !*again || !s.ok()) {
    tx->Rollback();  // before reading the status outside it
    if (!s.ok()) return Unavailable(s);
    auto status = db.Exec("SELECT status FROM assignments WHERE id = $1", {id});
    return JsonError(409, "conflict",
                     "assignment " + id + " is " +
                         (status.ok() ? status->get(0, 0) : "not undeliverable") +
                         ": only an undeliverable one is retried");
  }
  auto shown = Show(db, id, scope);
  return shown.ok() ? JsonResponse(200, *shown) : Unavailable(shown.status());
}

HttpResponse List(PgConnection& db, const HttpRequest& r, bool mask, const TenantScope& scope) {
  auto q = [&](const char* k) {
    auto it = r.query.find(k);
    return it == r.query.end() || it->second.empty() ? std::optional<std::string>()
                                                     : std::optional<std::string>(it->second);
  };
  std::string limit = q("limit").value_or("100");
  if (limit.find_first_not_of("0123456789") != std::string::npos || limit.size() > 4) {
    return JsonError(400, "invalid_argument", "limit is a number up to 9999");
  }
  auto status = q("status");
  if (status && *status != "pending" && *status != "active" && *status != "completed" &&
      *status != "cancelled" && *status != "expired" && *status != "undeliverable") {
    return JsonError(
        400, "invalid_argument",
        "status is one of pending, active, completed, cancelled, expired, undeliverable");
  }
  auto rows = db.Exec(
      "SELECT coalesce(json_agg(x ORDER BY x.created_at DESC), '[]'::json)::text FROM (SELECT "
      "a.id, a.checklist_id AS "
      "checklist, a.checklist_version AS version, c.definition->>'title' AS title, "
      "jsonb_array_length(c.definition->'questions') AS questions, (SELECT count(*) FROM "
      "jsonb_object_keys(a.answers)) "
      "AS answered, a.operator, a.phone_number_id, a.reference, a.status, a.created_at, "
      "a.started_at, a.ended_at, "
      "a.expires_at FROM assignments a JOIN checklists c ON c.id = a.checklist_id AND c.version = "
      "a.checklist_version WHERE ($1::text IS NULL OR a.status = $1) AND "
      "($2::text IS NULL OR a.operator = $2) AND ($4::text IS NULL OR a.tenant = $4) ORDER BY "
      "a.created_at DESC "
      "LIMIT $3::int) x",
      {status, q("operator"), limit, scope});
  if (!rows.ok()) return Unavailable(rows.status());
  const std::string list = R"({"assignments":)" + rows->get(0, 0) + "}";
  return JsonResponse(200, mask ? MaskAssignments(list) : list);
}

}  // namespace

std::string MaskAssignments(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.c_str(), json.size());
  if (d.HasParseError() || !d.IsObject()) return json;
  auto mask_one = [&d](rapidjson::Value& a) {
    if (!a.IsObject()) return;
    for (const char* key : {"operator", "operator_name"}) {
      auto m = a.FindMember(key);
      if (m != a.MemberEnd() && m->value.IsString()) {
        const std::string masked = MaskPersonal(m->value.GetString(), false);
        m->value.SetString(masked.c_str(), static_cast<rapidjson::SizeType>(masked.size()),
                           d.GetAllocator());
      }
    }
    auto answers = a.FindMember("answers");
    if (answers != a.MemberEnd()) answers->value.SetNull();
  };
  auto list = d.FindMember("assignments");
  if (list != d.MemberEnd() && list->value.IsArray()) {
    for (auto& a : list->value.GetArray()) mask_one(a);
  } else {
    mask_one(d);
  }
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> w(out);
  d.Accept(w);
  return out.GetString();
}

Result<ChecklistVersion> PutChecklist(PgConnection& db, const std::string& id,
                                      const std::string& definition_json, const std::string& source,
                                      const std::optional<std::string>& tenant) {
  auto tx = PgTransaction::Begin(db);
  if (!tx.ok()) return tx.status();
  auto r = db.Exec("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", {"checklist:" + id});
  if (r.ok()) {
    r = db.Exec(
        "SELECT version, definition = $2::jsonb, tenant FROM checklists WHERE id = $1 ORDER BY "
        "version DESC LIMIT 1",
        {id, definition_json});
  }
  if (!r.ok()) return r.status();
  // A checklist stays whose it was: a tenant versions only its own, a file only a shared one, and
  // a global token any (keeping its owner). The refusal says no more than that the id is taken.
  std::optional<std::string> owner = tenant;
  if (!r->empty()) {
    owner = r->at(0, 2);
    if ((tenant && owner != tenant) || (source == "file" && owner))
      return Status(Code::kRejected, "checklist id " + id + " is taken; choose another id");
  }
  ChecklistVersion v;
  if (!r->empty() && r->get(0, 1) == "t") {
    v.version = static_cast<int>(r->get_int(0, 0));
    tx->Rollback();  // the same definition: nothing to write
    return v;
  }
  v.version = r->empty() ? 1 : static_cast<int>(r->get_int(0, 0)) + 1;
  v.created = true;
  Status s = db.Exec(
                   "INSERT INTO checklists (id, version, definition, source, tenant) VALUES ($1, "
                   "$2::int, $3::jsonb, $4, $5)",
                   {id, std::to_string(v.version), definition_json, source, owner})
                 .status();
  if (s.ok()) s = tx->Commit();
  if (!s.ok()) return s;
  return v;
}

Status LoadChecklistFiles(PgConnection& db, const std::string& dir, const SchemaRegistry& schemas) {
  auto files = ReadJsonFiles(dir);
  if (!files.ok() && files.status().code() == Code::kNotFound)
    return Status::Ok();  // checklists come through the API only
  if (!files.ok()) return files.status();
  for (const auto& f : *files) {
    const std::string& id = f.stem;
    if (!ValidId(id))
      return Status(Code::kInvalidArgument,
                    f.path + ": the file name is the checklist id (a-z, 0-9, _, -)");
    Status valid = schemas.ValidateAs("checklist", 1, f.text);
    if (valid.ok()) valid = CheckChecklist(f.text);
    if (!valid.ok()) return Status(Code::kInvalidArgument, f.path + ": " + valid.message());
    auto v = PutChecklist(db, id, f.text, "file", std::nullopt);
    if (!v.ok() && v.status().code() == Code::kRejected) {
      // A tenant defined this id first: its checklist stays, and a file never takes it over. The
      // service still starts (a tenant's choice must not stop it), loudly.
      LOG(ERROR) << "service=conversation event=checklist_file_skipped file=" << f.path
                 << " reason=\"" << v.status().message()
                 << " (a tenant's checklist has this id: rename the file)\"";
      continue;
    }
    if (!v.ok()) return v.status();
    LOG(INFO) << "service=conversation event=checklist_loaded id=" << id
              << " version=" << v->version << " new=" << (v->created ? "true" : "false");
  }
  return Status::Ok();
}

const std::vector<RouteRule>& ApiRoutes() {
  // Every /v1/ route of this service, the role it needs, and whether a tenant's token may call it.
  static const auto* const kRoutes = new std::vector<RouteRule>{
      // method  path                           role             scope
      {"GET", "/v1/whoami", Role::kViewer, Scope::kTenant},
      {"GET", "/v1/audit", Role::kViewer, Scope::kTenant},
      {"GET", "/v1/flows", Role::kViewer, Scope::kGlobal},
      {"POST", "/v1/flows/reload", Role::kAdmin, Scope::kGlobal},
      {"GET", "/v1/checklists", Role::kViewer, Scope::kTenant},
      {"GET", "/v1/checklists/{id}", Role::kViewer, Scope::kTenant},
      {"PUT", "/v1/checklists/{id}", Role::kManager, Scope::kTenant},
      {"POST", "/v1/assignments", Role::kManager, Scope::kTenant},
      {"GET", "/v1/assignments", Role::kViewer, Scope::kTenant},
      {"GET", "/v1/assignments/{id}", Role::kViewer, Scope::kTenant},
      {"POST", "/v1/assignments/{id}/cancel", Role::kManager, Scope::kTenant},
      {"POST", "/v1/assignments/{id}/retry", Role::kManager, Scope::kTenant},
      // The answers in full (a viewer sees none): for those who see personal data.
      {"GET", "/v1/assignments/{id}/export.csv", Role::kManager, Scope::kTenant},
      {"GET", "/v1/assignments/{id}/export.pdf", Role::kManager, Scope::kTenant},
      {"GET", "/v1/numbers", Role::kViewer, Scope::kTenant},
      {"GET", "/v1/numbers/{id}", Role::kViewer, Scope::kTenant},
      {"PUT", "/v1/numbers/{id}", Role::kAdmin, Scope::kGlobal},
      {"DELETE", "/v1/numbers/{id}", Role::kAdmin, Scope::kGlobal},
      {"GET", "/v1/conversations", Role::kViewer, Scope::kTenant},
      {"GET", "/v1/conversations/{id}", Role::kViewer, Scope::kTenant},
      {"POST", "/v1/conversations/{id}/handoff", Role::kAgent, Scope::kTenant},
      {"POST", "/v1/conversations/{id}/take", Role::kAgent, Scope::kTenant},
      {"POST", "/v1/conversations/{id}/pass", Role::kAgent, Scope::kTenant},
      {"POST", "/v1/conversations/{id}/release", Role::kAgent, Scope::kTenant},
      {"POST", "/v1/conversations/{id}/messages", Role::kAgent, Scope::kTenant},
      // Parked messages hold any tenant's payloads and carry no tenant to filter by: global.
      {"GET", "/v1/ops/queues", Role::kViewer, Scope::kGlobal},
      {"GET", "/v1/ops/health", Role::kViewer, Scope::kGlobal},
      {"GET", "/v1/ops/parked", Role::kViewer, Scope::kGlobal},
      {"POST", "/v1/ops/parked/replay", Role::kOperator, Scope::kGlobal},
      {"POST", "/v1/ops/parked/purge", Role::kOperator, Scope::kGlobal},
      // Forwarded to outbound's admin API, which checks the token again (its own table).
      {"GET", "/v1/deliveries", Role::kViewer, Scope::kTenant},
      {"POST", "/v1/deliveries/replay", Role::kOperator, Scope::kTenant},
      // An agent's photo, forwarded to convoy-media's intake, which checks the token and the
      // number's tenant again (forward.h).
      {"POST", "/v1/media", Role::kAgent, Scope::kTenant},
  };
  return *kRoutes;
}

namespace {

// The admitted request's answer; a write's `audit` entry is recorded by the conversations API
// inside its transaction, or by HandleApi after this returns.
HttpResponse Dispatch(const HttpRequest& r, const ApiSettings& settings,
                      const SchemaRegistry& schemas, const std::string& route, const Caller& caller,
                      AuditEntry* audit) {
  // Who the token is (the console's sign-in): never the token, nor anything it could be used as.
  if (route == "/v1/whoami") {
    return JsonResponse(
        200, "{\"name\":" + JsonQuote(caller.name) + ",\"role\":" +
                 JsonQuote(RoleName(caller.role)) + ",\"tenant\":" + JsonQuote(caller.tenant) +
                 ",\"sees_personal_data\":" + (SeesPersonalData(caller.role) ? "true" : "false") +
                 ",\"via\":\"" + (r.Header("authorization").empty() ? "proxy" : "token") + "\"}");
  }
  if (auto numbers = HandleNumbersApi(r, settings.pg_dsn, schemas, ScopeOf(caller)))
    return *numbers;
  if (auto conversations = HandleConversationsApi(r, route, caller, settings.conversations, audit))
    return *conversations;
  if (IsOpsRoute(route)) return HandleOpsApi(r, route, caller, settings.ops, audit);
  if (route == "/v1/media")
    return Forward(
        r, {settings.media_api_url, "convoy-media", "--media_api_url", settings.forward_secret},
        caller);
  if (route == "/v1/flows") {
    return settings.flows ? JsonResponse(200, settings.flows())
                          : Unavailable(Status(Code::kUnavailable, "no flows"));
  }
  if (route == "/v1/flows/reload") {
    if (!settings.reload_flows)
      return Unavailable(Status(Code::kUnavailable, "flows cannot be reloaded here"));
    auto loaded = settings.reload_flows();
    if (!loaded.ok()) {
      return JsonError(422, "invalid_flows",
                       loaded.status().message() + " (the running flows are unchanged)");
    }
    return JsonResponse(200, *loaded);
  }
  // A tenant's token sees and acts on its tenant's assignments, checklists and audit entries
  // alone; another tenant's are not found, as if they did not exist.
  const TenantScope scope = ScopeOf(caller);
  const bool mask = !SeesPersonalData(caller.role);
  const std::string& p = r.path;
  const std::string assignments = "/v1/assignments/";
  auto db = PgConnection::Connect(settings.pg_dsn);
  if (!db.ok()) return Unavailable(db.status());
  if (route == "/v1/audit") return ListAudit(**db, r, scope, mask);
  if (route == "/v1/checklists") return ListChecklists(**db, scope);
  if (route == "/v1/checklists/{id}" && r.method == "GET") {
    return ShowChecklist(**db, p.substr(std::string("/v1/checklists/").size()), r, scope);
  }
  if (route == "/v1/checklists/{id}")
    return Put(**db, p.substr(std::string("/v1/checklists/").size()), r, schemas, scope);
  if (route == "/v1/assignments") {
    if (r.method == "POST") return Create(**db, r, settings, schemas, scope);
    return List(**db, r, mask, scope);
  }
  std::string id = p.substr(assignments.size());
  if (route == "/v1/assignments/{id}/cancel")
    return Cancel(**db, id.substr(0, id.find('/')), settings, scope);
  if (route == "/v1/assignments/{id}/retry")
    return Retry(**db, id.substr(0, id.find('/')), settings, scope);
  if (route == "/v1/assignments/{id}/export.csv") {
    return ExportAssignmentCsv(**db, id.substr(0, id.find('/')), scope, settings.photo_links);
  }
  if (route == "/v1/assignments/{id}/export.pdf") {
    return ExportAssignmentPdf(
        **db, id.substr(0, id.find('/')), scope,
        MediaPhotoFetch(
            settings.media_api_url.empty() ? settings.photo_links.base_url : settings.media_api_url,
            settings.photo_links));
  }
  auto shown = Show(**db, id, scope);
  if (!shown.ok())
    return shown.status().code() == Code::kNotFound
               ? JsonError(404, "not_found", shown.status().message())
               : Unavailable(shown.status());
  return JsonResponse(
      200, mask ? MaskAssignments(*shown) : WithPhotoLinks(*shown, settings.photo_links));
}

}  // namespace

namespace {

// The proxy's word, or nothing: only a request that carries the proxy's secret (and no bearer
// token of its own) is taken as the identity it names (ProxySignIn).
std::optional<Admission> AdmitByProxy(const HttpRequest& r, const ProxySignIn& proxy) {
  if (!proxy.enabled() || !r.Header("authorization").empty()) return std::nullopt;
  const std::string secret = r.Header(proxy.secret_header);
  if (secret.empty() || !ConstantTimeEquals(secret, proxy.secret)) return std::nullopt;
  const std::string identity = r.Header(proxy.identity_header);
  auto caller = identity.empty() ? std::nullopt : proxy.identities->get()->Find(identity);
  if (!caller) {
    Admission refused;
    refused.refused = RefuseUnauthenticated(
        "conversation",
        identity.empty() ? "the proxy named nobody" : "an identity the proxy named is not listed");
    return refused;
  }
  return AdmitAs(r, *caller, ApiRoutes(), "conversation");
}

}  // namespace

HttpResponse HandleApi(const HttpRequest& r, const ApiSettings& settings,
                       const SchemaRegistry& schemas) {
  // The listener takes a photo's size for POST /v1/media; every other route's body is JSON.
  if (r.body.size() > kMaxJsonBodyBytes && r.path != "/v1/media") {
    return JsonError(413, "too_large",
                     "a request body is at most " + std::to_string(kMaxJsonBodyBytes) + " bytes");
  }
  const std::string open =
      "set --tokens_file or CONVOY_ADMIN_TOKEN (or --admin_token_file) to open the API";
  auto tokens = settings.tokens ? settings.tokens->get() : std::make_shared<const TokenSet>();
  auto proxied = AdmitByProxy(r, settings.proxy);
  Admission in =
      proxied ? std::move(*proxied) : Admit(r, *tokens, ApiRoutes(), "conversation", open);
  if (in.refused) {
    // A write a known caller may not make (403: its role or tenant) is in the log too; one with no
    // known token (401) or route (404, 405) has nobody and nothing to record.
    if (in.route && IsWrite(r)) {
      AuditEntry refused = AuditOf(r, in.route->pattern, in.caller);
      refused.status = in.refused->status;
      RecordAuditAfter(settings.pg_dsn, refused);
    }
    return *in.refused;
  }
  std::optional<AuditEntry> audit;
  if (IsWrite(r)) audit = AuditOf(r, in.route->pattern, in.caller);
  HttpResponse answer =
      Dispatch(r, settings, schemas, in.route->pattern, in.caller, audit ? &*audit : nullptr);
  if (audit && !audit->recorded) {
    audit->status = answer.status;
    RecordAuditAfter(settings.pg_dsn, *audit);
  }
  return answer;
}

}  // namespace convoy::conversation
