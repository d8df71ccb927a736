// Fault: the broker becomes unreachable under a running ingress, then comes back. Ingress
// answers 503 (so Meta retries) and reports not ready while it is gone, and recovers by itself.
#include <gtest/gtest.h>
#include <signal.h>

#include "convoy/amqp.h"
#include "convoy/http.h"
#include "convoy/topology.h"
#include "tcp_proxy.h"
#include "testsupport.h"
#include "webhook.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

int BrokerPort() {
  std::string base = test::AmqpBaseUrl();
  return std::atoi(base.substr(base.rfind(':') + 1).c_str());
}

TEST(IngressOutage, BrokerGoneMeans503AndNotReadyThenRecoversWithoutRestart) {
  test::TestVhost vhost("ingress_outage");
  test::TcpProxy proxy(BrokerPort());
  ASSERT_TRUE(proxy.Start());
  int port = test::FreePort();
  std::string dir = ::testing::TempDir();
  test::ChildProcess ingress;
  ASSERT_TRUE(ingress.Start(
      {test::BinaryPath("services/ingress/convoy-ingress"),
       "--amqp_url=amqp://guest:guest@127.0.0.1:" + std::to_string(proxy.port()) + "/" +
           vhost.name(),
       "--http_port=" + std::to_string(port), "--publish_deadline_ms=1000", "--declare_topology"},
      dir + "/" + test::UniqueName("ingress") + ".log",
      {{"CONVOY_APP_SECRET", "test-app-secret"}, {"CONVOY_VERIFY_TOKEN", "v"}}));
  std::string base = "http://127.0.0.1:" + std::to_string(port);
  auto ready = [&] {
    int status = 0;
    test::HttpGet(base + "/readyz", &status);
    return status;
  };
  std::string body = test::ReadFile(test::FixturePath("webhooks/text.json"));
  auto post = [&] {
    HttpClientRequest req;
    req.method = "POST";
    req.url = base + "/webhook";
    req.headers["X-Hub-Signature-256"] = ingress::SignBody(body, "test-app-secret");
    req.body = body;
    auto r = HttpFetch(req);
    return r.ok() ? r->status : 0;
  };
  ASSERT_TRUE(test::WaitUntil([&] { return ready() == 200; }, 60s)) << ingress.Log();
  EXPECT_EQ(post(), 200);

  proxy.SetBlocked(true);
  ASSERT_TRUE(test::WaitUntil([&] { return ready() == 503; }, 30s))
      << "still ready with the broker gone";
  auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(post(), 503);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1500ms)
      << "503 must come within the publish deadline";
  EXPECT_TRUE(ingress.running()) << "ingress must stay up while the broker is gone";

  proxy.SetBlocked(false);
  ASSERT_TRUE(test::WaitUntil([&] { return ready() == 200; }, 60s)) << ingress.Log();
  EXPECT_EQ(post(), 200);

  // Exactly the two acknowledged POSTs are in the queue; the 503 one published nothing.
  auto count =
      QueueMessageCount(AmqpOptions{vhost.url(), "outage-check"}, queues::kConversationInbound);
  ASSERT_TRUE(count.ok()) << count.status().ToString();
  EXPECT_EQ(*count, 2u);
  ingress.Signal(SIGTERM);
  EXPECT_EQ(ingress.Wait(), 0) << "clean shutdown on SIGTERM";
}

}  // namespace
}  // namespace convoy
