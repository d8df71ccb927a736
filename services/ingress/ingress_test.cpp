#include "ingress.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "convoy/metrics.h"
#include "webhook.h"

namespace convoy::ingress {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fake broker: records publishes and answers with a chosen outcome (or never).
struct FakeBroker {
  std::vector<AmqpMessage> published;
  std::vector<PublishCallback> held;  // outcomes never given (answer == false)
  bool answer = true;
  PublishOutcome outcome = PublishOutcome::kConfirmed;
  PublishFn fn() {
    return [this](AmqpMessage m, PublishCallback cb) {
      published.push_back(std::move(m));
      if (answer) {
        cb(outcome);
      } else {
        held.push_back(std::move(cb));
      }
    };
  }
};

HttpRequest Post(const std::string& body, const std::string& secret = "test-app-secret",
                 const std::string& path = "/webhook") {
  HttpRequest r;
  r.method = "POST";
  r.path = path;
  r.body = body;
  r.headers["x-hub-signature-256"] = SignBody(body, secret);
  return r;
}

IngressSettings Settings() {
  return {{{kDefaultApp, {"test-app-secret", "verify-me"}}}, std::chrono::milliseconds(200)};
}

TEST(WebhookHandler, VerificationNeedsModeAndToken) {
  FakeBroker broker;
  WebhookHandler h(Settings(), broker.fn());
  HttpRequest r;
  r.path = "/webhook";
  r.query = {{"hub.mode", "subscribe"},
             {"hub.verify_token", "verify-me"},
             {"hub.challenge", "1158201444"}};
  auto ok = h.Verify(r);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "1158201444");
  r.query["hub.verify_token"] = "wrong";
  EXPECT_EQ(h.Verify(r).status, 403);
  r.query.erase("hub.mode");
  r.query["hub.verify_token"] = "verify-me";
  EXPECT_EQ(h.Verify(r).status, 403);
}

TEST(WebhookHandler, AcknowledgesOnlyAfterEveryConfirm) {
  FakeBroker broker;
  WebhookHandler h(Settings(), broker.fn());
  auto resp =
      h.Receive(Post(Read(std::string(CONVOY_FIXTURES_DIR) + "/webhooks/batch_mixed.json")));
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(broker.published.size(), 5u);
  ASSERT_TRUE(resp.headers.count("X-Correlation-Id"));
  for (const auto& m : broker.published) {
    EXPECT_EQ(m.headers.at("x-correlation-id"), resp.headers["X-Correlation-Id"]);
    EXPECT_FALSE(m.headers.at("x-dedupe-key").empty());
    EXPECT_FALSE(m.message_id.empty());
  }
}

// During a rotation both secrets verify, each counted by which matched; a third never does, and
// without a previous secret the old one is refused.
// Each kind of the 2026 fields is counted by kind once the broker confirmed it; a backfill past
// --max_history_messages publishes that many and counts the rest as dropped.
TEST(WebhookHandler, ThreadRoutingUpdatesAreCountedByKindAndAHistoryPastItsLimitIsCut) {
  auto kind = [](const char* k) -> Counter& {
    return DefaultRegistry().GetCounter("convoy_ingress_updates_published_total", "",
                                        std::string("kind=\"") + k + "\"");
  };
  auto& dropped = DefaultRegistry().GetCounter("convoy_ingress_history_dropped_total", "");
  const std::map<std::string, std::string> fixtures = {{"standby_text.json", "standby"},
                                                       {"smb_echo_text.json", "echo"},
                                                       {"handover_control_taken.json", "handover"},
                                                       {"history_backfill.json", "history"}};
  FakeBroker broker;
  IngressSettings settings = Settings();
  settings.max_history_messages = 3;
  WebhookHandler h(settings, broker.fn());
  for (const auto& [file, k] : fixtures) {
    const uint64_t before = kind(k.c_str()).Value(), dropped_before = dropped.Value();
    broker.published.clear();
    EXPECT_EQ(h.Receive(Post(Read(std::string(CONVOY_SOURCE_DIR) +
                                  "/tests/fixtures/webhooks/threads/" + file)))
                  .status,
              200);
    const uint64_t want = k == "history" ? 3 : 1;
    EXPECT_EQ(broker.published.size(), want) << file;
    EXPECT_EQ(kind(k.c_str()).Value() - before, want) << file;
    EXPECT_EQ(dropped.Value() - dropped_before, k == "history" ? 1u : 0u) << file;
    for (const auto& m : broker.published) {
      EXPECT_EQ(m.routing_key, "message") << file;
      EXPECT_EQ(m.headers.at("x-conversation-key"), "106540352242922:16505551234") << file;
    }
  }
}

