#pragma once
// The conversations on convoy-conversation's HTTP port, behind the API's bearer check (HandleApi
// dispatches here; roles in ApiRoutes()). A conversation is named by its id (a uuid), never by
// its key, which holds the customer's phone number. A tenant's token sees its own alone.
//   GET  /v1/conversations?owner=&number=&status=open|closed&updated_after=&q=&cursor=&limit=
//        newest first; `next_cursor` pages on (stable under updates: updated_at, then id); q: 3+
//        characters found in the customer's phone number or BSUID, or in anything said (not for a
//        viewer: 403, what it would search is masked to it)
//   GET  /v1/conversations/{id}?messages=N    state, owner, window, collected fields, transcript;
//   to
//                                             a caller who sees personal data, each photo the
//                                             number's media stored carries "photo" (its stored
//                                             name) and, with photo links set, "photo_url": a
//                                             short-lived signed link (checklists_api.h PhotoLink);
//                                             "templates": the number's approved templates
//                                             [{"name", "language", "category"}], what a reply
//                                             outside the window may be
//   POST /v1/conversations/{id}/handoff       {"reason", "note"}: into human hands; the sink is
//   told
//                                             once (conversation.handoff_requested)
//   POST /v1/conversations/{id}/take          the calling agent owns it (no message to the sink);
//   on a
//                                             thread another app owns, {"metadata"}: taken back
//                                             through Meta's thread_control first (202), when the
//                                             number names a partner app (else 409 no_partner_app)
//   POST /v1/conversations/{id}/pass          {"metadata", "to": "partner" | "ai_agent" | "idle"}:
//   the
//                                             thread to the partner app, Meta's business agent, or
//                                             released (thread_control.h); 202, the owner follows
//   POST /v1/conversations/{id}/release       {"step"}: back to the bot, optionally at a step of
//                                             its flow (answered from the next customer message)
//   POST /v1/conversations/{id}/messages      {"text"} or {"template": {"name", "language",
//                                             "parameters"}}; Idempotency-Key honoured; outside the
//                                             24-hour window a text is 422 window_closed, naming
//                                             the number's approved templates
// Every change happens under the conversation's row lock, like the processor's, so a bot reply
// queued before a takeover is cancelled by outbound, never sent.
#include <functional>
#include <optional>
#include <string>

#include "api/audit.h"
#include "api/checklists_api.h"
#include "convoy/http.h"
#include "convoy/tokens.h"

namespace convoy::conversation {

struct ConversationsApiSettings {
  std::string pg_dsn;
  std::string handoff_sink = "conversations";  // where a handoff by API or keyword goes
  // Whether `flow` has a step `step` (a release to a step); empty: releases name no step.
  std::function<bool(const std::string& flow, const std::string& step)> has_step;
  std::function<void()> on_commit;  // wakes the outbox relay
  PhotoLinkSettings photo_links{};  // transcript photos as signed media links; unset: named only
};

// A uuid's 8-4-4-4-12 hex digits (a conversation's id); anything else never reaches a ::uuid cast.
bool ValidUuid(const std::string& id);
// A query parameter that is there and not empty.
std::optional<std::string> Query(const HttpRequest& r, const char* key);
// 1 to `max` decimal digits.
bool Digits(const std::string& s, size_t max);

// The answer for a /v1/conversations request; nullopt for any other path. A write's `audit` entry
// is recorded in the transaction of the change it describes when that commits (audit.h).
std::optional<HttpResponse> HandleConversationsApi(const HttpRequest& request,
                                                   const std::string& route, const Caller& caller,
                                                   const ConversationsApiSettings& settings,
                                                   AuditEntry* audit);

}  // namespace convoy::conversation
