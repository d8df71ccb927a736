#pragma once
// The broker topology (docs/design.md), as plain data, in one place. `convoy-topology --upgrade`
// declares it (services do only with --declare_topology: their users may not configure);
// `convoy-topology` renders the same data as the RabbitMQ definitions file shipped in
// deploy/rabbitmq/ (a unit test keeps the two identical).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "convoy/status.h"

namespace convoy {

namespace exchanges {
constexpr const char* kInbound = "convoy.inbound";
constexpr const char* kEvents = "convoy.events";
constexpr const char* kCommands = "convoy.commands";
constexpr const char* kRetry = "convoy.retry";
constexpr const char* kDlx = "convoy.dlx";
// Consistent hash over the x-conversation-key header: one conversation, one partition of
// conversation.inbound (bound from convoy.inbound with "message").
constexpr const char* kConversationInbound = "convoy.inbound.conversation";
}  // namespace exchanges

namespace queues {
constexpr const char* kConversationInbound = "conversation.inbound";
constexpr const char* kConversationEvents = "conversation.events";
constexpr const char* kOutboundStatus = "outbound.status";
constexpr const char* kOutboundSend = "outbound.send";
constexpr const char* kMediaFetch = "media.fetch";
constexpr const char* kMediaUpload = "media.upload";
// Results for the business's sinks (signed webhooks, Shopify): outbound.
constexpr const char* kOutboundDeliver = "outbound.deliver";
// A flow's extractor (an AI endpoint) asked for the fields an answer's rules could not find:
// outbound.
constexpr const char* kOutboundExtract = "outbound.extract";
// Finished flow runs (a listing, a checklist) for whatever delivers them to the business, and runs
// ended by their inactivity timeout (routing key flow.expired): conversation counts both.
constexpr const char* kFlowCompleted = "flow.completed";
}  // namespace queues

// Routing keys on convoy.events that are not also a queue's name.
namespace routing {
constexpr const char* kFlowCompleted = "flow.completed";
// A run ended by its inactivity timeout: queued in flow.completed beside the completed ones.
constexpr const char* kFlowExpired = "flow.expired";
}  // namespace routing

// Headers every message carries (docs/design.md, "What crosses the broker").
namespace headers {
constexpr const char* kDedupeKey = "x-dedupe-key";
constexpr const char* kCorrelationId = "x-correlation-id";
constexpr const char* kConversationKey = "x-conversation-key";
constexpr const char* kReceivedAt = "x-received-at";
constexpr const char* kAttempt = "x-attempt";
constexpr const char* kDeathReason = "x-death-reason";
constexpr const char* kOriginalQueue = "x-original-queue";
// When a message was first published (ms since the epoch; the publisher stamps one that has none)
// and when it went back into its work queue since (a retry's or delay's tier ending, a replay from
// the parking queue): the later of the two is when it began to wait where it is (queue_waits.h).
constexpr const char* kPublishedAt = "x-published-at";
constexpr const char* kRequeuedAt = "x-requeued-at";
}  // namespace headers

struct ExchangeSpec {
  std::string name, type;
  std::map<std::string, std::string> string_args = {};
};

struct QueueSpec {
  std::string name;
  std::map<std::string, std::string> string_args;
  std::map<std::string, int64_t> int_args;
  std::map<std::string, bool> bool_args = {};
};

struct BindingSpec {
  std::string exchange, queue, routing_key;
  bool to_exchange = false;  // `queue` names an exchange (an exchange-to-exchange binding)
};

// A work queue consumed in partitions, so that what one conversation sends is consumed one at a
// time in order (docs/design.md) while conversations spread over consumers and replicas: queues
// "<queue>.<i>" (i < partitions), each a quorum queue with a single active consumer, bound with
// weight 1 to a consistent-hash exchange on the x-conversation-key header, in the order of i (the
// exchange hashes over its bindings in the order they were made). The work queue's name stays the
// name of its delay queues (which dead-letter back through the exchange: a retry returns to its
// conversation's partition) and of its parking queue "<queue>.dlq".
//
// The broker is the authority on how many partitions there are: consumers find those that exist
// there when they connect (amqp.h DiscoverQueues), so a service never disagrees with the broker.
// `partitions` here is what the topology declares (TopologySettings).
struct PartitionedQueue {
  std::string queue, exchange;
  int partitions = 1;
};

struct RetryTier {
  std::string name;  // "1s", "5s", ... : the delay queue is "<queue>.<name>"
  int64_t delay_ms;
};

struct Topology {
  std::vector<ExchangeSpec> exchanges;
  std::vector<QueueSpec> queues;
  std::vector<BindingSpec> bindings;
  std::vector<RetryTier> retry_tiers;
  std::vector<std::string> work_queues;  // queues that have retry tiers and a .dlq
  // Short delay queues for waits that are not failures (a rate limit's token), on the queues
  // whose consumers pace: a wait comes back in steps no longer than itself.
  std::vector<RetryTier> pace_tiers;
  std::vector<std::string> paced_queues;
  std::vector<PartitionedQueue> partitioned;
  // x-quorum-initial-group-size of every quorum queue (TopologySettings), 0 for the broker's
  // default.
  int quorum_group_size = 0;
};

// The topology setting: how many partitions conversation.inbound has, by default and at most.
// `convoy-topology --conversation_partitions=N` chooses it; `convoy-topology --upgrade` with
// another N than the broker has re-partitions in place, losing nothing and keeping each
// conversation's order (run it with the consumers stopped; README, "Upgrading the broker
// topology"). Services started with --declare_topology (tests, a developer's broker) declare the
// default.
constexpr int kConversationInboundPartitions = 8;
constexpr int kMaxConversationPartitions = 256;

// The topology setting: how many members (Raft replicas) each quorum queue is created with, the
// x-quorum-initial-group-size argument: the cluster's node count in production (3), so a queue
// survives the loss of any one node. 0 leaves it out (the broker's default). It is read only when
// a queue is created: `convoy-topology --upgrade` keeps an existing queue with the members it has
// (`rabbitmq-queues grow` adds members; README, "Upgrading the broker topology").
constexpr int kMaxQuorumGroupSize = 7;
constexpr const char* kQuorumInitialGroupSize = "x-quorum-initial-group-size";

struct TopologySettings {
  int conversation_partitions = kConversationInboundPartitions;
  int quorum_group_size = 0;
};
// kInvalidArgument naming the flag unless 1 <= conversation_partitions <= 256 and
// 0 <= quorum_group_size <= 7.
Status ValidateTopologySettings(const TopologySettings& settings);
// The topology with these settings (valid ones: ValidateTopologySettings).
Topology BuildTopology(const TopologySettings& settings);
// The topology with the default settings.
const Topology& ConvoyTopology();

// The delay queue of a work queue's tier: "<queue>.delay.<tier>" (quorum, at-least-once
// dead-lettering back to the work queue). Also its routing key on convoy.retry.
std::string DelayQueueName(const std::string& queue, const std::string& tier);

// The partition of a work queue: "<queue>.<index>".
std::string PartitionName(const std::string& queue, int index);
// Partitions 0 .. count-1 of a work queue.
std::vector<std::string> PartitionNames(const std::string& queue, int count);
// The work queue a queue belongs to: the partitioned work queue of a partition, else the queue.
// Retries, delays and parked messages of a partition go through its work queue's delay queues
// and parking queue.
std::string WorkQueueOf(const std::string& queue);
// The partitioned work queue of this name (its exchange; the declared partition count), or null.
const PartitionedQueue* FindPartitioned(const std::string& work_queue);

// Topology 1 (convoy before at-least-once delay queues) had classic delay queues named
// "<queue>.<tier>"; `convoy-topology --upgrade` moves what waits in them to their successors
// and deletes them.
struct LegacyDelayQueue {
  std::string name, successor;
};
std::vector<LegacyDelayQueue> LegacyDelayQueues();
// The bindings that deliver to a queue.
std::vector<BindingSpec> BindingsOf(const std::string& queue);

// The retry queue for a work queue after `attempt` failures (attempt >= 1): tiers grow, the
// last repeats; never a tier shorter than min_delay_ms (while one is long enough).
std::string RetryRoutingKey(const std::string& queue, int attempt, int64_t min_delay_ms = 0);
// How long that retry waits (the delay of the tier RetryRoutingKey picks).
int64_t RetryDelayMs(int attempt, int64_t min_delay_ms = 0);
// The delay queue for a wait of delay_ms: the longest of the queue's tiers (pace and retry) not
// longer than the wait, so the message is back no later than asked and the consumer waits the
// rest (or delays again); the shortest tier when the wait is shorter than every tier.
std::string DelayRoutingKey(const std::string& queue, int64_t delay_ms);
// How long that delay queue holds a message (the delay of the tier DelayRoutingKey picks).
int64_t DelayTierMs(const std::string& queue, int64_t delay_ms);
// The shortest delay queue a message of this queue can wait in.
int64_t ShortestDelayMs(const std::string& queue);

// What one part of convoy may do on the broker: RabbitMQ's three permission patterns (regular
// expressions over exchange and queue names). Every part has a user of its own with exactly
// these; none may configure (declare, bind, delete) except the topology step, and none but the
// topology step and the operators' tool reads a queue it does not consume.
struct BrokerGrant {
  std::string part;  // ingress, conversation, media, outbound, ops (convoyctl dlq), topology
  std::string configure, write, read;
};
const std::vector<BrokerGrant>& BrokerGrants();
const BrokerGrant* FindBrokerGrant(const std::string& part);
// The broker user of a part: "convoy-<part>".
std::string BrokerUserName(const std::string& part);
// The local development password of a part's user (deploy/rabbitmq/definitions.json, run.sh,
// compose): "<user>-local". Production users get generated secrets (the Topology Operator).
std::string LocalBrokerPassword(const std::string& part);

// A RabbitMQ definitions document (vhost "/") for boot-time import. With local_users: the guest
// administrator and every part's user with its local password (a developer's broker and
// compose); without (production): no user at all, they come from the Topology Operator.
std::string DefinitionsJson(const Topology& topology, bool local_users = true);

}  // namespace convoy
