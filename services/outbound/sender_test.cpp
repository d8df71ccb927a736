// Integration: outbound against a real broker and PostgreSQL, Meta played by the fake Graph API.
// Each test runs "replicas" of outbound in this process (consumer groups with Sender handlers,
// as convoy-outbound wires them) on a vhost and database of its own.
#include "sender.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <set>
#include <tuple>

#include "convoy/consumer_group.h"
#include "convoy/json.h"
#include "convoy/ledger.h"
#include "convoy/metrics.h"
#include "convoy/rapidjson_util.h"
#include "convoy/startup.h"
#include "convoy/topology.h"
#include "ctl.h"
#include "fake_graph.h"
#include "in_doubt.h"
#include "retention_rules.h"
#include "tcp_proxy.h"
#include "testsupport.h"

namespace convoy::outbound {
namespace {

using namespace std::chrono_literals;
using test::NowSeconds;
using test::WaitUntil;

constexpr const char* kBusiness = "106540352242922";
constexpr const char* kToken = "test-token";

uint64_t SendsCounted(const char* result) {
  return DefaultRegistry()
      .GetCounter("convoy_outbound_sends_total", "Send commands by result.",
                  std::string("result=\"") + result + "\"")
      .Value();
}

std::string TextMessage(const std::string& body) {
  return R"({"type":"text","text":{"body":")" + JsonEscape(body) + R"("}})";
}

class OutboundTest : public ::testing::Test {
 protected:
  OutboundTest()
      : vhost_("outbound"),
        db_("outbound"),
        amqp_{vhost_.url(), "outbound-test"},
        pub_(amqp_),
        graph_(kToken) {}

  void SetUp() override {
    ASSERT_TRUE(graph_.Start().ok());
    Status s = PrepareDatabaseService(test::SourcePath("proto-schemas"), db_.dsn(),
                                      test::SourcePath("deploy/postgres"),
                                      /*migrate=*/true, &base_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    auto conn = PgConnection::Connect(db_.dsn());
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    sql_ = std::move(*conn);
    pub_.Start();
    ASSERT_TRUE(pub_.WaitConnected(20s));
    // What ingress does with Meta's status webhooks: one inbound.status per status.
    graph_.SetStatusSink([this](const std::string& pnid, const std::string& status) {
      PublishStatus(pnid, status);
    });
  }

  void TearDown() override {
    for (auto& r : replicas_) r->Stop();
    graph_.SetStatusSink(nullptr);
  }

  SenderSettings Settings() const {
    SenderSettings s;
    s.graph = {graph_.base_url(), kToken, 1000ms, nullptr};
    s.pacing.enabled = false;
    s.reconcile = 2s;
    return s;
  }

  // One outbound replica: `threads` send consumers and a status consumer.
  // dsn: the database as this replica reaches it (a TcpProxy's port, for an outage);
  // status_attempts: the status queue's delivery limit.
  void StartReplica(const SenderSettings& settings, int threads = 4, std::string dsn = "",
                    int status_attempts = 5) {
    if (dsn.empty()) dsn = db_.dsn();
    auto group = std::make_unique<ConsumerGroup>(pub_);
    auto make =
        [this, settings,
         dsn]() -> Result<std::pair<std::shared_ptr<PgConnection>, std::shared_ptr<Sender>>> {
      auto db = PgConnection::Connect(dsn);
      if (!db.ok()) return db.status();
      std::shared_ptr<PgConnection> conn(std::move(*db));
      auto sender = std::make_shared<Sender>(*conn, base_.schemas, settings, [this](AmqpMessage m) {
        return pub_.PublishAndWait(std::move(m), 10s);
      });
      return std::make_pair(conn, sender);
    };
    // As convoy-outbound wires it: statuses in batches of up to 32 (Sender::HandleStatusBatch).
    BatchHandlerFactory statuses = [make]() -> Result<BatchHandler> {
      auto made = make();
      if (!made.ok()) return made.status();
      std::shared_ptr<Sender> sender = made->second;
      return BatchHandler([conn = made->first, sender](const std::vector<Delivery>& batch) {
        return sender->HandleStatusBatch(batch);
      });
    };
    auto factory = [this, make](bool) {
      return [this, make]() -> Result<DeliveryHandler> {
        auto made = make();
        if (!made.ok()) return made.status();
        std::shared_ptr<PgConnection> conn = made->first;
        std::shared_ptr<Sender> sender = made->second;
        DeliveryHandler send([conn, sender](const Delivery& d) { return sender->HandleSend(d); });
        // As convoy-outbound wires it: the command's outbox row settled (or its due time moved).
        if (ledgered_) return Ledgered(std::move(send), *conn, kUnlimitedAttempts);
        return send;
      };
    };
    ASSERT_TRUE(
        group->Add({amqp_, queues::kOutboundSend, 32, kUnlimitedAttempts}, threads, factory(false))
            .ok());
    ASSERT_TRUE(
        group->AddBatch({amqp_, queues::kOutboundStatus, 32, status_attempts, 32}, 1, statuses)
            .ok());
    group->Start();
    ASSERT_TRUE(WaitUntil([&] { return group->connected(); }, 20s));
    replicas_.push_back(std::move(group));
  }

  static std::string Command(const std::string& dedupe, const std::string& to,
                             const std::string& message, int64_t last_inbound_at) {
    return R"({"schema":"outbound.send","version":1,"correlation_id":"corr-)" + JsonEscape(dedupe) +
           R"(","dedupe_key":")" + JsonEscape(dedupe) + R"(","conversation_key":")" + kBusiness +
           ":" + to + R"(","phone_number_id":")" + kBusiness + R"(","to":")" + to +
           R"(","last_inbound_at":)" + std::to_string(last_inbound_at) + R"(,"message":)" +
           message + "}";
  }

  static AmqpMessage SendMessage(const std::string& body, const std::string& dedupe,
                                 const std::string& to) {
    AmqpMessage m;
    m.exchange = exchanges::kCommands;
    m.routing_key = queues::kOutboundSend;
    m.message_id = dedupe;
    m.body = body;
    m.headers = {{headers::kDedupeKey, dedupe},
                 {headers::kCorrelationId, "corr-" + dedupe},
                 {headers::kConversationKey, std::string(kBusiness) + ":" + to}};
    return m;
  }

  void Send(const std::string& dedupe, const std::string& to,
            const std::string& message = TextMessage("Hello"), int64_t last_inbound_at = 0) {
    if (last_inbound_at == 0) last_inbound_at = NowSeconds() - 60;
    Status s = pub_.PublishAndWait(
        SendMessage(Command(dedupe, to, message, last_inbound_at), dedupe, to), 10s);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  void PublishStatus(const std::string& pnid, const std::string& status) {
    rapidjson::Document d;
    d.Parse(status.c_str());
    std::string key = JsonStr(d, "id") + ":" + JsonStr(d, "status");
    AmqpMessage m;
    m.exchange = exchanges::kInbound;
    m.routing_key = "status";
    m.message_id = key;
    m.body =
        R"({"schema":"inbound.status","version":1,"correlation_id":"corr-status","received_at":"2026-01-01T00:00:00Z",)"
        R"("phone_number_id":")" +
        pnid + R"(","dedupe_key":")" + JsonEscape(key) + R"(","status":)" + status + "}";
    m.headers = {{headers::kDedupeKey, key}, {headers::kCorrelationId, "corr-status"}};
    Status published = pub_.PublishAndWait(std::move(m), 10s);
    EXPECT_TRUE(published.ok()) << published.ToString();
  }

  struct Row {
    std::string status, attempts, error_code, error_reason, wamid;
  };
  Row Log(const std::string& dedupe) {
    auto r = sql_->Exec(
        "SELECT status, attempts::text, coalesce(error_code::text, ''), coalesce(error_reason, "
        "''), coalesce(wamid, '') "
        "FROM outbound_messages WHERE dedupe_key = $1",
        {dedupe});
    if (!r.ok() || r->empty()) return {};
    return {r->get(0, 0), r->get(0, 1), r->get(0, 2), r->get(0, 3), r->get(0, 4)};
  }
  // A send of another business number than kBusiness (a text, the recipient wrote a minute ago).
  void SendFrom(const std::string& number, const std::string& dedupe, const std::string& to) {
    std::string body = Command(dedupe, to, TextMessage("p"), NowSeconds() - 60);
    for (size_t at = body.find(kBusiness); at != std::string::npos;
         at = body.find(kBusiness, at + number.size())) {
      body.replace(at, std::string(kBusiness).size(), number);
    }
    Status s = pub_.PublishAndWait(SendMessage(body, dedupe, to), 10s);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  bool WaitStatus(const std::string& dedupe, const std::string& status,
                  std::chrono::seconds deadline = 30s) {
    return WaitUntil([&] { return Log(dedupe).status == status; }, deadline);
  }
  int64_t Count(const std::string& sql) {
    auto r = sql_->Exec(sql);
    return r.ok() && !r->empty() ? r->get_int(0, 0) : -1;
  }
  // The events outbound emitted so far (drained from conversation.events, which has no consumer
  // here).
  std::vector<Delivery> TakeEvents() {
    auto n = QueueMessageCount(amqp_, queues::kConversationEvents);
    if (!n.ok() || *n == 0) return {};
    auto taken = TakeMessages(amqp_, queues::kConversationEvents, *n);
    return taken.ok() ? *taken : std::vector<Delivery>{};
  }
  // Waits (up to 10 s) until `count` outbound.failed events were emitted; those taken so far.
  std::vector<Delivery> WaitFailedEvents(size_t count) {
    std::vector<Delivery> failed;
    WaitUntil(
        [&] {
          for (auto& e : TakeEvents()) {
            if (e.routing_key == "outbound.failed") failed.push_back(e);
          }
          return failed.size() >= count;
        },
        10s);
    return failed;
  }

  // Meta's status webhooks kept here instead of published, for a test to publish when it chooses.
  std::vector<std::string> HoldStatuses() {
    std::lock_guard<std::mutex> lock(held_mu_);
    return held_;
  }
  void HoldStatusesBack() {
    graph_.SetStatusSink([this](const std::string&, const std::string& status) {
      std::lock_guard<std::mutex> lock(held_mu_);
      held_.push_back(status);
    });
  }
  // The send log refuses to move a send to sent or further (testsupport.h RefuseUpdates).
  void RefuseRecords(int times = 0) {
    test::RefuseUpdates(*sql_, "outbound_messages",
                        "NEW.status IN ('sent', 'delivered', 'read') AND NEW.status IS DISTINCT "
                        "FROM OLD.status",
                        times);
  }
  int64_t Refused() { return Count("SELECT " + test::kRefusedSoFar); }
  void StopRefusing() { ASSERT_TRUE(sql_->Exec("UPDATE fault_switch SET refusing = false").ok()); }
  size_t Parked(const char* queue) {
    auto n = QueueMessageCount(amqp_, std::string(queue) + ".dlq");
    return n.ok() ? *n : 999;
  }
  // The wamid Meta (the fake) answered for the only send to `to`.
  std::string AnsweredWamid(const std::string& to) {
    rapidjson::Document sends;
    std::string json = graph_.RequestsJson();
    sends.Parse(json.c_str());
    for (const auto& s : sends.GetArray()) {
      if (JsonStr(s, "to") == to) return JsonStr(s, "wamid");
    }
    return "";
  }

  test::TestVhost vhost_;
  test::TestDatabase db_;
  AmqpOptions amqp_;
  Publisher pub_;
  fake::FakeGraph graph_;
  DatabaseService base_;
  std::unique_ptr<PgConnection> sql_;
  std::vector<std::unique_ptr<ConsumerGroup>> replicas_;
  std::mutex held_mu_;
  std::vector<std::string> held_;
  bool ledgered_ = false;  // replicas started from now on settle their commands' outbox rows
};

// 1,000 commands, each published twice, over two replicas: 1,000 Graph calls, one per key.
TEST_F(OutboundTest, EveryCommandDuplicatedIsSentExactlyOnce) {
  StartReplica(Settings());
  StartReplica(Settings());
  constexpr int kSends = 1000;
  PublishBatch published;
  for (int copy = 0; copy < 2; ++copy) {
    for (int i = 0; i < kSends; ++i) {
      std::string key = "dup:" + std::to_string(i), to = "1650555" + std::to_string(1000 + i);
      pub_.Publish(SendMessage(Command(key, to, TextMessage("n" + std::to_string(i)), NowSeconds()),
                               key, to),
                   published.Add());
    }
  }
  ASSERT_TRUE(published.Wait(std::chrono::steady_clock::now() + 60s).ok());
  ASSERT_TRUE(WaitUntil(
      [&] {
        return Count("SELECT count(*) FROM outbound_messages WHERE status = 'sent'") == kSends;
      },
      120s))
      << Count("SELECT count(*) FROM outbound_messages WHERE status = 'sent'");
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto n = QueueMessageCount(amqp_, queues::kOutboundSend);
        return n.ok() && *n == 0;
      },
      30s));
  EXPECT_EQ(graph_.CallCount(), static_cast<size_t>(kSends));
  EXPECT_EQ(graph_.SendCount(), static_cast<size_t>(kSends));
  EXPECT_EQ(Count("SELECT count(*) FROM outbound_messages WHERE attempts <> 1"), 0);
  // The same command once more, long after: acked without a call.
  uint64_t dups = SendsCounted("duplicate");
  Send("dup:7", "16505551007");
  ASSERT_TRUE(WaitUntil([&] { return SendsCounted("duplicate") > dups; }, 20s));
  EXPECT_EQ(graph_.CallCount(), static_cast<size_t>(kSends));
}

