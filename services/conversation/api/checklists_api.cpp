#include "api/checklists_api.h"

#include <rapidjson/document.h>

#include <cctype>
#include <cstdlib>
#include <ctime>

#include "api/pdf.h"
#include "convoy/crypto.h"
#include "convoy/rapidjson_util.h"

namespace convoy::conversation {

namespace {

HttpResponse Unavailable(const Status& s) { return JsonError(503, "unavailable", s.message()); }

int64_t Now(const PhotoLinkSettings& links) {
  return links.now ? links.now() : static_cast<int64_t>(std::time(nullptr));
}

// A stored name is the generator's own (media: "<sha256 hex>.<ext>"); nothing else is linked.
bool StoredName(const std::string& name) {
  if (name.empty() || name.size() > 80 || name[0] == '.') return false;
  for (unsigned char c : name) {
    if (!(std::isalnum(c) || c == '.')) return false;
  }
  return true;
}

}  // namespace

std::optional<std::string> PhotoLink(const PhotoLinkSettings& links,
                                     const std::string& stored_name) {
  if (!links.enabled() || !StoredName(stored_name)) return std::nullopt;
  return MediaLink(links.base_url, links.secret, stored_name, Now(links) + links.ttl.count());
}

std::string WithPhotoLinks(const std::string& json, const PhotoLinkSettings& links) {
  if (!links.enabled() || json.find("\"stored_name\"") == std::string::npos) return json;
  rapidjson::Document d;
  d.Parse(json.c_str(), json.size());
  if (d.HasParseError() || !d.IsObject()) return json;
  auto answers = d.FindMember("answers");
  if (answers == d.MemberEnd() || !answers->value.IsObject()) return json;
  const int64_t expires = Now(links) + links.ttl.count();
  for (auto& answer : answers->value.GetObject()) {
    auto photos =
        answer.value.IsObject() ? answer.value.FindMember("photos") : answer.value.MemberEnd();
    if (!answer.value.IsObject() || photos == answer.value.MemberEnd() || !photos->value.IsArray())
      continue;
    for (auto& photo : photos->value.GetArray()) {
      const std::string name = JsonStr(photo, "stored_name");
      if (!photo.IsObject() || !StoredName(name) || photo.HasMember("url")) continue;
      const std::string url = MediaLink(links.base_url, links.secret, name, expires);
      photo.AddMember("url",
                      rapidjson::Value(url.c_str(), static_cast<rapidjson::SizeType>(url.size()),
                                       d.GetAllocator()),
                      d.GetAllocator());
    }
  }
  return JsonText(d);
}

std::string CsvCell(const std::string& value) {
  std::string v = value;
  if (!v.empty() &&
      (v[0] == '=' || v[0] == '+' || v[0] == '-' || v[0] == '@' || v[0] == '\t' || v[0] == '\r')) {
    v.insert(0, "'");
  }
  if (v.find_first_of(",\"\r\n") == std::string::npos) return v;
  std::string quoted = "\"";
  for (char c : v) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

HttpResponse ListChecklists(PgConnection& db, const TenantScope& scope) {
  // The latest version of each checklist the caller may assign (api.cpp Create: a shared one, or
  // one of the number's own tenant).
  auto r = db.Exec(
      "SELECT coalesce(json_agg(json_build_object('id', c.id, 'version', c.version, 'title', "
      "c.definition->>'title', "
      "'questions', jsonb_array_length(c.definition->'questions'), 'shared', c.tenant IS NULL, "
      "'tenant', c.tenant, "
      "'source', c.source, 'updated_at', c.created_at) ORDER BY c.id), '[]'::json)::text FROM "
      "(SELECT DISTINCT ON (id) "
      "id, version, definition, tenant, source, created_at FROM checklists WHERE ($1::text IS NULL "
      "OR tenant IS NULL OR "
      "tenant = $1) ORDER BY id, version DESC) c",
      {scope});
  if (!r.ok()) return Unavailable(r.status());
  return JsonResponse(200, R"({"checklists":)" + r->get(0, 0) + "}");
}

HttpResponse ShowChecklist(PgConnection& db, const std::string& id, const HttpRequest& req,
                           const TenantScope& scope) {
  auto it = req.query.find("version");
  std::optional<std::string> version;
  if (it != req.query.end() && !it->second.empty()) {
    if (it->second.size() > 9 || it->second.find_first_not_of("0123456789") != std::string::npos) {
      return JsonError(400, "invalid_argument", "version is a whole number");
    }
    version = it->second;
  }
  // Another tenant's checklist is not there: the same 404 as one that never was.
  auto r = db.Exec(
      "SELECT json_build_object('id', $1::text, 'shared', bool_or(tenant IS NULL), 'versions', "
      "json_agg(json_build_object("
      "'version', version, 'source', source, 'created_at', created_at, 'title', "
      "definition->>'title', 'questions', "
      "jsonb_array_length(definition->'questions')) ORDER BY version DESC), 'version', "
      "coalesce($3::int, max(version)), "
      "'definition', (SELECT definition FROM checklists d WHERE d.id = $1 AND d.version = "
      "coalesce($3::int, max(c.version))))"
      "::text FROM checklists c WHERE id = $1 AND ($2::text IS NULL OR tenant IS NULL OR tenant = "
      "$2) HAVING count(*) > 0",
      {id, scope, version});
  if (!r.ok()) return Unavailable(r.status());
  if (r->empty()) return JsonError(404, "not_found", "no checklist " + id);
  rapidjson::Document d;
  const std::string body = r->get(0, 0);
  d.Parse(body.c_str(), body.size());
  if (!d.HasParseError() && d.IsObject() && JsonMember(d, "definition").IsNull()) {
    return JsonError(404, "not_found",
                     "checklist " + id + " has no version " + version.value_or(""));
  }
  return JsonResponse(200, body);
}

namespace {

// A completed assignment of the caller's tenant, read for an export; or the answer that says why
// not (404 another tenant's or none, 409 not completed, 503).
struct Completed {
  rapidjson::Document definition, answers;
  std::string completed_at, operator_name, reference;
  int version = 0;
};

std::optional<HttpResponse> LoadCompleted(PgConnection& db, const std::string& id,
                                          const TenantScope& scope, Completed* out) {
  auto r = db.Exec(
      "SELECT a.status, c.definition::text, a.answers::text, to_char(a.ended_at AT TIME ZONE "
      "'UTC', "
      "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), coalesce(a.operator_name, ''), a.reference, "
      "a.checklist_version FROM assignments a JOIN checklists c ON c.id = "
      "a.checklist_id AND "
      "c.version = a.checklist_version WHERE a.id = $1 AND ($2::text IS NULL OR a.tenant = $2)",
      {id, scope});
  if (!r.ok()) return Unavailable(r.status());
  if (r->empty()) return JsonError(404, "not_found", "no assignment " + id);
  if (r->get(0, 0) != "completed") {
    return JsonError(
        409, "conflict",
        "assignment " + id + " is " + r->get(0, 0) + ": only a completed one is exported");
  }
  const std::string def_text = r->get(0, 1), answers_text = r->get(0, 2);
  out->completed_at = r->get(0, 3);
  out->operator_name = r->get(0, 4);
  out->reference = r->get(0, 5);
  out->version = std::atoi(r->get(0, 6).c_str());
  out->definition.Parse(def_text.c_str(), def_text.size());
  out->answers.Parse(answers_text.c_str(), answers_text.size());
  if (out->definition.HasParseError() || out->answers.HasParseError() ||
      !JsonMember(out->definition, "questions").IsArray() || !out->answers.IsObject()) {
    return Unavailable(Status(Code::kInternal, "assignment " + id + " has no readable answers"));
  }
  return std::nullopt;
}

// The stored names of an answer's photos (the generator's own alone).
std::vector<std::string> PhotoNames(const rapidjson::Value& answer) {
  std::vector<std::string> names;
  const auto& photos = JsonMember(answer, "photos");
  for (rapidjson::SizeType p = 0; photos.IsArray() && p < photos.Size(); ++p) {
    const std::string name = JsonStr(photos[p], "stored_name");
    if (StoredName(name)) names.push_back(name);
  }
  return names;
}

HttpResponse Attachment(const std::string& id, const char* extension, const char* type,
                        std::string body) {
  HttpResponse resp;
  resp.status = 200;
  resp.content_type = type;
  resp.headers["Content-Disposition"] = "attachment; filename=\"" + id + "." + extension + "\"";
  resp.headers["Cache-Control"] = "no-store";
  resp.headers["X-Content-Type-Options"] = "nosniff";
  resp.body = std::move(body);
  return resp;
}

}  // namespace

HttpResponse ExportAssignmentCsv(PgConnection& db, const std::string& id, const TenantScope& scope,
                                 const PhotoLinkSettings& links) {
  Completed a;
  if (auto refused = LoadCompleted(db, id, scope, &a)) return *refused;
  const auto& questions = JsonMember(a.definition, "questions");
  const int64_t expires = Now(links) + links.ttl.count();
  std::string csv = "number,question,answer,note,photos,photo_links,completed_at\r\n";
  for (rapidjson::SizeType i = 0; i < questions.Size(); ++i) {
    const std::string key = "q" + std::to_string(i + 1);
    const auto& answer = JsonMember(a.answers, key.c_str());
    std::string names, urls;
    for (const auto& name : PhotoNames(answer)) {
      names += (names.empty() ? "" : " ") + name;
      if (links.enabled())
        urls += (urls.empty() ? "" : " ") + MediaLink(links.base_url, links.secret, name, expires);
    }
    csv += std::to_string(i + 1) + "," + CsvCell(JsonStr(questions[i], "text")) + "," +
           CsvCell(JsonStr(answer, "answer")) + "," + CsvCell(JsonStr(answer, "note")) + "," +
           CsvCell(names) + "," + CsvCell(urls) + "," + a.completed_at + "\r\n";
  }
  return Attachment(id, "csv", "text/csv; charset=utf-8", std::move(csv));
}

HttpResponse ExportAssignmentPdf(PgConnection& db, const std::string& id, const TenantScope& scope,
                                 const PhotoFetch& fetch) {
  Completed a;
  if (auto refused = LoadCompleted(db, id, scope, &a)) return *refused;
  const auto& questions = JsonMember(a.definition, "questions");
  const std::string title = JsonStr(a.definition, "title");
  PdfDocument pdf;
  pdf.Heading(title.empty() ? "Checklist" : title);
  pdf.Text("Assignment " + id + " (reference " + a.reference + "), checklist version " +
           std::to_string(a.version));
  pdf.Text((a.operator_name.empty() ? std::string("Completed")
                                    : "Answered by " + a.operator_name + ", completed") +
           " at " + a.completed_at);
  int embedded = 0, missing = 0;
  for (rapidjson::SizeType i = 0; i < questions.Size(); ++i) {
    const std::string key = "q" + std::to_string(i + 1);
    const auto& answer = JsonMember(a.answers, key.c_str());
    pdf.Space(10);
    pdf.Text(std::to_string(i + 1) + ". " + JsonStr(questions[i], "text"), true);
    const std::string said = JsonStr(answer, "answer"), note = JsonStr(answer, "note");
    pdf.Text("Answer: " + (said.empty() ? std::string("-") : said));
    if (!note.empty()) pdf.Text("Note: " + note);
    for (const auto& name : PhotoNames(answer)) {
      auto bytes =
          fetch ? fetch(name) : Result<std::string>(Status(Code::kUnavailable, "no media"));
      Status put = bytes.ok() ? pdf.Jpeg(*bytes, 300, 260) : bytes.status();
      if (put.ok()) {
        ++embedded;
        continue;
      }
      ++missing;
      pdf.Text("Photo " + name + ": not embedded (" + put.message() + ")");
    }
  }
  HttpResponse resp = Attachment(id, "pdf", "application/pdf", pdf.Finish(title));
  resp.headers["X-Convoy-Photos"] =
      std::to_string(embedded) + " embedded, " + std::to_string(missing) + " not";
  return resp;
}

PhotoFetch MediaPhotoFetch(const std::string& media_url, const PhotoLinkSettings& links) {
  if (media_url.empty() || links.secret.empty()) return nullptr;
  return [media_url, links](const std::string& name) -> Result<std::string> {
    HttpClientRequest req;
    req.method = "GET";
    req.url = MediaLink(media_url, links.secret, name, Now(links) + 60);
    auto got = HttpFetch(req);
    if (!got.ok()) return got.status();
    if (got->status != 200) {
      return Status(Code::kUnavailable, "convoy-media answered " + std::to_string(got->status));
    }
    return got->body;
  };
}

}  // namespace convoy::conversation
