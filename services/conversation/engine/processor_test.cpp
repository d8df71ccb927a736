// Integration: real PostgreSQL. The exactly-once contract of one delivery = one transaction.
#include "engine/processor.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <random>
#include <thread>

#include "convoy/json.h"
#include "convoy/topology.h"
#include "engine/flow.h"
#include "jobs/retention_rules.h"
#include "store/numbers.h"
#include "testsupport.h"

namespace convoy::conversation {
namespace {

constexpr const char* kBusiness = "106540352242922";
constexpr int64_t kT0 = 1750000000;

// An inbound.message delivery as ingress publishes it; `message` is Meta's message object
// without id, from and timestamp.
Delivery Inbound(const std::string& wamid, const std::string& wa_id, int64_t at,
                 const std::string& message) {
  Delivery d;
  d.queue = queues::kConversationInbound;
  d.body = R"({"schema":"inbound.message","version":1,"correlation_id":"corr-)" + wamid +
           R"(","received_at":"2026-01-01T00:00:00.000Z","phone_number_id":")" + kBusiness +
           R"(","wa_id":")" + wa_id + R"(","conversation_key":")" + kBusiness + ":" + wa_id +
           R"(","profile_name":"Kerry",)" + R"("message":{"from":")" + wa_id + R"(","id":")" +
           wamid + R"(","timestamp":")" + std::to_string(at) + R"(",)" + message + "}}";
  d.headers[headers::kDedupeKey] = wamid;
  d.headers[headers::kCorrelationId] = "corr-" + wamid;
  d.headers[headers::kConversationKey] = std::string(kBusiness) + ":" + wa_id;
  return d;
}

Delivery TextDelivery(const std::string& wamid, const std::string& text,
                      const std::string& wa_id = "16505551234", int64_t at = kT0) {
  return Inbound(wamid, wa_id, at,
                 R"("type":"text","text":{"body":")" + JsonEscape(text) + R"("})");
}

Delivery ImageDelivery(const std::string& wamid, const std::string& media_id,
                       const std::string& wa_id, int64_t at) {
  return Inbound(wamid, wa_id, at,
                 R"("type":"image","image":{"id":")" + media_id +
                     R"(","mime_type":"image/jpeg","sha256":"x"})");
}

Delivery ButtonDelivery(const std::string& wamid, const std::string& id, const std::string& title,
                        const std::string& wa_id, int64_t at) {
  return Inbound(
      wamid, wa_id, at,
      R"("type":"interactive","interactive":{"type":"button_reply","button_reply":{"id":")" + id +
          R"(","title":")" + title + R"("}})");
}

class ProcessorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(schemas_.LoadDir(test::SourcePath("proto-schemas")).ok());
    auto c = PgConnection::Connect(db_.dsn());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    conn_ = std::move(*c);
    ASSERT_TRUE(RunMigrations(*conn_, test::SourcePath("deploy/postgres")).ok());
    test::RegisterNumber(*conn_, test::kDemoNumber);
    auto flows = FlowSet::LoadDir(test::SourcePath("deploy/flows"), schemas_);
    ASSERT_TRUE(flows.ok()) << flows.status().ToString();
    flows_ = std::make_unique<FlowSet>(std::move(*flows));
    engine_ = std::make_unique<Engine>(*flows_, EngineSettings{3600, 100, 600, ""});
  }
  std::string One(const std::string& sql, const PgParams& params = {}) {
    auto r = conn_->Exec(sql, params);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && !r->empty() ? r->get(0, 0) : "";
  }
  // Sends and buttons written to the outbox for one sender, oldest first.
  std::vector<std::string> Replies(const std::string& wa_id) {
    auto r = conn_->Exec(
        "SELECT coalesce(body::jsonb->'message'->'text'->>'body', "
        "body::jsonb->'message'->'interactive'->'body'->>'text') "
        "FROM outbox WHERE routing_key = 'outbound.send' AND conversation_key = $1 ORDER BY id",
        {std::string(kBusiness) + ":" + wa_id});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    std::vector<std::string> out;
    for (size_t i = 0; r.ok() && i < r->size(); ++i) out.push_back(r->get(i, 0));
    return out;
  }
  int64_t PhotoCount(const std::string& wa_id) {
    return std::atoll(
        One("SELECT coalesce(jsonb_array_length(state->'photos'->'photos'), 0) FROM conversations "
            "WHERE conversation_key = $1",
            {std::string(kBusiness) + ":" + wa_id})
            .c_str());
  }
  // Deliveries shared out to `threads` consumers, each with its own connection, as a consumer
  // group does it; how many were not acked.
  int HandleConcurrently(const std::vector<Delivery>& all, int threads) {
    std::atomic<size_t> next{0};
    std::atomic<int> not_acked{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        auto c = PgConnection::Connect(db_.dsn());
        ASSERT_TRUE(c.ok());
        Processor p(**c, schemas_, *engine_, nullptr);
        for (size_t i; (i = next++) < all.size();) {
          if (p.Handle(all[i]).kind != Disposition::Kind::kAck) ++not_acked;
        }
      });
    }
    for (auto& t : pool) t.join();
    return not_acked.load();
  }
  void Expect(Processor& p, const Delivery& d) {
    EXPECT_EQ(p.Handle(d).kind, Disposition::Kind::kAck) << d.body;
  }
  // SELL, email, a full description: the sender's conversation waits for photos.
  void ToPhotos(Processor& p, const std::string& wa_id, int64_t at = kT0) {
    Expect(p, TextDelivery(wa_id + ".sell", "SELL", wa_id, at));
    Expect(p, TextDelivery(wa_id + ".email", "kerry@example.com", wa_id, at + 1));
    Expect(p,
           TextDelivery(wa_id + ".desc", "Nike running shoes, size 42, used, $35", wa_id, at + 2));
    ASSERT_EQ(One("SELECT state->>'step' FROM conversations WHERE conversation_key = $1",
                  {std::string(kBusiness) + ":" + wa_id}),
              "photos");
  }
  // A listing through one stored photo, DONE and NO, SKIP: the SUBMIT that completes it (not yet
  // applied). Message ids start with `tag`; the photo's hash is `hash` 64 times.
  Delivery ToSubmit(Processor& p, const std::string& wa_id, const std::string& tag, char hash) {
    ToPhotos(p, wa_id);
    Expect(p, ImageDelivery(tag + ".a", tag + "-media", wa_id, kT0 + 10));
    Delivery stored;
    stored.queue = queues::kConversationEvents;
    stored.body = R"({"schema":"media.stored","version":1,"correlation_id":"c","dedupe_key":")" +
                  tag + R"(.k","conversation_key":")" + std::string(kBusiness) + ":" + wa_id +
                  R"(","media_id":")" + tag + R"(-media","stored_name":")" + std::string(64, hash) +
                  R"(.jpg","sha256":")" + std::string(64, hash) +
                  R"(","size":10,"mime_type":"image/jpeg"})";
    Expect(p, stored);
    Expect(p, TextDelivery(tag + ".done", "DONE", wa_id, kT0 + 11));
    Expect(p, ButtonDelivery(tag + ".flaws", "flaws_no", "NO, SKIP", wa_id, kT0 + 12));
    return ButtonDelivery(tag + ".submit", "submit", "SUBMIT", wa_id, kT0 + 13);
  }
  int64_t Count(const std::string& sql) {
    auto r = conn_->Exec(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->get_int(0, 0) : -1;
  }
  // SELL from wa_id `ago` seconds before now (the system clock: run due times are the database's),
  // then `set` on its conversation row (SET ...: its due time, its owner; "" none) as if time had
  // passed. Now, in seconds.
  int64_t ListingThen(Processor& p, const std::string& wa_id, int64_t ago, const std::string& set) {
    const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    Expect(p, TextDelivery(wa_id + ".sell", "SELL", wa_id, now - ago));
    if (set.empty()) return now;
    auto r = conn_->Exec("UPDATE conversations SET " + set + " WHERE conversation_key = $1",
                         {std::string(kBusiness) + ":" + wa_id});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return now;
  }
  test::TestDatabase db_{"conv_processor"};
  SchemaRegistry schemas_;
  std::unique_ptr<PgConnection> conn_;
  std::unique_ptr<FlowSet> flows_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(ProcessorTest, RedeliveriesProduceOneTransitionAndOneSend) {
  int commits = 0;
  Processor p(*conn_, schemas_, *engine_, [&] { ++commits; });
  Delivery d = TextDelivery("wamid.A", "hello");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(p.Handle(d).kind, Disposition::Kind::kAck);
  EXPECT_EQ(Count("SELECT count(*) FROM transitions"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM outbox WHERE routing_key = 'outbound.send'"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM inbound_messages"), 1);
  EXPECT_EQ(commits, 1);
  auto key = conn_->Exec("SELECT dedupe_key FROM outbox");
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->get(0, 0), "106540352242922:16505551234:wamid.A:reply");
}