// Throughput limit, 5xx: Meta did not take the message; it is retried through a delay queue and
// sent once, the attempts visible in the log.
// The content guard is the last look before Meta: what it cuts never reaches the Graph API.
TEST_F(OutboundTest, TheContentGuardCutsAServiceListBeforeTheCall) {
  SenderSettings settings = Settings();
  auto guard =
      ContentGuard::Load(test::SourcePath("deploy/guard/content-guard.json"), base_.schemas);
  ASSERT_TRUE(guard.ok()) << guard.status().ToString();
  settings.guard = *guard;
  StartReplica(settings, 1);
  auto& sanitised = DefaultRegistry().GetCounter(
      "convoy_outbound_guard_total", "Texts the content guard changed before sending, by action.",
      "action=\"sanitised\"");
  auto& replaced = DefaultRegistry().GetCounter(
      "convoy_outbound_guard_total", "Texts the content guard changed before sending, by action.",
      "action=\"replaced\"");
  const uint64_t s0 = sanitised.Value(), r0 = replaced.Value();
  Send("guard:1", "16505550101",
       TextMessage("How can I help you today? (family visa, golden visa, company setup)"));
  Send("guard:2", "16505550101", TextMessage("Golden visa / Family visa"));
  Send("guard:3", "16505550101",
       TextMessage("Thank you, Ana. Our team will call you tonight about your family visa."));
  ASSERT_TRUE(graph_.WaitForSends(3, 30s));
  EXPECT_EQ(graph_.SentTexts("16505550101"),
            (std::vector<std::string>{
                "How can I help you today?", "How can I help you today?",
                "Thank you, Ana. Our team will call you tonight about your family visa."}));
  EXPECT_EQ(sanitised.Value() - s0, 1u);
  EXPECT_EQ(replaced.Value() - r0, 1u);
}

// An answer carrying mark_read: the user's message is marked read with the typing indicator just
// before the answer, once: not again for a duplicate of the command, nor for a retried attempt
// (the indicator would show after the fact).
TEST_F(OutboundTest, TheAnswersMarkReadGoesJustBeforeItOnce) {
  StartReplica(Settings(), 1);
  auto with_mark_read = [](std::string command, const std::string& wamid) {
    return command.replace(command.find(R"("to":")"), 0, R"("mark_read":")" + wamid + R"(",)");
  };
  const std::string to = "16505553001", to2 = "16505553002";
  auto publish = [&](const std::string& key, const std::string& who, const std::string& wamid) {
    std::string body = with_mark_read(Command(key, who, TextMessage("Hi"), NowSeconds()), wamid);
    ASSERT_TRUE(base_.schemas.Validate(body).ok()) << body;
    ASSERT_TRUE(pub_.PublishAndWait(SendMessage(body, key, who), 10s).ok());
  };
  publish("mr:1", to, "wamid.U1");
  ASSERT_TRUE(WaitStatus("mr:1", "sent"));
  uint64_t dups = SendsCounted("duplicate");
  publish("mr:1", to, "wamid.U1");  // a duplicate: acked without a call
  ASSERT_TRUE(WaitUntil([&] { return SendsCounted("duplicate") > dups; }, 20s));
  // The first attempt fails (503), the retry sends: one receipt, before the first attempt.
  graph_.Inject(503, 2, 1, 0, "/messages");
  publish("mr:2", to2, "wamid.U2");
  ASSERT_TRUE(WaitStatus("mr:2", "sent"));
  EXPECT_EQ(Log("mr:2").attempts, "2");
  EXPECT_EQ(graph_.CallOrder(), (std::vector<std::string>{"read:wamid.U1", "send:" + to,
                                                          "read:wamid.U2", "send:" + to2}));
  EXPECT_EQ(graph_.ReadReceipts(),
            (std::vector<std::string>{"wamid.U1:typing", "wamid.U2:typing"}));
}

TEST_F(OutboundTest, RateLimitAndServerErrorsAreRetriedAndSentOnce) {
  StartReplica(Settings(), 1);
  struct Case {
    int http, code;
    const char* key;
  };
  for (const Case& c : {Case{400, 130429, "throttled"}, Case{503, 2, "unavailable"},
                        Case{500, 131000, "unknown"}}) {
    size_t calls = graph_.CallCount();
    graph_.Inject(c.http, c.code, 1, 0, "/messages");
    Send(c.key, "16505552001");
    ASSERT_TRUE(WaitStatus(c.key, "sent")) << c.key << ": " << Log(c.key).status;
    Row row = Log(c.key);
    EXPECT_EQ(row.attempts, "2") << c.key;
    EXPECT_EQ(row.error_code, "") << c.key << ": a sent message carries no error";
    EXPECT_EQ(graph_.CallCount(), calls + 2) << c.key;
  }
  EXPECT_EQ(graph_.SendTimesMs("16505552001").size(), 3u);
}

// No answer within the timeout, though Meta took the message: the attempt is uncertain, the status
// webhook (callback data → dedupe key) settles it, and the retry sends nothing.
TEST_F(OutboundTest, AnAcceptedSendWhoseAnswerIsLostIsReconciledNotResent) {
  StartReplica(Settings(), 1);
  graph_.Inject(200, 0, 1, 2500, "/messages");  // accepted at once, answered after the 1 s timeout
  uint64_t dups = SendsCounted("duplicate");
  Send("slow-accepted", "16505552002");
  ASSERT_TRUE(WaitUntil([&] { return SendsCounted("duplicate") > dups; }, 30s))
      << Log("slow-accepted").status;
  Row row = Log("slow-accepted");
  EXPECT_EQ(row.status, "sent");
  EXPECT_EQ(row.attempts, "1");
  EXPECT_EQ(row.wamid.rfind("wamid.FAKE", 0), 0u) << "the wamid came from the status webhook";
  EXPECT_EQ(graph_.SendTimesMs("16505552002").size(), 1u);
  EXPECT_EQ(graph_.CallCount(), 1u);
}

// Once Meta answered 2xx the send is recorded, whatever the database says at that moment: the send
// log refuses the first two updates to 'sent'; the record alone is retried (the wamid carried in
// a header) and lands with Meta's wamid, and Graph was called once.
TEST_F(OutboundTest, ARecordThatFailsAfterMetaAcceptedIsRetriedWithoutASecondCall) {
  HoldStatusesBack();  // no status webhook may write the record in its place
  RefuseRecords(2);
  StartReplica(Settings(), 1);
  const uint64_t retried = SendsCounted("record_retry");
  Send("record-refused", "16505552020");
  ASSERT_TRUE(WaitStatus("record-refused", "sent"))
      << Log("record-refused").status << ", refused " << Refused();
  EXPECT_EQ(Refused(), 2);
  Row row = Log("record-refused");
  EXPECT_EQ(row.wamid, AnsweredWamid("16505552020"));
  EXPECT_FALSE(row.wamid.empty());
  EXPECT_EQ(row.attempts, "1");
  EXPECT_EQ(SendsCounted("record_retry") - retried, 2u);
  EXPECT_EQ(graph_.CallCount(), 1u);
  EXPECT_EQ(Parked(queues::kOutboundSend), 0u);
}

// The record keeps failing: after record_attempts the command is parked carrying the wamid, and
// `convoyctl dlq replay` finishes the record without sending again.
TEST_F(OutboundTest, ARecordThatKeepsFailingIsParkedWithTheWamidAndAReplayFinishesIt) {
  SenderSettings settings = Settings();
  settings.record_attempts = 2;
  HoldStatusesBack();
  RefuseRecords();
  StartReplica(settings, 1);
  Send("record-parked", "16505552021");
  ASSERT_TRUE(WaitUntil([&] { return Parked(queues::kOutboundSend) == 1; }, 30s)) << Refused();
  EXPECT_EQ(Log("record-parked").status, "sending");
  const std::string wamid = AnsweredWamid("16505552021");
  ASSERT_FALSE(wamid.empty());
  ctl::DlqFilter sends;
  sends.queue = queues::kOutboundSend;
  auto parked = ctl::ListParked(vhost_.url(), sends);
  ASSERT_TRUE(parked.ok() && parked->size() == 1u) << parked.status().ToString();
  EXPECT_NE((*parked)[0].last_reason.find("Meta accepted the send (wamid " + wamid + ")"),
            std::string::npos)
      << (*parked)[0].last_reason;
  const auto& h = (*parked)[0].headers;
  EXPECT_NE(std::find(h.begin(), h.end(), std::make_pair(std::string("x-graph-accepted"), wamid)),
            h.end())
      << "the parked command carries the wamid";

  StopRefusing();
  // Listing held the parked message unacked; it is back in the queue once the listing's channel
  // is gone (a moment later under load), and only then can the replay take it.
  ASSERT_TRUE(WaitUntil([&] { return Parked(queues::kOutboundSend) == 1; }, 30s));
  auto replayed = ctl::ReplayParked(vhost_.url(), sends, false);
  ASSERT_TRUE(replayed.ok() && *replayed == 1u) << replayed.status().ToString();
  ASSERT_TRUE(WaitStatus("record-parked", "sent"));
  EXPECT_EQ(Log("record-parked").wamid, wamid);
  EXPECT_EQ(graph_.CallCount(), 1u) << "the replay recorded the send, it did not send it again";
  EXPECT_EQ(Parked(queues::kOutboundSend), 0u);
}

// The status webhooks that come while the record of their send cannot be written (the database
// refuses, as it would while stopped) wait in the retry tiers; once it takes writes again the send
// is recorded and its statuses applied — none parked.
TEST_F(OutboundTest, StatusesThatComeWhileTheRecordFailsWaitAndAreApplied) {
  HoldStatusesBack();
  RefuseRecords();
  StartReplica(Settings(), 1);
  const std::string to = "16505552022";
  Send("record-late", to);
  ASSERT_TRUE(WaitUntil([&] { return Refused() >= 1 && HoldStatuses().size() == 1; }, 20s));
  const std::string sent = HoldStatuses()[0];
  std::string delivered = sent;
  delivered.replace(delivered.find(R"("status":"sent")"), 15, R"("status":"delivered")");
  PublishStatus(kBusiness, sent);
  PublishStatus(kBusiness, delivered);
  // The record and both statuses met the refusal at least once each.
  ASSERT_TRUE(WaitUntil([&] { return Refused() >= 3; }, 20s)) << Refused();
  EXPECT_EQ(Log("record-late").status, "sending");
  StopRefusing();
  ASSERT_TRUE(WaitStatus("record-late", "delivered", 60s)) << Log("record-late").status;
  EXPECT_EQ(Log("record-late").wamid, AnsweredWamid(to));
  EXPECT_EQ(graph_.CallCount(), 1u);
  EXPECT_EQ(Parked(queues::kOutboundStatus), 0u);
  EXPECT_EQ(Parked(queues::kOutboundSend), 0u);
}

// A status for a wamid no send holds yet (its record is still in flight, and Meta's callback data
// is missing) waits for the record instead of being dropped or parked.
TEST_F(OutboundTest, AStatusForAWamidNotRecordedYetWaitsForTheRecord) {
  StartReplica(Settings(), 1);
  const std::string status =
      R"({"id":"wamid.EARLY1","status":"delivered","timestamp":"1750000000","recipient_id":"16505552023"})";
  PublishStatus(kBusiness, status);
  auto& waiting = DefaultRegistry().GetCounter("convoy_outbound_statuses_total",
                                               "Status webhooks by effect.", "effect=\"waiting\"");
  const uint64_t waited = waiting.Value();
  ASSERT_TRUE(WaitUntil([&] { return waiting.Value() > waited; }, 20s));
  ASSERT_TRUE(sql_->Exec("INSERT INTO outbound_messages (dedupe_key, phone_number_id, recipient, "
                         "status, correlation_id, "
                         "wamid, attempts) VALUES ('early', $1, '16505552023', 'sent', 'c', "
                         "'wamid.EARLY1', 1)",
                         {std::string(kBusiness)})
                  .ok());
  ASSERT_TRUE(WaitStatus("early", "delivered"));
  EXPECT_EQ(Parked(queues::kOutboundStatus), 0u);
}

// Meta's ids are unique, so a wamid another send already holds is an integrity error: the send is
// still recorded as sent (Meta took it) with a reason naming the holder, counted for an alert; a
// status that would give the wamid to a second send is parked naming both.
TEST_F(OutboundTest, AWamidAnotherSendHoldsIsReportedAsAnIntegrityError) {
  StartReplica(Settings(), 1);
  auto& conflicts =
      DefaultRegistry().GetCounter("convoy_outbound_wamid_conflicts_total",
                                   "Graph answers or status webhooks naming a wamid another send "
                                   "already holds (an integrity error: two dedupe "
                                   "keys, one message id).");
  const uint64_t before = conflicts.Value();
  ASSERT_TRUE(sql_->Exec("INSERT INTO outbound_messages (dedupe_key, phone_number_id, recipient, "
                         "status, correlation_id, "
                         "wamid, attempts) VALUES ('holder', $1, '16505552024', 'read', 'c', "
                         "'wamid.TWICE', 1), "
                         "('second', $1, '16505552024', 'sending', 'c', NULL, 1)",
                         {std::string(kBusiness)})
                  .ok());
  // A status for 'second' that names the wamid 'holder' holds.
  PublishStatus(
      kBusiness,
      R"({"id":"wamid.TWICE","status":"sent","timestamp":"1750000000","recipient_id":"16505552024",)"
      R"("biz_opaque_callback_data":"convoy:second"})");
  ASSERT_TRUE(WaitUntil([&] { return Parked(queues::kOutboundStatus) == 1; }, 20s));
  auto parked = TakeMessages(amqp_, std::string(queues::kOutboundStatus) + ".dlq", 1);
  ASSERT_TRUE(parked.ok() && parked->size() == 1);
  EXPECT_NE((*parked)[0]
                .Header(headers::kDeathReason)
                .find("for send second names wamid wamid.TWICE, which send holder"),
            std::string::npos)
      << (*parked)[0].Header(headers::kDeathReason);
  // Meta's answer to 'second' named it too (its record being retried): recorded, and reported.
  AmqpMessage redelivered = SendMessage(
      Command("second", "16505552024", TextMessage("Hi"), NowSeconds()), "second", "16505552024");
  redelivered.headers["x-graph-accepted"] = "wamid.TWICE";
  ASSERT_TRUE(pub_.PublishAndWait(redelivered, 10s).ok());
  ASSERT_TRUE(WaitStatus("second", "sent"));
  Row row = Log("second");
  EXPECT_EQ(row.wamid, "");
  EXPECT_NE(row.error_reason.find("wamid wamid.TWICE, which send holder already holds"),
            std::string::npos)
      << row.error_reason;
  EXPECT_EQ(conflicts.Value() - before, 2u);
  EXPECT_EQ(Log("holder").status, "read");
  EXPECT_EQ(graph_.CallCount(), 0u) << "a command Meta accepted is only recorded";
}

// The fake Graph API behaves like Meta across restarts: a second fake on the same database (the
// local stack run again on its .run/ data) hands out wamids the first never did, so every send of
// both runs is recorded with its own.
TEST_F(OutboundTest, AGraphFakeStartedAgainOnTheSameDataNeverRepeatsAWamid) {
  StartReplica(Settings(), 1);
  for (int i = 0; i < 3; ++i) Send("run1:" + std::to_string(i), "16505552030");
  ASSERT_TRUE(WaitUntil(
      [&] { return Count("SELECT count(*) FROM outbound_messages WHERE status = 'sent'") == 3; },
      20s));
  for (auto& r : replicas_) r->Stop();
  replicas_.clear();
  graph_.Stop();

  fake::FakeGraph again(kToken);
  ASSERT_TRUE(again.Start().ok());
  again.SetStatusSink(
      [this](const std::string& pnid, const std::string& status) { PublishStatus(pnid, status); });
  SenderSettings settings = Settings();
  settings.graph.base_url = again.base_url();
  StartReplica(settings, 1);
  for (int i = 0; i < 3; ++i) Send("run2:" + std::to_string(i), "16505552030");
  ASSERT_TRUE(WaitUntil(
      [&] { return Count("SELECT count(*) FROM outbound_messages WHERE status = 'sent'") == 6; },
      20s))
      << Count("SELECT count(*) FROM outbound_messages WHERE status = 'sent'");
  EXPECT_EQ(again.SendCount(), 3u);
  EXPECT_EQ(Count("SELECT count(DISTINCT wamid) FROM outbound_messages"), 6);
  EXPECT_EQ(Count("SELECT count(*) FROM outbound_messages WHERE error_reason IS NOT NULL"), 0);
  for (auto& r : replicas_) r->Stop();
  again.SetStatusSink(nullptr);
  EXPECT_EQ(Parked(queues::kOutboundStatus), 0u);
}

// The sends in doubt (Meta may have taken them, no record says so): counted, with the age of the
// oldest, for the alert that compares it with the reconcile window.
TEST_F(OutboundTest, SendsInDoubtAreMeasured) {
  auto none = MeasureInDoubt(*sql_);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(none->count, 0);
  EXPECT_EQ(none->oldest_seconds, 0);
  ASSERT_TRUE(sql_->Exec("INSERT INTO outbound_messages (dedupe_key, phone_number_id, recipient, "
                         "status, correlation_id, "
                         "attempt_started_at) VALUES ('d1', '1', '2', 'sending', 'c', now() - "
                         "interval '100 seconds'), "
                         "('d2', '1', '2', 'uncertain', 'c', now() - interval '5 seconds'), "
                         "('d3', '1', '2', 'sent', 'c', now() - interval '1 hour'), "
                         "('d4', '1', '2', 'retrying', 'c', now() - interval '1 hour')")
                  .ok());
  auto m = MeasureInDoubt(*sql_);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->count, 2);
  EXPECT_GE(m->oldest_seconds, 100);
  EXPECT_LT(m->oldest_seconds, 160);
}

