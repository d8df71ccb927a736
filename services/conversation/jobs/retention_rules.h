#pragma once
// What conversation prunes (convoy/retention.h): dedupe keys after --dedupe_retention_days (at
// least 8: Meta redelivers for up to 7), published outbox rows after --outbox_retention_hours
// (commands only once their consumer settled them: the ledger needs the rest), transitions and
// identity changes, extractor context, transcripts (conversation_messages) and the records of
// updates for unknown numbers and of account updates after --retention_days. Conversations
// themselves are kept.
#include <vector>

#include "convoy/retention.h"

namespace convoy::conversation {

inline std::vector<PruneRule> RetentionRules(int dedupe_days, int outbox_hours, int history_days) {
  const int64_t day = 86400;
  return {
      {"inbound_messages",
       "processed_at < now() - $1::interval",
       dedupe_days * day,
       "dedupe_key",
       {}},
      {"outbox",
       "published_at < now() - $1::interval AND (exchange <> 'convoy.commands' OR settled_at IS "
       "NOT NULL)",
       outbox_hours * int64_t{3600},
       "id",
       {}},
      {"transitions", "at < now() - $1::interval", history_days * day, "id", {}},
      {"identity_changes", "at < now() - $1::interval", history_days * day, "id", {}},
      {"conversation_context", "at < now() - $1::interval", history_days * day, "seq", {}},
      {"conversation_messages", "at < now() - $1::interval", history_days * day, "seq", {}},
      {"unknown_number_updates",
       "received_at < now() - $1::interval",
       history_days * day,
       "dedupe_key_sha256",
       {}},
      {"account_updates",
       "received_at < now() - $1::interval",
       history_days * day,
       "dedupe_key",
       {}},
  };
}

}  // namespace convoy::conversation
