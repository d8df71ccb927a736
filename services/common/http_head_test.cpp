// The listener's request-head parser: what it accepts, and each shape it refuses with the status
// the listener answers (400 unless named).
#include <gtest/gtest.h>

#include "convoy/http.h"

namespace convoy {
namespace {

std::optional<ParsedHead> Parse(const std::string& head, std::string* error = nullptr) {
  std::string ignored;
  return ParseHttpHead(head, error ? error : &ignored);
}

TEST(HttpHead, ParsesPathQueryAndHeaders) {
  auto h = Parse(
      "POST /v1/items%2Fx?a=1&b=%20two&flag HTTP/1.1\r\nHost: h\r\nX-Hub-Signature-256:  sha256=ab "
      "\r\n"
      "Content-Length: 12\r\nX-Multi: 1\r\nx-multi: 2\r\n");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->method, "POST");
  EXPECT_EQ(h->path, "/v1/items/x");
  EXPECT_EQ(h->query.at("a"), "1");
  EXPECT_EQ(h->query.at("b"), " two");
  EXPECT_EQ(h->query.at("flag"), "");
  EXPECT_EQ(h->headers.at("x-hub-signature-256"), "sha256=ab");
  EXPECT_EQ(h->headers.at("x-multi"), "1, 2");
  EXPECT_EQ(h->content_length, 12u);
  EXPECT_TRUE(h->keep_alive);
  EXPECT_FALSE(h->chunked);
}

TEST(HttpHead, KeepAliveFollowsTheVersionAndConnectionHeader) {
  EXPECT_FALSE(Parse("GET / HTTP/1.1\r\nConnection: close\r\n")->keep_alive);
  EXPECT_FALSE(Parse("GET / HTTP/1.0\r\n")->keep_alive);
  EXPECT_TRUE(Parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n")->keep_alive);
  EXPECT_TRUE(Parse("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n")->chunked);
  EXPECT_TRUE(
      Parse("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n")->expect_continue);
  EXPECT_EQ(Parse("GET http://example.com/healthz?x=1 HTTP/1.1\r\n")->path, "/healthz");
}

TEST(HttpHead, DecodedNulAndDotsReachTheHandlerWhichJudgesThem) {
  auto h = Parse("GET /media/%2e%2e%2fsecret%00.txt HTTP/1.1\r\n");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->path, std::string("/media/../secret\0.txt", 21));
}

TEST(HttpHead, RefusesEachMalformedShape) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"GET /%zz HTTP/1.1\r\n", "malformed percent-escape"},
      {"GET /a% HTTP/1.1\r\n", "malformed percent-escape"},
      {"GET /a?x=%g1 HTTP/1.1\r\n", "malformed percent-escape"},
      {"GET /a\\b HTTP/1.1\r\n", "a character not allowed in a request target"},
      {"GET /a\x01 HTTP/1.1\r\n", "a character not allowed in a request target"},
      {"GET  / HTTP/1.1\r\n", "malformed request line"},
      {"GET / HTTP/1.1 x\r\n", "malformed request line"},
      {"GET\r\n", "malformed request line"},
      {"G(T / HTTP/1.1\r\n", "malformed method"},
      {"GET * HTTP/1.1\r\n", "the request target must be a path"},
      {"GET / HTTP/2.0\r\n", "version"},
      {"GET / FOO/1.1\r\n", "malformed request line"},
      {"GET / HTTP/1.1\r\n folded: yes\r\n", "malformed header field"},
      {"GET / HTTP/1.1\r\nNo-Colon\r\n", "malformed header field"},
      {"GET / HTTP/1.1\r\nBad Name: x\r\n", "malformed header field"},
      {"GET / HTTP/1.1\r\n: empty\r\n", "malformed header field"},
      {"GET / HTTP/1.1\r\nX: a\x01z\r\n", "a control character in a header value"},
      {"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n",
       "both Transfer-Encoding and Content-Length"},
      {"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n",
       "conflicting Content-Length headers"},
      {"POST / HTTP/1.1\r\nContent-Length: -1\r\n", "malformed Content-Length"},
      {"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n", "malformed Content-Length"},
      {"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n", "malformed Content-Length"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n", "transfer-encoding"},
  };
  for (const auto& [head, want] : cases) {
    std::string error;
    EXPECT_FALSE(Parse(head, &error)) << head;
    EXPECT_EQ(error, want) << head;
  }
}

TEST(HttpHead, PercentDecode) {
  std::string out;
  EXPECT_TRUE(PercentDecode("a%41%62+c", &out));
  EXPECT_EQ(out, "aAb+c");
  EXPECT_FALSE(PercentDecode("%4", &out));
  EXPECT_FALSE(PercentDecode("%", &out));
  EXPECT_FALSE(PercentDecode("%x1", &out));
}

}  // namespace
}  // namespace convoy
