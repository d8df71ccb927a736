#include "convoy/graph_numbers.h"

#include <gtest/gtest.h>

namespace convoy {
namespace {

TEST(GraphVersion, ReplacesTheBaseUrlsVersionOrAppendsOne) {
  EXPECT_EQ(WithGraphVersion("https://graph.facebook.com/v24.0", "v27.0"),
            "https://graph.facebook.com/v27.0");
  EXPECT_EQ(WithGraphVersion("http://127.0.0.1:4000/v24.0", "v100.1"),
            "http://127.0.0.1:4000/v100.1");
  EXPECT_EQ(WithGraphVersion("https://graph.facebook.com/v24.0", ""),
            "https://graph.facebook.com/v24.0");
  EXPECT_EQ(WithGraphVersion("https://graph.facebook.com", "v27.0"),
            "https://graph.facebook.com/v27.0");
  EXPECT_EQ(WithGraphVersion("https://proxy.example/graph", "v27.0"),
            "https://proxy.example/graph/v27.0");
}

}  // namespace
}  // namespace convoy
