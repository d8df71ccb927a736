// Integration: `convoy-topology --upgrade` against a real RabbitMQ holding a deployment of
// topology 1 (classic delay queues "<queue>.<tier>", work queues without at-least-once
// dead-lettering) with messages waiting everywhere: after the upgrade every message is where it
// would have been, the services' own declaration succeeds, and nothing old is left.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "convoy/amqp.h"
#include "convoy/amqp_admin.h"
#include "convoy/topology.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

// Topology 1 as it was declared: the current one less at-least-once dead-lettering, with
// classic delay queues under their old names.
void DeclareTopologyOne(AmqpAdmin& admin) {
  const Topology& t = ConvoyTopology();
  for (const auto& ex : t.exchanges) ASSERT_TRUE(admin.DeclareExchange(ex).ok());
  std::map<std::string, std::string> successor_of;
  for (const auto& l : LegacyDelayQueues()) successor_of[l.successor] = l.name;
  for (QueueSpec q : t.queues) {
    // Came with topology 2: outbound.deliver, outbound.extract.
    if (q.name.rfind(queues::kOutboundDeliver, 0) == 0 || q.name.rfind(queues::kOutboundExtract, 0) == 0) continue;
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
        ASSERT_TRUE(admin.Bind({b.exchange, q.name, b.queue == q.name ? b.routing_key : q.name}).ok());
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
  DeployTopologyOne(o, {{"outbound.send", "work", 300},          // more than one move batch
                        {"outbound.send.10m", "paced", 20},      // waiting in a legacy delay tier
                        {"conversation.inbound.2m", "retry", 5},
                        {"media.fetch.dlq", "parked", 3}});      // parking queues keep their arguments
  // A service of the new version refuses the old queues, naming the way out.
  Status refused = DeclareConvoyTopology(o);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("convoy-topology --upgrade"), std::string::npos) << refused.ToString();

  auto steps = UpgradeTopology(o);
  ASSERT_TRUE(steps.ok()) << steps.status().ToString();
  std::map<std::string, uint64_t> moved;
  for (const auto& s : *steps) moved[s.queue] = s.moved;
  // The work queues were rebuilt; what waited in their legacy delay queues came back with them
  // (early), and the parking queues kept their arguments and their messages.
  EXPECT_EQ(moved["outbound.send"], 320u);
  EXPECT_EQ(moved["conversation.inbound"], 5u);
  EXPECT_EQ(moved.size(), 7u) << "every work queue of topology 1 (outbound.deliver and outbound.extract are simply declared)";

  ASSERT_TRUE(DeclareConvoyTopology(o).ok()) << "the services' declaration matches after the upgrade";
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

TEST(TopologyUpgrade, RefusesWhileConsumersAreAttachedAndLosesNothing) {
  test::TestVhost vhost("topology_upgrade_busy");
  AmqpOptions o{vhost.url(), "test-upgrade"};
  o.declare_topology = false;
  DeployTopologyOne(o, {{"media.fetch", "waiting", 10}});
  // A consumer of the old version still running (it never acks: the messages stay its own).
  ConsumerOptions co;
  co.amqp = o;
  co.queue = "conversation.inbound";
  Consumer consumer(co, [](const Delivery&) { return Disposition::Ack(); }, nullptr);
  consumer.Start();
  ASSERT_TRUE(test::WaitUntil([&] { return consumer.connected(); }, 20s));
  auto steps = UpgradeTopology(o);
  ASSERT_FALSE(steps.ok());
  EXPECT_NE(steps.status().message().find("consumer"), std::string::npos) << steps.status().ToString();
  consumer.Stop();
  // Stopped: the upgrade goes through, and what waited is all there.
  steps = UpgradeTopology(o);
  ASSERT_TRUE(steps.ok()) << steps.status().ToString();
  EXPECT_EQ(Bodies(o, "media.fetch"), Expected("waiting", 10));
}

}  // namespace
}  // namespace convoy
