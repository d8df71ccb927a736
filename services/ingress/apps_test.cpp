#include "apps.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>

namespace convoy::ingress {
namespace {

TEST(Apps, APathNamesItsApp) {
  EXPECT_EQ(AppOfPath("/webhook"), std::optional<std::string>("default"));
  EXPECT_EQ(AppOfPath("/webhook/default"), std::optional<std::string>("default"));
  EXPECT_EQ(AppOfPath("/webhook/acme-eu_2"), std::optional<std::string>("acme-eu_2"));
  EXPECT_EQ(AppOfPath("/webhook/" + std::string(64, 'a')),
            std::optional<std::string>(std::string(64, 'a')));
  for (const char* other :
       {"/webhook/", "/webhooks", "/webhookacme", "/webhook/Acme", "/webhook/-acme",
        "/webhook/acme/x", "/webhook/../metrics", "/webhook/acme.eu", "/", ""}) {
    EXPECT_EQ(AppOfPath(other), std::nullopt) << other;
  }
  EXPECT_EQ(AppOfPath("/webhook/" + std::string(65, 'a')), std::nullopt);
}

class AppsFile : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("APPS_TEST_ACME_SECRET", "acme-secret", 1);
    ::setenv("APPS_TEST_ACME_TOKEN", "acme-token", 1);
    ::unsetenv("APPS_TEST_UNSET");
    std::ofstream(secret_file_) << "globex-secret\n";
    std::ofstream(token_file_) << "globex-token";
    std::ofstream(previous_file_) << "globex-old\n";
  }
  void TearDown() override {
    ::unsetenv("APPS_TEST_ACME_SECRET");
    ::unsetenv("APPS_TEST_ACME_TOKEN");
  }
  // The error for a file holding `text`; the test fails if it parsed.
  static std::string Error(const std::string& text) {
    auto apps = ParseApps(text, "apps.txt");
    EXPECT_FALSE(apps.ok()) << text;
    EXPECT_EQ(apps.status().code(), Code::kInvalidArgument);
    return apps.ok() ? "" : apps.status().message();
  }
  const std::string dir_ = ::testing::TempDir();
  const std::string secret_file_ = dir_ + "/apps_test_globex_secret";
  const std::string token_file_ = dir_ + "/apps_test_globex_token";
  const std::string previous_file_ = dir_ + "/apps_test_globex_previous";
};

TEST_F(AppsFile, EachLineIsAnAppWithItsReferencesResolved) {
  const std::string text =
      "# app  secret  token  previous\n\n"
      "acme\tenv:APPS_TEST_ACME_SECRET  env:APPS_TEST_ACME_TOKEN\r\n"
      "  globex file:" +
      secret_file_ + " file:" + token_file_ + " file:" + previous_file_ + "\n";
  auto apps = ParseApps(text, "apps.txt");
  ASSERT_TRUE(apps.ok()) << apps.status().ToString();
  ASSERT_EQ(apps->size(), 2u);
  EXPECT_EQ(apps->at("acme").app_secret, "acme-secret");
  EXPECT_EQ(apps->at("acme").verify_token, "acme-token");
  EXPECT_EQ(apps->at("acme").previous_app_secret, "");
  EXPECT_EQ(apps->at("globex").app_secret, "globex-secret")
      << "a file's trailing newline is not the secret's";
  EXPECT_EQ(apps->at("globex").verify_token, "globex-token");
  EXPECT_EQ(apps->at("globex").previous_app_secret, "globex-old");
  // The same, read from a file.
  const std::string path = dir_ + "/apps_test_apps.txt";
  std::ofstream(path) << text;
  auto loaded = LoadAppsFile(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->size(), 2u);
  EXPECT_FALSE(LoadAppsFile(dir_ + "/no_such_apps.txt").ok());
  EXPECT_TRUE(ParseApps("# none yet\n", "apps.txt")->empty());
}

TEST_F(AppsFile, ABadLineIsNamedAndNeverRepeatsASecret) {
  const std::string acme = " env:APPS_TEST_ACME_SECRET env:APPS_TEST_ACME_TOKEN\n";
  EXPECT_NE(Error("acme env:APPS_TEST_ACME_SECRET\n")
                .find("apps.txt:1: expected: app, app secret, verify token"),
            std::string::npos);
  EXPECT_NE(Error("# apps\nAcme" + acme).find("apps.txt:2: an app name is 1-64 of a-z"),
            std::string::npos);
  EXPECT_NE(Error("default" + acme).find("apps.txt:1: the app default is /webhook's"),
            std::string::npos);
  EXPECT_NE(
      Error("acme" + acme + "acme" + acme).find("apps.txt:2: the app acme is already on line 1"),
      std::string::npos);
  EXPECT_NE(Error("acme env:APPS_TEST_UNSET env:APPS_TEST_ACME_TOKEN\n")
                .find("apps.txt:1: acme's app secret: env:APPS_TEST_UNSET: the environment "
                      "variable is unset or empty"),
            std::string::npos);
  EXPECT_NE(Error("acme env:APPS_TEST_ACME_SECRET file:" + dir_ + "/no_such_token\n")
                .find("acme's verify token: file:" + dir_ +
                      "/no_such_token: the file cannot be read or is empty"),
            std::string::npos);
  // A secret written in the file itself: refused, and not repeated.
  const std::string in_clear =
      Error("acme 0123456789abcdef0123456789abcdef env:APPS_TEST_ACME_TOKEN\n");
  EXPECT_NE(in_clear.find("acme's app secret: not env:NAME or file:/absolute/path"),
            std::string::npos)
      << in_clear;
  EXPECT_EQ(in_clear.find("0123456789abcdef"), std::string::npos) << in_clear;
  const std::string previous = Error(
      "acme" + std::string(" env:APPS_TEST_ACME_SECRET env:APPS_TEST_ACME_TOKEN old-secret\n"));
  EXPECT_NE(previous.find("acme's previous app secret: not env:NAME"), std::string::npos)
      << previous;
  EXPECT_EQ(previous.find("old-secret"), std::string::npos) << previous;
  EXPECT_NE(Error("acme env:1BAD env:APPS_TEST_ACME_TOKEN\n").find("not env:NAME"),
            std::string::npos);
}

TEST(Apps, TwoAppsNeverShareASecret) {
  AppSet apps = {{"default", {"s1", "t"}}, {"acme", {"s2", "t"}}};
  EXPECT_TRUE(CheckSecretsDistinct(apps).ok())
      << "a verify token may be shared: it proves nothing about a POST";
  apps["globex"] = {"s3", "t", "s1"};
  Status s = CheckSecretsDistinct(apps);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("the apps default and globex have the same app secret"),
            std::string::npos)
      << s.ToString();
  EXPECT_EQ(s.message().find("s1"), std::string::npos);
  apps["globex"] = {"s2", "t"};
  EXPECT_NE(CheckSecretsDistinct(apps).message().find("acme and globex"), std::string::npos);
}

}  // namespace
}  // namespace convoy::ingress
