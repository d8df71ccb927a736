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

}  // namespace
}  // namespace convoy