// The number's greeting (the registry's) reaches the first reply of the conversation, whatever flow
// answers; the next reply goes without it.
TEST_F(ProcessorTest, TheFirstReplyCarriesTheNumbersGreetingFromTheRegistry) {
  ASSERT_TRUE(
      conn_
          ->Exec(
              "UPDATE numbers SET greeting = 'Hi, this is Acme Resale.' WHERE phone_number_id = $1",
              {std::string(test::kDemoNumber)})
          .ok());
  Processor p(*conn_, schemas_, *engine_, [] {});
  EXPECT_EQ(p.Handle(TextDelivery("wamid.G1", "SELL")).kind, Disposition::Kind::kAck);
  EXPECT_EQ(p.Handle(TextDelivery("wamid.G2", "kerry@example.com")).kind, Disposition::Kind::kAck);
  auto bodies =
      conn_->Exec("SELECT body FROM outbox WHERE routing_key = 'outbound.send' ORDER BY id");
  ASSERT_TRUE(bodies.ok());
  ASSERT_EQ(bodies->size(), 2u);
  EXPECT_NE(bodies->get(0, 0).find(R"("body":"Hi, this is Acme Resale.\n\nLet's list your item!)"),
            std::string::npos)
      << bodies->get(0, 0);
  EXPECT_EQ(bodies->get(1, 0).find("Acme Resale"), std::string::npos)
      << "once in the conversation's life";
}

// A number's default flow (the registry's) is what a message naming no flow starts on that number;
// without one, the deployment's (here none: the menu).
TEST_F(ProcessorTest, AMessageNamingNoFlowStartsTheNumbersDefaultFlow) {
  Processor p(*conn_, schemas_, *engine_, [] {});
  EXPECT_EQ(p.Handle(TextDelivery("wamid.D1", "Hello", "16505550201")).kind,
            Disposition::Kind::kAck);
  ASSERT_TRUE(conn_
                  ->Exec("UPDATE numbers SET default_flow = 'lead' WHERE phone_number_id = $1",
                         {std::string(test::kDemoNumber)})
                  .ok());
  EXPECT_EQ(p.Handle(TextDelivery("wamid.D2", "Hello", "16505550202")).kind,
            Disposition::Kind::kAck);
  auto menu = Replies("16505550201"), lead = Replies("16505550202");
  ASSERT_EQ(menu.size(), 1u);
  ASSERT_EQ(lead.size(), 1u);
  EXPECT_NE(menu[0].find("I can't help with"), std::string::npos) << menu[0];
  EXPECT_NE(lead[0].find("How can I help you today?"), std::string::npos) << lead[0];
  EXPECT_EQ(One("SELECT flow FROM conversations WHERE conversation_key = $1",
                {std::string(kBusiness) + ":16505550202"}),
            "lead");
}

// A number's flows (the registry's): only those start on it. A person already in a flow the number
// stops running goes on; the database refuses a default_flow that is not one of the flows.
TEST_F(ProcessorTest, OnlyTheFlowsItsNumberRunsStartThereAndARunGoingGoesOn) {
  Processor p(*conn_, schemas_, *engine_, [] {});
  const std::string going = "16505550301", fresh = "16505550302";
  Expect(p, TextDelivery("wamid.F1", "SELL", going));
  const PgParams demo = {std::string(test::kDemoNumber)};
  ASSERT_TRUE(conn_
                  ->Exec("UPDATE numbers SET default_flow = 'lead', flows = '{lead,checklist}' "
                         "WHERE phone_number_id = $1",
                         demo)
                  .ok());
  Expect(p, TextDelivery("wamid.F2", "SELL", fresh));
  Expect(p, TextDelivery("wamid.F3", "kerry@example.com", going));
  const auto state = [&](const std::string& wa_id) {
    return One(
        "SELECT state->>'flow' || '/' || (state->>'step') FROM conversations WHERE "
        "conversation_key = $1",
        {std::string(kBusiness) + ":" + wa_id});
  };
  EXPECT_EQ(state(fresh).rfind("lead/", 0), 0u)
      << "SELL is an enquiry on a number that does not run the listing";
  auto enquiry = Replies(fresh);
  ASSERT_EQ(enquiry.size(), 1u);
  EXPECT_NE(enquiry[0].find("How can I help you today?"), std::string::npos) << enquiry[0];
  EXPECT_EQ(state(going), "listing/description") << "the listing begun before goes on";
  EXPECT_FALSE(
      conn_->Exec("UPDATE numbers SET flows = '{listing}' WHERE phone_number_id = $1", demo).ok())
      << "default_flow lead is not one of the flows";
}

// With the typing indicator on, the answer to a message carries it (mark_read), for outbound to
// mark it read with the indicator just before that send; a duplicate adds nothing; a message that
// gets no answer (a photo after the first of a burst) shows no indicator.
TEST_F(ProcessorTest, AnAnsweredMessageIsMarkedReadWithTheTypingIndicatorOnce) {
  Processor p(*conn_, schemas_, *engine_, nullptr);
  p.set_typing_indicator(true);
  const std::string seller = "16505550077";
  for (const auto& d :
       {TextDelivery("ty1", "SELL", seller, kT0), TextDelivery("ty1", "SELL", seller, kT0),
        TextDelivery("ty2", "me@example.com", seller, kT0 + 1),
        TextDelivery("ty3", "Nike running shoes, size 42, used, $35", seller, kT0 + 2),
        ImageDelivery("ty4", "m1", seller, kT0 + 3), ImageDelivery("ty5", "m2", seller, kT0 + 4)}) {
    ASSERT_EQ(p.Handle(d).kind, Disposition::Kind::kAck);
  }
  auto rows = conn_->Exec(
      "SELECT body::jsonb->'message'->>'type', coalesce(body::jsonb->>'mark_read', '') FROM outbox "
      "WHERE routing_key = 'outbound.send' ORDER BY id");
  ASSERT_TRUE(rows.ok());
  std::vector<std::string> got;
  for (size_t i = 0; i < rows->size(); ++i) got.push_back(rows->get(i, 0) + ":" + rows->get(i, 1));
  EXPECT_EQ(got, (std::vector<std::string>{"text:ty1", "text:ty2", "text:ty3", "text:ty4"}));
  for (size_t i = 0; i < rows->size(); ++i) {
    // Each command is one Meta accepts as it is.
    auto body = conn_->Exec(
        "SELECT body FROM outbox WHERE routing_key = 'outbound.send' ORDER BY id OFFSET $1::int "
        "LIMIT 1",
        {std::to_string(i)});
    ASSERT_TRUE(body.ok());
    EXPECT_TRUE(schemas_.Validate(body->get(0, 0)).ok()) << body->get(0, 0);
  }
}

// What the user did not write as a new message — a reaction (or its removal), an edit or a
// deletion of an earlier message, WhatsApp's own notices — is recorded, never answered.
TEST_F(ProcessorTest, ReactionsEditsAndDeletionsAreRecordedNotAnswered) {
  Processor p(*conn_, schemas_, *engine_, nullptr);
  const std::string user = "16505550078";
  ASSERT_EQ(p.Handle(TextDelivery("rx1", "SELL", user, kT0)).kind, Disposition::Kind::kAck);
  ASSERT_EQ(Replies(user).size(), 1u);
  for (const auto& d :
       {Inbound("rx2", user, kT0 + 1,
                R"("type":"reaction","reaction":{"message_id":"wamid.x","emoji":"+1"})"),
        Inbound("rx3", user, kT0 + 2, R"("type":"reaction","reaction":{"message_id":"wamid.x"})"),
        Inbound("rx4", user, kT0 + 3, R"("type":"edit","edit":{"original_message_id":"rx1"})"),
        Inbound("rx5", user, kT0 + 4,
                R"("type":"revoke","revoke":{"original_message_id":"rx1"})")}) {
    ASSERT_EQ(p.Handle(d).kind, Disposition::Kind::kAck);
  }
  EXPECT_EQ(Replies(user).size(), 1u) << "nothing more was said";
  EXPECT_EQ(One("SELECT count(*) FROM transitions WHERE trigger_dedupe_key IN ('rx2', 'rx3', "
                "'rx4', 'rx5')"),
            "4");
  EXPECT_EQ(One("SELECT state->>'step' FROM conversations WHERE conversation_key = $1",
                {std::string(kBusiness) + ":" + user}),
            "email")
      << "still waiting for the email";
}

// The delivery as ingress publishes it from another webhook field (inbound.message `channel`:
// standby, echo, history), with its `direction` when given.
Delivery OnChannel(Delivery d, const std::string& channel, const std::string& direction = "") {
  const std::string after = R"("profile_name":"Kerry",)";
  d.body.insert(d.body.find(after) + after.size(),
                R"("channel":")" + channel + R"(",)" +
                    (direction.empty() ? "" : R"("direction":")" + direction + R"(",)"));
  d.headers[headers::kDedupeKey] = channel + ":" + d.headers[headers::kDedupeKey];
  return d;
}

// An inbound.handover as ingress publishes it (messaging_handovers).
Delivery Handover(const std::string& action, const std::string& wa_id, int64_t at) {
  const std::string key = std::string(kBusiness) + ":" + wa_id;
  Delivery d;
  d.queue = queues::kConversationInbound;
  d.body =
      R"({"schema":"inbound.handover","version":1,"correlation_id":"corr-h","received_at":"2026-01-01T00:00:00.000Z",)"
      R"("phone_number_id":")" +
      std::string(kBusiness) + R"(","wa_id":")" + wa_id + R"(","conversation_key":")" + key +
      R"(","action":")" + action + R"(","timestamp":")" + std::to_string(at) +
      R"(","previous_owner_app_id":"1066355071287456","new_owner_role":"escalation","handover":{"type":")" +
      action + R"("}})";
  d.headers[headers::kDedupeKey] = "handover:" + action + ":" + std::to_string(at);
  d.headers[headers::kCorrelationId] = "corr-h";
  d.headers[headers::kConversationKey] = key;
  return d;
}

