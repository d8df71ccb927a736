// Unit: the broker connection's settings are checked before anything connects.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "convoy/amqp.h"
#include "convoy/amqp_admin.h"

namespace convoy {
namespace {

TEST(RedactAmqpUrl, HidesThePasswordOnly) {
  EXPECT_EQ(RedactAmqpUrl("amqps://convoy-ingress:s3cr3t@rabbit.convoy.svc:5671/%2f"),
            "amqps://convoy-ingress:***@rabbit.convoy.svc:5671/%2f");
  EXPECT_EQ(RedactAmqpUrl("amqp://u:p@ss@host/v"), "amqp://u:***@host/v");
  EXPECT_EQ(RedactAmqpUrl("amqp://u:pw@host"), "amqp://u:***@host");
  EXPECT_EQ(RedactAmqpUrl("amqp://user@host:5672/v"), "amqp://user@host:5672/v");
  EXPECT_EQ(RedactAmqpUrl("amqp://host:5672/v@x"), "amqp://host:5672/v@x");
  EXPECT_EQ(RedactAmqpUrl("not a url"), "not a url");
}

// A cluster's nodes: comma-separated, spaces trimmed, every password hidden, one scheme for all.
TEST(AmqpUrls, AClustersNodesAreSplitRedactedAndOfOneScheme) {
  EXPECT_EQ(AmqpUrls(" amqp://u:p@a:1/%2f ,amqp://u:p@b:2/%2f,, "),
            (std::vector<std::string>{"amqp://u:p@a:1/%2f", "amqp://u:p@b:2/%2f"}));
  EXPECT_EQ(AmqpUrls("amqp://a"), std::vector<std::string>{"amqp://a"});
  EXPECT_EQ(RedactAmqpUrl("amqp://u:one@a:1/%2f, amqp://u:two@b:2/%2f"),
            "amqp://u:***@a:1/%2f,amqp://u:***@b:2/%2f");
  EXPECT_TRUE(ValidateAmqpOptions({"amqps://u:p@a:5671/%2f,amqps://u:p@b:5671/%2f", "t"}).ok());
  Status mixed = ValidateAmqpOptions({"amqps://u:p@a:5671/%2f,amqp://u:p@b:5672/%2f", "t"});
  EXPECT_EQ(mixed.code(), Code::kInvalidArgument);
  EXPECT_NE(mixed.message().find("mix"), std::string::npos) << mixed.message();
  EXPECT_EQ(ValidateAmqpOptions({"amqp://u:p@a:5672/%2f,http://b", "t"}).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(ValidateAmqpOptions({" , ", "t"}).code(), Code::kInvalidArgument);
}

class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    char name[] = "/tmp/convoy-amqp-options-XXXXXX";
    int fd = ::mkstemp(name);
    if (fd >= 0) ::close(fd);
    path_ = name;
    std::ofstream(path_) << content;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(ValidateAmqpOptions, PlainUrlsNeedNoFilesAndTlsUrlsMayUseTheSystemStore) {
  EXPECT_TRUE(ValidateAmqpOptions({"amqp://guest:guest@127.0.0.1:5672/%2f", "t"}).ok());
  EXPECT_TRUE(ValidateAmqpOptions({"amqps://u:p@rabbit:5671/%2f", "t"}).ok());
}

TEST(ValidateAmqpOptions, AnUnreadableOrEmptyCaFileNamesTheFlag) {
  AmqpOptions o{"amqps://u:secret@rabbit:5671/%2f", "t"};
  o.ca_file = "/nonexistent/ca.pem";
  Status s = ValidateAmqpOptions(o);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("--amqp_ca_file"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("/nonexistent/ca.pem"), std::string::npos) << s.ToString();
  TempFile empty("");
  o.ca_file = empty.path();
  s = ValidateAmqpOptions(o);
  EXPECT_NE(s.message().find("empty"), std::string::npos) << s.ToString();
}

TEST(ValidateAmqpOptions, ACaForAPlainUrlIsRefusedNotIgnored) {
  TempFile ca("-----BEGIN CERTIFICATE-----\n");
  AmqpOptions o{"amqp://u:secret@rabbit:5672/%2f", "t"};
  o.ca_file = ca.path();
  Status s = ValidateAmqpOptions(o);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("amqps://"), std::string::npos) << s.ToString();
  EXPECT_EQ(s.message().find("secret"), std::string::npos)
      << "the password leaked: " << s.ToString();
}

TEST(ValidateAmqpOptions, AClientCertificateNeedsItsKey) {
  TempFile cert("-----BEGIN CERTIFICATE-----\n");
  AmqpOptions o{"amqps://u:p@rabbit:5671/%2f", "t"};
  o.cert_file = cert.path();
  EXPECT_EQ(ValidateAmqpOptions(o).code(), Code::kInvalidArgument);
  o.key_file = "/nonexistent/key.pem";
  Status s = ValidateAmqpOptions(o);
  EXPECT_NE(s.message().find("--amqp_key_file"), std::string::npos) << s.ToString();
}

TEST(ValidateAmqpOptions, OpeningChecksTooSoNothingConnects) {
  // Port 1: nothing listens; the settings are refused before any connection is tried.
  AmqpOptions o{"amqps://u:p@localhost:1/%2f", "t"};
  o.ca_file = "/nonexistent/ca.pem";
  AmqpAdmin admin;
  Status s = admin.Open(o);
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.ToString();
}

TEST(ValidateAmqpOptions, AMalformedUrlIsReportedWithoutItsPassword) {
  AmqpAdmin admin;
  Status s = admin.Open({"amqps://u:hunter2@host:notaport/%2f", "t"});
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.message().find("hunter2"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace convoy
