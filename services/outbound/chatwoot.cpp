#include "chatwoot.h"

#include <glog/logging.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <ctime>
#include <functional>

#include "convoy/crypto.h"
#include "convoy/http.h"
#include "convoy/log.h"
#include "convoy/rapidjson_util.h"
#include "deliverer.h"

namespace convoy::outbound::chatwoot {

namespace {

// The Chatwoot conversation of convoy's, touched so that a mirrored conversation outlives
// retention.
constexpr const char* kTouch =
    "UPDATE chatwoot_conversations SET updated_at = now() WHERE sink = $1 AND conversation_id = "
    "$2::uuid "
    "RETURNING chatwoot_conversation_id";
constexpr const char* kRecord =
    "INSERT INTO chatwoot_conversations (sink, conversation_id, chatwoot_conversation_id, "
    "chatwoot_contact_id) "
    "VALUES ($1, $2::uuid, $3::bigint, $4::bigint) ON CONFLICT (sink, conversation_id) DO UPDATE "
    "SET "
    "chatwoot_conversation_id = EXCLUDED.chatwoot_conversation_id, chatwoot_contact_id = "
    "EXCLUDED.chatwoot_contact_id, "
    "updated_at = now()";
constexpr const char* kForget =
    "DELETE FROM chatwoot_conversations WHERE sink = $1 AND conversation_id = $2::uuid";
constexpr const char* kConvoyOf =
    "SELECT conversation_id::text FROM chatwoot_conversations WHERE sink = $1 AND "
    "chatwoot_conversation_id = $2::bigint";

// A private note holds at most this much of the transcript (Chatwoot takes 150,000 characters).
constexpr size_t kNoteBytes = 100000;
constexpr size_t kLineBytes = 2000;

bool IsUuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : HexDigitValue(s[i]) < 0) return false;
  }
  return true;
}

// At most `max` bytes of `s`, cut on a character boundary.
std::string Cut(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut) + "…";
}

// What a message shows in the inbox: its text or caption, a media message named by its kind.
std::string Shown(const rapidjson::Value& m) {
  const std::string kind = JsonStr(m, "kind"), body = JsonStr(m, "body");
  if (!JsonStr(m, "media_id").empty())
    return "[" + (kind.empty() ? std::string("media") : kind) + "]" +
           (body.empty() ? "" : " " + body);
  if (!body.empty()) return body;
  return "[" + (kind.empty() ? std::string("message") : kind) + "]";
}

class Api {
 public:
  Api(const Sink& sink, Attempt* attempt) : sink_(sink), a_(attempt) {}

  // One call to the account's API; false with the attempt filled in when it did not answer 2xx
  // (404 is left to the caller: status_code says so). A write that got no answer is uncertain.
  bool Call(const char* method, const std::string& path, const std::string& body, const char* what,
            rapidjson::Document* out) {
    HttpClientRequest req;
    req.method = method;
    req.url = sink_.url + "/api/v1/accounts/" + std::to_string(sink_.account_id) + path;
    req.public_only = !sink_.allow_private;
    req.body = body;
    req.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(sink_.timeout);
    req.headers["api_access_token"] = sink_.token;
    req.headers["User-Agent"] = "convoy-outbound";
    // A POST or PATCH is never sent again by HttpFetch once Chatwoot may have read it (a timeout
    // that closes the socket after Chatwoot took the message fails it, uncertain): no second,
    // silent post, on a kept-alive connection too.
    auto resp = HttpFetch(req);
    if (!resp.ok()) {
      a_->kind = std::string(method) == "GET" ? Attempt::Kind::kRetry : Attempt::Kind::kUncertain;
      a_->error = std::string(what) + ": " + resp.status().ToString();
      return false;
    }
    a_->status_code = resp->status;
    a_->response = resp->body.substr(0, 1024);
    const int s = resp->status;
    if (s / 100 == 2) {
      out->Parse(resp->body.c_str(), resp->body.size());
      if (out->HasParseError() || !out->IsObject()) {
        a_->kind = Attempt::Kind::kRetry;
        a_->error = std::string(what) + ": the answer is not a JSON object";
        return false;
      }
      return true;
    }
    a_->error = std::string(what) + ": HTTP " + std::to_string(s);
    if (s == 408 || s == 429 || s / 100 == 5 || s / 100 == 3) {
      a_->kind = Attempt::Kind::kRetry;
      auto it = resp->headers.find("retry-after");
      const int64_t after =
          it == resp->headers.end() ? -1 : RetryAfterSeconds(it->second, std::time(nullptr));
      if (after > 0) a_->retry_after_ms = after * 1000;
      if (s / 100 == 3) a_->error += " (redirects are not followed: fix the sink's url)";
    } else {
      a_->kind = Attempt::Kind::kPermanent;
      if (s == 401 || s == 403) a_->error += " (Chatwoot refused the sink's token)";
    }
    return false;
  }

