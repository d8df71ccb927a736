#include "processor.h"

#include <glog/logging.h>

#include <algorithm>
#include <tuple>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "convoy/log.h"
#include "convoy/rapidjson_util.h"
#include "convoy/metrics.h"
#include "convoy/topology.h"
#include "engine.h"
#include "state_codec.h"

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
    "UPDATE conversations SET state = $2::jsonb, flow = $3, version = version + 1, updated_at = now() "
    "WHERE conversation_key = $1";
constexpr const char* kInsertTransition =
    "INSERT INTO transitions (conversation_key, from_step, to_step, trigger_dedupe_key, correlation_id, note, "
    "wa_timestamp) VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, '0')::bigint)";
constexpr const char* kInsertOutbox =
    "INSERT INTO outbox (exchange, routing_key, dedupe_key, correlation_id, conversation_key, body, due_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $1 = 'convoy.commands' THEN now() END) "
    "ON CONFLICT (dedupe_key) DO NOTHING";

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

// "listing/photos", or "idle" outside a flow: the audit's from/to.
std::string StepName(const ConversationState& s) { return s.flow.empty() ? "idle" : s.flow + "/" + s.step; }

}  // namespace

struct Processor::Parsed {
  std::string queue, schema, dedupe_key, conversation_key, phone_number_id, wa_id, correlation_id, kind;
  int64_t wa_timestamp = 0;
  Event event;
};

struct Processor::Applied {
  LogCtx ctx{""};
  bool duplicate = false;
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
  auto colon = p.conversation_key.find(':');
  if (colon != std::string::npos) {
    p.phone_number_id = p.conversation_key.substr(0, colon);
    p.wa_id = p.conversation_key.substr(colon + 1);
  }
  p.dedupe_key = d.Header(headers::kDedupeKey);
  Event& e = p.event;
  if (p.schema == "inbound.message") {
    const Value& m = JsonMember(doc, "message");
    if (p.dedupe_key.empty()) p.dedupe_key = JsonStr(m, "id");
    p.kind = "message";
    p.wa_timestamp = std::atoll(JsonStr(m, "timestamp").c_str());
    e.profile_name = JsonStr(doc, "profile_name");
    e.wa_timestamp = p.wa_timestamp;
    std::string type = JsonStr(m, "type");
    if (type == "text") {
      e.kind = Event::Kind::kText;
      e.text = JsonStr(JsonMember(m, "text"), "body");
    } else if (type == "image") {
      const Value& img = JsonMember(m, "image");
      e.kind = Event::Kind::kImage;
      e.media_id = JsonStr(img, "id");
      e.mime_type = JsonStr(img, "mime_type");
      e.sha256 = JsonStr(img, "sha256");
      e.text = JsonStr(img, "caption");
      if (e.media_id.empty()) e.kind = Event::Kind::kOther;
    } else if (type == "interactive") {
      // A tapped reply button or list row: its id picks the choice, its title reads as text.
      const Value& in = JsonMember(m, "interactive");
      const Value& reply = JsonMember(in, JsonStr(in, "type") == "list_reply" ? "list_reply" : "button_reply");
      e.kind = Event::Kind::kButton;
      e.button_id = JsonStr(reply, "id");
      e.text = JsonStr(reply, "title");
    } else if (type == "button") {
      // A template's quick-reply button.
      const Value& b = JsonMember(m, "button");
      e.kind = Event::Kind::kButton;
      e.button_id = JsonStr(b, "payload");
      e.text = JsonStr(b, "text");
    }
  } else {
    // Internal events name their own dedupe key: "<schema>:<dedupe key of the command>".
    p.kind = p.schema;
    if (p.dedupe_key.empty()) p.dedupe_key = p.schema + ":" + JsonStr(doc, "dedupe_key");
    e.kind = Event::Kind::kRecorded;  // never mistaken for something the user said
    e.media_id = JsonStr(doc, "media_id");
    e.stored_name = JsonStr(doc, "stored_name");
    e.reason = JsonStr(doc, "reason");
    if (p.schema == "media.stored") e.kind = Event::Kind::kMediaStored;
    if (p.schema == "media.failed") e.kind = Event::Kind::kMediaFailed;
    if (p.schema == "outbound.sent") e.kind = Event::Kind::kSendSucceeded;
    if (p.schema == "outbound.failed") e.kind = Event::Kind::kSendFailed;
  }
}

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void Key(Writer& w, const std::string& k) { w.Key(k.c_str(), static_cast<rapidjson::SizeType>(k.size())); }

