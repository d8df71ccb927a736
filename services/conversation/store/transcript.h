#pragma once
// What was said in a conversation, who answers it, and what its business hears of it (issue 29).
//
// The transcript (conversation_messages): every message in and out, written in the transaction
// that processed or queued it, once per dedupe key. An outgoing row's status is outbound's, read
// through outbound_messages by the send's dedupe key.
//
// The owner (conversations.owner): bot | human | elsewhere, changed only under the conversation's
// row lock. While human, each customer message goes to the conversation's sink as
// `conversation.message`; a handoff tells the sink once with `conversation.handoff_requested`.
// Both travel as outbound.deliver commands (a signed POST, exactly once per sink), and outbound
// releases a conversation's deliveries in the order they were written.
#include <cstdint>
#include <map>
#include <string>

#include "convoy/pg.h"
#include "convoy/status.h"

namespace convoy::conversation {

struct TranscriptMessage {
  std::string direction = "in";     // in | out
  std::string author = "customer";  // customer | bot | business_app | agent:<name>
  std::string kind;                 // Meta's type (text, image, button, ...) or template
  std::string body;                 // text, caption, button title, template name
  std::string media_id;
  std::string channel = "messages";  // messages | standby | echo | history | api
  std::string dedupe_key;            // the update's, or the send's
  int64_t wa_timestamp = 0;
};

// Once per dedupe key: a redelivery writes nothing.
Status RecordMessage(PgConnection& db, const std::string& conversation_key,
                     const TranscriptMessage& m);

// The conversation's last `limit` messages, oldest first, as a JSON array: seq, direction, author,
// kind, body, media_id, channel, at (RFC 3339) and, going out, outbound's status, wamid and error.
Result<std::string> TranscriptJson(PgConnection& db, const std::string& conversation_key,
                                   int limit);

constexpr const char* kOwnerBot = "bot";
constexpr const char* kOwnerHuman = "human";
constexpr const char* kOwnerElsewhere = "elsewhere";

// The conversation's owner as its row says (call with the row locked).
struct Ownership {
  std::string id;  // the public id (uuid)
  std::string owner = kOwnerBot, agent, sink;
};
// Sets the owner (and the agent, and where human-owned messages go when `sink` is not empty).
// Inside the transaction that holds the conversation's row lock. owner_since is when it changed:
// for a change from outside (the API, after taking the lock) the clock's time, later than every
// send written before it, which outbound then cancels; for a change by the processor the
// transaction's time, so that what the bot says in the same transition (a handoff's last words)
// still goes.
Status SetOwner(PgConnection& db, const std::string& conversation_key, const std::string& owner,
                const std::string& agent, const std::string& sink, bool from_outside);

// Conversations in human hands with no agent message (and no change of owner) for idle_seconds
// go back to the bot, each with an audit row: how many. Messages that came meanwhile stay
// unanswered by the bot (they were the person's).
Result<int> ReleaseIdleHumans(PgConnection& db, int64_t idle_seconds);

// One conversation.* event for the business, to every sink the number maps `sink` to.
struct ConversationDelivery {
  std::string type;        // conversation.handoff_requested | conversation.message
  std::string dedupe_key;  // the result id: the webhook-id at the sink
  std::string sink, conversation_key, conversation_id, phone_number_id, correlation_id;
  std::string wa_id, user_id;  // the customer
  std::string flow, outcome;   // what asked for it: a flow step, "keyword", "api"
  int64_t at = 0;
  std::map<std::string, std::string> fields;  // what the conversation collected
  // Members of data.conversation, verbatim JSON values: owner, reason, note, messages, message.
  std::map<std::string, std::string> conversation_json;
};
// Written to the outbox inside the caller's transaction (one row per sink, "<key>>sink" for the
// second and later sinks, as results).
Status QueueConversationDelivery(PgConnection& db, const ConversationDelivery& d);

// Where an agent's message stands at Meta (outbound.status_changed).
struct MessageStatus {
  std::string send_key;  // the send's dedupe key: the transcript row's
  std::string status;    // sent | delivered | read | failed
  std::string wamid, reason;
  int code = 0;
  int64_t at = 0;
};
// Tells the business (conversation.message_status to `d`'s sink, d's conversation members kept)
// once per message and status and never a status before the last one told (sent < delivered <
// read, failed), inside the caller's transaction (the conversation's row lock). Whether it did.
Result<bool> TellMessageStatus(PgConnection& db, ConversationDelivery d, const MessageStatus& s);

// A command on convoy.commands/<queue> for the outbox relay, inside the caller's transaction; a
// dedupe key written before writes nothing.
Status QueueCommand(PgConnection& db, const std::string& queue, const std::string& dedupe_key,
                    const std::string& correlation_id, const std::string& conversation_key,
                    const std::string& body);

// A JSON string literal (quotes included).
std::string JsonQuote(const std::string& s);

}  // namespace convoy::conversation
