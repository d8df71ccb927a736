// Regex: RE2 behind convoy's own interface; the match positions flows and the guard cut with, and
// linear time on the texts that make a backtracking engine take exponential time.
#include "convoy/regex.h"

#include <gtest/gtest.h>

#include <chrono>
#include <iostream>

namespace convoy {
namespace {

TEST(Regex, GroupOneOrTheWholeMatchAnyCase) {
  auto re = Regex::Compile(R"(price[:\s]+([0-9]{1,7}))");
  ASSERT_TRUE(re.ok());
  Regex::Match m;
  const std::string text = "Nice chair, PRICE: 45 or best offer";
  ASSERT_TRUE(re->Search(text, &m));
  EXPECT_EQ(text.substr(m.begin, m.end - m.begin), "PRICE: 45");
  EXPECT_EQ(text.substr(m.group_begin, m.group_end - m.group_begin), "45");
  auto whole = Regex::Compile(R"(\bdone\b)");
  ASSERT_TRUE(whole.ok());
  ASSERT_TRUE(whole->Search("all Done now", &m));
  EXPECT_EQ(m.group_begin, 4u);
  EXPECT_EQ(m.group_end, 8u);
  EXPECT_FALSE(whole->Search("undone", &m));
}

TEST(Regex, FindAllMovesPastEmptyMatches) {
  auto re = Regex::Compile("x*");
  ASSERT_TRUE(re.ok());
  EXPECT_EQ(re->Count("axxb"), 4u);  // "" at 0, "xx" at 1, "" at 3, "" at 4
  auto words = Regex::Compile(R"(\b(?:family visa|golden visa)\b)");
  ASSERT_TRUE(words.ok());
  auto all = words->FindAll("Family visa, golden VISA or family visas");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1].begin, 13u);
}

TEST(Regex, AnInvalidPatternOrLookaroundIsRefusedWithTheReason) {
  for (const std::string p : {"(unclosed", "a(?=b)", "(a)\\1", "[z-a]"}) {
    auto re = Regex::Compile(p);
    ASSERT_FALSE(re.ok()) << p;
    EXPECT_NE(re.status().message().find("not a valid regular expression"), std::string::npos)
        << re.status().message();
  }
}

// (a+)+$ against "aaaa…!" takes 2^n steps in a backtracking engine (std::regex overflows its stack
// or runs for ever at this length); here it is one pass. The issue's bound is 5 ms a text.
TEST(Regex, AnAdversarialTextOf4096CharactersIsMatchedInLinearTime) {
  const std::string adversarial = std::string(4095, 'a') + "!";
  for (const std::string p :
       {"(a+)+$", "(a|aa)+$", "(a*)*b", R"(([a-z ]{2,30}?)\s*(?:[,;]|\.\s|\.$|$))"}) {
    auto re = Regex::Compile(p);
    ASSERT_TRUE(re.ok()) << p;
    auto started = std::chrono::steady_clock::now();
    Regex::Match m;
    bool found = re->Search(adversarial, &m);
    size_t all = re->Count(adversarial);
    auto took =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count();
    std::cout << p << " over 4,096 characters: " << took << " ms (found " << found << ", " << all
              << " matches)\n";
    EXPECT_LT(took, 5.0) << p;
  }
}

}  // namespace
}  // namespace convoy
