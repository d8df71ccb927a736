// Integration: real PostgreSQL. The exactly-once contract of one delivery = one transaction.
#include "processor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <thread>

#include "convoy/topology.h"
#include "testsupport.h"

namespace convoy::conversation {
namespace {

Delivery TextDelivery(const std::string& wamid, const std::string& text, const std::string& wa_id = "16505551234") {
  Delivery d;
  d.queue = queues::kConversationInbound;
  d.body = R"({"schema":"inbound.message","version":1,"correlation_id":"corr-)" + wamid +
           R"(","received_at":"2026-01-01T00:00:00.000Z","phone_number_id":"106540352242922","wa_id":")" + wa_id +
           R"(","conversation_key":"106540352242922:)" + wa_id + R"(","profile_name":"Kerry",)" +
           R"("message":{"from":")" + wa_id + R"(","id":")" + wamid +
           R"(","timestamp":"1750000000","type":"text","text":{"body":")" + text + R"("}}})";
  d.headers[headers::kDedupeKey] = wamid;
  d.headers[headers::kCorrelationId] = "corr-" + wamid;
  return d;
}

class ProcessorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(schemas_.LoadDir(test::SourcePath("proto-schemas")).ok());
    auto c = PgConnection::Connect(db_.dsn());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    conn_ = std::move(*c);
    ASSERT_TRUE(RunMigrations(*conn_, test::SourcePath("deploy/postgres")).ok());
  }
  int64_t Count(const std::string& sql) {
    auto r = conn_->Exec(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->get_int(0, 0) : -1;
  }
  test::TestDatabase db_{"conv_processor"};
  SchemaRegistry schemas_;
  std::unique_ptr<PgConnection> conn_;
};

TEST_F(ProcessorTest, RedeliveriesProduceOneTransitionAndOneSend) {
  int commits = 0;
  Processor p(*conn_, schemas_, [&] { ++commits; });
  Delivery d = TextDelivery("wamid.A", "hello");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(p.Handle(d).kind, Disposition::Kind::kAck);
  EXPECT_EQ(Count("SELECT count(*) FROM transitions"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM outbox WHERE routing_key = 'outbound.send'"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM inbound_messages"), 1);
  EXPECT_EQ(commits, 1);
  auto key = conn_->Exec("SELECT dedupe_key FROM outbox");
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->get(0, 0), "106540352242922:16505551234:wamid.A:reply");
}

TEST_F(ProcessorTest, InvalidBodyIsDeadLetteredAndWritesNothing) {
  Processor p(*conn_, schemas_, nullptr);
  Delivery d = TextDelivery("wamid.B", "x");
  d.body = R"({"schema":"inbound.message","version":1})";
  auto disp = p.Handle(d);
  EXPECT_EQ(disp.kind, Disposition::Kind::kDeadLetter);
  EXPECT_NE(disp.reason.find("schema"), std::string::npos);
  d.body = "not json";
  EXPECT_EQ(p.Handle(d).kind, Disposition::Kind::kDeadLetter);
  EXPECT_EQ(Count("SELECT count(*) FROM inbound_messages"), 0);
}

// Eight consumers, one conversation, every delivery twice in a shuffled order: the
// per-conversation lock serializes them and the dedupe row absorbs the duplicates.
TEST_F(ProcessorTest, ConcurrentDuplicatedDeliveriesApplyExactlyOnceEach) {
  constexpr int kMessages = 40, kThreads = 8;
  std::vector<Delivery> all;
  for (int i = 0; i < kMessages; ++i) {
    all.push_back(TextDelivery("wamid.C" + std::to_string(i), "m" + std::to_string(i)));
    all.push_back(all.back());
  }
  std::mt19937 rng(42);
  std::shuffle(all.begin(), all.end(), rng);
  std::atomic<size_t> next{0};
  std::atomic<int> not_acked{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      auto c = PgConnection::Connect(db_.dsn());
      ASSERT_TRUE(c.ok());
      Processor p(**c, schemas_, nullptr);
      for (size_t i; (i = next++) < all.size();) {
        if (p.Handle(all[i]).kind != Disposition::Kind::kAck) ++not_acked;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(not_acked.load(), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM transitions"), kMessages);
  EXPECT_EQ(Count("SELECT count(*) FROM outbox"), kMessages);
  EXPECT_EQ(Count("SELECT (state->>'messages')::int FROM conversations"), kMessages);
}

}  // namespace
}  // namespace convoy::conversation