// Only what came on the `messages` field is the flow's. A message seen on standby (another app or
// Meta's agent owns the thread), what the business typed in the WhatsApp Business app (an echo), a
// backfilled one and a change of the thread's owner are each recorded once, their channel (or
// action) the note, and start no flow and send nothing; the next message on `messages` is answered.
TEST_F(ProcessorTest, StandbyEchoHistoryAndHandoversAreRecordedNeverAnswered) {
  Processor p(*conn_, schemas_, *engine_, nullptr);
  const std::string user = "16505550081", key = std::string(kBusiness) + ":" + user;
  for (const auto& d :
       {OnChannel(TextDelivery("ch1", "SELL", user, kT0), "standby"),
        OnChannel(TextDelivery("ch2", "SELL", user, kT0 + 1), "echo", "out"),
        OnChannel(TextDelivery("ch3", "SELL", user, kT0 + 2), "history", "in"),
        Handover("control_taken", user, kT0 + 3), Handover("control_passed", user, kT0 + 4)}) {
    ASSERT_EQ(p.Handle(d).kind, Disposition::Kind::kAck) << d.body;
    ASSERT_EQ(p.Handle(d).kind, Disposition::Kind::kAck) << "a redelivery: " << d.body;
  }
  EXPECT_TRUE(Replies(user).empty());
  EXPECT_EQ(Count("SELECT count(*) FROM outbox"), 0) << "no send, no fetch, no event";
  auto notes =
      conn_->Exec("SELECT note FROM transitions WHERE conversation_key = $1 ORDER BY id", {key});
  ASSERT_TRUE(notes.ok());
  std::vector<std::string> got;
  for (size_t i = 0; i < notes->size(); ++i) got.push_back(notes->get(i, 0));
  EXPECT_EQ(got, (std::vector<std::string>{"standby", "echo", "history", "control_taken",
                                           "control_passed"}));
  EXPECT_EQ(
      One("SELECT coalesce(state->>'flow', '') FROM conversations WHERE conversation_key = $1",
          {key}),
      "");

  ASSERT_EQ(p.Handle(TextDelivery("ch6", "SELL", user, kT0 + 5)).kind, Disposition::Kind::kAck);
  EXPECT_EQ(Replies(user).size(), 1u) << "the same words on `messages` are the flow's";
}

