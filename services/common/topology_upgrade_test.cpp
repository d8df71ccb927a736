// Integration: `convoy-topology --upgrade` against a real RabbitMQ holding a deployment of
// topology 1 (classic delay queues "<queue>.<tier>", work queues without at-least-once
// dead-lettering) with messages waiting everywhere: after the upgrade every message is where it
// would have been, the services' own declaration succeeds, and nothing old is left.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>

#include "convoy/amqp.h"
#include "convoy/amqp_admin.h"
#include "convoy/consumer_group.h"
#include "convoy/topology.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

// Topology 1 as it was declared: the current one less at-least-once dead-lettering, with
// classic delay queues under their old names.
void DeclareTopologyOne(AmqpAdmin& admin) {
  const Topology& t = ConvoyTopology();
  for (const auto& ex : t.exchanges) {
    if (ex.type != "x-consistent-hash") {
      ASSERT_TRUE(admin.DeclareExchange(ex).ok());
    }
  }
  std::map<std::string, std::string> successor_of;
  for (const auto& l : LegacyDelayQueues()) successor_of[l.successor] = l.name;
  ASSERT_TRUE(admin
                  .DeclareQueue({queues::kConversationInbound,
                                 {{"x-queue-type", "quorum"},
                                  {"x-dead-letter-exchange", exchanges::kDlx},
                                  {"x-dead-letter-routing-key", queues::kConversationInbound}},
                                 {{"x-delivery-limit", 10}}})
                  .ok());
  ASSERT_TRUE(admin.Bind({exchanges::kInbound, queues::kConversationInbound, "message"}).ok());
  for (QueueSpec q : t.queues) {
    if (WorkQueueOf(q.name) != q.name) continue;  // a partition: came with topology 3
    // Came with topology 2: outbound.deliver, outbound.extract.
    if (q.name.rfind(queues::kOutboundDeliver, 0) == 0 ||
        q.name.rfind(queues::kOutboundExtract, 0) == 0)
      continue;
    if (successor_of.count(q.name)) {
      q.name = successor_of[q.name];
      q.string_args = {{"x-dead-letter-exchange", ""},
                       {"x-dead-letter-routing-key", q.string_args["x-dead-letter-routing-key"]}};
    } else {
      q.string_args.erase("x-dead-letter-strategy");
      q.string_args.erase("x-overflow");
    }
    ASSERT_TRUE(admin.DeclareQueue(q).ok()) << q.name;
    for (const auto& b : t.bindings) {
      if (b.queue == q.name || (successor_of.count(b.queue) && successor_of[b.queue] == q.name)) {
        ASSERT_TRUE(
            admin.Bind({b.exchange, q.name, b.queue == q.name ? b.routing_key : q.name}).ok());
      }
    }
  }
}

void Put(Publisher& pub, const std::string& queue, const std::string& tag, int n) {
  PublishBatch batch;
  for (int i = 0; i < n; ++i) {
    AmqpMessage m;
    m.exchange = "";
    m.routing_key = queue;
    m.body = "{\"tag\":\"" + tag + std::to_string(i) + "\"}";
    m.headers[headers::kDedupeKey] = tag + std::to_string(i);
    m.headers[headers::kConversationKey] = "pnid:" + std::to_string(i % 7);
    m.int_headers[headers::kAttempt] = 3;
    pub.Publish(std::move(m), batch.Add());
  }
  ASSERT_TRUE(batch.Wait(std::chrono::steady_clock::now() + 30s).ok());
}

struct Fill {
  std::string queue, tag;
  int n;
};

// A broker as topology 1 left it, with messages waiting in the given queues.
void DeployTopologyOne(const AmqpOptions& o, const std::vector<Fill>& fills) {
  {
    AmqpAdmin admin;
    ASSERT_TRUE(admin.Open(o).ok());
    DeclareTopologyOne(admin);
  }
  Publisher pub(o);
  pub.Start();
  ASSERT_TRUE(pub.WaitConnected(20s));
  for (const auto& f : fills) Put(pub, f.queue, f.tag, f.n);
  pub.Stop();
}

std::multiset<std::string> Bodies(const AmqpOptions& o, const std::string& queue) {
  auto taken = TakeMessages(o, queue, 1000);
  EXPECT_TRUE(taken.ok()) << taken.status().ToString();
  std::multiset<std::string> out;
  if (!taken.ok()) return out;
  for (const auto& d : *taken) {
    out.insert(d.body);
    EXPECT_EQ(d.attempt, 3) << "the attempt count travels with the message";
  }
  return out;
}

std::multiset<std::string> Expected(const std::string& tag, int n) {
  std::multiset<std::string> out;
  for (int i = 0; i < n; ++i) out.insert("{\"tag\":\"" + tag + std::to_string(i) + "\"}");
  return out;
}