TEST(WebhookHandler, BothSecretsVerifyDuringARotation) {
  std::string text = Read(std::string(CONVOY_FIXTURES_DIR) + "/webhooks/text.json");
  auto& registry = DefaultRegistry();
  auto& current = registry.GetCounter("convoy_ingress_signatures_verified_total", "",
                                      "app=\"default\",secret=\"current\"");
  auto& previous = registry.GetCounter("convoy_ingress_signatures_verified_total", "",
                                       "app=\"default\",secret=\"previous\"");
  FakeBroker broker;
  IngressSettings rotating = Settings();
  rotating.apps[kDefaultApp].previous_app_secret = "old-app-secret";
  WebhookHandler h(rotating, broker.fn());
  uint64_t current_before = current.Value(), previous_before = previous.Value();
  EXPECT_EQ(h.Receive(Post(text)).status, 200);
  EXPECT_EQ(h.Receive(Post(text, "old-app-secret")).status, 200);
  EXPECT_EQ(h.Receive(Post(text, "older-app-secret")).status, 401);
  EXPECT_EQ(current.Value() - current_before, 1u);
  EXPECT_EQ(previous.Value() - previous_before, 1u);
  WebhookHandler after(Settings(), broker.fn());
  EXPECT_EQ(after.Receive(Post(text, "old-app-secret")).status, 401)
      << "the rotation is over: the old secret is refused";
}

TEST(WebhookHandler, ErrorMappingIsExhaustive) {
  std::string text = Read(std::string(CONVOY_FIXTURES_DIR) + "/webhooks/text.json");
  {
    FakeBroker broker;
    WebhookHandler h(Settings(), broker.fn());
    EXPECT_EQ(h.Receive(Post(text, "wrong")).status, 401);
    HttpRequest unsigned_req = Post(text);
    unsigned_req.headers.clear();
    EXPECT_EQ(h.Receive(unsigned_req).status, 401);
    EXPECT_EQ(h.Receive(Post("{not json")).status, 400);
    EXPECT_TRUE(broker.published.empty()) << "nothing is published for a rejected POST";
    EXPECT_EQ(h.Receive(Post(R"({"object":"instagram","entry":[]})")).status, 200);
    EXPECT_TRUE(broker.published.empty());
  }
  for (auto outcome :
       {PublishOutcome::kNacked, PublishOutcome::kReturned, PublishOutcome::kUnavailable,
        PublishOutcome::kOverloaded, PublishOutcome::kRejected}) {
    FakeBroker broker;
    broker.outcome = outcome;
    WebhookHandler h(Settings(), broker.fn());
    EXPECT_EQ(h.Receive(Post(text)).status, 503) << PublishOutcomeName(outcome);
  }
  FakeBroker silent;
  silent.answer =
      false;  // the broker holds the publish and never confirms: the deadline answers 503
  IngressSettings s = Settings();
  s.publish_deadline = std::chrono::milliseconds(300);
  WebhookHandler h(s, silent.fn());
  auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(h.Receive(Post(text)).status, 503);
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(300))
      << "answered at the deadline";
  ASSERT_EQ(silent.held.size(), 1u);
  silent.held[0](PublishOutcome::kConfirmed);  // a confirm after the answer changes nothing
  // A publisher that drops the callback without an outcome: answered 503 at once, never left
  // hanging.
  WebhookHandler dropping(Settings(), [](AmqpMessage, PublishCallback) {});
  EXPECT_EQ(dropping.Receive(Post(text)).status, 503);
}

// Two apps, each with its own secret and token: what only the default app had before.
IngressSettings TwoApps() {
  IngressSettings s = Settings();
  s.apps["acme"] = {"acme-app-secret", "acme-verify", "acme-old-secret"};
  return s;
}

Counter& AppOutcome(const std::string& app, const char* outcome) {
  return DefaultRegistry().GetCounter("convoy_ingress_app_requests_total", "",
                                      "app=\"" + app + "\",outcome=\"" + outcome + "\"");
}