// Who owns the thread follows Meta's routing and the Business app: control_taken (or a message on
// standby) makes it elsewhere and the bot silent; control_passed gives it back; what the owner
// typed in the WhatsApp Business app (an echo) puts a person in charge. The transcript keeps them
// all.
TEST_F(ProcessorTest, HandoversStandbyAndEchoesDecideWhoOwnsTheConversation) {
  Processor p(*conn_, schemas_, *engine_, nullptr);
  const std::string user = "16505550083", key = std::string(kBusiness) + ":" + user;
  auto owner = [&] {
    return One("SELECT owner FROM conversations WHERE conversation_key = $1", {key});
  };
  Expect(p, Handover("control_taken", user, kT0));
  EXPECT_EQ(owner(), "elsewhere");
  Expect(p, TextDelivery("own1", "SELL", user, kT0 + 1));
  EXPECT_TRUE(Replies(user).empty()) << "another app owns the thread: convoy says nothing";
  Expect(p, Handover("control_passed", user, kT0 + 2));
  EXPECT_EQ(owner(), "bot");
  Expect(p, TextDelivery("own2", "SELL", user, kT0 + 3));
  EXPECT_EQ(Replies(user).size(), 1u) << "the thread is convoy's again";
  Expect(p,
         OnChannel(TextDelivery("own3", "I'll take it from here", user, kT0 + 4), "echo", "out"));
  EXPECT_EQ(owner(), "human");
  Expect(p, TextDelivery("own4", "kerry@example.com", user, kT0 + 5));
  EXPECT_EQ(Replies(user).size(), 1u)
      << "the owner answers from the Business app: the bot is silent";
  Expect(p, OnChannel(TextDelivery("own5", "hello?", user, kT0 + 6), "standby"));
  EXPECT_EQ(owner(), "elsewhere");
  EXPECT_EQ(
      One("SELECT string_agg(direction || '/' || author || '/' || channel, ' ' ORDER BY seq) FROM "
          "conversation_messages WHERE conversation_key = $1",
          {key}),
      "in/customer/messages in/customer/messages out/bot/messages out/business_app/echo "
      "in/customer/messages "
      "in/customer/standby");
}

// In a flow with an extractor, its context is what the customer said to convoy: a message seen on
// standby, or the business's own words echoed from the WhatsApp Business app, never joins it.
TEST_F(ProcessorTest, OnlyTheMessagesChannelJoinsAnExtractorsContext) {
  std::string lead = test::ReadFile(test::SourcePath("deploy/flows/lead.json"));
  lead.replace(lead.find("\"default\": true"), 15, R"("default": true, "extractor": "assistant")");
  const std::string dir = ::testing::TempDir() + "/" + test::UniqueName("flows");
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  std::ofstream(dir + "/lead.json") << lead;
  auto flows = FlowSet::LoadDir(dir, schemas_);
  ASSERT_TRUE(flows.ok()) << flows.status().ToString();
  Engine engine(*flows, EngineSettings{3600, 100, 600, "lead"});
  Processor p(*conn_, schemas_, engine, nullptr);
  const std::string user = "16505550082";
  ASSERT_EQ(p.Handle(TextDelivery("xc1", "Hello", user, kT0)).kind, Disposition::Kind::kAck);
  ASSERT_EQ(One("SELECT count(*) FROM conversation_context WHERE role = 'user'"), "1");
  ASSERT_EQ(
      p.Handle(OnChannel(TextDelivery("xc2", "I want a golden visa", user, kT0 + 1), "standby"))
          .kind,
      Disposition::Kind::kAck);
  ASSERT_EQ(p.Handle(OnChannel(TextDelivery("xc3", "Maria here, I will call you", user, kT0 + 2),
                               "echo", "out"))
                .kind,
            Disposition::Kind::kAck);
  EXPECT_EQ(One("SELECT count(*) FROM conversation_context WHERE role = 'user'"), "1");
  EXPECT_EQ(One("SELECT count(*) FROM conversation_context WHERE content LIKE '%golden%' OR "
                "content LIKE '%Maria%'"),
            "0");
}

// A WhatsApp Flows form submitted (interactive nfm_reply) is not a button: no choice is made
// from it; the step answers as to anything it did not ask for.
TEST_F(ProcessorTest, AFlowsFormReplyIsNotTakenForAButton) {
  Processor p(*conn_, schemas_, *engine_, nullptr);
  const std::string user = "16505550079";
  ASSERT_EQ(p.Handle(TextDelivery("nf1", "SELL", user, kT0)).kind, Disposition::Kind::kAck);
  ASSERT_EQ(
      p
          .Handle(Inbound(
              "nf2", user, kT0 + 1,
              R"("type":"interactive","interactive":{"type":"nfm_reply","nfm_reply":{"name":"flow",)"
              R"("body":"Sent","response_json":"{\"flow_token\":\"t\"}"}})"))
          .kind,
      Disposition::Kind::kAck);
  auto replies = Replies(user);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[1],
            "Please answer with a text message.\nLet's list your item! What's your email address? "
            "(Send CANCEL at any "
            "time to stop.)");
}