TEST(TopologyUpgrade, MovesEveryWaitingMessageAndLeavesTheCurrentTopology) {
  test::TestVhost vhost("topology_upgrade");
  AmqpOptions o{vhost.url(), "test-upgrade"};
  o.declare_topology = false;
  DeployTopologyOne(o, {{"outbound.send", "work", 300},      // more than one move batch
                        {"outbound.send.10m", "paced", 20},  // waiting in a legacy delay tier
                        {"conversation.inbound.2m", "retry", 5},
                        {"media.fetch.dlq", "parked", 3}});  // parking queues keep their arguments
  // A service of the new version refuses the old queues, naming the way out.
  Status refused = DeclareConvoyTopology(o);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("convoy-topology --upgrade"), std::string::npos)
      << refused.ToString();

  auto steps = UpgradeTopology(o);
  ASSERT_TRUE(steps.ok()) << steps.status().ToString();
  std::map<std::string, uint64_t> moved;
  for (const auto& s : *steps) moved[s.queue] = s.moved;
  // The work queues were rebuilt; what waited in their legacy delay queues came back with them
  // (early), and the parking queues kept their arguments and their messages.
  EXPECT_EQ(moved["outbound.send"], 320u);
  EXPECT_EQ(moved["conversation.inbound"], 5u);
  EXPECT_EQ(moved.size(), 7u) << "every work queue of topology 1 (outbound.deliver and "
                                 "outbound.extract are simply declared)";

  ASSERT_TRUE(DeclareConvoyTopology(o).ok())
      << "the services' declaration matches after the upgrade";
  AmqpAdmin admin;
  ASSERT_TRUE(admin.Open(o).ok());
  for (const auto& l : LegacyDelayQueues()) {
    auto st = admin.Inspect(l.name);
    ASSERT_TRUE(st.ok());
    EXPECT_FALSE(st->exists) << l.name;
  }
  for (const auto& w : ConvoyTopology().work_queues) {
    auto st = admin.Inspect(w + ".upgrade");
    ASSERT_TRUE(st.ok());
    EXPECT_FALSE(st->exists) << w << ".upgrade";
  }
  auto send = Expected("work", 300);
  for (const auto& b : Expected("paced", 20)) send.insert(b);
  EXPECT_EQ(Bodies(o, "outbound.send"), send);
  EXPECT_EQ(Bodies(o, "conversation.inbound"), Expected("retry", 5));
  EXPECT_EQ(Bodies(o, "media.fetch.dlq"), Expected("parked", 3));

  // Publishing through the exchanges reaches the upgraded work queue (its bindings came back).
  Publisher pub(o);
  pub.Start();
  ASSERT_TRUE(pub.WaitConnected(20s));
  AmqpMessage m;
  m.exchange = exchanges::kCommands;
  m.routing_key = queues::kOutboundSend;
  m.body = "{}";
  EXPECT_TRUE(pub.PublishAndWait(m, 10s).ok());
  auto n = QueueMessageCount(o, queues::kOutboundSend);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1u);
  pub.Stop();

  // Running it again changes nothing.
  auto again = UpgradeTopology(o);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->empty());
}