// The database away for longer than a status's counted retries would last: the status waits,
// uncounted, and is applied when the database returns (parked, it could no longer settle a send
// in doubt, which the sweeper would then send again).
TEST_F(OutboundTest, AStatusWaitsOutADatabaseOutageUncounted) {
  std::string admin = test::PgDsn();
  test::TcpProxy proxy(std::atoi(admin.c_str() + admin.find("port=") + 5));
  ASSERT_TRUE(proxy.Start());
  std::string dsn = db_.dsn();
  const size_t at = dsn.find("port=");
  dsn.replace(at, dsn.find(' ', at) - at, "port=" + std::to_string(proxy.port()));
  HoldStatusesBack();
  StartReplica(Settings(), 1, dsn, /*status_attempts=*/2);
  Send("outage", "16505552009");
  ASSERT_TRUE(WaitStatus("outage", "sent"));
  std::vector<std::string> statuses;
  ASSERT_TRUE(WaitUntil([&] { return !(statuses = HoldStatuses()).empty(); }, 10s));
  std::string delivered = statuses[0];
  const auto sent_at = delivered.find(R"("status":"sent")");
  ASSERT_NE(sent_at, std::string::npos) << delivered;
  delivered.replace(sent_at, std::string(R"("status":"sent")").size(), R"("status":"delivered")");
  auto& retried =
      DefaultRegistry().GetCounter("convoy_outbound_statuses_total", "", "effect=\"retry\"");
  const uint64_t before = retried.Value();
  proxy.SetBlocked(true);
  PublishStatus(kBusiness, delivered);
  // Three tries while the database is away: a delivery limit of 2 would have parked it.
  ASSERT_TRUE(WaitUntil([&] { return retried.Value() >= before + 3; }, 40s));
  proxy.SetBlocked(false);
  ASSERT_TRUE(WaitStatus("outage", "delivered"));
  EXPECT_EQ(Parked(queues::kOutboundStatus), 0u);
  EXPECT_EQ(graph_.CallCount(), 1u);
}

// No answer on the last attempt its budget allows: the send is parked, its outcome unknown. Nothing
// more will be done for it, so it leaves the in-doubt count (an alert on it could never clear),
// and a status webhook that comes later still records it.
TEST_F(OutboundTest, ASendLetGoUnansweredLeavesTheInDoubtCount) {
  SenderSettings s = Settings();
  s.send_deadline = 1s;  // no second attempt fits
  StartReplica(s, 1);
  graph_.Inject(503, 2, 1, 2500, "/messages");  // answered after the 1 s timeout
  Send("let-go", "16505552008");
  ASSERT_TRUE(WaitUntil([&] { return Parked(queues::kOutboundSend) == 1; }, 30s));
  EXPECT_EQ(Log("let-go").status, "unknown");
  auto m = MeasureInDoubt(*sql_);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->count, 0);
}

// No answer, and Meta did not take it: no status ever comes, so after the reconcile time the
// message is sent again, once.
TEST_F(OutboundTest, AnUnansweredSendMetaNeverTookIsSentAgainAfterTheReconcileTime) {
  StartReplica(Settings(), 1);
  graph_.Inject(503, 2, 1, 2500, "/messages");  // slower than the timeout, and an error
  Send("slow-refused", "16505552003");
  ASSERT_TRUE(WaitStatus("slow-refused", "sent"));
  EXPECT_EQ(Log("slow-refused").attempts, "2");
  EXPECT_EQ(graph_.SendTimesMs("16505552003").size(), 1u);
  EXPECT_EQ(graph_.CallCount(), 2u);
}

// 131047 (re-engagement), 131026 (undeliverable): permanent, no retry; the conversation hears.
TEST_F(OutboundTest, PermanentErrorsFailAtOnceAndEmitOutboundFailed) {
  StartReplica(Settings(), 1);
  for (int code : {131047, 131026}) {
    std::string key = "permanent-" + std::to_string(code);
    graph_.Inject(400, code, 1, 0, "/messages");
    Send(key, "16505552004");
    ASSERT_TRUE(WaitStatus(key, "failed")) << key;
    Row row = Log(key);
    EXPECT_EQ(row.error_code, std::to_string(code));
    EXPECT_EQ(row.attempts, "1");
  }
  EXPECT_EQ(graph_.CallCount(), 2u);
  std::vector<Delivery> failed = WaitFailedEvents(2);
  ASSERT_GE(failed.size(), 2u);
  ASSERT_EQ(failed.size(), 2u);
  EXPECT_NE(failed[0].body.find(R"("code":131047)"), std::string::npos) << failed[0].body;
  EXPECT_EQ(failed[0].Header(headers::kDedupeKey), "outbound.failed:permanent-131047");
  EXPECT_EQ(failed[0].Header(headers::kConversationKey), std::string(kBusiness) + ":16505552004");
  auto parked = QueueMessageCount(amqp_, std::string(queues::kOutboundSend) + ".dlq");
  ASSERT_TRUE(parked.ok());
  EXPECT_EQ(*parked, 0u) << "a permanent failure is answered, not parked";
}

// Meta keeps answering 503: the send is retried while its retry budget (time) lasts, then it is
// parked, its headers naming the last error code, the reason and the attempts; the conversation
// hears. With a 4 s budget: the first retry (1 s tier) fits, the second (5 s tier) would not.
TEST_F(OutboundTest, AlwaysFailingSendsAreParkedWithTheReasonWhenTheirRetryBudgetIsSpent) {
  SenderSettings s = Settings();
  s.send_deadline = 4s;
  StartReplica(s, 1);
  graph_.Inject(503, 2, 100, 0, "/messages");
  Send("always-503", "16505552005");
  const std::string dlq = std::string(queues::kOutboundSend) + ".dlq";
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto n = QueueMessageCount(amqp_, dlq);
        return n.ok() && *n == 1;
      },
      30s));
  auto parked = TakeMessages(amqp_, dlq, 1);
  ASSERT_TRUE(parked.ok() && parked->size() == 1);
  const Delivery& p = (*parked)[0];
  EXPECT_EQ(p.Header("x-last-error-code"), "2");
  EXPECT_EQ(p.Header(headers::kAttempt), "2");
  EXPECT_NE(p.Header(headers::kDeathReason)
                .find("graph 2: injected error 2 (Graph service temporarily unavailable) (after 2 "
                      "attempts over "),
            std::string::npos)
      << p.Header(headers::kDeathReason);
  EXPECT_NE(p.Header(headers::kDeathReason).find("the send deadline"), std::string::npos)
      << p.Header(headers::kDeathReason);
  EXPECT_EQ(graph_.CallCount(), 2u);
  Row row = Log("always-503");
  EXPECT_EQ(row.status, "failed");
  EXPECT_EQ(row.attempts, "2");
  EXPECT_EQ(row.error_code, "2");
  std::vector<Delivery> failed = WaitFailedEvents(1);
  ASSERT_GE(failed.size(), 1u);
  EXPECT_NE(failed[0].body.find(R"("attempts":2)"), std::string::npos) << failed[0].body;
}

// Outside the 24-hour window a free-form message is refused here, as Meta would (131047),
// without a call; a template goes.
TEST_F(OutboundTest, TheCustomerServiceWindowIsCheckedBeforeCalling) {
  StartReplica(Settings(), 1);
  const int64_t yesterday = NowSeconds() - 25 * 3600;
  Send("late-text", "16505552006", TextMessage("Still there?"), yesterday);
  Send("late-template", "16505552006",
       R"({"type":"template","template":{"name":"hello","language":{"code":"en"}}})", yesterday);
  Send("in-window", "16505552006", TextMessage("Hi"), NowSeconds() - 23 * 3600);
  ASSERT_TRUE(WaitStatus("late-text", "failed"));
  ASSERT_TRUE(WaitStatus("late-template", "sent"));
  ASSERT_TRUE(WaitStatus("in-window", "sent"));
  Row row = Log("late-text");
  EXPECT_EQ(row.error_code, "131047");
  EXPECT_EQ(row.attempts, "0");
  EXPECT_NE(row.error_reason.find("outside the 24-hour customer service window"), std::string::npos)
      << row.error_reason;
  EXPECT_EQ(graph_.CallCount(), 2u);
}

// A user who stopped marketing messages (user_preferences) gets no marketing template — refused
// here with 131050, without a call — until they resume; utility templates and replies still go.
// A stop delivered late, older than the resume, changes nothing. Meta's own 131050 answer to a
// send is remembered the same way.
TEST_F(OutboundTest, MarketingTemplatesRespectTheUsersStopUntilTheyResume) {
  test::RegisterNumber(*sql_, kBusiness, "acme");
  ASSERT_TRUE(sql_->Exec("UPDATE numbers SET app = 'acme' WHERE phone_number_id = $1",
                         {std::string(kBusiness)})
                  .ok());
  StartReplica(Settings(), 1);
  const std::string user = "16505552030";
  auto preference = [&](const std::string& value, int64_t at, const std::string& app = "acme") {
    AmqpMessage m;
    m.exchange = exchanges::kInbound;
    m.routing_key = "preference";
    m.message_id = "pref:" + value + std::to_string(at) + app;
    m.body =
        R"({"schema":"inbound.preference","version":1,"correlation_id":"corr-pref","received_at":"2026-01-01T00:00:00Z",)"
        R"("app":")" +
        app + R"(","phone_number_id":")" + std::string(kBusiness) + R"(","preference":{"wa_id":")" +
        user + R"(","category":"marketing_messages","value":")" + value + R"(","timestamp":")" +
        std::to_string(at) + R"("}})";
    m.headers = {{headers::kDedupeKey, m.message_id}, {headers::kCorrelationId, "corr-pref"}};
    ASSERT_TRUE(pub_.PublishAndWait(std::move(m), 10s).ok());
  };
  auto marketing = [&](const std::string& dedupe, const std::string& category) {
    std::string body = Command(
        dedupe, user, R"({"type":"template","template":{"name":"offer","language":{"code":"en"}}})",
        NowSeconds() - 60);
    body.insert(body.size() - 1, R"(,"template_category":")" + category + "\"");
    ASSERT_TRUE(pub_.PublishAndWait(SendMessage(body, dedupe, user), 10s).ok());
  };
  auto applied = [&](double n) {
    return WaitUntil(
        [&] {
          return Count("SELECT count(*) FROM marketing_preferences") >= 1 &&
                 DefaultRegistry()
                         .GetCounter("convoy_outbound_preferences_total",
                                     "Marketing preferences by effect.", "effect=\"received\"")
                         .Value() >= n;
        },
        20s);
  };
  const double before = DefaultRegistry()
                            .GetCounter("convoy_outbound_preferences_total",
                                        "Marketing preferences by effect.", "effect=\"received\"")
                            .Value();
  const int64_t t = NowSeconds();
  preference("stop", t - 100);
  ASSERT_TRUE(applied(before + 1));
  marketing("offer-1", "marketing");
  marketing("receipt-1", "utility");
  ASSERT_TRUE(WaitStatus("offer-1", "failed"));
  ASSERT_TRUE(WaitStatus("receipt-1", "sent"));
  EXPECT_EQ(Log("offer-1").error_code, "131050");
  EXPECT_EQ(Log("offer-1").attempts, "0") << "refused without a call";
  EXPECT_EQ(graph_.CallCount(), 1u);

  // A resume signed by another app (someone with another business's app secret), or dated in the
  // future (it would outrank every real choice until then): neither is applied.
  const double ignored =
      DefaultRegistry()
          .GetCounter("convoy_outbound_preferences_total", "", "effect=\"ignored\"")
          .Value();
  const double wrong_app =
      DefaultRegistry()
          .GetCounter("convoy_outbound_statuses_total", "", "effect=\"wrong_app\"")
          .Value();
  preference("resume", t - 60, "default");
  preference("resume", t + 86400);
  ASSERT_TRUE(WaitUntil(
      [&] {
        return DefaultRegistry()
                       .GetCounter("convoy_outbound_statuses_total", "", "effect=\"wrong_app\"")
                       .Value() >= wrong_app + 1 &&
               DefaultRegistry()
                       .GetCounter("convoy_outbound_preferences_total", "", "effect=\"ignored\"")
                       .Value() >= ignored + 1;
      },
      20s));
  EXPECT_EQ(Count("SELECT count(*) FROM marketing_preferences WHERE stopped"), 1)
      << "still stopped";

  preference("resume", t - 50);
  ASSERT_TRUE(applied(before + 2));
  preference("stop", t - 80);  // older than the resume, delivered after it
  ASSERT_TRUE(applied(before + 3));
  marketing("offer-2", "marketing");
  ASSERT_TRUE(WaitStatus("offer-2", "sent"));

  // Meta answers 131050 itself: remembered, and the next marketing template is not even tried.
  graph_.Inject(400, 131050, 1, 0, "marketing_messages");  // a marketing template's endpoint
  marketing("offer-3", "marketing");
  ASSERT_TRUE(WaitStatus("offer-3", "failed"));
  const size_t calls = graph_.CallCount();
  marketing("offer-4", "marketing");
  ASSERT_TRUE(WaitStatus("offer-4", "failed"));
  EXPECT_EQ(graph_.CallCount(), calls);
  EXPECT_EQ(Count("SELECT count(*) FROM marketing_preferences WHERE stopped AND source = '131050'"),
            1);
}

