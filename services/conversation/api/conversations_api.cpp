#include "api/conversations_api.h"

#include <glog/logging.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <ctime>
#include <map>

#include "convoy/crypto.h"
#include "convoy/log.h"
#include "convoy/pg.h"
#include "convoy/rapidjson_util.h"
#include "convoy/rfc3339.h"
#include "convoy/topology.h"
#include "engine/state_codec.h"
#include "store/thread_control.h"
#include "store/transcript.h"

namespace convoy::conversation {

// 8-4-4-4-12 hex digits: anything else is no conversation's id (and never reaches a ::uuid cast).
bool ValidUuid(const std::string& id) {
  if (id.size() != 36) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash != (id[i] == '-')) return false;
    if (!dash && !std::isxdigit(static_cast<unsigned char>(id[i]))) return false;
  }
  return true;
}

std::optional<std::string> Query(const HttpRequest& r, const char* key) {
  auto it = r.query.find(key);
  return it == r.query.end() || it->second.empty() ? std::optional<std::string>()
                                                   : std::optional<std::string>(it->second);
}

bool Digits(const std::string& s, size_t max) {
  return !s.empty() && s.size() <= max && s.find_first_not_of("0123456789") == std::string::npos;
}

namespace {

using TenantScope = std::optional<std::string>;

constexpr int kWindowSeconds = 24 * 3600;
constexpr int kTextLimit = 4096;  // Meta's limit for a text message body

HttpResponse Unavailable(const Status& s) { return JsonError(503, "unavailable", s.message()); }
HttpResponse NotFound(const std::string& id) {
  return JsonError(404, "not_found", "no conversation " + id);
}

// A viewer reads the shape of conversations, not their people: phone numbers, BSUIDs and what
// was said (message bodies, collected fields) are masked, as logs mask them.
void MaskValue(rapidjson::Value& v, rapidjson::Document::AllocatorType& a) {
  if (v.IsArray()) {
    for (auto& x : v.GetArray()) MaskValue(x, a);
    return;
  }
  if (!v.IsObject()) return;
  for (auto& m : v.GetObject()) {
    const std::string key = m.name.GetString();
    if ((key == "wa_id" || key == "user_id" || key == "body" || key == "note") &&
        m.value.IsString()) {
      const std::string masked = MaskPersonal(m.value.GetString(), false);
      m.value.SetString(masked.c_str(), static_cast<rapidjson::SizeType>(masked.size()), a);
    } else if (key == "fields" && m.value.IsObject()) {
      for (auto& f : m.value.GetObject()) {
        if (!f.value.IsString()) continue;
        const std::string masked = MaskPersonal(f.value.GetString(), false);
        f.value.SetString(masked.c_str(), static_cast<rapidjson::SizeType>(masked.size()), a);
      }
    } else {
      MaskValue(m.value, a);
    }
  }
}

std::string Masked(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.c_str(), json.size());
  if (d.HasParseError()) return json;
  MaskValue(d, d.GetAllocator());
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> w(out);
  d.Accept(w);
  return out.GetString();
}

// The members every list row and every shown conversation has.
constexpr const char* kSummaryMembers =
    "'id', c.id, 'phone_number_id', c.phone_number_id, 'wa_id', c.wa_id, 'user_id', c.user_id, "
    "'owner', c.owner, "
    "'owner_agent', c.owner_agent, 'owner_since', c.owner_since, 'flow', c.flow, 'step', "
    "NULLIF(c.state->>'step', ''), "
    "'last_inbound_at', c.last_inbound_at, 'window_open_until', c.last_inbound_at + interval '24 "
    "hours', "
    "'window_open', coalesce(c.last_inbound_at > now() - interval '24 hours', false), "
    "'created_at', c.created_at, "
    "'updated_at', c.updated_at, 'thread_control', substring(c.thread_control from "
    "':thread_control:([a-z]+):')";

// The conversation, if the caller may see it, locked (FOR UPDATE) when `lock`.
struct Found {
  std::string key, phone_number_id, wa_id, user_id, owner, sink, state, waba_id;
  int64_t last_inbound_at = 0;
  std::string partner_app_id;  // the number's (thread_control); "" none
  std::string thread_control;  // the pending thread_control command's dedupe key; "" none
};
Result<std::optional<Found>> Find(PgConnection& db, const std::string& id, const TenantScope& scope,
                                  bool lock) {
  if (!ValidUuid(id)) return std::optional<Found>();
  auto r = db.Exec(
      std::string(
          "SELECT c.conversation_key, c.phone_number_id, coalesce(c.wa_id, ''), "
          "coalesce(c.user_id, ''), c.owner, coalesce(c.owner_sink, ''), c.state::text, "
          "coalesce(extract(epoch FROM c.last_inbound_at)::bigint, 0), coalesce(n.waba_id, ''), "
          "coalesce(n.partner_app_id, ''), coalesce(c.thread_control, '') "
          "FROM conversations c LEFT JOIN numbers n ON n.phone_number_id = c.phone_number_id "
          "WHERE c.id = $1::uuid AND ($2::text IS NULL OR n.tenant = $2)") +
          (lock ? " FOR UPDATE OF c" : ""),
      {id, scope});
  if (!r.ok()) return r.status();
  if (r->empty()) return std::optional<Found>();
  Found f{r->get(0, 0), r->get(0, 1), r->get(0, 2),     r->get(0, 3), r->get(0, 4), r->get(0, 5),
          r->get(0, 6), r->get(0, 8), r->get_int(0, 7), r->get(0, 9), r->get(0, 10)};
  return std::optional<Found>(std::move(f));
}

