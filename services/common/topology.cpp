#include "convoy/topology.h"

#include <algorithm>
#include <sstream>

#include "convoy/crypto.h"

namespace convoy {
namespace {

Topology Build(const TopologySettings& settings) {
  Topology t;
  t.exchanges = {{exchanges::kInbound, "direct"},
                 {exchanges::kEvents, "topic"},
                 {exchanges::kCommands, "direct"},
                 {exchanges::kRetry, "direct"},
                 {exchanges::kDlx, "topic"},
                 // rabbitmq_consistent_hash_exchange (scripts/infra.sh, deploy/): jump consistent
                 // hashing of the header over the bound partitions, weight 1 each.
                 {exchanges::kConversationInbound,
                  "x-consistent-hash",
                  {{"hash-header", headers::kConversationKey}}}};
  t.partitioned = {{queues::kConversationInbound, exchanges::kConversationInbound,
                    settings.conversation_partitions}};
  t.retry_tiers = {{"1s", 1000}, {"5s", 5000}, {"30s", 30000}, {"2m", 120000}, {"10m", 600000}};
  t.work_queues = {
      queues::kConversationInbound, queues::kConversationEvents, queues::kOutboundStatus,
      queues::kOutboundSend,        queues::kMediaFetch,         queues::kMediaUpload,
      queues::kFlowCompleted,       queues::kOutboundDeliver,    queues::kOutboundExtract};
  t.pace_tiers = {{"250ms", 250}};
  t.paced_queues = {queues::kOutboundSend};
  // Every move the broker makes on its own (a TTL expiring in a delay queue, a delivery limit
  // reached) is at-least-once: quorum queues keep a dead-lettered message until its target
  // confirmed it, which needs reject-publish overflow (with drop-head they fall back to
  // at-most-once). A classic queue's dead-lettering is at-most-once: a message that expires while
  // its target is unavailable (at boot, after a restart longer than its TTL) is dropped.
  const std::map<std::string, std::string> at_least_once = {
      {"x-queue-type", "quorum"},
      {"x-dead-letter-strategy", "at-least-once"},
      {"x-overflow", "reject-publish"}};
  for (const auto& q : t.work_queues) {
    // A message redelivered past the limit (a consumer crashing on it) is dead-lettered to the
    // parking queue instead of looping forever.
    auto work_args = at_least_once;
    work_args["x-dead-letter-exchange"] = exchanges::kDlx;
    work_args["x-dead-letter-routing-key"] = q;
    const PartitionedQueue* part = nullptr;
    for (const auto& p : t.partitioned) {
      if (p.queue == q) part = &p;
    }
    if (part) {
      // One consumer at a time per partition (the others wait as standbys), in queue order.
      for (int i = 0; i < part->partitions; ++i) {
        t.queues.push_back({PartitionName(q, i),
                            work_args,
                            {{"x-delivery-limit", 10}},
                            {{"x-single-active-consumer", true}}});
        t.bindings.push_back({part->exchange, PartitionName(q, i), "1"});
      }
    } else {
      t.queues.push_back({q, work_args, {{"x-delivery-limit", 10}}});
    }
    t.queues.push_back({q + ".dlq", {{"x-queue-type", "quorum"}}, {}});
    t.bindings.push_back({exchanges::kDlx, q + ".dlq", q});
    std::vector<RetryTier> tiers = t.retry_tiers;
    if (std::find(t.paced_queues.begin(), t.paced_queues.end(), q) != t.paced_queues.end()) {
      tiers.insert(tiers.end(), t.pace_tiers.begin(), t.pace_tiers.end());
    }
    for (const auto& tier : tiers) {
      // Back to the work queue by name (the default exchange) when the delay is over; to a
      // partitioned one through its exchange, which hashes the message to its conversation's
      // partition again (dead-lettering keeps the headers).
      std::string name = DelayQueueName(q, tier.name);
      auto delay_args = at_least_once;
      delay_args["x-dead-letter-exchange"] = part ? part->exchange : "";
      delay_args["x-dead-letter-routing-key"] = q;
      t.queues.push_back({name, delay_args, {{"x-message-ttl", tier.delay_ms}}});
      t.bindings.push_back({exchanges::kRetry, name, name});
    }
  }
  t.bindings.push_back(
      {exchanges::kInbound, exchanges::kConversationInbound, "message", /*to_exchange=*/true});
  t.bindings.push_back({exchanges::kInbound, queues::kOutboundStatus, "status"});
  // Value-level webhook errors (throughput, pair rate, ...) concern sending: outbound keeps them.
  t.bindings.push_back({exchanges::kInbound, queues::kOutboundStatus, "error"});
  // A user's marketing preference (user_preferences webhooks): outbound refuses marketing
  // templates to a user who stopped them.
  t.bindings.push_back({exchanges::kInbound, queues::kOutboundStatus, "preference"});
  // Meta's news about a business account (account_update): conversation pauses its numbers.
  t.bindings.push_back({exchanges::kInbound, queues::kConversationEvents, "account"});
  // A change to a WABA's message templates (status, quality, category): outbound keeps the catalog.
  t.bindings.push_back({exchanges::kInbound, queues::kOutboundStatus, "template"});
  for (const char* key : {"media.*", "outbound.*", "assignment.*"}) {
    t.bindings.push_back({exchanges::kEvents, queues::kConversationEvents, key});
  }
  t.bindings.push_back({exchanges::kEvents, queues::kFlowCompleted, routing::kFlowCompleted});
  // A run's end by its inactivity timeout goes to the same reader (counted there): unbound, the
  // relay's mandatory publish would come back and hold every outbox row behind it.
  t.bindings.push_back({exchanges::kEvents, queues::kFlowCompleted, routing::kFlowExpired});
  for (const char* q : {queues::kOutboundSend, queues::kMediaFetch, queues::kMediaUpload,
                        queues::kOutboundDeliver, queues::kOutboundExtract}) {
    t.bindings.push_back({exchanges::kCommands, q, q});
  }
  t.quorum_group_size = settings.quorum_group_size;
  if (t.quorum_group_size > 0) {
    for (auto& q : t.queues) {
      auto type = q.string_args.find("x-queue-type");
      if (type != q.string_args.end() && type->second == "quorum") {
        q.int_args[kQuorumInitialGroupSize] = t.quorum_group_size;
      }
    }
  }
  return t;
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + '"';
}

}  // namespace

std::string DelayQueueName(const std::string& queue, const std::string& tier) {
  return queue + ".delay." + tier;
}

std::string PartitionName(const std::string& queue, int index) {
  return queue + "." + std::to_string(index);
}

std::vector<std::string> PartitionNames(const std::string& queue, int count) {
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) out.push_back(PartitionName(queue, i));
  return out;
}

