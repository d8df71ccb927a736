#pragma once
// Helpers for tests of deliveries to sinks: a sinks file, an outbound.deliver command as
// conversation writes it, and its publication.
#include <fstream>
#include <string>

#include "convoy/amqp.h"
#include "convoy/crypto.h"
#include "convoy/topology.h"
#include "stack.h"
#include "testsupport.h"

namespace convoy::test {

// The Standard Webhooks specification's example secret, and a second one for rotation.
inline constexpr const char* kOldSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
inline std::string NewSecret() { return "whsec_" + Base64Encode(std::string(32, 'n')); }
inline std::string Key(const std::string& secret) { return *WebhookSecretKey(secret); }

inline std::string WriteSinks(const std::string& json) {
  std::string path = ::testing::TempDir() + "/" + UniqueName("sinks") + ".json";
  std::ofstream(path) << json;
  return path;
}

inline std::string WebhookSink(const std::string& name, const std::string& url,
                               const std::string& secrets_json, int timeout_seconds = 5) {
  return R"({"name": ")" + name + R"(", "kind": "webhook", "url": ")" + url + R"(", "secrets": )" +
         secrets_json + R"(, "allow_private": true, "timeout_seconds": )" +
         std::to_string(timeout_seconds) + "}";
}

// A listing result for `sink`, as conversation writes it once its photos are stored.
inline std::string DeliverCommand(const std::string& result_id, const std::string& sink,
                                  const std::string& photos_json = "[]") {
  return R"({"schema":"outbound.deliver","version":1,"correlation_id":"corr-)" + result_id +
         R"(","dedupe_key":")" + result_id +
         R"(:deliver","conversation_key":"106540352242922:16505550000","phone_number_id":"106540352242922",)"
         R"("result_id":")" +
         result_id + R"(","sink":")" + sink +
         R"(","type":"listing.submitted","flow":"listing","outcome":"submitted","completed_at":1764500000,)"
         R"("wa_id":"16505550000","fields":{"email":"kerry@example.com","description":"Nike running shoes, size 42, used, $35",)"
         R"("brand":"Nike","price":"35","condition":"used"},"photos":)" +
         photos_json + "}";
}

inline Status PublishDeliver(const Stack& stack, const std::string& body, const std::string& dedupe,
                             const std::string& correlation) {
  Publisher publisher({stack.vhost.url(), "test-deliver"});
  publisher.Start();
  if (!publisher.WaitConnected(std::chrono::seconds(10)))
    return Status(Code::kUnavailable, "no broker");
  AmqpMessage m;
  m.exchange = exchanges::kCommands;
  m.routing_key = queues::kOutboundDeliver;
  m.body = body;
  m.message_id = dedupe;
  m.headers[headers::kDedupeKey] = dedupe;
  m.headers[headers::kCorrelationId] = correlation;
  Status s = publisher.PublishAndWait(std::move(m), std::chrono::seconds(10));
  publisher.Stop();
  return s;
}

}  // namespace convoy::test
