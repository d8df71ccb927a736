#include "processor.h"

#include <glog/logging.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>
#include <unordered_map>

#include "account_events.h"
#include "convoy/crypto.h"
#include "convoy/log.h"
#include "convoy/metrics.h"
#include "convoy/rapidjson_util.h"
#include "convoy/topology.h"
#include "engine.h"
#include "numbers.h"
#include "run_timeouts.h"
#include "state_codec.h"
#include "thread_control.h"
#include "transcript.h"

namespace convoy::conversation {

namespace {

using rapidjson::Value;

// Named, parameterized SQL.
constexpr const char* kInsertDedupe =
    "INSERT INTO inbound_messages (dedupe_key, conversation_key, kind, wa_timestamp, "
    "correlation_id) "
    "VALUES ($1, $2, $3, $4::bigint, $5) ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key";
constexpr const char* kEnsureConversation =
    "INSERT INTO conversations (conversation_key, phone_number_id, wa_id, user_id) VALUES ($1, $2, "
    "NULLIF($3, ''), "
    "NULLIF($4, '')) ON CONFLICT (conversation_key) DO NOTHING";
// Column 6: the run's due time had passed when this message was sent ($2, WhatsApp's
// timestamp; 0 for internal events, which never end a run here); column 7: the thread_control on
// its way to Meta ("" none).
constexpr const char* kLockConversation =
    "SELECT state::text, coalesce(wa_id, ''), coalesce(user_id, ''), owner, coalesce(owner_sink, "
    "''), id::text, "
    "coalesce(run_expires_at <= least(now(), to_timestamp($2::bigint)), false)::int, "
    "coalesce(thread_control, '') "
    "FROM conversations WHERE conversation_key = $1 FOR UPDATE";
// Where replies go, as the latest message says: its phone, its BSUID.
constexpr const char* kUpdateAddress =
    "UPDATE conversations SET wa_id = coalesce(NULLIF($2, ''), wa_id), user_id = "
    "coalesce(NULLIF($3, ''), user_id), "
    "parent_user_id = coalesce(NULLIF($4, ''), parent_user_id) WHERE conversation_key = $1";
// Identities: serialised per identity (a transaction-level advisory lock), then looked up.
constexpr const char* kLockIdentity = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";
constexpr const char* kFindIdentities =
    "SELECT identity, conversation_key FROM identities WHERE phone_number_id = $1 AND identity = "
    "ANY($2::text[])";
constexpr const char* kLinkIdentity =
    "INSERT INTO identities (phone_number_id, identity, conversation_key) VALUES ($1, $2, $3) "
    "ON CONFLICT (phone_number_id, identity) DO UPDATE SET conversation_key = "
    "EXCLUDED.conversation_key, "
    "linked_at = now() WHERE identities.conversation_key <> EXCLUDED.conversation_key";
constexpr const char* kConversationExists =
    "SELECT 1 FROM conversations WHERE conversation_key = $1";
constexpr const char* kUnlinkIdentity =
    "DELETE FROM identities WHERE phone_number_id = $1 AND identity = $2 AND conversation_key = $3";
constexpr const char* kAuditIdentity =
    "INSERT INTO identity_changes (conversation_key, change, identity, previous, "
    "trigger_dedupe_key, correlation_id) "
    "VALUES ($1, $2, $3, NULLIF($4, ''), $5, $6)";
// $5, $6: the run's due time (run_timeouts.h NextRunDue): NULL keeps it, 0 clears it, else $5
// seconds from now rounded up to a multiple of $6.
constexpr const char* kSaveConversation =
    "UPDATE conversations SET state = $2::jsonb, flow = $3, version = version + 1, updated_at = "
    "now(), "
    "last_inbound_at = CASE WHEN $4::bigint > 0 THEN to_timestamp($4::bigint) ELSE last_inbound_at "
    "END, "
    "run_expires_at = CASE WHEN $5::int IS NULL THEN run_expires_at WHEN $5::int = 0 THEN NULL "
    "ELSE to_timestamp(ceil((extract(epoch FROM now()) + $5::int) / $6::int) * $6::int) END "
    "WHERE conversation_key = $1";
constexpr const char* kInsertTransition =
    "INSERT INTO transitions (conversation_key, from_step, to_step, trigger_dedupe_key, "
    "correlation_id, note, "
    "wa_timestamp) VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, '0')::bigint)";
constexpr const char* kInsertOutbox =
    "INSERT INTO outbox (exchange, routing_key, dedupe_key, correlation_id, conversation_key, "
    "body, due_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $1 = 'convoy.commands' THEN now() END) "
    "ON CONFLICT (dedupe_key) DO NOTHING";

// An update for a number convoy does not serve (not registered, offboarded, or come through
// another app than the number's): recorded once per dedupe key, by its hash (a wamid carries the
// sender's phone number), with the app it came through (inbound updates), and nothing else.
constexpr const char* kRecordUnknownNumber =
    "INSERT INTO unknown_number_updates (dedupe_key_sha256, phone_number_id, status, kind, app) "
    "VALUES ($1, $2, $3, "
    "$4, NULLIF($5, '')) ON CONFLICT (dedupe_key_sha256) DO NOTHING RETURNING 1";

struct Metrics {
  Registry& r = DefaultRegistry();
  Counter& applied = r.GetCounter("convoy_conversation_updates_total", "Deliveries by result.",
                                  "result=\"applied\"");
  Counter& duplicate = r.GetCounter("convoy_conversation_updates_total", "Deliveries by result.",
                                    "result=\"duplicate\"");
  Counter& invalid = r.GetCounter("convoy_conversation_updates_total", "Deliveries by result.",
                                  "result=\"invalid\"");
  Counter& failed = r.GetCounter("convoy_conversation_updates_total", "Deliveries by result.",
                                 "result=\"transient_failure\"");
  // The label is the verdict only (three values): the phone_number_id and the app, which anyone
  // who can sign may vary, are in unknown_number_updates and in the (rate-limited) log.
  Counter& unknown_number = Refused("unknown");
  Counter& offboarded_number = Refused("offboarded");
  Counter& wrong_app = Refused("wrong_app");
  Histogram& tx = r.GetHistogram("convoy_conversation_transaction_seconds",
                                 "Dedupe-lock-advance-outbox transaction time.");

  Counter& Refused(const char* status) {
    return r.GetCounter("convoy_conversation_unknown_number_updates_total",
                        "Updates for a number not in the registry, offboarded, or come through "
                        "another Meta app than "
                        "the number's: recorded, never applied.",
                        std::string("status=\"") + status + "\"");
  }
};
Metrics& M() {
  static Metrics* m = new Metrics();
  return *m;
}

// One log line per number per minute about its unknown updates, across the consumer threads (the
// counter has them all). Bounded: with kMax numbers logged in the last minute, a new one is not
// logged until an entry is a minute old.
class NumberNotices {
 public:
  bool ShouldLog(const std::string& phone_number_id, int64_t now) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = last_.find(phone_number_id);
    if (it != last_.end()) {
      if (now - it->second < kSeconds) return false;
      it->second = now;
      return true;
    }
    if (last_.size() >= kMax) {
      for (auto e = last_.begin(); e != last_.end();)
        e = now - e->second >= kSeconds ? last_.erase(e) : std::next(e);
      if (last_.size() >= kMax) return false;
    }
    last_[phone_number_id] = now;
    return true;
  }

 private:
  static constexpr int64_t kSeconds = 60;
  static constexpr size_t kMax = 1024;
  std::mutex mu_;
  std::unordered_map<std::string, int64_t> last_;
};
NumberNotices& Notices() {
  static NumberNotices* n = new NumberNotices();
  return *n;
}

// "listing/photos", or "idle" outside a flow: the audit's from/to.
std::string StepName(const ConversationState& s) {
  return s.flow.empty() ? "idle" : s.flow + "/" + s.step;
}

}  // namespace

