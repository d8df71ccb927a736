#include "sinks.h"

#include <rapidjson/document.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "convoy/crypto.h"
#include "convoy/rapidjson_util.h"
#include "convoy/secret_refs.h"

namespace convoy::outbound {

namespace {

Status Bad(const std::string& sink, const std::string& what) {
  return Status(Code::kInvalidArgument, "sink '" + sink + "': " + what);
}

// A chatwoot sink's credential: only by reference (env:VAR or file:/path), so the sinks file, which
// is committed and mounted as configuration, never holds one.
Result<std::string> ChatwootSecret(const std::string& sink, const char* what,
                                   const std::string& spec) {
  if (!ValidSecretRef(spec)) {
    return Bad(sink, std::string("\"") + what +
                         "\" must be a reference, env:VAR or file:/path (never the secret itself)");
  }
  auto value = ResolveSecret(spec);
  if (!value.ok()) return Bad(sink, std::string(what) + ": " + value.status().message());
  return value;
}

Status ParseChatwoot(const rapidjson::Value& v, Sink* s) {
  if (s->url.empty())
    return Bad(
        s->name,
        "a chatwoot sink needs \"url\", the installation's base URL (https://app.chatwoot.com)");
  if (s->url.find('/', s->url.find("//") + 2) != std::string::npos) {
    return Bad(s->name, "a chatwoot sink's \"url\" is the installation's base URL, without a path");
  }
  s->account_id = JsonMember(v, "account_id").IsInt64() ? v["account_id"].GetInt64() : 0;
  s->inbox_id = JsonMember(v, "inbox_id").IsInt64() ? v["inbox_id"].GetInt64() : 0;
  if (s->account_id <= 0 || s->inbox_id <= 0)
    return Bad(s->name, "a chatwoot sink needs \"account_id\" and \"inbox_id\"");
  auto token = ChatwootSecret(s->name, "token", JsonStr(v, "token"));
  if (!token.ok()) return token.status();
  s->token = *token;
  auto agent = ChatwootSecret(s->name, "agent_token", JsonStr(v, "agent_token"));
  if (!agent.ok()) return agent.status();
  s->agent_token = *agent;
  const auto& secrets = JsonMember(v, "webhook_secrets");
  if (!secrets.IsArray())
    return Bad(s->name,
               "a chatwoot sink needs \"webhook_secrets\": the inbox's secret its callbacks are "
               "signed with");
  for (const auto& spec : secrets.GetArray()) {
    auto secret = ChatwootSecret(s->name, "webhook_secrets", spec.GetString());
    if (!secret.ok()) return secret.status();
    s->keys.push_back(*secret);
  }
  s->share_phone = JsonMember(v, "share_phone").IsTrue();
  return Status();
}

}  // namespace

const char* KindName(Sink::Kind kind) {
  switch (kind) {
    case Sink::Kind::kWebhook:
      return "webhook";
    case Sink::Kind::kShopify:
      return "shopify";
    case Sink::Kind::kChatwoot:
      return "chatwoot";
  }
  return "webhook";
}

Result<std::string> ResolveSecret(const std::string& spec) {
  std::string value;
  if (spec.rfind("env:", 0) == 0) {
    const char* v = std::getenv(spec.substr(4).c_str());
    if (!v || !*v)
      return Status(Code::kInvalidArgument,
                    "environment variable " + spec.substr(4) + " is not set");
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

Result<SinkSet> ParseSinks(const std::string& json, const SchemaRegistry& schemas,
                           std::chrono::seconds default_timeout) {
  rapidjson::Document d;
  Status valid = schemas.ValidateAs("sinks", 1, json, &d);
  if (!valid.ok()) return valid;
  SinkSet set;
  for (const auto& v : d["sinks"].GetArray()) {
    Sink s;
    s.name = JsonStr(v, "name");
    const std::string kind = JsonStr(v, "kind");
    s.kind = kind == "shopify"    ? Sink::Kind::kShopify
             : kind == "chatwoot" ? Sink::Kind::kChatwoot
                                  : Sink::Kind::kWebhook;
    s.url = JsonStr(v, "url");
    s.vendor = JsonStr(v, "vendor");
    s.allow_private = JsonMember(v, "allow_private").IsTrue();
    s.inline_photos = JsonStr(v, "attach") == "inline";
    if (JsonMember(v, "inline_max_bytes").IsInt64())
      s.inline_max_bytes = static_cast<size_t>(v["inline_max_bytes"].GetInt64());
    const auto& timeout = JsonMember(v, "timeout_seconds");
    s.timeout = timeout.IsInt() ? std::chrono::seconds(timeout.GetInt()) : default_timeout;
    if (set.sinks.count(s.name)) return Bad(s.name, "named twice");
    if (s.kind == Sink::Kind::kWebhook) {
      if (s.url.empty()) return Bad(s.name, "a webhook sink needs \"url\"");
      const auto& secrets = JsonMember(v, "secrets");
      if (!secrets.IsArray())
        return Bad(s.name, "a webhook sink needs \"secrets\" (whsec_...) to sign with");
      for (const auto& spec : secrets.GetArray()) {
        auto secret = ResolveSecret(spec.GetString());
        if (!secret.ok()) return Bad(s.name, secret.status().message());
        auto key = WebhookSecretKey(*secret);
        if (!key.ok()) return Bad(s.name, key.status().message());
        s.keys.push_back(*key);
      }
    } else if (s.kind == Sink::Kind::kChatwoot) {
      Status chatwoot = ParseChatwoot(v, &s);
      if (!chatwoot.ok()) return chatwoot;
    } else {
      std::string store = JsonStr(v, "store");
      if (store.empty())
        return Bad(s.name, "a shopify sink needs \"store\" (e.g. acme.myshopify.com)");
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
    if (dest.code() == Code::kInvalidArgument) return Bad(s.name, dest.message());
    if (dest.code() == Code::kRejected)
      return Bad(s.name, dest.message() + "; set \"allow_private\": true on the sink to allow it");
    set.sinks.emplace(s.name, std::move(s));
  }
  return set;
}

Result<SinkSet> LoadSinks(const std::string& path, const SchemaRegistry& schemas,
                          std::chrono::seconds default_timeout) {
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
    if (i == 0 || i > 9)
      return Status(Code::kInvalidArgument, "not a delay: \"" + item + "\" (like 0, 5s, 5m, 2h)");
    int64_t n = std::atoll(item.substr(0, i).c_str());
    int64_t ms = unit == "ms"                              ? n
                 : unit == "s" || (unit.empty() && n == 0) ? n * 1000
                 : unit == "m"                             ? n * 60000
                 : unit == "h"                             ? n * 3600000
                                                           : -1;
    if (ms < 0)
      return Status(Code::kInvalidArgument, "not a delay: \"" + item + "\" (units: ms, s, m, h)");
    if (ms > 48LL * 3600000)
      return Status(Code::kInvalidArgument, "a delay over 48 h: \"" + item + "\"");
    out.emplace_back(ms);
  }
  if (out.empty() || out.size() > 50)
    return Status(Code::kInvalidArgument, "a schedule has 1 to 50 delays");
  return out;
}

}  // namespace convoy::outbound