// A search's matches ($9, a LIKE pattern), joined first: the trigram indexes find the few
// conversations, which are then sorted (filtering the whole list by membership walked all of it:
// 154 ms on 100,000 conversations, against 0.5 ms for a page without a search).
constexpr const char* kSearchFrom =
    "(SELECT s.id FROM conversations s WHERE (coalesce(s.wa_id, '') || ' ' || coalesce(s.user_id, "
    "'')) ILIKE $9 "
    "UNION SELECT s.id FROM conversation_messages m JOIN conversations s ON s.conversation_key = "
    "m.conversation_key "
    "WHERE m.body ILIKE $9) hit JOIN conversations c ON c.id = hit.id ";
// Without a search $9 is NULL, and said so (every parameter is typed by the query).
constexpr const char* kListFrom = "conversations c ";

HttpResponse List(PgConnection& db, const HttpRequest& r, bool mask, const TenantScope& scope) {
  const std::string limit = Query(r, "limit").value_or("50");
  if (!Digits(limit, 3) || std::stoi(limit) < 1 || std::stoi(limit) > 200) {
    return JsonError(400, "invalid_argument", "limit is 1 to 200");
  }
  auto owner = Query(r, "owner");
  if (owner && *owner != kOwnerBot && *owner != kOwnerHuman && *owner != kOwnerElsewhere) {
    return JsonError(400, "invalid_argument", "owner is one of bot, human, elsewhere");
  }
  auto number = Query(r, "number");
  if (number && !Digits(*number, 32))
    return JsonError(400, "invalid_argument", "number is a phone_number_id (digits)");
  auto status = Query(r, "status");
  if (status && *status != "open" && *status != "closed") {
    return JsonError(400, "invalid_argument",
                     "status is open (the 24-hour window is open) or closed");
  }
  // Search: the customer's phone number or BSUID (any part of it), or anything said in the
  // conversation (a name is found where the customer gave it). Trigram indexes (0038) answer it.
  std::optional<std::string> like;
  if (auto q = Query(r, "q")) {
    if (mask) {
      return JsonError(403, "forbidden",
                       "search reads personal data (numbers, names, what was said), which a viewer "
                       "sees masked: a "
                       "viewer's token cannot search");
    }
    std::string text = *q;
    if (text.find_first_not_of("+0123456789 ()-") ==
        std::string::npos) {  // a phone number as people write it
      text.erase(
          std::remove_if(text.begin(), text.end(),
                         [](char ch) { return !std::isdigit(static_cast<unsigned char>(ch)); }),
          text.end());
    }
    if (text.size() < 3 || q->size() > 200) {
      return JsonError(400, "invalid_argument",
                       "q (search) is 3 to 200 characters (a phone number: at least 3 digits)");
    }
    std::string escaped;
    for (char ch : text) {
      if (ch == '%' || ch == '_' || ch == '\\') escaped += '\\';
      escaped += ch;
    }
    like = "%" + escaped + "%";
  }
  auto after = Query(r, "updated_after");
  if (after && ParseRfc3339(*after) <= 0) {
    return JsonError(400, "invalid_argument",
                     "updated_after is an RFC 3339 time, e.g. 2026-12-07T08:00:00Z");
  }
  // The cursor: "<updated_at in microseconds since the epoch>.<id>" of the last row of a page.
  std::optional<std::string> cursor_us, cursor_id;
  if (auto cursor = Query(r, "cursor")) {
    const size_t dot = cursor->find('.');
    if (dot == std::string::npos || !Digits(cursor->substr(0, dot), 18) ||
        !ValidUuid(cursor->substr(dot + 1))) {
      return JsonError(400, "invalid_argument", "cursor is the next_cursor of a page, unchanged");
    }
    cursor_us = cursor->substr(0, dot);
    cursor_id = cursor->substr(dot + 1);
  }
  auto rows = db.Exec(std::string("SELECT json_build_object(") + kSummaryMembers +
                          ")::text, (extract(epoch FROM c.updated_at) * 1000000)::bigint::text || "
                          "'.' || c.id FROM " +
                          (like ? kSearchFrom : kListFrom) +
                          "LEFT JOIN numbers n ON n.phone_number_id = c.phone_number_id "
                          "WHERE ($1::text IS NULL OR c.owner = $1) AND ($2::text IS NULL OR "
                          "c.phone_number_id = $2) "
                          "AND ($3::text IS NULL OR ($3 = 'open') = coalesce(c.last_inbound_at > "
                          "now() - interval '24 hours', false)) "
                          "AND ($4::text IS NULL OR c.updated_at > $4::timestamptz) AND ($5::text "
                          "IS NULL OR n.tenant = $5) "
                          "AND ($6::text IS NULL OR (c.updated_at, c.id) < (timestamptz 'epoch' + "
                          "$6::bigint * interval '1 microsecond', "
                          "$7::uuid)) AND $9::text IS " +
                          (like ? "NOT NULL" : "NULL") +
                          " ORDER BY c.updated_at DESC, c.id DESC LIMIT $8::int",
                      {owner, number, status, after, scope, cursor_us, cursor_id,
                       std::to_string(std::stoi(limit) + 1), like});
  if (!rows.ok()) return Unavailable(rows.status());
  const size_t n = std::min<size_t>(rows->size(), static_cast<size_t>(std::stoi(limit)));
  std::string list = "{\"conversations\":[";
  for (size_t i = 0; i < n; ++i) list += (i ? "," : "") + rows->get(i, 0);
  list += "]";
  if (rows->size() > n) list += ",\"next_cursor\":" + JsonQuote(rows->get(n - 1, 1));
  list += "}";
  return JsonResponse(200, mask ? Masked(list) : list);
}

