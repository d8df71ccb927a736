#pragma once
// What outbound prunes (convoy/retention.h) after --retention_days: settled sends of the message
// log, delivery attempts, settled thread-control calls, settled deliveries (delivered or parked)
// whose attempts are gone, and the Chatwoot conversations nothing was mirrored into for as long.
// Unsettled sends and deliveries, held ones included, stay however old.
#include <vector>

#include "convoy/retention.h"

namespace convoy::outbound {

inline std::vector<PruneRule> RetentionRules(int history_days) {
  const int64_t age = history_days * int64_t{86400};
  return {
      {"outbound_messages",
       "updated_at < now() - $1::interval AND status IN ('sent', 'delivered', 'read', 'failed')",
       age,
       "dedupe_key",
       {}},
      {"delivery_attempts", "started_at < now() - $1::interval", age, "id", {}},
      {"thread_controls",
       "updated_at < now() - $1::interval AND status IN ('done', 'failed', 'unknown')",
       age,
       "dedupe_key",
       {}},
      {"deliveries",
       "updated_at < now() - $1::interval AND status IN ('delivered', 'parked') AND NOT EXISTS "
       "(SELECT 1 FROM delivery_attempts a WHERE a.delivery_id = deliveries.id)",
       age,
       "id",
       {}},
      {"chatwoot_conversations", "updated_at < now() - $1::interval", age, "conversation_id", {}},
  };
}

}  // namespace convoy::outbound