struct Processor::Parsed {
  std::string queue, schema, dedupe_key, conversation_key, phone_number_id, wa_id, correlation_id,
      kind;
  // inbound.message: who sent it (a phone, a BSUID, or both) and an identity change it announces.
  std::string user_id, parent_user_id, system_type, new_wa_id, new_user_id, previous_user_id;
  // Where replies go (from the conversation, once locked): the phone, else the BSUID.
  std::string reply_phone, reply_user_id;
  std::string received_at;  // inbound.message: when ingress received the webhook (RFC 3339)
  // inbound.message: the Meta app whose path the webhook came to ("default" when the envelope
  // names none: an older ingress). Empty for internal events, which convoy made itself.
  std::string app;
  std::string tenant;  // the number's, from the registry (once the number is let through)
  int64_t wa_timestamp = 0;
  Event event;
  ThreadControlOutcome thread;  // outbound.thread_controlled: what Meta's thread_control did
  MessageStatus status_change;  // outbound.status_changed: where an agent's message stands
};

struct Processor::Applied {
  LogCtx ctx{""};
  bool duplicate = false;
  // Not a number convoy serves: "unknown", "offboarded" or "wrong_app" (nothing else was done),
  // and whether this was the update's first delivery (recorded and counted now). `app`: the one the
  // update came through; `number_app`: the registry's, for wrong_app.
  std::string number_refused, phone_number_id, kind, app, number_app;
  bool number_refused_first = false;
  bool wrote_outbox = false;
  std::string from, to, note;
  size_t effects = 0;
};

