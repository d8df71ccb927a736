// Flags of the services that call Meta's Graph API.
#include <gflags/gflags.h>

#include "convoy/config.h"
#include "convoy/flags.h"

DEFINE_string(
    graph_base_url, "https://graph.facebook.com/v24.0",
    "Graph API base URL, version included, no trailing / (v21.0 is retired on 2027-01-21)");
DEFINE_validator(graph_base_url, &convoy::ValidateHttpUrl);
DEFINE_string(graph_token_file, "",
              "File holding the deployment's Graph API bearer token (else env CONVOY_GRAPH_TOKEN): "
              "what a number's "
              "graph_token env:CONVOY_GRAPH_TOKEN means");
DEFINE_int32(graph_token_check_seconds, 5,
             "How often, at most, a file: Graph token (a number's, or --graph_token_file) is "
             "looked at for a change");
DEFINE_validator(graph_token_check_seconds, &convoy::ValidatePositive);
DEFINE_int32(graph_timeout_ms, 10000, "Timeout of one Graph API call");
DEFINE_validator(graph_timeout_ms, &convoy::ValidatePositive);