// x-quorum-initial-group-size is read only when a queue is created, so an upgrade to a group size
// keeps every existing queue (and what waits in it) and reports it, creates what is missing with
// the size, and still rebuilds a work queue that differs in another argument (with the size).
TEST(TopologyUpgrade, AGroupSizeKeepsExistingQueuesAndCreatesNewOnesWithIt) {
  test::TestVhost vhost("topology_group_size");
  AmqpOptions o{vhost.url(), "test-upgrade"};
  o.declare_topology = false;
  auto first = UpgradeTopology(o);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  {
    AmqpAdmin admin;
    ASSERT_TRUE(admin.Open(o).ok());
    // Created anew below; outbound.deliver as an older convoy declared it (without reject-publish).
    ASSERT_TRUE(admin.DeleteQueue("media.upload.dlq", false, false).ok());
    for (auto b : BindingsOf(queues::kOutboundDeliver)) ASSERT_TRUE(admin.Unbind(b).ok());
    ASSERT_TRUE(admin.DeleteQueue(queues::kOutboundDeliver, false, false).ok());
    QueueSpec older = ConvoyTopology().queues.front();
    for (const auto& q : ConvoyTopology().queues) {
      if (q.name == queues::kOutboundDeliver) older = q;
    }
    older.string_args.erase("x-overflow");
    ASSERT_TRUE(admin.DeclareQueue(older).ok());
    for (const auto& b : BindingsOf(queues::kOutboundDeliver)) ASSERT_TRUE(admin.Bind(b).ok());
  }
  {
    Publisher pub(o);
    pub.Start();
    ASSERT_TRUE(pub.WaitConnected(20s));
    Put(pub, queues::kOutboundSend, "work", 40);
    Put(pub, "media.fetch.dlq", "parked", 3);
    Put(pub, queues::kOutboundDeliver, "deliver", 7);
    pub.Stop();
  }

  TopologySettings three;
  three.quorum_group_size = 3;
  auto steps = UpgradeTopology(o, three);
  ASSERT_TRUE(steps.ok()) << steps.status().ToString();
  std::map<std::string, std::string> action;
  for (const auto& st : *steps) action[st.queue] = st.action;
  const Topology t = BuildTopology(three);
  size_t kept = 0;
  for (const auto& q : t.queues) {
    if (q.name == "media.upload.dlq" || q.name == queues::kOutboundDeliver) {
      EXPECT_EQ(action[q.name].find("kept"), std::string::npos) << q.name << ": " << action[q.name];
      continue;
    }
    kept += action[q.name].find("kept with the members it has") == 0;
  }
  EXPECT_EQ(kept, t.queues.size() - 2) << "every queue that existed is kept and reported";
  EXPECT_EQ(action[queues::kOutboundDeliver], "declared anew with the current arguments");

  AmqpAdmin admin;
  ASSERT_TRUE(admin.Open(o).ok());
  for (const auto& q : t.queues) {
    if (q.name != "media.upload.dlq" && q.name != queues::kOutboundDeliver) continue;
    // Created with the size: declaring it without says what it has.
    QueueSpec without = q;
    without.int_args.erase(kQuorumInitialGroupSize);
    int64_t current = 0;
    EXPECT_TRUE(IsInequivalentGroupSize(admin.DeclareQueue(without), &current)) << q.name;
    EXPECT_EQ(current, 3) << q.name;
    EXPECT_TRUE(admin.DeclareQueue(q).ok()) << q.name;
  }
  EXPECT_EQ(Bodies(o, queues::kOutboundSend), Expected("work", 40));
  EXPECT_EQ(Bodies(o, "media.fetch.dlq"), Expected("parked", 3));
  EXPECT_EQ(Bodies(o, queues::kOutboundDeliver), Expected("deliver", 7));

  // Back to the broker's default: the queues created with 3 are kept in turn, nothing rebuilt.
  auto back = UpgradeTopology(o);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  std::set<std::string> reported;
  for (const auto& st : *back) {
    EXPECT_EQ(st.action.find("kept with the members it has (created with initial group size 3"), 0u)
        << st.queue << ": " << st.action;
    reported.insert(st.queue);
  }
  EXPECT_EQ(reported, (std::set<std::string>{"media.upload.dlq", queues::kOutboundDeliver}));
}

// Topology 2: conversation.inbound a single queue, its delay queues dead-lettering to it by name.
void DeclareTopologyTwo(AmqpAdmin& admin) {
  const Topology& t = ConvoyTopology();
  for (const auto& ex : t.exchanges) {
    if (ex.type != "x-consistent-hash") {
      ASSERT_TRUE(admin.DeclareExchange(ex).ok());
    }
  }
  for (QueueSpec q : t.queues) {
    if (WorkQueueOf(q.name) != q.name) continue;
    if (q.name.rfind("conversation.inbound.delay.", 0) == 0)
      q.string_args["x-dead-letter-exchange"] = "";
    ASSERT_TRUE(admin.DeclareQueue(q).ok()) << q.name;
  }
  QueueSpec inbound{queues::kConversationInbound,
                    {{"x-queue-type", "quorum"},
                     {"x-dead-letter-strategy", "at-least-once"},
                     {"x-overflow", "reject-publish"},
                     {"x-dead-letter-exchange", exchanges::kDlx},
                     {"x-dead-letter-routing-key", queues::kConversationInbound}},
                    {{"x-delivery-limit", 10}}};
  ASSERT_TRUE(admin.DeclareQueue(inbound).ok());
  for (const auto& b : t.bindings) {
    if (b.to_exchange || WorkQueueOf(b.queue) != b.queue) continue;
    ASSERT_TRUE(admin.Bind(b).ok()) << b.queue;
  }
  ASSERT_TRUE(admin.Bind({exchanges::kInbound, queues::kConversationInbound, "message"}).ok());
}

AmqpMessage InboundMessage(const std::string& key, int seq) {
  AmqpMessage m;
  m.exchange = exchanges::kInbound;
  m.routing_key = "message";
  m.body = "{\"seq\":" + std::to_string(seq) + "}";
  m.headers[headers::kConversationKey] = key;
  m.headers[headers::kDedupeKey] = key + "/" + std::to_string(seq);
  return m;
}

