// Unit: the extractor's chat-completions request and answer (pure), and its configuration.
#include "extractor.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <stdlib.h>

#include "testsupport.h"

namespace convoy::outbound {
namespace {

const SchemaRegistry& Schemas() { return test::ShippedSchemas(); }

constexpr const char* kCommand =
    R"({"schema":"outbound.extract","version":1,"correlation_id":"c","dedupe_key":"d","conversation_key":"1:2",)"
    R"("phone_number_id":"1","request_id":"r","extractor":"assistant","deadline_at":1,)"
    R"("fields":[{"name":"service","description":"Service","values":["golden visa","family visa"]},{"name":"name","description":"Full name"}],)"
    R"("messages":[{"role":"assistant","content":"How can I help you today?"},{"role":"user","content":"A 10-year residency, I'm Ana"}]})";

TEST(Extractor, TheRequestNamesTheFieldsAsAStrictJsonSchemaAfterTheConversation) {
  ASSERT_TRUE(Schemas().Validate(kCommand).ok()) << Schemas().Validate(kCommand).ToString();
  ExtractorConfig config;
  config.model = "gpt-test";
  rapidjson::Document d;
  std::string body = BuildChatRequest(config, kCommand);
  d.Parse(body.c_str());
  ASSERT_TRUE(d.IsObject()) << body;
  EXPECT_STREQ(d["model"].GetString(), "gpt-test");
  EXPECT_EQ(d["temperature"].GetInt(), 0);
  const auto& messages = d["messages"];
  ASSERT_EQ(messages.Size(), 3u);
  EXPECT_STREQ(messages[0]["role"].GetString(), "system");
  EXPECT_NE(std::string(messages[0]["content"].GetString()).find("- service: Service"),
            std::string::npos);
  EXPECT_STREQ(messages[2]["content"].GetString(), "A 10-year residency, I'm Ana");
  const auto& schema = d["response_format"]["json_schema"]["schema"];
  EXPECT_TRUE(d["response_format"]["json_schema"]["strict"].GetBool());
  EXPECT_FALSE(schema["additionalProperties"].GetBool());
  EXPECT_EQ(schema["required"].Size(), 2u);
  const auto& service = schema["properties"]["service"];
  ASSERT_EQ(service["enum"].Size(), 3u) << "the values and null";
  EXPECT_TRUE(service["enum"][2].IsNull());
  EXPECT_FALSE(schema["properties"]["name"].HasMember("enum"));
}

TEST(Extractor, TheAnswerGivesOnlyTheFieldsAskedWithAValue) {
  auto answer = [](const std::string& content) {
    return R"({"choices":[{"message":{"role":"assistant","content":")" + content + R"("}}]})";
  };
  auto got =
      ParseChatResponse(answer(R"({\"service\":\"golden visa\",\"name\":null,\"extra\":\"x\"})"),
                        {"service", "name"});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, (std::map<std::string, std::string>{{"service", "golden visa"}}));
  EXPECT_FALSE(ParseChatResponse(answer("not json"), {"service"}).ok());
  EXPECT_FALSE(ParseChatResponse("{}", {"service"}).ok());
  EXPECT_FALSE(ParseChatResponse("<html>", {"service"}).ok());
  auto refused = ParseChatResponse(
      R"({"choices":[{"message":{"content":null,"refusal":"I can't help with that"}}]})",
      {"service"});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("refused"), std::string::npos);
}

// A model's (or a hostile endpoint's) answer nested a million deep: a clear error, no crash (the
// recursive parser would overflow the stack, here and on every redelivery).
TEST(Extractor, AnAnswerNestedAMillionDeepIsAClearError) {
  const size_t depth = 1000000;
  const std::string deep = std::string(depth, '[') + std::string(depth, ']');
  auto outer = ParseChatResponse(R"({"choices":)" + deep + "}", {"name"});
  ASSERT_FALSE(outer.ok());
  EXPECT_NE(outer.status().message().find("the message content is not a JSON object"),
            std::string::npos)
      << outer.status().ToString();
  auto inner =
      ParseChatResponse(R"({"choices":[{"message":{"content":")" + deep + R"("}}]})", {"name"});
  ASSERT_FALSE(inner.ok());
  EXPECT_NE(inner.status().message().find("not a JSON object"), std::string::npos);
}

TEST(Extractor, ConfigurationResolvesTheKeyAndRefusesInternalAddresses) {
  setenv("CONVOY_TEST_AI_KEY", "sk-test", 1);
  auto set = ParseExtractors(
      R"({"schema":"extractors","version":1,"extractors":[{"name":"assistant","url":"http://127.0.0.1:9/v1/chat/completions","model":"m","key":"env:CONVOY_TEST_AI_KEY","allow_private":true,"timeout_seconds":3}]})",
      Schemas());
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  ASSERT_NE(set->Find("assistant"), nullptr);
  EXPECT_EQ(set->Find("assistant")->key, "sk-test");
  EXPECT_EQ(set->Find("assistant")->timeout.count(), 3);
  auto internal = ParseExtractors(
      R"({"schema":"extractors","version":1,"extractors":[{"name":"assistant","url":"http://10.1.2.3/v1/chat/completions","model":"m"}]})",
      Schemas());
  ASSERT_FALSE(internal.ok());
  EXPECT_NE(internal.status().message().find("extractor 'assistant'"), std::string::npos)
      << internal.status().ToString();
  auto missing_key = ParseExtractors(
      R"({"schema":"extractors","version":1,"extractors":[{"name":"a","url":"http://127.0.0.1/x","model":"m","key":"env:CONVOY_NO_SUCH_VAR","allow_private":true}]})",
      Schemas());
  EXPECT_FALSE(missing_key.ok());
  EXPECT_TRUE(LoadExtractors("", Schemas()).ok()) << "no file: no extractors";
  EXPECT_FALSE(LoadExtractors("/nonexistent/extractors.json", Schemas()).ok());
}

}  // namespace
}  // namespace convoy::outbound
