// Fault: kill -9 the media service while it downloads a photo (the fake Graph API holds the
// download for 3 s), restart it, and check: the photo is stored once (one file, one row, the
// right bytes) and nothing partial or temporary was ever left in the media folder.
#include <gtest/gtest.h>

#include <set>

#include "convoy/amqp.h"
#include "convoy/pg.h"
#include "convoy/topology.h"
#include "stack.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

TEST(KillMedia, ADownloadCutByKillNineIsStoredOnceAndLeavesNothingPartial) {
  test::Stack stack("kill_media");
  stack.graph.RegisterMedia("kill-photo", test::FixturePath("media/photo2.jpg"), "image/jpeg");
  stack.graph.Inject(200, 0, 1, 3000, "/_download/");
  Publisher pub(AmqpOptions{stack.vhost.url(), "kill-media-test"});
  pub.Start();
  ASSERT_TRUE(pub.WaitConnected(20s));
  AmqpMessage m;
  m.exchange = exchanges::kCommands;
  m.routing_key = queues::kMediaFetch;
  m.message_id = "kill-fetch";
  m.body =
      R"({"schema":"media.fetch","version":1,"correlation_id":"corr-kill-fetch","dedupe_key":"kill-fetch",)"
      R"("conversation_key":"106540352242922:16505551234","phone_number_id":"106540352242922",)"
      R"("media_id":"kill-photo","mime_type":"image/jpeg"})";
  m.headers = {{headers::kDedupeKey, "kill-fetch"}, {headers::kCorrelationId, "corr-kill-fetch"}};
  ASSERT_TRUE(pub.PublishAndWait(m, 10s).ok());
  const std::string media_dir = stack.dir + "/media";
  ASSERT_TRUE(test::WaitUntil([&] { return stack.graph.DownloadRequests() >= 1; }, 30s));
  stack.Kill("media");  // mid-download: the file it was writing has no name
  EXPECT_TRUE(test::ListDir(media_dir).empty())
      << "left behind: " << *test::ListDir(media_dir).begin();
  stack.Launch("media");
  ASSERT_TRUE(stack.WaitReady("media", 60s)) << stack.services["media"]->process.Log();
  auto db = PgConnection::Connect(stack.db.dsn());
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        auto n = (*db)->Exec("SELECT count(*) FROM media_objects WHERE media_id = 'kill-photo'");
        return n.ok() && n->get_int(0, 0) == 1;
      },
      60s))
      << stack.services["media"]->process.Log();
  const std::string bytes = test::ReadFile(test::FixturePath("media/photo2.jpg"));
  auto files = test::ListDir(media_dir);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(test::ReadFile(media_dir + "/" + *files.begin()), bytes);
  EXPECT_EQ(files.begin()->substr(64), ".jpg");
  ASSERT_TRUE(stack.Drained(30s));
  AmqpOptions o{stack.vhost.url(), "kill-media-parked"};
  auto parked = QueueMessageCount(o, "media.fetch.dlq");
  ASSERT_TRUE(parked.ok());
  EXPECT_EQ(*parked, 0u);
}

}  // namespace
}  // namespace convoy