const PartitionedQueue* FindPartitioned(const std::string& work_queue) {
  for (const auto& p : ConvoyTopology().partitioned) {
    if (p.queue == work_queue) return &p;
  }
  return nullptr;
}

std::string WorkQueueOf(const std::string& queue) {
  for (const auto& p : ConvoyTopology().partitioned) {
    const std::string prefix = p.queue + ".";
    if (queue.size() > prefix.size() && queue.compare(0, prefix.size(), prefix) == 0 &&
        queue.find_first_not_of("0123456789", prefix.size()) == std::string::npos) {
      return p.queue;
    }
  }
  return queue;
}

Status ValidateTopologySettings(const TopologySettings& settings) {
  if (settings.conversation_partitions < 1 ||
      settings.conversation_partitions > kMaxConversationPartitions) {
    return Status(Code::kInvalidArgument,
                  "--conversation_partitions must be a whole number from 1 to " +
                      std::to_string(kMaxConversationPartitions) + ", not " +
                      std::to_string(settings.conversation_partitions));
  }
  if (settings.quorum_group_size < 0 || settings.quorum_group_size > kMaxQuorumGroupSize) {
    return Status(Code::kInvalidArgument,
                  "--quorum_group_size must be a whole number from 0 (the broker's default) to " +
                      std::to_string(kMaxQuorumGroupSize) + ", not " +
                      std::to_string(settings.quorum_group_size));
  }
  return Status::Ok();
}

Topology BuildTopology(const TopologySettings& settings) { return Build(settings); }

const Topology& ConvoyTopology() {
  static const Topology* topology = new Topology(Build(TopologySettings{}));
  return *topology;
}

namespace {
size_t TierFor(int64_t delay_ms) {
  const auto& tiers = ConvoyTopology().retry_tiers;
  for (size_t i = 0; i < tiers.size(); ++i) {
    if (tiers[i].delay_ms >= delay_ms) return i;
  }
  return tiers.size() - 1;
}

const RetryTier& RetryTierFor(int attempt, int64_t min_delay_ms) {
  const auto& tiers = ConvoyTopology().retry_tiers;
  size_t i = attempt <= 1 ? 0 : static_cast<size_t>(attempt - 1);
  if (i >= tiers.size()) i = tiers.size() - 1;
  return tiers[std::max(i, TierFor(min_delay_ms))];
}
}  // namespace

