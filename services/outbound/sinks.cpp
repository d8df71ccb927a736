#include "sinks.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <rapidjson/document.h>
#include <sys/socket.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "convoy/crypto.h"
#include "convoy/rapidjson_util.h"

namespace convoy::outbound {

namespace {

Status Bad(const std::string& sink, const std::string& what) {
  return Status(Code::kInvalidArgument, "sink '" + sink + "': " + what);
}

// scheme://host[:port]/...: the host (without brackets for IPv6).
std::string HostOf(const std::string& url) {
  size_t start = url.find("://");
  if (start == std::string::npos) return "";
  start += 3;
  size_t end = url.find_first_of("/?#", start);
  std::string authority = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (authority.find('@') != std::string::npos) return "";  // no credentials in a sink URL
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    return close == std::string::npos ? "" : authority.substr(1, close - 1);
  }
  return authority.substr(0, authority.find(':'));
}

bool V4Internal(uint32_t a) {  // host byte order
  auto in = [a](uint32_t net, int bits) { return (a >> (32 - bits)) == (net >> (32 - bits)); };
  return in(0x00000000, 8) || in(0x0A000000, 8) || in(0x64400000, 10) || in(0x7F000000, 8) || in(0xA9FE0000, 16) ||
         in(0xAC100000, 12) || in(0xC0000000, 24) || in(0xC0A80000, 16) || in(0xC6120000, 15) || in(0xE0000000, 3);
}

}  // namespace

bool IsInternalAddress(const std::string& ip) {
  in_addr v4;
  if (inet_pton(AF_INET, ip.c_str(), &v4) == 1) return V4Internal(ntohl(v4.s_addr));
  in6_addr v6;
  if (inet_pton(AF_INET6, ip.c_str(), &v6) != 1) return true;  // not an address: never trusted
  const uint8_t* b = v6.s6_addr;
  static const uint8_t kZero[16] = {};
  bool unspecified = std::equal(b, b + 16, kZero);
  bool loopback = std::equal(b, b + 15, kZero) && b[15] == 1;
  bool mapped = std::equal(b, b + 10, kZero) && b[10] == 0xFF && b[11] == 0xFF;
  if (mapped) return V4Internal((uint32_t(b[12]) << 24) | (uint32_t(b[13]) << 16) | (uint32_t(b[14]) << 8) | b[15]);
  return unspecified || loopback || (b[0] & 0xFE) == 0xFC /* ULA */ || (b[0] == 0xFE && (b[1] & 0xC0) == 0x80) ||
         b[0] == 0xFF /* multicast */;
}

Status CheckDestination(const std::string& url, bool allow_private) {
  std::string host = HostOf(url);
  if (host.empty()) return Status(Code::kInvalidArgument, "not a sink URL (scheme://host/..., no credentials): " + url);
  if (allow_private) return Status::Ok();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0) return Status(Code::kUnavailable, "cannot resolve " + host + ": " + gai_strerror(rc));
  Status out = Status::Ok();
  for (addrinfo* ai = res; ai && out.ok(); ai = ai->ai_next) {
    char buf[INET6_ADDRSTRLEN] = {};
    const void* addr = ai->ai_family == AF_INET ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr)
                                                : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr);
    inet_ntop(ai->ai_family, addr, buf, sizeof(buf));
    if (IsInternalAddress(buf)) {
      out = Status(Code::kRejected, host + " resolves to " + buf +
                                                " (loopback, private or link-local): refused; set \"allow_private\": true "
                                                "on the sink to allow it");
    }
  }
  freeaddrinfo(res);
  return out;
}

Result<std::string> ResolveSecret(const std::string& spec) {
  std::string value;
  if (spec.rfind("env:", 0) == 0) {
    const char* v = std::getenv(spec.substr(4).c_str());
    if (!v || !*v) return Status(Code::kInvalidArgument, "environment variable " + spec.substr(4) + " is not set");
    value = v;
  } else if (spec.rfind("file:", 0) == 0) {
    std::ifstream in(spec.substr(5), std::ios::binary);
    if (!in) return Status(Code::kInvalidArgument, "cannot read " + spec.substr(5));
    std::ostringstream ss;
    ss << in.rdbuf();
    value = ss.str();
    while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
    if (value.empty()) return Status(Code::kInvalidArgument, spec.substr(5) + " is empty");
  } else {
    value = spec;
  }
  return value;
}