// The template catalog (templates.h): what ingress publishes for Meta's template webhooks, as it
// publishes it (convoy.inbound/template), and sends naming templates of the registered number's
// WABA.
class TemplateCatalogTest : public OutboundTest {
 protected:
  static constexpr const char* kWaba = "102290129340398";  // test::RegisterNumber's
  void SetUp() override {
    OutboundTest::SetUp();
    test::RegisterNumber(*sql_, kBusiness);
  }
  void Change(const std::string& field, const std::string& name, const std::string& value_members,
              int64_t at) {
    AmqpMessage m;
    m.exchange = exchanges::kInbound;
    m.routing_key = "template";
    m.message_id =
        "template:" + field + ":" + name + ":" + std::to_string(at) + ":" + value_members;
    m.body =
        R"({"schema":"inbound.template","version":1,"correlation_id":"corr-tpl","received_at":"2026-01-01T00:00:00Z",)"
        R"("waba_id":")" +
        std::string(kWaba) + R"(","field":")" + field + R"(","event_time":)" + std::to_string(at) +
        R"(,"template":{"message_template_id":1689556908129832,"message_template_name":")" + name +
        R"(","message_template_language":"en_US",)" + value_members + "}}";
    m.headers = {{headers::kDedupeKey, m.message_id}, {headers::kCorrelationId, "corr-tpl"}};
    ASSERT_TRUE(pub_.PublishAndWait(std::move(m), 10s).ok());
  }
  void StatusChange(const std::string& name, const std::string& status, int64_t at,
                    const std::string& category = "UTILITY") {
    Change("message_template_status_update", name,
           R"("event":")" + status + R"(","reason":"NONE","message_template_category":")" +
               category + "\"",
           at);
  }
  // Template changes taken off outbound.status so far, applied or stale.
  static double Updates() {
    auto& r = DefaultRegistry();
    const char* help =
        "Template webhooks applied to the catalog, or stale (older than what it keeps).";
    return r.GetCounter("convoy_outbound_template_updates_total", help, "outcome=\"applied\"")
               .Value() +
           r.GetCounter("convoy_outbound_template_updates_total", help, "outcome=\"stale\"")
               .Value();
  }
  std::string Catalog(const std::string& name, const char* column) {
    auto r = sql_->Exec(std::string("SELECT coalesce(") + column +
                            ", '') FROM templates WHERE waba_id = $1 AND name = $2 "
                            "AND language = 'en_US'",
                        {std::string(kWaba), name});
    return r.ok() && !r->empty() ? r->get(0, 0) : "";
  }
  void SendTemplate(const std::string& dedupe, const std::string& to, const std::string& name) {
    Send(
        dedupe, to,
        R"({"type":"template","template":{"name":")" + name + R"(","language":{"code":"en_US"}}})");
  }
  // The Graph endpoint of each accepted send to `to`, in order.
  std::vector<std::string> Endpoints(const std::string& to) {
    rapidjson::Document sends;
    const std::string json = graph_.RequestsJson();
    sends.Parse(json.c_str());
    std::vector<std::string> out;
    for (const auto& x : sends.GetArray()) {
      if (JsonStr(x, "to") == to) out.push_back(JsonStr(x, "endpoint"));
    }
    return out;
  }
  static double Refused() {
    return DefaultRegistry()
        .GetCounter("convoy_outbound_template_checks_total",
                    "Template sends checked against the catalog: approved, refused (no call), "
                    "unchecked (the number has "
                    "no WABA in the registry, or its WABA was never synced and does not know it).",
                    "result=\"refused\"")
        .Value();
  }
};

// A template Meta paused fails at once, with the reason and Meta's code for it, and Graph is never
// called; approved again (a newer change), it goes.
TEST_F(TemplateCatalogTest, APausedTemplateFailsWithoutAGraphCall) {
  StartReplica(Settings(), 1);
  const int64_t t = NowSeconds();
  const double updates = Updates(), refused = Refused();
  StatusChange("order_update", "APPROVED", t - 100);
  StatusChange("order_update", "PAUSED", t - 50);
  ASSERT_TRUE(WaitUntil([&] { return Updates() >= updates + 2; }, 20s));
  ASSERT_EQ(Catalog("order_update", "status"), "PAUSED");
  SendTemplate("paused-1", "16505552101", "order_update");
  ASSERT_TRUE(WaitStatus("paused-1", "failed"));
  const Row row = Log("paused-1");
  EXPECT_EQ(row.error_code, "132015");
  EXPECT_NE(
      row.error_reason.find("template 'order_update' (en_US) of WABA 102290129340398 is PAUSED"),
      std::string::npos)
      << row.error_reason;
  EXPECT_EQ(row.attempts, "0") << "refused without a call";
  EXPECT_EQ(graph_.CallCount(), 0u);
  EXPECT_EQ(Refused(), refused + 1);
  auto failed = WaitFailedEvents(1);
  ASSERT_EQ(failed.size(), 1u) << "the conversation hears of it";

  StatusChange("order_update", "APPROVED", t - 10);
  ASSERT_TRUE(WaitUntil([&] { return Catalog("order_update", "status") == "APPROVED"; }, 20s));
  SendTemplate("paused-2", "16505552101", "order_update");
  ASSERT_TRUE(WaitStatus("paused-2", "sent"));
  EXPECT_EQ(Endpoints("16505552101"), (std::vector<std::string>{"messages"}));
}

// A MARKETING template goes through the Marketing Messages API; a template_category_update that
// moves a UTILITY template to MARKETING moves its next send there, and one back moves it back.
TEST_F(TemplateCatalogTest, ACategoryUpdateMovesATemplateBetweenMessagesAndMarketingMessages) {
  StartReplica(Settings(), 1);
  const int64_t t = NowSeconds();
  const double updates = Updates();
  StatusChange("spring_sale", "APPROVED", t - 100, "MARKETING");
  StatusChange("shipping", "APPROVED", t - 100, "UTILITY");
  ASSERT_TRUE(WaitUntil([&] { return Updates() >= updates + 2; }, 20s));
  SendTemplate("cat-1", "16505552102", "spring_sale");
  ASSERT_TRUE(WaitStatus("cat-1", "sent"));
  SendTemplate("cat-2", "16505552103", "shipping");
  ASSERT_TRUE(WaitStatus("cat-2", "sent"));

  Change("template_category_update", "shipping",
         R"("previous_category":"UTILITY","new_category":"MARKETING")", t - 50);
  ASSERT_TRUE(WaitUntil([&] { return Catalog("shipping", "category") == "MARKETING"; }, 20s));
  SendTemplate("cat-3", "16505552103", "shipping");
  ASSERT_TRUE(WaitStatus("cat-3", "sent"));

  Change("template_category_update", "shipping",
         R"("previous_category":"MARKETING","new_category":"UTILITY")", t - 20);
  ASSERT_TRUE(WaitUntil([&] { return Catalog("shipping", "category") == "UTILITY"; }, 20s));
  SendTemplate("cat-4", "16505552103", "shipping");
  ASSERT_TRUE(WaitStatus("cat-4", "sent"));

  EXPECT_EQ(Endpoints("16505552102"), (std::vector<std::string>{"marketing_messages"}));
  EXPECT_EQ(Endpoints("16505552103"),
            (std::vector<std::string>{"messages", "marketing_messages", "messages"}));
}

// Changes apply by the time Meta gives them (entry[].time), not by the order they arrive: an older
// status delivered late, or a redelivery, changes nothing; status, quality and category each keep
// their own time.
TEST_F(TemplateCatalogTest, AnOlderStatusUpdateNeverOverwritesANewerOne) {
  StartReplica(Settings(), 1);
  const int64_t t = NowSeconds();
  double updates = Updates();
  auto applied = [&](int n) {
    updates += n;
    return WaitUntil([&] { return Updates() >= updates; }, 20s);
  };
  StatusChange("reminder", "PAUSED", t - 50);
  ASSERT_TRUE(applied(1));
  StatusChange("reminder", "APPROVED", t - 100);  // older, delivered after
  Change("message_template_quality_update", "reminder",
         R"("previous_quality_score":"GREEN","new_quality_score":"RED")",
         t - 200);  // older than the status, but the first quality: kept
  ASSERT_TRUE(applied(2));
  EXPECT_EQ(Catalog("reminder", "status"), "PAUSED");
  EXPECT_EQ(Catalog("reminder", "quality"), "RED");
  Change("message_template_quality_update", "reminder",
         R"("previous_quality_score":"GREEN","new_quality_score":"YELLOW")",
         t - 300);  // older than the quality kept
  StatusChange("reminder", "PAUSED",
               t - 50);  // the same change again (a redelivery Meta gave a new id)
  ASSERT_TRUE(applied(2));
  EXPECT_EQ(Catalog("reminder", "quality"), "RED");
  EXPECT_EQ(Catalog("reminder", "status"), "PAUSED");
  SendTemplate("order-1", "16505552104", "reminder");
  ASSERT_TRUE(WaitStatus("order-1", "failed"));
  EXPECT_EQ(graph_.CallCount(), 0u);
}

// A sync reads every page Graph gives (paging.cursors.after while paging.next says one follows),
// with the token of a number of that WABA; a template it no longer lists becomes DELETED. Before a
// WABA's first sync a template its catalog does not know goes unchecked; after it, it fails.
TEST_F(TemplateCatalogTest, ASyncReadsEveryPageAndThenAnUnknownTemplateFails) {
  StartReplica(Settings(), 1);
  SendTemplate("unknown-1", "16505552105", "not_in_catalog");
  ASSERT_TRUE(WaitStatus("unknown-1", "sent")) << "never synced: unchecked";

  ASSERT_TRUE(
      sql_->Exec(
              "INSERT INTO templates (waba_id, name, language, status, status_at, source) VALUES "
              "($1, 'retired', 'en_US', 'APPROVED', now() - interval '1 day', 'webhook')",
              {std::string(kWaba)})
          .ok());
  std::vector<std::string> listed;
  for (int i = 0; i < 7; ++i) {
    listed.push_back(R"({"id":"90)" + std::to_string(i) + R"(","name":"t)" + std::to_string(i) +
                     R"(","language":"en_US","status":")" + (i == 3 ? "REJECTED" : "APPROVED") +
                     R"(","category":")" + (i % 2 ? "MARKETING" : "UTILITY") +
                     R"(","quality_score":{"score":"GREEN","date":1751247548}})");
  }
  graph_.SetTemplates(kWaba, listed, 3);
  auto db = PgConnection::Connect(db_.dsn());
  ASSERT_TRUE(db.ok());
  TemplateSyncSettings settings;
  settings.page_size = 3;
  auto sync = SyncTemplates(**db, {graph_.base_url(), kToken}, kWaba, settings);
  ASSERT_TRUE(sync.ok()) << sync.status().ToString();
  EXPECT_EQ(sync->templates, 7);
  EXPECT_EQ(sync->pages, 3);
  EXPECT_EQ(sync->deleted, 1);
  EXPECT_EQ(graph_.TemplatePagesServed(), 3u);
  EXPECT_EQ(Count("SELECT count(*) FROM templates WHERE source = 'sync' AND quality = 'GREEN' AND "
                  "status_at IS NOT NULL"),
            7);
  EXPECT_EQ(Catalog("t5", "category"), "MARKETING");
  EXPECT_EQ(Catalog("retired", "status"), "DELETED");
  EXPECT_EQ(Count("SELECT pages FROM template_syncs WHERE templates = 7"), 3);

  // A token Graph refuses: the sync says so, and a page limit stops a catalog too long.
  auto refused = SyncTemplates(**db, {graph_.base_url(), "not-a-token"}, kWaba, settings);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("HTTP 401"), std::string::npos)
      << refused.status().ToString();
  settings.max_pages = 2;
  auto too_long = SyncTemplates(**db, {graph_.base_url(), kToken}, kWaba, settings);
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.status().code(), Code::kTooLarge);

  const size_t calls = graph_.CallCount();
  SendTemplate("unknown-2", "16505552105", "not_in_catalog");
  SendTemplate("rejected-1", "16505552106", "t3");
  SendTemplate("marketing-1", "16505552107", "t1");
  ASSERT_TRUE(WaitStatus("unknown-2", "failed"));
  ASSERT_TRUE(WaitStatus("rejected-1", "failed"));
  ASSERT_TRUE(WaitStatus("marketing-1", "sent"));
  EXPECT_EQ(Log("unknown-2").error_code, "132001");
  EXPECT_NE(Log("unknown-2").error_reason.find("is not in its catalog"), std::string::npos)
      << Log("unknown-2").error_reason;
  EXPECT_NE(Log("rejected-1").error_reason.find("is REJECTED"), std::string::npos)
      << Log("rejected-1").error_reason;
  EXPECT_EQ(graph_.CallCount(), calls + 1);
  EXPECT_EQ(Endpoints("16505552107"), (std::vector<std::string>{"marketing_messages"}));
}