// A POST to /webhook/{app} verifies with that app's secrets alone, and what it publishes names
// the app; /webhook and /webhook/default are the app default.
TEST(WebhookHandler, EachAppIsVerifiedWithItsOwnSecretOnly) {
  const std::string text = Read(std::string(CONVOY_FIXTURES_DIR) + "/webhooks/text.json");
  auto& acme_ok = AppOutcome("acme", "200");
  auto& acme_refused = AppOutcome("acme", "401");
  auto& default_refused = AppOutcome("default", "401");
  auto& acme_previous = DefaultRegistry().GetCounter("convoy_ingress_signatures_verified_total", "",
                                                     "app=\"acme\",secret=\"previous\"");
  const uint64_t ok_before = acme_ok.Value(), refused_before = acme_refused.Value(),
                 default_refused_before = default_refused.Value(),
                 previous_before = acme_previous.Value();
  FakeBroker broker;
  WebhookHandler h(TwoApps(), broker.fn());
  ASSERT_EQ(h.Receive(Post(text, "acme-app-secret", "/webhook/acme")).status, 200);
  ASSERT_EQ(broker.published.size(), 1u);
  EXPECT_EQ(broker.published[0].body.rfind("{\"app\":\"acme\",\"schema\":\"inbound.message\"", 0),
            0u)
      << broker.published[0].body;
  EXPECT_EQ(h.Receive(Post(text, "acme-old-secret", "/webhook/acme")).status, 200)
      << "its own rotation";
  EXPECT_EQ(acme_previous.Value() - previous_before, 1u);
  // Another app's signature is refused on each path, and nothing is published.
  const size_t published = broker.published.size();
  EXPECT_EQ(h.Receive(Post(text, "test-app-secret", "/webhook/acme")).status, 401);
  EXPECT_EQ(h.Receive(Post(text, "acme-app-secret", "/webhook")).status, 401);
  EXPECT_EQ(h.Receive(Post(text, "acme-old-secret", "/webhook/default")).status, 401);
  EXPECT_EQ(broker.published.size(), published);
  EXPECT_EQ(acme_ok.Value() - ok_before, 2u);
  EXPECT_EQ(acme_refused.Value() - refused_before, 1u);
  EXPECT_EQ(default_refused.Value() - default_refused_before, 2u);
  // The app default, by either path.
  for (const char* path : {"/webhook", "/webhook/default"}) {
    ASSERT_EQ(h.Receive(Post(text, "test-app-secret", path)).status, 200) << path;
    EXPECT_EQ(broker.published.back().body.rfind("{\"app\":\"default\",", 0), 0u) << path;
  }
}

// A path that names no configured app: 404 before any signature is looked at, counted without the
// name (which anyone may vary), and nothing published.
TEST(WebhookHandler, AnUnknownAppIs404AndPublishesNothing) {
  const std::string text = Read(std::string(CONVOY_FIXTURES_DIR) + "/webhooks/text.json");
  auto& not_found =
      DefaultRegistry().GetCounter("convoy_ingress_requests_total", "", "outcome=\"404\"");
  const uint64_t before = not_found.Value();
  FakeBroker broker;
  WebhookHandler h(TwoApps(), broker.fn());
  int requests = 0;
  for (const char* path :
       {"/webhook/globex", "/webhook/", "/webhook/Acme", "/webhooks", "/webhook/acme/extra"}) {
    auto resp = h.Receive(Post(text, "acme-app-secret", path));
    EXPECT_EQ(resp.status, 404) << path;
    EXPECT_NE(resp.body.find("no such app"), std::string::npos) << resp.body;
    HttpRequest get;
    get.path = path;
    get.query = {
        {"hub.mode", "subscribe"}, {"hub.verify_token", "acme-verify"}, {"hub.challenge", "1"}};
    EXPECT_EQ(h.Verify(get).status, 404) << path;
    requests += 2;
  }
  EXPECT_TRUE(broker.published.empty());
  EXPECT_EQ(not_found.Value() - before, static_cast<uint64_t>(requests));
  WebhookHandler default_only(Settings(), broker.fn());
  EXPECT_EQ(default_only.Receive(Post(text, "test-app-secret", "/webhook/acme")).status, 404)
      << "an app is served only once configured";
  EXPECT_TRUE(broker.published.empty());
}

// Meta's GET handshake for each app's callback URL: answered with that app's verify token only.
TEST(WebhookHandler, EachAppAnswersTheHandshakeWithItsOwnVerifyToken) {
  FakeBroker broker;
  WebhookHandler h(TwoApps(), broker.fn());
  auto verify = [&](const std::string& path, const std::string& token) {
    HttpRequest r;
    r.method = "GET";
    r.path = path;
    r.query = {
        {"hub.mode", "subscribe"}, {"hub.verify_token", token}, {"hub.challenge", "1158201444"}};
    return h.Verify(r);
  };
  auto acme = verify("/webhook/acme", "acme-verify");
  EXPECT_EQ(acme.status, 200);
  EXPECT_EQ(acme.body, "1158201444");
  EXPECT_EQ(verify("/webhook", "verify-me").status, 200);
  EXPECT_EQ(verify("/webhook/default", "verify-me").status, 200);
  EXPECT_EQ(verify("/webhook/acme", "verify-me").status, 403) << "the default app's token";
  EXPECT_EQ(verify("/webhook", "acme-verify").status, 403) << "acme's token";
}

}  // namespace
}  // namespace convoy::ingress
