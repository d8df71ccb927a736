#pragma once
// One conversation, one order (issue 26), checked end to end: people split a thought across
// messages, each person's webhooks posted back to back (the next after the previous one's 200);
// each person's messages must be applied in the order ingress accepted them (the transitions table
// says), and their replies must reach the customer in that order (the fake Graph API says).
// Used by tests/e2e/order_test.cpp and, under a cluster's faults,
// tests/cluster/order_failover_test.cpp.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "stack.h"

namespace convoy::test {

struct OrderStep {
  std::string text;   // what the person sends ("{i}" becomes their number)
  std::string reply;  // how the answer to it begins
  int64_t second;     // WhatsApp's timestamp, seconds after the first message
};

// "SELL", then their email a second later by WhatsApp's timestamp.
const std::vector<OrderStep>& SellThenEmail();
// A listing answered step by step, five messages in one second: SELL, email, a description without
// a price, the price, DONE (no photo yet).
const std::vector<OrderStep>& ListingStepByStep();

struct OrderOutcome {
  int applied_in_order = 0, applied_out_of_order = 0, missing = 0;
  int replies_in_order = 0, replies_out_of_order = 0;
  int retried = 0;      // webhooks posted again after an answer other than 200
  std::string example;  // one person's replies out of order, as they arrived
};

// Posts every person's steps (`people` people, 4 posting side by side), runs `during` on a thread
// of its own meanwhile (a fault, say), waits up to `deadline` until each message was answered, and
// reads in which order each person's messages were applied and their replies arrived.
OrderOutcome Converse(Stack& stack, const std::string& tag, const std::string& prefix,
                      const std::vector<OrderStep>& steps, int people,
                      const std::function<void()>& during = {},
                      std::chrono::seconds deadline = std::chrono::seconds(240));

}  // namespace convoy::test