// The transcript's photos by the files media stored for them: a message of kind image whose
// media_id names a media_objects row of this conversation's own number gets "photo" (the stored
// name) and, when links are set, "photo_url". A photo still being fetched, refused, or stored
// before media recorded its number (0034) gets neither.
Result<std::string> WithTranscriptPhotos(PgConnection& db, const std::string& messages_json,
                                         const std::string& number,
                                         const PhotoLinkSettings& links) {
  rapidjson::Document d;
  d.Parse(messages_json.c_str(), messages_json.size());
  if (d.HasParseError() || !d.IsArray()) return messages_json;
  rapidjson::StringBuffer ids;
  rapidjson::Writer<rapidjson::StringBuffer> w(ids);
  w.StartArray();
  bool any = false;
  for (const auto& m : d.GetArray()) {
    if (JsonStr(m, "kind") != "image" || JsonStr(m, "media_id").empty()) continue;
    w.String(JsonStr(m, "media_id").c_str());
    any = true;
  }
  w.EndArray();
  if (!any) return messages_json;
  auto stored = db.Exec(
      "SELECT media_id, stored_name FROM media_objects WHERE phone_number_id = $2 AND media_id IN "
      "(SELECT jsonb_array_elements_text($1::jsonb))",
      {std::string(ids.GetString()), number});
  if (!stored.ok()) return stored.status();
  std::map<std::string, std::string> names;
  for (size_t i = 0; i < stored->size(); ++i) names[stored->get(i, 0)] = stored->get(i, 1);
  auto& a = d.GetAllocator();
  for (auto& m : d.GetArray()) {
    if (JsonStr(m, "kind") != "image") continue;
    auto name = names.find(JsonStr(m, "media_id"));
    if (name == names.end()) continue;
    const std::string& n = name->second;
    m.AddMember("photo", rapidjson::Value(n.c_str(), static_cast<rapidjson::SizeType>(n.size()), a),
                a);
    if (auto url = PhotoLink(links, n)) {
      m.AddMember("photo_url",
                  rapidjson::Value(url->c_str(), static_cast<rapidjson::SizeType>(url->size()), a),
                  a);
    }
  }
  return JsonText(d);
}

Result<std::string> ApprovedTemplates(PgConnection& db, const std::string& waba_id);

HttpResponse Show(PgConnection& db, const std::string& id, const HttpRequest& r, bool mask,
                  const TenantScope& scope, const PhotoLinkSettings& links) {
  const std::string limit = Query(r, "messages").value_or("100");
  if (!Digits(limit, 4) || std::stoi(limit) > 1000)
    return JsonError(400, "invalid_argument", "messages is 0 to 1000");
  auto found = Find(db, id, scope, false);
  if (!found.ok()) return Unavailable(found.status());
  if (!*found) return NotFound(id);
  auto row = db.Exec(
      std::string("SELECT json_build_object(") + kSummaryMembers +
          ", 'fields', coalesce(c.state->'fields', '{}'::jsonb))::text FROM conversations c WHERE "
          "c.conversation_key = $1",
      {(*found)->key});
  if (!row.ok()) return Unavailable(row.status());
  if (row->empty()) return NotFound(id);
  auto said = TranscriptJson(db, (*found)->key, std::stoi(limit));
  // A viewer sees no photo: what was said is masked to it, and a photo is said.
  if (said.ok() && !mask) said = WithTranscriptPhotos(db, *said, (*found)->phone_number_id, links);
  if (!said.ok()) return Unavailable(said.status());
  // What an agent may send once the window is closed (the console's template reply).
  auto templates = ApprovedTemplates(db, (*found)->waba_id);
  if (!templates.ok()) return Unavailable(templates.status());
  std::string shown = row->get(0, 0);
  shown.pop_back();
  shown += ",\"messages\":" + *said + ",\"templates\":" + *templates + "}";
  return JsonResponse(200, mask ? Masked(shown) : shown);
}