TEST(TopologyUpgrade, SplitsConversationInboundIntoPartitionsKeepingEachConversationsOrder) {
  test::TestVhost vhost("topology_upgrade_partitions");
  AmqpOptions o{vhost.url(), "test-upgrade"};
  o.declare_topology = false;
  {
    AmqpAdmin admin;
    ASSERT_TRUE(admin.Open(o).ok());
    DeclareTopologyTwo(admin);
  }
  // 40 conversations' messages waiting in the single queue, in order; a retry waiting in a delay
  // queue.
  constexpr int kMessages = 400, kConversations = 40;
  {
    Publisher pub(o);
    pub.Start();
    ASSERT_TRUE(pub.WaitConnected(20s));
    PublishBatch batch;
    for (int i = 0; i < kMessages; ++i)
      pub.Publish(InboundMessage("pnid:" + std::to_string(i % kConversations), i), batch.Add());
    AmqpMessage retry = InboundMessage("pnid:retry", 0);
    retry.exchange = exchanges::kRetry;
    retry.routing_key = "conversation.inbound.delay.2m";
    pub.Publish(retry, batch.Add());
    ASSERT_TRUE(batch.Wait(std::chrono::steady_clock::now() + 30s).ok());
    pub.Stop();
  }
  ASSERT_FALSE(DeclareConvoyTopology(o).ok())
      << "a service of the new version refuses the old delay queues";

  auto steps = UpgradeTopology(o);
  ASSERT_TRUE(steps.ok()) << steps.status().ToString();
  ASSERT_EQ(steps->size(), 1u);
  EXPECT_EQ(steps->front().queue, queues::kConversationInbound);
  EXPECT_EQ(steps->front().moved, static_cast<uint64_t>(kMessages + 1));
  ASSERT_TRUE(DeclareConvoyTopology(o).ok())
      << "the services' declaration matches after the upgrade";
  AmqpAdmin admin;
  ASSERT_TRUE(admin.Open(o).ok());
  auto old = admin.Inspect(queues::kConversationInbound);
  ASSERT_TRUE(old.ok());
  EXPECT_FALSE(old->exists) << "the single queue is gone";

  // Ingress's next message of a conversation lands in that conversation's partition, after the
  // rest.
  {
    Publisher pub(o);
    pub.Start();
    ASSERT_TRUE(pub.WaitConnected(20s));
    for (int c = 0; c < kConversations; ++c) {
      ASSERT_TRUE(
          pub.PublishAndWait(InboundMessage("pnid:" + std::to_string(c), kMessages + c), 10s).ok());
    }
    pub.Stop();
  }
  std::map<std::string, std::string> partition_of;
  std::map<std::string, int> last_seq;
  size_t total = 0, used = 0;
  auto partitions = DiscoverQueues(o, queues::kConversationInbound);
  ASSERT_TRUE(partitions.ok()) << partitions.status().ToString();
  EXPECT_EQ(partitions->size(), static_cast<size_t>(kConversationInboundPartitions));
  for (const auto& partition : *partitions) {
    auto taken = TakeMessages(o, partition, 10000);
    ASSERT_TRUE(taken.ok()) << taken.status().ToString();
    total += taken->size();
    used += taken->empty() ? 0 : 1;
    for (const auto& d : *taken) {
      const std::string key = d.Header(headers::kConversationKey);
      auto it = partition_of.emplace(key, partition).first;
      EXPECT_EQ(it->second, partition) << key << " is in two partitions";
      const int seq = std::atoi(d.body.substr(d.body.find(':') + 1).c_str());
      if (last_seq.count(key)) {
        EXPECT_GT(seq, last_seq[key]) << key << " out of order in " << partition;
      }
      last_seq[key] = seq;
    }
  }
  EXPECT_EQ(total, static_cast<size_t>(kMessages + 1 + kConversations));
  EXPECT_GT(used, 1u) << "conversations spread over the partitions";

  auto again = UpgradeTopology(o);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->empty());
}

TEST(TopologyUpgrade, RefusesWhileConsumersAreAttachedAndLosesNothing) {
  test::TestVhost vhost("topology_upgrade_busy");
  AmqpOptions o{vhost.url(), "test-upgrade"};
  o.declare_topology = false;
  DeployTopologyOne(o, {{"media.fetch", "waiting", 10}});
  // A consumer of the old version still running (it never acks: the messages stay its own).
  ConsumerOptions co;
  co.amqp = o;
  co.queue = "conversation.inbound";
  Consumer consumer(
      co, [](const Delivery&) { return Disposition::Ack(); }, nullptr);
  consumer.Start();
  ASSERT_TRUE(test::WaitUntil([&] { return consumer.connected(); }, 20s));
  auto steps = UpgradeTopology(o);
  ASSERT_FALSE(steps.ok());
  EXPECT_NE(steps.status().message().find("consumer"), std::string::npos)
      << steps.status().ToString();
  consumer.Stop();
  // Stopped: the upgrade goes through, and what waited is all there.
  steps = UpgradeTopology(o);
  ASSERT_TRUE(steps.ok()) << steps.status().ToString();
  EXPECT_EQ(Bodies(o, "media.fetch"), Expected("waiting", 10));
}

