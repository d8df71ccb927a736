#include "templates.h"

#include <glog/logging.h>
#include <rapidjson/document.h>

#include <cctype>
#include <chrono>
#include <optional>

#include "convoy/http.h"
#include "convoy/log.h"
#include "convoy/metrics.h"
#include "convoy/rapidjson_util.h"
#include "convoy/url.h"
#include "graph.h"

namespace convoy::outbound {

namespace {

// Meta's codes for what it answers a send of such a template.
constexpr int kTemplateMissingCode = 132001;  // does not exist in that language (or not approved)
constexpr int kTemplatePausedCode = 132015;
constexpr int kTemplateDisabledCode = 132016;

// The number's WABA, the template's status, category and reason as the catalog has them, and
// whether the WABA's catalog was ever synced whole. No row: the registry does not have the number.
constexpr const char* kTemplateOf =
    "SELECT n.waba_id, coalesce(t.status, ''), coalesce(t.category, ''), coalesce(t.reason, ''), "
    "EXISTS (SELECT 1 FROM template_syncs s WHERE s.waba_id = n.waba_id) "
    "FROM numbers n LEFT JOIN templates t ON t.waba_id = n.waba_id AND t.name = $2 AND t.language "
    "= $3 "
    "WHERE n.phone_number_id = $1";

// One change: each of status (with its reason), category and quality that is given ($5, $7, $8) is
// taken as of $9 (seconds) unless the catalog holds a newer one. No row returned: nothing was
// newer.
constexpr const char* kApply =
    "INSERT INTO templates AS t (waba_id, name, language, template_id, status, status_at, reason, "
    "category, "
    "category_at, quality, quality_at, source) VALUES ($1, $2, $3, $4, $5, "
    "CASE WHEN $5::text IS NULL THEN NULL ELSE to_timestamp($9::bigint) END, $6, $7, "
    "CASE WHEN $7::text IS NULL THEN NULL ELSE to_timestamp($9::bigint) END, $8, "
    "CASE WHEN $8::text IS NULL THEN NULL ELSE to_timestamp($9::bigint) END, $10) "
    "ON CONFLICT (waba_id, name, language) DO UPDATE SET "
    "template_id = coalesce(EXCLUDED.template_id, t.template_id), "
    "status = CASE WHEN EXCLUDED.status_at >= coalesce(t.status_at, '-infinity') THEN "
    "EXCLUDED.status ELSE t.status END, "
    "reason = CASE WHEN EXCLUDED.status_at >= coalesce(t.status_at, '-infinity') THEN "
    "EXCLUDED.reason ELSE t.reason END, "
    "status_at = greatest(t.status_at, EXCLUDED.status_at), "
    "category = CASE WHEN EXCLUDED.category_at >= coalesce(t.category_at, '-infinity') THEN "
    "EXCLUDED.category "
    "ELSE t.category END, category_at = greatest(t.category_at, EXCLUDED.category_at), "
    "quality = CASE WHEN EXCLUDED.quality_at >= coalesce(t.quality_at, '-infinity') THEN "
    "EXCLUDED.quality "
    "ELSE t.quality END, quality_at = greatest(t.quality_at, EXCLUDED.quality_at), "
    "source = EXCLUDED.source, updated_at = now() "
    "WHERE EXCLUDED.status_at >= coalesce(t.status_at, '-infinity') OR "
    "EXCLUDED.category_at >= coalesce(t.category_at, '-infinity') OR "
    "EXCLUDED.quality_at >= coalesce(t.quality_at, '-infinity') RETURNING 1";

// After a whole sync that started at $2: what Graph no longer lists, and no webhook changed since.
constexpr const char* kMarkDeleted =
    "UPDATE templates SET status = 'DELETED', reason = 'not listed by Graph at the last sync', "
    "status_at = to_timestamp($2::bigint), source = 'sync', updated_at = now() "
    "WHERE waba_id = $1 AND coalesce(status_at, '-infinity') < to_timestamp($2::bigint) "
    "AND coalesce(status, '') <> 'DELETED'";
constexpr const char* kRecordSync =
    "INSERT INTO template_syncs (waba_id, synced_at, templates, pages) VALUES ($1, "
    "to_timestamp($2::bigint), $3::int, "
    "$4::int) ON CONFLICT (waba_id) DO UPDATE SET synced_at = EXCLUDED.synced_at, templates = "
    "EXCLUDED.templates, "
    "pages = EXCLUDED.pages";

struct Metrics {
  Registry& r = DefaultRegistry();
  Counter& Check(const char* result) {
    return r.GetCounter(
        "convoy_outbound_template_checks_total",
        "Template sends checked against the catalog: approved, refused (no call), unchecked (the "
        "number has no WABA in the registry, or its WABA was never synced and does not know it).",
        std::string("result=\"") + result + "\"");
  }
  Counter& Update(const char* outcome) {
    return r.GetCounter(
        "convoy_outbound_template_updates_total",
        "Template webhooks applied to the catalog, or stale (older than what it keeps).",
        std::string("outcome=\"") + outcome + "\"");
  }
  Counter &approved = Check("approved"), &refused = Check("refused"),
          &unchecked = Check("unchecked");
  Counter &applied = Update("applied"), &stale = Update("stale");
};

Metrics& M() {
  static Metrics* m = new Metrics();
  return *m;
}

std::optional<std::string> Opt(const std::string& s) {
  return s.empty() ? std::nullopt : std::optional<std::string>(s);
}

// Meta's ids come as numbers in webhooks and as strings from Graph.
std::string IdText(const rapidjson::Value& v) {
  if (v.IsString()) return v.GetString();
  if (v.IsUint64()) return std::to_string(v.GetUint64());
  if (v.IsInt64()) return std::to_string(v.GetInt64());
  return "";
}

std::string Lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

struct Change {
  std::string waba, name, language, id, status, reason, category, quality;
  int64_t at = 0;
  const char* source = "webhook";
};

Result<bool> Upsert(PgConnection& db, const Change& c) {
  auto r = db.Exec(
      kApply, {c.waba, c.name, c.language, Opt(c.id), Opt(c.status), Opt(c.reason), Opt(c.category),
               Opt(c.quality), std::to_string(c.at), std::string(c.source)});
  if (!r.ok()) return r.status();
  return !r->empty();
}

}  // namespace

const char* SendEndpoint(bool is_template, const std::string& category) {
  return is_template && Lower(category) == "marketing" ? "marketing_messages" : "messages";
}

Result<TemplateVerdict> TemplateCatalog::Check(const std::string& phone_number_id,
                                               const std::string& name,
                                               const std::string& language) {
  auto r = db_.Exec(kTemplateOf, {phone_number_id, name, language});
  if (!r.ok()) return r.status();
  TemplateVerdict v;
  if (r->empty()) {
    M().unchecked.Inc();
    return v;
  }
  const std::string waba = r->get(0, 0), status = r->get(0, 1), reason = r->get(0, 3);
  const bool synced = r->get(0, 4) == "t";
  v.category = Lower(r->get(0, 2));
  const std::string what = "template '" + name + "' (" + language + ") of WABA " + waba;
  if (status.empty() && !synced) {
    M().unchecked.Inc();  // a catalog never synced knows only what webhooks told since
    return v;
  }
  v.checked = true;
  if (status == "APPROVED") {
    M().approved.Inc();
    return v;
  }
  M().refused.Inc();
  v.allowed = false;
  if (status.empty()) {
    v.code = kTemplateMissingCode;
    v.reason = what + " is not in its catalog (synced from Graph): not sent";
  } else {
    v.code = status == "PAUSED"     ? kTemplatePausedCode
             : status == "DISABLED" ? kTemplateDisabledCode
                                    : kTemplateMissingCode;
    v.reason = what + " is " + status +
               (reason.empty() || reason == "NONE" ? "" : " (" + reason + ")") +
               ", not APPROVED: not sent";
  }
  return v;
}

Disposition TemplateCatalog::Apply(const std::string& body) {
  rapidjson::Document doc;
  doc.Parse(body.c_str(), body.size());
  const auto& t = JsonMember(doc, "template");
  Change c;
  c.waba = JsonStr(doc, "waba_id");
  c.name = JsonStr(t, "message_template_name");
  c.language = JsonStr(t, "message_template_language");
  c.id = IdText(JsonMember(t, "message_template_id"));
  const auto& at = JsonMember(doc, "event_time");
  c.at = at.IsInt64() ? at.GetInt64() : 0;
  const std::string field = JsonStr(doc, "field");
  if (field == "message_template_status_update") {
    c.status = JsonStr(t, "event");
    c.reason = JsonStr(t, "reason");
    c.category = JsonStr(t, "message_template_category");
  } else if (field == "message_template_quality_update") {
    c.quality = JsonStr(t, "new_quality_score");
  } else {
    // template_category_update: new_category is the category now (a notice of a change to come
    // names the coming one in correct_category, with category_update_timestamp).
    c.category = JsonStr(t, "new_category");
  }
  LogCtx ctx("outbound.status", JsonStr(doc, "correlation_id"));
  if (c.status.empty() && c.category.empty() && c.quality.empty()) {
    M().stale.Inc();
    LOG(WARNING) << ctx << "event=template_change_without_value field=" << field
                 << " waba=" << c.waba << " template=" << c.name;
    return Disposition::Ack();
  }
  auto applied = Upsert(db_, c);
  if (!applied.ok()) return DispositionFor(applied.status());
  (*applied ? M().applied : M().stale).Inc();
  LOG(INFO) << ctx << "event=template_change field=" << field << " waba=" << c.waba
            << " template=" << c.name << " language=" << c.language << " status=" << c.status
            << " category=" << c.category << " quality=" << c.quality << " at=" << c.at
            << " applied=" << *applied;
  return Disposition::Ack();
}

Result<TemplateSync> SyncTemplates(PgConnection& db, const GraphTarget& graph,
                                   const std::string& waba_id,
                                   const TemplateSyncSettings& settings) {
  const int64_t started = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  TemplateSync out;
  std::string after;
  for (;;) {
    if (out.pages >= settings.max_pages) {
      return Status(Code::kTooLarge,
                    "WABA " + waba_id + " lists more than " + std::to_string(settings.max_pages) +
                        " pages of templates: sync stopped, nothing marked deleted");
    }
    HttpClientRequest req;
    req.url = graph.base_url + "/" + waba_id +
              "/message_templates?fields=id,name,language,status,category,quality_score" +
              "&limit=" + std::to_string(settings.page_size) +
              (after.empty() ? "" : "&after=" + UrlEncode(after));
    req.headers["Authorization"] = "Bearer " + graph.token;
    req.timeout = settings.timeout;
    auto resp = HttpFetch(req);
    if (!resp.ok()) return resp.status();
    ++out.pages;
    if (resp->status / 100 != 2) {
      GraphError err = ParseGraphError(resp->status, resp->body);
      return Status(resp->status >= 500 ? Code::kUnavailable : Code::kRejected,
                    "Graph answered HTTP " + std::to_string(resp->status) + " to page " +
                        std::to_string(out.pages) + " of WABA " + waba_id +
                        "'s templates: " + std::to_string(err.code) + " " + err.message);
    }
    rapidjson::Document d;
    d.Parse(resp->body.c_str(), resp->body.size());
    const auto& data = JsonMember(d, "data");
    if (d.HasParseError() || !data.IsArray()) {
      return Status(Code::kRejected, "page " + std::to_string(out.pages) + " of WABA " + waba_id +
                                         "'s templates has no data array");
    }
    for (const auto& t : data.GetArray()) {
      Change c;
      c.waba = waba_id;
      c.name = JsonStr(t, "name");
      c.language = JsonStr(t, "language");
      if (c.name.empty() || c.language.empty()) continue;  // not a template Meta would list
      c.id = IdText(JsonMember(t, "id"));
      c.status = JsonStr(t, "status");
      c.category = JsonStr(t, "category");
      const auto& q = JsonMember(t, "quality_score");
      c.quality = q.IsString() ? q.GetString() : JsonStr(q, "score");
      c.at = started;
      c.source = "sync";
      auto r = Upsert(db, c);
      if (!r.ok()) return r.status();
      ++out.templates;
    }
    const auto& paging = JsonMember(d, "paging");
    after = JsonStr(JsonMember(paging, "cursors"), "after");
    // Meta gives `next` while there is a page after this one; the cursor alone names the last page
    // too.
    if (JsonStr(paging, "next").empty() || after.empty() || data.Empty()) break;
  }
  auto gone = db.Exec(kMarkDeleted, {waba_id, std::to_string(started)});
  if (!gone.ok()) return gone.status();
  out.deleted = static_cast<int>(gone->affected);
  auto rec = db.Exec(kRecordSync, {waba_id, std::to_string(started), std::to_string(out.templates),
                                   std::to_string(out.pages)});
  if (!rec.ok()) return rec.status();
  LOG(INFO) << "service=outbound event=templates_synced waba=" << waba_id
            << " templates=" << out.templates << " pages=" << out.pages
            << " deleted=" << out.deleted;
  return out;
}

}  // namespace convoy::outbound
