#pragma once
// convoy-outbound's admin API for deliveries (a named token of --tokens_file, or CONVOY_ADMIN_TOKEN
// as a global admin: convoy/tokens.h; the role each route needs is AdminRoutes()), JSON in and
// out, errors as {"error": {"code", "message"}}:
//   GET  /v1/deliveries?status=&sink=&limit=   deliveries, newest first, with their attempts
//   POST /v1/deliveries/replay                  {"id": N} or {"from": unix s, "to": unix s[,
//   "status"]}:
//                                               parked (or held) deliveries go again from attempt 1
//   POST /v1/sinks/{name}/enable                a sink disabled by a 410 takes results again; what
//                                               it held is released
//   GET  /v1/templates?waba_id=&status=&limit=  the template catalog (templates.h), with when each
//                                               WABA was last synced
//   POST /v1/templates/sync                     {"waba_id": "..."}: the WABA's templates read whole
//                                               from Graph with one of its numbers' token
// A person signed in through conversation's OIDC proxy reaches /v1/deliveries* through
// conversation, which vouches for them (X-Convoy-Vouch; --forward_secret_file).
// A replay or release resets the row and writes the command to the outbox in one transaction;
// conversation's relay publishes it. Safe to repeat: a delivered result stays delivered.
#include <memory>
#include <string>
#include <vector>

#include "convoy/graph_numbers.h"
#include "convoy/http.h"
#include "convoy/pg.h"
#include "convoy/tokens.h"
#include "sinks.h"
#include "templates.h"

namespace convoy::outbound {

struct AdminSettings {
  std::string pg_dsn;
  std::shared_ptr<TokenStore> tokens;  // null or empty: the API answers 403
  GraphNumbers::Settings graph;  // how a template sync reaches Graph (a WABA's number's token)
  TemplateSyncSettings template_sync;
  // Vouches from conversation for a person its OIDC proxy signed in (convoy/tokens.h Vouch), taken
  // on /v1/deliveries and /v1/deliveries/replay alone; "": none are.
  std::string forward_secret = "";
};

// Every /v1/ route: method, path, the role it needs, whether a tenant's token may call it.
const std::vector<RouteRule>& AdminRoutes();
HttpResponse HandleAdmin(const HttpRequest& request, const AdminSettings& settings,
                         const SinkSet& sinks);

// Held deliveries of configured, enabled sinks go again (at start: a sink configured since).
Result<int64_t> ReleaseHeld(PgConnection& db, const SinkSet& sinks,
                            const std::string& only_sink = "");

}  // namespace convoy::outbound