// The claim re-partitioning rests on, checked on the broker: the x-consistent-hash exchange maps a
// key by the order of its bindings (jump consistent hashing over the bound queues), not by the
// queues' names or the exchange's. Two exchanges bound to the same queues in the same order agree,
// however they got there (all at once; 8 and then 4 more; 16 and then the last 4 unbound); bound in
// another order, they do not.
TEST(TopologyUpgrade, ConsistentHashMapsByBindingOrder) {
  test::TestVhost vhost("topology_chash_order");
  AmqpOptions o{vhost.url(), "test-upgrade"};
  o.declare_topology = false;
  AmqpAdmin admin;
  ASSERT_TRUE(admin.Open(o).ok());
  const std::vector<std::string> names = {"at-once", "appended", "shrunk", "reversed"};
  for (const auto& x : names) {
    ASSERT_TRUE(
        admin
            .DeclareExchange({x, "x-consistent-hash", {{"hash-header", headers::kConversationKey}}})
            .ok());
  }
  auto queue = [](const std::string& x, int i) { return x + ".q" + std::to_string(i); };
  for (const auto& x : names) {
    for (int i = 0; i < 16; ++i) ASSERT_TRUE(admin.DeclareQueue({queue(x, i), {}, {}}).ok());
  }
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(admin.Bind({"at-once", queue("at-once", i), "1"}).ok());
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(admin.Bind({"appended", queue("appended", i), "1"}).ok());
  for (int i = 8; i < 12; ++i)
    ASSERT_TRUE(admin.Bind({"appended", queue("appended", i), "1"}).ok());
  for (int i = 0; i < 8; ++i)
    ASSERT_TRUE(admin.Bind({"appended", queue("appended", i), "1"}).ok())
        << "a binding made again changes nothing";
  for (int i = 0; i < 16; ++i) ASSERT_TRUE(admin.Bind({"shrunk", queue("shrunk", i), "1"}).ok());
  for (int i = 15; i >= 12; --i)
    ASSERT_TRUE(admin.Unbind({"shrunk", queue("shrunk", i), "1"}).ok());
  for (int i = 11; i >= 0; --i)
    ASSERT_TRUE(admin.Bind({"reversed", queue("reversed", i), "1"}).ok());

  constexpr int kKeys = 300;
  {
    Publisher pub(o);
    pub.Start();
    ASSERT_TRUE(pub.WaitConnected(20s));
    PublishBatch batch;
    for (const auto& x : names) {
      for (int k = 0; k < kKeys; ++k) {
        AmqpMessage m;
        m.exchange = x;
        m.routing_key = "";
        m.body = std::to_string(k);
        m.headers[headers::kConversationKey] = "pnid:" + std::to_string(k);
        pub.Publish(std::move(m), batch.Add());
      }
    }
    ASSERT_TRUE(batch.Wait(std::chrono::steady_clock::now() + 30s).ok());
    pub.Stop();
  }
  std::map<std::string, std::map<int, int>> bucket;  // exchange -> key -> queue index
  for (const auto& x : names) {
    for (int i = 0; i < 16; ++i) {
      auto taken = TakeMessages(o, queue(x, i), kKeys);
      ASSERT_TRUE(taken.ok()) << taken.status().ToString();
      for (const auto& d : *taken) bucket[x][std::atoi(d.body.c_str())] = i;
    }
    ASSERT_EQ(bucket[x].size(), static_cast<size_t>(kKeys)) << x;
  }
  std::set<int> used;
  for (const auto& [k, i] : bucket["at-once"]) used.insert(i);
  EXPECT_EQ(used.size(), 12u) << "every bound queue takes keys";
  EXPECT_EQ(bucket["appended"], bucket["at-once"]);
  EXPECT_EQ(bucket["shrunk"], bucket["at-once"]);
  EXPECT_NE(bucket["reversed"], bucket["at-once"])
      << "the order of the bindings decides, not the names";
}

// Whatever is in a queue, counted (0 when it does not exist).
uint32_t Ready(AmqpAdmin& admin, const std::string& queue) {
  auto st = admin.Inspect(queue);
  EXPECT_TRUE(st.ok()) << st.status().ToString();
  return st.ok() && st->exists ? st->messages : 0;
}