namespace {

using Parsed = Processor::Parsed;

void ParseDelivery(const rapidjson::Document& doc, const Delivery& d, Parsed& p) {
  p.queue = d.queue;
  p.schema = JsonStr(doc, "schema");
  p.correlation_id = JsonStr(doc, "correlation_id");
  p.conversation_key = JsonStr(doc, "conversation_key");
  p.phone_number_id = JsonStr(doc, "phone_number_id");
  if (p.phone_number_id
          .empty()) {  // internal events name the conversation, "<phone_number_id>:<identity>"
    p.phone_number_id = p.conversation_key.substr(0, p.conversation_key.find(':'));
  }
  p.dedupe_key = d.Header(headers::kDedupeKey);
  Event& e = p.event;
  if (p.schema == "inbound.message") {
    const Value& m = JsonMember(doc, "message");
    p.wa_id = JsonStr(doc, "wa_id");
    p.user_id = JsonStr(doc, "user_id");
    p.parent_user_id = JsonStr(doc, "parent_user_id");
    if (JsonStr(m, "type") == "system") {
      const Value& sys = JsonMember(m, "system");
      p.system_type = JsonStr(sys, "type");
      if (p.system_type == "user_changed_number") p.new_wa_id = JsonStr(sys, "wa_id");
      if (p.system_type == "user_changed_user_id") {
        p.new_user_id = JsonStr(sys, "user_id");
        p.previous_user_id = JsonStr(sys, "previous_user_id");
      }
    }
    if (p.dedupe_key.empty()) p.dedupe_key = JsonStr(m, "id");
    p.kind = "message";
    p.wa_timestamp = std::atoll(JsonStr(m, "timestamp").c_str());
    p.received_at = JsonStr(doc, "received_at");
    p.app = JsonStr(doc, "app");
    if (p.app.empty()) p.app = "default";
    e.profile_name = JsonStr(doc, "profile_name");
    e.wa_timestamp = p.wa_timestamp;
    const std::string channel = JsonStr(doc, "channel");  // the schema's enum; absent: messages
    e.channel = channel == "standby"   ? Event::Channel::kStandby
                : channel == "echo"    ? Event::Channel::kEcho
                : channel == "history" ? Event::Channel::kHistory
                                       : Event::Channel::kMessages;
    e.outgoing = JsonStr(doc, "direction") == "out";
    std::string type = JsonStr(m, "type");
    e.message_type = type;
    if (type == "text") {
      e.kind = Event::Kind::kText;
      e.text = JsonStr(JsonMember(m, "text"), "body");
    } else if (type == "image" || type == "document" || type == "video" || type == "audio") {
      // Media, its member named after its type (a voice note is audio with "voice": true); whether
      // the step takes it is the engine's to say.
      const Value& media = JsonMember(m, type.c_str());
      e.kind = Event::Kind::kMedia;
      e.media_id = JsonStr(media, "id");
      e.mime_type = JsonStr(media, "mime_type");
      e.sha256 = JsonStr(media, "sha256");
      e.text = JsonStr(media, "caption");
      e.filename = JsonStr(media, "filename");
      if (e.media_id.empty()) e.kind = Event::Kind::kOther;
    } else if (type == "interactive") {
      // A tapped reply button or list row: its id picks the choice, its title reads as text.
      const Value& in = JsonMember(m, "interactive");
      const std::string kind = JsonStr(in, "type");
      if (kind == "button_reply" || kind == "list_reply") {
        const Value& reply = JsonMember(in, kind.c_str());
        e.kind = Event::Kind::kButton;
        e.button_id = JsonStr(reply, "id");
        e.text = JsonStr(reply, "title");
      }
      // Anything else (nfm_reply: a WhatsApp Flows form submitted, with its response_json) is
      // something the user did that no convoy flow asked for: kOther, answered like any such.
    } else if (type == "button") {
      // A template's quick-reply button.
      const Value& b = JsonMember(m, "button");
      e.kind = Event::Kind::kButton;
      e.button_id = JsonStr(b, "payload");
      e.text = JsonStr(b, "text");
    } else if (type == "system" || type == "reaction" || type == "edit" || type == "revoke") {
      // WhatsApp's notice (a number or ID change), an emoji on a message (or its removal), an
      // edit or a deletion of an earlier message: recorded in the transcript, never answered as
      // if the user had written something new.
      e.kind = Event::Kind::kRecorded;
    }
  } else if (p.schema == "inbound.handover") {
    // The thread's owner changed (Meta's Conversation Routing): the customer's conversation, in
    // order with their messages.
    p.kind = "handover";
    p.wa_id = JsonStr(doc, "wa_id");
    p.user_id = JsonStr(doc, "user_id");
    p.parent_user_id = JsonStr(doc, "parent_user_id");
    p.wa_timestamp = std::atoll(JsonStr(doc, "timestamp").c_str());
    p.received_at = JsonStr(doc, "received_at");
    p.app = JsonStr(doc, "app");
    if (p.app.empty()) p.app = "default";
    e.kind = Event::Kind::kHandover;
    e.wa_timestamp = p.wa_timestamp;
    e.handover_action = JsonStr(doc, "action");
    e.previous_owner_app_id = JsonStr(doc, "previous_owner_app_id");
    e.new_owner_app_id = JsonStr(doc, "new_owner_app_id");
    if (p.dedupe_key.empty()) {  // ingress's key (webhook.h), the user as a digest
      const std::string& user = p.wa_id.empty() ? p.user_id : p.wa_id;
      p.dedupe_key = "handover:" + p.phone_number_id + ":" + Sha256Hex(user).substr(0, 16) + ":" +
                     e.handover_action + ":" + JsonStr(doc, "timestamp");
    }
  } else {
    // Internal events name their own dedupe key: "<schema>:<dedupe key of the command>".
    p.kind = p.schema;
    if (p.dedupe_key.empty()) p.dedupe_key = p.schema + ":" + JsonStr(doc, "dedupe_key");
    e.kind = Event::Kind::kRecorded;  // never mistaken for something the user said
    e.media_id = JsonStr(doc, "media_id");
    e.stored_name = JsonStr(doc, "stored_name");
    e.mime_type = JsonStr(doc, "mime_type");  // media.stored: the verified type
    e.reason = JsonStr(doc, "reason");
    e.code = JsonStr(doc, "code");
    if (p.schema == "media.stored") e.kind = Event::Kind::kMediaStored;
    if (p.schema == "media.failed") e.kind = Event::Kind::kMediaFailed;
    if (p.schema == "outbound.sent") e.kind = Event::Kind::kSendSucceeded;
    if (p.schema == "outbound.failed") {
      e.kind = Event::Kind::kSendFailed;
      e.command_key = JsonStr(doc, "dedupe_key");
    }
    if (p.schema.rfind("assignment.", 0) == 0) {
      // The operator is a person like any sender: their identity finds their conversation, for
      // every assignment event (one that named no identity would hold the operator's key with no
      // identity linked, and their checklist would start in a conversation of its own).
      const std::string op = JsonStr(doc, "operator");
      const bool phone = !op.empty() && op.find_first_not_of("0123456789") == std::string::npos;
      (phone ? p.wa_id : p.user_id) = op;
    }
    if (p.schema == "assignment.started" || p.schema == "assignment.cancelled" ||
        p.schema == "assignment.expired") {
      if (p.schema == "assignment.started") {
        e.kind = Event::Kind::kAssignmentStarted;
        e.assignment = DecodeAssignment(JsonMember(doc, "assignment"));
      } else {
        e.kind = Event::Kind::kAssignmentEnded;
        e.assignment.id = JsonStr(doc, "assignment_id");
        e.reason = p.schema.substr(std::string("assignment.").size());
      }
    }
    if (p.schema == "outbound.extracted") {
      e.kind = Event::Kind::kExtracted;
      e.result_id = JsonStr(doc, "request_id");
      e.reason = JsonStr(doc, "error");
      const Value& fields = JsonMember(doc, "fields");
      if (fields.IsObject()) {
        for (const auto& m : fields.GetObject()) {
          if (m.value.IsString()) e.fields[m.name.GetString()] = m.value.GetString();
        }
      }
    }
    if (p.schema == "result.due") {
      e.kind = Event::Kind::kResultDue;
      e.result_id = JsonStr(doc, "result_id");
    }
    if (p.schema == "outbound.status_changed") {
      MessageStatus& st = p.status_change;
      st.send_key = JsonStr(doc, "dedupe_key");
      st.status = JsonStr(doc, "status");
      st.wamid = JsonStr(doc, "wamid");
      st.reason = JsonStr(doc, "reason");
      const Value& code = JsonMember(doc, "code");
      st.code = code.IsInt() ? code.GetInt() : 0;
      const Value& at = JsonMember(doc, "at");
      st.at = at.IsInt64() ? at.GetInt64() : 0;
    }
    if (p.schema == "outbound.thread_controlled") {
      p.thread.dedupe_key = JsonStr(doc, "dedupe_key");
      p.thread.action = JsonStr(doc, "action");
      p.thread.outcome = JsonStr(doc, "outcome");
      p.thread.agent = JsonStr(doc, "agent");
      p.thread.reason = JsonStr(doc, "reason");
      const Value& code = JsonMember(doc, "code");
      p.thread.code = code.IsInt() ? code.GetInt() : 0;
    }
  }
}

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void Key(Writer& w, const std::string& k) {
  w.Key(k.c_str(), static_cast<rapidjson::SizeType>(k.size()));
}

// The members every command and event carries.
void Envelope(Writer& w, const char* schema, const Parsed& p, const std::string& dedupe) {
  w.Key("schema");
  w.String(schema);
  w.Key("version");
  w.Int(1);
  w.Key("correlation_id");
  w.String(p.correlation_id);
  w.Key("dedupe_key");
  w.String(dedupe);
  w.Key("conversation_key");
  w.String(p.conversation_key);
  w.Key("phone_number_id");
  w.String(p.phone_number_id);
}

// An outbound.send's envelope and address, up to its message: to the phone when the person shared
// one (Meta's `to`), else to their BSUID (`recipient`).
void SendHead(Writer& w, const Parsed& p, const std::string& dedupe, int64_t last_inbound_at) {
  Envelope(w, "outbound.send", p, dedupe);
  if (!p.received_at.empty()) {
    w.Key("received_at");
    w.String(p.received_at);
  }
  if (!p.reply_phone.empty()) {
    w.Key("to");
    w.String(p.reply_phone);
  } else {
    w.Key("recipient");
    w.String(p.reply_user_id);
  }
  if (last_inbound_at > 0) {
    w.Key("last_inbound_at");
    w.Int64(last_inbound_at);
  }
}

// mark_read: the user's message this send answers first, to be marked read with the typing
// indicator by outbound before the send (empty: none).
std::string SendBody(const Parsed& p, const std::string& dedupe, const Effect& e,
                     int64_t last_inbound_at, const std::string& mark_read = "") {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  SendHead(w, p, dedupe, last_inbound_at);
  if (!mark_read.empty()) {
    w.Key("mark_read");
    w.String(mark_read);
  }
  w.Key("message");
  w.StartObject();
  if (e.kind == Effect::Kind::kSendButtons) {
    // Graph's reply-buttons message: at most 3 buttons, titles of at most 20 characters.
    w.Key("type");
    w.String("interactive");
    w.Key("interactive");
    w.StartObject();
    w.Key("type");
    w.String("button");
    w.Key("body");
    w.StartObject();
    w.Key("text");
    w.String(e.text);
    w.EndObject();
    w.Key("action");
    w.StartObject();
    w.Key("buttons");
    w.StartArray();
    for (const auto& [id, title] : e.buttons) {
      w.StartObject();
      w.Key("type");
      w.String("reply");
      w.Key("reply");
      w.StartObject();
      w.Key("id");
      w.String(id);
      w.Key("title");
      w.String(title);
      w.EndObject();
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    w.EndObject();
  } else {
    w.Key("type");
    w.String("text");
    w.Key("text");
    w.StartObject();
    w.Key("body");
    w.String(e.text);
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  return b.GetString();
}

// An approved template (the only message allowed outside the 24-hour window), its body's
// parameters in order.
std::string TemplateBody(const Parsed& p, const std::string& dedupe, const Effect& e,
                         int64_t last_inbound_at) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  SendHead(w, p, dedupe, last_inbound_at);
  w.Key("template_category");
  w.String("utility");
  w.Key("message");
  w.StartObject();
  w.Key("type");
  w.String("template");
  w.Key("template");
  w.StartObject();
  w.Key("name");
  w.String(e.template_name);
  w.Key("language");
  w.StartObject();
  w.Key("code");
  w.String(e.template_language);
  w.EndObject();
  w.Key("components");
  w.StartArray();
  w.StartObject();
  w.Key("type");
  w.String("body");
  w.Key("parameters");
  w.StartArray();
  for (const auto& param : e.template_params) {
    w.StartObject();
    w.Key("type");
    w.String("text");
    w.Key("text");
    w.String(param);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  w.EndArray();
  w.EndObject();
  w.EndObject();
  w.EndObject();
  return b.GetString();
}

// What a photo (or a document, video, voice note) is, for whoever receives it: its type and a
// document's file name (made safe by the engine).
void MediaMembers(Writer& w, const Photo& p) {
  if (!p.mime_type.empty()) {
    w.Key("mime_type");
    w.String(p.mime_type);
  }
  if (!p.filename.empty()) {
    w.Key("filename");
    w.String(p.filename);
  }
}

// A checklist's answers as the assignment records them: {"q1": {"answer", "note", "photos": [...]},
// ...} ("note" only when the operator gave one).
std::string AnswersJson(const std::map<std::string, std::string>& fields,
                        const std::map<std::string, std::vector<Photo>>& photos) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  for (const auto& [field, value] : fields) {
    if (field.size() < 2 || field[0] != 'q' ||
        field.find_first_not_of("0123456789", 1) != std::string::npos)
      continue;
    Key(w, field);
    w.StartObject();
    w.Key("answer");
    w.String(value);
    if (auto note = fields.find(field + "_note"); note != fields.end()) {
      w.Key("note");
      w.String(note->second);
    }
    w.Key("photos");
    w.StartArray();
    auto it = photos.find(field);
    if (it != photos.end()) {
      for (const auto& ph : it->second) {
        w.StartObject();
        w.Key("media_id");
        w.String(ph.media_id);
        if (!ph.stored_name.empty()) {
          w.Key("stored_name");
          w.String(ph.stored_name);
        }
        MediaMembers(w, ph);
        w.EndObject();
      }
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndObject();
  return b.GetString();
}

std::string FetchBody(const Parsed& p, const std::string& dedupe, const Effect& e) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  Envelope(w, "media.fetch", p, dedupe);
  w.Key("media_id");
  w.String(e.media_id);
  if (!e.mime_type.empty()) {
    w.Key("mime_type");
    w.String(e.mime_type);
  }
  if (!e.sha256.empty()) {
    w.Key("sha256");
    w.String(e.sha256);
  }
  if (e.keep_days > 0) {
    w.Key("keep_days");
    w.Int(e.keep_days);
  }
  if (!e.kinds.empty()) {
    w.Key("kinds");
    w.StartArray();
    for (const auto& k : e.kinds) w.String(k);
    w.EndArray();
  }
  w.EndObject();
  return b.GetString();
}

std::string CompletedBody(const Parsed& p, const std::string& dedupe, const Effect& e) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  Envelope(w, "flow.completed", p, dedupe);
  if (!p.tenant.empty()) {
    w.Key("tenant");
    w.String(p.tenant);
  }
  if (!p.reply_phone.empty()) {
    w.Key("wa_id");
    w.String(p.reply_phone);
  }
  if (!p.reply_user_id.empty()) {
    w.Key("user_id");
    w.String(p.reply_user_id);
  }
  w.Key("flow");
  w.String(e.flow);
  w.Key("outcome");
  w.String(e.outcome);
  w.Key("fields");
  w.StartObject();
  for (const auto& [k, v] : e.fields) {
    Key(w, k);
    w.String(v);
  }
  w.EndObject();
  w.Key("photos");
  w.StartObject();
  for (const auto& [field, list] : e.photos) {
    Key(w, field);
    w.StartArray();
    for (const auto& photo : list) {
      w.StartObject();
      w.Key("media_id");
      w.String(photo.media_id);
      w.Key("sent_at");
      w.Int64(photo.at);
      if (!photo.stored_name.empty()) {
        w.Key("stored_name");
        w.String(photo.stored_name);
      }
      MediaMembers(w, photo);
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  w.EndObject();
  return b.GetString();
}

std::string UploadBody(const Parsed& p, const std::string& dedupe, const Effect& e) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  Envelope(w, "media.upload", p, dedupe);
  w.Key("stored_name");
  w.String(e.stored_name);
  w.Key("destination");
  w.String(e.destination);
  w.EndObject();
  return b.GetString();
}

void PhotosMember(Writer& w, const std::map<std::string, std::vector<Photo>>& photos) {
  w.Key("photos");
  w.StartArray();
  for (const auto& [field, list] : photos) {
    for (const auto& photo : list) {
      w.StartObject();
      w.Key("field");
      Key(w, field);
      w.Key("media_id");
      w.String(photo.media_id);
      w.Key("sent_at");
      w.Int64(photo.at);
      if (!photo.stored_name.empty()) {
        w.Key("stored_name");
        w.String(photo.stored_name);
      }
      MediaMembers(w, photo);
      if (!photo.missing.empty()) {
        w.Key("missing");
        w.String(photo.missing);
      }
      w.EndObject();
    }
  }
  w.EndArray();
}

// A result for its sink: everything the business gets, with photos by stored name (outbound
// turns them into signed links).
// `conversation`: the members of data.conversation (a handoff's owner, reason and transcript), or
// none.
std::string DeliverBody(const Parsed& p, const std::string& dedupe, const Effect& e,
                        const std::string& conversation = "") {
  const PendingResult& r = e.result;
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  Envelope(w, "outbound.deliver", p, dedupe);
  w.Key("result_id");
  w.String(r.id);
  w.Key("sink");
  w.String(r.sink);
  w.Key("type");
  w.String(r.type);
  w.Key("flow");
  w.String(r.flow);
  w.Key("outcome");
  w.String(r.outcome);
  w.Key("completed_at");
  w.Int64(r.completed_at);
  if (!p.reply_phone.empty()) {
    w.Key("wa_id");
    w.String(p.reply_phone);
  }
  if (!p.reply_user_id.empty()) {
    w.Key("user_id");
    w.String(p.reply_user_id);
  }
  w.Key("fields");
  w.StartObject();
  for (const auto& [k, v] : r.fields) {
    Key(w, k);
    w.String(v);
  }
  w.EndObject();
  PhotosMember(w, r.photos);
  if (!conversation.empty()) {
    w.Key("conversation");
    w.RawValue(conversation.c_str(), conversation.size(), rapidjson::kObjectType);
  }
  w.EndObject();
  return b.GetString();
}

std::string DueBody(const Parsed& p, const std::string& dedupe, const Effect& e) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  Envelope(w, "result.due", p, dedupe);
  w.Key("result_id");
  w.String(e.result.id);
  w.EndObject();
  return b.GetString();
}

// The extractor's request: the fields still missing (with the values allowed), the conversation's
// recent messages (oldest first, the newest being the answer the rules found nothing in) and when
// outbound must have answered by.
std::string ExtractBody(const Parsed& p, const std::string& dedupe, const Effect& e,
                        const std::vector<std::pair<std::string, std::string>>& messages,
                        int64_t deadline_at) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  Envelope(w, "outbound.extract", p, dedupe);
  w.Key("request_id");
  w.String(e.result.id);
  w.Key("extractor");
  w.String(e.extractor);
  w.Key("deadline_at");
  w.Int64(deadline_at);
  w.Key("fields");
  w.StartArray();
  for (const auto& f : e.extract) {
    w.StartObject();
    w.Key("name");
    w.String(f.name);
    w.Key("description");
    w.String(f.description);
    if (!f.values.empty()) {
      w.Key("values");
      w.StartArray();
      for (const auto& v : f.values) w.String(v);
      w.EndArray();
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("messages");
  w.StartArray();
  for (const auto& [role, content] : messages) {
    w.StartObject();
    w.Key("role");
    w.String(role);
    w.Key("content");
    w.String(content);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return b.GetString();
}

struct OutboxRow {
  std::string exchange;
  std::string routing_key;
  std::string body;
};

OutboxRow ForEffect(const Parsed& p, const std::string& key, const Effect& e,
                    int64_t last_inbound_at, const std::string& mark_read) {
  switch (e.kind) {
    case Effect::Kind::kSendText:
    case Effect::Kind::kSendButtons:
      return {exchanges::kCommands, queues::kOutboundSend,
              SendBody(p, key, e, last_inbound_at, mark_read)};
    case Effect::Kind::kFetchMedia:
      return {exchanges::kCommands, queues::kMediaFetch, FetchBody(p, key, e)};
    case Effect::Kind::kFlowCompleted:
      return {exchanges::kEvents, routing::kFlowCompleted, CompletedBody(p, key, e)};
    case Effect::Kind::kUploadMedia:
      return {exchanges::kCommands, queues::kMediaUpload, UploadBody(p, key, e)};
    case Effect::Kind::kResultDue:
      // Back to this service's own event queue through a delay queue: at-least-once, no timer.
      return {exchanges::kRetry, DelayRoutingKey(queues::kConversationEvents, e.delay_ms),
              DueBody(p, key, e)};
    case Effect::Kind::kSendTemplate:
      return {exchanges::kCommands, queues::kOutboundSend,
              TemplateBody(p, key, e, last_inbound_at)};
    case Effect::Kind::kAssignmentDone:
    case Effect::Kind::kAssignmentUndeliverable:
    case Effect::Kind::kExtract:
    case Effect::Kind::kDeliver:
    case Effect::Kind::kHandoff:
    case Effect::Kind::kFlowExpired:  // never a message's: run_timeouts.cpp writes it
      break;  // not one plain message: written by ApplyInTransaction (the assignment; the context;
              // a row per sink)
  }
  return {exchanges::kCommands, queues::kOutboundSend, SendBody(p, key, e, last_inbound_at)};
}

// A handoff's transcript: the newest messages, enough for an agent to pick the conversation up.
constexpr int kHandoffTranscriptLimit = 50;

// A message the bot queued, as the transcript keeps it.
TranscriptMessage Said(const Effect& e, const std::string& key) {
  TranscriptMessage m;
  m.direction = "out";
  m.author = "bot";
  m.dedupe_key = key;
  if (e.kind == Effect::Kind::kSendTemplate) {
    m.kind = "template";
    m.body = e.template_name;
  } else {
    m.kind = e.kind == Effect::Kind::kSendButtons ? "interactive" : "text";
    m.body = e.text;
    for (const auto& [id, title] : e.buttons) m.body += "\n[" + title + "]";
  }
  return m;
}

const char* ChannelName(Event::Channel c) {
  switch (c) {
    case Event::Channel::kStandby:
      return "standby";
    case Event::Channel::kEcho:
      return "echo";
    case Event::Channel::kHistory:
      return "history";
    case Event::Channel::kMessages:
      break;
  }
  return "messages";
}

// A customer message while a person (or another app) owns the conversation: counted, its window
// opened, never given to the flow.
Transition HeldByOwner(const Parsed& p, const ConversationState& before, const Ownership& own) {
  const Event& e = p.event;
  Transition t{before,
               {},
               e.kind == Event::Kind::kHandover         ? e.handover_action
               : e.channel != Event::Channel::kMessages ? ChannelName(e.channel)
               : own.owner == kOwnerHuman               ? "human_owned"
                                                        : "owned_elsewhere"};
  if (e.kind == Event::Kind::kRecorded || e.kind == Event::Kind::kHandover || e.outgoing) return t;
  t.state.messages++;
  t.state.last_inbound_at = std::max(t.state.last_inbound_at, p.wa_timestamp);
  return t;
}

// Who owns the thread after this update, as Meta's routing and the WhatsApp Business app say ("" no
// change): a handover names it; a message on standby means another app (or Meta's agent) owns the
// thread; what the owner typed in the Business app (an echo) puts a person in charge.
std::string OwnerAfter(const Event& e, const std::string& owner) {
  if (e.kind == Event::Kind::kHandover)
    return e.handover_action == "control_passed" ? kOwnerBot : kOwnerElsewhere;
  if (e.channel == Event::Channel::kStandby) return kOwnerElsewhere;
  if (e.channel == Event::Channel::kEcho && owner == kOwnerBot) return kOwnerHuman;
  return "";
}

constexpr const char* kInsertContext =
    "INSERT INTO conversation_context (conversation_key, role, content, tokens) VALUES ($1, $2, "
    "$3, $4::int)";
// Oldest first out: every row older than the newest ones that fit in the budget.
constexpr const char* kPruneContext =
    "DELETE FROM conversation_context c USING (SELECT seq FROM (SELECT seq, sum(tokens) OVER "
    "(ORDER BY seq DESC) AS "
    "total FROM conversation_context WHERE conversation_key = $1) w WHERE total > $2::int) old "
    "WHERE c.seq = old.seq";
constexpr const char* kReadContext =
    "SELECT role, content FROM conversation_context WHERE conversation_key = $1 ORDER BY seq";

int64_t SystemNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int ApproxTokens(const std::string& text) {
  size_t chars = 0;
  for (unsigned char c : text) chars += (c & 0xC0) != 0x80;  // UTF-8 characters, not bytes
  return 4 + static_cast<int>((chars + 3) / 4);
}

Status Processor::RecordContext(const Parsed& p, const ConversationState& before,
                                const Transition& t) {
  auto flows = engine_.flows();
  auto has_extractor = [&](const std::string& name) {
    const Flow* f = name.empty() ? nullptr : flows->Find(name);
    return f && !f->extractor.empty();
  };
  const bool asks = std::any_of(t.effects.begin(), t.effects.end(),
                                [](const Effect& e) { return e.kind == Effect::Kind::kExtract; });
  if (!asks && !has_extractor(before.flow) && !has_extractor(t.state.flow)) return Status::Ok();
  const bool said = p.event.channel == Event::Channel::kMessages &&
                    (p.event.kind == Event::Kind::kText || p.event.kind == Event::Kind::kButton) &&
                    !p.event.text.empty();
  std::vector<std::pair<std::string, std::string>> rows;
  if (said) rows.emplace_back("user", p.event.text);
  for (const auto& e : t.effects) {
    if (e.kind == Effect::Kind::kSendText || e.kind == Effect::Kind::kSendButtons)
      rows.emplace_back("assistant", e.text);
  }
  for (const auto& [role, content] : rows) {
    // One message larger than the whole budget is kept as its end (the newest words).
    std::string kept = content;
    while (ApproxTokens(kept) > context_budget_ && kept.size() > 4) {
      size_t cut = kept.size() / 4;
      while (cut < kept.size() && (static_cast<unsigned char>(kept[cut]) & 0xC0) == 0x80) ++cut;
      kept = kept.substr(cut);
    }
    Status s = db_.Exec(kInsertContext,
                        {p.conversation_key, role, kept, std::to_string(ApproxTokens(kept))})
                   .status();
    if (!s.ok()) return s;
  }
  if (rows.empty()) return Status::Ok();
  return db_.Exec(kPruneContext, {p.conversation_key, std::to_string(context_budget_)}).status();
}

Processor::Processor(PgConnection& db, const SchemaRegistry& schemas, const Engine& engine,
                     std::function<void()> on_commit, std::function<int64_t()> clock)
    : db_(db),
      schemas_(schemas),
      engine_(engine),
      on_commit_(std::move(on_commit)),
      clock_(clock ? std::move(clock) : SystemNow) {
  M();
}

std::optional<Disposition> Processor::Prepare(const Delivery& d, Parsed* p) {
  LogCtx ctx{d.queue, d.Header(headers::kCorrelationId), d.Header(headers::kConversationKey),
             d.Header(headers::kDedupeKey)};
  Status valid = schemas_.Validate(d.body);
  if (!valid.ok()) {
    M().invalid.Inc();
    LOG(WARNING) << ctx << "event=invalid_message reason=" << valid.message();
    return Disposition::DeadLetter(valid.ToString());
  }
  rapidjson::Document doc;
  doc.Parse(d.body.c_str(), d.body.size());
  // An account_update is no conversation's: applied on its own (account_events.h), its outcome
  // final.
  if (JsonStr(doc, "schema") == "inbound.account") return ApplyAccountUpdate(db_, doc, d);
  ParseDelivery(doc, d, *p);
  if (p->schema == "inbound.message" && p->wa_id.empty() && p->user_id.empty()) {
    // Never a shared "unknown" conversation: two strangers would answer each other's questions.
    M().invalid.Inc();
    LOG(WARNING) << ctx << "event=invalid_message reason=no_identity";
    return Disposition::DeadLetter(
        "invalid_argument: no usable identity (no from, no from_user_id, no wa_id, no user_id)");
  }
  if (p->conversation_key.empty() || p->phone_number_id.empty()) {
    M().invalid.Inc();
    LOG(WARNING) << ctx << "event=invalid_message reason=names_no_conversation";
    return Disposition::DeadLetter("invalid_argument: message names no conversation");
  }
  return std::nullopt;
}

Disposition Processor::Handle(const Delivery& d) {
  Parsed p;
  if (auto dead = Prepare(d, &p)) return *dead;
  auto started = std::chrono::steady_clock::now();
  Applied a;
  auto tx = PgTransaction::Begin(db_);
  Status s = tx.ok() ? ApplyInTransaction(p, &a) : tx.status();
  if (s.ok()) s = tx->Commit();
  M().tx.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  if (!s.ok()) {
    if (IsTransient(s.code())) M().failed.Inc();
    LOG(WARNING) << LogCtx{d.queue, p.correlation_id, p.conversation_key, p.dedupe_key}
                 << "event=apply_failed error=" << s.ToString();
    return DispositionFor(s);
  }
  Report(a);
  if (a.wrote_outbox && on_commit_) on_commit_();
  return Disposition::Ack();
}

std::vector<Disposition> Processor::HandleBatch(const std::vector<Delivery>& batch) {
  if (batch.size() == 1) return {Handle(batch[0])};
  std::vector<Disposition> out(batch.size(), Disposition::Ack());
  std::vector<std::pair<Parsed, size_t>> todo;
  for (size_t i = 0; i < batch.size(); ++i) {
    Parsed p;
    if (auto dead = Prepare(batch[i], &p)) {
      out[i] = *dead;
    } else {
      todo.emplace_back(std::move(p), i);
    }
  }
  // One lock order for every consumer (no deadlocks between batches), and each conversation's
  // updates in the order the user sent them.
  std::stable_sort(todo.begin(), todo.end(), [](const auto& a, const auto& b) {
    return std::tie(a.first.conversation_key, a.first.wa_timestamp) <
           std::tie(b.first.conversation_key, b.first.wa_timestamp);
  });
  auto started = std::chrono::steady_clock::now();
  std::vector<Applied> applied(todo.size());
  auto tx = PgTransaction::Begin(db_);
  Status s = tx.status();
  for (size_t k = 0; s.ok() && k < todo.size(); ++k)
    s = ApplyInTransaction(todo[k].first, &applied[k]);
  if (s.ok()) s = tx->Commit();
  M().tx.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  if (!s.ok()) {
    if (tx.ok()) tx->Rollback();  // before each is tried in a transaction of its own
    LOG(WARNING) << LogCtx{batch[0].queue} << "event=batch_failed size=" << todo.size()
                 << " error=" << s.ToString() << " fallback=one_transaction_each";
    for (const auto& [p, i] : todo) out[i] = Handle(batch[i]);
    return out;
  }
  bool wrote_outbox = false;
  for (const auto& a : applied) {
    Report(a);
    wrote_outbox = wrote_outbox || a.wrote_outbox;
  }
  if (wrote_outbox && on_commit_) on_commit_();
  return out;
}

void Processor::Report(const Applied& a) {
  if (!a.number_refused.empty()) {
    if (!a.number_refused_first) return;  // a redelivery of an update already recorded
    (a.number_refused == "offboarded"  ? M().offboarded_number
     : a.number_refused == "wrong_app" ? M().wrong_app
                                       : M().unknown_number)
        .Inc();
    if (Notices().ShouldLog(a.phone_number_id, clock_())) {
      LOG(WARNING) << a.ctx << "event=unknown_number_update phone_number_id=" << a.phone_number_id
                   << " status=" << a.number_refused << " kind=" << a.kind << " app=" << a.app
                   << (a.number_refused == "wrong_app" ? " number_app=" + a.number_app : "")
                   << " action=recorded_not_applied (logged once a minute per number; "
                      "convoy_conversation_unknown_number_updates_total counts each)";
    }
    return;
  }
  if (a.duplicate) {
    M().duplicate.Inc();
    LOG(INFO) << a.ctx << "event=duplicate_ignored";
    return;
  }
  M().applied.Inc();
  LOG(INFO) << a.ctx << "event=transition from=" << a.from << " to=" << a.to << " note=" << a.note
            << " effects=" << a.effects;
}

namespace {
bool Contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}
}  // namespace

Status Processor::ResolveIdentity(Parsed* p, Applied* a) {
  // What this message knows: its phone (or, after a number change, the old one), its BSUID
  // (after an ID change, the previous one); and what it announces.
  std::vector<std::string> ids;
  for (const std::string* id :
       {&p->wa_id, &p->user_id, &p->previous_user_id, &p->new_wa_id, &p->new_user_id}) {
    if (!id->empty() && !Contains(ids, *id)) ids.push_back(*id);
  }
  std::vector<std::string> sorted = ids;
  std::sort(sorted.begin(), sorted.end());  // one lock order everywhere
  for (const auto& id : sorted) {
    Status s = db_.Exec(kLockIdentity, {p->phone_number_id + ":" + id}).status();
    if (!s.ok()) return s;
  }
  std::string array = "{";
  for (size_t i = 0; i < ids.size(); ++i) array += (i ? ",\"" : "\"") + ids[i] + "\"";
  array += "}";
  auto found = db_.Exec(kFindIdentities, {p->phone_number_id, array});
  if (!found.ok()) return found.status();
  std::map<std::string, std::string> owner;
  for (size_t i = 0; i < found->size(); ++i) owner[found->get(i, 0)] = found->get(i, 1);
  auto conv = [&](const std::string& id) -> std::string {
    auto it = id.empty() ? owner.end() : owner.find(id);
    return it == owner.end() ? "" : it->second;
  };
  // The person's conversation: the phone's, else the BSUID's (or the previous BSUID's), else a
  // new one under ingress's key.
  std::string key = conv(p->wa_id);
  if (key.empty()) key = conv(p->user_id);
  if (key.empty()) key = conv(p->previous_user_id);
  if (key.empty()) key = conv(p->new_wa_id);
  if (key.empty()) key = conv(p->new_user_id);
  if (key.empty()) {
    // A new person. Ingress's key names their identity, but a conversation may hold that key
    // already: one whose identity moved (a number given up, a BSUID replaced or merged). Never
    // share it: the new person gets a key of their own.
    key = p->conversation_key;
    auto taken = db_.Exec(kConversationExists, {key});
    if (!taken.ok()) return taken.status();
    if (!taken->empty()) key += "#" + p->dedupe_key;
  }
  p->conversation_key = key;
  a->ctx = LogCtx{p->queue, p->correlation_id, key, p->dedupe_key};
  Status s;
  bool ensured = false;
  auto audit = [&](const char* change, const std::string& id, const std::string& previous) {
    LOG(INFO) << a->ctx << "event=identity_" << change << " identity=" << Personal(id)
              << " previous=" << Personal(previous);
    return db_.Exec(kAuditIdentity, {key, change, id, previous, p->dedupe_key, p->correlation_id})
        .status();
  };
  // Current identities point here. One the message links that belonged to another conversation
  // (the person wrote by phone and by BSUID alone before a message carried both) joins this one.
  const bool number_changed = p->system_type == "user_changed_number" && !p->new_wa_id.empty();
  const bool id_changed = p->system_type == "user_changed_user_id" && !p->new_user_id.empty();
  std::vector<std::string> current;
  for (const std::string* id : {&p->wa_id, &p->user_id, &p->new_wa_id, &p->new_user_id}) {
    if (id->empty() || Contains(current, *id)) continue;
    if (number_changed && *id == p->wa_id) continue;  // the old number: released below
    if (id_changed && *id == p->user_id && p->user_id != p->new_user_id) continue;
    current.push_back(*id);
  }
  for (const auto& id : current) {
    std::string before = conv(id);
    if (before == key) continue;
    if (!ensured) {  // the row must exist before an identity points at it
      s = db_.Exec(kEnsureConversation, {key, p->phone_number_id, p->wa_id, p->user_id}).status();
      if (!s.ok()) return s;
      ensured = true;
    }
    s = db_.Exec(kLinkIdentity, {p->phone_number_id, id, key}).status();
    if (!s.ok()) return s;
    s = audit(before.empty() ? "linked" : "merged", id, before);
    if (!s.ok()) return s;
  }
  // Identity changes move the identity, never the conversation: the old number may be given to
  // someone else, and must not reach this person's conversation.
  if (number_changed && !p->wa_id.empty() && p->wa_id != p->new_wa_id) {
    s = db_.Exec(kUnlinkIdentity, {p->phone_number_id, p->wa_id, key}).status();
    if (s.ok()) s = audit("number_changed", p->new_wa_id, p->wa_id);
    if (!s.ok()) return s;
    p->wa_id = p->new_wa_id;
  }
  if (id_changed && !p->previous_user_id.empty() && p->previous_user_id != p->new_user_id) {
    s = db_.Exec(kUnlinkIdentity, {p->phone_number_id, p->previous_user_id, key}).status();
    if (s.ok()) s = audit("user_id_changed", p->new_user_id, p->previous_user_id);
    if (!s.ok()) return s;
    p->user_id = p->new_user_id;
  }
  return Status::Ok();
}

namespace {
// A delivery about the conversation to the business's inbox: its sink (the conversation's, else
// --handoff_sink), the conversation and the customer; type, key and message are the caller's.
ConversationDelivery ToInbox(const Parsed& p, const Ownership& own,
                             const std::string& handoff_sink) {
  ConversationDelivery d;
  d.sink = own.sink.empty() ? handoff_sink : own.sink;
  d.conversation_key = p.conversation_key;
  d.conversation_id = own.id;
  d.phone_number_id = p.phone_number_id;
  d.correlation_id = p.correlation_id;
  d.wa_id = p.reply_phone;
  d.user_id = p.reply_user_id;
  d.conversation_json["owner"] = JsonQuote(own.owner);
  return d;
}
}  // namespace

// The customer's message to the business's inbox (conversation.message to the conversation's
// sink; outbound keeps a conversation's deliveries in the order written), and its media fetched
// for the agents to see.
Status Processor::ForwardToInbox(const Parsed& p, const Ownership& own) {
  const Event& e = p.event;
  std::string message =
      "{\"kind\":" + JsonQuote(e.message_type) + ",\"at\":" + std::to_string(p.wa_timestamp);
  if (!e.text.empty()) message += ",\"body\":" + JsonQuote(e.text);
  if (!e.media_id.empty()) message += ",\"media_id\":" + JsonQuote(e.media_id);
  if (!e.mime_type.empty()) message += ",\"mime_type\":" + JsonQuote(e.mime_type);
  message += ",\"author\":\"customer\"}";
  ConversationDelivery d = ToInbox(p, own, engine_.settings().handoff_sink);
  d.type = "conversation.message";
  d.dedupe_key = p.conversation_key + ":" + p.dedupe_key + ":inbox";
  d.outcome = "message";
  d.at = p.wa_timestamp;
  d.conversation_json["message"] = message;
  Status s = QueueConversationDelivery(db_, d);
  if (!s.ok() || e.kind != Event::Kind::kMedia) return s;
  Effect fetch;
  fetch.kind = Effect::Kind::kFetchMedia;
  fetch.media_id = e.media_id;
  fetch.mime_type = e.mime_type;
  fetch.sha256 = e.sha256;
  fetch.kinds = {e.message_type};
  const std::string key = p.conversation_key + ":" + p.dedupe_key + ":fetch";
  return db_
      .Exec(kInsertOutbox, {std::string(exchanges::kCommands), std::string(queues::kMediaFetch),
                            key, p.correlation_id, p.conversation_key, FetchBody(p, key, fetch)})
      .status();
}

Status Processor::ApplyInTransaction(Parsed p, Applied* a) {
  a->ctx = LogCtx{p.queue, p.correlation_id, p.conversation_key, p.dedupe_key};
  // Only numbers in the registry, not offboarded, reach a flow, and a user's update only through
  // the number's own Meta app: anything else is recorded and acked with no state, no outbox row,
  // no reply and no fetch. (paused: applied like active; its sends wait in outbound.) Internal
  // events carry no app: convoy made them from an update already let through.
  auto number = LookupNumber(db_, p.phone_number_id);
  if (!number.ok()) return number.status();
  p.event.number_greeting = number->greeting;
  p.event.number_default_flow = number->default_flow;
  p.event.number_flows = number->flows;
  p.event.number_templates_language = number->templates_language;
  a->number_app = number->app;
  p.tenant = number->tenant;
  if (number->status == NumberStatus::kUnknown || number->status == NumberStatus::kOffboarded) {
    a->number_refused = NumberStatusName(number->status);
  } else if (!p.app.empty() && p.app != a->number_app) {
    a->number_refused = "wrong_app";
  }
  if (!a->number_refused.empty()) {
    a->phone_number_id = p.phone_number_id;
    a->kind = p.kind;
    a->app = p.app;
    auto recorded = db_.Exec(kRecordUnknownNumber, {Sha256Hex(p.dedupe_key), p.phone_number_id,
                                                    a->number_refused, p.kind, p.app});
    if (!recorded.ok()) return recorded.status();
    a->number_refused_first = !recorded->empty();
    return Status::Ok();
  }
  auto dedupe = db_.Exec(kInsertDedupe, {p.dedupe_key, p.conversation_key, p.kind,
                                         std::to_string(p.wa_timestamp), p.correlation_id});
  if (!dedupe.ok()) return dedupe.status();
  if (dedupe->empty()) {
    a->duplicate = true;
    return Status::Ok();
  }
  const bool from_user = p.schema == "inbound.message";
  // A person: a sender, or an operator a checklist is assigned to.
  const bool identified = from_user || (!p.wa_id.empty() || !p.user_id.empty());
  if (identified) {
    Status s = ResolveIdentity(&p, a);
    if (!s.ok()) return s;
  }
  // The conversation's row lock; a new conversation's row is created first (one round trip
  // fewer for the common case of a conversation that exists).
  const std::string sent_at = std::to_string(from_user ? p.wa_timestamp : 0);
  auto locked = db_.Exec(kLockConversation, {p.conversation_key, sent_at});
  if (!locked.ok()) return locked.status();
  if (locked->empty()) {
    Status created =
        db_.Exec(kEnsureConversation, {p.conversation_key, p.phone_number_id, p.wa_id, p.user_id})
            .status();
    if (!created.ok()) return created;
    locked = db_.Exec(kLockConversation, {p.conversation_key, sent_at});
    if (!locked.ok()) return locked.status();
    if (locked->empty()) return Status(Code::kInternal, "conversation row vanished");
  }
  p.reply_phone = locked->get(0, 1);
  p.reply_user_id = locked->get(0, 2);
  Ownership own{locked->get(0, 5), locked->get(0, 3), "", locked->get(0, 4)};
  if (identified && ((!p.wa_id.empty() && p.wa_id != p.reply_phone) ||
                     (!p.user_id.empty() && p.user_id != p.reply_user_id))) {
    Status u = db_.Exec(kUpdateAddress, {p.conversation_key, p.wa_id, p.user_id, p.parent_user_id})
                   .status();
    if (!u.ok()) return u;
    if (!p.wa_id.empty()) p.reply_phone = p.wa_id;
    if (!p.user_id.empty()) p.reply_user_id = p.user_id;
  }
  Status s;
  ConversationState before = DecodeState(locked->get(0, 0));
  if (locked->get_int(0, 6) != 0) {
    // Sent after the run's inactivity timeout, before the sweeper ended it: it ends now, and this
    // message is routed fresh.
    s = ExpireLockedRun(db_, engine_,
                        {p.conversation_key, p.correlation_id, p.dedupe_key, "message"}, clock_(),
                        &before);
    if (!s.ok()) return s;
    a->wrote_outbox = true;
  }
  p.event.id = p.conversation_key + ":" + p.dedupe_key;
  p.event.person = p.conversation_key;
  p.event.ids = {p.reply_phone, p.reply_user_id};
  // What the customer said is kept, whoever answers it.
  const bool customer_message = from_user && p.event.kind != Event::Kind::kRecorded &&
                                !p.event.outgoing && p.event.channel == Event::Channel::kMessages;
  if (const std::string next = OwnerAfter(p.event, own.owner); !next.empty() && next != own.owner) {
    // Changed with this update, in its transaction: a bot reply written before it is cancelled by
    // outbound (its outbox row is older than owner_since).
    s = SetOwner(db_, p.conversation_key, next,
                 p.event.channel == Event::Channel::kEcho ? "business_app" : "", "", false);
    if (!s.ok()) return s;
    own.owner = next;
  }
  // Meta's thread_control (thread_control.h): what outbound's call did moves the owner; while a
  // pass or release is on its way the bot is as silent as if it were done.
  std::string pending_thread = locked->get(0, 7), event_note;
  if (p.schema == "outbound.thread_controlled") {
    auto note = ApplyThreadControlOutcome(db_, p.conversation_key, pending_thread, p.thread,
                                          engine_.settings().handoff_sink, &own);
    if (!note.ok()) return note.status();
    event_note = *note;
    if (pending_thread == p.thread.dedupe_key) pending_thread.clear();
  }
  if (p.schema == "outbound.status_changed") {
    // An agent's message moved at Meta: the business's sink (the conversation's, as its customer
    // messages) hears it once per status, in order with the rest.
    auto told =
        TellMessageStatus(db_, ToInbox(p, own, engine_.settings().handoff_sink), p.status_change);
    if (!told.ok()) return told.status();
    event_note = "message_status " + p.status_change.status +
                 (*told ? "" : " (told before, or after a later one)");
    if (*told) a->wrote_outbox = true;
  }
  const std::string pending_action = PendingThreadAction(pending_thread);
  const bool passing = pending_action == "pass" || pending_action == "release";
  const bool bot_answers = own.owner == kOwnerBot && !passing;
  if (from_user) {
    TranscriptMessage in;
    in.channel = ChannelName(p.event.channel);
    if (p.event.outgoing || p.event.channel == Event::Channel::kEcho) {
      in.direction = "out";
      in.author = "business_app";
    }
    in.kind = p.event.message_type;
    in.body = p.event.text;
    in.media_id = p.event.media_id;
    in.dedupe_key = p.dedupe_key;
    in.wa_timestamp = p.wa_timestamp;
    s = RecordMessage(db_, p.conversation_key, in);
    if (!s.ok()) return s;
  }
  Transition t;
  if ((from_user || p.event.kind == Event::Kind::kHandover) && !bot_answers) {
    // A person (or another app) answers: the bot says nothing, now or later. The message goes to
    // the business's inbox while a human owns the conversation, its media fetched for them.
    t = HeldByOwner(p, before, own);
    if (own.owner == kOwnerBot) t.note = "thread_control_pending";
    if (customer_message && own.owner == kOwnerHuman) {
      s = ForwardToInbox(p, own);
      if (!s.ok()) return s;
    }
  } else {
    t = engine_.Advance(before, p.event, clock_());
  }
  if (!event_note.empty()) t.note = event_note;
  if (!bot_answers) {
    // Nothing the bot would say goes out on a conversation it does not own (a reminder, a checklist
    // question started while an agent talks), nor while it is being passed on.
    auto bot_says = [](const Effect& e) {
      return e.kind == Effect::Kind::kSendText || e.kind == Effect::Kind::kSendButtons ||
             e.kind == Effect::Kind::kSendTemplate;
    };
    size_t before_count = t.effects.size();
    t.effects.erase(std::remove_if(t.effects.begin(), t.effects.end(), bot_says), t.effects.end());
    if (t.effects.size() != before_count && t.note.empty()) t.note = "not_owner";
  }
  // An event that changed nothing (a send's confirmation, most media events) writes no new row
  // version: the audit below still records it.
  const std::string after_json = EncodeState(t.state);
  if (after_json != EncodeState(before)) {
    const RunDue due = NextRunDue(engine_, before, t.state, from_user);
    s = db_.Exec(kSaveConversation,
                 {p.conversation_key, after_json,
                  t.state.flow.empty() ? std::nullopt : std::optional<std::string>(t.state.flow),
                  std::to_string(t.state.last_inbound_at != before.last_inbound_at
                                     ? t.state.last_inbound_at
                                     : 0),
                  due.seconds, due.granularity})
            .status();
    if (!s.ok()) return s;
  }
  a->from = StepName(before);
  a->to = StepName(t.state);
  a->note = t.note;
  a->effects = t.effects.size();
  s = db_.Exec(kInsertTransition, {p.conversation_key, a->from, a->to, p.dedupe_key,
                                   p.correlation_id, t.note, std::to_string(p.wa_timestamp)})
          .status();
  if (!s.ok()) return s;
  auto is_answer = [](const Effect& e) {
    return e.kind == Effect::Kind::kSendText || e.kind == Effect::Kind::kSendButtons;
  };
  const bool answered = std::any_of(t.effects.begin(), t.effects.end(), is_answer);
  // The first answer carries the user's message to mark read with the typing indicator: outbound
  // makes that call just before the send, once (the send's claim guards both), so the indicator
  // never lands after the reply and costs no command of its own.
  std::string mark_read =
      typing_indicator_ && from_user && answered && p.event.kind != Event::Kind::kRecorded
          ? p.dedupe_key
          : "";
  if (!t.state.assignment.id.empty() && (t.note == "answered" || t.note == "media_stored")) {
    // GET /v1/assignments/{id} shows the answers so far, and an answer's photo once media stored
    // it (its stored_name: the console shows it as it comes, not only with the next answer).
    s = RecordAnswers(db_, t.state.assignment.id, AnswersJson(t.state.fields, t.state.photos));
    if (!s.ok()) return s;
  }
  s = RecordContext(p, before, t);
  if (!s.ok()) return s;
  // A result to every sink the number sends it to, one command apiece, each its own dedupe key.
  auto deliver = [&](const std::string& key, const Effect& e) -> Status {
    auto sinks = NumberSinks(db_, p.phone_number_id, e.result.sink);
    if (!sinks.ok()) return sinks.status();
    // A handoff's body carries the conversation: its id, owner, why, and what was said.
    std::string conversation;
    if (e.result.id.size() > 8 && e.result.id.compare(e.result.id.size() - 8, 8, ":handoff") == 0) {
      auto said = TranscriptJson(db_, p.conversation_key, kHandoffTranscriptLimit);
      if (!said.ok()) return said.status();
      conversation = "{\"id\":" + JsonQuote(own.id) +
                     ",\"owner\":\"human\",\"reason\":" + JsonQuote(e.result.outcome) +
                     ",\"messages\":" + *said + "}";
    }
    for (const std::string& sink : *sinks) {
      Effect to = e;
      to.result.sink = sink;
      const std::string sink_key = sink == e.result.sink ? key : key + ">" + sink;
      Status w = db_.Exec(kInsertOutbox,
                          {std::string(exchanges::kCommands), std::string(queues::kOutboundDeliver),
                           sink_key, p.correlation_id, p.conversation_key,
                           DeliverBody(p, sink_key, to, conversation)})
                     .status();
      if (!w.ok()) return w;
    }
    a->wrote_outbox = true;
    return Status::Ok();
  };
  for (const auto& e : t.effects) {
    if (e.kind == Effect::Kind::kExtract) {
      auto rows = db_.Exec(kReadContext, {p.conversation_key});
      if (!rows.ok()) return rows.status();
      std::vector<std::pair<std::string, std::string>> messages;
      for (size_t i = 0; i < rows->size(); ++i)
        messages.emplace_back(rows->get(i, 0), rows->get(i, 1));
      std::string key = p.conversation_key + ":" + p.dedupe_key + ":" + e.step;
      s = db_.Exec(kInsertOutbox,
                   {std::string(exchanges::kCommands), std::string(queues::kOutboundExtract), key,
                    p.correlation_id, p.conversation_key,
                    ExtractBody(p, key, e, messages,
                                clock_() + engine_.settings().extractor_timeout_seconds)})
              .status();
      if (!s.ok()) return s;
      a->wrote_outbox = true;
      continue;
    }
    if (e.kind == Effect::Kind::kAssignmentDone) {
      auto done =
          MoveAssignment(db_, e.assignment_id, "active", "completed", "confirmed by the operator",
                         AnswersJson(e.fields, e.photos), assignments_);
      if (!done.ok()) return done.status();
      continue;
    }
    if (e.kind == Effect::Kind::kAssignmentUndeliverable) {
      auto gone =
          MoveAssignment(db_, e.assignment_id, "active", "undeliverable", e.text, "", assignments_);
      if (!gone.ok()) return gone.status();
      // The business hears of it only if it moved: one the manager cancelled meanwhile stays so.
      if (*gone && !e.result.sink.empty()) {
        s = deliver(p.conversation_key + ":" + p.dedupe_key + ":" + e.step, e);
        if (!s.ok()) return s;
      }
      continue;
    }
    if (e.kind == Effect::Kind::kHandoff) {
      s = SetOwner(db_, p.conversation_key, kOwnerHuman, "", e.destination, false);
      if (!s.ok()) return s;
      own.owner = kOwnerHuman;
      own.sink = e.destination;
      continue;
    }
    std::string key = p.conversation_key + ":" + p.dedupe_key + ":" + e.step;
    if (e.kind == Effect::Kind::kDeliver) {
      s = deliver(key, e);
      if (!s.ok()) return s;
      continue;
    }
    OutboxRow row = ForEffect(p, key, e, t.state.last_inbound_at, mark_read);
    if (is_answer(e)) mark_read.clear();
    if (is_answer(e) || e.kind == Effect::Kind::kSendTemplate) {
      s = RecordMessage(db_, p.conversation_key, Said(e, key));
      if (!s.ok()) return s;
    }
    s = db_.Exec(kInsertOutbox, {row.exchange, row.routing_key, key, p.correlation_id,
                                 p.conversation_key, row.body})
            .status();
    if (!s.ok()) return s;
    a->wrote_outbox = true;
  }
  return Status::Ok();
}

}  // namespace convoy::conversation
