// Unit: the content guard over the shipped rules (deploy/guard/content-guard.json): lists of
// services are cut out, nothing left means the fallback, and no text of any shipped flow is
// touched.
#include "guard.h"

#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <map>

#include "engine/flow.h"
#include "testsupport.h"

namespace convoy::outbound {
namespace {

const SchemaRegistry& Schemas() { return test::ShippedSchemas(); }

std::shared_ptr<const ContentGuard> Shipped() {
  auto g = ContentGuard::Load(test::SourcePath("deploy/guard/content-guard.json"), Schemas());
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  return g.ok() ? *g : nullptr;
}

TEST(ContentGuard, AListOfServicesIsCutOutAndNothingLeftMeansTheFallback) {
  auto guard = Shipped();
  ASSERT_NE(guard, nullptr);
  struct Case {
    std::string in, out, rules;
    bool replaced;
  };
  const std::vector<Case> cases = {
      {"How can I help you today? (family visa, golden visa, company setup)",
       "How can I help you today?", "parenthesised_service_list", false},
      {"How can I help you today (e.g. Family Visa / Golden Visa)?", "How can I help you today?",
       "parenthesised_service_list", false},
      {"We help with Family Visa / Golden Visa / Work Permit. What do you need?",
       "We help with. What do you need?", "slash_separated_services", false},
      {"Do you need a family visa, golden visa, work permit or company setup?", "Do you need a?",
       "comma_separated_services", false},
      {"family visa, golden visa, trade licence, and emirates id", "How can I help you today?",
       "comma_separated_services", true},
      {"(Golden visa/investor visa)", "How can I help you today?", "parenthesised_service_list",
       true},  // Case and white space do not hide a list (the quick count before the rules folds
               // them too).
      {"We do COMPANY\n  Setup / work\tPERMIT.", "We do.", "slash_separated_services", false},
      // One service is one too many in a question: in parentheses, or given as an example.
      {"How can I help you today? (e.g. family visa)", "How can I help you today?",
       "parenthesised_service", false},
      {"How can I help you today? (Golden Visa)", "How can I help you today?",
       "parenthesised_service", false},
      {"How can I help you today? For example: golden visa", "How can I help you today?",
       "service_example", false},
      {"What do you need, e.g. a work permit?", "What do you need?", "service_example", false},

  };
  for (const auto& c : cases) {
    GuardOutcome g = guard->Check(c.in);
    EXPECT_TRUE(g.changed) << c.in;
    EXPECT_EQ(g.text, c.out) << c.in;
    EXPECT_EQ(g.replaced, c.replaced) << c.in;
    std::string rules;
    for (const auto& r : g.rules) rules += (rules.empty() ? "" : ",") + r;
    EXPECT_EQ(rules, c.rules) << c.in;
  }
  // One service named, or a list that is not of services: untouched.
  for (const std::string ok :
       {"Thank you, Ana. Our team will call you tomorrow about your family visa.",
        "What condition is it in? (new, like new, good, fair, used)",
        "Let's list your item! (Send CANCEL at any time to stop.)",
        "Is it for a visa (yours) or a work permit?", "Sizes S / M / L are fine."}) {
    GuardOutcome g = guard->Check(ok);
    EXPECT_FALSE(g.changed) << ok << " -> " << g.text;
    EXPECT_EQ(g.text, ok);
  }
}

TEST(ContentGuard, TheCommandsTextOrInteractiveBodyIsRewrittenAndNothingElse) {
  auto guard = Shipped();
  ASSERT_NE(guard, nullptr);
  GuardOutcome g;
  std::string text =
      R"j({"to":"1","message":{"type":"text","text":{"body":"Hi! (family visa, golden visa)"}}})j";
  EXPECT_EQ(guard->CheckCommand(text, &g),
            R"({"to":"1","message":{"type":"text","text":{"body":"Hi!"}}})");
  EXPECT_TRUE(g.changed);
  std::string buttons =
      R"({"message":{"type":"interactive","interactive":{"type":"button","body":{"text":"golden visa / work permit"},"action":{}}}})";
  EXPECT_EQ(
      guard->CheckCommand(buttons, &g),
      R"({"message":{"type":"interactive","interactive":{"type":"button","body":{"text":"How can I help you today?"},"action":{}}}})");
  EXPECT_TRUE(g.replaced);
  std::string clean = R"({"message":{"type":"text","text":{"body":"How can I help you today?"}}})";
  EXPECT_EQ(guard->CheckCommand(clean, &g), clean);
  EXPECT_FALSE(g.changed);
  std::string tmpl = R"({"message":{"type":"template","template":{"name":"x"}}})";
  EXPECT_EQ(guard->CheckCommand(tmpl, &g), tmpl);
}

TEST(ContentGuard, ABadRuleFileIsRefusedNamingWhere) {
  auto bad = ContentGuard::Parse(
      R"({"schema":"content_guard","version":1,"services":["visa"],"rules":[{"name":"x","pattern":"(unclosed"}],"fallback":"Hi"})",
      "guard.json", Schemas());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(
      bad.status().message().find("guard.json: /rules/0/pattern: not a valid regular expression"),
      std::string::npos)
      << bad.status().ToString();
  auto no_services = ContentGuard::Parse(
      R"({"schema":"content_guard","version":1,"services":[],"rules":[{"name":"x","pattern":"{service}"}],"fallback":"Hi"})",
      "guard.json", Schemas());
  ASSERT_FALSE(no_services.ok());
  auto unknown = ContentGuard::Parse(
      R"({"schema":"content_guard","version":1,"services":[],"rules":[],"fallback":"Hi","x":1})",
      "guard.json", Schemas());
  ASSERT_FALSE(unknown.ok());
  EXPECT_FALSE(ContentGuard::Load("/nonexistent/guard.json", Schemas()).ok());
}

// The rules are matched in linear time (RE2): texts built to make a backtracking engine crawl
// (service lists, nested and unclosed parentheses, examples) take at most about four times as long
// at Meta's 4,096 characters as at 1,024 — a ratio in one run, not a time a loaded machine decides.
TEST(ContentGuard, AnAdversarialTextIsCheckedInLinearTime) {
  auto guard = Shipped();
  ASSERT_NE(guard, nullptr);
  auto repeat = [](const std::string& unit, size_t size) {
    std::string s;
    while (s.size() + unit.size() <= size) s += unit;
    return s;
  };
  // The fastest of 5 checks (the machine is shared): noise only ever adds time.
  auto fastest = [&](const std::string& text) {
    double best = 1e9;
    for (int i = 0; i < 5; ++i) {
      auto started = std::chrono::steady_clock::now();
      GuardOutcome g = guard->Check(text);
      best = std::min(best, std::chrono::duration<double, std::milli>(
                                std::chrono::steady_clock::now() - started)
                                .count());
    }
    return best;
  };
  double worst = 0;
  for (const std::string unit :
       {"family visa, ", "(family visa ", "e.g. golden visa or ", "family visa / ", "(",
        "visa visa visa and ", "for example a golden visa, "}) {
    // Four times the text, at most about four times the time (a backtracking crawl would be 16x).
    const double small = fastest(repeat(unit, 1024)), large = fastest(repeat(unit, 4096));
    worst = std::max(worst, large);
    EXPECT_LT(large, 8 * small + 0.5)
        << "'" << unit << "': 1,024 characters " << small << " ms, 4,096 " << large << " ms";
  }
  std::cout << "the slowest adversarial 4,096-character text: " << worst << " ms\n";
}

// Every text of every shipped flow, its placeholders filled as a run would, goes out unchanged:
// a flow that would be rewritten at the last step is a flow to fix, not a guard to loosen.
TEST(ContentGuard, NoTextOfAnyShippedFlowIsChanged) {
  auto guard = Shipped();
  ASSERT_NE(guard, nullptr);
  auto flows = conversation::FlowSet::LoadDir(test::SourcePath("deploy/flows"), Schemas());
  ASSERT_TRUE(flows.ok()) << flows.status().ToString();
  const std::map<std::string, std::string> values = {{"name", "Ana Lopez"},
                                                     {"service", "family visa"},
                                                     {"best_time", "tomorrow after 5pm"},
                                                     {"photos", "3"},
                                                     {"operator", "Ana"},
                                                     {"title", "Line QA"},
                                                     {"count", "3"},
                                                     {"index", "1"},
                                                     {"question", "Is the guard in place?"},
                                                     {"answers", "OK, NOT OK"},
                                                     {"summary", "Email: a@b.co\nPrice: 25"}};
  size_t checked = 0;
  for (std::string text : flows->Texts()) {
    for (size_t open = text.find('{'); open != std::string::npos; open = text.find('{', open + 1)) {
      size_t close = text.find('}', open);
      if (close == std::string::npos) break;
      std::string key = text.substr(open + 1, close - open - 1);
      key = key.substr(0, key.find(':'));
      auto v = values.find(key);
      text.replace(open, close - open + 1, v == values.end() ? "value" : v->second);
    }
    GuardOutcome g = guard->Check(text);
    EXPECT_FALSE(g.changed) << "the guard would rewrite a shipped text: \"" << text << "\" -> \""
                            << g.text << "\"";
    ++checked;
  }
  EXPECT_GT(checked, 40u);
  // The check bites: the lead flow's question with the list a seed once had.
  EXPECT_TRUE(
      guard
          ->Check(
              "How can I help you today? (Family visa, Golden visa, Company setup, Work permit)")
          .changed);
}

}  // namespace
}  // namespace convoy::outbound
