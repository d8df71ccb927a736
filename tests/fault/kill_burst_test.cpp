// Fault: a seller's photo burst while conversation processes die. kill -9 of the conversation
// service in the middle of a burst (photos committed, in flight, queued, outbox rows waiting),
// restart → every photo counted once, every reply sent once. And two replicas consuming the
// same queues give exactly the transcript one replica gives.
#include <gtest/gtest.h>

#include "convoy/amqp.h"
#include "convoy/pg.h"
#include "stack.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

constexpr const char* kBusiness = "106540352242922";

int64_t Query(test::Stack& stack, const std::string& sql, const std::string& param) {
  auto db = PgConnection::Connect(stack.db.dsn());
  if (!db.ok()) return -1;
  auto r = (*db)->Exec(sql, {param});
  return r.ok() && !r->empty() ? r->get_int(0, 0) : -1;
}

int64_t Transitions(test::Stack& stack, const std::string& wa_id, const std::string& note) {
  return Query(
      stack,
      "SELECT count(*) FROM transitions WHERE conversation_key = $1 AND note = '" + note + "'",
      std::string(kBusiness) + ":" + wa_id);
}

// Posts the rest of the burst, then DONE once every photo is applied; checks the transcript,
// the fetches and the parking queues.
void FinishBurst(test::Stack& stack, const std::string& seller,
                 const std::vector<std::string>& photos, size_t from) {
  for (size_t i = from; i < photos.size(); ++i) {
    ASSERT_EQ(stack.PostMessage(seller, test::ImageMessage(photos[i])), 200);
  }
  ASSERT_TRUE(test::WaitUntil(
      [&] { return Transitions(stack, seller, "photo") >= int64_t(photos.size()); }, 90s))
      << Transitions(stack, seller, "photo") << " of " << photos.size() << " photos applied\n"
      << stack.services["conversation"]->process.Log();
  ASSERT_EQ(stack.PostMessage(seller, test::TextMessage("DONE")), 200);
  ASSERT_TRUE(stack.WaitSends(seller, 5));
  ASSERT_TRUE(stack.Drained(60s));
  std::vector<std::string> expected = test::Stack::ListingOpening();
  expected.insert(expected.end(),
                  {
                      "Got it! 📸\n\nKeep sending. Text DONE when finished.",
                      "Great! Got " + std::to_string(photos.size()) +
                          " photos 📸\n\nAny flaws or special notes? [NO, SKIP|YES, ADD]",
                  });
  EXPECT_EQ(stack.graph.SentTexts(seller), expected);
  EXPECT_EQ(Transitions(stack, seller, "photo"), int64_t(photos.size())) << "a photo applied twice";
  EXPECT_EQ(
      Query(
          stack,
          "SELECT count(*) FROM outbox WHERE routing_key = 'media.fetch' AND conversation_key = $1",
          std::string(kBusiness) + ":" + seller),
      int64_t(photos.size()));
  AmqpOptions o{stack.vhost.url(), "burst-parked"};
  for (const char* q :
       {"conversation.inbound.dlq", "conversation.events.dlq", "outbound.send.dlq"}) {
    auto parked = QueueMessageCount(o, q);
    ASSERT_TRUE(parked.ok());
    EXPECT_EQ(*parked, 0u) << q;
  }
}

TEST(KillConversation, MidBurstEveryPhotoCountsOnceAndEveryReplyIsSentOnce) {
  test::Stack stack("kill_burst");
  const std::string seller = "16505550077";
  auto photos = stack.RegisterPhotos("burst-", 40);
  ASSERT_NO_FATAL_FAILURE(stack.StartListing(seller));
  size_t i = 0;
  for (; i < photos.size() / 2; ++i)
    ASSERT_EQ(stack.PostMessage(seller, test::ImageMessage(photos[i])), 200);
  // Mid-burst: some photos applied, the rest queued or in flight.
  ASSERT_TRUE(test::WaitUntil([&] { return Transitions(stack, seller, "photo") >= 3; }, 30s));
  stack.Kill("conversation");
  for (; i < 30; ++i) {
    ASSERT_EQ(stack.PostMessage(seller, test::ImageMessage(photos[i])), 200)
        << "ingress keeps accepting while conversation is down";
  }
  stack.Launch("conversation");
  ASSERT_TRUE(stack.WaitReady("conversation", 60s))
      << stack.services["conversation"]->process.Log();
  FinishBurst(stack, seller, photos, i);
}

TEST(Replicas, TwoConversationReplicasGiveTheTranscriptOfOne) {
  test::Stack stack("replicas");
  stack.Launch("conversation#2");
  ASSERT_TRUE(stack.WaitReady("conversation#2", 60s))
      << stack.services["conversation#2"]->process.Log();
  const std::string seller = "16505550078";
  auto photos = stack.RegisterPhotos("replica-", 30);
  ASSERT_NO_FATAL_FAILURE(stack.StartListing(seller));
  FinishBurst(stack, seller, photos, 0);
  // Both replicas did part of the work.
  const std::string applied = "convoy_conversation_updates_total{result=\"applied\"}";
  EXPECT_GT(stack.Metric("conversation", applied), 0);
  EXPECT_GT(stack.Metric("conversation#2", applied), 0);
}

}  // namespace
}  // namespace convoy