std::string RetryRoutingKey(const std::string& queue, int attempt, int64_t min_delay_ms) {
  return DelayQueueName(queue, RetryTierFor(attempt, min_delay_ms).name);
}

int64_t RetryDelayMs(int attempt, int64_t min_delay_ms) {
  return RetryTierFor(attempt, min_delay_ms).delay_ms;
}

namespace {
std::vector<RetryTier> DelayTiers(const std::string& queue) {
  const Topology& t = ConvoyTopology();
  std::vector<RetryTier> tiers = t.retry_tiers;
  if (std::find(t.paced_queues.begin(), t.paced_queues.end(), queue) != t.paced_queues.end()) {
    tiers.insert(tiers.begin(), t.pace_tiers.begin(), t.pace_tiers.end());
  }
  std::sort(tiers.begin(), tiers.end(),
            [](const RetryTier& a, const RetryTier& b) { return a.delay_ms < b.delay_ms; });
  return tiers;
}
}  // namespace

namespace {
RetryTier DelayTierFor(const std::string& queue, int64_t delay_ms) {
  auto tiers = DelayTiers(queue);
  const RetryTier* pick = &tiers.front();
  for (const auto& tier : tiers) {
    if (tier.delay_ms <= delay_ms) pick = &tier;
  }
  return *pick;
}
}  // namespace

std::string DelayRoutingKey(const std::string& queue, int64_t delay_ms) {
  return DelayQueueName(queue, DelayTierFor(queue, delay_ms).name);
}

int64_t DelayTierMs(const std::string& queue, int64_t delay_ms) {
  return DelayTierFor(queue, delay_ms).delay_ms;
}

int64_t ShortestDelayMs(const std::string& queue) { return DelayTiers(queue).front().delay_ms; }

std::vector<LegacyDelayQueue> LegacyDelayQueues() {
  // Topology 1 named its classic delay queues "<queue>.<tier>", with the same tiers.
  // outbound.deliver and outbound.extract came after: they never had classic delay queues.
  const Topology& t = ConvoyTopology();
  std::vector<LegacyDelayQueue> out;
  for (const auto& q : t.work_queues) {
    if (q == queues::kOutboundDeliver || q == queues::kOutboundExtract) continue;
    for (const auto& tier : DelayTiers(q))
      out.push_back({q + "." + tier.name, DelayQueueName(q, tier.name)});
  }
  return out;
}

std::vector<BindingSpec> BindingsOf(const std::string& queue) {
  std::vector<BindingSpec> out;
  for (const auto& b : ConvoyTopology().bindings) {
    if (b.queue == queue && !b.to_exchange) out.push_back(b);
  }
  return out;
}

const std::vector<BrokerGrant>& BrokerGrants() {
  // Publishing to the default exchange is writing "amq.default". Consumers republish retries,
  // delays and parked messages to convoy.retry and convoy.dlx themselves (amqp/consumer.cpp).
  static const std::vector<BrokerGrant>* grants = new std::vector<BrokerGrant>{
      {"ingress", "^$", "^convoy\\.inbound$", "^$"},
      {"conversation", "^$", "^convoy\\.(commands|events|retry|dlx)$",
       "^(conversation\\.(inbound\\.[0-9]+|events)|flow\\.completed)$"},
      {"media", "^$", "^convoy\\.(events|retry|dlx)$", "^media\\.(fetch|upload)$"},
      {"outbound", "^$", "^convoy\\.(events|retry|dlx)$",
       "^outbound\\.(send|status|deliver|extract)$"},
      // convoyctl dlq: reads the parking queues, puts a replayed message back on its work queue
      // (a partitioned one's through its exchange).
      {"ops", "^$", "^(amq\\.default|convoy\\.inbound\\.conversation)$", "\\.dlq$"},
      // KEDA's RabbitMQ trigger: reads the work queues' depth (a passive declare needs no right).
      {"scaler", "^$", "^$", "^$"},
      // convoy-topology --upgrade: declares everything and moves what waits in old queues.
      {"topology", ".*", ".*", ".*"},
  };
  return *grants;
}

const BrokerGrant* FindBrokerGrant(const std::string& part) {
  for (const auto& g : BrokerGrants()) {
    if (g.part == part) return &g;
  }
  return nullptr;
}

std::string BrokerUserName(const std::string& part) { return "convoy-" + part; }
std::string LocalBrokerPassword(const std::string& part) { return BrokerUserName(part) + "-local"; }

namespace {
std::string Sha256Raw(const std::string& data) {
  const std::string hex = Sha256Hex(data);
  std::string raw;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    raw += static_cast<char>(HexDigitValue(hex[i]) * 16 + HexDigitValue(hex[i + 1]));
  }
  return raw;
}

