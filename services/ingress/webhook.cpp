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
              reinterpret_cast<const unsigned char*>(body.data()), body.size(), out, &len) && len == 32;
}

}  // namespace

const char* KindName(Update::Kind kind) {
  switch (kind) {
    case Update::Kind::kMessage: return "message";
    case Update::Kind::kStatus: return "status";
    case Update::Kind::kError: return "error";
    case Update::Kind::kPreference: return "preference";
    case Update::Kind::kAccount: return "account";
    case Update::Kind::kTemplate: return "template";
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

bool VerifySignature(std::string_view raw_body, std::string_view header, std::string_view app_secret) {
  constexpr std::string_view kPrefix = "sha256=";
  if (app_secret.empty() || header.size() != kPrefix.size() + 64 || header.substr(0, kPrefix.size()) != kPrefix) {
    return false;
  }
  unsigned char given[32];
  for (size_t i = 0; i < 32; ++i) {
    int hi = HexDigitValue(header[kPrefix.size() + 2 * i]), lo = HexDigitValue(header[kPrefix.size() + 2 * i + 1]);
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

// Builds one envelope: our fields plus Meta's item under `item_key`.
// Who sent a message: a phone number (wa_id), a business-scoped user ID (BSUID, since 2026), or
// both; a user with a username who shares no number arrives with the BSUID alone.
struct Sender {
  std::string wa_id, user_id, parent_user_id, profile_name;
};

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// Opens an envelope with the members every one has.
void EnvelopeHead(JsonWriter& w, const char* schema, const std::string& correlation_id, const std::string& received_at) {
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

std::string Envelope(const char* schema, const std::string& correlation_id, const std::string& received_at,
                     const std::string& phone_number_id, const std::string& display_phone_number,
                     const Sender& sender, const std::string& conversation_key, const char* item_key,
                     const Value& item) {
  const std::string& wa_id = sender.wa_id;
  const std::string& profile_name = sender.profile_name;
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  EnvelopeHead(w, schema, correlation_id, received_at);
  w.Key("phone_number_id");
  w.String(phone_number_id);
  if (!display_phone_number.empty()) {
    w.Key("display_phone_number");
    w.String(display_phone_number);
  }
  if (!wa_id.empty()) {
    w.Key("wa_id");
    w.String(wa_id);
  }
  if (!sender.user_id.empty()) {
    w.Key("user_id");
    w.String(sender.user_id);
  }
  if (!sender.parent_user_id.empty()) {
    w.Key("parent_user_id");
    w.String(sender.parent_user_id);
  }
  if (!profile_name.empty()) {
    w.Key("profile_name");
    w.String(profile_name);
  }
  if (!conversation_key.empty()) {
    w.Key("conversation_key");
    w.String(conversation_key);
  }
  w.Key(item_key);
  item.Accept(w);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

// The message's sender, from the message (from, from_user_id, from_parent_user_id) and its
// contacts[] entry (the one whose wa_id or user_id matches, or the only one). A contact whose
// wa_id or user_id contradicts the message's own is never the sender's, even when it is the only
// one: taking its BSUID would join two people in one conversation. Group messages have no sender
// of their own: the group is the identity.
Sender SenderOf(const Value& value, const Value& m) {
  Sender s;
  s.wa_id = JsonStr(m, "from");
  s.user_id = JsonStr(m, "from_user_id");
  s.parent_user_id = JsonStr(m, "from_parent_user_id");
  const Value* contacts = Member(value, "contacts");
  if (contacts && contacts->IsArray()) {
    for (const auto& c : contacts->GetArray()) {
      const std::string contact_wa_id = JsonStr(c, "wa_id"), contact_user_id = JsonStr(c, "user_id");
      bool contradicts = (!contact_wa_id.empty() && !s.wa_id.empty() && contact_wa_id != s.wa_id) ||
                         (!contact_user_id.empty() && !s.user_id.empty() && contact_user_id != s.user_id);
      bool matches = (!s.wa_id.empty() && contact_wa_id == s.wa_id) || (!s.user_id.empty() && contact_user_id == s.user_id);
      bool mine = !contradicts && (matches || contacts->Size() == 1);
      if (!mine) continue;
      if (s.user_id.empty()) s.user_id = JsonStr(c, "user_id");
      if (s.parent_user_id.empty()) s.parent_user_id = JsonStr(c, "parent_user_id");
      if (const Value* profile = Member(c, "profile")) s.profile_name = JsonStr(*profile, "name");
      break;
    }
  }
  if (s.wa_id.empty() && s.user_id.empty()) s.wa_id = JsonStr(m, "group_id");
  return s;
}

// One template change (inbound.template): the WABA, the webhook field, when Meta says it changed
// (entry[].time) and Meta's value as received.
std::string TemplateEnvelope(const std::string& correlation_id, const std::string& received_at, const std::string& waba_id,
                             const std::string& field, int64_t event_time, const Value& value) {
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
  if (!value || !value->IsObject() || event.empty() || entry_id.empty() || !time || !time->IsInt64()) {
    ++out.unknown_shapes;
    return;
  }
  const std::string dedupe = "account:" + entry_id + ":" + event + ":" + std::to_string(time->GetInt64());
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
  out.updates.push_back({Update::Kind::kAccount, "account", dedupe, dedupe, "", std::string(buf.GetString(), buf.GetSize())});
}

}  // namespace

Result<SplitResult> SplitWebhook(std::string_view raw_body, const std::string& correlation_id,
                                 const std::string& received_at) {
  rapidjson::Document doc;
  doc.Parse(raw_body.data(), raw_body.size());
  if (doc.HasParseError()) return Status(Code::kInvalidArgument, JsonParseError(doc));
  if (!doc.IsObject()) return Status(Code::kInvalidArgument, "body is not a JSON object");
  if (!AllNumbersFinite(doc)) return Status(Code::kInvalidArgument, "a number is out of range (not a finite double)");
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
          std::string dedupe = "preference:" + pnid + ":" + Sha256Hex(user).substr(0, 16) + ":" + JsonStr(pref, "category") +
                               ":" + choice + ":" + at;
          out.updates.push_back({Update::Kind::kPreference, "preference", dedupe, dedupe, pnid + ":" + user,
                                 Envelope("inbound.preference", correlation_id, received_at, pnid,
                                          JsonStr(*metadata, "display_phone_number"), Sender{}, pnid + ":" + user,
                                          "preference", pref)});
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
        const bool waba_ok = !waba.empty() && waba.size() <= 32 && waba.find_first_not_of("0123456789") == std::string::npos;
        if (!value || !value->IsObject() || !waba_ok || !time || !time->IsInt64() || time->GetInt64() < 0 ||
            JsonStr(*value, "message_template_name").empty() || JsonStr(*value, "message_template_language").empty()) {
          ++out.unknown_shapes;
          continue;
        }
        // The same change redelivered hashes the same.
        std::string dedupe = "template:" + waba + ":" + ShortHash(field + Serialize(*value) + std::to_string(time->GetInt64()));
        out.updates.push_back({Update::Kind::kTemplate, "template", dedupe, dedupe, "",
                               TemplateEnvelope(correlation_id, received_at, waba, field, time->GetInt64(), *value)});
        continue;
      }
      if (field != "messages") {
        ++out.ignored_changes;
        continue;
      }
      const Value* value = Member(change, "value");
      if (!value || !value->IsObject()) {
        ++out.unknown_shapes;
        continue;
      }
      const Value* metadata = Member(*value, "metadata");
      std::string pnid = metadata ? JsonStr(*metadata, "phone_number_id") : "";
      std::string display = metadata ? JsonStr(*metadata, "display_phone_number") : "";
      const Value* messages = Member(*value, "messages");
      const Value* statuses = Member(*value, "statuses");
      const Value* errors = Member(*value, "errors");
      bool any = false;
      if (messages && messages->IsArray()) {
        any = true;
        for (const auto& m : messages->GetArray()) {
          std::string id = JsonStr(m, "id");
          if (id.empty() || pnid.empty() || !m.IsObject() || JsonStr(m, "type").empty() || JsonStr(m, "timestamp").empty()) {
            ++out.unknown_shapes;
            continue;
          }
          // A first guess at the conversation, from the message alone: the phone when Meta sends
          // one, else the BSUID. Conversation resolves it under its lock (a person known by both
          // keeps one conversation). No identity at all: no key, never a shared one; conversation
          // parks the message with the reason.
          Sender sender = SenderOf(*value, m);
          const std::string& identity = sender.wa_id.empty() ? sender.user_id : sender.wa_id;
          std::string key = identity.empty() ? "" : pnid + ":" + identity;
          out.updates.push_back({Update::Kind::kMessage, "message", id, id, key,
                                 Envelope("inbound.message", correlation_id, received_at, pnid, display, sender, key,
                                          "message", m)});
        }
      }
      if (statuses && statuses->IsArray()) {
        any = true;
        for (const auto& s : statuses->GetArray()) {
          std::string id = JsonStr(s, "id"), status = JsonStr(s, "status"), recipient = JsonStr(s, "recipient_id");
          if (recipient.empty()) recipient = JsonStr(s, "recipient_user_id");  // a send to a BSUID
          if (id.empty() || status.empty() || pnid.empty() || JsonStr(s, "timestamp").empty()) {
            ++out.unknown_shapes;
            continue;
          }
          std::string key = recipient.empty() ? "" : pnid + ":" + recipient;
          std::string dedupe = id + ":" + status;
          out.updates.push_back({Update::Kind::kStatus, "status", dedupe, dedupe, key,
                                 Envelope("inbound.status", correlation_id, received_at, pnid, display, Sender{}, key,
                                          "status", s)});
        }
      }
      if (errors && errors->IsArray()) {
        any = true;
        for (const auto& e : errors->GetArray()) {
          const Value* code = Member(e, "code");
          if (!code || !code->IsInt()) {
            ++out.unknown_shapes;
            continue;
          }
          // Value-level errors carry no id: the same error redelivered hashes the same.
          std::string dedupe = "error:" + pnid + ":" + std::to_string(code->GetInt()) + ":" +
                               ShortHash(Serialize(e) + JsonStr(entry, "id"));
          out.updates.push_back({Update::Kind::kError, "error", dedupe, dedupe, "",
                                 Envelope("inbound.error", correlation_id, received_at, pnid, display, Sender{}, "",
                                          "error", e)});
        }
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