// Over Meta's limits: a permanent failure with the reason, never sent; a bad command is parked.
TEST_F(OutboundTest, MessagesOverMetasLimitsFailWithAClearReason) {
  StartReplica(Settings(), 1);
  Send("too-long", "16505552007", TextMessage(std::string(4097, 'x')));
  ASSERT_TRUE(WaitStatus("too-long", "failed"));
  Row row = Log("too-long");
  EXPECT_EQ(row.error_code, "100");
  EXPECT_EQ(row.error_reason, "text body has 4097 characters; Meta allows 1 to 4096");
  AmqpMessage bad = SendMessage(R"({"schema":"outbound.send","version":1})", "bad", "16505552007");
  ASSERT_TRUE(pub_.PublishAndWait(bad, 10s).ok());
  const std::string dlq = std::string(queues::kOutboundSend) + ".dlq";
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto n = QueueMessageCount(amqp_, dlq);
        return n.ok() && *n == 1;
      },
      20s));
  auto parked = TakeMessages(amqp_, dlq, 1);
  ASSERT_TRUE(parked.ok() && parked->size() == 1);
  EXPECT_NE((*parked)[0].Header(headers::kDeathReason).find("missing correlation_id, dedupe_key"),
            std::string::npos)
      << (*parked)[0].Header(headers::kDeathReason);
  EXPECT_EQ(graph_.CallCount(), 0u);
}

// Statuses in any order and any number of times: the log only moves forward.
// Statuses that wait together are applied in one transaction per batch (three follow every
// reply): every one applied, each told once; a failed status among them rolls its batch back and
// each is applied alone, the failure told to the conversation once.
TEST_F(OutboundTest, StatusesWaitingTogetherAreAppliedInBatches) {
  test::RegisterNumber(*sql_, kBusiness, "acme");
  StartReplica(Settings(), 2);
  const int n = 20;
  std::vector<std::string> wamids;
  for (int i = 0; i < n; ++i) {
    Send("batched-" + std::to_string(i), "1650555300" + std::to_string(i % 10) + std::to_string(i));
  }
  for (int i = 0; i < n; ++i) {
    const std::string dedupe = "batched-" + std::to_string(i);
    ASSERT_TRUE(WaitStatus(dedupe, "sent")) << dedupe;
    wamids.push_back(Log(dedupe).wamid);
  }
  // The replica stops; the statuses wait in outbound.status for the next one, which takes them 32
  // at a time.
  replicas_.back()->Stop();
  replicas_.pop_back();
  TakeEvents();
  auto status = [&](int i, const std::string& s, const std::string& extra = "") {
    return R"({"id":")" + wamids[i] + R"(","status":")" + s +
           R"(","timestamp":"1750000001","recipient_id":"1650555300)" + std::to_string(i % 10) +
           std::to_string(i) + "\"" + extra + "}";
  };
  Counter& together = DefaultRegistry().GetCounter("convoy_outbound_status_batches_total", "",
                                                   "outcome=\"together\"");
  Counter& alone =
      DefaultRegistry().GetCounter("convoy_outbound_status_batches_total", "", "outcome=\"alone\"");
  const double together_before = together.Value(), alone_before = alone.Value();
  for (int i = 0; i < n; ++i) PublishStatus(kBusiness, status(i, "delivered"));
  for (int i = 0; i < n; ++i) PublishStatus(kBusiness, status(i, "read"));
  StartReplica(Settings(), 1);
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(WaitStatus("batched-" + std::to_string(i), "read")) << i;
  }
  EXPECT_GE(together.Value(), together_before + 1) << "40 statuses waiting, 32 at a time";
  EXPECT_LE(together.Value(), together_before + 39) << "at least one batch of two or more";
  EXPECT_EQ(alone.Value(), alone_before);

  // A failed status among others: its batch is rolled back and applied one by one.
  replicas_.back()->Stop();
  replicas_.pop_back();
  Send("batched-failing", "16505553099");
  StartReplica(Settings(), 1);
  ASSERT_TRUE(WaitStatus("batched-failing", "sent"));
  const std::string failing_wamid = Log("batched-failing").wamid;
  replicas_.back()->Stop();
  replicas_.pop_back();
  TakeEvents();
  for (int i = 0; i < 5; ++i) PublishStatus(kBusiness, status(i, "read"));  // late: ignored
  PublishStatus(kBusiness, R"({"id":")" + failing_wamid +
                               R"(","status":"failed","timestamp":"1750000003",)"
                               R"("recipient_id":"16505553099","errors":[{"code":131026,)"
                               R"("title":"Message undeliverable"}]})");
  for (int i = 5; i < 10; ++i) PublishStatus(kBusiness, status(i, "read"));
  StartReplica(Settings(), 1);
  ASSERT_TRUE(WaitStatus("batched-failing", "failed"));
  auto failed = WaitFailedEvents(1);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].Header(headers::kDedupeKey), "outbound.failed:batched-failing");
  EXPECT_GE(alone.Value(), alone_before + 1);
  EXPECT_EQ(Log("batched-failing").status, "failed");
  for (int i = 0; i < n; ++i) EXPECT_EQ(Log("batched-" + std::to_string(i)).status, "read") << i;
  // Told once: with the replica stopped, nothing more is in conversation.events.
  replicas_.back()->Stop();
  replicas_.pop_back();
  for (const auto& e : TakeEvents()) EXPECT_NE(e.routing_key, "outbound.failed");
}

// A send Meta accepted is recorded in the send log and nowhere else: no event goes to the
// conversation (nothing there waits for it; it cost a broker message and a transaction per reply).
TEST_F(OutboundTest, ASendMetaAcceptedIsRecordedAndTellsTheConversationNothing) {
  test::RegisterNumber(*sql_, kBusiness, "acme");
  StartReplica(Settings(), 1);
  TakeEvents();
  Send("accepted-quietly", "16505553101");
  ASSERT_TRUE(WaitStatus("accepted-quietly", "sent"));
  EXPECT_FALSE(Log("accepted-quietly").wamid.empty());
  replicas_.back()->Stop();  // its delivery settled
  replicas_.pop_back();
  std::vector<std::string> keys;
  for (const auto& e : TakeEvents())
    keys.push_back(e.routing_key + " " + e.Header(headers::kDedupeKey));
  EXPECT_TRUE(keys.empty()) << keys.size() << " events, the first: " << keys.front();
}

TEST_F(OutboundTest, StatusesApplyInAnyOrderAndNeverMoveBackwards) {
  test::RegisterNumber(*sql_, kBusiness, "acme");
  StartReplica(Settings(), 1);
  Send("tracked", "16505552008");
  ASSERT_TRUE(WaitStatus("tracked", "sent"));
  std::string wamid = Log("tracked").wamid;
  ASSERT_FALSE(wamid.empty());
  auto status = [&](const std::string& s) {
    return R"({"id":")" + wamid + R"(","status":")" + s +
           R"(","timestamp":"1750000000","recipient_id":"16505552008"})";
  };
  PublishStatus(kBusiness, status("read"));
  ASSERT_TRUE(WaitStatus("tracked", "read"));
  auto ignored = DefaultRegistry()
                     .GetCounter("convoy_outbound_statuses_total", "Status webhooks by effect.",
                                 "effect=\"ignored\"")
                     .Value();
  for (const char* late : {"delivered", "delivered", "sent"})
    PublishStatus(kBusiness, status(late));
  ASSERT_TRUE(WaitUntil(
      [&] {
        return DefaultRegistry()
                   .GetCounter("convoy_outbound_statuses_total", "Status webhooks by effect.",
                               "effect=\"ignored\"")
                   .Value() >= ignored + 3;
      },
      20s));
  EXPECT_EQ(Log("tracked").status, "read");
  // v24 statuses: no conversation object, pricing recorded even from a status that is too late to
  // move the message; a send to a BSUID names its recipient by recipient_user_id.
  Counter& priced = DefaultRegistry().GetCounter(
      "convoy_outbound_messages_priced_total", "",
      "tenant=\"acme\",category=\"utility\",pricing_model=\"PMP\",billable=\"true\"");
  const double priced_before = priced.Value();
  const std::string with_pricing =
      R"(","timestamp":"1750000002",)"
      R"("recipient_user_id":"US.13491208655302741918","pricing":{"billable":true,)"
      R"("pricing_model":"PMP","category":"utility","type":"regular"}})";
  PublishStatus(kBusiness, R"({"id":")" + wamid + R"(","status":"delivered)" + with_pricing);
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto r = sql_->Exec(
            "SELECT coalesce(pricing->>'category', '') FROM outbound_messages WHERE wamid = $1",
            {wamid});
        return r.ok() && r->size() == 1 && r->get(0, 0) == "utility";
      },
      20s));
  EXPECT_EQ(Log("tracked").status, "read");
  // Counted once per message, by its number's tenant, whichever statuses carry the pricing.
  EXPECT_EQ(priced.Value(), priced_before + 1);
  const double applied = DefaultRegistry()
                             .GetCounter("convoy_outbound_statuses_total", "", "effect=\"ignored\"")
                             .Value();
  PublishStatus(kBusiness, R"({"id":")" + wamid + R"(","status":"read)" + with_pricing);
  ASSERT_TRUE(WaitUntil(
      [&] {
        return DefaultRegistry()
                   .GetCounter("convoy_outbound_statuses_total", "", "effect=\"ignored\"")
                   .Value() >= applied + 1;
      },
      20s));
  EXPECT_EQ(priced.Value(), priced_before + 1)
      << "the same message's pricing again is not counted again";
  auto cost = sql_->Exec(
      "SELECT tenant, category, messages, billable FROM message_costs WHERE phone_number_id = $1",
      {std::string(kBusiness)});
  ASSERT_TRUE(cost.ok()) << cost.status().ToString();
  ASSERT_EQ(cost->size(), 1u);
  EXPECT_EQ(cost->get(0, 0) + " " + cost->get(0, 1) + " " + cost->get(0, 2) + " " + cost->get(0, 3),
            "acme utility 1 1")
      << "summed per conversation, number and tenant";

  // Meta took a message but could not deliver it: recorded with its code, the conversation hears.
  Send("undelivered", "16505552009");
  ASSERT_TRUE(WaitStatus("undelivered", "sent"));
  TakeEvents();
  PublishStatus(
      kBusiness,
      R"({"id":")" + Log("undelivered").wamid +
          R"(","status":"failed","timestamp":"1750000001","recipient_id":"16505552009",)"
          R"("errors":[{"code":131049,"title":"This message was not delivered to maintain healthy ecosystem engagement."}]})");
  ASSERT_TRUE(WaitStatus("undelivered", "failed"));
  EXPECT_EQ(Log("undelivered").error_code, "131049");
  std::vector<Delivery> failed = WaitFailedEvents(1);
  ASSERT_GE(failed.size(), 1u);
  EXPECT_NE(failed[0].body.find(R"("code":131049)"), std::string::npos) << failed[0].body;
  EXPECT_EQ(failed[0].Header(headers::kConversationKey), std::string(kBusiness) + ":16505552009");
}

// Meta's throughput limit, held across two replicas: 400 sends to one number at 80/s (burst 20)
// take at least (400 - 20) / 80 = 4.75 s, and no second holds more than the rate and the burst.
TEST_F(OutboundTest, PacingHoldsANumberToItsRateAcrossReplicas) {
  SenderSettings s = Settings();
  s.pacing = {true, 80, 20, 1000, 1000};  // the pair limit out of the way
  StartReplica(s, 2);
  StartReplica(s, 2);
  constexpr int kSends = 400;
  PublishBatch published;
  for (int i = 0; i < kSends; ++i) {
    std::string key = "paced:" + std::to_string(i), to = "1650556" + std::to_string(1000 + i);
    pub_.Publish(SendMessage(Command(key, to, TextMessage("p"), NowSeconds()), key, to),
                 published.Add());
  }
  ASSERT_TRUE(published.Wait(std::chrono::steady_clock::now() + 30s).ok());
  ASSERT_TRUE(WaitUntil([&] { return graph_.SendCount() == static_cast<size_t>(kSends); }, 60s))
      << graph_.SendCount();
  std::vector<int64_t> at = graph_.SendTimesMs();
  std::sort(at.begin(), at.end());
  EXPECT_GE(at.back() - at.front(), 4500) << "400 sends at 80/s";
  EXPECT_LE(at.back() - at.front(), 7000) << "the pacing wastes no more than ~2 s of slots";
  size_t most = 0;
  for (size_t i = 0, j = 0; i < at.size(); ++i) {
    while (at[i] - at[j] >= 1000) ++j;
    most = std::max(most, i - j + 1);
  }
  EXPECT_LE(most, 101u) << "sends in the busiest second";
  EXPECT_EQ(graph_.CallCount(), static_cast<size_t>(kSends));
}

