// End to end: the numbers registry (issue 27). A signed update for a phone_number_id the
// deployment does not serve — never registered, or offboarded — is accepted by ingress (200, so
// Meta does not retry for 7 days), recorded and counted by conversation, and starts no flow, no
// send and no media fetch; a registered number is still answered.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <stdlib.h>

#include <algorithm>
#include <fstream>

#include "convoy/http.h"
#include "convoy/pg.h"
#include "convoy/tokens.h"
#include "deliveries.h"
#include "fake_sink.h"
#include "stack.h"
#include "testsupport.h"
#include "webhook.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

class Numbers : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { stack_ = new test::Stack("numbers"); }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  int64_t Count(const std::string& sql, const PgParams& params = {}) {
    auto db = PgConnection::Connect(stack_->db.dsn());
    EXPECT_TRUE(db.ok());
    if (!db.ok()) return -1;
    auto r = (*db)->Exec(sql, params);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->get_int(0, 0) : -1;
  }
  double Counted(const std::string& status) {
    return std::max(
        0.0, stack_->Metric(
                 "conversation",
                 "convoy_conversation_unknown_number_updates_total{status=\"" + status + "\"}"));
  }
  // Posts a text and a photo from `wa_id` to `number`, signed as Meta signs; both must get 200.
  void PostTextAndPhoto(const std::string& number, const std::string& wa_id) {
    const int64_t now = test::NowSeconds();
    EXPECT_EQ(
        stack_->PostUpdate(test::MessageWebhook(number, wa_id, "Kerry", test::UniqueName("wamid.n"),
                                                now, test::TextMessage("SELL"))),
        200);
    EXPECT_EQ(
        stack_->PostUpdate(test::MessageWebhook(number, wa_id, "Kerry", test::UniqueName("wamid.n"),
                                                now, test::ImageMessage("1003383421387256"))),
        200);
  }
  // Nothing of the number's reached a conversation, the dedupe table, the audit or the outbox, and
  // the Graph fake never heard of the sender.
  void ExpectUntouched(const std::string& number, const std::string& wa_id) {
    EXPECT_EQ(Count("SELECT count(*) FROM conversations WHERE phone_number_id = $1", {number}), 0);
    EXPECT_EQ(Count("SELECT count(*) FROM inbound_messages WHERE conversation_key LIKE $1",
                    {number + ":%"}),
              0);
    EXPECT_EQ(Count("SELECT count(*) FROM outbox WHERE conversation_key LIKE $1", {number + ":%"}),
              0);
    EXPECT_TRUE(stack_->graph.SentTexts(wa_id).empty());
  }
  static test::Stack* stack_;
};

test::Stack* Numbers::stack_ = nullptr;

TEST_F(Numbers, UnknownAndOffboardedNumbersAreRecordedNeverAnsweredAndARegisteredOneIs) {
  auto& stack = *stack_;
  const std::string unknown = "106540352240404", offboarded = "106540352240410";
  // A number put and offboarded through the API.
  auto put = stack.Api(
      "PUT", "/v1/numbers/" + offboarded,
      R"({"phone_number_id": ")" + offboarded +
          R"(", "tenant": "acme", "waba_id": "102290129340399", )"
          R"("display_phone_number": "15550783882", "graph_token": "env:ACME_GRAPH_TOKEN"})");
  ASSERT_EQ(put.status, 201) << put.body;
  auto gone = stack.Api("DELETE", "/v1/numbers/" + offboarded);
  ASSERT_EQ(gone.status, 200) << gone.body;
  const size_t downloads = stack.graph.DownloadRequests();

  PostTextAndPhoto(unknown, "16505550404");
  PostTextAndPhoto(offboarded, "16505550410");
  ASSERT_TRUE(
      test::WaitUntil([&] { return Counted("unknown") >= 2 && Counted("offboarded") >= 2; }, 30s))
      << "unknown " << Counted("unknown") << ", offboarded " << Counted("offboarded");
  // A registered number, posted after: answered as ever.
  ASSERT_EQ(stack.PostMessage("16505550922", test::TextMessage("SELL")), 200);
  ASSERT_TRUE(stack.WaitSends("16505550922", 1)) << stack.graph.RequestsJson();
  ASSERT_TRUE(stack.Drained(30s));

  EXPECT_EQ(Counted("unknown"), 2);
  EXPECT_EQ(Counted("offboarded"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM unknown_number_updates WHERE phone_number_id = $1 AND "
                  "status = 'unknown' "
                  "AND kind = 'message'",
                  {unknown}),
            2);
  EXPECT_EQ(Count("SELECT count(*) FROM unknown_number_updates WHERE phone_number_id = $1 AND "
                  "status = 'offboarded'",
                  {offboarded}),
            2);
  ExpectUntouched(unknown, "16505550404");
  ExpectUntouched(offboarded, "16505550410");
  EXPECT_EQ(stack.graph.DownloadRequests(), downloads)
      << "a photo for an unknown number was fetched";
  for (const auto& r : stack.graph.ReadReceipts())
    EXPECT_EQ(r.find("wamid.n"), std::string::npos) << r;
  EXPECT_EQ(Count("SELECT count(*) FROM conversations WHERE phone_number_id = $1",
                  {std::string(test::kDemoNumber)}),
            1);
}

