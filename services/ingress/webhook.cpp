#include "webhook.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "convoy/crypto.h"
#include "convoy/rapidjson_util.h"

namespace convoy::ingress {

namespace {

std::string Hex(const unsigned char* data, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 15];
  }
  return out;
}

bool Hmac(std::string_view body, std::string_view secret, unsigned char out[32]) {
  unsigned int len = 0;
  return HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
              reinterpret_cast<const unsigned char*>(body.data()), body.size(), out, &len) &&
         len == 32;
}

}  // namespace

const char* KindName(Update::Kind kind) {
  switch (kind) {
    case Update::Kind::kMessage:
      return "message";
    case Update::Kind::kStatus:
      return "status";
    case Update::Kind::kError:
      return "error";
    case Update::Kind::kPreference:
      return "preference";
    case Update::Kind::kAccount:
      return "account";
    case Update::Kind::kTemplate:
      return "template";
    case Update::Kind::kStandby:
      return "standby";
    case Update::Kind::kEcho:
      return "echo";
    case Update::Kind::kHistory:
      return "history";
    case Update::Kind::kHandover:
      return "handover";
  }
  return "unknown";
}

std::string SignBody(std::string_view raw_body, std::string_view app_secret) {
  unsigned char mac[32];
  if (!Hmac(raw_body, app_secret, mac)) return "";
  return "sha256=" + Hex(mac, 32);
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool VerifySignature(std::string_view raw_body, std::string_view header,
                     std::string_view app_secret) {
  constexpr std::string_view kPrefix = "sha256=";
  if (app_secret.empty() || header.size() != kPrefix.size() + 64 ||
      header.substr(0, kPrefix.size()) != kPrefix) {
    return false;
  }
  unsigned char given[32];
  for (size_t i = 0; i < 32; ++i) {
    int hi = HexDigitValue(header[kPrefix.size() + 2 * i]),
        lo = HexDigitValue(header[kPrefix.size() + 2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    given[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  unsigned char expected[32];
  if (!Hmac(raw_body, app_secret, expected)) return false;
  return CRYPTO_memcmp(given, expected, 32) == 0;
}

namespace {

using rapidjson::Value;

const Value* Member(const Value& obj, const char* key) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(key);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

std::string Serialize(const Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

std::string ShortHash(std::string_view s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(s.data(), s.size(), md, &len, EVP_sha256(), nullptr);
  return Hex(md, 12);
}

// Who a message is with: a phone number (wa_id), a business-scoped user ID (BSUID, since 2026), or
// both; a user with a username who shares no number arrives with the BSUID alone. The customer:
// the sender of what they wrote, the recipient of what the business wrote (an echo).
struct Sender {
  std::string wa_id, user_id, parent_user_id, profile_name;
};

// Where an inbound.message came from when not the `messages` field (its `channel`), and which way
// it went (`direction`) where the business may have written it. Absent: messages, in.
struct Origin {
  const char* channel = nullptr;
  const char* direction = nullptr;
};

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// Opens an envelope with the members every one has.
void EnvelopeHead(JsonWriter& w, const char* schema, const std::string& correlation_id,
                  const std::string& received_at) {
  w.StartObject();
  w.Key("schema");
  w.String(schema);
  w.Key("version");
  w.Int(1);
  w.Key("correlation_id");
  w.String(correlation_id);
  w.Key("received_at");
  w.String(received_at);
}

// A member written only when it has a value.
void Optional(JsonWriter& w, const char* key, const std::string& value) {
  if (value.empty()) return;
  w.Key(key);
  w.String(value);
}

// The person's members of an envelope (inbound.message, inbound.handover).
void PersonMembers(JsonWriter& w, const Sender& who) {
  Optional(w, "wa_id", who.wa_id);
  Optional(w, "user_id", who.user_id);
  Optional(w, "parent_user_id", who.parent_user_id);
  Optional(w, "profile_name", who.profile_name);
}

// Builds one envelope: our fields plus Meta's item under `item_key`.
std::string Envelope(const char* schema, const std::string& correlation_id,
                     const std::string& received_at, const std::string& phone_number_id,
                     const std::string& display_phone_number, const Sender& sender,
                     const std::string& conversation_key, const char* item_key, const Value& item,
                     Origin origin = {}) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  EnvelopeHead(w, schema, correlation_id, received_at);
  w.Key("phone_number_id");
  w.String(phone_number_id);
  Optional(w, "display_phone_number", display_phone_number);
  PersonMembers(w, sender);
  Optional(w, "conversation_key", conversation_key);
  if (origin.channel) {
    w.Key("channel");
    w.String(origin.channel);
  }
  if (origin.direction) {
    w.Key("direction");
    w.String(origin.direction);
  }
  w.Key(item_key);
  item.Accept(w);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

// A person from a message's own members (`phone`, `user`, `parent`: from* for its sender, to* for
// the recipient of an echo) and the change's contacts[] entry (the one whose wa_id or user_id
// matches, or the only one). A contact whose wa_id or user_id contradicts the message's own is
// never the person's, even when it is the only one: taking its BSUID would join two people in one
// conversation.
Sender PersonOf(const Value& value, const Value& m, const char* phone, const char* user,
                const char* parent) {
  Sender s;
  s.wa_id = JsonStr(m, phone);
  s.user_id = JsonStr(m, user);
  s.parent_user_id = JsonStr(m, parent);
  const Value* contacts = Member(value, "contacts");
  if (contacts && contacts->IsArray()) {
    for (const auto& c : contacts->GetArray()) {
      const std::string contact_wa_id = JsonStr(c, "wa_id"),
                        contact_user_id = JsonStr(c, "user_id");
      bool contradicts =
          (!contact_wa_id.empty() && !s.wa_id.empty() && contact_wa_id != s.wa_id) ||
          (!contact_user_id.empty() && !s.user_id.empty() && contact_user_id != s.user_id);
      bool matches = (!s.wa_id.empty() && contact_wa_id == s.wa_id) ||
                     (!s.user_id.empty() && contact_user_id == s.user_id);
      bool mine = !contradicts && (matches || contacts->Size() == 1);
      if (!mine) continue;
      if (s.user_id.empty()) s.user_id = JsonStr(c, "user_id");
      if (s.parent_user_id.empty()) s.parent_user_id = JsonStr(c, "parent_user_id");
      if (const Value* profile = Member(c, "profile")) s.profile_name = JsonStr(*profile, "name");
      break;
    }
  }
  return s;
}

// The message's sender (from, from_user_id, from_parent_user_id). Group messages have no sender of
// their own: the group is the identity.
Sender SenderOf(const Value& value, const Value& m) {
  Sender s = PersonOf(value, m, "from", "from_user_id", "from_parent_user_id");
  if (s.wa_id.empty() && s.user_id.empty()) s.wa_id = JsonStr(m, "group_id");
  return s;
}

// A person in a key that is logged (and is the broker's message id): a digest, never the number.
std::string UserDigest(const std::string& user) { return Sha256Hex(user).substr(0, 16); }

// What the updates of one change share: the number (metadata, or a handover's recipient) and where
// they go.
struct Change {
  const std::string& correlation_id;
  const std::string& received_at;
  const Value& entry;
  std::string pnid, display;
  SplitResult& out;
};

// One inbound.message, keyed by its customer: the phone when Meta sends one, else the BSUID. A
// first guess, which conversation resolves under its lock (a person known by both keeps one
// conversation). No identity at all: no key, never a shared one; conversation parks it with the
// reason.
void AddMessage(const Change& c, Update::Kind kind, const std::string& dedupe, const Sender& who,
                const Value& m, Origin origin = {}) {
  const std::string& identity = who.wa_id.empty() ? who.user_id : who.wa_id;
  std::string key = identity.empty() ? "" : c.pnid + ":" + identity;
  c.out.updates.push_back({kind, "message", dedupe, dedupe, key,
                           Envelope("inbound.message", c.correlation_id, c.received_at, c.pnid,
                                    c.display, who, key, "message", m, origin)});
}

// Whether a message is one conversation can take: an object with an id, a type and a timestamp, of
// a change that names its business number.
bool Usable(const Change& c, const Value& m) {
  return m.IsObject() && !c.pnid.empty() && !JsonStr(m, "id").empty() &&
         !JsonStr(m, "type").empty() && !JsonStr(m, "timestamp").empty();
}

// Whether a message is published: usable (else counted as an unknown shape) and, when a budget is
// given (a backfill's), within it (else counted as dropped history).
bool Admit(const Change& c, const Value& m, int* budget = nullptr) {
  if (budget && *budget <= 0) {
    ++c.out.history_dropped;
    return false;
  }
  if (!Usable(c, m)) {
    ++c.out.unknown_shapes;
    return false;
  }
  if (budget) --*budget;
  return true;
}

// A change's messages[] (`messages`, or the copy a `standby` change carries), each keyed by its
// dedupe prefix and id; `holder` has their contacts[].
void SplitMessages(const Change& c, const Value& holder, const Value& messages, Update::Kind kind,
                   const std::string& prefix, Origin origin = {}) {
  for (const auto& m : messages.GetArray()) {
    if (Admit(c, m)) AddMessage(c, kind, prefix + JsonStr(m, "id"), SenderOf(holder, m), m, origin);
  }
}

void SplitStatuses(const Change& c, const Value& statuses) {
  for (const auto& s : statuses.GetArray()) {
    std::string id = JsonStr(s, "id"), status = JsonStr(s, "status"),
                recipient = JsonStr(s, "recipient_id");
    if (recipient.empty()) recipient = JsonStr(s, "recipient_user_id");  // a send to a BSUID
    if (id.empty() || status.empty() || c.pnid.empty() || JsonStr(s, "timestamp").empty()) {
      ++c.out.unknown_shapes;
      continue;
    }
    std::string key = recipient.empty() ? "" : c.pnid + ":" + recipient;
    std::string dedupe = id + ":" + status;
    c.out.updates.push_back({Update::Kind::kStatus, "status", dedupe, dedupe, key,
                             Envelope("inbound.status", c.correlation_id, c.received_at, c.pnid,
                                      c.display, Sender{}, key, "status", s)});
  }
}

void SplitErrors(const Change& c, const Value& errors) {
  for (const auto& e : errors.GetArray()) {
    const Value* code = Member(e, "code");
    if (!code || !code->IsInt()) {
      ++c.out.unknown_shapes;
      continue;
    }
    // Value-level errors carry no id: the same error redelivered hashes the same.
    std::string dedupe = "error:" + c.pnid + ":" + std::to_string(code->GetInt()) + ":" +
                         ShortHash(Serialize(e) + JsonStr(c.entry, "id"));
    c.out.updates.push_back({Update::Kind::kError, "error", dedupe, dedupe, "",
                             Envelope("inbound.error", c.correlation_id, c.received_at, c.pnid,
                                      c.display, Sender{}, "", "error", e)});
  }
}

// Messages the business sent from the WhatsApp Business app (or a linked device) of a coexistence
// number, as Meta echoes them: the customer is the message's recipient (to, to_user_id).
// `budget`, when given, is how many more may be published; past it they are counted as dropped.
void SplitEchoes(const Change& c, const Value& value, const Value& echoes, Update::Kind kind,
                 const std::string& prefix, Origin origin, int* budget = nullptr) {
  for (const auto& m : echoes.GetArray()) {
    if (!Admit(c, m, budget)) continue;
    AddMessage(c, kind, prefix + JsonStr(m, "id"),
               PersonOf(value, m, "to", "to_user_id", "to_parent_user_id"), m, origin);
  }
}

// What another responder (Meta Business Agent, a partner app) sent on a thread convoy does not own:
// Meta nests the send request (`message`, to `to` or `recipient`) under the echo's id and
// timestamp. Published as that request with the echo's id and timestamp added, so conversation
// reads it like any message (the echo's other members, a template's or a flow's definition, are
// not carried).
void SplitStandbyEchoes(const Change& c, const Value& echoes) {
  for (const auto& e : echoes.GetArray()) {
    const Value* sent = Member(e, "message");
    if (!sent || !sent->IsObject()) {
      ++c.out.unknown_shapes;
      continue;
    }
    rapidjson::Document flat(rapidjson::kObjectType);
    auto& a = flat.GetAllocator();
    for (const char* k : {"id", "timestamp"}) {
      if (const Value* v = Member(e, k)) flat.AddMember(Value(k, a), Value(*v, a), a);
    }
    for (const auto& m : sent->GetObject()) {
      if (!flat.HasMember(m.name)) flat.AddMember(Value(m.name, a), Value(m.value, a), a);
    }
    if (!Admit(c, flat)) continue;
    Sender who;
    who.wa_id = JsonStr(*sent, "to");
    who.user_id = JsonStr(*sent, "recipient");  // a send to a BSUID
    AddMessage(c, Update::Kind::kStandby, "standby:" + JsonStr(flat, "id"), who, flat,
               {"standby", "out"});
  }
}

// A `standby` change: the activity of a thread another responder owns under Conversation Routing,
// as Meta copies it to the apps that do not own it (`standby` holds messages[] with contacts[],
// statuses[] and message_echoes[]). The customer's messages and the owner's echoes are recorded in
// the conversation, never answered; statuses go to outbound like any.
void SplitStandby(const Change& c, const Value& value) {
  const Value* standby = Member(value, "standby");
  bool any = false;
  if (const Value* messages = standby ? Member(*standby, "messages") : nullptr;
      messages && messages->IsArray()) {
    any = true;
    SplitMessages(c, *standby, *messages, Update::Kind::kStandby, "standby:", {"standby", nullptr});
  }
  if (const Value* statuses = standby ? Member(*standby, "statuses") : nullptr;
      statuses && statuses->IsArray()) {
    any = true;
    SplitStatuses(c, *statuses);
  }
  if (const Value* echoes = standby ? Member(*standby, "message_echoes") : nullptr;
      echoes && echoes->IsArray()) {
    any = true;
    SplitStandbyEchoes(c, *echoes);
  }
  if (!any) ++c.out.unknown_shapes;
}

std::string Digits(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch >= '0' && ch <= '9') out += ch;
  }
  return out;
}

// One thread of a `history` chunk: one customer (its id and context name them) and their messages
// with the business, each "out" when its `from` is the business's number, else "in".
void SplitHistoryThread(const Change& c, const Value& thread, int* budget) {
  const Value& context = JsonMember(thread, "context");
  Sender who;
  who.wa_id = JsonStr(context, "wa_id");
  const std::string id = JsonStr(thread, "id");
  if (who.wa_id.empty() && !id.empty() && Digits(id) == id) who.wa_id = id;
  who.user_id = JsonStr(context, "user_id");
  who.parent_user_id = JsonStr(context, "parent_user_id");
  const Value* messages = Member(thread, "messages");
  if (!messages || !messages->IsArray()) {
    ++c.out.unknown_shapes;
    return;
  }
  const std::string business = Digits(c.display);
  for (const auto& m : messages->GetArray()) {
    if (!Admit(c, m, budget)) continue;
    const bool out = !business.empty() && Digits(JsonStr(m, "from")) == business;
    AddMessage(c, Update::Kind::kHistory, "history:" + JsonStr(m, "id"), who, m,
               {"history", out ? "out" : "in"});
  }
}

// A `history` change: the WhatsApp Business app's chats of up to 180 days before a coexistence
// number was onboarded, in chunks of threads. Each message is recorded in its customer's
// conversation, never answered; at most `max` a change are published, the rest counted as dropped.
void SplitHistory(const Change& c, const Value& value, int max) {
  const Value* chunks = Member(value, "history");
  const Value* echoes = Member(value, "message_echoes");
  if ((!chunks || !chunks->IsArray()) && (!echoes || !echoes->IsArray())) {
    ++c.out.unknown_shapes;
    return;
  }
  int budget = max;
  if (chunks && chunks->IsArray()) {
    for (const auto& chunk : chunks->GetArray()) {
      // The business declined to share its history: Meta says so as a value-level error.
      if (const Value* errors = Member(chunk, "errors"); errors && errors->IsArray())
        SplitErrors(c, *errors);
      const Value* threads = Member(chunk, "threads");
      if (!threads || !threads->IsArray()) continue;
      for (const auto& thread : threads->GetArray()) SplitHistoryThread(c, thread, &budget);
    }
  }
  // Meta's BSUID page shows a `history` change carrying message_echoes[] too: the business's side.
  if (echoes && echoes->IsArray()) {
    SplitEchoes(c, value, *echoes, Update::Kind::kHistory, "history:", {"history", "out"}, &budget);
  }
}

// A change of a thread's owner under Conversation Routing (messaging_handovers): one
// inbound.handover for the conversation, published like its messages (routing key "message",
// hashed by the conversation key) so it is ordered with them. A type convoy does not know, or one
// without a number, a user or a time, is an unknown shape.
void SplitHandover(const Change& c, const Value& value) {
  const std::string action = JsonStr(value, "type");
  const bool known = action == "control_passed" || action == "control_taken";
  const Value* detail = known ? Member(value, action.c_str()) : nullptr;
  const Value& sender = JsonMember(value, "sender");
  Sender who;
  who.wa_id = JsonStr(sender, "phone_number");
  who.user_id = JsonStr(sender, "user_id");
  who.parent_user_id = JsonStr(sender, "parent_user_id");
  const std::string& user = who.wa_id.empty() ? who.user_id : who.wa_id;
  const std::string at = JsonStr(value, "timestamp");
  if (!detail || !detail->IsObject() || c.pnid.empty() || user.empty() || at.empty()) {
    ++c.out.unknown_shapes;
    return;
  }
  const std::string key = c.pnid + ":" + user;
  const std::string dedupe =
      "handover:" + c.pnid + ":" + UserDigest(user) + ":" + action + ":" + at;
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  EnvelopeHead(w, "inbound.handover", c.correlation_id, c.received_at);
  w.Key("phone_number_id");
  w.String(c.pnid);
  Optional(w, "display_phone_number", c.display);
  Optional(w, "waba_id", JsonStr(c.entry, "id"));
  PersonMembers(w, who);
  w.Key("conversation_key");
  w.String(key);
  w.Key("action");
  w.String(action);
  w.Key("timestamp");
  w.String(at);
  for (const char* k : {"previous_owner_app_id", "previous_owner_app_role", "previous_owner_role",
                        "new_owner_app_id", "new_owner_role", "metadata"}) {
    Optional(w, k, JsonStr(*detail, k));
  }
  w.Key("handover");
  value.Accept(w);
  w.EndObject();
  c.out.updates.push_back({Update::Kind::kHandover, "message", dedupe, dedupe, key,
                           std::string(buf.GetString(), buf.GetSize())});
}

// One template change (inbound.template): the WABA, the webhook field, when Meta says it changed
// (entry[].time) and Meta's value as received.
std::string TemplateEnvelope(const std::string& correlation_id, const std::string& received_at,
                             const std::string& waba_id, const std::string& field,
                             int64_t event_time, const Value& value) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  EnvelopeHead(w, "inbound.template", correlation_id, received_at);
  w.Key("waba_id");
  w.String(waba_id);
  w.Key("field");
  w.String(field);
  w.Key("event_time");
  w.Int64(event_time);
  w.Key("template");
  value.Accept(w);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

bool IsTemplateField(const std::string& field) {
  return field == "message_template_status_update" || field == "message_template_quality_update" ||
         field == "template_category_update";
}

// Whether every number in the document is finite. RapidJSON parses an out-of-range literal
// ("1300…0E300") to infinity, which no writer can put back as JSON: an envelope carrying it would
// not parse downstream. Walked with a stack of its own, so nesting costs no recursion.
bool AllNumbersFinite(const Value& root) {
  std::vector<const Value*> todo{&root};
  while (!todo.empty()) {
    const Value* v = todo.back();
    todo.pop_back();
    if (v->IsDouble() && !std::isfinite(v->GetDouble())) return false;
    if (v->IsArray()) {
      for (const auto& x : v->GetArray()) todo.push_back(&x);
    } else if (v->IsObject()) {
      for (const auto& m : v->GetObject()) todo.push_back(&m.value);
    }
  }
  return true;
}

// An account_update change: one inbound.account for conversation, which pauses the numbers of
// the WABA when the event stops its sending (account_events.cpp). The WABA is waba_info.waba_id
// when Meta names it (PARTNER_* events come under the partner's entry id), else the entry's id.
// Redelivered, the same entry id, event and time make the same dedupe key.
void SplitAccountUpdate(const Value& entry, const Value& change, const std::string& correlation_id,
                        const std::string& received_at, SplitResult& out) {
  const Value* value = Member(change, "value");
  const Value* time = Member(entry, "time");
  const std::string entry_id = JsonStr(entry, "id"), event = value ? JsonStr(*value, "event") : "";
  const Value* waba_info = value ? Member(*value, "waba_info") : nullptr;
  std::string waba_id = waba_info ? JsonStr(*waba_info, "waba_id") : "";
  if (waba_id.empty()) waba_id = entry_id;
  if (!value || !value->IsObject() || event.empty() || entry_id.empty() || !time ||
      !time->IsInt64()) {
    ++out.unknown_shapes;
    return;
  }
  const std::string dedupe =
      "account:" + entry_id + ":" + event + ":" + std::to_string(time->GetInt64());
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  EnvelopeHead(w, "inbound.account", correlation_id, received_at);
  w.Key("entry_id");
  w.String(entry_id);
  w.Key("waba_id");
  w.String(waba_id);
  w.Key("event");
  w.String(event);
  w.Key("time");
  w.Int64(time->GetInt64());
  w.Key("account_update");
  value->Accept(w);
  w.EndObject();
  out.updates.push_back({Update::Kind::kAccount, "account", dedupe, dedupe, "",
                         std::string(buf.GetString(), buf.GetSize())});
}

}  // namespace

Result<SplitResult> SplitWebhook(std::string_view raw_body, const std::string& correlation_id,
                                 const std::string& received_at, const SplitLimits& limits) {
  rapidjson::Document doc;
  doc.Parse(raw_body.data(), raw_body.size());
  if (doc.HasParseError()) return Status(Code::kInvalidArgument, JsonParseError(doc));
  if (!doc.IsObject()) return Status(Code::kInvalidArgument, "body is not a JSON object");
  if (!AllNumbersFinite(doc))
    return Status(Code::kInvalidArgument, "a number is out of range (not a finite double)");
  SplitResult out;
  if (JsonStr(doc, "object") != "whatsapp_business_account") {
    out.ignored_object = true;
    return out;
  }
  const Value* entries = Member(doc, "entry");
  if (!entries || !entries->IsArray()) {
    ++out.unknown_shapes;
    return out;
  }
  for (const auto& entry : entries->GetArray()) {
    const Value* changes = Member(entry, "changes");
    if (!changes || !changes->IsArray()) {
      ++out.unknown_shapes;
      continue;
    }
    for (const auto& change : changes->GetArray()) {
      const std::string field = JsonStr(change, "field");
      if (field == "user_preferences") {
        // A user stopped or resumed marketing messages: outbound keeps it, and refuses marketing
        // templates to them while they are stopped.
        const Value* value = Member(change, "value");
        const Value* metadata = value ? Member(*value, "metadata") : nullptr;
        const Value* prefs = value ? Member(*value, "user_preferences") : nullptr;
        std::string pnid = metadata ? JsonStr(*metadata, "phone_number_id") : "";
        if (!prefs || !prefs->IsArray() || pnid.empty()) {
          ++out.unknown_shapes;
          continue;
        }
        for (const auto& pref : prefs->GetArray()) {
          std::string user = JsonStr(pref, "wa_id");
          if (user.empty()) user = JsonStr(pref, "user_id");
          std::string choice = JsonStr(pref, "value"), at = JsonStr(pref, "timestamp");
          if (user.empty() || choice.empty() || JsonStr(pref, "category").empty()) {
            ++out.unknown_shapes;
            continue;
          }
          // The person appears in the key only as a digest: the key is logged and is the broker's
          // message id.
          std::string dedupe = "preference:" + pnid + ":" + UserDigest(user) + ":" +
                               JsonStr(pref, "category") + ":" + choice + ":" + at;
          out.updates.push_back({Update::Kind::kPreference, "preference", dedupe, dedupe,
                                 pnid + ":" + user,
                                 Envelope("inbound.preference", correlation_id, received_at, pnid,
                                          JsonStr(*metadata, "display_phone_number"), Sender{},
                                          pnid + ":" + user, "preference", pref)});
        }
        continue;
      }
      if (field == "account_update") {
        SplitAccountUpdate(entry, change, correlation_id, received_at, out);
        continue;
      }
      if (IsTemplateField(field)) {
        // A template of the business account (entry[].id) changed status, quality or category:
        // outbound keeps the catalog, refuses sends of a template not approved and sends marketing
        // ones through the Marketing Messages API. Ordered by entry[].time, the change's own time.
        const Value* value = Member(change, "value");
        const Value* time = Member(entry, "time");
        const std::string waba = JsonStr(entry, "id");
        const bool waba_ok = !waba.empty() && waba.size() <= 32 &&
                             waba.find_first_not_of("0123456789") == std::string::npos;
        if (!value || !value->IsObject() || !waba_ok || !time || !time->IsInt64() ||
            time->GetInt64() < 0 || JsonStr(*value, "message_template_name").empty() ||
            JsonStr(*value, "message_template_language").empty()) {
          ++out.unknown_shapes;
          continue;
        }
        // The same change redelivered hashes the same.
        std::string dedupe =
            "template:" + waba + ":" +
            ShortHash(field + Serialize(*value) + std::to_string(time->GetInt64()));
        out.updates.push_back(
            {Update::Kind::kTemplate, "template", dedupe, dedupe, "",
             TemplateEnvelope(correlation_id, received_at, waba, field, time->GetInt64(), *value)});
        continue;
      }
      const bool handover = field == "messaging_handovers";
      if (field != "messages" && field != "standby" && field != "smb_message_echoes" &&
          field != "history" && !handover) {
        ++out.ignored_changes;
        continue;
      }
      const Value* value = Member(change, "value");
      if (!value || !value->IsObject()) {
        ++out.unknown_shapes;
        continue;
      }
      // The business number: the change's metadata (a handover's recipient).
      const Value& number = JsonMember(*value, handover ? "recipient" : "metadata");
      const Change c{correlation_id,
                     received_at,
                     entry,
                     JsonStr(number, "phone_number_id"),
                     JsonStr(number, "display_phone_number"),
                     out};
      if (handover) {
        SplitHandover(c, *value);
        continue;
      }
      if (field == "standby") {
        SplitStandby(c, *value);
        continue;
      }
      if (field == "history") {
        SplitHistory(c, *value, limits.max_history_messages);
        continue;
      }
      if (field == "smb_message_echoes") {
        const Value* echoes = Member(*value, "message_echoes");
        if (!echoes || !echoes->IsArray()) {
          ++out.unknown_shapes;
          continue;
        }
        SplitEchoes(c, *value, *echoes, Update::Kind::kEcho, "echo:", {"echo", "out"});
        continue;
      }
      const Value* messages = Member(*value, "messages");
      const Value* statuses = Member(*value, "statuses");
      const Value* errors = Member(*value, "errors");
      bool any = false;
      if (messages && messages->IsArray()) {
        any = true;
        SplitMessages(c, *value, *messages, Update::Kind::kMessage, "");
      }
      if (statuses && statuses->IsArray()) {
        any = true;
        SplitStatuses(c, *statuses);
      }
      if (errors && errors->IsArray()) {
        any = true;
        SplitErrors(c, *errors);
      }
      if (!any) ++out.unknown_shapes;
    }
  }
  return out;
}

std::string WithApp(std::string_view envelope, std::string_view app) {
  // Every envelope is a JSON object with members (Envelope writes schema first).
  rapidjson::StringBuffer quoted;
  rapidjson::Writer<rapidjson::StringBuffer> w(quoted);
  w.String(app.data(), static_cast<rapidjson::SizeType>(app.size()));
  const std::string member = "\"app\":" + std::string(quoted.GetString(), quoted.GetSize()) + ",";
  std::string out;
  out.reserve(envelope.size() + member.size());
  out.append(envelope.substr(0, 1)).append(member).append(envelope.substr(1));
  return out;
}

}  // namespace convoy::ingress
