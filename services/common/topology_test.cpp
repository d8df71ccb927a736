#include "convoy/topology.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "convoy/amqp_admin.h"

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
      << "regenerate with: build/services/common/convoy-topology > "
         "deploy/rabbitmq/definitions.json";
}

TEST(Topology, EveryBindingTargetsADeclaredQueueAndExchange) {
  const auto& t = ConvoyTopology();
  std::set<std::string> queues, exchanges;
  for (const auto& q : t.queues) queues.insert(q.name);
  for (const auto& e : t.exchanges) exchanges.insert(e.name);
  for (const auto& b : t.bindings) {
    EXPECT_TRUE(b.to_exchange ? exchanges.count(b.queue) : queues.count(b.queue)) << b.queue;
    EXPECT_TRUE(exchanges.count(b.exchange)) << b.exchange;
  }
  for (const auto& w : t.work_queues) {
    EXPECT_TRUE(queues.count(w + ".dlq")) << w;
    for (const auto& tier : t.retry_tiers) EXPECT_TRUE(queues.count(DelayQueueName(w, tier.name)));
  }
}

TEST(Topology, RetryTiersGrowThenRepeatTheLast) {
  EXPECT_EQ(RetryRoutingKey("outbound.send", 1), "outbound.send.delay.1s");
  EXPECT_EQ(RetryRoutingKey("outbound.send", 2), "outbound.send.delay.5s");
  EXPECT_EQ(RetryRoutingKey("outbound.send", 5), "outbound.send.delay.10m");
  EXPECT_EQ(RetryRoutingKey("outbound.send", 50), "outbound.send.delay.10m");
}

TEST(Topology, RetryNeverShorterThanAskedWhileATierIsLongEnough) {
  EXPECT_EQ(RetryRoutingKey("outbound.send", 1, 4000),
            "outbound.send.delay.5s");  // pair-rate 4^1 s
  EXPECT_EQ(RetryRoutingKey("outbound.send", 2, 16000), "outbound.send.delay.30s");  // 4^2 s
  EXPECT_EQ(RetryRoutingKey("outbound.send", 3, 1000),
            "outbound.send.delay.30s");  // the attempt's tier is longer
  EXPECT_EQ(RetryRoutingKey("outbound.send", 1, 3600000), "outbound.send.delay.10m");
}

TEST(Topology, DelaysComeBackNoLaterThanAsked) {
  // A paced queue has a short tier; a wait takes the longest tier that fits in it.
  EXPECT_EQ(ShortestDelayMs("outbound.send"), 250);
  EXPECT_EQ(DelayRoutingKey("outbound.send", 100), "outbound.send.delay.250ms");
  EXPECT_EQ(DelayRoutingKey("outbound.send", 999), "outbound.send.delay.250ms");
  EXPECT_EQ(DelayRoutingKey("outbound.send", 1000), "outbound.send.delay.1s");
  EXPECT_EQ(DelayRoutingKey("outbound.send", 29999), "outbound.send.delay.5s");
  EXPECT_EQ(DelayRoutingKey("outbound.send", 86400000), "outbound.send.delay.10m");
  // Other queues have no pace tier: their shortest wait is the first retry tier.
  EXPECT_EQ(ShortestDelayMs("media.fetch"), 1000);
  EXPECT_EQ(DelayRoutingKey("media.fetch", 100), "media.fetch.delay.1s");
  const Topology& t = ConvoyTopology();
  std::set<std::string> queues;
  for (const auto& q : t.queues) queues.insert(q.name);
  EXPECT_TRUE(queues.count("outbound.send.delay.250ms"));
  EXPECT_FALSE(queues.count("media.fetch.delay.250ms"));
}

// Every move the broker makes by itself must be at-least-once (the reliability guide): a TTL
// expiring in a delay queue and a delivery limit reached in a work queue. That takes a quorum
// queue with dead-letter-strategy at-least-once and reject-publish overflow; a classic queue drops
// what expires while its target is unavailable (a broker restart longer than the delay).
TEST(Topology, EveryQueueThatDeadLettersDoesSoAtLeastOnce) {
  int dead_lettering = 0;
  for (const auto& q : ConvoyTopology().queues) {
    auto arg = [&](const char* k) {
      auto it = q.string_args.find(k);
      return it == q.string_args.end() ? std::string("(none)") : it->second;
    };
    EXPECT_EQ(arg("x-queue-type"), "quorum") << q.name;
    if (!q.string_args.count("x-dead-letter-exchange")) continue;
    ++dead_lettering;
    EXPECT_EQ(arg("x-dead-letter-strategy"), "at-least-once") << q.name;
    EXPECT_EQ(arg("x-overflow"), "reject-publish") << q.name;
  }
  // 9 work queues (conversation.inbound as its partitions), each with 5 retry tiers, and
  // outbound.send's pace tier.
  EXPECT_EQ(dead_lettering, 8 + kConversationInboundPartitions + 9 * 5 + 1);
}

