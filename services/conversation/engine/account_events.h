#pragma once
// Meta's news about a WhatsApp business account (account_update webhooks, inbound.account from
// ingress): an event that stops the account's sending pauses its registered numbers, with the
// reason, so that outbound holds their sends (nothing is dropped) until a person resumes them
// (PUT /v1/numbers/{id} "status": "active"). Every event is recorded once in account_updates and
// counted; one for a WABA the registry does not know changes nothing.
#include <rapidjson/fwd.h>

#include <string>

#include "convoy/amqp.h"
#include "convoy/pg.h"

namespace convoy::conversation {

// What an event means for sending. Pure: a function of Meta's `account_update` value.
//   paused        ACCOUNT_OFFBOARDED, PARTNER_REMOVED, ACCOUNT_DELETED, DISABLED_UPDATE with ban
//                 state DISABLE, ACCOUNT_RESTRICTION on business- or customer-initiated messaging
//   not_pausing   one of those whose details leave sending as it was (a restriction on adding
//                 numbers, a ban only scheduled), ACCOUNT_VIOLATION (a notice; Meta's enforcement
//                 comes as a restriction or a disable), ACCOUNT_RECONNECTED and REINSTATE (never a
//                 resume: a person decides)
//   informational everything else (partner added, pricing tiers, business location, ...)
struct AccountDecision {
  std::string action;  // paused, not_pausing, informational
  std::string reason;  // "account_update <EVENT>[: <detail>]", the numbers' paused_reason
};
AccountDecision DecideAccountUpdate(const rapidjson::Value& account_update);

// Applies one inbound.account (already schema-checked, `doc` its body) in a transaction of its
// own: ack when applied or a redelivery, a retry when the database fails.
Disposition ApplyAccountUpdate(PgConnection& db, const rapidjson::Value& doc, const Delivery& d);

}  // namespace convoy::conversation