 private:
  const Sink& sink_;
  Attempt* a_;
};

std::string Object(const std::function<void(rapidjson::Writer<rapidjson::StringBuffer>&)>& fill) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.StartObject();
  fill(w);
  w.EndObject();
  return std::string(b.GetString(), b.GetSize());
}

void Str(rapidjson::Writer<rapidjson::StringBuffer>& w, const char* key, const std::string& v) {
  w.Key(key);
  w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
}

int64_t IdOf(const rapidjson::Value& v) {
  return JsonMember(v, "id").IsInt64() ? v["id"].GetInt64() : 0;
}

// The contact of `identifier`: found, else made (the identifier is unique in an account: one
// already taken is a contact an earlier attempt made, found again). 0 with the attempt filled in.
int64_t Contact(Api& api, const Sink& sink, const Plan& plan, const std::string& identifier) {
  auto find = [&]() -> int64_t {
    rapidjson::Document found;
    if (!api.Call("GET", "/contacts/search?q=" + identifier, "", "contact search", &found))
      return -1;
    const auto& list = JsonMember(found, "payload");
    if (list.IsArray()) {
      for (const auto& c : list.GetArray()) {
        if (JsonStr(c, "identifier") == identifier && IdOf(c) > 0) return IdOf(c);
      }
    }
    return 0;
  };
  int64_t id = find();
  if (id != 0) return std::max<int64_t>(id, 0);
  rapidjson::Document made;
  const std::string body = Object([&](auto& w) {
    w.Key("inbox_id");
    w.Int64(sink.inbox_id);
    Str(w, "name", plan.contact_name);
    Str(w, "identifier", identifier);
    if (!plan.phone_number.empty()) Str(w, "phone_number", plan.phone_number);
  });
  if (api.Call("POST", "/contacts", body, "contact create", &made)) {
    id = IdOf(JsonMember(JsonMember(made, "payload"), "contact"));
    if (id > 0) return id;
  }
  // Taken (422) or unknown: whoever made it, it is found now, or the next attempt finds it.
  id = find();
  return std::max<int64_t>(id, 0);
}

// The contact's conversation in the sink's inbox: found, else opened.
int64_t Conversation(Api& api, const Sink& sink, const Plan& plan, int64_t contact,
                     const std::string& identifier) {
  rapidjson::Document found;
  if (!api.Call("GET", "/contacts/" + std::to_string(contact) + "/conversations", "",
                "conversation list", &found))
    return 0;
  const auto& list = JsonMember(found, "payload");
  int64_t id = 0;
  if (list.IsArray()) {
    for (const auto& c : list.GetArray()) {
      if (JsonMember(c, "inbox_id").IsInt64() && c["inbox_id"].GetInt64() == sink.inbox_id &&
          IdOf(c) > 0) {
        id = id == 0 ? IdOf(c) : std::min(id, IdOf(c));  // the first one opened
      }
    }
  }
  if (id > 0) return id;
  rapidjson::Document made;
  const std::string body = Object([&](auto& w) {
    Str(w, "source_id", identifier);
    w.Key("inbox_id");
    w.Int64(sink.inbox_id);
    w.Key("contact_id");
    w.Int64(contact);
    Str(w, "status", "open");
    w.Key("additional_attributes");
    w.StartObject();
    Str(w, "convoy_conversation_id", plan.conversation_id);
    w.EndObject();
  });
  if (!api.Call("POST", "/conversations", body, "conversation create", &made)) return 0;
  return IdOf(made);
}

}  // namespace