// Two businesses on one deployment (issue 27's proof): tenant acme has two numbers on its own Meta
// app (one a coexistence number at 20/s), tenant demo the demo number on the default app. Each
// tenant's lead reaches only its own sink; an update through the wrong app or for an unknown number
// is 200, counted, answered by nothing; acme's token finds none of demo's records; one BSUID under
// two numbers is two people.
class Tenants : public ::testing::Test {
 protected:
  static constexpr const char* kAcme1 = "106540352260001";
  static constexpr const char* kAcme2 = "106540352260002";
  static constexpr const char* kAcmeSecret = "acme-app-secret-e2e";
  static constexpr const char* kAcmeToken = "acme-admin-token-0123456789";
  static constexpr const char* kDemoToken = "demo-viewer-token-0123456789";

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = ::testing::TempDir() + test::UniqueName(name);
    std::ofstream(path) << text;
    return path;
  }
  // A webhook to /webhook/<app>, signed with `secret`; the HTTP status.
  int PostTo(const std::string& app, const std::string& body, const std::string& secret) {
    HttpClientRequest req;
    req.method = "POST";
    req.url = stack_->Url("ingress", app.empty() ? "/webhook" : "/webhook/" + app);
    req.body = body;
    req.headers["Content-Type"] = "application/json";
    req.headers["X-Hub-Signature-256"] = ingress::SignBody(body, secret);
    auto r = HttpFetch(req);
    return r.ok() ? r->status : 0;
  }
  std::string Text(const std::string& number, const std::string& wa_id, const std::string& text) {
    return test::MessageWebhook(number, wa_id, "Ana", test::UniqueName("wamid.t"), at_ += 2,
                                test::TextMessage(text));
  }
  // An enquiry from wa_id to `number` through `app`, each answer waited for; the lead is qualified.
  void Enquire(const std::string& app, const std::string& secret, const std::string& number,
               const std::string& wa_id) {
    const std::vector<std::string> said = {"Hello", "I would like a family visa for my wife",
                                           "my name is Ana Lopez", "Filipina",
                                           "ana@example.com, weekdays after 5pm"};
    for (size_t i = 0; i < said.size(); ++i) {
      ASSERT_EQ(PostTo(app, Text(number, wa_id, said[i]), secret), 200);
      ASSERT_TRUE(stack_->WaitSends(wa_id, i + 1)) << said[i] << "\n"
                                                   << stack_->graph.RequestsJson();
    }
  }
  HttpResponse Api(const std::string& path, const std::string& token) {
    HttpClientRequest req;
    req.url = stack_->Url("conversation", path);
    req.headers["Authorization"] = "Bearer " + token;
    auto r = HttpFetch(req);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : HttpResponse{};
  }
  int64_t Count(const std::string& sql, const PgParams& params = {}) {
    auto db = PgConnection::Connect(stack_->db.dsn());
    if (!db.ok()) return -1;
    auto r = (*db)->Exec(sql, params);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->get_int(0, 0) : -1;
  }
  int64_t at_ = test::NowSeconds() - 600;
  std::unique_ptr<test::Stack> stack_;
};

