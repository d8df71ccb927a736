// Cluster: one conversation, one order (issue 26) under issue 31's faults. 500 people each send
// the five messages of a listing in one second (test::ListingStepByStep), each message posted after
// the previous one's 200, to two conversation replicas on three broker nodes; mid-stream one
// conversation replica is killed with kill -9 (its partitions' single active consumer moves to the
// other replica) and the broker node leading the first inbound partition dies (its queues elect
// new leaders); both come back. Every person's messages are applied in the order they were
// accepted, and their replies reach the customer in that order.
#include <gtest/gtest.h>

#include <iostream>

#include "cluster_env.h"
#include "convoy/topology.h"
#include "order_check.h"
#include "stack.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

TEST(OrderUnderFailover, EachPersonsMessagesAndRepliesKeepTheirOrderWhenAReplicaAndALeaderDie) {
  constexpr int kPeople = 500;
  test::Stack stack("cluster_order");
  stack.Launch("conversation#2");
  ASSERT_TRUE(stack.WaitReady("conversation#2", 120s))
      << stack.services["conversation#2"]->process.Log();
  int node = 0;
  auto faults = [&] {
    // Mid-stream: once replies flow.
    ASSERT_TRUE(test::WaitUntil([&] { return stack.graph.SendCount() >= 200; }, 120s));
    stack.Kill("conversation");
    node = test::ClusterNodeNumber(
        stack.vhost.QueueLeader(PartitionName(queues::kConversationInbound, 0)));
    ASSERT_NE(node, 0) << "no leader named for the first inbound partition";
    test::Infra("kill rabbit " + std::to_string(node));
    stack.Launch("conversation");
    test::Infra("start rabbit " + std::to_string(node));
    ASSERT_TRUE(stack.WaitReady("conversation", 120s));
  };
  const auto o = test::Converse(stack, test::UniqueName("ordf"), "9718", test::ListingStepByStep(),
                                kPeople, faults, 300s);
  std::cout << "[ cluster ] " << kPeople
            << " people, 5 messages each in one second; conversation replica 1 killed "
            << "and node " << node
            << " (the first inbound partition's leader) killed mid-stream: applied in order "
            << o.applied_in_order << " / " << kPeople << " (out of order " << o.applied_out_of_order
            << ", missing " << o.missing << "); replies in order " << o.replies_in_order << " / "
            << kPeople << "; " << o.retried << " webhooks posted again\n";
  EXPECT_EQ(o.applied_in_order, kPeople);
  EXPECT_EQ(o.replies_in_order, kPeople) << "one person's replies, as they arrived:" << o.example;
}

}  // namespace
}  // namespace convoy
