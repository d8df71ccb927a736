#pragma once
// Meta's thread control, conversation's side (issue 29; docs/meta-thread-routing.md). On a number
// whose registry entry names a partner app (numbers.partner_app_id), an agent moves the thread:
//   POST /v1/conversations/{id}/pass  {"metadata", "to": "partner" | "ai_agent" | "idle"}
//        pass to the escalation partner, pass to Meta's business agent, or release it
//   POST /v1/conversations/{id}/take  {"metadata"}  on a thread another app owns: take it back
// The API writes, under the conversation's row lock, an outbound.thread_control command (to the
// outbox, on outbound.send so that it keeps its place among the conversation's sends) and marks it
// pending (conversations.thread_control). Outbound calls Graph once and answers with
// outbound.thread_controlled; the processor applies that under the same lock:
//   pass / release  done or unknown -> owner elsewhere (unknown: Meta may have moved it, and convoy
//                   never speaks on a thread it may not own); failed -> unchanged
//   take            done -> human, the agent who asked; failed or unknown -> still elsewhere
// While a pass or release is pending the bot says nothing and agents' messages are refused (409):
// once it is done they would go out on a thread convoy gave away.
#include <string>

#include "convoy/pg.h"
#include "convoy/status.h"
#include "store/transcript.h"

namespace convoy::conversation {

struct ThreadControlCommand {
  std::string action;       // pass | release | take
  std::string target_role;  // "" or ai_agent (a pass to Meta's business agent)
  std::string metadata;     // for the new owner's handover webhook (at most 2,000 characters)
  std::string agent;        // the token name of the agent who asked
  std::string conversation_key, phone_number_id, wa_id, user_id, partner_app_id;
};

// The outbox command and the pending mark, inside the caller's transaction (which holds the
// conversation's row lock). The command's dedupe key.
Result<std::string> QueueThreadControl(PgConnection& db, const ThreadControlCommand& c);

// The action of a pending command's dedupe key ("" when none is pending).
std::string PendingThreadAction(const std::string& pending_key);

// What outbound answered (outbound.thread_controlled).
struct ThreadControlOutcome {
  std::string dedupe_key, action, outcome, agent, reason;  // outcome: done | failed | unknown
  int code = 0;
};

// Applied under the conversation's row lock: when `pending_key` is this command, the owner is set
// as the header says (*own follows) and the mark cleared; another outcome (one no longer pending)
// changes nothing. The audit note for the transition.
Result<std::string> ApplyThreadControlOutcome(PgConnection& db, const std::string& conversation_key,
                                              const std::string& pending_key,
                                              const ThreadControlOutcome& o,
                                              const std::string& handoff_sink, Ownership* own);

}  // namespace convoy::conversation
