#include "order_check.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>

#include "convoy/pg.h"
#include "testsupport.h"

namespace convoy::test {

using namespace std::chrono_literals;

namespace {
constexpr int kPosters = 4;  // people posted side by side; each person's webhooks in turn
}  // namespace

const std::vector<OrderStep>& SellThenEmail() {
  static const std::vector<OrderStep> steps = {{"SELL", "Let's list your item!", 0},
                                               {"p{i}@example.com", "Describe the item", 1}};
  return steps;
}

const std::vector<OrderStep>& ListingStepByStep() {
  static const std::vector<OrderStep> steps = {
      {"SELL", "Let's list your item!", 0},
      {"p{i}@example.com", "Describe the item", 0},
      {"Nike running shoes, size 42, good condition", "What price", 0},
      {"$25", "Now send photos", 0},
      {"DONE", "I haven't got any photos yet", 0}};
  return steps;
}

namespace {
std::string Fill(std::string text, int i) {
  if (auto at = text.find("{i}"); at != std::string::npos) text.replace(at, 3, std::to_string(i));
  return text;
}

}  // namespace

OrderOutcome Converse(Stack& stack, const std::string& tag, const std::string& prefix,
                      const std::vector<OrderStep>& steps, int people,
                      const std::function<void()>& during, std::chrono::seconds deadline) {
  const int64_t at = NowSeconds() - 60;
  const size_t sent_before = stack.graph.SendCount();
  std::atomic<int> refused{0}, retried{0};
  std::vector<std::thread> posters;
  auto wa_id = [&](int i) { return prefix + std::to_string(10000000 + i); };
  for (int t = 0; t < kPosters; ++t) {
    posters.emplace_back([&, t] {
      for (int i = t; i < people; i += kPosters) {
        for (size_t k = 0; k < steps.size(); ++k) {
          const std::string wamid =
              "wamid." + tag + "." + std::to_string(i) + "." + std::to_string(k);
          const std::string body =
              MessageWebhook("106540352242922", wa_id(i), "P", wamid, at + steps[k].second,
                             TextMessage(Fill(steps[k].text, i)));
          // Not answered 200 (a fault on the way): posted again, as Meta does, before the person's
          // next message.
          int attempt = 0;
          while (stack.PostUpdate(body) != 200) {
            if (++attempt == 20) {
              refused.fetch_add(1);
              break;
            }
            retried.fetch_add(1);
            std::this_thread::sleep_for(
                std::chrono::milliseconds(100 * attempt));  // Meta's backoff, shortened
          }
        }
      }
    });
  }
  std::thread fault;
  if (during) fault = std::thread(during);
  for (auto& p : posters) p.join();
  if (fault.joinable()) fault.join();
  EXPECT_EQ(refused.load(), 0) << "webhooks never answered 200";
  // Each message is answered once, whichever order it was applied in.
  const size_t expected = sent_before + people * steps.size();
  EXPECT_TRUE(WaitUntil([&] { return stack.graph.SendCount() >= expected; }, deadline))
      << stack.graph.SendCount() - sent_before << " replies of " << people * steps.size();
  EXPECT_TRUE(stack.Drained(60s));

  OrderOutcome out;
  out.retried = retried.load();
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
  for (int i = 0; i < people; ++i) {
    const auto& seq = applied[i];
    if (seq.size() != steps.size()) {
      out.missing++;
    } else {
      (std::is_sorted(seq.begin(), seq.end()) ? out.applied_in_order : out.applied_out_of_order)++;
    }
    const std::vector<std::string> replies = stack.graph.SentTexts(wa_id(i));
    bool in_order = replies.size() == steps.size();
    for (size_t k = 0; in_order && k < steps.size(); ++k)
      in_order = replies[k].rfind(steps[k].reply, 0) == 0;
    (in_order ? out.replies_in_order : out.replies_out_of_order)++;
    if (!in_order && out.example.empty()) {
      for (const auto& r : replies) out.example += "\n    " + r.substr(0, 60);
    }
  }
  return out;
}

}  // namespace convoy::test