// What re-partitioning need not rely on but may: a quorum queue's at-least-once dead-lettering
// keeps a message that expires while its dead-letter exchange routes nowhere, and delivers it once
// a queue is bound (RabbitMQ's dead-letter worker tries again every
// dead_letter_worker_publisher_confirm_timeout: 5 s in deploy/rabbitmq/advanced.config).
TEST(TopologyUpgrade, AtLeastOnceDeadLetteringKeepsWhatHasNoRoute) {
  test::TestVhost vhost("topology_dlx_no_route");
  AmqpOptions o{vhost.url(), "test-upgrade"};
  o.declare_topology = false;
  AmqpAdmin admin;
  ASSERT_TRUE(admin.Open(o).ok());
  ASSERT_TRUE(
      admin
          .DeclareExchange(
              {"nowhere", "x-consistent-hash", {{"hash-header", headers::kConversationKey}}})
          .ok());
  ASSERT_TRUE(admin
                  .DeclareQueue({"waiting",
                                 {{"x-queue-type", "quorum"},
                                  {"x-dead-letter-strategy", "at-least-once"},
                                  {"x-overflow", "reject-publish"},
                                  {"x-dead-letter-exchange", "nowhere"}},
                                 {{"x-message-ttl", 100}}})
                  .ok());
  ASSERT_TRUE(admin.DeclareQueue({"target", {{"x-queue-type", "quorum"}}, {}}).ok());
  {
    Publisher pub(o);
    pub.Start();
    ASSERT_TRUE(pub.WaitConnected(20s));
    AmqpMessage m = InboundMessage("pnid:1", 1);
    m.exchange = "";
    m.routing_key = "waiting";
    ASSERT_TRUE(pub.PublishAndWait(m, 10s).ok());
    pub.Stop();
  }
  ASSERT_TRUE(test::WaitUntil([&] { return Ready(admin, "waiting") == 0; }, 10s))
      << "expired, with no route";
  ASSERT_EQ(Ready(admin, "target"), 0u);
  ASSERT_TRUE(admin.Bind({"nowhere", "target", "1"}).ok());
  EXPECT_TRUE(test::WaitUntil([&] { return Ready(admin, "target") == 1; }, 30s))
      << "kept and delivered once bound";
}

constexpr int kConversations = 200, kPerConversation = 5;

std::string ConversationKey(int c) { return "pnid:" + std::to_string(c); }

// 200 conversations' 5 messages each, published as ingress does (interleaved), seq = round * 1000 +
// c.
void PublishConversations(const AmqpOptions& o, int round) {
  Publisher pub(o);
  pub.Start();
  ASSERT_TRUE(pub.WaitConnected(20s));
  PublishBatch batch;
  for (int i = 0; i < kPerConversation; ++i) {
    for (int c = 0; c < kConversations; ++c) {
      pub.Publish(InboundMessage(ConversationKey(c), (round * kPerConversation + i) * 1000 + c),
                  batch.Add());
    }
  }
  ASSERT_TRUE(batch.Wait(std::chrono::steady_clock::now() + 60s).ok());
  pub.Stop();
}

// Retries waiting in conversation.inbound's delay queues: `n` in `tier`, of conversations of their
// own.
void PublishRetries(const AmqpOptions& o, const std::string& tier, const std::string& tag, int n) {
  Publisher pub(o);
  pub.Start();
  ASSERT_TRUE(pub.WaitConnected(20s));
  PublishBatch batch;
  for (int i = 0; i < n; ++i) {
    AmqpMessage m = InboundMessage("pnid:" + tag + std::to_string(i), 0);
    m.exchange = exchanges::kRetry;
    m.routing_key = DelayQueueName(queues::kConversationInbound, tier);
    pub.Publish(std::move(m), batch.Add());
  }
  ASSERT_TRUE(batch.Wait(std::chrono::steady_clock::now() + 30s).ok());
  pub.Stop();
}

// Takes every message of conversation.inbound's partitions (there must be `partitions` of them) and
// checks each of them is there exactly once, every conversation's in one partition, in order; a
// message of each conversation published after the upgrade goes to that partition, last.
void ExpectEveryConversationInOnePartitionInOrder(const AmqpOptions& o, int partitions, int rounds,
                                                  int retries) {
  {
    Publisher pub(o);
    pub.Start();
    ASSERT_TRUE(pub.WaitConnected(20s));
    for (int c = 0; c < kConversations; ++c) {
      ASSERT_TRUE(pub.PublishAndWait(InboundMessage(ConversationKey(c), 999999000 + c), 10s).ok())
          << "ingress publishes again after the upgrade";
    }
    pub.Stop();
  }
  auto found = DiscoverQueues(o, queues::kConversationInbound);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_EQ(found->size(), static_cast<size_t>(partitions));
  std::map<std::string, std::string> partition_of;
  std::map<std::string, std::vector<int>> seqs;
  size_t used = 0;
  for (const auto& partition : *found) {
    auto taken = TakeMessages(o, partition, 100000);
    ASSERT_TRUE(taken.ok()) << taken.status().ToString();
    used += taken->empty() ? 0 : 1;
    for (const auto& d : *taken) {
      const std::string key = d.Header(headers::kConversationKey);
      auto it = partition_of.emplace(key, partition).first;
      EXPECT_EQ(it->second, partition) << key << " is in two partitions";
      seqs[key].push_back(std::atoi(d.body.substr(d.body.find(':') + 1).c_str()));
    }
  }
  EXPECT_GT(used, static_cast<size_t>(partitions / 2))
      << "conversations spread over the partitions";
  int retried = 0;
  for (const auto& [key, got] : seqs) retried += key.find("retry") != std::string::npos ? 1 : 0;
  EXPECT_EQ(retried, retries) << "every retry that came back from a delay queue is there once";
  for (int c = 0; c < kConversations; ++c) {
    std::vector<int> want;
    for (int i = 0; i < rounds * kPerConversation; ++i) want.push_back(i * 1000 + c);
    want.push_back(999999000 + c);
    EXPECT_EQ(seqs[ConversationKey(c)], want)
        << ConversationKey(c) << " lost, duplicated or out of order";
  }
}