TEST_F(ProcessorTest, InvalidBodyIsDeadLetteredAndWritesNothing) {
  Processor p(*conn_, schemas_, *engine_, nullptr);
  Delivery d = TextDelivery("wamid.B", "x");
  d.body = R"({"schema":"inbound.message","version":1})";
  auto disp = p.Handle(d);
  EXPECT_EQ(disp.kind, Disposition::Kind::kDeadLetter);
  EXPECT_NE(disp.reason.find("schema"), std::string::npos);
  d.body = "not json";
  EXPECT_EQ(p.Handle(d).kind, Disposition::Kind::kDeadLetter);
  EXPECT_EQ(Count("SELECT count(*) FROM inbound_messages"), 0);
}

// Eight consumers, one conversation, every delivery twice in a shuffled order: the
// per-conversation lock serializes them and the dedupe row absorbs the duplicates.
TEST_F(ProcessorTest, ConcurrentDuplicatedDeliveriesApplyExactlyOnceEach) {
  constexpr int kMessages = 40, kThreads = 8;
  std::vector<Delivery> all;
  for (int i = 0; i < kMessages; ++i) {
    all.push_back(TextDelivery("wamid.C" + std::to_string(i), "m" + std::to_string(i)));
    all.push_back(all.back());
  }
  std::mt19937 rng(42);
  std::shuffle(all.begin(), all.end(), rng);
  EXPECT_EQ(HandleConcurrently(all, kThreads), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM transitions"), kMessages);
  EXPECT_EQ(Count("SELECT count(*) FROM outbox"), kMessages);
  EXPECT_EQ(Count("SELECT (state->>'messages')::int FROM conversations"), kMessages);
}

// The photo-burst plan's checklist over a real database, one conversation per case; WhatsApp
// timestamps are the clock.
TEST_F(ProcessorTest, PhotoBurstChecklist) {
  struct Case {
    std::string name;
    std::vector<std::pair<std::string, int64_t>> photos;  // media id, seconds after kT0
    int64_t done_at;
    std::string reply;
  };
  const std::vector<Case> cases = {
      {"single", {{"s1", 10}}, 20, "Great! Got 1 photo 📸\n\nAny flaws or special notes?"},
      {"burst",
       {{"b1", 10}, {"b2", 11}, {"b3", 12}},
       12,
       "Great! Got 3 photos 📸\n\nAny flaws or special notes?"},
      {"twice",
       {{"t1", 10}, {"t1", 11}},
       12,
       "Great! Got 1 photo 📸\n\nAny flaws or special notes?"},
      {"five",
       {{"f1", 10}, {"f2", 10}, {"f3", 11}, {"f4", 11}, {"f5", 12}},
       13,
       "Great! Got 5 photos 📸\n\nAny flaws or special notes?"},
      {"gap",
       {{"g1", 10}, {"g2", 11}, {"g3", 611}},
       612,
       "Great! Got 3 photos 📸\n\nAny flaws or special notes?"},
      {"expired",
       {{"e1", 10}, {"e2", 11}},
       11 + 3601,
       "Got 0 photos: photos expire after a while. Please send your photos again, then text DONE."},
  };
  Processor p(*conn_, schemas_, *engine_, nullptr);
  int sender = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::string wa_id = "1650555" + std::to_string(1000 + sender++);
    ToPhotos(p, wa_id);
    int i = 0;
    for (const auto& [media, at] : c.photos) {
      Expect(p, ImageDelivery(wa_id + ".img" + std::to_string(i++), media, wa_id, kT0 + at));
    }
    Expect(p, TextDelivery(wa_id + ".done", "DONE", wa_id, kT0 + c.done_at));
    auto replies = Replies(wa_id);
    ASSERT_EQ(replies.size(), 5u) << "3 questions, 1 first-photo acknowledgement, 1 answer to DONE";
    EXPECT_EQ(replies[3], "Got it! 📸\n\nKeep sending. Text DONE when finished.");
    EXPECT_EQ(replies[4], c.reply);
  }
  EXPECT_EQ(Count("SELECT count(*) FROM outbox WHERE routing_key = 'media.fetch' AND body::jsonb ? "
                  "'keep_days'"),
            0)
      << "a listing's photos keep media's default days";
}

// 50 photos, every delivery twice, shuffled, eight consumers with their own connections:
// exactly 50 photos, one fetch per photo, one acknowledgement, and DONE says 50.
TEST_F(ProcessorTest, FiftyPhotosFromEightConcurrentConsumersWithDuplicatesAreExactlyFifty) {
  constexpr int kPhotos = 50, kThreads = 8;
  const std::string wa_id = "16505559999";
  {
    Processor p(*conn_, schemas_, *engine_, nullptr);
    ToPhotos(p, wa_id);
  }
  std::vector<Delivery> all;
  for (int i = 0; i < kPhotos; ++i) {
    all.push_back(ImageDelivery("wamid.burst" + std::to_string(i), "media" + std::to_string(i),
                                wa_id, kT0 + 10 + i / 5));
    all.push_back(all.back());
  }
  std::mt19937 rng(7);
  std::shuffle(all.begin(), all.end(), rng);
  EXPECT_EQ(HandleConcurrently(all, kThreads), 0);
  EXPECT_EQ(PhotoCount(wa_id), kPhotos);
  EXPECT_EQ(Count("SELECT count(*) FROM outbox WHERE routing_key = 'media.fetch'"), kPhotos);
  EXPECT_EQ(Count("SELECT count(DISTINCT body::jsonb->>'media_id') FROM outbox WHERE routing_key = "
                  "'media.fetch'"),
            kPhotos);
  Processor p(*conn_, schemas_, *engine_, nullptr);
  Expect(p, TextDelivery("wamid.burst.done", "DONE", wa_id, kT0 + 30));
  auto replies = Replies(wa_id);
  ASSERT_EQ(replies.size(), 5u);
  EXPECT_EQ(replies[3], "Got it! 📸\n\nKeep sending. Text DONE when finished.");
  EXPECT_EQ(replies[4], "Great! Got 50 photos 📸\n\nAny flaws or special notes?");
  EXPECT_EQ(Count("SELECT count(*) FROM transitions WHERE note = 'photo'"), kPhotos);
}