TEST(Topology, EveryLegacyDelayQueueHasADeclaredSuccessor) {
  std::set<std::string> queues;
  for (const auto& q : ConvoyTopology().queues) queues.insert(q.name);
  auto legacy = LegacyDelayQueues();
  EXPECT_EQ(legacy.size(), 7u * 5 + 1) << "topology 1's seven work queues";
  for (const auto& l : legacy) {
    EXPECT_TRUE(queues.count(l.successor)) << l.successor;
    EXPECT_FALSE(queues.count(l.name)) << l.name << " must not be declared any more";
  }
  EXPECT_EQ(legacy.front().name, "conversation.inbound.1s");
  EXPECT_EQ(legacy.front().successor, "conversation.inbound.delay.1s");
}

// One conversation, one partition: conversation.inbound is read in partitions with a single active
// consumer each, fed by a consistent-hash exchange on the conversation's key, and what a partition
// retries or parks goes through conversation.inbound's own delay and parking queues, the delays
// back through the exchange (to the same partition: the key travels in the headers).
TEST(Topology, ConversationInboundIsConsumedInPartitionsOfOneConsumerEach) {
  const Topology& t = ConvoyTopology();
  const PartitionedQueue* p = FindPartitioned(queues::kConversationInbound);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->partitions, kConversationInboundPartitions);
  auto partitions = PartitionNames(queues::kConversationInbound, p->partitions);
  ASSERT_EQ(partitions.size(), static_cast<size_t>(kConversationInboundPartitions));
  EXPECT_EQ(partitions.front(), "conversation.inbound.0");
  EXPECT_EQ(FindPartitioned(queues::kMediaFetch), nullptr);
  for (const auto& name : partitions) {
    EXPECT_EQ(WorkQueueOf(name), queues::kConversationInbound);
    const QueueSpec* spec = nullptr;
    for (const auto& q : t.queues) {
      if (q.name == name) spec = &q;
    }
    ASSERT_NE(spec, nullptr) << name;
    EXPECT_TRUE(spec->bool_args.at("x-single-active-consumer")) << name;
    EXPECT_EQ(spec->string_args.at("x-dead-letter-routing-key"), queues::kConversationInbound);
    int bound = 0;
    for (const auto& b : t.bindings)
      bound += b.queue == name && b.exchange == p->exchange && b.routing_key == "1";
    EXPECT_EQ(bound, 1) << name;
  }
  EXPECT_EQ(WorkQueueOf("conversation.inbound.dlq"), "conversation.inbound.dlq");
  EXPECT_EQ(WorkQueueOf("conversation.inbound.delay.1s"), "conversation.inbound.delay.1s");
  EXPECT_EQ(WorkQueueOf(queues::kConversationEvents), queues::kConversationEvents);
  bool hashed = false;
  for (const auto& e : t.exchanges) {
    if (e.name == p->exchange)
      hashed = e.type == "x-consistent-hash" &&
               e.string_args.at("hash-header") == headers::kConversationKey;
  }
  EXPECT_TRUE(hashed);
  for (const auto& q : t.queues) {
    if (q.name.rfind("conversation.inbound.delay.", 0) == 0) {
      EXPECT_EQ(q.string_args.at("x-dead-letter-exchange"), p->exchange) << q.name;
    }
    EXPECT_NE(q.name, queues::kConversationInbound) << "the single queue is gone";
  }
}

