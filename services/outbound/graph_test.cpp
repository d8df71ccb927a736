#include "graph.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace convoy::outbound {
namespace {

std::string Read(const std::string& name) {
  std::ifstream in(std::string(CONVOY_FIXTURES_DIR) + "/graph/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The fixtures wrap Graph errors as {"http_status": N, "body": {...}}.
GraphError FromFixture(const std::string& name) {
  std::string text = Read(name);
  auto status_at = text.find("\"http_status\"");
  int status = std::atoi(text.c_str() + text.find(':', status_at) + 1);
  auto body_at = text.find('{', text.find("\"body\""));
  auto body_end = text.rfind('}');
  return ParseGraphError(status, text.substr(body_at, body_end - body_at));
}

TEST(GraphErrors, ClassifiedByCodeNotHttpStatus) {
  auto throughput = FromFixture("error_130429_throughput.json");
  EXPECT_EQ(throughput.http_status, 400);
  EXPECT_EQ(throughput.code, 130429);
  EXPECT_EQ(throughput.klass, GraphErrorClass::kRateLimited);
  EXPECT_EQ(FromFixture("error_131056_pair_rate.json").klass, GraphErrorClass::kRateLimited);
  EXPECT_EQ(FromFixture("error_131047_reengagement.json").klass, GraphErrorClass::kPermanent);
  EXPECT_EQ(FromFixture("error_131026_undeliverable.json").klass, GraphErrorClass::kPermanent);
  EXPECT_EQ(FromFixture("error_2_service_unavailable.json").klass, GraphErrorClass::kTransient);
  EXPECT_EQ(FromFixture("error_131000_unknown.json").klass, GraphErrorClass::kTransient);
}

TEST(GraphErrors, WithoutAGraphErrorTheHttpStatusDecides) {
  EXPECT_EQ(ParseGraphError(502, "<html>bad gateway</html>").klass, GraphErrorClass::kTransient);
  EXPECT_EQ(ParseGraphError(429, "").klass, GraphErrorClass::kTransient);
  EXPECT_EQ(ParseGraphError(400, "{}").klass, GraphErrorClass::kPermanent);
  EXPECT_EQ(ClassifyGraphError(400, 100), GraphErrorClass::kPermanent);
  EXPECT_EQ(ClassifyGraphError(401, 190), GraphErrorClass::kPermanent);
}

TEST(SendRequest, MatchesMetasShape) {
  auto body = BuildSendRequest(R"({"schema":"outbound.send","version":1,"correlation_id":"c","dedupe_key":"k",
      "phone_number_id":"1","to":"16505551234","message":{"type":"text","text":{"body":"Hi"}}})");
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(*body, R"({"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"text","text":{"body":"Hi"}})");
  EXPECT_FALSE(BuildSendRequest("{}").ok());
  auto wamid = ParseSendResponse(Read("send_ok_response.json"));
  ASSERT_TRUE(wamid.ok());
  EXPECT_EQ(wamid->rfind("wamid.", 0), 0u);
  EXPECT_FALSE(ParseSendResponse(R"({"messages":[]})").ok());
}

}  // namespace
}  // namespace convoy::outbound