TEST_F(ProcessorTest, APhotoDeliveredAfterDoneButSentBeforeItIsCountedAndTheCountCorrected) {
  const std::string wa_id = "16505558888";
  Processor p(*conn_, schemas_, *engine_, nullptr);
  ToPhotos(p, wa_id);
  Expect(p, ImageDelivery("late.a", "la", wa_id, kT0 + 10));
  Expect(p, ImageDelivery("late.b", "lb", wa_id, kT0 + 11));
  Expect(p, TextDelivery("late.done", "DONE", wa_id, kT0 + 13));
  EXPECT_EQ(Replies(wa_id).back(), "Great! Got 2 photos 📸\n\nAny flaws or special notes?");
  Expect(p, ImageDelivery("late.c", "lc", wa_id, kT0 + 12));
  EXPECT_EQ(PhotoCount(wa_id), 3);
  EXPECT_EQ(Replies(wa_id).back(), "Update: one more photo arrived, got 3 photos in total.");
  EXPECT_EQ(One("SELECT note FROM transitions WHERE trigger_dedupe_key = 'late.c'"), "late_photo");
  EXPECT_EQ(One("SELECT wa_timestamp FROM transitions WHERE trigger_dedupe_key = 'late.c'"),
            std::to_string(kT0 + 12));
  EXPECT_EQ(Count("SELECT count(*) FROM outbox WHERE routing_key = 'media.fetch'"), 3);
  EXPECT_EQ(One("SELECT state->>'step' FROM conversations WHERE conversation_key = $1",
                {std::string(kBusiness) + ":" + wa_id}),
            "flaws");
}

TEST_F(ProcessorTest, SubmitPublishesAFlowCompletedEventThatMatchesItsSchema) {
  const std::string wa_id = "16505557777";
  Processor p(*conn_, schemas_, *engine_, nullptr);
  Expect(p, ToSubmit(p, wa_id, "sub", 'a'));
  auto rows = conn_->Exec(
      "SELECT exchange, dedupe_key, body FROM outbox WHERE routing_key = 'flow.completed'");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->get(0, 0), "convoy.events");
  EXPECT_EQ(rows->get(0, 1), std::string(kBusiness) + ":" + wa_id + ":sub.submit:completed");
  EXPECT_TRUE(schemas_.Validate(rows->get(0, 2)).ok())
      << schemas_.Validate(rows->get(0, 2)).ToString();
  EXPECT_NE(rows->get(0, 2).find(R"("stored_name":")" + std::string(64, 'a') + ".jpg"),
            std::string::npos);
  EXPECT_NE(rows->get(0, 2).find(R"("price":"35")"), std::string::npos);
  EXPECT_NE(rows->get(0, 2).find(R"("tenant":"test")"), std::string::npos)
      << "the number's tenant, for the metrics";
  // Every send the flow wrote is a valid outbound.send (buttons included).
  auto sends = conn_->Exec("SELECT body FROM outbox WHERE routing_key = 'outbound.send'");
  ASSERT_TRUE(sends.ok());
  for (size_t i = 0; i < sends->size(); ++i) {
    EXPECT_TRUE(schemas_.Validate(sends->get(i, 0)).ok()) << sends->get(i, 0);
  }
  EXPECT_EQ(One("SELECT coalesce(flow, 'none') FROM conversations WHERE conversation_key = $1",
                {std::string(kBusiness) + ":" + wa_id}),
            "none");
}

// A number maps the flow's sink to its business's own sinks: the result goes to each of them, one
// command apiece, and a redelivered SUBMIT adds none. A number with no mapping keeps the flow's.
TEST_F(ProcessorTest, AResultGoesOnceToEachSinkItsNumberMapsTheFlowsSinkTo) {
  ASSERT_EQ(One("UPDATE numbers SET sinks = '{\"listing\": [\"acme-shop\", \"acme-hook\"]}' WHERE "
                "phone_number_id = $1 "
                "RETURNING phone_number_id",
                {std::string(kBusiness)}),
            kBusiness);
  const std::string wa_id = "16505557778";
  Processor p(*conn_, schemas_, *engine_, nullptr);
  const Delivery submit = ToSubmit(p, wa_id, "fan", 'b');
  Expect(p, submit);
  Expect(p, submit);
  auto rows = conn_->Exec(
      "SELECT body::jsonb->>'sink', dedupe_key, body::jsonb->>'result_id', body FROM outbox "
      "WHERE routing_key = 'outbound.deliver' ORDER BY id");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  const std::string key = std::string(kBusiness) + ":" + wa_id + ":fan.submit:deliver:";
  EXPECT_EQ(rows->get(0, 0), "acme-shop");
  EXPECT_EQ(rows->get(1, 0), "acme-hook");
  EXPECT_EQ(rows->get(0, 1).rfind(key, 0), 0u) << rows->get(0, 1);
  EXPECT_EQ(rows->get(0, 1).substr(rows->get(0, 1).size() - 10), ">acme-shop");
  EXPECT_EQ(rows->get(1, 1).substr(rows->get(1, 1).size() - 10), ">acme-hook");
  EXPECT_EQ(rows->get(0, 2), rows->get(1, 2)) << "one result, two sinks";
  for (size_t i = 0; i < rows->size(); ++i)
    EXPECT_TRUE(schemas_.Validate(rows->get(i, 3)).ok()) << rows->get(i, 3);

  // Without a mapping for its name, the flow's own sink.
  ASSERT_EQ(One("UPDATE numbers SET sinks = '{\"lead\": [\"acme-crm\"]}' WHERE phone_number_id = "
                "$1 RETURNING 1",
                {std::string(kBusiness)}),
            "1");
  auto same = NumberSinks(*conn_, kBusiness, "listing");
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, std::vector<std::string>{"listing"});
  auto mapped = NumberSinks(*conn_, kBusiness, "lead");
  ASSERT_TRUE(mapped.ok());
  EXPECT_EQ(*mapped, std::vector<std::string>{"acme-crm"});
}

