#include "processor.h"

#include <glog/logging.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "convoy/log.h"
#include "convoy/rapidjson_util.h"
#include "convoy/metrics.h"
#include "convoy/topology.h"
#include "engine.h"

namespace convoy::conversation {

namespace {

using rapidjson::Value;

// Named, parameterized SQL.
constexpr const char* kInsertDedupe =
    "INSERT INTO inbound_messages (dedupe_key, conversation_key, kind, wa_timestamp, correlation_id) "
    "VALUES ($1, $2, $3, $4::bigint, $5) ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key";
constexpr const char* kEnsureConversation =
    "INSERT INTO conversations (conversation_key, phone_number_id, wa_id) VALUES ($1, $2, $3) "
    "ON CONFLICT (conversation_key) DO NOTHING";
constexpr const char* kLockConversation =
    "SELECT state::text FROM conversations WHERE conversation_key = $1 FOR UPDATE";
constexpr const char* kSaveConversation =
    "UPDATE conversations SET state = $2::jsonb, version = version + 1, updated_at = now() "
    "WHERE conversation_key = $1";
constexpr const char* kInsertTransition =
    "INSERT INTO transitions (conversation_key, from_step, to_step, trigger_dedupe_key, correlation_id) "
    "VALUES ($1, $2, $3, $4, $5)";
constexpr const char* kInsertOutbox =
    "INSERT INTO outbox (exchange, routing_key, dedupe_key, correlation_id, conversation_key, body) "
    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (dedupe_key) DO NOTHING";

struct Metrics {
  Registry& r = DefaultRegistry();
  Counter& applied = r.GetCounter("convoy_conversation_updates_total", "Deliveries by result.", "result=\"applied\"");
  Counter& duplicate = r.GetCounter("convoy_conversation_updates_total", "Deliveries by result.", "result=\"duplicate\"");
  Counter& invalid = r.GetCounter("convoy_conversation_updates_total", "Deliveries by result.", "result=\"invalid\"");
  Counter& failed = r.GetCounter("convoy_conversation_updates_total", "Deliveries by result.", "result=\"transient_failure\"");
  Histogram& tx = r.GetHistogram("convoy_conversation_transaction_seconds", "Dedupe-lock-advance-outbox transaction time.");
};
Metrics& M() {
  static Metrics* m = new Metrics();
  return *m;
}

ConversationState ParseState(const std::string& json) {
  ConversationState s;
  rapidjson::Document d;
  d.Parse(json.c_str());
  if (d.HasParseError() || !d.IsObject()) return s;
  if (d.HasMember("step") && d["step"].IsString()) s.step = d["step"].GetString();
  if (d.HasMember("messages") && d["messages"].IsInt64()) s.messages = d["messages"].GetInt64();
  if (d.HasMember("photos") && d["photos"].IsInt64()) s.photos = d["photos"].GetInt64();
  return s;
}

std::string StateJson(const ConversationState& s) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.StartObject();
  w.Key("step");
  w.String(s.step);
  w.Key("messages");
  w.Int64(s.messages);
  w.Key("photos");
  w.Int64(s.photos);
  w.EndObject();
  return b.GetString();
}

struct Parsed {
  std::string schema, dedupe_key, conversation_key, phone_number_id, wa_id, correlation_id, kind;
  int64_t wa_timestamp = 0;
  Event event;
};

Parsed ParseDelivery(const rapidjson::Document& doc, const Delivery& d) {
  Parsed p;
  p.schema = JsonStr(doc, "schema");
  p.correlation_id = JsonStr(doc, "correlation_id");
  p.conversation_key = JsonStr(doc, "conversation_key");
  auto colon = p.conversation_key.find(':');
  if (colon != std::string::npos) {
    p.phone_number_id = p.conversation_key.substr(0, colon);
    p.wa_id = p.conversation_key.substr(colon + 1);
  }
  p.dedupe_key = d.Header(headers::kDedupeKey);
  if (p.schema == "inbound.message") {
    const Value& m = JsonMember(doc, "message");
    if (p.dedupe_key.empty()) p.dedupe_key = JsonStr(m, "id");
    p.kind = "message";
    p.wa_timestamp = std::atoll(JsonStr(m, "timestamp").c_str());
    p.event.profile_name = JsonStr(doc, "profile_name");
    p.event.wa_timestamp = p.wa_timestamp;
    std::string type = JsonStr(m, "type");
    if (type == "text") {
      p.event.kind = Event::Kind::kText;
      p.event.text = JsonStr(JsonMember(m, "text"), "body");
    } else if (type == "image") {
      const Value& img = JsonMember(m, "image");
      p.event.kind = Event::Kind::kImage;
      p.event.media_id = JsonStr(img, "id");
      p.event.mime_type = JsonStr(img, "mime_type");
      p.event.sha256 = JsonStr(img, "sha256");
      p.event.text = JsonStr(img, "caption");
    }
  } else {
    // Internal events name their own dedupe key: "<schema>:<dedupe key of the command>".
    p.kind = p.schema;
    if (p.dedupe_key.empty()) p.dedupe_key = p.schema + ":" + JsonStr(doc, "dedupe_key");
    if (p.schema == "media.stored") p.event.kind = Event::Kind::kMediaStored;
    if (p.schema == "media.failed") p.event.kind = Event::Kind::kMediaFailed;
    if (p.schema == "outbound.sent") p.event.kind = Event::Kind::kSendSucceeded;
    if (p.schema == "outbound.failed") p.event.kind = Event::Kind::kSendFailed;
  }
  return p;
}

std::string SendBody(const Parsed& p, const std::string& dedupe, const std::string& text) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.StartObject();
  w.Key("schema"); w.String("outbound.send");
  w.Key("version"); w.Int(1);
  w.Key("correlation_id"); w.String(p.correlation_id);
  w.Key("dedupe_key"); w.String(dedupe);
  w.Key("conversation_key"); w.String(p.conversation_key);
  w.Key("phone_number_id"); w.String(p.phone_number_id);
  w.Key("to"); w.String(p.wa_id);
  w.Key("message");
  w.StartObject();
  w.Key("type"); w.String("text");
  w.Key("text"); w.StartObject(); w.Key("body"); w.String(text); w.EndObject();
  w.EndObject();
  w.EndObject();
  return b.GetString();
}

