// Integration: the webhook handler publishing to a real RabbitMQ (a vhost of its own). Every
// fixture yields exactly the broker messages it should, with the headers of the contract.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "convoy/amqp.h"
#include "convoy/http.h"
#include "convoy/json.h"
#include "convoy/metrics.h"
#include "convoy/topology.h"
#include "ingress.h"
#include "testsupport.h"
#include "webhook.h"

namespace convoy::ingress {
namespace {

using namespace std::chrono_literals;

struct Counts {
  int messages = 0, statuses = 0, errors = 0, accounts = 0, templates = 0;
};

class IngressBroker : public ::testing::Test {
 protected:
  void SetUp() override {
    pub_.Start();
    ASSERT_TRUE(pub_.WaitConnected(20s));
  }

  // Posts a signed body and drains what it produced from the two inbound queues.
  Counts PostAndDrain(const std::string& body, const std::string& signature,
                      std::string* correlation = nullptr) {
    HttpResponse resp = handler_.Receive(Post(body, signature));
    EXPECT_EQ(resp.status, 200) << resp.body;
    if (correlation) *correlation = resp.headers["X-Correlation-Id"];
    Counts c;
    auto messages = TakeMessages(opts_, queues::kConversationInbound, 10000);
    auto others = TakeMessages(opts_, queues::kOutboundStatus, 10000);
    auto accounts = TakeMessages(opts_, queues::kConversationEvents, 10000);
    EXPECT_TRUE(messages.ok() && others.ok() && accounts.ok());
    for (const auto& d : *accounts) {
      ++c.accounts;
      CheckHeaders(d, resp.headers["X-Correlation-Id"]);
      ExpectAccepted(d.body);
    }
    for (const auto& d : *messages) {
      ++c.messages;
      CheckHeaders(d, resp.headers["X-Correlation-Id"]);
      EXPECT_FALSE(d.Header(headers::kConversationKey).empty());
      ExpectAccepted(d.body);
      keys_.push_back(d.Header(headers::kConversationKey));
    }
    for (const auto& d : *others) {
      bool error = d.body.find("\"schema\":\"inbound.error\"") != std::string::npos;
      bool template_change = d.body.find("\"schema\":\"inbound.template\"") != std::string::npos;
      (template_change ? c.templates : error ? c.errors : c.statuses)++;
      CheckHeaders(d, resp.headers["X-Correlation-Id"]);
      ExpectAccepted(d.body);
      keys_.push_back(d.Header(headers::kConversationKey));
    }
    return c;
  }

  // A POST /webhook of `body`, signed as Meta signs it (with the test secret unless given).
  static HttpRequest Post(const std::string& body, const std::string& signature = "") {
    HttpRequest req;
    req.method = "POST";
    req.path = "/webhook";
    req.body = body;
    req.headers["x-hub-signature-256"] =
        signature.empty() ? SignBody(body, "test-app-secret") : signature;
    return req;
  }
  static std::string Threads(const std::string& file) {
    return test::ReadFile(test::SourcePath("tests/fixtures/webhooks/threads/" + file));
  }

  static void CheckHeaders(const Delivery& d, const std::string& correlation) {
    EXPECT_FALSE(d.message_id.empty());
    EXPECT_EQ(d.Header(headers::kDedupeKey), d.message_id);
    EXPECT_EQ(d.Header(headers::kCorrelationId), correlation);
    EXPECT_FALSE(d.Header(headers::kReceivedAt).empty());
  }

  // What conversation and outbound will accept: every message and status Meta sends (pywa's files
  // with "<PLACEHOLDER>" ids are not Meta's and are left out).
  static void ExpectAccepted(const std::string& body) {
    if (body.find("\"<") != std::string::npos) return;
    Status valid = Schemas().Validate(body);
    EXPECT_TRUE(valid.ok()) << valid.ToString() << "\n" << body;
  }
  static const SchemaRegistry& Schemas() {
    static SchemaRegistry* schemas = [] {
      auto* r = new SchemaRegistry();
      EXPECT_TRUE(r->LoadDir(test::SourcePath("proto-schemas")).ok());
      return r;
    }();
    return *schemas;
  }