Result<SinkSet> ParseSinks(const std::string& json, const SchemaRegistry& schemas, std::chrono::seconds default_timeout) {
  rapidjson::Document d;
  Status valid = schemas.ValidateAs("sinks", 1, json, &d);
  if (!valid.ok()) return valid;
  SinkSet set;
  for (const auto& v : d["sinks"].GetArray()) {
    Sink s;
    s.name = JsonStr(v, "name");
    s.kind = JsonStr(v, "kind") == "shopify" ? Sink::Kind::kShopify : Sink::Kind::kWebhook;
    s.url = JsonStr(v, "url");
    s.vendor = JsonStr(v, "vendor");
    s.allow_private = JsonMember(v, "allow_private").IsTrue();
    const auto& timeout = JsonMember(v, "timeout_seconds");
    s.timeout = timeout.IsInt() ? std::chrono::seconds(timeout.GetInt()) : default_timeout;
    if (set.sinks.count(s.name)) return Bad(s.name, "named twice");
    if (s.kind == Sink::Kind::kWebhook) {
      if (s.url.empty()) return Bad(s.name, "a webhook sink needs \"url\"");
      const auto& secrets = JsonMember(v, "secrets");
      if (!secrets.IsArray()) return Bad(s.name, "a webhook sink needs \"secrets\" (whsec_...) to sign with");
      for (const auto& spec : secrets.GetArray()) {
        auto secret = ResolveSecret(spec.GetString());
        if (!secret.ok()) return Bad(s.name, secret.status().message());
        auto key = WebhookSecretKey(*secret);
        if (!key.ok()) return Bad(s.name, key.status().message());
        s.keys.push_back(*key);
      }
    } else {
      std::string store = JsonStr(v, "store");
      if (store.empty()) return Bad(s.name, "a shopify sink needs \"store\" (e.g. acme.myshopify.com)");
      std::string version = JsonStr(v, "api_version");
      if (version.empty()) version = "2026-04";
      if (s.url.empty()) s.url = "https://" + store + "/admin/api/" + version + "/graphql.json";
      std::string spec = JsonStr(v, "token");
      if (spec.empty() && !JsonStr(v, "token_env").empty()) spec = "env:" + JsonStr(v, "token_env");
      if (spec.empty()) return Bad(s.name, "a shopify sink needs \"token\" or \"token_env\"");
      auto token = ResolveSecret(spec);
      if (!token.ok()) return Bad(s.name, token.status().message());
      s.token = *token;
    }
    Status dest = CheckDestination(s.url, s.allow_private);
    if (dest.code() == Code::kRejected || dest.code() == Code::kInvalidArgument) {
      return Bad(s.name, dest.message());
    }
    set.sinks.emplace(s.name, std::move(s));
  }
  return set;
}

Result<SinkSet> LoadSinks(const std::string& path, const SchemaRegistry& schemas, std::chrono::seconds default_timeout) {
  if (path.empty()) return SinkSet{};
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(Code::kInvalidArgument, "cannot read --sinks_file " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  auto set = ParseSinks(ss.str(), schemas, default_timeout);
  if (!set.ok()) return Status(Code::kInvalidArgument, path + ": " + set.status().message());
  return set;
}

Result<std::vector<std::chrono::milliseconds>> ParseSchedule(const std::string& spec) {
  std::vector<std::chrono::milliseconds> out;
  std::stringstream ss(spec);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t i = 0;
    while (i < item.size() && std::isdigit(static_cast<unsigned char>(item[i]))) ++i;
    std::string unit = item.substr(i);
    if (i == 0 || i > 9) return Status(Code::kInvalidArgument, "not a delay: \"" + item + "\" (like 0, 5s, 5m, 2h)");
    int64_t n = std::atoll(item.substr(0, i).c_str());
    int64_t ms = unit == "ms" ? n : unit == "s" || (unit.empty() && n == 0) ? n * 1000 : unit == "m" ? n * 60000
                 : unit == "h" ? n * 3600000 : -1;
    if (ms < 0) return Status(Code::kInvalidArgument, "not a delay: \"" + item + "\" (units: ms, s, m, h)");
    if (ms > 48LL * 3600000) return Status(Code::kInvalidArgument, "a delay over 48 h: \"" + item + "\"");
    out.emplace_back(ms);
  }
  if (out.empty() || out.size() > 50) return Status(Code::kInvalidArgument, "a schedule has 1 to 50 delays");
  return out;
}

}  // namespace convoy::outbound