// The members every command and event carries.
void Envelope(Writer& w, const char* schema, const Parsed& p, const std::string& dedupe) {
  w.Key("schema"); w.String(schema);
  w.Key("version"); w.Int(1);
  w.Key("correlation_id"); w.String(p.correlation_id);
  w.Key("dedupe_key"); w.String(dedupe);
  w.Key("conversation_key"); w.String(p.conversation_key);
  w.Key("phone_number_id"); w.String(p.phone_number_id);
}

std::string SendBody(const Parsed& p, const std::string& dedupe, const Effect& e, int64_t last_inbound_at) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  Envelope(w, "outbound.send", p, dedupe);
  w.Key("to"); w.String(p.wa_id);
  if (last_inbound_at > 0) { w.Key("last_inbound_at"); w.Int64(last_inbound_at); }
  w.Key("message");
  w.StartObject();
  if (e.kind == Effect::Kind::kSendButtons) {
    // Graph's reply-buttons message: at most 3 buttons, titles of at most 20 characters.
    w.Key("type"); w.String("interactive");
    w.Key("interactive");
    w.StartObject();
    w.Key("type"); w.String("button");
    w.Key("body"); w.StartObject(); w.Key("text"); w.String(e.text); w.EndObject();
    w.Key("action");
    w.StartObject();
    w.Key("buttons");
    w.StartArray();
    for (const auto& [id, title] : e.buttons) {
      w.StartObject();
      w.Key("type"); w.String("reply");
      w.Key("reply"); w.StartObject(); w.Key("id"); w.String(id); w.Key("title"); w.String(title); w.EndObject();
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    w.EndObject();
  } else {
    w.Key("type"); w.String("text");
    w.Key("text"); w.StartObject(); w.Key("body"); w.String(e.text); w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  return b.GetString();
}

std::string FetchBody(const Parsed& p, const std::string& dedupe, const Effect& e) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  Envelope(w, "media.fetch", p, dedupe);
  w.Key("media_id"); w.String(e.media_id);
  if (!e.mime_type.empty()) { w.Key("mime_type"); w.String(e.mime_type); }
  if (!e.sha256.empty()) { w.Key("sha256"); w.String(e.sha256); }
  w.EndObject();
  return b.GetString();
}