TEST(TopologyUpgrade, RepartitionsKeepingEveryConversationInOrderInOnePartition) {
  test::TestVhost vhost("topology_repartition");
  AmqpOptions o{vhost.url(), "test-upgrade"};
  o.declare_topology = false;
  ASSERT_TRUE(DeclareConvoyTopology(o).ok()) << "the default: 8 partitions";
  {
    auto found = DiscoverQueues(o, queues::kConversationInbound);
    ASSERT_TRUE(found.ok()) << found.status().ToString();
    EXPECT_EQ(found->size(), 8u);
  }
  // 200 conversations x 5 messages over the 8 partitions; retries waiting in a long delay queue
  // (they stay there) and in the 1 s one (they come back through the exchange while it changes).
  PublishConversations(o, 0);
  PublishRetries(o, "2m", "waiting", 7);
  PublishRetries(o, "1s", "retry", 20);

  EXPECT_EQ(UpgradeTopology(o, {0}).status().code(), Code::kInvalidArgument);
  auto steps = UpgradeTopology(o, {12});
  ASSERT_TRUE(steps.ok()) << steps.status().ToString();
  ASSERT_EQ(steps->size(), 1u);
  EXPECT_EQ(steps->front().queue, queues::kConversationInbound);
  EXPECT_GE(steps->front().moved, static_cast<uint64_t>(kConversations * kPerConversation));
  AmqpAdmin admin;
  ASSERT_TRUE(admin.Open(o).ok());
  EXPECT_EQ(Ready(admin, DelayQueueName(queues::kConversationInbound, "2m")), 7u)
      << "the long delay waits on";
  ASSERT_TRUE(test::WaitUntil(
      [&] { return Ready(admin, DelayQueueName(queues::kConversationInbound, "1s")) == 0; }, 30s));
  ExpectEveryConversationInOnePartitionInOrder(o, 12, 1, 20);
  auto again = UpgradeTopology(o, {12});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->empty()) << "running it again changes nothing";

  // 12 -> 4: the extra partitions are emptied into the others and deleted.
  PublishConversations(o, 0);
  PublishRetries(o, "1s", "retry", 20);
  steps = UpgradeTopology(o, {4});
  ASSERT_TRUE(steps.ok()) << steps.status().ToString();
  ASSERT_EQ(steps->size(), 1u);
  for (int i = 4; i < 12; ++i) {
    auto st = admin.Inspect(PartitionName(queues::kConversationInbound, i));
    ASSERT_TRUE(st.ok());
    EXPECT_FALSE(st->exists) << i;
  }
  ASSERT_TRUE(test::WaitUntil(
      [&] { return Ready(admin, DelayQueueName(queues::kConversationInbound, "1s")) == 0; }, 30s));
  ExpectEveryConversationInOnePartitionInOrder(o, 4, 1, 20);
  auto router = admin.ExchangeExists(std::string(exchanges::kConversationInbound) + ".upgrade.4");
  ASSERT_TRUE(router.ok());
  EXPECT_FALSE(*router) << "nothing of the upgrade is left";
  EXPECT_EQ(Ready(admin, DelayQueueName(queues::kConversationInbound, "2m")), 7u);
}