// rabbit_password_hashing_sha256: base64(salt ++ sha256(salt ++ password)), 4 bytes of salt
// (derived from the user name here, so the shipped file is reproducible).
std::string LocalPasswordHash(const std::string& user, const std::string& password) {
  std::string salt = Sha256Raw(user).substr(0, 4);
  return Base64Encode(salt + Sha256Raw(salt + password));
}
}  // namespace

std::string DefinitionsJson(const Topology& t, bool local_users) {
  std::ostringstream o;
  o << "{\n  \"rabbit_version\": \"3.10.8\",\n";
  if (local_users) {
    // Local development only: guest/guest (the management UI) and each part's user with its
    // local password. Production imports this file without users (--production).
    o << "  \"users\": [\n    {\"name\": \"guest\", \"password_hash\": "
         "\"kI3GCrswBLNZQzHJJ95QLoyfAVooYhnvf7jbqiW9BjOYUloe\", "
         "\"hashing_algorithm\": \"rabbit_password_hashing_sha256\", \"tags\": "
         "[\"administrator\"]}";
    for (const auto& g : BrokerGrants()) {
      const std::string user = BrokerUserName(g.part);
      o << ",\n    {\"name\": " << Quote(user)
        << ", \"password_hash\": " << Quote(LocalPasswordHash(user, LocalBrokerPassword(g.part)))
        << ", \"hashing_algorithm\": \"rabbit_password_hashing_sha256\", \"tags\": []}";
    }
    o << "\n  ],\n";
  } else {
    o << "  \"users\": [],\n";
  }
  o << "  \"vhosts\": [{\"name\": \"/\"}],\n";
  if (local_users) {
    o << "  \"permissions\": [\n    {\"user\": \"guest\", \"vhost\": \"/\", \"configure\": \".*\", "
         "\"write\": \".*\", \"read\": \".*\"}";
    for (const auto& g : BrokerGrants()) {
      o << ",\n    {\"user\": " << Quote(BrokerUserName(g.part))
        << ", \"vhost\": \"/\", \"configure\": " << Quote(g.configure)
        << ", \"write\": " << Quote(g.write) << ", \"read\": " << Quote(g.read) << "}";
    }
    o << "\n  ],\n";
  } else {
    o << "  \"permissions\": [],\n";
  }
  o << "  \"exchanges\": [\n";
  for (size_t i = 0; i < t.exchanges.size(); ++i) {
    o << "    {\"name\": " << Quote(t.exchanges[i].name)
      << ", \"vhost\": \"/\", \"type\": " << Quote(t.exchanges[i].type)
      << ", \"durable\": true, \"auto_delete\": false, \"internal\": false, \"arguments\": {";
    bool first = true;
    for (const auto& [k, v] : t.exchanges[i].string_args) {
      o << (first ? "" : ", ") << Quote(k) << ": " << Quote(v);
      first = false;
    }
    o << "}}" << (i + 1 < t.exchanges.size() ? ",\n" : "\n");
  }
  o << "  ],\n  \"queues\": [\n";
  for (size_t i = 0; i < t.queues.size(); ++i) {
    const auto& q = t.queues[i];
    o << "    {\"name\": " << Quote(q.name)
      << ", \"vhost\": \"/\", \"durable\": true, \"auto_delete\": false, \"arguments\": {";
    bool first = true;
    for (const auto& [k, v] : q.string_args) {
      o << (first ? "" : ", ") << Quote(k) << ": " << Quote(v);
      first = false;
    }
    for (const auto& [k, v] : q.int_args) {
      o << (first ? "" : ", ") << Quote(k) << ": " << v;
      first = false;
    }
    for (const auto& [k, v] : q.bool_args) {
      o << (first ? "" : ", ") << Quote(k) << ": " << (v ? "true" : "false");
      first = false;
    }
    o << "}}" << (i + 1 < t.queues.size() ? ",\n" : "\n");
  }
  o << "  ],\n  \"bindings\": [\n";
  for (size_t i = 0; i < t.bindings.size(); ++i) {
    const auto& b = t.bindings[i];
    o << "    {\"source\": " << Quote(b.exchange)
      << ", \"vhost\": \"/\", \"destination\": " << Quote(b.queue)
      << ", \"destination_type\": " << (b.to_exchange ? "\"exchange\"" : "\"queue\"")
      << ", \"routing_key\": " << Quote(b.routing_key) << ", \"arguments\": {}}"
      << (i + 1 < t.bindings.size() ? ",\n" : "\n");
  }
  o << "  ]\n}\n";
  return o.str();
}

}  // namespace convoy
