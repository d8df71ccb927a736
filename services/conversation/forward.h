#pragma once
// Routes of another convoy service, answered on this one's origin so that the console stays
// same-origin and its token never goes into a URL (issue 30): the request goes on to the other
// service as it came (method, path, query, body and its Content-Type) with the caller's
// Authorization, and that service checks the token again against its own route table. Its answer
// comes back as it is; nothing is forwarded to a URL a request names, only to a configured one.
//   /v1/deliveries*   outbound's admin API (--outbound_admin_url; ops_api.h)
//   POST /v1/media    convoy-media's photo intake (--media_api_url; api.h)
#include <string>

#include "convoy/http.h"
#include "convoy/status.h"

namespace convoy::conversation {

struct ForwardTarget {
  std::string base_url;  // http://host:port, no trailing '/'; "" -> 503 naming `flag`
  std::string name;      // the service, for an error: "outbound"
  std::string flag;      // what configures it: "--outbound_admin_url"
};

// The other service's answer to `request`, or 503 when it is not configured or did not answer.
HttpResponse Forward(const HttpRequest& request, const ForwardTarget& target);

}  // namespace convoy::conversation