// Each number at its own throughput from the registry (issue 27): 2,000 replies across three
// numbers — 50/s, a coexistence number at 20/s, and one not in the registry at the default
// --number_rate (80/s) — sent by two replicas with pacing on; each number's rate, measured at the
// Graph fake after its burst, is within 2 % of its own.
TEST_F(OutboundTest, EachNumberIsPacedAtItsOwnThroughputFromTheRegistry) {
  struct Number {
    std::string id;
    int throughput, sends;  // throughput 0: not in the registry
  };
  const std::vector<Number> numbers = {
      {"106540352210050", 50, 667}, {"106540352210020", 20, 267}, {"106540352210080", 0, 1066}};
  for (const auto& n : numbers) {
    if (n.throughput == 0) continue;
    auto r = sql_->Exec(
        "INSERT INTO numbers (phone_number_id, tenant, waba_id, display_phone_number, "
        "graph_token_ref, "
        "throughput, coexistence, source) VALUES ($1, 't', '1', '+1', 'env:CONVOY_GRAPH_TOKEN', "
        "$2::int, "
        "$3::boolean, 'api')",
        {n.id, std::to_string(n.throughput), std::string(n.throughput <= 20 ? "true" : "false")});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  SenderSettings s = Settings();
  s.pacing = {true, 80, 20, 1000,
              1000};  // the pair limit out of the way; 80/s for a number not registered
  StartReplica(s, 2);
  StartReplica(s, 2);
  PublishBatch published;
  std::map<std::string, std::vector<std::string>> recipients;
  for (const auto& n : numbers) {
    for (int i = 0; i < n.sends; ++i) {
      const std::string key = "rate:" + n.id + ":" + std::to_string(i),
                        to = n.id.substr(11) + std::to_string(100000 + i);
      std::string body = Command(key, to, TextMessage("r"), NowSeconds());
      for (size_t at = body.find(kBusiness); at != std::string::npos;
           at = body.find(kBusiness, at + n.id.size())) {
        body.replace(at, std::string(kBusiness).size(), n.id);
      }
      pub_.Publish(SendMessage(body, key, to), published.Add());
      recipients[n.id].push_back(to);
    }
  }
  ASSERT_TRUE(published.Wait(std::chrono::steady_clock::now() + 60s).ok());
  ASSERT_TRUE(WaitUntil([&] { return graph_.SendCount() == 2000u; }, 120s)) << graph_.SendCount();
  for (const auto& n : numbers) {
    std::vector<int64_t> at;
    for (const auto& to : recipients[n.id]) {
      auto times = graph_.SendTimesMs(to);
      at.insert(at.end(), times.begin(), times.end());
    }
    ASSERT_EQ(at.size(), static_cast<size_t>(n.sends)) << n.id;
    std::sort(at.begin(), at.end());
    // The bucket's burst goes at once; the rate is what follows it: the least-squares slope of the
    // send count over time, so that one send late off a busy CPU moves it little (two endpoints
    // would carry the whole delay).
    const size_t burst = 20;
    double mean_t = 0, mean_i = 0, cov = 0, var = 0;
    const double count = static_cast<double>(at.size() - burst);
    for (size_t i = burst; i < at.size(); ++i) mean_t += at[i] / count, mean_i += i / count;
    for (size_t i = burst; i < at.size(); ++i) {
      cov += (at[i] - mean_t) * (i - mean_i);
      var += (at[i] - mean_t) * (at[i] - mean_t);
    }
    const double rate = 1000.0 * cov / var;
    const double want = n.throughput ? n.throughput : 80;
    std::cout << "number " << n.id << ": " << n.sends << " sends at " << rate
              << "/s (its throughput " << want << "/s"
              << (n.throughput ? "" : ", not in the registry") << ")\n";
    EXPECT_NEAR(rate, want, want * 0.02) << n.id;
  }
}

// A number the registry has paused: its sends wait, uncalled and uncounted as attempts, and go when
// it is active again; another number's are not held. Nothing is dropped.
TEST_F(OutboundTest, APausedNumbersSendsWaitAndGoWhenItIsActiveAgain) {
  const std::string paused = "106540352210099";
  auto put = [&](const std::string& status) {
    auto r = sql_->Exec(
        "INSERT INTO numbers (phone_number_id, tenant, waba_id, display_phone_number, "
        "graph_token_ref, "
        "status, source) VALUES ($1, 't', '1', '+1', 'env:CONVOY_GRAPH_TOKEN', $2, 'api') "
        "ON CONFLICT (phone_number_id) DO UPDATE SET status = EXCLUDED.status",
        {paused, status});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  };
  put("paused");
  SenderSettings s = Settings();
  s.pacing.rates_ttl = 1s;
  s.paused_recheck = 1000ms;
  StartReplica(s, 2);
  const uint64_t held_before = SendsCounted("number_paused");
  for (int i = 0; i < 3; ++i)
    SendFrom(paused, "paused:" + std::to_string(i), "1650557200" + std::to_string(i));
  Send("not-paused", "16505572099");  // the demo number, not in this registry: sent at once
  ASSERT_TRUE(WaitStatus("not-paused", "sent", 10s));
  // Each of the three was held at least twice (looked at, then again after the recheck).
  ASSERT_TRUE(WaitUntil([&] { return SendsCounted("number_paused") >= held_before + 6; }, 20s));
  EXPECT_EQ(graph_.CallCount(), 1u) << "nothing of the paused number reached Graph";
  EXPECT_EQ(Count("SELECT count(*) FROM outbound_messages WHERE dedupe_key LIKE 'paused:%'"), 0)
      << "no attempt";
  put("active");
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(WaitStatus("paused:" + std::to_string(i), "sent", 20s)) << i;
  EXPECT_EQ(Count("SELECT count(*) FROM outbound_messages WHERE dedupe_key LIKE 'paused:%' AND "
                  "attempts = 1"),
            3);
  EXPECT_EQ(graph_.CallCount(), 4u);
}

// Meta answers a send 131031 (account locked): the number pauses in the registry with the reason,
// that send and the number's next ones wait with no further call, another number's go on; set
// active again, each waiting send goes exactly once.
TEST_F(OutboundTest, AnAccountLockedNumberPausesAndWhatWaitedGoesOnceWhenResumed) {
  const std::string locked = "106540352210077";
  auto r = sql_->Exec(
      "INSERT INTO numbers (phone_number_id, tenant, waba_id, display_phone_number, "
      "graph_token_ref, "
      "source) VALUES ($1, 't', '1', '+1', 'env:CONVOY_GRAPH_TOKEN', 'api')",
      {locked});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  SenderSettings s = Settings();
  s.pacing.rates_ttl = 1s;
  s.paused_recheck = 1000ms;
  StartReplica(s, 2);
  const uint64_t paused_by_graph =
      DefaultRegistry()
          .GetCounter("convoy_numbers_paused_total",
                      "Business numbers paused because Meta flagged them.",
                      "cause=\"graph_131031\"")
          .Value();
  graph_.Inject(400, 131031, 1, 0, "/" + locked + "/messages");
  SendFrom(locked, "locked:0", "16505573000");
  ASSERT_TRUE(WaitUntil(
      [&] {
        return Count("SELECT count(*) FROM numbers WHERE phone_number_id = '" + locked +
                     "' AND status = 'paused' AND "
                     "source = 'meta' AND paused_at IS NOT NULL AND paused_reason LIKE 'graph "
                     "131031: %(business account "
                     "locked)'") == 1;
      },
      20s));
  EXPECT_EQ(DefaultRegistry()
                .GetCounter("convoy_numbers_paused_total",
                            "Business numbers paused because Meta flagged them.",
                            "cause=\"graph_131031\"")
                .Value(),
            paused_by_graph + 1);
  const uint64_t held_before = SendsCounted("number_paused");
  for (int i = 1; i < 4; ++i)
    SendFrom(locked, "locked:" + std::to_string(i), "1650557300" + std::to_string(i));
  Send("not-locked", "16505573099");  // the demo number: sent at once
  ASSERT_TRUE(WaitStatus("not-locked", "sent", 10s));
  // All four held at least twice (looked at, then again after the recheck), none failed or parked.
  ASSERT_TRUE(WaitUntil([&] { return SendsCounted("number_paused") >= held_before + 8; }, 20s));
  EXPECT_EQ(graph_.CallCount(), 2u)
      << "after the 131031, nothing of the locked number reached Graph";
  EXPECT_EQ(
      Count("SELECT count(*) FROM outbound_messages WHERE dedupe_key LIKE 'locked:%' AND status IN "
            "('failed', 'sent')"),
      0);
  // A person resumes it (PUT /v1/numbers/{id} "status": "active" does this).
  ASSERT_TRUE(sql_->Exec("UPDATE numbers SET status = 'active', paused_reason = NULL, paused_at = "
                         "NULL, source = 'api' "
                         "WHERE phone_number_id = $1",
                         {locked})
                  .ok());
  for (int i = 0; i < 4; ++i)
    EXPECT_TRUE(WaitStatus("locked:" + std::to_string(i), "sent", 20s)) << i;
  const auto per_recipient = graph_.SendsPerRecipient();
  for (const std::string to : {"16505573000", "16505573001", "16505573002", "16505573003"}) {
    EXPECT_EQ(per_recipient.count(to) ? per_recipient.at(to) : 0u, 1u)
        << to << ": sent exactly once";
  }
  EXPECT_EQ(graph_.CallCount(), 6u)
      << "one refused call, four sends of the locked number, one of the other";
  EXPECT_EQ(Count("SELECT attempts FROM outbound_messages WHERE dedupe_key = 'locked:0'"), 2);
}

// The pair limit: 10 messages to one recipient with burst 3 and 1 token/s take at least 7 s,
// while another recipient's messages, published after them, go at once.
TEST_F(OutboundTest, PacingARecipientNeverDelaysAnother) {
  SenderSettings s = Settings();
  s.pacing = {true, 1000, 1000, 1, 3};
  StartReplica(s, 2);
  int64_t start = test::NowMillis();
  for (int i = 0; i < 10; ++i) Send("busy:" + std::to_string(i), "16505553001");
  for (int i = 0; i < 3; ++i) Send("other:" + std::to_string(i), "16505553002");
  ASSERT_TRUE(WaitUntil([&] { return graph_.SendTimesMs("16505553002").size() == 3; }, 10s));
  ASSERT_TRUE(WaitUntil([&] { return graph_.SendTimesMs("16505553001").size() == 10; }, 30s));
  std::vector<int64_t> busy = graph_.SendTimesMs("16505553001"),
                       other = graph_.SendTimesMs("16505553002");
  std::sort(busy.begin(), busy.end());
  EXPECT_GE(busy.back() - start, 7000);
  for (size_t i = 3; i < busy.size(); ++i) EXPECT_GE(busy[i] - busy[i - 1], 900) << "send " << i;
  for (int64_t t : other) EXPECT_LE(t - start, 1500) << "the other recipient waited";
}

// One conversation, one order of replies (issue 26). Conversation A's first reply fails three
// times (503), so it waits out the 1 s, 5 s and then the 30 s retry tier; A's next two replies,
// written after it, are held until it is accepted and then go in their order, each with one call.
// Meanwhile 20 other conversations' replies, on another number, go at once: their latency is
// measured and printed, and none waits for A.
TEST_F(OutboundTest, AReplyWaitingOutARetryHoldsItsConversationsLaterRepliesAndNoOthers) {
  ledgered_ = true;
  StartReplica(Settings(), 4);
  const std::string held_number = "106540352299999", to = "16505554001";
  // What conversation writes: the outbox row (the ledger) and the command, in that order.
  auto queue = [&](const std::string& key, const std::string& pnid, const std::string& recipient,
                   const std::string& text) {
    std::string body = Command(key, recipient, TextMessage(text), NowSeconds() - 60);
    for (size_t at = body.find(kBusiness); at != std::string::npos;
         at = body.find(kBusiness, at + pnid.size())) {
      body.replace(at, std::string(kBusiness).size(), pnid);
    }
    AmqpMessage m = SendMessage(body, key, recipient);
    m.headers[headers::kConversationKey] = pnid + ":" + recipient;
    auto r = sql_->Exec(
        "INSERT INTO outbox (exchange, routing_key, dedupe_key, correlation_id, conversation_key, "
        "body, due_at, "
        "published_at) VALUES ('convoy.commands', 'outbound.send', $1, $2, $3, $4, now(), now())",
        {key, "corr-" + key, pnid + ":" + recipient, body});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_TRUE(pub_.PublishAndWait(std::move(m), 10s).ok());
  };
  auto& waits = DefaultRegistry().GetCounter("convoy_outbound_order_waits_total", "");
  const uint64_t waits_before = waits.Value();
  graph_.Inject(503, 2, 3, 0, "/" + held_number + "/messages");
  const int64_t a1_at = test::NowMillis();
  queue("order:a1", held_number, to, "first");
  ASSERT_TRUE(WaitStatus("order:a1", "retrying", 10s)) << Log("order:a1").status;
  queue("order:a2", held_number, to, "second");
  queue("order:a3", held_number, to, "third");
  // Other conversations, while A's first reply waits out its retries.
  std::map<std::string, int64_t> queued_at;
  for (int i = 0; i < 20; ++i) {
    const std::string other = "16505554" + std::to_string(100 + i);
    queued_at[other] = test::NowMillis();
    queue("order:b" + std::to_string(i), kBusiness, other, "other");
  }
  ASSERT_TRUE(WaitUntil([&] { return graph_.SendTimesMs(to).size() == 3; }, 60s))
      << graph_.SendTimesMs(to).size() << " of A's 3 replies sent; a1 is "
      << Log("order:a1").status;
  EXPECT_EQ(graph_.SentTexts(to), (std::vector<std::string>{"first", "second", "third"}));
  EXPECT_EQ(Log("order:a1").attempts, "4") << "three failures, then accepted";
  EXPECT_EQ(Log("order:a2").attempts, "1") << "held without a call";
  EXPECT_EQ(Log("order:a3").attempts, "1") << "held without a call";
  const std::vector<int64_t> a = graph_.SendTimesMs(to);
  std::vector<int64_t> others;
  for (const auto& [other, at] : queued_at) {
    auto times = graph_.SendTimesMs(other);
    ASSERT_EQ(times.size(), 1u) << other;
    others.push_back(times.front() - at);
  }
  std::sort(others.begin(), others.end());
  std::cout << "reply order: A's first reply accepted after " << (a[0] - a1_at) / 1000.0
            << " s of retries; A's next replies " << (a[1] - a[0]) << " and " << (a[2] - a[0])
            << " ms after it; 20 other conversations' replies in median "
            << others[others.size() / 2] << " ms, max " << others.back()
            << " ms; held deliveries: " << waits.Value() - waits_before << "\n";
  EXPECT_GE(a[0] - a1_at, 30000) << "A's first reply waited out the 30 s tier";
  EXPECT_LE(others.back(), 2000) << "another conversation waited for A";
  EXPECT_GT(waits.Value(), waits_before);
  EXPECT_TRUE(WaitUntil(
      [&] { return Count("SELECT count(*) FROM outbox WHERE settled_at IS NULL") == 0; }, 10s))
      << "every send settled in the ledger";
}

// One owner per conversation: a bot's reply waiting in a delay tier when a person takes the
// conversation over is cancelled, never sent; the agent's own message goes; and the bot's last
// words of a handoff, written in the same transaction as the handoff, go too.
TEST_F(OutboundTest, ABotReplyWaitingInADelayTierWhenAPersonTakesOverIsCancelledNeverSent) {
  ledgered_ = true;
  StartReplica(Settings(), 2);
  const std::string to = "16505554301", conversation = std::string(kBusiness) + ":" + to;
  ASSERT_TRUE(sql_->Exec("INSERT INTO conversations (conversation_key, phone_number_id, wa_id) "
                         "VALUES ($1, $2, $3)",
                         {conversation, kBusiness, to})
                  .ok());
  // What conversation (or its API) writes: the outbox row, and the command.
  auto queue = [&](PgConnection& db, const std::string& key, const std::string& text,
                   const std::string& author) {
    std::string body = Command(key, to, TextMessage(text), NowSeconds() - 60);
    if (!author.empty()) body.insert(body.size() - 1, R"(,"author":")" + author + "\"");
    EXPECT_TRUE(db.Exec("INSERT INTO outbox (exchange, routing_key, dedupe_key, correlation_id, "
                        "conversation_key, body, "
                        "due_at, published_at) VALUES ('convoy.commands', 'outbound.send', $1, $2, "
                        "$3, $4, now(), now())",
                        {key, "corr-" + key, conversation, body})
                    .ok());
    return body;
  };
  graph_.Inject(503, 2, 1, 0, "/" + std::string(kBusiness) + "/messages");
  std::string held = queue(*sql_, "owner:bot1", "a reply the bot queued", "");
  ASSERT_TRUE(pub_.PublishAndWait(SendMessage(held, "owner:bot1", to), 10s).ok());
  ASSERT_TRUE(WaitStatus("owner:bot1", "retrying", 10s)) << Log("owner:bot1").status;
  // An agent takes over (the API, after the conversation's row lock: the clock's time).
  ASSERT_TRUE(sql_->Exec("UPDATE conversations SET owner = 'human', owner_agent = 'ana', "
                         "owner_since = clock_timestamp() "
                         "WHERE conversation_key = $1",
                         {conversation})
                  .ok());
  std::string agent = queue(*sql_, "owner:agent1", "Hi, Ana here", "agent:ana");
  ASSERT_TRUE(pub_.PublishAndWait(SendMessage(agent, "owner:agent1", to), 10s).ok());
  ASSERT_TRUE(WaitStatus("owner:bot1", "cancelled", 60s)) << Log("owner:bot1").status;
  ASSERT_TRUE(WaitStatus("owner:agent1", "sent", 60s)) << Log("owner:agent1").status;
  EXPECT_EQ(Log("owner:bot1").attempts, "1")
      << "the failed call only; never sent after the takeover";
  EXPECT_NE(Log("owner:bot1").error_reason.find("owned by human"), std::string::npos)
      << Log("owner:bot1").error_reason;
  // A handoff by the flow: its last words and the owner change in one transaction.
  ASSERT_TRUE(sql_->Exec("UPDATE conversations SET owner = 'bot' WHERE conversation_key = $1",
                         {conversation})
                  .ok());
  ASSERT_TRUE(sql_->Begin().ok());
  std::string last =
      queue(*sql_, "owner:bot2", "A member of our team will reply to you here shortly.", "");
  ASSERT_TRUE(sql_->Exec("UPDATE conversations SET owner = 'human', owner_since = now() WHERE "
                         "conversation_key = $1",
                         {conversation})
                  .ok());
  ASSERT_TRUE(sql_->Commit().ok());
  ASSERT_TRUE(pub_.PublishAndWait(SendMessage(last, "owner:bot2", to), 10s).ok());
  ASSERT_TRUE(WaitStatus("owner:bot2", "sent", 30s)) << Log("owner:bot2").status;
  EXPECT_EQ(graph_.SentTexts(to),
            (std::vector<std::string>{"Hi, Ana here",
                                      "A member of our team will reply to you here shortly."}));
  EXPECT_TRUE(WaitUntil(
      [&] { return Count("SELECT count(*) FROM outbox WHERE settled_at IS NULL") == 0; }, 10s))
      << "every command settled in the ledger, the cancelled one too";
}