// The members of a POST body (an empty body is an empty object).
Result<rapidjson::Document> Body(const HttpRequest& r) {
  rapidjson::Document d;
  if (r.body.empty()) {
    d.SetObject();
    return d;
  }
  d.Parse(r.body.c_str(), r.body.size());
  if (d.HasParseError() || !d.IsObject())
    return Status(Code::kInvalidArgument, "the body is a JSON object");
  return d;
}

// An audit row in the conversation's transitions: who changed what, from the API.
Status Audit(PgConnection& db, const Found& f, const std::string& note, const Caller& caller) {
  const std::string step = f.state.empty() ? "idle" : [&] {
    ConversationState s = DecodeState(f.state);
    return s.flow.empty() ? std::string("idle") : s.flow + "/" + s.step;
  }();
  return db
      .Exec(
          "INSERT INTO transitions (conversation_key, from_step, to_step, trigger_dedupe_key, "
          "correlation_id, note) "
          "VALUES ($1, $2, $2, $3, $3, $4)",
          {f.key, step, "api:" + caller.name + ":" + RandomHexId(), note + " by " + caller.name})
      .status();
}

// Runs `change` in a transaction holding the conversation's row lock; 404 when the caller cannot
// see it. `change` answers the request (its status decides commit: below 300 commits).
// The write's audit entry (audit.h) is recorded inside the same transaction when the change
// commits, so a committed change always has its row; otherwise HandleApi records it afterwards.
HttpResponse Locked(PgConnection& db, const std::string& id, const TenantScope& scope,
                    const ConversationsApiSettings& settings, AuditEntry* audit,
                    const std::function<Result<HttpResponse>(const Found&)>& change) {
  auto tx = PgTransaction::Begin(db);
  if (!tx.ok()) return Unavailable(tx.status());
  auto found = Find(db, id, scope, true);
  if (!found.ok() || !*found) return found.ok() ? NotFound(id) : Unavailable(found.status());
  auto answer = change(**found);
  if (!answer.ok()) return Unavailable(answer.status());
  if (answer->status >= 300) return *answer;
  if (audit) {
    audit->status = answer->status;
    Status s = RecordAudit(db, *audit);
    if (!s.ok()) {
      audit->recorded = false;
      return Unavailable(s);
    }
  }
  Status s = tx->Commit();
  if (!s.ok()) {
    if (audit)
      audit->recorded = false;  // rolled back with the change: recorded afterwards as a 503
    return Unavailable(s);
  }
  if (settings.on_commit) settings.on_commit();
  return *answer;
}

std::string OwnerJson(const std::string& id, const std::string& owner, const std::string& agent,
                      bool changed) {
  return "{\"id\":" + JsonQuote(id) + ",\"owner\":" + JsonQuote(owner) +
         (agent.empty() ? "" : ",\"owner_agent\":" + JsonQuote(agent)) +
         ",\"changed\":" + (changed ? "true" : "false") + "}";
}

HttpResponse Handoff(PgConnection& db, const std::string& id, const HttpRequest& r,
                     const Caller& caller, const TenantScope& scope,
                     const ConversationsApiSettings& settings, AuditEntry* audit) {
  auto body = Body(r);
  if (!body.ok()) return JsonError(400, "invalid_argument", body.status().message());
  const std::string reason = JsonStr(*body, "reason").empty() ? "api" : JsonStr(*body, "reason");
  const std::string note = JsonStr(*body, "note");
  if (reason.size() > 200 || note.size() > 2000) {
    return JsonError(400, "invalid_argument",
                     "reason is at most 200 characters, note at most 2000");
  }
  return Locked(db, id, scope, settings, audit, [&](const Found& f) -> Result<HttpResponse> {
    if (f.owner == kOwnerElsewhere) {
      return JsonError(409, "owned_elsewhere",
                       "another app (or Meta's agent) owns this thread: take it back first");
    }
    if (f.owner == kOwnerHuman) return JsonResponse(200, OwnerJson(id, f.owner, "", false));
    Status s = SetOwner(db, f.key, kOwnerHuman, "", settings.handoff_sink, true);
    if (s.ok()) s = Audit(db, f, "handoff", caller);
    if (!s.ok()) return s;
    auto said = TranscriptJson(db, f.key, 50);
    if (!said.ok()) return said.status();
    ConversationDelivery d;
    d.type = "conversation.handoff_requested";
    d.dedupe_key = f.key + ":handoff:" + RandomHexId();
    d.sink = settings.handoff_sink;
    d.conversation_key = f.key;
    d.conversation_id = id;
    d.phone_number_id = f.phone_number_id;
    d.correlation_id = RandomHexId();
    d.wa_id = f.wa_id;
    d.user_id = f.user_id;
    d.outcome = "api";
    d.at = static_cast<int64_t>(std::time(nullptr));
    d.fields = DecodeState(f.state).fields;
    d.conversation_json = {
        {"owner", "\"human\""}, {"reason", JsonQuote(reason)}, {"messages", *said}};
    if (!note.empty()) d.conversation_json["note"] = JsonQuote(note);
    s = QueueConversationDelivery(db, d);
    if (!s.ok()) return s;
    LOG(INFO) << "service=conversation event=handoff by=" << caller.name << " conversation=" << id;
    return JsonResponse(200, OwnerJson(id, kOwnerHuman, "", true));
  });
}