// The partition count is a setting: 1 to 256 partitions, declared and bound to the exchange in
// the order of their numbers (the consistent-hash exchange maps by binding order).
TEST(Topology, PartitionCountIsASettingFromOneTo256) {
  EXPECT_TRUE(ValidateTopologySettings({}).ok());
  EXPECT_TRUE(ValidateTopologySettings({1}).ok());
  EXPECT_TRUE(ValidateTopologySettings({256}).ok());
  for (int bad : {0, -1, 257, 100000}) {
    Status s = ValidateTopologySettings({bad});
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("--conversation_partitions"), std::string::npos) << s.ToString();
  }
  const Topology t = BuildTopology({12});
  ASSERT_EQ(t.partitioned.size(), 1u);
  EXPECT_EQ(t.partitioned.front().partitions, 12);
  std::vector<std::string> bound;
  for (const auto& b : t.bindings) {
    if (b.exchange == exchanges::kConversationInbound && !b.to_exchange) bound.push_back(b.queue);
  }
  EXPECT_EQ(bound, PartitionNames(queues::kConversationInbound, 12));
  int declared = 0;
  for (const auto& q : t.queues)
    declared += WorkQueueOf(q.name) == queues::kConversationInbound &&
                q.name != queues::kConversationInbound;
  EXPECT_EQ(declared, 12);
  EXPECT_EQ(ConvoyTopology().partitioned.front().partitions, kConversationInboundPartitions)
      << "the default is 8";
}

TEST(Topology, QuorumGroupSizeIsASettingOnEveryQuorumQueue) {
  EXPECT_TRUE(ValidateTopologySettings({8, 0}).ok());
  EXPECT_TRUE(ValidateTopologySettings({8, 3}).ok());
  EXPECT_TRUE(ValidateTopologySettings({8, 7}).ok());
  for (int bad : {-1, 8, 100}) {
    Status s = ValidateTopologySettings({8, bad});
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("--quorum_group_size"), std::string::npos) << s.ToString();
  }
  const Topology three = BuildTopology({8, 3});
  EXPECT_EQ(three.quorum_group_size, 3);
  ASSERT_EQ(three.queues.size(), ConvoyTopology().queues.size());
  for (const auto& q : three.queues) {
    ASSERT_EQ(q.string_args.at("x-queue-type"), "quorum") << q.name;
    auto it = q.int_args.find(kQuorumInitialGroupSize);
    ASSERT_NE(it, q.int_args.end()) << q.name;
    EXPECT_EQ(it->second, 3) << q.name;
  }
  EXPECT_NE(DefinitionsJson(three, false).find("\"x-quorum-initial-group-size\": 3"),
            std::string::npos);
  for (const auto& q : ConvoyTopology().queues) {
    EXPECT_EQ(q.int_args.count(kQuorumInitialGroupSize), 0u)
        << q.name << ": the default leaves the size to the broker";
  }
}

TEST(Topology, ReadsTheGroupSizeAQueueHasFromTheBrokersRefusal) {
  // RabbitMQ 3.10.8's three wordings (measured through the management API and AMQP).
  const std::string prefix =
      "queue.declare q: 406 PRECONDITION_FAILED - inequivalent arg 'x-quorum-initial-group-size' "
      "for queue 'q' in vhost '/': ";
  int64_t current = -1;
  EXPECT_TRUE(IsInequivalentGroupSize(
      Status(Code::kRejected, prefix + "received the value '3' of type 'long' but current is none"),
      &current));
  EXPECT_EQ(current, 0);
  EXPECT_TRUE(IsInequivalentGroupSize(
      Status(Code::kRejected,
             prefix + "received none but current is the value '3' of type 'signedint'"),
      &current));
  EXPECT_EQ(current, 3);
  EXPECT_TRUE(IsInequivalentGroupSize(
      Status(Code::kRejected, prefix + "received '1' but current is '5'"), &current));
  EXPECT_EQ(current, 5);
  // Another argument, another refusal, or a wording it does not know: not this case.
  EXPECT_FALSE(IsInequivalentGroupSize(
      Status(Code::kRejected,
             "406 PRECONDITION_FAILED - inequivalent arg 'x-overflow' for queue 'q' in vhost '/': "
             "received none but current is the value 'reject-publish' of type 'longstr'"),
      &current));
  EXPECT_FALSE(
      IsInequivalentGroupSize(Status(Code::kUnavailable, prefix + "current is none"), &current));
  EXPECT_FALSE(IsInequivalentGroupSize(
      Status(Code::kRejected, prefix + "received '1' but current is 'x'"), &current));
  EXPECT_FALSE(
      IsInequivalentGroupSize(Status(Code::kRejected, prefix + "but current is"), &current));
}

}  // namespace
}  // namespace convoy
