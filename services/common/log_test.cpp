// --log_format=json: every key=value of a line becomes a member; quoted values keep their spaces.
#include "convoy/log.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <sstream>

namespace convoy {
namespace {

TEST(PersonalData, MaskedButForTheLastFourUnlessShown) {
  EXPECT_EQ(MaskPersonal("16505550111", false), "*******0111");
  EXPECT_EQ(MaskPersonal("US.13491208655302741918", false), "US.****************1918");
  EXPECT_EQ(MaskPersonal("123456", false), "******");
  EXPECT_EQ(MaskPersonal("16505550111", true), "16505550111");
  EXPECT_EQ(PersonalKey("106540352242922:16505550111"), "106540352242922:*******0111");
  std::ostringstream line;
  line << LogCtx{"h", "c", "106540352242922:16505550111"};
  EXPECT_EQ(line.str().find("16505550111"), std::string::npos) << line.str();
  EXPECT_NE(line.str().find("conversation=106540352242922:*******0111"), std::string::npos)
      << line.str();
}

TEST(PersonalData, TheUserInsideADedupeKeyIsMaskedToo) {
  std::ostringstream line;
  line << LogCtx{"h", "c", "106540352242922:16505550111",
                 "outbound.sent:106540352242922:16505550111:wamid.X:reply"};
  EXPECT_EQ(line.str().find("16505550111"), std::string::npos) << line.str();
  EXPECT_NE(line.str().find("dedupe_key=outbound.sent:106540352242922:*******0111:wamid.X:reply"),
            std::string::npos)
      << line.str();
}

TEST(JsonLog, KeyValuesBecomeMembersAndTheRestIsTheMessage) {
  std::string line = JsonLogLine(
      "WARNING", "2026-11-30T15:00:00.000001Z", "deliverer.cpp", 42,
      R"(service=outbound handler=outbound.deliver correlation_id=c-1 event=delivery_parked reason="exhausted after 2 attempts: HTTP \"500\"" and some text)");
  rapidjson::Document d;
  d.Parse(line.c_str());
  ASSERT_FALSE(d.HasParseError()) << line;
  EXPECT_STREQ(d["level"].GetString(), "WARNING");
  EXPECT_STREQ(d["ts"].GetString(), "2026-11-30T15:00:00.000001Z");
  EXPECT_EQ(d["line"].GetInt(), 42);
  EXPECT_STREQ(d["service"].GetString(), "outbound");
  EXPECT_STREQ(d["correlation_id"].GetString(), "c-1");
  EXPECT_STREQ(d["event"].GetString(), "delivery_parked");
  EXPECT_STREQ(d["reason"].GetString(), "exhausted after 2 attempts: HTTP \"500\"");
  EXPECT_STREQ(d["msg"].GetString(), "and some text");
  // Control characters and a line that is all text.
  rapidjson::Document plain;
  plain.Parse(JsonLogLine("INFO", "t", "f.cc", 1, "no pairs here\n\ttab").c_str());
  ASSERT_FALSE(plain.HasParseError());
  EXPECT_STREQ(plain["msg"].GetString(), "no pairs here\n\ttab");
  rapidjson::Document msg;
  msg.Parse(JsonLogLine("INFO", "t", "f.cc", 1, "msg=x event=y").c_str());
  ASSERT_FALSE(msg.HasParseError());
  EXPECT_STREQ(msg["msg"].GetString(), "msg=x") << "a key named msg does not overwrite the message";
}

}  // namespace
}  // namespace convoy