std::string ContactIdentifier(const std::string& conversation_id) {
  return "convoy:" + conversation_id;
}

std::string SourceId(const std::string& result_id) {
  return "convoy:" + Sha256Hex(result_id).substr(0, 32);
}

std::string Signature(const std::string& secret, const std::string& timestamp,
                      const std::string& body) {
  return "sha256=" + HexEncode(HmacSha256(secret, timestamp + "." + body));
}

bool VerifySignature(const std::vector<std::string>& secrets, const std::string& timestamp,
                     const std::string& body, const std::string& signature, int64_t now,
                     int64_t tolerance_seconds) {
  if (timestamp.empty() || timestamp.size() > 12 ||
      !std::all_of(timestamp.begin(), timestamp.end(),
                   [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    return false;
  }
  const int64_t at = std::atoll(timestamp.c_str());
  if (at < now - tolerance_seconds || at > now + tolerance_seconds) return false;
  bool ok = false;
  for (const auto& secret : secrets)
    ok |= ConstantTimeEquals(Signature(secret, timestamp, body), signature);
  return ok;
}

Plan PlanFor(const std::string& command_json, bool share_phone) {
  Plan p;
  rapidjson::Document c;
  c.Parse(command_json.c_str(), command_json.size());
  const auto& conv = JsonMember(c, "conversation");
  if (!conv.IsObject()) {
    p.why_nothing = "a chatwoot sink mirrors conversations (a handoff, a customer's message); " +
                    JsonStr(c, "type") + " carries none";
    p.what = Mirror::kInvalid;
    return p;
  }
  p.conversation_id = JsonStr(conv, "id");
  if (!IsUuid(p.conversation_id)) {
    p.why_nothing = "the conversation's id is not convoy's (a uuid)";
    p.what = Mirror::kInvalid;
    return p;
  }
  p.source_id = SourceId(JsonStr(c, "result_id"));
  const auto& fields = JsonMember(c, "fields");
  const std::string wa_id = JsonStr(c, "wa_id"), name = JsonStr(fields, "name");
  p.contact_name = !name.empty()       ? Cut(name, 200)
                   : wa_id.size() >= 4 ? "WhatsApp ···" + wa_id.substr(wa_id.size() - 4)
                                       : "WhatsApp customer";
  if (share_phone && !wa_id.empty()) p.phone_number = "+" + wa_id;
  const auto& message = JsonMember(conv, "message");
  const auto& messages = JsonMember(conv, "messages");
  if (JsonStr(c, "type") == "conversation.message" && message.IsObject()) {
    if (JsonStr(message, "author") != "customer") {
      p.why_nothing = "only the customer's messages are mirrored";
      return p;
    }
    p.what = Mirror::kMessage;
    p.content = Cut(Shown(message), kNoteBytes);
    return p;
  }
  if (!messages.IsArray()) {
    p.why_nothing = JsonStr(c, "type") + " has nothing to show in the inbox";
    return p;
  }
  p.what = Mirror::kHandoff;
  std::string note = "Handed over by convoy (" + JsonStr(c, "type") + ")";
  if (!JsonStr(conv, "reason").empty()) note += ", reason: " + JsonStr(conv, "reason");
  note += ".";
  if (!JsonStr(conv, "note").empty()) note += "\nNote: " + Cut(JsonStr(conv, "note"), kLineBytes);
  if (fields.IsObject() && fields.MemberCount() > 0) {
    note += "\nCollected:";
    for (const auto& f : fields.GetObject()) {
      if (f.value.IsString())
        note +=
            "\n- " + std::string(f.name.GetString()) + ": " + Cut(f.value.GetString(), kLineBytes);
    }
  }
  note += "\nTranscript (" + std::to_string(messages.Size()) + " messages, oldest first):";
  std::string lines;
  for (auto it = messages.End(); it != messages.Begin();) {  // newest kept when it is long
    --it;
    std::string line = "\n[" + JsonStr(*it, "at") + "] " + JsonStr(*it, "author") + ": " +
                       Cut(Shown(*it), kLineBytes);
    if (lines.size() + line.size() + note.size() > kNoteBytes) break;
    lines.insert(0, line);
  }
  p.content = note + lines;
  return p;
}

Result<int64_t> ChatwootConversation(PgConnection& db, const std::string& sink,
                                     const std::string& conversation_id) {
  auto r = db.Exec(kTouch, {sink, conversation_id});
  if (!r.ok()) return r.status();
  return r->empty() ? int64_t{0} : r->get_int(0, 0);
}

Result<std::string> ConvoyConversation(PgConnection& db, const std::string& sink,
                                       int64_t chatwoot_conversation) {
  auto r = db.Exec(kConvoyOf, {sink, std::to_string(chatwoot_conversation)});
  if (!r.ok()) return r.status();
  return r->empty() ? std::string() : r->get(0, 0);
}

Attempt Deliver(PgConnection& db, const Sink& sink, const std::string& command_json,
                bool reconcile) {
  Attempt a;
  const Plan plan = PlanFor(command_json, sink.share_phone);
  if (plan.what == Mirror::kInvalid) {
    a.kind = Attempt::Kind::kPermanent;
    a.error = plan.why_nothing;
    return a;
  }
  if (plan.what == Mirror::kNothing) {
    a.kind = Attempt::Kind::kDelivered;
    a.response = "nothing mirrored: " + plan.why_nothing;
    return a;
  }
  Api api(sink, &a);
  auto known = ChatwootConversation(db, sink.name, plan.conversation_id);
  if (!known.ok()) {
    a.error = "chatwoot_conversations: " + known.status().ToString();
    return a;
  }
  int64_t conversation = *known;
  if (conversation == 0) {
    const std::string identifier = ContactIdentifier(plan.conversation_id);
    const int64_t contact = Contact(api, sink, plan, identifier);
    if (contact == 0) return a;
    conversation = Conversation(api, sink, plan, contact, identifier);
    if (conversation == 0) return a;
    Status s = db.Exec(kRecord, {sink.name, plan.conversation_id, std::to_string(conversation),
                                 std::to_string(contact)})
                   .status();
    if (!s.ok())
      LOG(WARNING) << "service=outbound event=chatwoot_conversation_not_recorded sink=" << sink.name
                   << " conversation_id=" << plan.conversation_id << " error=" << s.ToString();
  }
  const std::string path = "/conversations/" + std::to_string(conversation) + "/messages";
  if (reconcile) {
    // The last attempt may have posted it: its source_id says.
    rapidjson::Document listed;
    if (!api.Call("GET", path, "", "message list", &listed)) return a;
    const auto& list = JsonMember(listed, "payload");
    if (list.IsArray()) {
      for (const auto& m : list.GetArray()) {
        if (JsonStr(m, "source_id") == plan.source_id) {
          a.kind = Attempt::Kind::kDelivered;
          a.external_id = std::to_string(IdOf(m));
          a.response = "found by its source_id: the last attempt posted it";
          return a;
        }
      }
    }
  }
  const bool note = plan.what == Mirror::kHandoff;
  const std::string body = Object([&](auto& w) {
    Str(w, "content", plan.content);
    Str(w, "message_type", note ? "outgoing" : "incoming");
    w.Key("private");
    w.Bool(note);
    Str(w, "content_type", "text");
    Str(w, "source_id", plan.source_id);
  });
  rapidjson::Document posted;
  if (!api.Call("POST", path, body, note ? "transcript note" : "message", &posted)) {
    if (a.status_code == 404) {
      // The conversation is gone from Chatwoot (deleted): found or opened again next attempt.
      Status s = db.Exec(kForget, {sink.name, plan.conversation_id}).status();
      a.kind = Attempt::Kind::kRetry;
      a.error += " (the Chatwoot conversation is gone: another is opened" +
                 std::string(s.ok() ? ")" : "; not forgotten: " + s.ToString() + ")");
    }
    return a;
  }
  a.kind = Attempt::Kind::kDelivered;
  a.external_id = std::to_string(IdOf(posted));
  return a;
}

}  // namespace convoy::outbound::chatwoot