  std::vector<std::string> keys_;  // the conversation keys of what PostAndDrain took, in order
  test::TestVhost vhost_{"ingress_broker"};
  AmqpOptions opts_{vhost_.url(), "ingress-broker-test"};
  Publisher pub_{opts_};
  WebhookHandler handler_{
      {{{kDefaultApp, {"test-app-secret", "t"}}}, 5000ms},
      [this](AmqpMessage m, PublishCallback cb) { pub_.Publish(std::move(m), std::move(cb)); }};
};

TEST_F(IngressBroker, EveryFixtureYieldsExactlyItsUpdates) {
  const std::map<std::string, std::tuple<int, int, int>> expected = {
      {"text.json", {1, 0, 0}},
      {"image_with_caption.json", {1, 0, 0}},
      {"image_no_caption.json", {1, 0, 0}},
      {"button_reply.json", {1, 0, 0}},
      {"list_reply.json", {1, 0, 0}},
      {"unsupported.json", {1, 0, 0}},
      {"status_sent.json", {0, 1, 0}},
      {"status_delivered.json", {0, 1, 0}},
      {"status_read.json", {0, 1, 0}},
      {"status_failed.json", {0, 1, 0}},
      {"value_error_rate_limit.json", {0, 0, 1}},
      {"batch_mixed.json", {4, 1, 0}},
      {"text_unicode_escaped.raw", {1, 0, 0}},
  };
  auto sigs = test::FixtureSignatures();
  ASSERT_EQ(sigs.size(), expected.size()) << "a fixture without an expectation";
  for (const auto& [file, want] : expected) {
    ASSERT_TRUE(sigs.count(file)) << file;
    Counts got = PostAndDrain(test::ReadFile(test::FixturePath("webhooks/" + file)), sigs[file]);
    EXPECT_EQ(got.messages, std::get<0>(want)) << file;
    EXPECT_EQ(got.statuses, std::get<1>(want)) << file;
    EXPECT_EQ(got.errors, std::get<2>(want)) << file;
  }
}

TEST_F(IngressBroker, PywaCorpusYieldsWhatItsIndexLists) {
  auto& ignored = DefaultRegistry().GetCounter("convoy_ingress_ignored_total",
                                               "Webhook objects or changes accepted and ignored.",
                                               "what=\"field\"");
  auto rows = test::PywaIndex();
  ASSERT_EQ(rows.size(), 60u);
  for (const auto& row : rows) {
    uint64_t ignored_before = ignored.Value();
    Counts got =
        PostAndDrain(test::ReadFile(test::FixturePath("webhooks/pywa/" + row.file)), row.signature);
    EXPECT_EQ(got.messages, row.messages) << row.file;
    EXPECT_EQ(got.statuses, row.statuses) << row.file;
    EXPECT_EQ(got.errors, row.errors) << row.file;
    // account_update reaches conversation.events, one message a change (conversation pauses
    // numbers).
    EXPECT_EQ(got.accounts, row.field == "account_update" ? 1 : 0) << row.file;
    if (row.field == "message_template_status_update") {
      // outbound keeps the template catalog: one inbound.template, nothing ignored.
      EXPECT_EQ(got.templates, 1) << row.file;
      EXPECT_EQ(ignored.Value(), ignored_before) << row.file;
    } else if (row.field != "messages" && row.field != "account_update") {
      EXPECT_EQ(ignored.Value(), ignored_before + 1)
          << row.file << ": other fields are counted, not published";
    }
  }
}

// The 2026 identity fixtures: each message and status reaches its queue keyed by the sender's
// phone when Meta names one, else by their BSUID; none by a shared key.
TEST_F(IngressBroker, BsuidFixturesAreKeyedByTheirSendersIdentity) {
  std::map<std::string, std::string> sigs;
  {
    std::istringstream tsv(test::ReadFile(test::FixturePath("webhooks/bsuid/SIGNATURES.tsv")));
    for (std::string line; std::getline(tsv, line);) {
      auto tab = line.find('\t');
      if (!line.empty() && line[0] != '#' && tab != std::string::npos)
        sigs[line.substr(0, tab)] = line.substr(tab + 1);
    }
  }
  const std::string b = "106540352242922:";
  const std::map<std::string, std::tuple<int, int, std::string>> expected = {
      {"username_only_a.json", {1, 0, b + "US.13491208655302741918"}},
      {"username_only_b.json", {1, 0, b + "GB.20771945533210987654"}},
      {"with_phone_a.json", {1, 0, b + "16505550111"}},
      {"image_username_only_a.json", {1, 0, b + "US.13491208655302741918"}},
      {"status_delivered_to_bsuid.json", {0, 1, b + "US.13491208655302741918"}},
      {"status_failed_bsuid_not_supported.json", {0, 1, b + "US.13491208655302741918"}},
      {"system_user_changed_number.json", {1, 0, b + "16505550111"}},
      {"system_user_changed_user_id.json", {1, 0, b + "US.55501234567890123456"}},
  };
  ASSERT_EQ(sigs.size(), expected.size());
  for (const auto& [file, want] : expected) {
    keys_.clear();
    Counts got =
        PostAndDrain(test::ReadFile(test::FixturePath("webhooks/bsuid/" + file)), sigs[file]);
    EXPECT_EQ(got.messages, std::get<0>(want)) << file;
    EXPECT_EQ(got.statuses, std::get<1>(want)) << file;
    ASSERT_EQ(keys_.size(), 1u) << file;
    EXPECT_EQ(keys_[0], std::get<2>(want)) << file;
    EXPECT_EQ(keys_[0].find("unknown"), std::string::npos) << file;
  }
}

// Conversation Routing and coexistence (tests/fixtures/webhooks/threads/): a standby text is one
// inbound.message on channel standby and a handover one inbound.handover, both on conversation's
// partitioned queue under the customer's key, so they land on the same partition, in order;
// every fixture's envelopes are what conversation and outbound accept.
TEST_F(IngressBroker, StandbyAndHandoversReachTheCustomersPartitionInOrder) {
  EXPECT_EQ(handler_.Receive(Post(Threads("standby_text.json"))).status, 200);
  EXPECT_EQ(handler_.Receive(Post(Threads("handover_control_taken.json"))).status, 200);
  auto taken = TakeMessages(opts_, queues::kConversationInbound, 100);
  ASSERT_TRUE(taken.ok()) << taken.status().ToString();
  ASSERT_EQ(taken->size(), 2u);
  const Delivery &standby = (*taken)[0], &handover = (*taken)[1];
  EXPECT_NE(standby.body.find(R"("schema":"inbound.message")"), std::string::npos) << standby.body;
  EXPECT_NE(standby.body.find(R"("channel":"standby")"), std::string::npos) << standby.body;
  EXPECT_EQ(standby.Header(headers::kDedupeKey),
            "standby:wamid.HBgLMTY1MDU1NTEyMzQVAgASGBRTVEFOREJZMDAwMDAwMDAwMDAxAA==");
  EXPECT_NE(handover.body.find(R"("schema":"inbound.handover")"), std::string::npos)
      << handover.body;
  EXPECT_NE(handover.body.find(R"("action":"control_taken")"), std::string::npos) << handover.body;
  EXPECT_EQ(handover.routing_key, "message");
  for (const auto* d : {&standby, &handover}) {
    EXPECT_EQ(d->Header(headers::kConversationKey), "106540352242922:16505551234");
    EXPECT_EQ(d->Header(headers::kDedupeKey), d->message_id);
    ExpectAccepted(d->body);
  }
  EXPECT_EQ(standby.queue, handover.queue) << "one conversation, one partition";

  // file -> (to conversation, statuses, value-level errors)
  const std::map<std::string, std::tuple<int, int, int>> expected = {
      {"standby_text.json", {1, 0, 0}},
      {"standby_text_bsuid.json", {1, 0, 0}},
      {"standby_echo_text.json", {1, 0, 0}},
      {"standby_status_delivered.json", {0, 1, 0}},
      {"smb_echo_text.json", {1, 0, 0}},
      {"smb_echo_text_bsuid.json", {1, 0, 0}},
      {"history_backfill.json", {4, 0, 0}},
      {"history_declined.json", {0, 0, 1}},
      {"handover_control_passed.json", {1, 0, 0}},
      {"handover_control_taken.json", {1, 0, 0}},
      {"handover_control_taken_bsuid.json", {1, 0, 0}},
  };
  ASSERT_EQ(test::ListDir(test::SourcePath("tests/fixtures/webhooks/threads")).size(),
            expected.size() + 1)
      << "a fixture without an expectation (README.md is the other file)";
  for (const auto& [file, want] : expected) {
    const std::string body = Threads(file);
    Counts got = PostAndDrain(body, SignBody(body, "test-app-secret"));
    EXPECT_EQ(got.messages, std::get<0>(want)) << file;
    EXPECT_EQ(got.statuses, std::get<1>(want)) << file;
    EXPECT_EQ(got.errors, std::get<2>(want)) << file;
  }
}

// A backfill of 1,005 messages under the default limit and publish deadline (2 s): 1,000 published
// and confirmed before the 200, the rest counted as dropped; prints how long the confirms took.
TEST_F(IngressBroker, AThousandMessageBackfillIsConfirmedWithinTheDefaultDeadline) {
  WebhookHandler defaults(
      {{{kDefaultApp, {"test-app-secret", "t"}}}},
      [this](AmqpMessage m, PublishCallback cb) { pub_.Publish(std::move(m), std::move(cb)); });
  auto& dropped = DefaultRegistry().GetCounter("convoy_ingress_history_dropped_total", "");
  const uint64_t dropped_before = dropped.Value();
  const std::string body = test::HistoryWebhook("16505551234", "broker", 1005, 1795950000);
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(defaults.Receive(Post(body)).status, 200);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started)
                      .count();
  std::cout << "history of 1005 messages (" << body.size() << " bytes): 200 after " << ms
            << " ms\n";
  EXPECT_EQ(dropped.Value() - dropped_before, 5u);
  auto taken = TakeMessages(opts_, queues::kConversationInbound, 2000);
  ASSERT_TRUE(taken.ok());
  EXPECT_EQ(taken->size(), 1000u);
}

// What /webhook/{app} publishes names the app and is what conversation accepts; another app's
// signature publishes nothing.
TEST_F(IngressBroker, AnAppsPathPublishesUpdatesNamingTheApp) {
  WebhookHandler apps(
      {{{kDefaultApp, {"test-app-secret", "t"}}, {"acme", {"acme-app-secret", "acme-t"}}}, 5000ms},
      [this](AmqpMessage m, PublishCallback cb) { pub_.Publish(std::move(m), std::move(cb)); });
  const std::string body = test::ReadFile(test::FixturePath("webhooks/batch_mixed.json"));
  HttpRequest req;
  req.method = "POST";
  req.path = "/webhook/acme";
  req.body = body;
  req.headers["x-hub-signature-256"] = SignBody(body, "test-app-secret");
  EXPECT_EQ(apps.Receive(req).status, 401);
  req.headers["x-hub-signature-256"] = SignBody(body, "acme-app-secret");
  EXPECT_EQ(apps.Receive(req).status, 200);
  auto messages = TakeMessages(opts_, queues::kConversationInbound, 100);
  auto statuses = TakeMessages(opts_, queues::kOutboundStatus, 100);
  ASSERT_TRUE(messages.ok() && statuses.ok());
  EXPECT_EQ(messages->size(), 4u) << "the 401 published nothing";
  EXPECT_EQ(statuses->size(), 1u);
  for (const auto* got : {&*messages, &*statuses}) {
    for (const auto& d : *got) {
      EXPECT_NE(d.body.find("\"app\":\"acme\""), std::string::npos) << d.body;
      ExpectAccepted(d.body);
    }
  }
}

// The binary: --apps_file's apps are served at their paths with their own secrets and tokens,
// beside /webhook; a bad file stops the start naming the flag and the line, never the secret.
TEST(IngressBinary, ServesEachAppOfItsAppsFile) {
  test::TestVhost vhost("ingress_apps");
  ASSERT_TRUE(DeclareConvoyTopology(AmqpOptions{vhost.url(), "ingress-apps-test"}).ok());
  const std::string dir = ::testing::TempDir(),
                    apps_file = dir + "/" + test::UniqueName("apps") + ".txt";
  std::ofstream(apps_file)
      << "# app secret token\nacme env:INGRESS_TEST_ACME_SECRET env:INGRESS_TEST_ACME_TOKEN\n";
  const int port = test::FreePort();
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  test::ChildProcess ingress;
  ASSERT_TRUE(ingress.Start(
      {test::BinaryPath("services/ingress/convoy-ingress"), "--amqp_url=" + vhost.url(),
       "--http_port=" + std::to_string(port), "--metrics_port=-1", "--apps_file=" + apps_file},
      dir + "/" + test::UniqueName("ingress") + ".log",
      {{"CONVOY_APP_SECRET", "test-app-secret"},
       {"CONVOY_VERIFY_TOKEN", "v"},
       {"INGRESS_TEST_ACME_SECRET", "acme-app-secret"},
       {"INGRESS_TEST_ACME_TOKEN", "acme-t"}}));
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        int status = 0;
        test::HttpGet(base + "/readyz", &status);
        return status == 200;
      },
      60s))
      << ingress.Log();
  int status = 0;
  EXPECT_EQ(test::HttpGet(
                base + "/webhook/acme?hub.mode=subscribe&hub.verify_token=acme-t&hub.challenge=42",
                &status),
            "42");
  EXPECT_EQ(status, 200);
  test::HttpGet(base + "/webhook?hub.mode=subscribe&hub.verify_token=acme-t&hub.challenge=42",
                &status);
  EXPECT_EQ(status, 403) << "acme's token is not default's";
  const std::string body = test::ReadFile(test::FixturePath("webhooks/text.json"));
  auto post = [&](const std::string& path, const std::string& secret) {
    HttpClientRequest req;
    req.method = "POST";
    req.url = base + path;
    req.headers["X-Hub-Signature-256"] = SignBody(body, secret);
    req.body = body;
    auto r = HttpFetch(req);
    return r.ok() ? r->status : 0;
  };
  EXPECT_EQ(post("/webhook/acme", "acme-app-secret"), 200);
  EXPECT_EQ(post("/webhook/acme", "test-app-secret"), 401);
  EXPECT_EQ(post("/webhook/globex", "acme-app-secret"), 404);
  EXPECT_EQ(post("/webhook", "test-app-secret"), 200);
  auto published =
      TakeMessages(AmqpOptions{vhost.url(), "ingress-apps-take"}, queues::kConversationInbound, 10);
  ASSERT_TRUE(published.ok());
  ASSERT_EQ(published->size(), 2u);
  std::set<std::string> apps;
  for (const auto& d : *published) apps.insert(d.body.substr(0, d.body.find(',')));
  EXPECT_EQ(apps, (std::set<std::string>{"{\"app\":\"acme\"", "{\"app\":\"default\""}));
  const std::string metrics = test::HttpGet(base + "/metrics");
  EXPECT_EQ(
      test::MetricValue(metrics, "convoy_ingress_app_requests_total{app=\"acme\",outcome=\"200\"}"),
      2);
  EXPECT_EQ(
      test::MetricValue(metrics, "convoy_ingress_app_requests_total{app=\"acme\",outcome=\"401\"}"),
      1);
  EXPECT_EQ(test::MetricValue(metrics, "convoy_ingress_requests_total{outcome=\"404\"}"), 1);
  EXPECT_EQ(metrics.find("globex"), std::string::npos) << "a name from a path is never a label";
  ingress.Signal(SIGTERM);
  EXPECT_EQ(ingress.Wait(), 0);

  std::ofstream(apps_file) << "acme env:INGRESS_TEST_ACME_SECRET env:INGRESS_TEST_ACME_TOKEN\n"
                              "globex 5ecret-in-clear env:INGRESS_TEST_ACME_TOKEN\n";
  test::ChildProcess refused;
  ASSERT_TRUE(
      refused.Start({test::BinaryPath("services/ingress/convoy-ingress"),
                     "--amqp_url=" + vhost.url(), "--http_port=0", "--apps_file=" + apps_file},
                    dir + "/" + test::UniqueName("ingress_refused") + ".log",
                    {{"CONVOY_APP_SECRET", "test-app-secret"},
                     {"CONVOY_VERIFY_TOKEN", "v"},
                     {"INGRESS_TEST_ACME_SECRET", "acme-app-secret"},
                     {"INGRESS_TEST_ACME_TOKEN", "acme-t"}}));
  EXPECT_EQ(refused.Wait(), 2);
  const std::string log = refused.Log();
  EXPECT_NE(log.find("flag=apps_file"), std::string::npos) << log;
  EXPECT_NE(log.find(apps_file + ":2: globex's app secret: not env:NAME or file:/absolute/path"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("5ecret-in-clear"), std::string::npos) << log;
}

}  // namespace
}  // namespace convoy::ingress
