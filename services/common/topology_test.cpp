#include "convoy/topology.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

namespace convoy {
namespace {

// The shipped definitions file is generated from the same data the services declare, so
// boot-time import and runtime declaration can never disagree (a mismatch would make every
// service's declare fail with PRECONDITION_FAILED).
TEST(Topology, ShippedDefinitionsMatchTheCode) {
  std::ifstream in(std::string(CONVOY_SOURCE_DIR) + "/deploy/rabbitmq/definitions.json");
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), DefinitionsJson(ConvoyTopology()))
      << "regenerate with: build/services/common/convoy-topology > deploy/rabbitmq/definitions.json";
}

TEST(Topology, EveryBindingTargetsADeclaredQueueAndExchange) {
  const auto& t = ConvoyTopology();
  std::set<std::string> queues, exchanges;
  for (const auto& q : t.queues) queues.insert(q.name);
  for (const auto& e : t.exchanges) exchanges.insert(e.name);
  for (const auto& b : t.bindings) {
    EXPECT_TRUE(queues.count(b.queue)) << b.queue;
    EXPECT_TRUE(exchanges.count(b.exchange)) << b.exchange;
  }
  for (const auto& w : t.work_queues) {
    EXPECT_TRUE(queues.count(w + ".dlq")) << w;
    for (const auto& tier : t.retry_tiers) EXPECT_TRUE(queues.count(w + "." + tier.name));
  }
}

TEST(Topology, RetryTiersGrowThenRepeatTheLast) {
  EXPECT_EQ(RetryRoutingKey("outbound.send", 1), "outbound.send.1s");
  EXPECT_EQ(RetryRoutingKey("outbound.send", 2), "outbound.send.5s");
  EXPECT_EQ(RetryRoutingKey("outbound.send", 5), "outbound.send.10m");
  EXPECT_EQ(RetryRoutingKey("outbound.send", 50), "outbound.send.10m");
}

TEST(Topology, RetryNeverShorterThanAskedWhileATierIsLongEnough) {
  EXPECT_EQ(RetryRoutingKey("outbound.send", 1, 4000), "outbound.send.5s");    // pair-rate 4^1 s
  EXPECT_EQ(RetryRoutingKey("outbound.send", 2, 16000), "outbound.send.30s");  // 4^2 s
  EXPECT_EQ(RetryRoutingKey("outbound.send", 3, 1000), "outbound.send.30s");   // the attempt's tier is longer
  EXPECT_EQ(RetryRoutingKey("outbound.send", 1, 3600000), "outbound.send.10m");
}

TEST(Topology, DelaysComeBackNoLaterThanAsked) {
  // A paced queue has a short tier; a wait takes the longest tier that fits in it.
  EXPECT_EQ(ShortestDelayMs("outbound.send"), 250);
  EXPECT_EQ(DelayRoutingKey("outbound.send", 100), "outbound.send.250ms");
  EXPECT_EQ(DelayRoutingKey("outbound.send", 999), "outbound.send.250ms");
  EXPECT_EQ(DelayRoutingKey("outbound.send", 1000), "outbound.send.1s");
  EXPECT_EQ(DelayRoutingKey("outbound.send", 29999), "outbound.send.5s");
  EXPECT_EQ(DelayRoutingKey("outbound.send", 86400000), "outbound.send.10m");
  // Other queues have no pace tier: their shortest wait is the first retry tier.
  EXPECT_EQ(ShortestDelayMs("media.fetch"), 1000);
  EXPECT_EQ(DelayRoutingKey("media.fetch", 100), "media.fetch.1s");
  const Topology& t = ConvoyTopology();
  std::set<std::string> queues;
  for (const auto& q : t.queues) queues.insert(q.name);
  EXPECT_TRUE(queues.count("outbound.send.250ms"));
  EXPECT_FALSE(queues.count("media.fetch.250ms"));
}

}  // namespace
}  // namespace convoy
