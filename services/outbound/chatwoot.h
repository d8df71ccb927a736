#pragma once
// Chatwoot sinks (kind "chatwoot"): a conversation a person owns, mirrored into a Chatwoot
// API-channel inbox through its Application API. The Chatwoot facts used, with their sources, are
// in docs/chatwoot.md.
//
// A delivery that carries a conversation finds or makes the Chatwoot contact (identifier
// "convoy:<conversation id>", never the phone number unless the sink shares it) and its
// conversation, recorded in chatwoot_conversations (migration 0036); then a handoff posts the
// transcript as one private note and a conversation.message posts the customer's message as an
// incoming one. Every message carries source_id "convoy:<hash of the result id>", so an attempt
// whose answer never came is looked up before it is posted again.
#include <cstdint>
#include <string>
#include <vector>

#include "convoy/pg.h"
#include "sinks.h"

namespace convoy::outbound::chatwoot {

// What one delivery attempt came to; the deliverer records and schedules it like any sink's.
struct Attempt {
  enum class Kind { kDelivered, kRetry, kUncertain, kPermanent };
  Kind kind = Kind::kRetry;
  int status_code = 0;
  std::string response, error;
  std::string external_id;  // the Chatwoot message id
  int64_t retry_after_ms = 0;
};

// One attempt at an outbound.deliver command (its JSON). `reconcile`: the last attempt's outcome is
// unknown, so the message is looked up by its source_id before it is posted.
Attempt Deliver(PgConnection& db, const Sink& sink, const std::string& command_json,
                bool reconcile);

// What a command becomes in Chatwoot, exposed for tests.
// kNothing: delivered without a call (an agent's message status, say); kInvalid: parked.
enum class Mirror { kHandoff, kMessage, kNothing, kInvalid };
struct Plan {
  Mirror what = Mirror::kNothing;
  std::string conversation_id;             // convoy's public id
  std::string content;                     // the note or the message
  std::string contact_name, phone_number;  // phone_number only when the sink shares it
  std::string source_id;
  std::string why_nothing;  // kNothing, kInvalid: why
};
Plan PlanFor(const std::string& command_json, bool share_phone);

std::string ContactIdentifier(const std::string& conversation_id);  // "convoy:<id>"
std::string SourceId(const std::string& result_id);  // "convoy:<32 hex of its sha256>"

// The X-Chatwoot-Signature check: "sha256=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>" with one
// of `secrets`, the timestamp within `tolerance_seconds` of `now`. Constant time in the signature.
bool VerifySignature(const std::vector<std::string>& secrets, const std::string& timestamp,
                     const std::string& body, const std::string& signature, int64_t now,
                     int64_t tolerance_seconds = 300);
std::string Signature(const std::string& secret, const std::string& timestamp,
                      const std::string& body);

// The Chatwoot conversation recorded for convoy's conversation on `sink`, or 0.
Result<int64_t> ChatwootConversation(PgConnection& db, const std::string& sink,
                                     const std::string& conversation_id);
// Convoy's conversation id that `chatwoot_conversation` mirrors on `sink`, or "".
Result<std::string> ConvoyConversation(PgConnection& db, const std::string& sink,
                                       int64_t chatwoot_conversation);

}  // namespace convoy::outbound::chatwoot