// The token's name as the transcript and thread control name an agent (CONVOY_ADMIN_TOKEN's in
// lower case).
std::string AgentName(const Caller& caller) {
  std::string name = caller.name;
  for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return name;
}

// Meta's thread control needs the number's partner app, and one command at a time.
std::optional<HttpResponse> RefuseThreadControl(const Found& f) {
  if (!f.thread_control.empty()) {
    return JsonError(409, "thread_control_pending",
                     "Meta's thread control (" + PendingThreadAction(f.thread_control) +
                         ") is on its way for this conversation: try again once it is done");
  }
  if (f.partner_app_id.empty()) {
    return JsonError(409, "no_partner_app",
                     "number " + f.phone_number_id +
                         " names no partner_app_id in the numbers registry: its threads "
                         "are convoy's alone, and there is no app to pass them to or take them "
                         "from (PUT /v1/numbers/" +
                         f.phone_number_id + " with partner_app_id)");
  }
  return std::nullopt;
}

// The metadata a thread control carries to the new owner's handover webhook.
Result<std::string> Metadata(const rapidjson::Document& body) {
  if (!body.HasMember("metadata")) return std::string();
  const auto& m = body["metadata"];
  size_t chars = 0;
  if (m.IsString()) {
    for (unsigned char c : std::string(m.GetString(), m.GetStringLength()))
      chars += (c & 0xC0) != 0x80;
  }
  if (!m.IsString() || chars > 2000) {
    return Status(Code::kInvalidArgument,
                  "metadata is a string of at most 2000 characters (Meta's limit)");
  }
  return std::string(m.GetString(), m.GetStringLength());
}

HttpResponse ThreadControlQueued(const std::string& id, const std::string& owner,
                                 const std::string& action) {
  return JsonResponse(202, "{\"id\":" + JsonQuote(id) + ",\"owner\":" + JsonQuote(owner) +
                               ",\"thread_control\":{\"action\":" + JsonQuote(action) +
                               ",\"status\":\"pending\"}}");
}

Result<HttpResponse> QueueFor(PgConnection& db, const Found& f, const std::string& id,
                              const Caller& caller, const std::string& action,
                              const std::string& target_role, const std::string& metadata) {
  ThreadControlCommand c;
  c.action = action;
  c.target_role = target_role;
  c.metadata = metadata;
  c.agent = AgentName(caller);
  c.conversation_key = f.key;
  c.phone_number_id = f.phone_number_id;
  c.wa_id = f.wa_id;
  c.user_id = f.user_id;
  c.partner_app_id = f.partner_app_id;
  auto queued = QueueThreadControl(db, c);
  if (!queued.ok()) return queued.status();
  Status s = Audit(
      db, f,
      "thread_control " + action + (target_role.empty() ? "" : " to " + target_role) + " asked",
      caller);
  if (!s.ok()) return s;
  LOG(INFO) << "service=conversation event=thread_control_queued action=" << action
            << " by=" << caller.name << " conversation=" << id
            << " partner_app_id=" << f.partner_app_id;
  return ThreadControlQueued(id, f.owner, action);
}

HttpResponse Take(PgConnection& db, const std::string& id, const HttpRequest& r,
                  const Caller& caller, const TenantScope& scope,
                  const ConversationsApiSettings& settings, AuditEntry* audit) {
  auto body = Body(r);
  if (!body.ok()) return JsonError(400, "invalid_argument", body.status().message());
  auto metadata = Metadata(*body);
  if (!metadata.ok()) return JsonError(400, "invalid_argument", metadata.status().message());
  return Locked(db, id, scope, settings, audit, [&](const Found& f) -> Result<HttpResponse> {
    if (f.owner == kOwnerElsewhere) {
      // Another app owns the thread: taken back through Meta's thread control (the owner becomes
      // this agent once Meta did it), if the number shares its threads with a partner app.
      if (auto refused = RefuseThreadControl(f)) return *refused;
      return QueueFor(db, f, id, caller, "take", "", *metadata);
    }
    Status s = SetOwner(db, f.key, kOwnerHuman, caller.name,
                        f.sink.empty() ? settings.handoff_sink : "", true);
    if (s.ok()) s = Audit(db, f, "take", caller);
    if (!s.ok()) return s;
    return JsonResponse(200, OwnerJson(id, kOwnerHuman, caller.name, f.owner != kOwnerHuman));
  });
}

