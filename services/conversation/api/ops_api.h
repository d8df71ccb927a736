#pragma once
// The console's Operations screen (issue 30) on convoy-conversation's API, behind the same gate
// (api.h ApiRoutes()). The parked-message logic is convoyctl's (services/convoyctl/ctl.h), over
// the broker's ops user (topology.h BrokerGrants "ops": reads the parking queues, puts a replayed
// message back on its work queue), never conversation's own user, which may do neither.
//   GET  /v1/ops/queues     each work queue's ready messages, consumers, partitions, parked
//                           messages and the oldest parked one's age; the Grafana and RabbitMQ
//                           management links (--grafana_url, --rabbitmq_management_url) when set
//   GET  /v1/ops/health     `convoyctl health`'s checks, thresholds and levels
//   GET  /v1/ops/parked?queue=&reason=&code=&q=&since=&until=&id=&limit=
//                           parked messages matching the filter (q: 3+ characters of the message's
//                           content, searched here; not for a viewer: 403, what it would search is
//                           masked to it); `count` is how many match, `messages` the first `limit`
//   POST /v1/ops/parked/replay  {"filter": {...as above}, "dry_run": true} -> {"count", "ids"};
//                           {"filter", "confirm": "<count>"} -> {"replayed"}: 409 count_changed
//                           when the filter matches another count now (nothing moved), so a filter
//                           that matches more since the dry run never acts on more than confirmed
//   POST /v1/ops/parked/purge   the same, and a "reason" (required): the matches are deleted
//   GET  /v1/deliveries, POST /v1/deliveries/replay
//                           forwarded to outbound's admin API (--outbound_admin_url) with the
//                           caller's Authorization (or a vouch for a caller the proxy signed in:
//                           forward.h): outbound checks the token or the vouch again
// Parked messages carry no tenant a broker-side filter could trust, so these routes are global:
// a tenant's token is refused (403) rather than shown another tenant's payloads. A viewer (global)
// reads them with every string of a payload and the customer part of a conversation key masked.
// Every write is in the audit log (audit.h) with its filter, count and reason, recorded after the
// broker acted (there is no transaction to share with a broker move).
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "api/audit.h"
#include "convoy/amqp.h"
#include "convoy/http.h"
#include "convoy/tokens.h"
#include "ctl.h"

namespace convoy::conversation {

struct OpsSettings {
  std::optional<AmqpOptions> broker;  // the ops user's; none: the parked and queue routes are 503
  std::string pg_dsn;  // health's checks (conversation's role: 0041 grants what they read)
  ctl::HealthThresholds thresholds;
  std::string grafana_url, rabbitmq_management_url;  // "" -> not shown
  std::string outbound_admin_url;                    // "" -> /v1/deliveries* are 503
  std::string forward_secret;  // vouches for a proxy-signed-in caller there (forward.h)
  // One sweep of the parking queues at a time in this process: a sweep holds the messages it
  // looks at, and a second one meanwhile would count fewer.
  std::shared_ptr<std::mutex> sweeping = std::make_shared<std::mutex>();
};

// Whether the route is one of this file's.
bool IsOpsRoute(const std::string& route);
// The answer for an admitted request on one of this file's routes; a write fills `audit`'s filter,
// count and reason (HandleApi records it after the answer).
HttpResponse HandleOpsApi(const HttpRequest& request, const std::string& route,
                          const Caller& caller, const OpsSettings& settings, AuditEntry* audit);

// A parked message's payload as a viewer reads it: every string in it masked as logs mask personal
// data (the shape and the keys stay); a body that is not JSON is masked whole.
std::string MaskPayload(const std::string& body);

}  // namespace convoy::conversation
