#include "convoy/json.h"

#include <gtest/gtest.h>

#include <atomic>
#include <regex>
#include <thread>
#include <vector>

namespace convoy {
namespace {

class SchemaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(reg_.LoadDir(std::string(CONVOY_SOURCE_DIR) + "/proto-schemas").ok());
  }
  SchemaRegistry reg_;
};

TEST_F(SchemaTest, ValidMessagePasses) {
  EXPECT_TRUE(reg_.Validate(R"({"schema":"outbound.send","version":1,"correlation_id":"c1",
    "dedupe_key":"k","phone_number_id":"123","to":"16505551234",
    "message":{"type":"text","text":{"body":"hi"}}})")
                  .ok());
}

TEST_F(SchemaTest, ErrorsSayWhatAndWhere) {
  Status s = reg_.Validate(R"({"schema":"outbound.send","version":1,"correlation_id":"c1",
    "dedupe_key":"k","phone_number_id":"123","to":"not-a-number","message":{"type":"text"}})");
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("/to"), std::string::npos) << s.message();
  EXPECT_EQ(reg_.Validate("{not json").code(), Code::kInvalidArgument);
  EXPECT_NE(reg_.Validate(R"({"schema":"nope","version":1})").message().find("unknown schema"),
            std::string::npos);
  EXPECT_NE(reg_.Validate(R"({"a":1})").message().find("name its schema"), std::string::npos);
}

TEST(JsonEscape, EscapesControlAndQuotes) {
  EXPECT_EQ(JsonEscape("a\"b\\c\n\x01"), "a\\\"b\\\\c\\n\\u0001");
}

}  // namespace
}  // namespace convoy

namespace convoy {
namespace {

// A long bounded string is a pattern without counts plus minLength/maxLength: the same strings
// pass. "to" is ^[0-9]+$ with 5 to 20 characters (it was ^[0-9]{5,20}$).
TEST_F(SchemaTest, LengthsAreCheckedAsLengths) {
  auto send_to = [&](const std::string& to) {
    return reg_.Validate(R"({"schema":"outbound.send","version":1,"correlation_id":"c1",
      "dedupe_key":"k","phone_number_id":"123","to":")" +
                         to + R"(","message":{"type":"text","text":{"body":"hi"}}})");
  };
  EXPECT_TRUE(send_to("16505").ok());
  EXPECT_TRUE(send_to(std::string(20, '9')).ok());
  EXPECT_FALSE(send_to("1650").ok());
  EXPECT_FALSE(send_to(std::string(21, '9')).ok());
  EXPECT_FALSE(send_to("1650555123x").ok());
  EXPECT_FALSE(send_to("").ok());
}

// RapidJSON's schema regex is a state machine with one state per repetition a count spells out:
// `[0-9]{1,32}` matched 32 states per character, and the schema checks of outbound's sends and
// statuses took 13 % of its CPU (perf, bench-e2e.sh). A range of 8 or more is spelled as
// minLength/maxLength with `+` or `*` instead; a count that is exact ({64}) stays, and so do the
// alternatives no length can say, in files read once (the numbers registry) or per API request.
TEST(SchemaFiles, NoPatternSpellsOutALongRange) {
  auto files = ReadJsonFiles(std::string(CONVOY_SOURCE_DIR) + "/proto-schemas");
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  const std::regex pattern(R"re("pattern": *"((?:[^"\\]|\\.)*)")re");
  const std::regex range(R"re(\{([0-9]+),([0-9]+)\})re");
  size_t patterns = 0;
  for (const auto& f : *files) {
    if (f.stem == "number.v1" || f.stem == "assignment.request.v1") continue;
    for (std::sregex_iterator p(f.text.begin(), f.text.end(), pattern), end; p != end; ++p) {
      ++patterns;
      const std::string re = (*p)[1];
      for (std::sregex_iterator r(re.begin(), re.end(), range); r != end; ++r) {
        EXPECT_LT(std::stoi((*r)[2]), 8) << f.path << ": " << re;
      }
    }
  }
  EXPECT_GT(patterns, 80u);  // the files were read
}

// Consumers validate from several threads at once; schemas with "pattern" must survive that.
TEST_F(SchemaTest, ConcurrentValidationIsSafe) {
  const std::string body = R"({"schema":"outbound.send","version":1,"correlation_id":"c1",
    "dedupe_key":"k","phone_number_id":"123","to":"16505551234","message":{"type":"text","text":{"body":"hi"}}})";
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) failures += !reg_.Validate(body).ok();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace convoy