// To the escalation partner (Meta's `pass`), to Meta's business agent (pass with target_role
// ai_agent), or back to the automatic responder (`release`).
HttpResponse Pass(PgConnection& db, const std::string& id, const HttpRequest& r,
                  const Caller& caller, const TenantScope& scope,
                  const ConversationsApiSettings& settings, AuditEntry* audit) {
  auto body = Body(r);
  if (!body.ok()) return JsonError(400, "invalid_argument", body.status().message());
  auto metadata = Metadata(*body);
  if (!metadata.ok()) return JsonError(400, "invalid_argument", metadata.status().message());
  const std::string to = body->HasMember("to") ? JsonStr(*body, "to") : "partner";
  if (to != "partner" && to != "ai_agent" && to != "idle") {
    return JsonError(
        400, "invalid_argument",
        "to is partner (the number's escalation partner), ai_agent (Meta's business agent) or idle "
        "(released to the automatic responder)");
  }
  return Locked(db, id, scope, settings, audit, [&](const Found& f) -> Result<HttpResponse> {
    if (f.owner == kOwnerElsewhere) {
      return JsonError(
          409, "owned_elsewhere",
          "another app (or Meta's agent) owns this thread: it is not convoy's to pass");
    }
    if (auto refused = RefuseThreadControl(f)) return *refused;
    return QueueFor(db, f, id, caller, to == "idle" ? "release" : "pass",
                    to == "ai_agent" ? "ai_agent" : "", *metadata);
  });
}

HttpResponse Release(PgConnection& db, const std::string& id, const HttpRequest& r,
                     const Caller& caller, const TenantScope& scope,
                     const ConversationsApiSettings& settings, AuditEntry* audit) {
  auto body = Body(r);
  if (!body.ok()) return JsonError(400, "invalid_argument", body.status().message());
  const std::string step = JsonStr(*body, "step");
  return Locked(db, id, scope, settings, audit, [&](const Found& f) -> Result<HttpResponse> {
    if (f.owner == kOwnerElsewhere) {
      return JsonError(
          409, "owned_elsewhere",
          "another app (or Meta's agent) owns this thread: it is not convoy's to release");
    }
    if (!step.empty()) {
      ConversationState s = DecodeState(f.state);
      if (s.flow.empty() || !settings.has_step || !settings.has_step(s.flow, step)) {
        return JsonError(422, "unknown_step",
                         "step '" + step + "' is not a step of the conversation's flow" +
                             (s.flow.empty() ? " (no flow runs in it)" : " (" + s.flow + ")"));
      }
      s.step = step;
      s.asking.clear();
      s.misses = 0;
      // Entered as of the customer's last message: anything they write after it is the step's.
      s.entered_at = f.last_inbound_at;
      s.history.emplace_back(step, s.entered_at);
      Status saved = db.Exec(
                           "UPDATE conversations SET state = $2::jsonb, version = version + 1 "
                           "WHERE conversation_key = $1",
                           {f.key, EncodeState(s)})
                         .status();
      if (!saved.ok()) return saved;
    }
    Status s = SetOwner(db, f.key, kOwnerBot, "", "", true);
    if (s.ok()) s = Audit(db, f, step.empty() ? "release" : "release to " + step, caller);
    if (!s.ok()) return s;
    return JsonResponse(200, OwnerJson(id, kOwnerBot, "", f.owner != kOwnerBot));
  });
}

// The number's approved templates, for a refusal outside the window: [{"name", "language",
// "category"}].
Result<std::string> ApprovedTemplates(PgConnection& db, const std::string& waba_id) {
  auto r = db.Exec(
      "SELECT coalesce(json_agg(json_build_object('name', name, 'language', language, 'category', "
      "category) "
      "ORDER BY name, language), '[]'::json)::text FROM templates WHERE waba_id = $1 AND status = "
      "'APPROVED'",
      {waba_id});
  if (!r.ok()) return r.status();
  return r->get(0, 0);
}

std::string AgentSendBody(const Found& f, const std::string& dedupe, const std::string& correlation,
                          const std::string& author, const rapidjson::Value& body) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  auto str = [&](const char* k, const std::string& v) {
    w.Key(k);
    w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
  };
  w.StartObject();
  str("schema", "outbound.send");
  w.Key("version");
  w.Int(1);
  str("correlation_id", correlation);
  str("dedupe_key", dedupe);
  str("conversation_key", f.key);
  str("phone_number_id", f.phone_number_id);
  if (!f.wa_id.empty()) {
    str("to", f.wa_id);
  } else {
    str("recipient", f.user_id);
  }
  if (f.last_inbound_at > 0) {
    w.Key("last_inbound_at");
    w.Int64(f.last_inbound_at);
  }
  str("author", author);
  w.Key("message");
  w.StartObject();
  if (body.HasMember("template")) {
    const auto& t = body["template"];
    str("type", "template");
    w.Key("template");
    w.StartObject();
    str("name", JsonStr(t, "name"));
    w.Key("language");
    w.StartObject();
    str("code", JsonStr(t, "language"));
    w.EndObject();
    w.Key("components");
    w.StartArray();
    w.StartObject();
    str("type", "body");
    w.Key("parameters");
    w.StartArray();
    const auto& params = JsonMember(t, "parameters");
    if (params.IsArray()) {
      for (const auto& p : params.GetArray()) {
        w.StartObject();
        str("type", "text");
        str("text", p.GetString());
        w.EndObject();
      }
    }
    w.EndArray();
    w.EndObject();
    w.EndArray();
    w.EndObject();
  } else if (body.HasMember("image")) {
    // The stored file by name: outbound turns it into a signed link of convoy-media's when it
    // sends.
    const auto& image = body["image"];
    str("type", "image");
    w.Key("image");
    w.StartObject();
    str("media", JsonStr(image, "media"));
    if (!JsonStr(image, "caption").empty()) str("caption", JsonStr(image, "caption"));
    w.EndObject();
  } else {
    str("type", "text");
    w.Key("text");
    w.StartObject();
    str("body", JsonStr(body, "text"));
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  return b.GetString();
}