std::string CompletedBody(const Parsed& p, const std::string& dedupe, const Effect& e) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  Envelope(w, "flow.completed", p, dedupe);
  w.Key("wa_id"); w.String(p.wa_id);
  w.Key("flow"); w.String(e.flow);
  w.Key("outcome"); w.String(e.outcome);
  w.Key("fields");
  w.StartObject();
  for (const auto& [k, v] : e.fields) { Key(w, k); w.String(v); }
  w.EndObject();
  w.Key("photos");
  w.StartObject();
  for (const auto& [field, list] : e.photos) {
    Key(w, field);
    w.StartArray();
    for (const auto& photo : list) {
      w.StartObject();
      w.Key("media_id"); w.String(photo.media_id);
      w.Key("sent_at"); w.Int64(photo.at);
      if (!photo.stored_name.empty()) { w.Key("stored_name"); w.String(photo.stored_name); }
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
  w.Key("stored_name"); w.String(e.stored_name);
  w.Key("destination"); w.String(e.destination);
  w.EndObject();
  return b.GetString();
}

struct OutboxRow {
  const char* exchange;
  const char* routing_key;
  std::string body;
};

OutboxRow ForEffect(const Parsed& p, const std::string& key, const Effect& e, int64_t last_inbound_at) {
  switch (e.kind) {
    case Effect::Kind::kSendText:
    case Effect::Kind::kSendButtons:
      return {exchanges::kCommands, queues::kOutboundSend, SendBody(p, key, e, last_inbound_at)};
    case Effect::Kind::kFetchMedia:
      return {exchanges::kCommands, queues::kMediaFetch, FetchBody(p, key, e)};
    case Effect::Kind::kFlowCompleted:
      return {exchanges::kEvents, routing::kFlowCompleted, CompletedBody(p, key, e)};
    case Effect::Kind::kUploadMedia:
      return {exchanges::kCommands, queues::kMediaUpload, UploadBody(p, key, e)};
  }
  return {exchanges::kCommands, queues::kOutboundSend, SendBody(p, key, e, last_inbound_at)};
}

int64_t SystemNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

Processor::Processor(PgConnection& db, const SchemaRegistry& schemas, const Engine& engine,
                     std::function<void()> on_commit, std::function<int64_t()> clock)
    : db_(db), schemas_(schemas), engine_(engine), on_commit_(std::move(on_commit)),
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
  ParseDelivery(doc, d, *p);
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
  Status s = db_.Begin();
  if (s.ok()) s = ApplyInTransaction(p, &a);
  if (s.ok()) s = db_.Commit();
  M().tx.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  if (!s.ok()) {
    db_.Rollback();
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
  Status s = db_.Begin();
  for (size_t k = 0; s.ok() && k < todo.size(); ++k) s = ApplyInTransaction(todo[k].first, &applied[k]);
  if (s.ok()) s = db_.Commit();
  M().tx.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  if (!s.ok()) {
    db_.Rollback();
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
  if (a.duplicate) {
    M().duplicate.Inc();
    LOG(INFO) << a.ctx << "event=duplicate_ignored";
    return;
  }
  M().applied.Inc();
  LOG(INFO) << a.ctx << "event=transition from=" << a.from << " to=" << a.to << " note=" << a.note
            << " effects=" << a.effects;
}

Status Processor::ApplyInTransaction(const Parsed& p, Applied* a) {
  a->ctx = LogCtx{p.queue, p.correlation_id, p.conversation_key, p.dedupe_key};
  auto dedupe = db_.Exec(kInsertDedupe, {p.dedupe_key, p.conversation_key, p.kind,
                                         std::to_string(p.wa_timestamp), p.correlation_id});
  if (!dedupe.ok()) return dedupe.status();
  if (dedupe->empty()) {
    a->duplicate = true;
    return Status::Ok();
  }
  // The conversation's row lock; a new conversation's row is created first (one round trip
  // fewer for the common case of a conversation that exists).
  auto locked = db_.Exec(kLockConversation, {p.conversation_key});
  if (!locked.ok()) return locked.status();
  if (locked->empty()) {
    Status created = db_.Exec(kEnsureConversation, {p.conversation_key, p.phone_number_id, p.wa_id}).status();
    if (!created.ok()) return created;
    locked = db_.Exec(kLockConversation, {p.conversation_key});
    if (!locked.ok()) return locked.status();
    if (locked->empty()) return Status(Code::kInternal, "conversation row vanished");
  }
  Status s;
  ConversationState before = DecodeState(locked->get(0, 0));
  Transition t = engine_.Advance(before, p.event, clock_());
  s = db_.Exec(kSaveConversation, {p.conversation_key, EncodeState(t.state),
                                   t.state.flow.empty() ? std::nullopt : std::optional<std::string>(t.state.flow)})
          .status();
  if (!s.ok()) return s;
  a->from = StepName(before);
  a->to = StepName(t.state);
  a->note = t.note;
  a->effects = t.effects.size();
  s = db_.Exec(kInsertTransition, {p.conversation_key, a->from, a->to, p.dedupe_key, p.correlation_id, t.note,
                                   std::to_string(p.wa_timestamp)})
          .status();
  if (!s.ok()) return s;
  for (const auto& e : t.effects) {
    std::string key = p.conversation_key + ":" + p.dedupe_key + ":" + e.step;
    OutboxRow row = ForEffect(p, key, e, t.state.last_inbound_at);
    s = db_.Exec(kInsertOutbox, {std::string(row.exchange), std::string(row.routing_key), key, p.correlation_id,
                                 p.conversation_key, row.body})
            .status();
    if (!s.ok()) return s;
    a->wrote_outbox = true;
  }
  return Status::Ok();
}

}  // namespace convoy::conversation
