#pragma once
// The numbers registry on convoy-conversation's HTTP port, behind the API's bearer check
// (HandleApi dispatches here). JSON in and out; errors as {"error": {"code", "message"}}:
//   PUT    /v1/numbers/{phone_number_id}  a number (proto-schemas/number.v1.json); 201 when new,
//   200
//                                         otherwise; 409 when it belongs to another tenant; 422
//                                         when its default_flow is not one of its flows
//   GET    /v1/numbers/{phone_number_id}  the entry (its token reference, never a token)
//   GET    /v1/numbers?status=&tenant=    every entry, by phone_number_id
// PUT and DELETE are a global admin's; a tenant's token reads its own numbers alone (another
// tenant's: 404, or absent from the list).
//   DELETE /v1/numbers/{phone_number_id}  offboards: status offboarded, the row kept for the
//                                         record; its updates are recorded, never answered
#include <optional>
#include <string>

#include "convoy/http.h"
#include "convoy/json.h"

namespace convoy::conversation {

// The answer for a /v1/numbers request; nullopt for any other path.
// `tenant`: the caller's, or none for a global token.
std::optional<HttpResponse> HandleNumbersApi(const HttpRequest& request, const std::string& pg_dsn,
                                             const SchemaRegistry& schemas,
                                             const std::optional<std::string>& tenant);

}  // namespace convoy::conversation