// An agent's message tells its conversation each status it reaches (outbound.status_changed, one
// dedupe key per status): sent when Meta accepts it, delivered and read from the status webhooks,
// a status Meta sends again told again under the same key, and a failure refused before any call;
// a bot's message tells nothing.
TEST_F(OutboundTest, AnAgentsMessageTellsItsConversationEachStatusAndABotsTellsNothing) {
  StartReplica(Settings(), 2);
  const std::string to = "16505554501";
  auto agent = [&](const std::string& key, int64_t last_inbound_at) {
    std::string body = Command(key, to, TextMessage("Hi, Sam here"), last_inbound_at);
    body.insert(body.size() - 1, R"(,"author":"agent:sam")");
    ASSERT_TRUE(pub_.PublishAndWait(SendMessage(body, key, to), 10s).ok());
  };
  agent("as:agent", NowSeconds() - 60);
  Send("as:bot", to, TextMessage("a bot's reply"));
  ASSERT_TRUE(WaitStatus("as:agent", "sent") && WaitStatus("as:bot", "sent"));
  const std::string wamid = Log("as:agent").wamid, bot_wamid = Log("as:bot").wamid;
  auto status = [&](const std::string& id, const char* what) {
    PublishStatus(kBusiness, R"({"id":")" + id + R"(","status":")" + what + R"(","timestamp":")" +
                                 std::to_string(NowSeconds()) + R"(","recipient_id":")" + to +
                                 "\"}");
  };
  status(wamid, "delivered");
  ASSERT_TRUE(WaitStatus("as:agent", "delivered"));
  status(wamid, "read");
  status(wamid, "read");  // Meta sends it again
  status(bot_wamid, "read");
  ASSERT_TRUE(WaitStatus("as:agent", "read") && WaitStatus("as:bot", "read"));
  agent("as:late", NowSeconds() - 25 * 3600);  // outside the window: failed without a call
  ASSERT_TRUE(WaitStatus("as:late", "failed"));
  std::map<std::string, int> told;  // event dedupe key -> times
  std::string failed_body;
  ASSERT_TRUE(WaitUntil(
      [&] {
        for (const auto& e : TakeEvents()) {
          if (e.routing_key != "outbound.status_changed") continue;
          EXPECT_TRUE(base_.schemas.Validate(e.body).ok()) << e.body;
          ++told[e.Header(headers::kDedupeKey)];
          if (e.body.find("\"failed\"") != std::string::npos) failed_body = e.body;
        }
        return told.size() == 4 && told["outbound.status_changed:as:agent:read"] >= 2;
      },
      20s))
      << told.size();
  std::vector<std::string> keys;
  for (const auto& [k, n] : told) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"outbound.status_changed:as:agent:delivered",
                                            "outbound.status_changed:as:agent:read",
                                            "outbound.status_changed:as:agent:sent",
                                            "outbound.status_changed:as:late:failed"}))
      << "each status of the agent's messages, none of the bot's";
  rapidjson::Document f;
  f.Parse(failed_body.c_str());
  ASSERT_TRUE(f.IsObject()) << failed_body;
  EXPECT_EQ(f["code"].GetInt(), 131047);
  EXPECT_EQ(JsonStr(f, "author"), "agent:sam");
  EXPECT_EQ(JsonStr(f, "conversation_key"), std::string(kBusiness) + ":" + to);
}

// Meta's thread control (Conversation Routing): a pass, a take and a release, each as conversation
// writes it (the outbox row and the command on outbound.send). The pass waits for the bot's reply
// written before it (held by a 503) and then calls thread_control once with Meta's body, though its
// command comes twice; a take Meta refuses (2494191) fails without a retry; a release answered 503
// first is called again and done. The conversation hears each outcome (outbound.thread_controlled).
TEST_F(OutboundTest, AThreadControlIsCalledOnceInItsConversationsOrderAndItsOutcomeToldOnce) {
  ledgered_ = true;
  StartReplica(Settings(), 2);
  const std::string to = "16505554401", conversation = std::string(kBusiness) + ":" + to;
  auto outbox = [&](const std::string& key, const std::string& body) {
    ASSERT_TRUE(sql_->Exec("INSERT INTO outbox (exchange, routing_key, dedupe_key, correlation_id, "
                           "conversation_key, body, "
                           "due_at, published_at) VALUES ('convoy.commands', 'outbound.send', $1, "
                           "$2, $3, $4, now(), now())",
                           {key, "corr-" + key, conversation, body})
                    .ok());
  };
  auto control = [&](const std::string& key, const std::string& action, const std::string& extra) {
    const std::string body =
        R"({"schema":"outbound.thread_control","version":1,"correlation_id":"corr-)" + key +
        R"(","dedupe_key":")" + key + R"(","conversation_key":")" + conversation +
        R"(","phone_number_id":")" + kBusiness + R"(","to":")" + to + R"(","action":")" + action +
        R"(","partner_app_id":"1234567890","agent":"ana")" + extra + "}";
    outbox(key, body);
    return body;
  };
  graph_.Inject(503, 2, 1, 0, "/" + std::string(kBusiness) + "/messages");
  const std::string reply =
      Command("tc:reply", to, TextMessage("One moment, please."), NowSeconds() - 60);
  outbox("tc:reply", reply);
  ASSERT_TRUE(pub_.PublishAndWait(SendMessage(reply, "tc:reply", to), 10s).ok());
  ASSERT_TRUE(WaitStatus("tc:reply", "retrying", 10s)) << Log("tc:reply").status;
  const std::string pass = control("tc:pass", "pass", R"(,"metadata":"VIP: wants a golden visa")");
  ASSERT_TRUE(pub_.PublishAndWait(SendMessage(pass, "tc:pass", to), 10s).ok());
  ASSERT_TRUE(pub_.PublishAndWait(SendMessage(pass, "tc:pass", to), 10s).ok());  // published twice
  ASSERT_TRUE(WaitUntil([&] { return graph_.ThreadControls().size() == 1; }, 30s));
  EXPECT_EQ(graph_.CallOrder(), (std::vector<std::string>{"send:" + to, "thread_control:pass"}))
      << "the pass waited for the reply written before it";
  rapidjson::Document called;
  called.Parse(graph_.ThreadControls()[0].c_str());
  EXPECT_EQ(JsonText(called["body"]),
            R"({"messaging_product":"whatsapp","to":")" + to +
                R"(","action":"pass","metadata":"VIP: wants a golden visa"})");
  EXPECT_EQ(JsonStr(called, "correlation_id"), "corr-tc:pass");
  // A take Meta does not permit, and a release Meta answers 503 first.
  graph_.Inject(400, 2494191, 1, 0, "/thread_control");
  const std::string take = control("tc:take", "take", "");
  ASSERT_TRUE(pub_.PublishAndWait(SendMessage(take, "tc:take", to), 10s).ok());
  ASSERT_TRUE(WaitUntil(
      [&] { return Count("SELECT count(*) FROM thread_controls WHERE status = 'failed'") == 1; },
      30s));
  graph_.Inject(503, 2, 1, 0, "/thread_control");
  const std::string release = control("tc:release", "release", "");
  ASSERT_TRUE(pub_.PublishAndWait(SendMessage(release, "tc:release", to), 10s).ok());
  ASSERT_TRUE(WaitUntil([&] { return graph_.ThreadControls().size() == 2; }, 30s));
  ASSERT_TRUE(WaitUntil(
      [&] { return Count("SELECT count(*) FROM outbox WHERE settled_at IS NULL") == 0; }, 10s));
  EXPECT_EQ(graph_.ThreadControlCalls(), 4u)
      << "pass once, take once (refused), release twice (503, then done)";
  auto rows = sql_->Exec(
      "SELECT dedupe_key || ' ' || status || ' ' || attempts || ' ' || coalesce(error_code, 0) "
      "FROM thread_controls ORDER BY created_at");
  ASSERT_TRUE(rows.ok());
  std::vector<std::string> settled;
  for (size_t i = 0; i < rows->size(); ++i) settled.push_back(rows->get(i, 0));
  EXPECT_EQ(settled, (std::vector<std::string>{"tc:pass done 1 0", "tc:take failed 1 2494191",
                                               "tc:release done 2 0"}));
  std::map<std::string, std::set<std::string>> told;  // outcome by command, every event of it
  std::map<std::string, int> events;
  // The second delivery of the pass may still wait in a delay tier (it found the first in flight).
  WaitUntil(
      [&] {
        for (const auto& e : TakeEvents()) {
          if (e.routing_key != "outbound.thread_controlled") continue;
          rapidjson::Document b;
          b.Parse(e.body.c_str());
          EXPECT_TRUE(base_.schemas.Validate(e.body).ok()) << e.body;
          EXPECT_EQ(e.Header(headers::kDedupeKey),
                    "outbound.thread_controlled:" + JsonStr(b, "dedupe_key"));
          told[JsonStr(b, "dedupe_key")].insert(
              JsonStr(b, "outcome") +
              (b.HasMember("code") ? " " + std::to_string(b["code"].GetInt()) : ""));
          ++events[JsonStr(b, "dedupe_key")];
        }
        return events["tc:pass"] >= 2 && events["tc:take"] >= 1 && events["tc:release"] >= 1;
      },
      30s);
  EXPECT_EQ(told["tc:pass"], (std::set<std::string>{"done"}));
  EXPECT_EQ(told["tc:take"], (std::set<std::string>{"failed 2494191"}));
  EXPECT_EQ(told["tc:release"], (std::set<std::string>{"done"}));
  EXPECT_EQ(events["tc:pass"], 2) << "the second delivery tells again, under the same dedupe key";
}

// A thread_control Meta did not answer may have moved the thread: it is never called again, and
// the conversation hears "unknown".
TEST_F(OutboundTest, AThreadControlMetaDidNotAnswerIsNeverCalledAgain) {
  StartReplica(Settings(), 2);  // timeout 1 s
  const std::string to = "16505554402", key = "tc:silent";
  const std::string body =
      R"({"schema":"outbound.thread_control","version":1,"correlation_id":"corr-x","dedupe_key":")" +
      key + R"(","conversation_key":")" + kBusiness + ":" + to + R"(","phone_number_id":")" +
      kBusiness + R"(","to":")" + to + R"(","action":"pass","partner_app_id":"1234567890"})";
  graph_.Inject(200, 0, 1, 2500, "/thread_control");  // answered after the caller gave up
  ASSERT_TRUE(pub_.PublishAndWait(SendMessage(body, key, to), 10s).ok());
  ASSERT_TRUE(WaitUntil(
      [&] { return Count("SELECT count(*) FROM thread_controls WHERE status = 'unknown'") == 1; },
      30s));
  ASSERT_TRUE(pub_.PublishAndWait(SendMessage(body, key, to), 10s).ok());
  std::vector<std::string> outcomes;
  WaitUntil(
      [&] {
        for (const auto& e : TakeEvents()) {
          rapidjson::Document b;
          b.Parse(e.body.c_str());
          if (e.routing_key == "outbound.thread_controlled")
            outcomes.push_back(JsonStr(b, "outcome"));
        }
        return outcomes.size() >= 2;
      },
      10s);
  EXPECT_EQ(outcomes, (std::vector<std::string>{"unknown", "unknown"}));
  EXPECT_EQ(graph_.ThreadControlCalls(), 1u);
}

