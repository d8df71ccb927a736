#pragma once
// The numbers registry on convoy-conversation's HTTP port, behind the API's bearer check
// (HandleApi dispatches here). JSON in and out; errors as {"error": {"code", "message"}}:
//   PUT    /v1/numbers/{phone_number_id}  a number (proto-schemas/number.v1.json); 201 when new, 200
//                                         otherwise; 409 when it belongs to another tenant
//   GET    /v1/numbers/{phone_number_id}  the entry (its token reference, never a token)
//   GET    /v1/numbers?status=&tenant=    every entry, by phone_number_id
//   DELETE /v1/numbers/{phone_number_id}  offboards: status offboarded, the row kept for the
//                                         record; its updates are recorded, never answered
#include <optional>
#include <string>

#include "convoy/http.h"
#include "convoy/json.h"

namespace convoy::conversation {

// The answer for a /v1/numbers request; nullopt for any other path.
std::optional<HttpResponse> HandleNumbersApi(const HttpRequest& request, const std::string& pg_dsn,
                                             const SchemaRegistry& schemas);

}  // namespace convoy::conversation
