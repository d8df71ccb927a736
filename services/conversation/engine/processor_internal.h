#pragma once
// What the files of the conversation processor share, and nothing outside them includes. One file
// per role:
//   inbound_parse.cpp     a delivery read once: schema check, Parsed built, dead letters (Prepare)
//   identity.cpp          one person, one conversation: Processor::ResolveIdentity and its SQL
//   command_encoding.cpp  the bodies of the outbox rows: commands and events (ForEffect, *Body)
//   processor.cpp         the transaction: Handle, HandleBatch, ApplyInTransaction, Report
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "convoy/log.h"
#include "convoy/metrics.h"
#include "engine/engine.h"
#include "engine/processor.h"
#include "store/thread_control.h"
#include "store/transcript.h"

namespace convoy::conversation {

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

namespace processor_internal {

using Parsed = Processor::Parsed;

// Written by identity.cpp (a new identity's conversation) and processor.cpp (a new conversation).
constexpr const char* kEnsureConversation =
    "INSERT INTO conversations (conversation_key, phone_number_id, wa_id, user_id) VALUES ($1, $2, "
    "NULLIF($3, ''), "
    "NULLIF($4, '')) ON CONFLICT (conversation_key) DO NOTHING";

// The conversations an update's identities (phone, BSUIDs) are linked to, for its number.
// One primary-key probe per identity, whatever the statistics say: as `identity = ANY($2)` the
// plan prepared while the table was new (no statistics yet) looked the number up by its first
// key column and filtered every identity it has (222-280 rows per message measured in a
// benchmark's first minute, growing with the number's users).
// Its plan is tested (identity_plan_test.cpp).
constexpr const char* kFindIdentities =
    "SELECT k.id, i.conversation_key FROM unnest($2::text[]) AS k(id) CROSS JOIN LATERAL "
    "(SELECT conversation_key FROM identities WHERE phone_number_id = $1 AND identity = k.id "
    "LIMIT 1) i";

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
Metrics& M();

// command_encoding.cpp ---------------------------------------------------------------------------

// A checklist's answers as the assignment records them: {"q1": {"answer", "note", "photos": [...]},
// ...} ("note" only when the operator gave one).
std::string AnswersJson(const std::map<std::string, std::string>& fields,
                        const std::map<std::string, std::vector<Photo>>& photos);
std::string FetchBody(const Parsed& p, const std::string& dedupe, const Effect& e);
// A result for its sink: everything the business gets, with photos by stored name (outbound
// turns them into signed links).
// `conversation`: the members of data.conversation (a handoff's owner, reason and transcript), or
// none.
std::string DeliverBody(const Parsed& p, const std::string& dedupe, const Effect& e,
                        const std::string& conversation = "");
// The extractor's request: the fields still missing (with the values allowed), the conversation's
// recent messages (oldest first, the newest being the answer the rules found nothing in) and when
// outbound must have answered by.
std::string ExtractBody(const Parsed& p, const std::string& dedupe, const Effect& e,
                        const std::vector<std::pair<std::string, std::string>>& messages,
                        int64_t deadline_at);

struct OutboxRow {
  std::string exchange;
  std::string routing_key;
  std::string body;
};

OutboxRow ForEffect(const Parsed& p, const std::string& key, const Effect& e,
                    int64_t last_inbound_at, const std::string& mark_read);

}  // namespace processor_internal
}  // namespace convoy::conversation