std::string FetchBody(const Parsed& p, const std::string& dedupe, const Effect& e) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.StartObject();
  w.Key("schema"); w.String("media.fetch");
  w.Key("version"); w.Int(1);
  w.Key("correlation_id"); w.String(p.correlation_id);
  w.Key("dedupe_key"); w.String(dedupe);
  w.Key("conversation_key"); w.String(p.conversation_key);
  w.Key("phone_number_id"); w.String(p.phone_number_id);
  w.Key("media_id"); w.String(e.media_id);
  if (!e.mime_type.empty()) { w.Key("mime_type"); w.String(e.mime_type); }
  if (!e.sha256.empty()) { w.Key("sha256"); w.String(e.sha256); }
  w.EndObject();
  return b.GetString();
}

}  // namespace

Processor::Processor(PgConnection& db, const SchemaRegistry& schemas, std::function<void()> on_commit)
    : db_(db), schemas_(schemas), on_commit_(std::move(on_commit)) {
  M();
}

Disposition Processor::Handle(const Delivery& d) {
  LogCtx ctx{d.queue, d.Header(headers::kCorrelationId), d.Header(headers::kConversationKey),
             d.Header(headers::kDedupeKey)};
  Status valid = schemas_.Validate(d.body);
  if (!valid.ok()) {
    M().invalid.Inc();
    LOG(WARNING) << ctx << "event=invalid_message reason=" << valid.message();
    return Disposition::DeadLetter(valid.ToString());
  }
  auto started = std::chrono::steady_clock::now();
  bool wrote_outbox = false;
  Status s = Apply(d, &wrote_outbox);
  M().tx.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  if (!s.ok()) {
    db_.Rollback();
    if (IsTransient(s.code())) M().failed.Inc();
    LOG(WARNING) << ctx << "event=apply_failed error=" << s.ToString();
    return DispositionFor(s);
  }
  if (wrote_outbox && on_commit_) on_commit_();
  return Disposition::Ack();
}

Status Processor::Apply(const Delivery& d, bool* wrote_outbox) {
  rapidjson::Document doc;
  doc.Parse(d.body.c_str(), d.body.size());
  Parsed p = ParseDelivery(doc, d);
  LogCtx ctx{d.queue, p.correlation_id, p.conversation_key, p.dedupe_key};
  if (p.conversation_key.empty() || p.phone_number_id.empty()) {
    return Status(Code::kInvalidArgument, "message names no conversation");
  }
  Status s = db_.Begin();
  if (!s.ok()) return s;
  auto dedupe = db_.Exec(kInsertDedupe, {p.dedupe_key, p.conversation_key, p.kind,
                                         std::to_string(p.wa_timestamp), p.correlation_id});
  if (!dedupe.ok()) return dedupe.status();
  if (dedupe->empty()) {
    s = db_.Commit();
    if (s.ok()) {
      M().duplicate.Inc();
      LOG(INFO) << ctx << "event=duplicate_ignored";
    }
    return s;
  }
  s = db_.Exec(kEnsureConversation, {p.conversation_key, p.phone_number_id, p.wa_id}).status();
  if (!s.ok()) return s;
  auto locked = db_.Exec(kLockConversation, {p.conversation_key});
  if (!locked.ok()) return locked.status();
  if (locked->empty()) return Status(Code::kInternal, "conversation row vanished");
  ConversationState before = ParseState(locked->get(0, 0));
  Transition t = Advance(before, p.event);
  s = db_.Exec(kSaveConversation, {p.conversation_key, StateJson(t.state)}).status();
  if (!s.ok()) return s;
  s = db_.Exec(kInsertTransition, {p.conversation_key, before.step, t.state.step, p.dedupe_key, p.correlation_id})
          .status();
  if (!s.ok()) return s;
  for (const auto& e : t.effects) {
    std::string key = p.conversation_key + ":" + p.dedupe_key + ":" + e.step;
    bool send = e.kind == Effect::Kind::kSendText;
    std::string body = send ? SendBody(p, key, e.text) : FetchBody(p, key, e);
    s = db_.Exec(kInsertOutbox, {std::string(exchanges::kCommands),
                                 std::string(send ? queues::kOutboundSend : queues::kMediaFetch), key,
                                 p.correlation_id, p.conversation_key, body})
            .status();
    if (!s.ok()) return s;
    *wrote_outbox = true;
  }
  s = db_.Commit();
  if (!s.ok()) return s;
  M().applied.Inc();
  LOG(INFO) << ctx << "event=transition from=" << before.step << " to=" << t.state.step
            << " effects=" << t.effects.size();
  return Status::Ok();
}

}  // namespace convoy::conversation
