#pragma once
// POST /hooks/chatwoot/{sink} on outbound's port: a Chatwoot API-channel inbox's webhook. An
// agent's reply there (message_created, outgoing, not private) goes out to the customer through
// conversation's POST /v1/conversations/{id}/messages with the sink's agent token and
// Idempotency-Key "chatwoot:<sink>:<message id>": once per Chatwoot message however often the
// webhook comes, with every guarantee of an agent's message. Everything else Chatwoot sends (the
// customer's messages convoy mirrored, private notes, other events) is answered 200 and counted.
//
// Nothing is read or changed before the signature is verified (X-Chatwoot-Signature with one of
// the sink's webhook_secrets, X-Chatwoot-Timestamp within 5 minutes): an unknown sink is 404, a
// missing or wrong signature 401. A reply convoy cannot send is answered 4xx with the reason, and
// Chatwoot marks the agent's message failed: 422 no text or window_closed, 409 owned_elsewhere, 404
// a conversation convoy does not mirror. docs/chatwoot.md has the Chatwoot facts and sources.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "convoy/http.h"
#include "sinks.h"

namespace convoy::outbound::chatwoot {

struct HookSettings {
  std::string pg_dsn;
  std::string conversation_api_url;  // convoy-conversation's address (--conversation_api_url)
  // Chatwoot gives a webhook 5 s: the call to conversation must end before.
  std::chrono::milliseconds timeout{4000};
  std::function<int64_t()> now;  // seconds since the epoch; system clock if empty
};

constexpr const char* kHookPrefix = "/hooks/chatwoot/";

HttpResponse HandleHook(const HttpRequest& request, const SinkSet& sinks,
                        const HookSettings& settings);

}  // namespace convoy::outbound::chatwoot
