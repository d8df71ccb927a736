#pragma once
// The numbers registry (issue 27): the WhatsApp business numbers this deployment serves, as rows
// of `numbers` (deploy/postgres/0017_numbers.sql), put by the API (numbers_api.h) or by
// deploy/numbers/<phone_number_id>.json at start. A number is its business's (tenant), has a
// Graph token *reference* (env:NAME or file:/path, never the token), a Graph API version (else the
// deployment's) and a status: active, paused or offboarded. An update for a number that is not
// registered, or is offboarded, or that came through another Meta app than the number's `app`,
// never starts a flow or a send (the processor records it in unknown_number_updates and acks it).
#include <string>
#include <vector>

#include "convoy/json.h"
#include "convoy/pg.h"
#include "convoy/status.h"

namespace convoy::conversation {

// A number's registry entry, as proto-schemas/number.v1.json describes it, defaults filled in.
struct NumberEntry {
  std::string phone_number_id, tenant, waba_id, display_phone_number, app = "default", graph_token;
  std::string graph_version;  // "" (NULL): the deployment's, the version in --graph_base_url
  int throughput = 80;
  bool coexistence = false;
  std::string default_flow, greeting, status = "active";
  std::string templates_language;  // "" (NULL): each flow's own template language
  std::string sinks_json = "{}";   // a flow's sink name → the sinks that receive its results
  std::vector<std::string> flows;  // the flows it runs; empty: every loaded flow
  // The app it shares its threads with (Meta's Conversation Routing), which convoy passes threads
  // to and takes them from (thread_control); "" (NULL): none, the number is convoy's alone.
  std::string partner_app_id;
};

// What the registry says about a phone_number_id, for an update that names it.
enum class NumberStatus { kUnknown, kActive, kPaused, kOffboarded };
const char* NumberStatusName(NumberStatus s);

// Checks a number's JSON for `phone_number_id` (the path's or the file's name): the schema, then
// what a schema cannot say (the id in the body is the path's; a coexistence number does at most
// 20/s). kInvalidArgument names what is wrong, never echoing the value of graph_token.
Result<NumberEntry> ParseNumber(const std::string& phone_number_id, const std::string& body,
                                const SchemaRegistry& schemas);
// What a well-formed entry may not say (the API's 422): a default_flow that is not one of its
// `flows`. kInvalidArgument naming both.
Status CheckNumber(const NumberEntry& entry);
// Whether the number, running `flows` (empty: every flow), runs `flow`; kInvalidArgument naming the
// flows it runs when not.
Status NumberRuns(const std::string& phone_number_id, const std::vector<std::string>& flows,
                  const std::string& flow);

enum class PutOutcome { kCreated, kUpdated, kUnchanged, kOtherTenant };
// Inserts or replaces the entry (`source`: api, file). A number never moves to another tenant:
// kOtherTenant leaves the row as it was. A pause keeps its paused_reason and paused_at; any other
// status clears them. A file saying active leaves a number Meta paused (source meta) paused.
Result<PutOutcome> PutNumber(PgConnection& db, const NumberEntry& entry, const std::string& source);
// The entry as JSON (number.v1's members, plus source, created_at, updated_at); kNotFound.
Result<std::string> ShowNumber(PgConnection& db, const std::string& phone_number_id);
// {"numbers": [...]} ordered by phone_number_id; empty filters match all.
Result<std::string> ListNumbers(PgConnection& db, const std::string& status,
                                const std::string& tenant);
// Offboards (status offboarded; the row is kept for the record). kNotFound when not registered.
Status OffboardNumber(PgConnection& db, const std::string& phone_number_id);
// What an update for this number may do, and the number's greeting, the Meta app its webhooks must
// come through and its tenant. One primary-key read.
struct NumberLookup {
  NumberStatus status = NumberStatus::kUnknown;
  std::string greeting;            // "" when it has none
  std::string app;                 // whose app secret verifies its webhooks
  std::string tenant;              // the business it belongs to
  std::string default_flow;        // "" when it has none (then --default_flow)
  std::vector<std::string> flows;  // the flows it runs; empty: every loaded flow
  std::string templates_language;  // "" when it has none (then the flow's)
};
Result<NumberLookup> LookupNumber(PgConnection& db, const std::string& phone_number_id);
// The sinks that receive a result the flow sends to `flow_sink` from this number: the number's
// mapping for that name, else the sink of that name.
Result<std::vector<std::string>> NumberSinks(PgConnection& db, const std::string& phone_number_id,
                                             const std::string& flow_sink);
// Every <dir>/<phone_number_id>.json put in turn (source "file"); a bad file is an error naming
// it, and nothing after it is loaded. No folder: numbers come through the API only.
Status LoadNumberFiles(PgConnection& db, const std::string& dir, const SchemaRegistry& schemas);

}  // namespace convoy::conversation
