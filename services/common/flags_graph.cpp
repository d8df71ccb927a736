// Flags of the services that call Meta's Graph API.
#include <gflags/gflags.h>

#include "convoy/config.h"
#include "convoy/flags.h"

DEFINE_string(graph_base_url, "https://graph.facebook.com/v24.0",
              "Graph API base URL, version included, no trailing / (v21.0 is retired on 2027-01-21)");
DEFINE_validator(graph_base_url, &convoy::ValidateHttpUrl);
DEFINE_string(graph_token_file, "", "File holding the Graph API bearer token (else env CONVOY_GRAPH_TOKEN)");
DEFINE_int32(graph_timeout_ms, 10000, "Timeout of one Graph API call");
DEFINE_validator(graph_timeout_ms, &convoy::ValidatePositive);
