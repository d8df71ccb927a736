#pragma once
// Results to the business's sinks (outbound.deliver): exactly once per (result, sink), retried on
// a schedule, every attempt recorded, parked with the reason when exhausted, replayable.
//
// A delivery's row (deliveries, migration 0009) is claimed before each attempt ('attempting',
// attempts + 1). The schedule (--delivery_schedule) says when each attempt may go; the command
// waits for it in the delay queues (not counted by the broker: the row counts). A webhook attempt
// is a POST signed as Standard Webhooks says, with webhook-id = the result id, the same on every
// attempt; 2xx delivers, 410 disables the sink (its results are held until it is enabled), 408,
// 429, 5xx, 3xx (redirects are not followed), timeouts and network errors are retried (honouring
// Retry-After), other 4xx park. A Shopify attempt creates a DRAFT product tagged with the result;
// an attempt whose outcome is unknown (no answer, or the process died) looks the tag up first. A
// Chatwoot attempt mirrors a conversation into an inbox (chatwoot.h); one whose outcome is unknown
// looks its message up by source_id first. Once a sink took a delivery, a failed record of it
// (the database restarting) is retried alone, the sink's answer kept in the command's headers: the
// sink is not called again (after --record_attempts the command is parked with the answer, and a
// replay only records it).
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "convoy/amqp.h"
#include "convoy/json.h"
#include "convoy/pg.h"
#include "shopify.h"
#include "sinks.h"

namespace convoy::outbound {

struct DeliverySettings {
  std::vector<std::chrono::milliseconds> schedule;  // delay before each attempt; its size: attempts
  std::string media_base_url;                       // convoy-media's public URL, for photo links
  std::string link_secret;  // signs the photo links (CONVOY_MEDIA_LINK_SECRET)
  std::chrono::seconds link_ttl{7 * 24 * 3600};
  // A Shopify store's product search is indexed after its writes: an attempt whose outcome is
  // unknown is looked up by tag no sooner than this after it started.
  std::chrono::seconds shopify_search_lag{30};
  std::function<int64_t()> now;  // seconds since the epoch; system clock if empty
  // After a sink took a delivery (2xx), how many times recording it is tried through the delay
  // tiers before the command is parked with the answer, for a replay that only records it.
  int record_attempts = 8;
};

class Deliverer {
 public:
  Deliverer(PgConnection& db, const SchemaRegistry& schemas, const SinkSet& sinks,
            DeliverySettings settings, shopify::Throttle& throttle);
  Disposition Handle(const Delivery& d);

  struct Outcome;  // one attempt's (deliverer.cpp)
  struct Job;

 private:
  Outcome Webhook(const Sink& sink, const Job& job, const std::string& body);
  Outcome Shopify(const Sink& sink, const Job& job, bool reconcile,
                  const std::string& known_product, const std::string& known_variant);
  Outcome Chatwoot(const Sink& sink, const Job& job, bool reconcile);  // chatwoot.h
  Result<std::string> WebhookBody(const Job& job, const Sink& sink);
  // Records that the sink took the delivery; when the database refuses, only the record is
  // retried, the sink's answer carried in the command's headers.
  Disposition RecordDelivered(const Job& job, const Delivery& d, int status_code,
                              const std::string& external_id);
  PgConnection& db_;
  const SchemaRegistry& schemas_;
  const SinkSet& sinks_;
  DeliverySettings settings_;
  shopify::Throttle& throttle_;
};

// The webhook body of a result: {"type", "timestamp" (RFC 3339, its completion), "data": {...}},
// photos as signed links. Exposed for tests.
std::string ResultBody(const std::string& command_json, const std::string& media_base_url,
                       const std::string& link_secret, int64_t link_expires);
// The same with each stored photo's bytes too ("content_type", "content_base64"), read by `fetch`
// from its link; the first fetch error is the answer.
using PhotoFetch = std::function<Result<std::string>(const std::string& url)>;
Result<std::string> ResultBody(const std::string& command_json, const std::string& media_base_url,
                               const std::string& link_secret, int64_t link_expires,
                               const PhotoFetch& fetch);

// Seconds from a Retry-After header (delta seconds or an HTTP date), or -1.
int64_t RetryAfterSeconds(const std::string& value, int64_t now);

}  // namespace convoy::outbound