// Meta says slow down: a throughput error (130429) pushes the number's bucket back a second and a
// pair-rate error (131056) the recipient's 4 s (4^1, as Meta advises), for every send after it.
TEST_F(OutboundTest, RateLimitErrorsSlowTheirBucketDown) {
  SenderSettings s = Settings();
  s.pacing = {true, 1000, 1000, 1000, 1000};  // neither bucket would ever make a send wait
  StartReplica(s, 2);
  graph_.Inject(400, 130429, 1, 0, "/messages");
  Send("throttled", "16505554001");
  ASSERT_TRUE(WaitUntil([&] { return graph_.CallCount() == 1; }, 10s));
  int64_t after_throttle = test::NowMillis();
  Send("next-on-number", "16505554002");
  ASSERT_TRUE(WaitStatus("next-on-number", "sent"));
  EXPECT_GE(graph_.SendTimesMs("16505554002").at(0) - after_throttle, 800)
      << "the number's bucket was pushed back";
  ASSERT_TRUE(WaitStatus("throttled", "sent")) << "its retry must not take the next injection";

  graph_.Inject(400, 131056, 1, 0, "/messages");
  size_t calls = graph_.CallCount();
  int64_t before = test::NowMillis();
  Send("pair-limited", "16505554003");
  ASSERT_TRUE(WaitUntil([&] { return graph_.CallCount() == calls + 1; }, 10s));
  // The bucket is pushed back before the attempt is recorded as retrying: only then is the next
  // send's slot sure to come after the penalty.
  ASSERT_TRUE(WaitStatus("pair-limited", "retrying"));
  Send("next-to-pair", "16505554003");
  Send("other-recipient", "16505554004");
  ASSERT_TRUE(WaitStatus("other-recipient", "sent"));
  ASSERT_TRUE(WaitStatus("pair-limited", "sent", 30s));
  ASSERT_TRUE(WaitStatus("next-to-pair", "sent", 30s));
  for (int64_t t : graph_.SendTimesMs("16505554003"))
    EXPECT_GE(t - before, 4000) << "the recipient's bucket waits 4 s";
  EXPECT_LT(graph_.SendTimesMs("16505554004").at(0) - before, 2000)
      << "another recipient is not held up";
  EXPECT_EQ(Log("pair-limited").attempts, "2");
}

// Retention: settled sends and deliveries past --retention_days go (attempts first); a send still
// in flight and a held delivery stay, however old.
TEST_F(OutboundTest, RetentionPrunesSettledHistoryAndKeepsWhatIsStillGoing) {
  for (const auto& [key, status, days] :
       {std::tuple{"old-sent", "sent", 91}, std::tuple{"old-failed", "failed", 91},
        std::tuple{"old-sending", "sending", 91}, std::tuple{"new-sent", "sent", 1}}) {
    ASSERT_TRUE(sql_->Exec("INSERT INTO outbound_messages (dedupe_key, phone_number_id, recipient, "
                           "status, correlation_id, "
                           "updated_at) VALUES ($1, '1', '2', $2, 'c', now() - make_interval(days "
                           "=> $3::int))",
                           {std::string(key), std::string(status), std::to_string(days)})
                    .ok());
  }
  for (const auto& [result, status] :
       {std::pair{"r-delivered", "delivered"}, std::pair{"r-held", "held"}}) {
    auto id = sql_->Exec(
        "INSERT INTO deliveries (result_id, sink, type, correlation_id, command, status, "
        "updated_at) "
        "VALUES ($1, 'listing', 'listing.submitted', 'c', '{}', $2, now() - interval '91 days') "
        "RETURNING id",
        {std::string(result), std::string(status)});
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    ASSERT_TRUE(sql_->Exec("INSERT INTO delivery_attempts (delivery_id, attempt, started_at, "
                           "duration_ms, outcome) "
                           "VALUES ($1::bigint, 1, now() - interval '91 days', 5, 'retry')",
                           {id->get(0, 0)})
                    .ok());
  }
  auto r = PruneOnce(*sql_, "outbound", RetentionRules(90));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["outbound_messages"], 2);
  EXPECT_EQ((*r)["delivery_attempts"], 2);
  EXPECT_EQ((*r)["deliveries"], 1);
  auto sends =
      sql_->Exec("SELECT string_agg(dedupe_key, ',' ORDER BY dedupe_key) FROM outbound_messages");
  EXPECT_EQ(sends->get(0, 0), "new-sent,old-sending");
  auto deliveries = sql_->Exec("SELECT string_agg(result_id, ',') FROM deliveries");
  EXPECT_EQ(deliveries->get(0, 0), "r-held");
}

// Each number calls Graph with its own token and under its own API version (issue 27). Two numbers
// of two businesses, one token in the environment (env:) and one in a file (file:, a mounted
// Secret), each with its own version; and the demo number, not in the registry, with the
// deployment's token and version. Every call (the read receipt too) reaches the fake with its own
// number's token under its own version path, never another's.
class GraphPerNumber : public OutboundTest {
 protected:
  static constexpr const char* kAcme = "106540352230001";
  static constexpr const char* kGlobex = "106540352230002";
  void SetUp() override {
    OutboundTest::SetUp();
    token_file_ = ::testing::TempDir() + "/" + test::UniqueName("globex_token");
    WriteToken("globex-token-1");
    setenv("CONVOY_TEST_ACME_GRAPH_TOKEN", "acme-token", 1);
    for (const char* t : {"acme-token", "globex-token-1", "globex-token-2"}) graph_.AcceptToken(t);
    Register(kAcme, "env:CONVOY_TEST_ACME_GRAPH_TOKEN", "v27.0");
    Register(kGlobex, "file:" + token_file_, "v25.0");
  }
  void TearDown() override {
    OutboundTest::TearDown();
    unsetenv("CONVOY_TEST_ACME_GRAPH_TOKEN");
    std::remove(token_file_.c_str());
  }
  // A rotated Secret: the new file replaces the old one (a new inode, as a Secret volume's swap).
  void WriteToken(const std::string& token) {
    const std::string next = token_file_ + ".next";
    std::ofstream(next) << token << "\n";
    ASSERT_EQ(std::rename(next.c_str(), token_file_.c_str()), 0);
  }
  void Register(const std::string& pnid, const std::string& ref, const std::string& version) {
    auto r = sql_->Exec(
        "INSERT INTO numbers (phone_number_id, tenant, waba_id, display_phone_number, "
        "graph_token_ref, "
        "graph_version, source) VALUES ($1, $1, '1', '+1', $2, NULLIF($3, ''), 'api')",
        {pnid, ref, version});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  SenderSettings PerNumberSettings(std::chrono::seconds check_every) {
    SenderSettings s = Settings();
    s.graph.secrets = std::make_shared<SecretRefs>(check_every);
    s.graph.secrets->Set(kDeploymentGraphTokenRef, kToken);
    s.paused_recheck = 1000ms;
    return s;
  }
  static std::string CommandOf(const std::string& pnid, const std::string& key,
                               const std::string& to) {
    std::string body = Command(key, to, TextMessage("hi " + key), NowSeconds() - 60);
    for (size_t at = body.find(kBusiness); at != std::string::npos;
         at = body.find(kBusiness, at + pnid.size())) {
      body.replace(at, std::string(kBusiness).size(), pnid);
    }
    return body;
  }
  void SendFrom(const std::string& pnid, const std::string& key, const std::string& to,
                std::string mark_read = "") {
    std::string body = CommandOf(pnid, key, to);
    if (!mark_read.empty())
      body.replace(body.find(R"("to":")"), 0, R"("mark_read":")" + mark_read + R"(",)");
    AmqpMessage m = SendMessage(body, key, to);
    m.headers[headers::kConversationKey] = pnid + ":" + to;
    ASSERT_TRUE(pub_.PublishAndWait(std::move(m), 10s).ok());
  }
  // The (token, version) each accepted send to `to` carried, in order.
  std::vector<std::pair<std::string, std::string>> Carried(const std::string& to) {
    rapidjson::Document sends;
    const std::string json = graph_.RequestsJson();
    sends.Parse(json.c_str());
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& s : sends.GetArray()) {
      if (JsonStr(s, "to") == to) out.emplace_back(JsonStr(s, "token"), JsonStr(s, "version"));
    }
    return out;
  }
  std::string token_file_;
};

TEST_F(GraphPerNumber, EachNumbersCallsCarryItsOwnTokenUnderItsOwnVersion) {
  StartReplica(PerNumberSettings(5s), 2);
  SendFrom(kAcme, "acme:1", "16505558001", "wamid.ACME1");
  SendFrom(kGlobex, "globex:1", "16505558002");
  Send("demo:1", "16505558003");
  ASSERT_TRUE(graph_.WaitForSends(3, 30s)) << graph_.RequestsJson();
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(Carried("16505558001"), (std::vector<P>{{"acme-token", "v27.0"}}));
  EXPECT_EQ(Carried("16505558002"), (std::vector<P>{{"globex-token-1", "v25.0"}}));
  EXPECT_EQ(Carried("16505558003"), (std::vector<P>{{kToken, "v24.0"}}))
      << "not in the registry: the deployment's";
  // Every Graph call, read receipt included: the number's own path and token, nothing refused.
  std::map<std::string, std::string> want = {
      {std::string("/v27.0/") + kAcme + "/messages", "acme-token"},
      {std::string("/v25.0/") + kGlobex + "/messages", "globex-token-1"},
      {std::string("/v24.0/") + kBusiness + "/messages", kToken}};
  const auto calls = graph_.Calls();
  ASSERT_EQ(calls.size(), 4u) << "three sends and acme's read receipt";
  for (const auto& c : calls) {
    ASSERT_TRUE(want.count(c.path)) << c.path;
    EXPECT_EQ(c.token, want[c.path]) << c.path;
  }
  EXPECT_EQ(graph_.ReadReceipts(), (std::vector<std::string>{"wamid.ACME1:typing"}));
}

// A rotated token file is used from the first send after the check interval (1 s here), with no
// restart; before it, the token read last. Sends go one after the other until one carries the new
// token: the time from the rotation to that send is measured and printed.
TEST_F(GraphPerNumber, ARotatedTokenFileIsUsedWithinTheCheckInterval) {
  StartReplica(PerNumberSettings(1s), 1);
  SendFrom(kGlobex, "rot:0", "16505558100");
  ASSERT_TRUE(graph_.WaitForSends(1, 30s));
  WriteToken("globex-token-2");
  const int64_t rotated = test::NowMillis();
  int64_t took = -1;
  size_t sent = 1;
  while (took < 0 && test::NowMillis() - rotated < 10000) {
    const std::string key = "rot:" + std::to_string(sent);
    SendFrom(kGlobex, key, "16505558100");
    ASSERT_TRUE(graph_.WaitForSends(++sent, 10s)) << key;
    if (Carried("16505558100").back().first == "globex-token-2") took = test::NowMillis() - rotated;
  }
  std::cout << "[ rotation ] the new token went " << took
            << " ms after the file changed (check every 1000 ms; " << sent - 1
            << " sends after it)\n";
  ASSERT_GE(took, 0) << "the rotated token was never used";
  EXPECT_LE(took, 2000);
  std::set<std::string> tokens;
  for (const auto& [token, version] : Carried("16505558100")) {
    tokens.insert(token);
    EXPECT_EQ(version, "v25.0");
  }
  EXPECT_EQ(tokens, (std::set<std::string>{"globex-token-1", "globex-token-2"}))
      << "no other token, ever";
  EXPECT_EQ(Carried("16505558100").back().first, "globex-token-2");
}

// A number whose token reference names nothing: its sends wait, uncalled and not counted as
// attempts, with the reason; none goes with another token. Once the token is there, they go.
TEST_F(GraphPerNumber, ANumberWhoseTokenCannotBeResolvedSendsNothingAndSaysWhy) {
  const std::string lost = "106540352230009";
  unsetenv("CONVOY_TEST_LOST_GRAPH_TOKEN");
  Register(lost, "env:CONVOY_TEST_LOST_GRAPH_TOKEN", "");
  graph_.AcceptToken("lost-token");
  auto conn = PgConnection::Connect(db_.dsn());
  ASSERT_TRUE(conn.ok());
  Sender sender(**conn, base_.schemas, PerNumberSettings(5s), nullptr);
  Delivery d;
  d.queue = queues::kOutboundSend;
  d.body = CommandOf(lost, "lost:1", "16505558200");
  d.headers = SendMessage(d.body, "lost:1", "16505558200").headers;
  const uint64_t held = SendsCounted("graph_token_unresolved");
  Disposition first = sender.HandleSend(d);
  EXPECT_EQ(first.kind, Disposition::Kind::kDelay);
  EXPECT_EQ(first.reason,
            "graph token env:CONVOY_TEST_LOST_GRAPH_TOKEN not set (business number " + lost + ")");
  EXPECT_EQ(first.delay_ms, 1000);
  EXPECT_EQ(SendsCounted("graph_token_unresolved"), held + 1);
  EXPECT_EQ(graph_.Calls().size(), 0u) << "nothing reached Graph, with any token";
  EXPECT_EQ(Count("SELECT count(*) FROM outbound_messages"), 0) << "no attempt";
  setenv("CONVOY_TEST_LOST_GRAPH_TOKEN", "lost-token", 1);
  Disposition then = sender.HandleSend(d);
  unsetenv("CONVOY_TEST_LOST_GRAPH_TOKEN");
  EXPECT_EQ(then.kind, Disposition::Kind::kAck) << then.reason;
  EXPECT_EQ(Carried("16505558200"),
            (std::vector<std::pair<std::string, std::string>>{{"lost-token", "v24.0"}}));
  EXPECT_EQ(Log("lost:1").attempts, "1");
}

}  // namespace
}  // namespace convoy::outbound
