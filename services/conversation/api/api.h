#pragma once
// The assignment API on convoy-conversation's HTTP port (a named token of --tokens_file, or
// CONVOY_ADMIN_TOKEN as a global admin: convoy/tokens.h; the role each route needs is ApiRoutes();
// JSON in and out; errors as {"error": {"code", "message"}}):
//   GET  /v1/checklists[/{id}]        the checklists a caller may assign, a checklist's versions
//                                     (checklists_api.h)
//   PUT  /v1/checklists/{id}          a checklist definition (proto-schemas/checklist.v1.json); a
//                                     changed definition is a new version (201), the same one is
//                                     200
//   POST /v1/assignments              {"checklist", "operator", "phone_number_id", "reference"[,
//                                     "operator_name"]}; Idempotency-Key honoured; 201, or 200 with
//                                     the existing assignment for a reference assigned before
//   GET  /v1/assignments/{id}         status, answers so far (each photo with a short-lived link
//   when
//                                     photo links are set: checklists_api.h), timestamps, its
//                                     changes
//   GET  /v1/assignments/{id}/export.csv  a completed one's answers as CSV (checklists_api.h)
//   GET  /v1/assignments/{id}/export.pdf  the same as a PDF with its photos (checklists_api.h)
//   GET  /v1/assignments?status=&operator=&limit=
//   POST /v1/assignments/{id}/cancel  pending or active → cancelled (the operator is told)
//   POST /v1/assignments/{id}/retry   undeliverable (its template never reached the operator) →
//                                     pending again, started when the operator is free
//   GET  /v1/whoami                   the caller: {"name", "role", "tenant", "sees_personal_data",
//                                     "via": "token" | "proxy"}
//   GET  /v1/audit                    every write through this API, newest first (audit.h)
//   GET  /v1/flows                    the running flows: triggers, default, rollout, fallback
//   /v1/numbers                       the numbers registry (numbers_api.h)
//   /v1/conversations                 transcripts, owners, agent messages (conversations_api.h)
//   /v1/ops, /v1/deliveries           queues, parked messages, health, deliveries (ops_api.h)
//   POST /v1/media?phone_number_id=   an agent's photo (image/jpeg or image/png), forwarded to
//                                     convoy-media (--media_api_url, forward.h): the console's
//                                     upload stays on its own origin; media checks the token (or
//                                     the vouch for a proxy-signed-in caller) again
//   POST /v1/flows/reload             --flows_dir read and checked again, then swapped in (as on
//                                     SIGHUP); 422 naming the bad file keeps the running set
// A tenant's token (convoy/tokens.h) finds its own tenant's checklists, assignments and numbers
// alone; another tenant's are 404, as if they did not exist (README "Tenants never meet").
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "api/checklists_api.h"
#include "api/conversations_api.h"
#include "api/ops_api.h"
#include "convoy/http.h"
#include "convoy/json.h"
#include "convoy/pg.h"
#include "convoy/tokens.h"
#include "store/assignments.h"

namespace convoy::conversation {

// Sign-in through an OIDC proxy in front of the console (oauth2-proxy; README "The console"): a
// request without an Authorization header that carries the proxy's secret in `secret_header` is
// the caller `identities` maps the identity in `identity_header` to, and an identity it does not
// list is 401. Without the secret the identity header means nothing: a client that sets it itself
// meets the token gate and its 401. Every route, role and tenant is checked as for a token, and
// the audit log names the mapped name. The identities file is read again when it changes and on
// SIGHUP (IdentityStore); a bad one keeps the running set.
struct ProxySignIn {
  std::string identity_header;  // lower-case, e.g. "x-forwarded-email"; "" -> off
  std::string secret_header = "x-convoy-proxy-secret";  // lower-case
  std::string secret;                                   // what the proxy sends in it
  std::shared_ptr<IdentityStore> identities;
  bool enabled() const { return !identity_header.empty() && !secret.empty() && identities; }
};

struct ApiSettings {
  std::string pg_dsn;
  std::shared_ptr<TokenStore> tokens;  // null or empty: the API answers 403
  AssignmentSettings assignments;
  // Loads, checks and swaps in the flows: a summary of the new set (JSON), or why not (the
  // running set stays). And the running set's summary.
  std::function<Result<std::string>()> reload_flows;
  std::function<std::string()> flows;
  ConversationsApiSettings conversations{};  // its pg_dsn: set by main like pg_dsn above
  PhotoLinkSettings photo_links{};           // answers' photos as signed media links; unset: none
  OpsSettings ops{};                         // the operations screen's routes (ops_api.h)
  std::string media_api_url{};  // convoy-media's base URL for POST /v1/media; "" -> 503
  ProxySignIn proxy{};          // OIDC proxy sign-in; off by default
  // Vouches for a proxy-signed-in caller on the routes forwarded to media and outbound (forward.h,
  // convoy/tokens.h Vouch); "": those routes are 503 to such a caller.
  std::string forward_secret{};
};

// The largest body a route other than POST /v1/media takes (JSON); larger is 413. The listener's
// own limit is a photo's (main.cpp --max_image_bytes).
constexpr size_t kMaxJsonBodyBytes = 1 << 20;

// Every /v1/ route: method, path, the role it needs, whether a tenant's token may call it.
const std::vector<RouteRule>& ApiRoutes();
HttpResponse HandleApi(const HttpRequest& request, const ApiSettings& settings,
                       const SchemaRegistry& schemas);
// What a viewer sees of an assignment or a list of them: the operator and their name masked as
// logs mask them, no answers.
std::string MaskAssignments(const std::string& json);

// PUT semantics for a checklist definition (the API and deploy/checklists/*.json): the version it
// is now, and whether it was new.
struct ChecklistVersion {
  int version = 0;
  bool created = false;
};
// `tenant`: the caller's (a tenant's token), or none (a global token, a file). An id another owner
// holds is kRejected: a tenant versions only its own checklists, a file only shared ones.
Result<ChecklistVersion> PutChecklist(PgConnection& db, const std::string& id,
                                      const std::string& definition_json, const std::string& source,
                                      const std::optional<std::string>& tenant);
// Every deploy/checklists/*.json (its file name is its id), validated first; a bad file is an
// error naming it.
Status LoadChecklistFiles(PgConnection& db, const std::string& dir, const SchemaRegistry& schemas);

}  // namespace convoy::conversation
