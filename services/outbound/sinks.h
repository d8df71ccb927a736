#pragma once
// Sinks: where results go, by name (--sinks_file, proto-schemas/sinks.v1.json). Loaded and
// checked at start: secrets resolved (inline, "env:VAR", "file:/path"; a chatwoot sink's only by
// reference), webhook secrets decoded, and every destination checked against SSRF (a sink that
// resolves to loopback, link-local, private or otherwise internal addresses is refused unless it
// says allow_private).
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "convoy/json.h"
#include "convoy/ssrf.h"
#include "convoy/status.h"

namespace convoy::outbound {

struct Sink {
  enum class Kind { kWebhook, kShopify, kChatwoot };
  std::string name;
  Kind kind = Kind::kWebhook;
  // webhook: the receiver; shopify: the Admin GraphQL endpoint; chatwoot: the installation's base
  // URL (https://app.chatwoot.com)
  std::string url;
  std::vector<std::string> keys;  // webhook: decoded secret keys, one signature each; chatwoot:
                                  // the inbox's webhook secrets its callbacks are signed with
  std::string token;              // shopify: X-Shopify-Access-Token; chatwoot: api_access_token
  // chatwoot: the account and API-channel inbox conversations go to; the convoy API token
  // (role agent) an agent's reply is sent with; whether contacts carry the customer's phone number.
  int64_t account_id = 0, inbox_id = 0;
  std::string agent_token;
  bool share_phone = false;
  std::string vendor;  // shopify: the product's vendor when the result names none
  bool allow_private = false;
  std::chrono::seconds timeout{15};
  // webhook: photos as signed links only (false), or also their bytes in the body (true:
  // "attach": "inline"), so the evidence outlives the link; each photo at most inline_max_bytes.
  bool inline_photos = false;
  size_t inline_max_bytes = 5 << 20;
};

struct SinkSet {
  std::map<std::string, Sink> sinks;
  const Sink* Find(const std::string& name) const {
    auto it = sinks.find(name);
    return it == sinks.end() ? nullptr : &it->second;
  }
};

// The file's sinks; any problem is kInvalidArgument naming the sink and what is wrong. An empty
// path is an empty set (results are held until a sink is configured). default_timeout: the
// --delivery_timeout_seconds for sinks that name none.
Result<SinkSet> LoadSinks(const std::string& path, const SchemaRegistry& schemas,
                          std::chrono::seconds default_timeout);
Result<SinkSet> ParseSinks(const std::string& json, const SchemaRegistry& schemas,
                           std::chrono::seconds default_timeout);

// A secret as configured: "env:VAR", "file:/path" or the value itself.
Result<std::string> ResolveSecret(const std::string& spec);

const char* KindName(Sink::Kind kind);  // "webhook", "shopify", "chatwoot"

// The retry schedule: delays before each attempt ("0,5s,5m,30m,2h,5h,10h,10h": attempt 1 at
// once, attempt 2 after 5 s, ...); its length is the number of attempts.
Result<std::vector<std::chrono::milliseconds>> ParseSchedule(const std::string& spec);

}  // namespace convoy::outbound
