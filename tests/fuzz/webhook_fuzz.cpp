// libFuzzer target over ingress's request path minus the network: signature check, parse and
// split. Every update split out must carry a dedupe key and an envelope that is valid JSON.
#include <rapidjson/document.h>

#include <cstdint>
#include <string_view>

#include "webhook.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  (void)convoy::ingress::VerifySignature(body, body.substr(0, 71), "fuzz-secret");
  auto split = convoy::ingress::SplitWebhook(body, "fuzz-correlation", "2026-01-01T00:00:00.000Z");
  if (!split.ok()) {
    if (split.status().message().find('\n') != std::string::npos)
      __builtin_trap();  // one-line reasons
    return 0;
  }
  for (const auto& u : split->updates) {
    if (u.dedupe_key.empty() || u.message_id.empty()) __builtin_trap();
    rapidjson::Document envelope;
    envelope.Parse(u.body.c_str(), u.body.size());
    if (envelope.HasParseError() || !envelope.IsObject()) __builtin_trap();
  }
  return 0;
}
