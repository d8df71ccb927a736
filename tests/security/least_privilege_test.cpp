// Each part of convoy holds only the keys it needs: every part's broker user (topology.h
// BrokerGrants) is tried against a real RabbitMQ, with what it must be able to do and what it
// must not.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "convoy/amqp.h"
#include "convoy/amqp_admin.h"
#include "convoy/topology.h"
#include "testsupport.h"

namespace convoy {
namespace {

struct BrokerCase {
  std::string part;
  std::vector<std::string> may_consume, may_not_consume;
  // exchange, routing key
  std::vector<std::pair<std::string, std::string>> may_publish, may_not_publish;
};

class BrokerUsers : public ::testing::Test {
 protected:
  void SetUp() override {
    auto declared = UpgradeTopology(AmqpOptions{vhost_.url(), "least-privilege-topology"});
    ASSERT_TRUE(declared.ok()) << declared.status().ToString();
  }
  // A fresh connection as the part's user: a refusal closes the channel, so one probe each.
  Status Probe(const std::string& part, const std::function<Status(AmqpAdmin&)>& probe) {
    AmqpAdmin admin;
    AmqpOptions options{vhost_.PartUrl(part), "probe-" + part};
    options.declare_topology = false;
    Status s = admin.Open(options);
    return s.ok() ? probe(admin) : s;
  }
  test::TestVhost vhost_{"least_privilege"};
};

bool Refused(const Status& s) { return !s.ok() && s.message().find("403 ACCESS_REFUSED") != std::string::npos; }

TEST_F(BrokerUsers, EachPartDoesItsWorkAndIsRefusedEverythingElse) {
  const std::vector<BrokerCase> cases = {
      {"ingress", {}, {queues::kConversationInbound, queues::kOutboundStatus}, {{exchanges::kInbound, "message"}},
       {{exchanges::kCommands, queues::kOutboundSend}, {exchanges::kEvents, "media.stored"}, {"", queues::kOutboundSend}}},
      {"conversation",
       {queues::kConversationInbound, queues::kConversationEvents},
       {queues::kOutboundSend, queues::kMediaFetch, "conversation.inbound.dlq"},
       {{exchanges::kCommands, queues::kOutboundSend}, {exchanges::kEvents, "flow.completed"},
        {exchanges::kRetry, "conversation.events.delay.1s"}, {exchanges::kDlx, queues::kConversationInbound}},
       {{exchanges::kInbound, "message"}, {"", queues::kOutboundSend}}},
      {"media",
       {queues::kMediaFetch, queues::kMediaUpload},
       {queues::kOutboundSend, queues::kOutboundStatus, queues::kOutboundDeliver, queues::kOutboundExtract,
        queues::kConversationInbound},
       {{exchanges::kEvents, "media.stored"}, {exchanges::kRetry, "media.fetch.delay.1s"}},
       {{exchanges::kCommands, queues::kOutboundSend}, {exchanges::kInbound, "message"}}},
      {"outbound",
       {queues::kOutboundSend, queues::kOutboundStatus, queues::kOutboundDeliver, queues::kOutboundExtract},
       {queues::kMediaFetch, queues::kConversationInbound, "outbound.send.dlq"},
       {{exchanges::kEvents, "outbound.sent"}, {exchanges::kDlx, queues::kOutboundSend}},
       {{exchanges::kCommands, queues::kOutboundSend}, {exchanges::kInbound, "status"}}},
      {"ops",
       {"outbound.send.dlq", "conversation.inbound.dlq"},
       {queues::kOutboundSend, queues::kConversationInbound},
       {{"", "outbound.send.dlq"}},
       {{exchanges::kCommands, queues::kOutboundSend}, {exchanges::kInbound, "message"}}},
  };
  int checked = 0;
  for (const auto& c : cases) {
    for (const auto& q : c.may_consume) {
      Status s = Probe(c.part, [&](AmqpAdmin& a) { return a.TryConsume(q); });
      EXPECT_TRUE(s.ok()) << c.part << " must consume " << q << ": " << s.ToString();
      ++checked;
    }
    for (const auto& q : c.may_not_consume) {
      Status s = Probe(c.part, [&](AmqpAdmin& a) { return a.TryConsume(q); });
      EXPECT_TRUE(Refused(s)) << c.part << " must not consume " << q << ": " << s.ToString();
      ++checked;
    }
    for (const auto& [ex, key] : c.may_publish) {
      Status s = Probe(c.part, [&](AmqpAdmin& a) { return a.TryPublish(ex, key); });
      EXPECT_TRUE(s.ok()) << c.part << " must publish to '" << ex << "': " << s.ToString();
      ++checked;
    }
    for (const auto& [ex, key] : c.may_not_publish) {
      Status s = Probe(c.part, [&](AmqpAdmin& a) { return a.TryPublish(ex, key); });
      EXPECT_TRUE(Refused(s)) << c.part << " must not publish to '" << ex << "': " << s.ToString();
      ++checked;
    }
    // No service declares: the topology step does (a queue of its own, or convoy's own again).
    Status s = Probe(c.part, [&](AmqpAdmin& a) { return a.DeclareQueue({"intruder." + c.part, {}, {}}); });
    EXPECT_TRUE(Refused(s)) << c.part << " must not declare a queue: " << s.ToString();
    s = Probe(c.part, [&](AmqpAdmin& a) { return a.DeclareExchange({exchanges::kInbound, "direct"}); });
    EXPECT_TRUE(Refused(s)) << c.part << " must not declare an exchange: " << s.ToString();
    checked += 2;
  }
  std::cout << "[ broker   ] " << checked << " permission checks over " << cases.size() << " parts\n";
}

TEST_F(BrokerUsers, TheScalerSeesQueueDepthsAndNothingElse) {
  // KEDA's RabbitMQ trigger (k8s/overlays/prod autoscaling.yaml) reads a work queue's depth with
  // a passive declare; its user may neither consume, publish nor declare.
  for (const char* queue : {queues::kConversationInbound, queues::kMediaFetch, queues::kOutboundSend}) {
    Status s = Probe("scaler", [&](AmqpAdmin& a) {
      auto state = a.Inspect(queue);
      return state.ok() && !state->exists ? Status(Code::kNotFound, "not found") : state.status();
    });
    EXPECT_TRUE(s.ok()) << queue << ": " << s.ToString();
    s = Probe("scaler", [&](AmqpAdmin& a) { return a.TryConsume(queue); });
    EXPECT_TRUE(Refused(s)) << "the scaler must not consume " << queue << ": " << s.ToString();
  }
  Status s = Probe("scaler", [&](AmqpAdmin& a) { return a.TryPublish(exchanges::kInbound, "message"); });
  EXPECT_TRUE(Refused(s)) << s.ToString();
  s = Probe("scaler", [&](AmqpAdmin& a) { return a.DeclareQueue({"intruder.scaler", {}, {}}); });
  EXPECT_TRUE(Refused(s)) << s.ToString();
}

TEST_F(BrokerUsers, EveryPartWithAUserHasACase) {
  // A part added to BrokerGrants without a row above would go untested.
  std::vector<std::string> parts;
  for (const auto& g : BrokerGrants()) parts.push_back(g.part);
  EXPECT_EQ(parts, (std::vector<std::string>{"ingress", "conversation", "media", "outbound", "ops", "scaler", "topology"}));
}

}  // namespace
}  // namespace convoy
