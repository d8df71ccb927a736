// Integration: the webhook handler publishing to a real RabbitMQ (a vhost of its own). Every
// fixture yields exactly the broker messages it should, with the headers of the contract.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "convoy/amqp.h"
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
  int messages = 0, statuses = 0, errors = 0;
};

class IngressBroker : public ::testing::Test {
 protected:
  void SetUp() override {
    pub_.Start();
    ASSERT_TRUE(pub_.WaitConnected(20s));
  }

  // Posts a signed body and drains what it produced from the two inbound queues.
  Counts PostAndDrain(const std::string& body, const std::string& signature, std::string* correlation = nullptr) {
    HttpRequest req;
    req.method = "POST";
    req.body = body;
    req.headers["x-hub-signature-256"] = signature;
    HttpResponse resp = handler_.Receive(req);
    EXPECT_EQ(resp.status, 200) << resp.body;
    if (correlation) *correlation = resp.headers["X-Correlation-Id"];
    Counts c;
    auto messages = TakeMessages(opts_, queues::kConversationInbound, 10000);
    auto others = TakeMessages(opts_, queues::kOutboundStatus, 10000);
    EXPECT_TRUE(messages.ok() && others.ok());
    for (const auto& d : *messages) {
      ++c.messages;
      CheckHeaders(d, resp.headers["X-Correlation-Id"]);
      EXPECT_FALSE(d.Header(headers::kConversationKey).empty());
      ExpectAccepted(d.body);
      keys_.push_back(d.Header(headers::kConversationKey));
    }
    for (const auto& d : *others) {
      bool error = d.body.find("\"schema\":\"inbound.error\"") != std::string::npos;
      (error ? c.errors : c.statuses)++;
      CheckHeaders(d, resp.headers["X-Correlation-Id"]);
      ExpectAccepted(d.body);
      keys_.push_back(d.Header(headers::kConversationKey));
    }
    return c;
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
  WebhookHandler handler_{{"test-app-secret", "t", 5000ms},
                          [this](AmqpMessage m, PublishCallback cb) { pub_.Publish(std::move(m), std::move(cb)); }};
};

TEST_F(IngressBroker, EveryFixtureYieldsExactlyItsUpdates) {
  const std::map<std::string, std::tuple<int, int, int>> expected = {
      {"text.json", {1, 0, 0}},          {"image_with_caption.json", {1, 0, 0}},
      {"image_no_caption.json", {1, 0, 0}}, {"button_reply.json", {1, 0, 0}},
      {"list_reply.json", {1, 0, 0}},    {"unsupported.json", {1, 0, 0}},
      {"status_sent.json", {0, 1, 0}},   {"status_delivered.json", {0, 1, 0}},
      {"status_read.json", {0, 1, 0}},   {"status_failed.json", {0, 1, 0}},
      {"value_error_rate_limit.json", {0, 0, 1}}, {"batch_mixed.json", {4, 1, 0}},
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
                                               "Webhook objects or changes accepted and ignored.", "what=\"field\"");
  auto rows = test::PywaIndex();
  ASSERT_EQ(rows.size(), 60u);
  for (const auto& row : rows) {
    uint64_t ignored_before = ignored.Value();
    Counts got = PostAndDrain(test::ReadFile(test::FixturePath("webhooks/pywa/" + row.file)), row.signature);
    EXPECT_EQ(got.messages, row.messages) << row.file;
    EXPECT_EQ(got.statuses, row.statuses) << row.file;
    EXPECT_EQ(got.errors, row.errors) << row.file;
    if (row.field != "messages") {
      EXPECT_EQ(ignored.Value(), ignored_before + 1) << row.file << ": other fields are counted, not published";
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
      if (!line.empty() && line[0] != '#' && tab != std::string::npos) sigs[line.substr(0, tab)] = line.substr(tab + 1);
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
    Counts got = PostAndDrain(test::ReadFile(test::FixturePath("webhooks/bsuid/" + file)), sigs[file]);
    EXPECT_EQ(got.messages, std::get<0>(want)) << file;
    EXPECT_EQ(got.statuses, std::get<1>(want)) << file;
    ASSERT_EQ(keys_.size(), 1u) << file;
    EXPECT_EQ(keys_[0], std::get<2>(want)) << file;
    EXPECT_EQ(keys_[0].find("unknown"), std::string::npos) << file;
  }
}

}  // namespace
}  // namespace convoy::ingress
