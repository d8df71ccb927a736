#include "convoy/secret_refs.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <fstream>

namespace convoy {
namespace {

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

// Neither the message nor the whole status ever shows the value.
void ExpectNamesRefNotValue(const Status& s, const std::string& ref, const std::string& value) {
  EXPECT_NE(s.message().find(ref), std::string::npos) << s.ToString();
  EXPECT_EQ(s.ToString().find(value), std::string::npos) << "the value leaked: " << s.ToString();
}

TEST(SecretRefs, OnlyEnvNamesAndAbsoluteFilesAreReferences) {
  for (const char* ok : {"env:CONVOY_GRAPH_TOKEN", "env:_x1", "file:/run/secrets/acme/token"}) {
    EXPECT_TRUE(ValidSecretRef(ok)) << ok;
  }
  for (const char* bad : {"", "env:", "env:1X", "env:A-B", "file:", "file:/", "file:relative",
                          "EAAGm0PX4ZCpsBAK", "ENV:X", "https://vault/x"}) {
    EXPECT_FALSE(ValidSecretRef(bad)) << bad;
  }
  SecretRefs refs;
  auto r = refs.Resolve("EAAGm0PX4ZCpsBAK");  // a token where its reference belongs
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(r.status().ToString().find("EAAGm0PX4ZCpsBAK"), std::string::npos)
      << r.status().ToString();
}

TEST(SecretRefs, EnvIsReadTrimmedAndAMissingOneIsNamed) {
  setenv("CONVOY_TEST_REF_TOKEN", "  tok-env-123\n", 1);
  unsetenv("CONVOY_TEST_REF_MISSING");
  SecretRefs refs;
  auto r = refs.Resolve("env:CONVOY_TEST_REF_TOKEN");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "tok-env-123");
  auto missing = refs.Resolve("env:CONVOY_TEST_REF_MISSING");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_EQ(missing.status().message(), "env:CONVOY_TEST_REF_MISSING not set");
  setenv("CONVOY_TEST_REF_TOKEN", "tok with-space", 1);
  auto spaced = refs.Resolve("env:CONVOY_TEST_REF_TOKEN");
  ASSERT_FALSE(spaced.ok());
  ExpectNamesRefNotValue(spaced.status(), "env:CONVOY_TEST_REF_TOKEN", "with-space");
  setenv("CONVOY_TEST_REF_TOKEN", " \n", 1);
  EXPECT_EQ(refs.Resolve("env:CONVOY_TEST_REF_TOKEN").status().message(),
            "env:CONVOY_TEST_REF_TOKEN is empty");
  unsetenv("CONVOY_TEST_REF_TOKEN");
}

TEST(SecretRefs, FileIsTrimmedAndBadFilesAreErrorsThatNeverShowTheValue) {
  const std::string path = ::testing::TempDir() + "secret_refs_file";
  WriteFile(path, "tok-file-1\r\n");
  SecretRefs refs;
  auto r = refs.Resolve("file:" + path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "tok-file-1");
  SecretRefs fresh(std::chrono::seconds(0));
  WriteFile(path, "tok-line-1\ntok-line-2\n");
  auto two = fresh.Resolve("file:" + path);
  ASSERT_FALSE(two.ok());
  ExpectNamesRefNotValue(two.status(), "file:" + path, "tok-line");
  WriteFile(path, std::string(70 << 10, 'a'));
  EXPECT_NE(fresh.Resolve("file:" + path).status().message().find("over 64 KiB"),
            std::string::npos);
  WriteFile(path, "\n");
  EXPECT_EQ(fresh.Resolve("file:" + path).status().message(), "file:" + path + " is empty");
  std::remove(path.c_str());
  auto gone = fresh.Resolve("file:" + path);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), Code::kNotFound);
  EXPECT_EQ(gone.status().message(), "file:" + path + " cannot be read: No such file or directory");
}

// A rotated Kubernetes Secret: the file is replaced (a new inode) or rewritten in place; either is
// read at the first look after check_every, not before.
TEST(SecretRefs, ARotatedFileIsReadAtTheNextLookAfterTheInterval) {
  const std::string path = ::testing::TempDir() + "secret_refs_rotated", next = path + ".next";
  WriteFile(path, "tok-old\n");
  SecretRefs refs(std::chrono::hours(1));
  ASSERT_EQ(*refs.Resolve("file:" + path), "tok-old");
  WriteFile(next, "tok-new-by-rename\n");
  ASSERT_EQ(std::rename(next.c_str(), path.c_str()), 0);
  EXPECT_EQ(*refs.Resolve("file:" + path), "tok-old") << "not looked at within check_every";

  SecretRefs watching(std::chrono::seconds(0));
  EXPECT_EQ(*watching.Resolve("file:" + path), "tok-new-by-rename");
  WriteFile(path, "tok-rewritten-in-place\n");
  EXPECT_EQ(*watching.Resolve("file:" + path), "tok-rewritten-in-place");
  std::remove(path.c_str());
  EXPECT_FALSE(watching.Resolve("file:" + path).ok())
      << "a removed Secret is no token, not the last one read";
}

TEST(SecretRefs, AnAliasResolvesAsItsTargetAndASetValueAsItself) {
  const std::string path = ::testing::TempDir() + "secret_refs_alias";
  WriteFile(path, "tok-from-flag-file\n");
  setenv("CONVOY_TEST_REF_ALIASED", "tok-from-env", 1);
  SecretRefs refs(std::chrono::seconds(0));
  refs.Alias("env:CONVOY_TEST_REF_ALIASED", "file:" + path);
  EXPECT_EQ(*refs.Resolve("env:CONVOY_TEST_REF_ALIASED"), "tok-from-flag-file");
  refs.Set("env:CONVOY_TEST_REF_SET", "tok-set");
  EXPECT_EQ(*refs.Resolve("env:CONVOY_TEST_REF_SET"), "tok-set");
  unsetenv("CONVOY_TEST_REF_ALIASED");
  std::remove(path.c_str());
}

}  // namespace
}  // namespace convoy
