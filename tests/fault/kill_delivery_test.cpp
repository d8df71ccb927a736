// kill -9 of convoy-outbound in the middle of a delivery attempt: the command was not acked, so it
// comes back; a webhook goes again with the same webhook-id, a Shopify product is not made twice
// (the attempt's outcome is unknown, so the product is looked up by its tag first).
#include <gtest/gtest.h>

#include "convoy/crypto.h"
#include "convoy/pg.h"
#include "deliveries.h"
#include "fake_sink.h"
#include "shopify.h"
#include "stack.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

std::string DeliveryStatus(PgConnection& db, const std::string& result_id) {
  auto r = db.Exec("SELECT status FROM deliveries WHERE result_id = $1", {result_id});
  return r.ok() && !r->empty() ? r->get(0, 0) : "";
}

TEST(KillDelivery, AWebhookInFlightWhenOutboundDiesGoesAgainWithTheSameId) {
  fake::FakeReceiver receiver({test::Key(test::kOldSecret)});
  ASSERT_TRUE(receiver.Start().ok());
  receiver.Script({{200, {}, 60000}});  // taken, but answered only after the caller died
  std::string file =
      test::WriteSinks(R"({"sinks": [)" +
                       test::WebhookSink("listing", receiver.url(),
                                         R"([")" + std::string(test::kOldSecret) + R"("])", 2) +
                       "]}");
  test::Stack stack("fault_deliver_kill", {},
                    {{"outbound", {"--sinks_file=" + file, "--delivery_schedule=0,1s,1s"}}});
  auto db = PgConnection::Connect(stack.db.dsn());
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(test::PublishDeliver(stack, test::DeliverCommand("result-kill-1", "listing"),
                                   "result-kill-1:deliver", "corr-kill-1")
                  .ok());
  ASSERT_TRUE(receiver.WaitFor(1, 30s));
  EXPECT_EQ(DeliveryStatus(**db, "result-kill-1"), "attempting") << "killed mid-attempt";
  stack.Kill("outbound");
  receiver.ReleaseDelayed();
  stack.Launch("outbound");
  ASSERT_TRUE(stack.WaitReady("outbound", 60s));
  ASSERT_TRUE(
      test::WaitUntil([&] { return DeliveryStatus(**db, "result-kill-1") == "delivered"; }, 60s))
      << stack.services["outbound"]->process.Log();
  auto requests = receiver.Requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].id, "result-kill-1");
  EXPECT_EQ(requests[1].id, "result-kill-1") << "the receiver can tell it is the same result";
  EXPECT_TRUE(requests[1].verified);
}

TEST(KillDelivery, AShopifyProductIsNeverMadeTwiceWhenOutboundDiesMidCreate) {
  fake::FakeShopify shop("shpat_test");
  ASSERT_TRUE(shop.Start().ok());
  shop.DelayNextCreate(60000);  // the product is made at once; the answer never reaches the caller
  std::string file = test::WriteSinks(
      R"({"sinks": [{"name": "shop", "kind": "shopify", "store": "fake.myshopify.com",
      "url": ")" +
      shop.url() + R"(", "token": "shpat_test", "allow_private": true, "timeout_seconds": 2}]})");
  test::Stack stack(
      "fault_deliver_shop", {},
      {{"outbound",
        {"--sinks_file=" + file, "--delivery_schedule=0,1s,1s", "--shopify_reconcile_seconds=3"}}});
  auto db = PgConnection::Connect(stack.db.dsn());
  ASSERT_TRUE(db.ok());
  // A stored photo for the product's media.
  const std::string bytes = test::ReadFile(test::FixturePath("media/photo1.jpg"));
  const std::string stored = Sha256Hex(bytes) + ".jpg";
  std::ofstream(stack.dir + "/media/" + stored, std::ios::binary) << bytes;
  const std::string photos =
      R"([{"field":"photos","media_id":"m-shop-1","sent_at":1,"stored_name":")" + stored + R"("}])";
  ASSERT_TRUE(test::PublishDeliver(stack, test::DeliverCommand("result-shop-1", "shop", photos),
                                   "result-shop-1:deliver", "corr-shop-1")
                  .ok());
  ASSERT_TRUE(test::WaitUntil([&] { return shop.Products().size() == 1; }, 30s));
  stack.Kill("outbound");
  shop.ReleaseDelayed();
  stack.Launch("outbound");
  ASSERT_TRUE(stack.WaitReady("outbound", 60s));
  ASSERT_TRUE(
      test::WaitUntil([&] { return DeliveryStatus(**db, "result-shop-1") == "delivered"; }, 60s))
      << stack.services["outbound"]->process.Log();
  auto products = shop.Products();
  ASSERT_EQ(products.size(), 1u) << "reconciled by tag, not created again";
  const auto& p = products[0];
  EXPECT_EQ(p.status, "DRAFT");
  EXPECT_EQ(p.tags, std::vector<std::string>{outbound::shopify::TagFor("result-shop-1")});
  EXPECT_EQ(p.price, "35.00");
  EXPECT_EQ(p.vendor, "Nike");
  EXPECT_EQ(p.title, "Nike running shoes, size 42, used, $35");
  ASSERT_EQ(p.media.size(), 1u);
  HttpClientRequest get;
  get.url = p.media[0];
  auto served = HttpFetch(get);
  ASSERT_TRUE(served.ok()) << served.status().ToString();
  EXPECT_EQ(served->status, 200) << "Shopify can fetch the photo from its signed link: "
                                 << p.media[0];
  EXPECT_EQ(served->body, bytes);
  auto row = (*db)->Exec("SELECT external_id FROM deliveries WHERE result_id = 'result-shop-1'");
  ASSERT_TRUE(row.ok());
  EXPECT_EQ(row->get(0, 0), p.id);
  EXPECT_NE(stack.services["outbound"]->process.Log().find("event=shopify_reconciled"),
            std::string::npos);
}

// The store's query-cost bucket is waited for, not spun against: many results, few THROTTLED.
TEST(KillDelivery, ShopifyThrottlingIsWaitedForNotSpunAgainst) {
  fake::FakeShopify shop("shpat_test", 60, 20);  // a small bucket: two products' worth
  ASSERT_TRUE(shop.Start().ok());
  std::string file = test::WriteSinks(
      R"({"sinks": [{"name": "shop", "kind": "shopify", "store": "fake.myshopify.com",
      "url": ")" +
      shop.url() + R"(", "token": "shpat_test", "allow_private": true}]})");
  test::Stack stack("fault_deliver_throttle", {},
                    {{"outbound", {"--sinks_file=" + file, "--delivery_schedule=0,1s,1s"}}});
  auto db = PgConnection::Connect(stack.db.dsn());
  ASSERT_TRUE(db.ok());
  const int n = 8;
  for (int i = 0; i < n; ++i) {
    std::string id = "result-throttle-" + std::to_string(i);
    ASSERT_TRUE(
        test::PublishDeliver(stack, test::DeliverCommand(id, "shop"), id + ":deliver", "corr-" + id)
            .ok());
  }
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        auto r = (*db)->Exec("SELECT count(*) FROM deliveries WHERE status = 'delivered'");
        return r.ok() && r->get_int(0, 0) == n;
      },
      90s))
      << stack.services["outbound"]->process.Log();
  EXPECT_EQ(shop.Products().size(), static_cast<size_t>(n)) << "one product per result";
  EXPECT_LE(shop.ThrottledAnswers(), 4u)
      << "the bucket is waited for: " << shop.Calls() << " calls";
  EXPECT_LE(shop.Calls(), static_cast<size_t>(2 * n + 4));
}

}  // namespace
}  // namespace convoy