// An upgrade that stopped half-way (the state a run leaves when it is stopped there, made by hand)
// is finished by running it again: from the middle of moving partitions into staging queues (8 ->
// 12), and from after it (12 -> 4), where a run for another count refuses.
TEST(TopologyUpgrade, RepartitioningGoesOnWhereAnInterruptedRunStopped) {
  test::TestVhost vhost("topology_repartition_rerun");
  AmqpOptions o{vhost.url(), "test-upgrade"};
  o.declare_topology = false;
  ASSERT_TRUE(DeclareConvoyTopology(o).ok());
  PublishConversations(o, 0);
  const std::string q = queues::kConversationInbound, x = exchanges::kConversationInbound;
  auto staging = [&](int i) { return PartitionName(q, i) + ".upgrade"; };
  AmqpAdmin admin;
  ASSERT_TRUE(admin.Open(o).ok());
  // 8 -> 12, stopped while moving the partitions into their staging queues: ingress cut off, the
  // new partitions bound, four partitions moved.
  ASSERT_TRUE(admin.Unbind({exchanges::kInbound, x, "message", /*to_exchange=*/true}).ok());
  for (int i = 0; i < 12; ++i)
    ASSERT_TRUE(admin.DeclareQueue({staging(i), {{"x-queue-type", "quorum"}}, {}}).ok());
  for (const auto& spec : BuildTopology({12}).queues) {
    if (WorkQueueOf(spec.name) == q && spec.name != q) {
      ASSERT_TRUE(admin.DeclareQueue(spec).ok());
    }
  }
  for (int i = 8; i < 12; ++i) ASSERT_TRUE(admin.Bind({x, PartitionName(q, i), "1"}).ok());
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(admin.MoveThrough(PartitionName(q, i), "", staging(i)).ok());
  auto steps = UpgradeTopology(o, {12});
  ASSERT_TRUE(steps.ok()) << steps.status().ToString();
  ExpectEveryConversationInOnePartitionInOrder(o, 12, 1, 0);

  // 12 -> 4, stopped once every partition was moved into its staging queue and the router declared.
  PublishConversations(o, 0);
  ASSERT_TRUE(admin.Unbind({exchanges::kInbound, x, "message", /*to_exchange=*/true}).ok());
  for (int i = 0; i < 12; ++i)
    ASSERT_TRUE(admin.DeclareQueue({staging(i), {{"x-queue-type", "quorum"}}, {}}).ok());
  for (int i = 11; i >= 4; --i) ASSERT_TRUE(admin.Unbind({x, PartitionName(q, i), "1"}).ok());
  for (int i = 0; i < 12; ++i)
    ASSERT_TRUE(admin.MoveThrough(PartitionName(q, i), "", staging(i)).ok());
  ASSERT_TRUE(
      admin
          .DeclareExchange(
              {x + ".upgrade.4", "x-consistent-hash", {{"hash-header", headers::kConversationKey}}})
          .ok());
  auto other = UpgradeTopology(o, {8});
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("--conversation_partitions=4"), std::string::npos)
      << other.status().ToString();
  steps = UpgradeTopology(o, {4});
  ASSERT_TRUE(steps.ok()) << steps.status().ToString();
  ExpectEveryConversationInOnePartitionInOrder(o, 4, 1, 0);
  for (int i = 0; i < 12; ++i) {
    auto st = admin.Inspect(staging(i));
    ASSERT_TRUE(st.ok());
    EXPECT_FALSE(st->exists) << staging(i);
  }
}

// Consumers read the partitions the broker has, whatever this build's default: here 3 of them.
TEST(TopologyUpgrade, ConsumersReadThePartitionsOnTheBroker) {
  test::TestVhost vhost("topology_repartition_consumers");
  AmqpOptions o{vhost.url(), "test-upgrade"};
  o.declare_topology = false;
  ASSERT_TRUE(DeclareConvoyTopology(o).ok());
  {
    AmqpAdmin admin;
    ASSERT_TRUE(admin.Open(o).ok());
    for (int i = kConversationInboundPartitions - 1; i >= 3; --i) {
      ASSERT_TRUE(
          admin.DeleteQueue(PartitionName(queues::kConversationInbound, i), false, false).ok());
    }
  }
  PublishConversations(o, 0);
  Publisher republisher(o);
  republisher.Start();
  ASSERT_TRUE(republisher.WaitConnected(20s));
  std::mutex mu;
  std::map<std::string, std::set<std::string>>
      queues_of;  // conversation -> partitions it came from
  std::atomic<int> got{0};
  {
    ConsumerGroup group(republisher);
    ConsumerOptions co;
    co.amqp = o;
    co.queue = queues::kConversationInbound;
    ASSERT_TRUE(group
                    .Add(co, 2,
                         [&]() -> Result<DeliveryHandler> {
                           return DeliveryHandler([&](const Delivery& d) {
                             std::lock_guard<std::mutex> lock(mu);
                             queues_of[d.Header(headers::kConversationKey)].insert(d.queue);
                             ++got;
                             return Disposition::Ack();
                           });
                         })
                    .ok());
    group.Start();
    ASSERT_TRUE(
        test::WaitUntil([&] { return got.load() == kConversations * kPerConversation; }, 60s))
        << got.load();
    group.Stop();
  }
  republisher.Stop();
  std::set<std::string> partitions;
  for (const auto& [key, qs] : queues_of) {
    EXPECT_EQ(qs.size(), 1u) << key;
    partitions.insert(qs.begin(), qs.end());
  }
  EXPECT_EQ(partitions, (std::set<std::string>{"conversation.inbound.0", "conversation.inbound.1",
                                               "conversation.inbound.2"}));
}

}  // namespace
}  // namespace convoy
