// End to end: one conversation, one order (issue 26). People split a thought across messages,
// each webhook posted back to back (the next after the previous one's 200). Each person's messages
// must be applied in the order ingress accepted them, and their replies must reach the customer
// in that order too, with one conversation replica and with two, whatever the number of consumer
// threads: the transitions table shows the order they were applied in, the fake Graph API the
// order the replies arrived in.
//   - "SELL", then their email a second later by WhatsApp's timestamp;
//   - a listing answered step by step, five messages in one second: SELL, email, a description
//     without a price, the price, DONE (no photo yet).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <map>
#include <thread>

#include "convoy/pg.h"
#include "order_check.h"
#include "stack.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

constexpr int kPeople = 300;

using test::OrderOutcome;

void ExpectAllInOrder(test::Stack& stack, const std::string& tag, const char* replicas) {
  struct Scenario {
    const char* name;
    const std::vector<test::OrderStep>& steps;
    const char* prefix;
  };
  for (const Scenario& s : {Scenario{"SELL then email", test::SellThenEmail(), "9715"},
                            Scenario{"a listing step by step, 5 messages in one second",
                                     test::ListingStepByStep(), "9716"}}) {
    OrderOutcome o = test::Converse(stack, test::UniqueName(tag), s.prefix, s.steps, kPeople);
    std::cout << replicas << ", " << s.name << ": applied in order " << o.applied_in_order << " / "
              << kPeople << " (out of order " << o.applied_out_of_order << ", missing " << o.missing
              << "); replies in order " << o.replies_in_order << " / " << kPeople << "\n";
    EXPECT_EQ(o.applied_in_order, kPeople) << s.name;
    EXPECT_EQ(o.replies_in_order, kPeople)
        << s.name << ": one person's replies, as they arrived:" << o.example;
  }
}

TEST(OrderE2e, EachPersonsMessagesAndRepliesKeepTheirOrderWithOneReplica) {
  test::Stack stack("e2e_order1");
  ExpectAllInOrder(stack, "ord1", "one replica");
}

TEST(OrderE2e, EachPersonsMessagesAndRepliesKeepTheirOrderWithTwoReplicas) {
  test::Stack stack("e2e_order2");
  stack.Launch("conversation#2");
  ASSERT_TRUE(stack.WaitReady("conversation#2", 60s))
      << stack.services["conversation#2"]->process.Log();
  ExpectAllInOrder(stack, "ord2", "two replicas");
}

}  // namespace
}  // namespace convoy