// A stored file's name as convoy-media gives it for a photo: "<sha256 hex>.jpg" or ".png".
bool IsStoredPhotoName(const std::string& name) {
  const size_t dot = name.find('.');
  if (dot != 64 || (name.substr(65) != "jpg" && name.substr(65) != "png")) return false;
  return name.find_first_not_of("0123456789abcdef") == 64;
}

// What an agent may send: a text, a photo uploaded to convoy-media (POST /v1/media) with an
// optional caption, or an approved template with text parameters.
std::optional<HttpResponse> CheckMessage(const rapidjson::Document& d) {
  const bool text = d.HasMember("text"), tpl = d.HasMember("template"),
             image = d.HasMember("image");
  if (int(text) + int(tpl) + int(image) != 1) {
    return JsonError(400, "invalid_argument", "send one of \"text\", \"image\" or \"template\"");
  }
  if (image) {
    const auto& i = d["image"];
    if (!i.IsObject() || !i.HasMember("media") || !i["media"].IsString() ||
        !IsStoredPhotoName(i["media"].GetString())) {
      return JsonError(
          400, "invalid_argument",
          "image needs \"media\": the name POST /v1/media answered (<sha256>.jpg or .png)");
    }
    const auto& caption = JsonMember(i, "caption");
    if (!caption.IsNull() && (!caption.IsString() || caption.GetStringLength() > 1024)) {
      return JsonError(400, "invalid_argument",
                       "an image's caption is a string of at most 1024 characters");
    }
    return std::nullopt;
  }
  if (text) {
    if (!d["text"].IsString() || d["text"].GetStringLength() == 0 ||
        d["text"].GetStringLength() > kTextLimit) {
      return JsonError(400, "invalid_argument", "text is 1 to 4096 characters");
    }
    return std::nullopt;
  }
  const auto& t = d["template"];
  auto ok_str = [&](const char* k, size_t max) {
    return t.IsObject() && t.HasMember(k) && t[k].IsString() && t[k].GetStringLength() > 0 &&
           t[k].GetStringLength() <= max;
  };
  if (!ok_str("name", 512) || !ok_str("language", 32)) {
    return JsonError(400, "invalid_argument",
                     "template needs \"name\" and \"language\" (e.g. en_US)");
  }
  const auto& params = JsonMember(t, "parameters");
  if (!params.IsNull() && (!params.IsArray() || params.Size() > 20)) {
    return JsonError(400, "invalid_argument", "template parameters are at most 20 strings");
  }
  if (params.IsArray()) {
    for (const auto& p : params.GetArray()) {
      if (!p.IsString() || p.GetStringLength() > 1024) {
        return JsonError(400, "invalid_argument",
                         "each template parameter is a string of at most 1024 characters");
      }
    }
  }
  return std::nullopt;
}

