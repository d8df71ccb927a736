#pragma once
// The pure part of ingress: signature verification and splitting one webhook POST into one
// broker message per WhatsApp message, status, value-level error, account update, template change,
// preference, thread handover and (Conversation Routing, coexistence) standby, echoed and
// backfilled message, across every entry[] x changes[]. No I/O; fuzzed and unit-tested on Meta's
// fixtures (docs/meta-thread-routing.md for the 2026 fields).
#include <string>
#include <string_view>
#include <vector>

#include "convoy/status.h"

namespace convoy::ingress {

// X-Hub-Signature-256: "sha256=" + lowercase hex HMAC-SHA256(app_secret, raw body), compared
// in constant time. Any malformed header is simply "not verified".
bool VerifySignature(std::string_view raw_body, std::string_view header,
                     std::string_view app_secret);
std::string SignBody(std::string_view raw_body, std::string_view app_secret);  // "sha256=..."
bool ConstantTimeEquals(std::string_view a, std::string_view b);

struct Update {
  // kStandby, kEcho, kHistory: inbound.message from the `standby`, `smb_message_echoes` and
  // `history` fields (its `channel`); kHandover: inbound.handover (messaging_handovers). All four
  // go to conversation with the routing key "message", hashed to the conversation's partition.
  enum class Kind {
    kMessage,
    kStatus,
    kError,
    kPreference,
    kAccount,
    kTemplate,
    kStandby,
    kEcho,
    kHistory,
    kHandover
  };
  Kind kind;
  // "message" (and the four above), "status", "error", "preference", "account", "template" on
  // convoy.inbound
  std::string routing_key;
  std::string message_id;
  // wamid; "standby:<wamid>", "echo:<wamid>", "history:<wamid>" (the same wamid may also come on
  // `messages` to another of convoy's apps: never taken for that one); "wamid:status";
  // "error:<pnid>:<code>:<hash>"; "account:<entry id>:<event>:<time>"; "template:<waba>:<hash>";
  // "handover:<pnid>:<digest of the user>:<action>:<timestamp>"
  std::string dedupe_key;
  std::string conversation_key;  // "<phone_number_id>:<wa_id>", empty where none applies
  std::string body;              // JSON, validates against inbound.<kind> v1
};
const char* KindName(Update::Kind kind);

struct SplitResult {
  std::vector<Update> updates;
  bool ignored_object = false;  // object is not whatsapp_business_account
  int ignored_changes = 0;      // changes of a field convoy does not take (README: which it takes)
  int unknown_shapes = 0;       // items or values we could not interpret
  int history_dropped = 0;      // backfilled messages past SplitLimits::max_history_messages
};

struct SplitLimits {
  // Backfilled messages published per `history` change (Meta: "a single webhook could potentially
  // describe thousands of messages"); the rest are counted in history_dropped, never published, so
  // one backfill cannot hold a conversation partition's live messages behind it for long.
  int max_history_messages = 1000;
};

// kInvalidArgument with a one-line reason when the body is not JSON or not an object.
Result<SplitResult> SplitWebhook(std::string_view raw_body, const std::string& correlation_id,
                                 const std::string& received_at, const SplitLimits& limits = {});

// An envelope SplitWebhook wrote, with `app` (the Meta app whose path the webhook came to) as its
// first member. Added to what is already serialized: nothing is parsed again.
std::string WithApp(std::string_view envelope, std::string_view app);

}  // namespace convoy::ingress
