#include "convoy/json.h"

#include <gtest/gtest.h>

#include <atomic>
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
