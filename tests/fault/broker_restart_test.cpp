// Fault: the broker itself stops and starts again (the throw-away one scripts/test.sh started)
// under the running stack. Updates acknowledged before the stop are all answered, exactly once;
// POSTs during the stop get 503 and succeed when retried, as Meta retries them.
#include <gtest/gtest.h>

#include <cstdlib>

#include "convoy/amqp.h"
#include "convoy/topology.h"
#include "stack.h"
#include "testsupport.h"
#include "webhook.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

std::string Update(const std::string& base, int i) {
  std::string body = base;
  body.insert(body.find("\"wamid.") + 7, "RESTART" + std::to_string(i) + "x");
  body.replace(body.find("Does it come in another color?"), 30, "restart message " + std::to_string(i));
  return body;
}

int Infra(const std::string& args) {
  return std::system(("bash " + test::SourcePath("scripts/infra.sh") + " " + args + " >&2").c_str());
}

TEST(BrokerRestart, AcknowledgedUpdatesSurviveAndAreAnsweredOnce) {
  if (std::getenv("CONVOY_RUN_DIR") == nullptr) {
    GTEST_SKIP() << "restarts the broker: runs only under scripts/test.sh, which owns a throw-away one";
  }
  test::Stack stack("broker_restart");
  const std::string base = test::ReadFile(test::FixturePath("webhooks/text.json"));
  auto post = [&](int i) {
    std::string body = Update(base, i);
    return stack.PostWebhook(body, ingress::SignBody(body, test::kAppSecret)).status;
  };
  constexpr int kUpdates = 40;
  for (int i = 0; i < kUpdates / 2; ++i) ASSERT_EQ(post(i), 200);

  ASSERT_EQ(Infra("stop rabbit"), 0);
  std::vector<int> refused;
  for (int i = kUpdates / 2; i < kUpdates; ++i) {
    int status = post(i);
    EXPECT_EQ(status, 503) << "nothing may be acknowledged while the broker is down";
    refused.push_back(i);
  }
  ASSERT_EQ(Infra("start rabbit"), 0);
  for (const char* service : {"ingress", "conversation", "media", "outbound"}) {
    ASSERT_TRUE(stack.WaitReady(service, 60s)) << service << " did not recover";
  }
  for (int i : refused) {  // Meta retries what got a 503
    ASSERT_TRUE(test::WaitUntil([&] { return post(i) == 200; }, 30s)) << "update " << i;
  }
  ASSERT_TRUE(test::WaitUntil([&] { return stack.graph.SendCount() >= kUpdates; }, 120s))
      << stack.graph.SendCount() << " of " << kUpdates << " replies";
  AmqpOptions o{stack.vhost.url(), "restart-check"};
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        for (const char* q : {queues::kConversationInbound, queues::kConversationEvents, queues::kOutboundSend}) {
          auto n = QueueMessageCount(o, q);
          if (!n.ok() || *n != 0) return false;
        }
        return true;
      },
      60s));
  std::string sends = stack.graph.RequestsJson();
  EXPECT_EQ(stack.graph.SendCount(), static_cast<size_t>(kUpdates));
  for (int k = 0; k < kUpdates; ++k) {
    std::string needle = "restart message " + std::to_string(k) + "\\\"";
    size_t first = sends.find(needle);
    EXPECT_NE(first, std::string::npos) << "update " << k << " lost";
    EXPECT_EQ(sends.find(needle, first + 1), std::string::npos) << "update " << k << " answered twice";
  }
}

}  // namespace
}  // namespace convoy
