#include "convoy/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "testsupport.h"

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

namespace convoy {
namespace {

// Started from any folder, a binary finds its data: as given when it exists from there, else in
// the installed layout, else in the source tree it was built from.
TEST(FindDataDir, RelativeDefaultsAreFoundFromAnyWorkingDirectory) {
  char cwd[4096];
  ASSERT_NE(::getcwd(cwd, sizeof(cwd)), nullptr);
  ASSERT_EQ(::chdir("/"), 0);
  EXPECT_EQ(FindDataDir("proto-schemas", "proto-schemas"), test::SourcePath("proto-schemas"));
  EXPECT_EQ(FindDataDir("deploy/postgres", "migrations"), test::SourcePath("deploy/postgres"));
  EXPECT_EQ(FindDataDir("no/such/dir", "nothing"), "no/such/dir")
      << "unchanged: the error names what was given";
  EXPECT_EQ(FindDataDir("/abs/path", "x"), "/abs/path");
  EXPECT_EQ(FindDataDir("tmp", "x"), "tmp") << "exists from the working directory";
  ASSERT_EQ(::chdir(cwd), 0);
}

TEST(MakeDirs, CreatesEveryMissingParentAndRefusesAFile) {
  std::string base = ::testing::TempDir() + "/" + test::UniqueName("mkdirs");
  EXPECT_TRUE(MakeDirs(base + "/a/b/c").ok());
  struct stat st;
  EXPECT_EQ(::stat((base + "/a/b/c").c_str(), &st), 0);
  EXPECT_TRUE(MakeDirs(base + "/a/b/c").ok()) << "again: nothing to do";
  std::ofstream(base + "/file") << "x";
  Status s = MakeDirs(base + "/file/sub");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/file"), std::string::npos) << s.ToString();
}

// A flag out of range says its value and the range as written: whole numbers in full.
TEST(Flags, OutOfRangeSaysTheValueAndTheRangeInFull) {
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(InRange("max_media_bytes_per_user_per_day", 1000, 1 << 20, 1099511627776.0));
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "invalid value for --max_media_bytes_per_user_per_day: 1000 (must be "
            "1048576..1099511627776)\n");
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(InRange("ratio", 1.5, 0, 1));
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "invalid value for --ratio: 1.5 (must be 0..1)\n");
  EXPECT_TRUE(InRange("ratio", 0.5, 0, 1));
}

}  // namespace
}  // namespace convoy
