#pragma once
// Calls to URLs that someone configured (a sink, an upload destination, an extractor endpoint) must
// never reach inside the network convoy runs in: the cloud's metadata address, the broker, the
// database, a neighbour's admin port. A URL's host is resolved and every address it resolves to
// must be public; the call then connects to the very address that was checked (PinToAddress), so
// a name that resolves elsewhere a moment later (DNS rebinding) changes nothing.
#include <string>
#include <vector>

#include "convoy/status.h"

namespace convoy {

// The address (IPv4 or IPv6 text form) is loopback, private (RFC 1918, ULA), link-local, CGNAT,
// unspecified, multicast, reserved or documentation - or an IPv6 form carrying such an IPv4
// address (mapped, compatible, NAT64, 6to4), or Teredo. Text that is not an address: true.
bool IsInternalAddress(const std::string& ip);

// scheme://host[:port]/...: the host, without brackets for IPv6; "" when there is none or the
// authority carries credentials (user:pass@).
std::string UrlHost(const std::string& url);

// The URL's host resolved: its addresses when every one is public. kInvalidArgument: no host or
// credentials in the URL; kUnavailable: the name does not resolve (may be transient); kRejected:
// it resolves to an internal address, named.
Result<std::vector<std::string>> ResolvePublic(const std::string& url);

// ResolvePublic's verdict alone; with allow_private, only the URL's form is checked.
Status CheckDestination(const std::string& url, bool allow_private);

// The URL with its host replaced by `ip` (in brackets when IPv6), and the Host header the request
// must carry so the server, TLS's SNI and the certificate check still see the name (cpprestsdk
// takes SNI and the certificate's name from Host as it is, so for https it is the bare name). A
// URL whose host is already an address is returned as it is, with no Host header.
struct PinnedUrl {
  std::string url, host_header;
};
PinnedUrl PinToAddress(const std::string& url, const std::string& ip);

// What of a URL may be shown in a log line, an error or a dead-letter header: scheme://host[:port],
// and "/..." when it has a path. Credentials, paths and queries (where webhook URLs keep their
// tokens, and Meta's media URLs their signatures) are left out.
std::string RedactUrl(const std::string& url);

}  // namespace convoy
