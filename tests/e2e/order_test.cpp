// End to end: one conversation, one order (issue 26, inbound). People split a thought across
// messages: "SELL", then their email a second later by WhatsApp's timestamp, the two webhooks
// posted back to back (the second after the first's 200). Each person's two messages must be
// applied in the order ingress accepted them, with one conversation replica and with two, whatever
// the number of consumer threads: the transitions table shows SELL's before the email's.
#include <gtest/gtest.h>

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
constexpr int kPosters = 4;  // people posted side by side; each person's two webhooks in turn

struct Outcome {
  int in_order = 0, email_first = 0, missing = 0;
};

// Posts every person's SELL and email, waits until each was answered, and reads from the
// transitions which of the two was applied first.
Outcome SellThenEmail(test::Stack& stack, const std::string& tag) {
  const int64_t at = test::NowSeconds() - 60;
  std::atomic<int> refused{0};
  std::vector<std::thread> posters;
  for (int t = 0; t < kPosters; ++t) {
    posters.emplace_back([&, t] {
      for (int i = t; i < kPeople; i += kPosters) {
        const std::string wa_id = "9715" + std::to_string(10000000 + i);
        const std::string wamid = "wamid." + tag + "." + std::to_string(i);
        const std::string email = "p" + std::to_string(i) + "@example.com";
        if (stack.PostUpdate(test::MessageWebhook("106540352242922", wa_id, "P", wamid + ".sell", at,
                                                  test::TextMessage("SELL"))) != 200) {
          refused.fetch_add(1);
        }
        if (stack.PostUpdate(test::MessageWebhook("106540352242922", wa_id, "P", wamid + ".mail", at + 1,
                                                  test::TextMessage(email))) != 200) {
          refused.fetch_add(1);
        }
      }
    });
  }
  for (auto& p : posters) p.join();
  EXPECT_EQ(refused.load(), 0);
  // Each message is answered once, whichever order it was applied in.
  EXPECT_TRUE(test::WaitUntil([&] { return stack.graph.SendCount() >= 2 * kPeople; }, 240s))
      << stack.graph.SendCount() << " replies of " << 2 * kPeople;
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
  // Each person's message applied first: ".sell" or ".mail" (a dedupe key may carry a prefix).
  std::map<std::string, std::string> first;
  const std::string prefix = "wamid." + tag + ".";
  for (size_t r = 0; r < rows->size(); ++r) {
    const std::string key = rows->get(r, 0);
    const std::string rest = key.substr(key.find(prefix) + prefix.size());  // "<i>.sell"
    first.emplace(rest.substr(0, rest.find('.')), rest.substr(rest.find('.') + 1));
  }
  for (int i = 0; i < kPeople; ++i) {
    auto it = first.find(std::to_string(i));
    if (it == first.end()) {
      out.missing++;
    } else {
      (it->second == "sell" ? out.in_order : out.email_first)++;
    }
  }
  return out;
}

void ExpectAllInOrder(test::Stack& stack, const std::string& tag, const char* replicas) {
  Outcome o = SellThenEmail(stack, test::UniqueName(tag));
  std::cout << replicas << ": " << o.in_order << " / " << kPeople << " in order, " << o.email_first
            << " email first, " << o.missing << " missing\n";
  EXPECT_EQ(o.in_order, kPeople);
  EXPECT_EQ(o.email_first, 0);
  EXPECT_EQ(o.missing, 0);
}

TEST(OrderE2e, EachPersonsSellIsAppliedBeforeTheirEmailWithOneReplica) {
  test::Stack stack("e2e_order1");
  ExpectAllInOrder(stack, "ord1", "one replica");
}

TEST(OrderE2e, EachPersonsSellIsAppliedBeforeTheirEmailWithTwoReplicas) {
  test::Stack stack("e2e_order2");
  stack.Launch("conversation#2");
  ASSERT_TRUE(stack.WaitReady("conversation#2", 60s)) << stack.services["conversation#2"]->process.Log();
  ExpectAllInOrder(stack, "ord2", "two replicas");
}

}  // namespace
}  // namespace convoy
