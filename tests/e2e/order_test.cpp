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
#include "stack.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

constexpr int kPeople = 300;
constexpr int kPosters = 4;  // people posted side by side; each person's webhooks in turn

struct Step {
  std::string text;   // what the person sends ("{i}" becomes their number)
  std::string reply;  // how the answer to it begins
  int64_t second;     // WhatsApp's timestamp, seconds after the first message
};

const std::vector<Step>& SellThenEmail() {
  static const std::vector<Step> steps = {{"SELL", "Let's list your item!", 0},
                                          {"p{i}@example.com", "Describe the item", 1}};
  return steps;
}

const std::vector<Step>& ListingStepByStep() {
  static const std::vector<Step> steps = {{"SELL", "Let's list your item!", 0},
                                          {"p{i}@example.com", "Describe the item", 0},
                                          {"Nike running shoes, size 42, good condition", "What price", 0},
                                          {"$25", "Now send photos", 0},
                                          {"DONE", "I haven't got any photos yet", 0}};
  return steps;
}

struct Outcome {
  int applied_in_order = 0, applied_out_of_order = 0, missing = 0;
  int replies_in_order = 0, replies_out_of_order = 0;
  std::string example;  // one person's replies out of order, as they arrived
};

std::string Fill(std::string text, int i) {
  if (auto at = text.find("{i}"); at != std::string::npos) text.replace(at, 3, std::to_string(i));
  return text;
}

// Posts every person's steps, waits until each message was answered, and reads from the
// transitions in which order each person's messages were applied and from the fake Graph API in
// which order their replies arrived.
Outcome Converse(test::Stack& stack, const std::string& tag, const std::string& prefix,
                 const std::vector<Step>& steps) {
  const int64_t at = test::NowSeconds() - 60;
  const size_t sent_before = stack.graph.SendCount();
  std::atomic<int> refused{0};
  std::vector<std::thread> posters;
  auto wa_id = [&](int i) { return prefix + std::to_string(10000000 + i); };
  for (int t = 0; t < kPosters; ++t) {
    posters.emplace_back([&, t] {
      for (int i = t; i < kPeople; i += kPosters) {
        for (size_t k = 0; k < steps.size(); ++k) {
          const std::string wamid = "wamid." + tag + "." + std::to_string(i) + "." + std::to_string(k);
          if (stack.PostUpdate(test::MessageWebhook("106540352242922", wa_id(i), "P", wamid, at + steps[k].second,
                                                    test::TextMessage(Fill(steps[k].text, i)))) != 200) {
            refused.fetch_add(1);
          }
        }
      }
    });
  }
  for (auto& p : posters) p.join();
  EXPECT_EQ(refused.load(), 0);
  // Each message is answered once, whichever order it was applied in.
  const size_t expected = sent_before + kPeople * steps.size();
  EXPECT_TRUE(test::WaitUntil([&] { return stack.graph.SendCount() >= expected; }, 240s))
      << stack.graph.SendCount() - sent_before << " replies of " << kPeople * steps.size();
  EXPECT_TRUE(stack.Drained(60s));

  Outcome out;
  auto db = PgConnection::Connect(stack.db.dsn());
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  if (!db.ok()) return out;
  auto rows = (*db)->Exec(
      "SELECT trigger_dedupe_key FROM transitions WHERE trigger_dedupe_key LIKE $1 ORDER BY id",
      {"%wamid." + tag + ".%"});
  EXPECT_TRUE(rows.ok()) << rows.status().ToString();
  if (!rows.ok()) return out;
  // Each person's steps in the order they were applied (a dedupe key may carry a prefix; a step
  // may write more than one transition: its first counts).
  std::map<int, std::vector<int>> applied;
  const std::string marker = "wamid." + tag + ".";
  for (size_t r = 0; r < rows->size(); ++r) {
    const std::string key = rows->get(r, 0);
    const std::string rest = key.substr(key.find(marker) + marker.size());  // "<i>.<k>"
    const int person = std::stoi(rest.substr(0, rest.find('.')));
    const int step = std::stoi(rest.substr(rest.find('.') + 1));
    auto& seq = applied[person];
    if (std::find(seq.begin(), seq.end(), step) == seq.end()) seq.push_back(step);
  }
  for (int i = 0; i < kPeople; ++i) {
    const auto& seq = applied[i];
    if (seq.size() != steps.size()) {
      out.missing++;
    } else {
      (std::is_sorted(seq.begin(), seq.end()) ? out.applied_in_order : out.applied_out_of_order)++;
    }
    const std::vector<std::string> replies = stack.graph.SentTexts(wa_id(i));
    bool in_order = replies.size() == steps.size();
    for (size_t k = 0; in_order && k < steps.size(); ++k) in_order = replies[k].rfind(steps[k].reply, 0) == 0;
    (in_order ? out.replies_in_order : out.replies_out_of_order)++;
    if (!in_order && out.example.empty()) {
      for (const auto& r : replies) out.example += "\n    " + r.substr(0, 60);
    }
  }
  return out;
}

void ExpectAllInOrder(test::Stack& stack, const std::string& tag, const char* replicas) {
  struct Scenario {
    const char* name;
    const std::vector<Step>& steps;
    const char* prefix;
  };
  for (const Scenario& s : {Scenario{"SELL then email", SellThenEmail(), "9715"},
                            Scenario{"a listing step by step, 5 messages in one second", ListingStepByStep(), "9716"}}) {
    Outcome o = Converse(stack, test::UniqueName(tag), s.prefix, s.steps);
    std::cout << replicas << ", " << s.name << ": applied in order " << o.applied_in_order << " / " << kPeople
              << " (out of order " << o.applied_out_of_order << ", missing " << o.missing << "); replies in order "
              << o.replies_in_order << " / " << kPeople << "\n";
    EXPECT_EQ(o.applied_in_order, kPeople) << s.name;
    EXPECT_EQ(o.replies_in_order, kPeople) << s.name << ": one person's replies, as they arrived:" << o.example;
  }
}

TEST(OrderE2e, EachPersonsMessagesAndRepliesKeepTheirOrderWithOneReplica) {
  test::Stack stack("e2e_order1");
  ExpectAllInOrder(stack, "ord1", "one replica");
}

TEST(OrderE2e, EachPersonsMessagesAndRepliesKeepTheirOrderWithTwoReplicas) {
  test::Stack stack("e2e_order2");
  stack.Launch("conversation#2");
  ASSERT_TRUE(stack.WaitReady("conversation#2", 60s)) << stack.services["conversation#2"]->process.Log();
  ExpectAllInOrder(stack, "ord2", "two replicas");
}

}  // namespace
}  // namespace convoy