// A batch shares one transaction: each delivery keeps its own disposition, each conversation's
// updates are applied in the order the user sent them, duplicates inside the batch count once.
TEST_F(ProcessorTest, ABatchAppliesEachConversationInSendOrderWithOneDispositionPerDelivery) {
  const std::string a = "16505551111", b = "16505552222";
  int commits = 0;
  Processor p(*conn_, schemas_, *engine_, [&] { ++commits; });
  ToPhotos(p, a);
  ToPhotos(p, b);
  commits = 0;
  Delivery invalid = TextDelivery("batch.bad", "x", a);
  invalid.body = R"({"schema":"inbound.message","version":1})";
  std::vector<Delivery> batch = {
      TextDelivery("batch.a.done", "DONE", a, kT0 + 20),  // sent last, delivered first
      ImageDelivery("batch.b.1", "mb1", b, kT0 + 11),
      invalid,
      ImageDelivery("batch.a.2", "ma2", a, kT0 + 12),
      ImageDelivery("batch.a.1", "ma1", a, kT0 + 10),
      ImageDelivery("batch.a.1", "ma1", a, kT0 + 10),  // a duplicate inside the batch
  };
  auto out = p.HandleBatch(batch);
  ASSERT_EQ(out.size(), batch.size());
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].kind, i == 2 ? Disposition::Kind::kDeadLetter : Disposition::Kind::kAck) << i;
  }
  EXPECT_EQ(commits, 1) << "one transaction for the batch";
  EXPECT_EQ(PhotoCount(a), 2);
  EXPECT_EQ(PhotoCount(b), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM transitions WHERE note = 'late_photo'"), 0)
      << "applied in send order";
  EXPECT_EQ(Replies(a).back(), "Great! Got 2 photos 📸\n\nAny flaws or special notes?");
  EXPECT_EQ(Count("SELECT count(*) FROM inbound_messages WHERE dedupe_key LIKE 'batch.%'"), 4);
}

// A delivery the database refuses (a NUL character cannot be stored in jsonb) fails the batch's
// transaction; every delivery is then applied alone: the bad one is dead-lettered with the
// database's reason, the others are applied once.
TEST_F(ProcessorTest, ADeliveryTheDatabaseRefusesIsDeadLetteredAloneAndTheRestOfTheBatchApplied) {
  const std::string a = "16505553333", b = "16505554444", c = "16505555555";
  Processor p(*conn_, schemas_, *engine_, nullptr);
  ToPhotos(p, a);
  Expect(p, TextDelivery("refused.b.sell", "SELL", b, kT0));
  Expect(p, TextDelivery("refused.b.email", "kerry@example.com", b, kT0 + 1));
  Delivery nul =
      Inbound("refused.b.desc", b, kT0 + 2, R"("type":"text","text":{"body":"shoes\u0000 $5"})");
  std::vector<Delivery> batch = {ImageDelivery("refused.a", "ra", a, kT0 + 10), nul,
                                 TextDelivery("refused.c", "SELL", c, kT0)};
  auto out = p.HandleBatch(batch);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].kind, Disposition::Kind::kAck);
  EXPECT_EQ(out[1].kind, Disposition::Kind::kDeadLetter);
  EXPECT_NE(out[1].reason.find("invalid_argument"), std::string::npos) << out[1].reason;
  EXPECT_EQ(out[2].kind, Disposition::Kind::kAck);
  EXPECT_EQ(PhotoCount(a), 1);
  EXPECT_EQ(One("SELECT state->>'step' FROM conversations WHERE conversation_key = $1",
                {std::string(kBusiness) + ":" + b}),
            "description")
      << "changes nothing";
  EXPECT_EQ(One("SELECT state->>'step' FROM conversations WHERE conversation_key = $1",
                {std::string(kBusiness) + ":" + c}),
            "email");
  EXPECT_EQ(Count("SELECT count(*) FROM inbound_messages WHERE dedupe_key = 'refused.b.desc'"), 0);
  // Delivered again (say after an operator's replay), it is refused again, still alone.
  EXPECT_EQ(p.Handle(nul).kind, Disposition::Kind::kDeadLetter);
}

// Fail fast: a flow file with a dangling `next` stops the service at start, naming the file and
// the place; nothing is consumed.
TEST(ConversationService, ABadFlowFileStopsTheStartNamingTheFileAndThePlace) {
  test::TestDatabase db("conv_badflow");
  std::string dir = ::testing::TempDir() + "/" + test::UniqueName("flows");
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  {
    std::ofstream bad(dir + "/broken.json");
    bad << R"({"schema":"flow","version":1,"name":"broken","description":"d","triggers":["GO"],"start":"a",)"
        << R"("steps":[{"id":"a","kind":"ask_text","prompt":"p","field":"f","next":"nowhere"}]})";
  }
  test::ChildProcess service;
  ASSERT_TRUE(
      service.Start({test::BinaryPath("services/conversation/convoy-conversation"),
                     "--pg_dsn=" + db.dsn(), "--amqp_url=amqp://guest:guest@127.0.0.1:1/%2f",
                     "--http_port=0", "--schema_dir=" + test::SourcePath("proto-schemas"),
                     "--migrations_dir=" + test::SourcePath("deploy/postgres"), "--migrate",
                     "--flows_dir=" + dir},
                    dir + "/service.log"));
  EXPECT_EQ(service.Wait(), 1);
  std::string log = service.Log();
  EXPECT_NE(log.find(dir + "/broken.json: /steps/0 (a)/next: no step 'nowhere'"), std::string::npos)
      << log;
  EXPECT_NE(log.find("--flows_dir"), std::string::npos) << log;
}

