#include "convoy/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>

namespace convoy {
namespace {

TEST(LoadSecret, FileWinsOverEnvironmentAndNewlineIsStripped) {
  std::string path = ::testing::TempDir() + "/secret";
  std::ofstream(path) << "from-file\n";
  setenv("CONVOY_TEST_SECRET", "from-env", 1);
  auto r = LoadSecret("CONVOY_TEST_SECRET", path);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "from-file");
  auto e = LoadSecret("CONVOY_TEST_SECRET", "");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(*e, "from-env");
}

TEST(LoadSecret, MissingIsAnErrorThatNamesTheVariableNotTheValue) {
  unsetenv("CONVOY_TEST_SECRET_MISSING");
  auto r = LoadSecret("CONVOY_TEST_SECRET_MISSING", "");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("CONVOY_TEST_SECRET_MISSING"), std::string::npos);
  EXPECT_FALSE(LoadSecret("X", "/nonexistent/secret").ok());
}

TEST(Validators, RejectOutOfRangeValues) {
  EXPECT_TRUE(ValidatePort("p", 0));
  EXPECT_TRUE(ValidatePort("p", 8080));
  EXPECT_FALSE(ValidatePort("p", 70000));
  EXPECT_FALSE(ValidatePositive("n", 0));
  EXPECT_TRUE(ValidateAmqpUrl("u", "amqp://guest:guest@localhost:5672/%2f"));
  EXPECT_FALSE(ValidateAmqpUrl("u", "http://x"));
  EXPECT_TRUE(ValidateHttpUrl("g", "https://graph.facebook.com/v24.0"));
  EXPECT_FALSE(ValidateHttpUrl("g", "https://graph.facebook.com/"));
  EXPECT_FALSE(ValidateHttpUrl("g", "ftp://x"));
}

}  // namespace
}  // namespace convoy
