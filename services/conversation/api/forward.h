#pragma once
// Routes of another convoy service, answered on this one's origin so that the console stays
// same-origin and its token never goes into a URL (issue 30): the request goes on to the other
// service as it came (method, path, query, body and its Content-Type) with the caller's
// Authorization, and that service checks the token again against its own route table. A caller
// the OIDC proxy signed in has no token to pass on: the request goes with a vouch for that caller
// instead (convoy/tokens.h Vouch: their name, role and tenant, good for this one request for a
// minute, signed with the services' forward secret), and the other service checks the role and
// tenant again as for a token. Its answer comes back as it is; nothing is forwarded to a URL a
// request names, only to a configured one.
//   /v1/deliveries*   outbound's admin API (--outbound_admin_url; ops_api.h)
//   POST /v1/media    convoy-media's photo intake (--media_api_url; api.h)
#include <string>

#include "convoy/http.h"
#include "convoy/status.h"
#include "convoy/tokens.h"

namespace convoy::conversation {

struct ForwardTarget {
  std::string base_url;             // http://host:port, no trailing '/'; "" -> 503 naming `flag`
  std::string name;                 // the service, for an error: "outbound"
  std::string flag;                 // what configures it: "--outbound_admin_url"
  std::string forward_secret = "";  // vouches for a caller without a token; "": 503 for them
};

// The other service's answer to `request` of `caller` (admitted here), or 503 when it is not
// configured or did not answer, or when the caller has no token and no vouch can be made.
HttpResponse Forward(const HttpRequest& request, const ForwardTarget& target, const Caller& caller);

}  // namespace convoy::conversation