// Retention: the tables shrink in small batches, and an update Meta redelivers inside the 8-day
// window is still a duplicate. Unsettled commands stay, whatever their age, and a second replica
// does not prune at the same time.
TEST_F(ProcessorTest, RetentionShrinksTheTablesAndKeepsTheDedupeWindow) {
  Processor p(*conn_, schemas_, *engine_, nullptr);
  for (int i = 0; i < 6; ++i)
    Expect(p, TextDelivery("wamid.ret" + std::to_string(i), "hello",
                           "1650555990" + std::to_string(i)));
  ASSERT_EQ(Count("SELECT count(*) FROM inbound_messages"), 6);
  // Three updates processed 9 days ago, three 7 days ago; their transitions 91 days ago for the
  // first three; every outbox row published 2 days ago and settled, but one command unsettled.
  ASSERT_TRUE(conn_
                  ->Exec("UPDATE inbound_messages SET processed_at = now() - CASE WHEN dedupe_key "
                         "< 'wamid.ret3' "
                         "THEN interval '9 days' ELSE interval '7 days' END")
                  .ok());
  ASSERT_TRUE(conn_
                  ->Exec("UPDATE transitions SET at = now() - interval '91 days' WHERE "
                         "trigger_dedupe_key < 'wamid.ret3'")
                  .ok());
  ASSERT_TRUE(conn_
                  ->Exec("UPDATE outbox SET published_at = now() - interval '2 days', settled_at = "
                         "now() - interval '2 days'")
                  .ok());
  ASSERT_TRUE(
      conn_
          ->Exec("UPDATE outbox SET settled_at = NULL WHERE id = (SELECT max(id) FROM outbox WHERE "
                 "exchange = 'convoy.commands')")
          .ok());
  const int64_t outbox = Count("SELECT count(*) FROM outbox");
  // Another replica holds the lock: this one does nothing.
  auto other = PgConnection::Connect(db_.dsn());
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(
      (*other)
          ->Exec("SELECT pg_advisory_lock(hashtextextended('convoy:retention:conversation', 0))")
          .ok());
  EXPECT_EQ(PruneOnce(*conn_, "conversation", RetentionRules(8, 24, 90), 2).status().code(),
            Code::kUnavailable);
  ASSERT_TRUE(
      (*other)
          ->Exec("SELECT pg_advisory_unlock(hashtextextended('convoy:retention:conversation', 0))")
          .ok());

  auto r = PruneOnce(*conn_, "conversation", RetentionRules(8, 24, 90), 2);  // batches of 2
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["inbound_messages"], 3);
  EXPECT_EQ((*r)["transitions"], 3);
  EXPECT_EQ((*r)["outbox"], outbox - 1);
  EXPECT_EQ(Count("SELECT count(*) FROM inbound_messages"), 3);
  EXPECT_EQ(Count("SELECT count(*) FROM transitions"), 3);
  EXPECT_EQ(Count("SELECT count(*) FROM outbox WHERE settled_at IS NULL"), 1)
      << "the ledger still needs it";
  // Meta redelivers an update from 7 days ago: still a duplicate.
  const int64_t transitions = Count("SELECT count(*) FROM transitions");
  Expect(p, TextDelivery("wamid.ret4", "hello", "16505559904"));
  EXPECT_EQ(Count("SELECT count(*) FROM transitions"), transitions);
  EXPECT_EQ(Count("SELECT count(*) FROM outbox"), 1);
}

// A run's inactivity timeout, judged when the person's next message is applied, whether or not the
// sweeper came first: the due time is set as the run advances and cleared when it ends; a message
// sent after it ends the run (audited `expired`, flow.expired by `message`) and is routed fresh.
TEST_F(ProcessorTest, AMessageSentAfterTheRunsDueTimeEndsItAndIsRoutedFresh) {
  Processor p(*conn_, schemas_, *engine_, [] {});
  const std::string wa = "16505550301", key = std::string(kBusiness) + ":" + wa;
  const std::string due =
      "SELECT coalesce(extract(epoch FROM run_expires_at - now())::int::text, 'none') "
      "FROM conversations WHERE conversation_key = $1";
  // 24 h from now (the default), rounded up to a 100th of it (864 s): a lively run's messages
  // mostly leave the indexed column as it was, and their updates stay HOT.
  auto in_a_day = [&] {
    const int left = std::atoi(One(due, {key}).c_str());
    return left >= 86400 - 5 && left <= 86400 + 864;
  };
  const int64_t now = ListingThen(p, wa, 10, "");
  EXPECT_TRUE(in_a_day()) << One(due, {key});
  EXPECT_EQ(
      One("SELECT (extract(epoch FROM run_expires_at)::bigint % 864)::text FROM conversations "
          "WHERE conversation_key = $1",
          {key}),
      "0");
  ASSERT_TRUE(conn_
                  ->Exec("UPDATE conversations SET run_expires_at = now() - interval '1 minute' "
                         "WHERE conversation_key = $1",
                         {key})
                  .ok());
  Expect(p, TextDelivery("wamid.T2", "SELL", wa, now));
  auto replies = Replies(wa);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[1], replies[0])
      << "a new listing, not \"That doesn't look like an email address\"";
  auto notes =
      conn_->Exec("SELECT note FROM transitions WHERE conversation_key = $1 ORDER BY id", {key});
  ASSERT_TRUE(notes.ok() && notes->size() == 3);
  EXPECT_EQ(notes->get(0, 0) + " " + notes->get(1, 0) + " " + notes->get(2, 0),
            "started expired started");
  EXPECT_EQ(One("SELECT body::jsonb->>'ended_by' FROM outbox WHERE routing_key = 'flow.expired' "
                "AND conversation_key = $1",
                {key}),
            "message");
  EXPECT_EQ(Count("SELECT count(*) FROM outbox WHERE routing_key = 'flow.expired'"), 1);
  EXPECT_TRUE(in_a_day()) << "the new run is armed: " << One(due, {key});
  Expect(p, TextDelivery("wamid.T3", "CANCEL", wa, now + 1));
  EXPECT_EQ(One(due, {key}), "none") << "a run that ended has no due time";
}

// A message sent before the due time that is applied after it (a backlog, an outage) was sent while
// the run was alive: it answers the run, which goes on with a new due time.
TEST_F(ProcessorTest, AMessageSentBeforeTheRunsDueTimeStillAnswersItWhenAppliedLate) {
  Processor p(*conn_, schemas_, *engine_, [] {});
  const std::string wa = "16505550302", key = std::string(kBusiness) + ":" + wa;
  const int64_t now = ListingThen(p, wa, 300, "run_expires_at = now() - interval '1 minute'");
  Expect(p, TextDelivery("wamid.L2", "kerry@example.com", wa, now - 120));
  EXPECT_EQ(One("SELECT state->>'step' FROM conversations WHERE conversation_key = $1", {key}),
            "description");
  EXPECT_EQ(Count("SELECT count(*) FROM outbox WHERE routing_key = 'flow.expired'"), 0);
  EXPECT_EQ(
      One("SELECT (run_expires_at > now())::text FROM conversations WHERE conversation_key = $1",
          {key}),
      "true");
}

// Another owner answers (a human, another app): the person's messages still keep their run alive,
// so the bot finds it where it was when the conversation comes back to it.
TEST_F(ProcessorTest, APersonsMessagesKeepTheirRunAliveWhoeverOwnsTheConversation) {
  Processor p(*conn_, schemas_, *engine_, [] {});
  const std::string wa = "16505550303", key = std::string(kBusiness) + ":" + wa;
  const int64_t now =
      ListingThen(p, wa, 300, "owner = 'elsewhere', run_expires_at = now() + interval '5 seconds'");
  Expect(p, TextDelivery("wamid.O2", "are you there?", wa, now));
  EXPECT_EQ(One("SELECT (run_expires_at > now() + interval '23 hours')::text || ' ' || flow || '/' "
                "|| (state->>'step') "
                "FROM conversations WHERE conversation_key = $1",
                {key}),
            "true listing/email");
}

}  // namespace
}  // namespace convoy::conversation
