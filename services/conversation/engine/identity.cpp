// One person, one conversation: the identities a message carries (phone, BSUID) resolved to their
// conversation under advisory locks, new ones linked, identity changes applied and audited.
#include <glog/logging.h>

#include <algorithm>
#include <map>

#include "convoy/log.h"
#include "engine/processor_internal.h"

namespace convoy::conversation {

using processor_internal::kEnsureConversation;
using processor_internal::kFindIdentities;

namespace {

// Identities: serialised per identity (a transaction-level advisory lock), then looked up.
constexpr const char* kLockIdentity = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";
constexpr const char* kLinkIdentity =
    "INSERT INTO identities (phone_number_id, identity, conversation_key) VALUES ($1, $2, $3) "
    "ON CONFLICT (phone_number_id, identity) DO UPDATE SET conversation_key = "
    "EXCLUDED.conversation_key, "
    "linked_at = now() WHERE identities.conversation_key <> EXCLUDED.conversation_key";
constexpr const char* kConversationExists =
    "SELECT 1 FROM conversations WHERE conversation_key = $1";
constexpr const char* kUnlinkIdentity =
    "DELETE FROM identities WHERE phone_number_id = $1 AND identity = $2 AND conversation_key = $3";
constexpr const char* kAuditIdentity =
    "INSERT INTO identity_changes (conversation_key, change, identity, previous, "
    "trigger_dedupe_key, correlation_id) "
    "VALUES ($1, $2, $3, NULLIF($4, ''), $5, $6)";

bool Contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

Status Processor::ResolveIdentity(Parsed* p, Applied* a) {
  // What this message knows: its phone (or, after a number change, the old one), its BSUID
  // (after an ID change, the previous one); and what it announces.
  std::vector<std::string> ids;
  for (const std::string* id :
       {&p->wa_id, &p->user_id, &p->previous_user_id, &p->new_wa_id, &p->new_user_id}) {
    if (!id->empty() && !Contains(ids, *id)) ids.push_back(*id);
  }
  std::vector<std::string> sorted = ids;
  std::sort(sorted.begin(), sorted.end());  // one lock order everywhere
  for (const auto& id : sorted) {
    Status s = db_.Exec(kLockIdentity, {p->phone_number_id + ":" + id}).status();
    if (!s.ok()) return s;
  }
  std::string array = "{";
  for (size_t i = 0; i < ids.size(); ++i) array += (i ? ",\"" : "\"") + ids[i] + "\"";
  array += "}";
  auto found = db_.Exec(kFindIdentities, {p->phone_number_id, array});
  if (!found.ok()) return found.status();
  std::map<std::string, std::string> owner;
  for (size_t i = 0; i < found->size(); ++i) owner[found->get(i, 0)] = found->get(i, 1);
  auto conv = [&](const std::string& id) -> std::string {
    auto it = id.empty() ? owner.end() : owner.find(id);
    return it == owner.end() ? "" : it->second;
  };
  // The person's conversation: the phone's, else the BSUID's (or the previous BSUID's), else a
  // new one under ingress's key.
  std::string key = conv(p->wa_id);
  if (key.empty()) key = conv(p->user_id);
  if (key.empty()) key = conv(p->previous_user_id);
  if (key.empty()) key = conv(p->new_wa_id);
  if (key.empty()) key = conv(p->new_user_id);
  if (key.empty()) {
    // A new person. Ingress's key names their identity, but a conversation may hold that key
    // already: one whose identity moved (a number given up, a BSUID replaced or merged). Never
    // share it: the new person gets a key of their own.
    key = p->conversation_key;
    auto taken = db_.Exec(kConversationExists, {key});
    if (!taken.ok()) return taken.status();
    if (!taken->empty()) key += "#" + p->dedupe_key;
  }
  p->conversation_key = key;
  a->ctx = LogCtx{p->queue, p->correlation_id, key, p->dedupe_key};
  Status s;
  bool ensured = false;
  auto audit = [&](const char* change, const std::string& id, const std::string& previous) {
    LOG(INFO) << a->ctx << "event=identity_" << change << " identity=" << Personal(id)
              << " previous=" << Personal(previous);
    return db_.Exec(kAuditIdentity, {key, change, id, previous, p->dedupe_key, p->correlation_id})
        .status();
  };
  // Current identities point here. One the message links that belonged to another conversation
  // (the person wrote by phone and by BSUID alone before a message carried both) joins this one.
  const bool number_changed = p->system_type == "user_changed_number" && !p->new_wa_id.empty();
  const bool id_changed = p->system_type == "user_changed_user_id" && !p->new_user_id.empty();
  std::vector<std::string> current;
  for (const std::string* id : {&p->wa_id, &p->user_id, &p->new_wa_id, &p->new_user_id}) {
    if (id->empty() || Contains(current, *id)) continue;
    if (number_changed && *id == p->wa_id) continue;  // the old number: released below
    if (id_changed && *id == p->user_id && p->user_id != p->new_user_id) continue;
    current.push_back(*id);
  }
  for (const auto& id : current) {
    std::string before = conv(id);
    if (before == key) continue;
    if (!ensured) {  // the row must exist before an identity points at it
      s = db_.Exec(kEnsureConversation, {key, p->phone_number_id, p->wa_id, p->user_id}).status();
      if (!s.ok()) return s;
      ensured = true;
    }
    s = db_.Exec(kLinkIdentity, {p->phone_number_id, id, key}).status();
    if (!s.ok()) return s;
    s = audit(before.empty() ? "linked" : "merged", id, before);
    if (!s.ok()) return s;
  }
  // Identity changes move the identity, never the conversation: the old number may be given to
  // someone else, and must not reach this person's conversation.
  if (number_changed && !p->wa_id.empty() && p->wa_id != p->new_wa_id) {
    s = db_.Exec(kUnlinkIdentity, {p->phone_number_id, p->wa_id, key}).status();
    if (s.ok()) s = audit("number_changed", p->new_wa_id, p->wa_id);
    if (!s.ok()) return s;
    p->wa_id = p->new_wa_id;
  }
  if (id_changed && !p->previous_user_id.empty() && p->previous_user_id != p->new_user_id) {
    s = db_.Exec(kUnlinkIdentity, {p->phone_number_id, p->previous_user_id, key}).status();
    if (s.ok()) s = audit("user_id_changed", p->new_user_id, p->previous_user_id);
    if (!s.ok()) return s;
    p->user_id = p->new_user_id;
  }
  return Status::Ok();
}

}  // namespace convoy::conversation