TEST_F(Tenants, TwoBusinessesOnTwoAppsAndThreeNumbersNeverMeet) {
  fake::FakeReceiver acme_rx({test::Key(test::kOldSecret)}), demo_rx({test::Key(test::kOldSecret)});
  ASSERT_TRUE(acme_rx.Start().ok());
  ASSERT_TRUE(demo_rx.Start().ok());
  ::setenv("CONVOY_E2E_ACME_SECRET", kAcmeSecret, 1);
  ::setenv("CONVOY_E2E_ACME_VERIFY", "acme-verify", 1);
  const std::string apps =
      Write("apps", "acme env:CONVOY_E2E_ACME_SECRET env:CONVOY_E2E_ACME_VERIFY\n");
  const std::string secret = R"([")" + std::string(test::kOldSecret) + R"("])";
  const std::string sinks =
      test::WriteSinks(R"({"sinks": [)" + test::WebhookSink("acme-hook", acme_rx.url(), secret) +
                       ", " + test::WebhookSink("demo-hook", demo_rx.url(), secret) + "]}");
  const std::string tokens =
      Write("tokens", "acme-admin admin acme " + TokenHashField(kAcmeToken) + "\n" +
                          "demo-viewer viewer demo " + TokenHashField(kDemoToken) + "\n");
  stack_ = std::make_unique<test::Stack>(
      "e2e_tenants", std::map<std::string, int>{},
      std::map<std::string, std::vector<std::string>>{
          {"ingress", {"--apps_file=" + apps}},
          {"outbound",
           {"--sinks_file=" + sinks, "--delivery_schedule=0,1s,1s", "--tokens_file=" + tokens}},
          {"conversation", {"--default_flow=lead", "--tokens_file=" + tokens}}});
  auto& stack = *stack_;
  auto put = [&](const std::string& id, const std::string& tenant, const std::string& app,
                 const std::string& extra) {
    auto r = stack.Api(
        "PUT", "/v1/numbers/" + id,
        R"({"phone_number_id": ")" + id + R"(", "tenant": ")" + tenant +
            R"(", "waba_id": "102290129340399", )"
            R"("display_phone_number": "15550783882", "graph_token": "env:CONVOY_GRAPH_TOKEN", "app": ")" +
            app + "\"" + extra + "}");
    EXPECT_TRUE(r.status == 200 || r.status == 201) << r.body;
  };
  put(kAcme1, "acme", "acme", R"(, "sinks": {"lead": ["acme-hook"]})");
  put(kAcme2, "acme", "acme", R"(, "coexistence": true, "sinks": {"lead": ["acme-hook"]})");
  put(test::kDemoNumber, "demo", "default", R"(, "sinks": {"lead": ["demo-hook"]})");

  ASSERT_NO_FATAL_FAILURE(Enquire("acme", kAcmeSecret, kAcme1, "971500000201"));
  ASSERT_NO_FATAL_FAILURE(Enquire("", test::kAppSecret, test::kDemoNumber, "971500000301"));
  ASSERT_TRUE(acme_rx.WaitFor(1, 60s)) << stack.services["outbound"]->process.Log();
  ASSERT_TRUE(demo_rx.WaitFor(1, 60s)) << stack.services["outbound"]->process.Log();

  // Through the wrong app, or for a number nobody registered: 200, counted, never answered. The
  // other app's secret on acme's path is a bad signature.
  const double wrong = std::max(
      0.0, stack.Metric("conversation",
                        R"(convoy_conversation_unknown_number_updates_total{status="wrong_app"})"));
  const double unknown = std::max(
      0.0, stack.Metric("conversation",
                        R"(convoy_conversation_unknown_number_updates_total{status="unknown"})"));
  EXPECT_EQ(PostTo("", Text(kAcme1, "971500000401", "Hello"), test::kAppSecret), 200);
  EXPECT_EQ(PostTo("acme", Text("106540352269999", "971500000402", "Hello"), kAcmeSecret), 200);
  EXPECT_EQ(PostTo("acme", Text(kAcme1, "971500000403", "Hello"), test::kAppSecret), 401);
  EXPECT_EQ(PostTo("globex", Text(kAcme1, "971500000404", "Hello"), kAcmeSecret), 404);
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        return stack.Metric(
                   "conversation",
                   R"(convoy_conversation_unknown_number_updates_total{status="wrong_app"})") >=
                   wrong + 1 &&
               stack.Metric(
                   "conversation",
                   R"(convoy_conversation_unknown_number_updates_total{status="unknown"})") >=
                   unknown + 1;
      },
      30s));

  // One BSUID under two numbers: two people, two conversations.
  std::string bsuid = test::ReadFile(test::FixturePath("webhooks/bsuid/username_only_a.json"));
  for (const char* number : {kAcme1, kAcme2}) {
    std::string body = bsuid;
    for (const auto& [from, to] :
         {std::pair<std::string, std::string>{"106540352242922", number},
          std::pair<std::string, std::string>{"wamid.BSUID.A.1", test::UniqueName("wamid.b")},
          std::pair<std::string, std::string>{"1796032800", std::to_string(at_ += 2)}}) {
      body.replace(body.find(from), from.size(), to);
    }
    ASSERT_EQ(PostTo("acme", body, kAcmeSecret), 200);
  }
  ASSERT_TRUE(test::WaitUntil(
      [&] { return stack.graph.SentTexts("US.13491208655302741918").size() >= 2; }, 30s))
      << stack.graph.RequestsJson();
  ASSERT_TRUE(stack.Drained(30s));

  // Each tenant's lead reached its own sink, once.
  auto acme_got = acme_rx.Requests(), demo_got = demo_rx.Requests();
  ASSERT_EQ(acme_got.size(), 1u);
  ASSERT_EQ(demo_got.size(), 1u);
  EXPECT_NE(acme_got[0].body.find("971500000201"), std::string::npos) << acme_got[0].body;
  EXPECT_EQ(acme_got[0].body.find("971500000301"), std::string::npos);
  EXPECT_NE(demo_got[0].body.find("971500000301"), std::string::npos) << demo_got[0].body;
  for (const char* wa : {"971500000401", "971500000402", "971500000403", "971500000404"}) {
    EXPECT_TRUE(stack.graph.SentTexts(wa).empty()) << wa << " was answered";
  }
  EXPECT_EQ(Count("SELECT count(DISTINCT conversation_key) FROM conversations WHERE user_id = "
                  "'US.13491208655302741918' "
                  "AND phone_number_id IN ($1, $2)",
                  {std::string(kAcme1), std::string(kAcme2)}),
            2);

  // acme's token: its own numbers and deliveries; demo's are not there.
  EXPECT_EQ(Api("/v1/numbers/" + std::string(test::kDemoNumber), kAcmeToken).status, 404);
  EXPECT_EQ(Api("/v1/numbers/" + std::string(kAcme2), kAcmeToken).status, 200);
  EXPECT_EQ(Api("/v1/numbers/" + std::string(kAcme1), kDemoToken).status, 404);
  auto listed = Api("/v1/numbers", kAcmeToken);
  EXPECT_EQ(listed.body.find(test::kDemoNumber), std::string::npos) << listed.body;
  HttpClientRequest deliveries;
  deliveries.url = stack.Url("outbound", "/v1/deliveries");
  deliveries.headers["Authorization"] = std::string("Bearer ") + kAcmeToken;
  auto d = HttpFetch(deliveries);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->status, 200) << d->body;
  EXPECT_NE(d->body.find("acme-hook"), std::string::npos) << d->body;
  EXPECT_EQ(d->body.find("demo-hook"), std::string::npos)
      << "acme sees none of demo's deliveries: " << d->body;
}
}  // namespace
}  // namespace convoy