HttpResponse Message(PgConnection& db, const std::string& id, const HttpRequest& r,
                     const Caller& caller, const TenantScope& scope,
                     const ConversationsApiSettings& settings, AuditEntry* audit) {
  auto body = Body(r);
  if (!body.ok()) return JsonError(400, "invalid_argument", body.status().message());
  if (auto bad = CheckMessage(*body)) return *bad;
  const std::string idempotency = r.Header("idempotency-key");
  if (idempotency.size() > 255)
    return JsonError(400, "invalid_argument", "Idempotency-Key is at most 255 characters");
  // The transcript's author: the token's name (CONVOY_ADMIN_TOKEN's in lower case).
  const std::string author = "agent:" + AgentName(caller);
  const bool is_template = body->HasMember("template"), is_image = body->HasMember("image");
  return Locked(db, id, scope, settings, audit, [&](const Found& f) -> Result<HttpResponse> {
    // One agent message per Idempotency-Key and conversation: the same key again answers the first.
    const std::string dedupe =
        f.key + ":agent:" +
        (idempotency.empty() ? RandomHexId()
                             : Sha256Hex(caller.tenant + "\n" + idempotency).substr(0, 32));
    auto seen = db.Exec("SELECT seq FROM conversation_messages WHERE dedupe_key = $1", {dedupe});
    if (!seen.ok()) return seen.status();
    if (!seen->empty()) {
      return JsonResponse(
          200, "{\"id\":" + JsonQuote(id) + ",\"seq\":" + seen->get(0, 0) + ",\"duplicate\":true}");
    }
    if (f.owner == kOwnerElsewhere) {
      return JsonError(409, "owned_elsewhere",
                       "another app (or Meta's agent) owns this thread: a message now would take "
                       "it over; take it first");
    }
    if (!f.thread_control.empty()) {
      return JsonError(409, "thread_control_pending",
                       "Meta's thread control (" + PendingThreadAction(f.thread_control) +
                           ") is on its way for this conversation: a message now could go out on a "
                           "thread convoy gave "
                           "away");
    }
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    if (!is_template && (f.last_inbound_at == 0 || now - f.last_inbound_at >= kWindowSeconds)) {
      auto templates = ApprovedTemplates(db, f.waba_id);
      if (!templates.ok()) return templates.status();
      HttpResponse closed = JsonResponse(
          422,
          "{\"error\":{\"code\":\"window_closed\",\"message\":\"the customer last wrote more than "
          "24 hours ago (or "
          "never): only an approved template can reopen the conversation\",\"templates\":" +
              *templates + "}}");
      return closed;
    }
    std::string media_id;
    if (is_image) {
      // A photo this conversation's number brought or an agent uploaded for it: never another
      // number's (another tenant's) file.
      auto known = db.Exec(
          "SELECT media_id FROM media_objects WHERE stored_name = $1 AND phone_number_id = $2 "
          "LIMIT 1",
          {JsonStr((*body)["image"], "media"), f.phone_number_id});
      if (!known.ok()) return known.status();
      if (known->empty()) {
        return JsonError(422, "unknown_media",
                         "no such photo on this conversation's number: upload it with POST "
                         "/v1/media?phone_number_id=" +
                             f.phone_number_id);
      }
      media_id =
          known->get(0, 0);  // the transcript names media as inbound photos do: media_objects' key
    }
    const std::string correlation = RandomHexId();
    Status s = QueueCommand(db, queues::kOutboundSend, dedupe, correlation, f.key,
                            AgentSendBody(f, dedupe, correlation, author, *body));
    TranscriptMessage m;
    m.direction = "out";
    m.author = author;
    m.kind = is_template ? "template" : is_image ? "image" : "text";
    m.body = is_template ? JsonStr((*body)["template"], "name")
             : is_image  ? JsonStr((*body)["image"], "caption")
                         : JsonStr(*body, "text");
    m.media_id = media_id;
    m.channel = "api";
    m.dedupe_key = dedupe;
    if (s.ok()) s = RecordMessage(db, f.key, m);
    // An agent who writes owns the conversation: the bot stays silent from here.
    if (s.ok() && f.owner != kOwnerHuman) {
      s = SetOwner(db, f.key, kOwnerHuman, caller.name, f.sink.empty() ? settings.handoff_sink : "",
                   true);
      if (s.ok()) s = Audit(db, f, "take (message)", caller);
    }
    if (!s.ok()) return s;
    auto seq = db.Exec("SELECT seq FROM conversation_messages WHERE dedupe_key = $1", {dedupe});
    if (!seq.ok()) return seq.status();
    return JsonResponse(
        202, "{\"id\":" + JsonQuote(id) + ",\"seq\":" + seq->get(0, 0) + ",\"status\":\"queued\"}");
  });
}

}  // namespace

std::optional<HttpResponse> HandleConversationsApi(const HttpRequest& r, const std::string& route,
                                                   const Caller& caller,
                                                   const ConversationsApiSettings& settings,
                                                   AuditEntry* audit) {
  const std::string prefix = "/v1/conversations";
  if (route.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  const TenantScope scope = caller.all_tenants() ? TenantScope() : TenantScope(caller.tenant);
  auto db = PgConnection::Connect(settings.pg_dsn);
  if (!db.ok()) return Unavailable(db.status());
  if (route == prefix) return List(**db, r, !SeesPersonalData(caller.role), scope);
  std::string id = r.path.substr(prefix.size() + 1);
  id = id.substr(0, id.find('/'));
  if (route == prefix + "/{id}")
    return Show(**db, id, r, !SeesPersonalData(caller.role), scope, settings.photo_links);
  if (route == prefix + "/{id}/handoff")
    return Handoff(**db, id, r, caller, scope, settings, audit);
  if (route == prefix + "/{id}/take") return Take(**db, id, r, caller, scope, settings, audit);
  if (route == prefix + "/{id}/pass") return Pass(**db, id, r, caller, scope, settings, audit);
  if (route == prefix + "/{id}/release")
    return Release(**db, id, r, caller, scope, settings, audit);
  if (route == prefix + "/{id}/messages")
    return Message(**db, id, r, caller, scope, settings, audit);
  return JsonError(404, "not_found", "no such route");
}

}  // namespace convoy::conversation
