// Integration: the numbers registry's file form against a real PostgreSQL (the API: api_test.cpp,
// NumbersApi).
#include "numbers.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "convoy/json.h"
#include "testsupport.h"

namespace convoy::conversation {
namespace {

constexpr const char* kSecond = "106540352249999";

std::string NumberJson(const std::string& id, const std::string& extra = "") {
  return R"({"phone_number_id": ")" + id + R"(", "tenant": "acme", "waba_id": "102290129340399", )"
         R"("display_phone_number": "+44 20 7946 0000", "graph_token": "env:ACME_GRAPH_TOKEN")" + extra + "}";
}

class NumbersDb : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(schemas_.LoadDir(test::SourcePath("proto-schemas")).ok());
    auto c = PgConnection::Connect(db_.dsn());
    ASSERT_TRUE(c.ok());
    conn_ = std::move(*c);
    ASSERT_TRUE(RunMigrations(*conn_, test::SourcePath("deploy/postgres")).ok());
  }
  int64_t Count(const std::string& sql) {
    auto r = conn_->Exec(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->get_int(0, 0) : -1;
  }
  test::TestDatabase db_{"conv_numbers"};
  std::unique_ptr<PgConnection> conn_;
  SchemaRegistry schemas_;
};

std::string TempDir(const std::string& name) {
  std::string dir = ::testing::TempDir() + "/" + test::UniqueName(name);
  EXPECT_EQ(::mkdir(dir.c_str(), 0755), 0);
  return dir;
}

void Write(const std::string& path, const std::string& body) {
  std::ofstream out(path);
  out << body;
}

TEST_F(NumbersDb, TheFileFormLoadsEveryFileAndABadOneNamesItself) {
  EXPECT_TRUE(LoadNumberFiles(*conn_, test::SourcePath("deploy/numbers"), schemas_).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM numbers WHERE phone_number_id = '106540352242922' AND status = 'active' "
                  "AND tenant = 'demo' AND source = 'file'"),
            1)
      << "the demo number scripts/run.sh and the fixtures use";
  const std::string dir = TempDir("numbers");
  Write(dir + "/" + kSecond + ".json", NumberJson(kSecond));
  EXPECT_TRUE(LoadNumberFiles(*conn_, dir, schemas_).ok());
  EXPECT_EQ(Count(std::string("SELECT count(*) FROM numbers WHERE phone_number_id = '") + kSecond + "'"), 1);
  // A file named for another number than it holds, and one with a token in clear: refused, named.
  const std::string bad = TempDir("numbers_bad");
  Write(bad + "/106540352241111.json", NumberJson("106540352241111"));
  Write(bad + "/106540352242222.json", NumberJson("106540352243333"));
  Status s = LoadNumberFiles(*conn_, bad, schemas_);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find(bad + "/106540352242222.json: "), std::string::npos) << s.ToString();
  EXPECT_EQ(Count("SELECT count(*) FROM numbers WHERE phone_number_id = '106540352241111'"), 0)
      << "a bad file changes nothing";
}

TEST(ConversationService, ABadNumberFileStopsTheStartNamingTheFile) {
  test::TestDatabase db("conv_badnumber");
  const std::string dir = TempDir("numbers_start");
  Write(dir + "/106540352242922.json",
        R"({"phone_number_id": "106540352242922", "tenant": "demo", "waba_id": "1", "display_phone_number": "15550783881", )"
        R"("graph_token": "EAAGm0PX4ZCpsBAK"})");
  test::ChildProcess service;
  ASSERT_TRUE(service.Start({test::BinaryPath("services/conversation/convoy-conversation"), "--pg_dsn=" + db.dsn(),
                             "--amqp_url=amqp://guest:guest@127.0.0.1:1/%2f", "--http_port=0",
                             "--schema_dir=" + test::SourcePath("proto-schemas"),
                             "--migrations_dir=" + test::SourcePath("deploy/postgres"), "--migrate",
                             "--flows_dir=" + test::SourcePath("deploy/flows"), "--numbers_dir=" + dir},
                            dir + "/service.log"));
  EXPECT_EQ(service.Wait(), 1);
  std::string log = service.Log();
  EXPECT_NE(log.find(dir + "/106540352242922.json: graph_token says where the Graph token is"), std::string::npos) << log;
  EXPECT_NE(log.find("--numbers_dir"), std::string::npos) << log;
  EXPECT_EQ(log.find("EAAGm0PX4ZCpsBAK"), std::string::npos) << "the token reached the log";
}

}  // namespace
}  // namespace convoy::conversation
