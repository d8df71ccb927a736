// The only file that resolves names for the SSRF guard.
#include "convoy/ssrf.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>

namespace convoy {

namespace {

bool V4Internal(uint32_t a) {  // host byte order
  auto in = [a](uint32_t net, int bits) { return (a >> (32 - bits)) == (net >> (32 - bits)); };
  return in(0x00000000, 8) || in(0x0A000000, 8) || in(0x64400000, 10) || in(0x7F000000, 8) ||
         in(0xA9FE0000, 16) || in(0xAC100000, 12) || in(0xC0000000, 24) || in(0xC0A80000, 16) ||
         in(0xC6120000, 15) || in(0xE0000000, 3);
}

}  // namespace

std::string UrlHost(const std::string& url) {
  size_t start = url.find("://");
  if (start == std::string::npos) return "";
  start += 3;
  size_t end = url.find_first_of("/?#", start);
  std::string authority =
      url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (authority.find('@') != std::string::npos) return "";  // no credentials in a URL
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    return close == std::string::npos ? "" : authority.substr(1, close - 1);
  }
  return authority.substr(0, authority.find(':'));
}

bool IsInternalAddress(const std::string& ip) {
  in_addr v4;
  if (inet_pton(AF_INET, ip.c_str(), &v4) == 1) return V4Internal(ntohl(v4.s_addr));
  in6_addr v6;
  if (inet_pton(AF_INET6, ip.c_str(), &v6) != 1) return true;  // not an address: never trusted
  const uint8_t* b = v6.s6_addr;
  static const uint8_t kZero[16] = {};
  auto v4_at = [b](int i) {
    return (uint32_t(b[i]) << 24) | (uint32_t(b[i + 1]) << 16) | (uint32_t(b[i + 2]) << 8) |
           b[i + 3];
  };
  auto prefix = [b](std::initializer_list<uint8_t> p) { return std::equal(p.begin(), p.end(), b); };
  // Forms that carry an IPv4 address are judged by it: IPv4-mapped (::ffff:a.b.c.d), the
  // deprecated IPv4-compatible (::a.b.c.d, which also covers :: and ::1), NAT64's well-known
  // prefix (64:ff9b::/96) and 6to4 (2002:AABB:CCDD::/16).
  if (std::equal(b, b + 10, kZero) && b[10] == 0xFF && b[11] == 0xFF) return V4Internal(v4_at(12));
  if (std::equal(b, b + 12, kZero)) return V4Internal(v4_at(12));
  if (prefix({0x00, 0x64, 0xFF, 0x9B}) && std::equal(b + 4, b + 12, kZero))
    return V4Internal(v4_at(12));
  if (prefix({0x20, 0x02})) return V4Internal(v4_at(2));
  // Internal in their own right: local-use NAT64 (64:ff9b:1::/48), Teredo (2001::/32, whose IPv4
  // is obfuscated), discard-only (100::/64), documentation (2001:db8::/32), ULA (fc00::/7),
  // link-local (fe80::/10), the deprecated site-local (fec0::/10) and multicast (ff00::/8).
  return prefix({0x00, 0x64, 0xFF, 0x9B, 0x00, 0x01}) || prefix({0x20, 0x01, 0x00, 0x00}) ||
         (prefix({0x01, 0x00}) && std::equal(b + 2, b + 8, kZero)) ||
         prefix({0x20, 0x01, 0x0D, 0xB8}) || (b[0] & 0xFE) == 0xFC ||
         (b[0] == 0xFE && (b[1] & 0x80) == 0x80) || b[0] == 0xFF;
}

Result<std::vector<std::string>> ResolvePublic(const std::string& url) {
  const std::string host = UrlHost(url);
  if (host.empty())
    return Status(Code::kInvalidArgument,
                  "not a usable URL (scheme://host/..., no credentials): " + RedactUrl(url));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags =
      AI_ADDRCONFIG;  // only families this host can reach: the first address is the one used
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0)
    return Status(Code::kUnavailable, "cannot resolve " + host + ": " + gai_strerror(rc));
  std::vector<std::string> addresses;
  Status refused = Status::Ok();
  for (addrinfo* ai = res; ai && refused.ok(); ai = ai->ai_next) {
    char buf[INET6_ADDRSTRLEN] = {};
    const void* addr =
        ai->ai_family == AF_INET
            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr)
            : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr);
    inet_ntop(ai->ai_family, addr, buf, sizeof(buf));
    if (IsInternalAddress(buf)) {
      refused = Status(Code::kRejected, host + " resolves to " + buf +
                                            " (loopback, private or link-local): refused");
    } else if (std::find(addresses.begin(), addresses.end(), buf) == addresses.end()) {
      addresses.emplace_back(buf);
    }
  }
  freeaddrinfo(res);
  if (!refused.ok()) return refused;
  if (addresses.empty())
    return Status(Code::kUnavailable, "cannot resolve " + host + ": no address");
  return addresses;
}

Status CheckDestination(const std::string& url, bool allow_private) {
  if (allow_private) {
    return UrlHost(url).empty()
               ? Status(Code::kInvalidArgument,
                        "not a usable URL (scheme://host/..., no credentials): " + RedactUrl(url))
               : Status::Ok();
  }
  auto resolved = ResolvePublic(url);
  return resolved.ok() ? Status::Ok() : resolved.status();
}

PinnedUrl PinToAddress(const std::string& url, const std::string& ip) {
  size_t start = url.find("://");
  if (start == std::string::npos) return {url, ""};
  start += 3;
  size_t end = url.find_first_of("/?#", start);
  const std::string authority =
      url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  const std::string host = UrlHost(url);
  in6_addr probe;
  if (host.empty() || inet_pton(AF_INET, host.c_str(), &probe) == 1 ||
      inet_pton(AF_INET6, host.c_str(), &probe) == 1) {
    return {url, ""};  // already an address: the one that was checked
  }
  // The port, if the URL names one, follows the host.
  const size_t colon = authority.find(':');
  const std::string port = colon == std::string::npos ? "" : authority.substr(colon);
  const std::string literal = ip.find(':') != std::string::npos ? "[" + ip + "]" : ip;
  PinnedUrl out;
  out.url =
      url.substr(0, start) + literal + port + (end == std::string::npos ? "" : url.substr(end));
  out.host_header = url.rfind("https://", 0) == 0 ? host : authority;
  return out;
}

std::string RedactUrl(const std::string& url) {
  size_t start = url.find("://");
  if (start == std::string::npos) return "(not a URL)";
  start += 3;
  size_t end = url.find_first_of("/?#", start);
  std::string authority =
      url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  size_t at = authority.rfind('@');
  if (at != std::string::npos) authority = authority.substr(at + 1);
  return url.substr(0, start) + authority + (end == std::string::npos ? "" : "/...");
}

}  // namespace convoy
