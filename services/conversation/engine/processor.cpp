// The transaction: one delivery (or a batch) applied under its conversation's lock, and reported
// after commit. The other roles are in their own files (processor_internal.h lists them).
#include "engine/processor.h"

#include <glog/logging.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>
#include <unordered_map>

#include "convoy/crypto.h"
#include "convoy/log.h"
#include "convoy/metrics.h"
#include "convoy/topology.h"
#include "engine/engine.h"
#include "engine/processor_internal.h"
#include "engine/run_timeouts.h"
#include "engine/state_codec.h"
#include "store/numbers.h"
#include "store/thread_control.h"
#include "store/transcript.h"

namespace convoy::conversation {

using processor_internal::AnswersJson;
using processor_internal::DeliverBody;
using processor_internal::ExtractBody;
using processor_internal::FetchBody;
using processor_internal::ForEffect;
using processor_internal::kEnsureConversation;
using processor_internal::M;
using processor_internal::OutboxRow;
using processor_internal::Parsed;

namespace processor_internal {

Metrics& M() {
  static Metrics* m = new Metrics();
  return *m;
}
}  // namespace processor_internal

namespace {

// Named, parameterized SQL.
constexpr const char* kInsertDedupe =
    "INSERT INTO inbound_messages (dedupe_key, conversation_key, kind, wa_timestamp, "
    "correlation_id) "
    "VALUES ($1, $2, $3, $4::bigint, $5) ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key";

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
