// End to end: the lead flow (deploy/flows/lead.json, --default_flow=lead) through the real
// pipeline. An enquiry is greeted once — not again when Meta redelivers, nor at a second enquiry —
// its service is detected, only what is missing is asked, and lead.qualified reaches the business
// once, signed. Flows reload on SIGHUP and POST /v1/flows/reload; a bad file keeps the running set.
// A flow's extractor (a fake chat-completions endpoint) fills what the rules miss, within a context
// budget; when it is slow the person is asked instead.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "convoy/http.h"
#include "convoy/json.h"
#include "convoy/pg.h"
#include "convoy/rapidjson_util.h"
#include "convoy/tokens.h"
#include "deliveries.h"
#include "fake_chat.h"
#include "fake_sink.h"
#include "stack.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;
using test::kAdminToken;

constexpr const char* kGreeting = "Hi \xF0\x9F\x91\x8B I'm ABCai from Al Ain Business Center.";
constexpr const char* kBusiness = "106540352242922";

class LeadE2e : public ::testing::Test {
 protected:
  void Up(const std::string& prefix, const std::string& receiver_url,
          std::vector<std::string> conversation_flags = {},
          std::vector<std::string> media_flags = {}) {
    std::string sinks = test::WriteSinks(
        R"({"schema": "sinks", "version": 1, "sinks": [)" +
        test::WebhookSink("lead", receiver_url, R"([")" + std::string(test::kOldSecret) + R"("])") +
        "]}");
    conversation_flags.push_back("--default_flow=lead");
    stack_ = std::make_unique<test::Stack>(
        prefix, std::map<std::string, int>{},
        std::map<std::string, std::vector<std::string>>{
            {"outbound", {"--sinks_file=" + sinks, "--delivery_schedule=0,1s,1s"}},
            {"conversation", conversation_flags},
            {"media", media_flags}});
  }
  // A text from wa_id with a wamid of our choosing (to post it again, as Meta redelivers).
  int Post(const std::string& wa_id, const std::string& wamid, const std::string& text,
           int64_t at) {
    return stack_->PostUpdate(
        test::MessageWebhook(kBusiness, wa_id, "Ana", wamid, at, test::TextMessage(text)));
  }
  // Sends `text` and waits for the reply that makes `count` sends to wa_id; the reply.
  std::string Say(const std::string& wa_id, const std::string& text, size_t count) {
    EXPECT_EQ(Post(wa_id, test::UniqueName("wamid.lead"), text, at_ += 2), 200);
    EXPECT_TRUE(stack_->WaitSends(wa_id, count)) << text;
    auto sent = stack_->graph.SentTexts(wa_id);
    return sent.size() >= count ? sent[count - 1] : "";
  }
  HttpResponse Api(const std::string& method, const std::string& path, const std::string& body = "",
                   const std::string& idempotency = "") {
    HttpClientRequest req;
    req.method = method;
    req.url = stack_->Url("conversation", path);
    req.body = body;
    req.headers["Authorization"] = std::string("Bearer ") + kAdminToken;
    if (!body.empty()) req.headers["Content-Type"] = "application/json";
    if (!idempotency.empty()) req.headers["Idempotency-Key"] = idempotency;
    auto r = HttpFetch(req);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : HttpResponse{};
  }
  int64_t at_ = test::NowSeconds() - 600;
  std::unique_ptr<test::Stack> stack_;
};

TEST_F(LeadE2e, AnEnquiryIsGreetedOnceAndTheQualifiedLeadReachesTheBusinessOnce) {
  fake::FakeReceiver receiver({test::Key(test::kOldSecret)});
  ASSERT_TRUE(receiver.Start().ok());
  Up("e2e_lead", receiver.url());
  const std::string ana = "971500000101";
  // The first message, delivered twice by Meta: one reply, greeted.
  const std::string first = test::UniqueName("wamid.first");
  ASSERT_EQ(Post(ana, first, "Hello", at_), 200);
  ASSERT_TRUE(stack_->WaitSends(ana, 1));
  ASSERT_EQ(Post(ana, first, "Hello", at_), 200);
  EXPECT_EQ(Say(ana, "I would like a family visa for my wife", 2),
            "May I know your full name, please?");
  EXPECT_EQ(stack_->graph.SentTexts(ana)[0],
            std::string(kGreeting) + "\n\nHow can I help you today?");
  EXPECT_EQ(Say(ana, "my name is Ana Lopez", 3), "What is your nationality?");
  EXPECT_EQ(Say(ana, "Filipina", 4),
            "What is your email address, and when is the best time to call you?");
  const std::string last = test::UniqueName("wamid.last");
  ASSERT_EQ(Post(ana, last, "ana@example.com, weekdays after 5pm", at_ += 2), 200);
  ASSERT_TRUE(stack_->WaitSends(ana, 5));
  ASSERT_EQ(Post(ana, last, "ana@example.com, weekdays after 5pm", at_), 200);  // redelivered
  EXPECT_EQ(
      stack_->graph.SentTexts(ana)[4],
      "Thank you, Ana Lopez. Our team will call you weekdays after 5pm about your family visa.");
  ASSERT_TRUE(receiver.WaitFor(1, 60s)) << stack_->services["outbound"]->process.Log();
  // The qualified lead is in the sales team's hands until an agent lets it go; then a second
  // enquiry is asked again, not greeted again.
  rapidjson::Document handed;
  handed.Parse(receiver.Requests()[0].body.c_str());
  ASSERT_TRUE(handed.IsObject() && handed["data"].HasMember("conversation"));
  const std::string conversation = handed["data"]["conversation"]["id"].GetString();
  EXPECT_EQ(Api("POST", "/v1/conversations/" + conversation + "/release").status, 200);
  EXPECT_EQ(Say(ana, "Hello again", 6), "How can I help you today?");
  ASSERT_TRUE(stack_->Drained(30s));
  EXPECT_EQ(stack_->graph.SentTexts(ana).size(), 6u)
      << "each update answered once, redeliveries not at all";

  auto requests = receiver.Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_TRUE(requests[0].verified);
  SchemaRegistry schemas;
  ASSERT_TRUE(schemas.LoadDir(test::SourcePath("proto-schemas")).ok());
  Status valid = schemas.ValidateAs("lead.qualified", 1, requests[0].body);
  EXPECT_TRUE(valid.ok()) << valid.ToString();
  rapidjson::Document body;
  body.Parse(requests[0].body.c_str());
  ASSERT_TRUE(body.IsObject());
  const auto& f = body["data"]["fields"];
  EXPECT_STREQ(body["type"].GetString(), "lead.qualified");
  EXPECT_STREQ(f["service"].GetString(), "family visa");
  EXPECT_STREQ(f["name"].GetString(), "Ana Lopez");
  EXPECT_STREQ(f["nationality"].GetString(), "Filipina");
  EXPECT_STREQ(f["email"].GetString(), "ana@example.com");
  EXPECT_STREQ(f["best_time"].GetString(), "weekdays after 5pm");
  EXPECT_STREQ(body["data"]["contact"]["wa_id"].GetString(), ana.c_str());
  int greetings = 0;
  for (const auto& t : stack_->graph.SentTexts(ana))
    greetings += t.find("ABCai") != std::string::npos;
  EXPECT_EQ(greetings, 1);
}

// People join the conversation (issue 29): a lead the flow does not understand is handed to the
// business once, with its transcript; while a person answers, each customer message reaches the
// business exactly once and in order (the first one's delivery fails once and the others wait for
// it) and the bot says nothing; an agent's message posted twice with one Idempotency-Key is sent
// once; released, the flow answers again.
TEST_F(LeadE2e, AHandedOffLeadReachesTheInboxInOrderOnceAndTheAgentsReplyGoesOnce) {
  fake::FakeReceiver receiver({test::Key(test::kOldSecret)});
  ASSERT_TRUE(receiver.Start().ok());
  Up("e2e_handoff", receiver.url());
  const std::string ana = "971500000111";
  Say(ana, "Hello", 1);
  Say(ana, "blah blah", 2);
  EXPECT_EQ(Say(ana, "qwerty zxcv", 3),
            "Thank you for your patience. A member of our team will reply to you here shortly.");
  ASSERT_TRUE(receiver.WaitFor(1, 60s)) << stack_->services["outbound"]->process.Log();
  rapidjson::Document handed;
  handed.Parse(receiver.Requests()[0].body.c_str());
  ASSERT_TRUE(handed.IsObject());
  EXPECT_STREQ(handed["type"].GetString(), "lead.handoff");
  const auto& conv = handed["data"]["conversation"];
  EXPECT_STREQ(conv["owner"].GetString(), "human");
  EXPECT_EQ(conv["messages"].Size(), 6u) << "three messages each way";
  const std::string id = conv["id"].GetString();
  // Three messages, each delivered twice by Meta in a shuffled order; the business's inbox refuses
  // the first one's delivery once.
  receiver.Script({{503, {}, 0}});
  const std::string m1 = test::UniqueName("wamid.m1"), m2 = test::UniqueName("wamid.m2"),
                    m3 = test::UniqueName("wamid.m3");
  const int64_t t = at_ += 2;
  ASSERT_EQ(Post(ana, m1, "Are you there?", t), 200);
  ASSERT_EQ(Post(ana, m2, "I need a golden visa", t + 1), 200);
  ASSERT_EQ(Post(ana, m1, "Are you there?", t), 200);
  ASSERT_EQ(Post(ana, m3, "thanks", t + 2), 200);
  ASSERT_EQ(Post(ana, m3, "thanks", t + 2), 200);
  ASSERT_EQ(Post(ana, m2, "I need a golden visa", t + 1), 200);
  ASSERT_TRUE(receiver.WaitFor(5, 60s)) << "the handoff, a refused attempt and three messages";
  ASSERT_TRUE(stack_->Drained(30s));
  std::vector<std::string> inbox;
  for (const auto& r : receiver.Requests()) {
    rapidjson::Document b;
    b.Parse(r.body.c_str());
    if (r.answered == 200 && std::string(b["type"].GetString()) == "conversation.message") {
      inbox.push_back(b["data"]["conversation"]["message"]["body"].GetString());
    }
  }
  EXPECT_EQ(inbox, (std::vector<std::string>{"Are you there?", "I need a golden visa", "thanks"}));
  EXPECT_EQ(stack_->graph.SentTexts(ana).size(), 3u) << "no bot reply while a person answers";
  // The agent answers; the same request again (a retried click) sends nothing more.
  const std::string reply = R"({"text": "Hi Ana, Sam here. Which emirate are you in?"})";
  auto sent = Api("POST", "/v1/conversations/" + id + "/messages", reply, "click-1");
  EXPECT_EQ(sent.status, 202) << sent.body;
  EXPECT_EQ(Api("POST", "/v1/conversations/" + id + "/messages", reply, "click-1").status, 200);
  ASSERT_TRUE(stack_->WaitSends(ana, 4));
  ASSERT_TRUE(stack_->Drained(30s));
  EXPECT_EQ(stack_->graph.SentTexts(ana).size(), 4u);
  EXPECT_EQ(stack_->graph.SentTexts(ana)[3], "Hi Ana, Sam here. Which emirate are you in?");
  // The inbox sees the agent's message go: conversation.message_status "sent" (Meta's answer, then
  // its status webhook: told once), for the seq the API answered.
  ASSERT_TRUE(receiver.WaitFor(6, 60s)) << "the agent's message's status";
  ASSERT_TRUE(stack_->Drained(30s));
  rapidjson::Document queued;
  queued.Parse(sent.body.c_str());
  std::vector<std::string> statuses;
  for (const auto& r : receiver.Requests()) {
    rapidjson::Document b;
    b.Parse(r.body.c_str());
    if (r.answered != 200 || std::string(b["type"].GetString()) != "conversation.message_status")
      continue;
    const auto& m = b["data"]["conversation"]["message"];
    statuses.push_back(JsonStr(m, "status") + " " + std::to_string(m["seq"].GetInt64()) + " " +
                       JsonStr(m, "author"));
    EXPECT_TRUE(r.verified);
  }
  EXPECT_EQ(statuses, (std::vector<std::string>{"sent " + std::to_string(queued["seq"].GetInt64()) +
                                                " agent:convoy_admin_token"}));
  // The transcript shows both sides, the agent's message with Meta's status.
  auto shown = Api("GET", "/v1/conversations/" + id);
  EXPECT_NE(shown.body.find("agent:convoy_admin_token"), std::string::npos) << shown.body;
  // Released: the flow answers the next message.
  EXPECT_EQ(Api("POST", "/v1/conversations/" + id + "/release").status, 200);
  EXPECT_EQ(Say(ana, "Hello again", 5), "How can I help you today?");
}

// An agent answers with a photo (issue 29: "image by uploaded media"): uploaded to convoy-media
// with the agent's token, sent once by its stored name whatever the retries, and Meta gets a signed
// link that convoy-media serves — the very bytes — to a caller with no token.
TEST_F(LeadE2e, AnAgentsPhotoIsUploadedSentOnceAndMetaCanFetchIt) {
  const std::string agent_token = "sam-agent-token-0123456789abcdef";
  const std::string tokens =
      ::testing::TempDir() + "lead_photo_tokens_" + std::to_string(::getpid()) + ".txt";
  std::ofstream(tokens) << "sam agent * " << TokenHashField(agent_token) << "\n";
  fake::FakeReceiver receiver({test::Key(test::kOldSecret)});
  ASSERT_TRUE(receiver.Start().ok());
  Up("e2e_photo", receiver.url(), {"--tokens_file=" + tokens}, {"--tokens_file=" + tokens});
  const std::string ana = "971500000112";
  Say(ana, "Hello", 1);
  Say(ana, "blah blah", 2);
  Say(ana, "qwerty zxcv", 3);  // not understood twice: handed to a person
  auto listed = Api("GET", "/v1/conversations?owner=human");
  rapidjson::Document list;
  list.Parse(listed.body.c_str());
  ASSERT_TRUE(list.IsObject() && list["conversations"].IsArray() &&
              list["conversations"].Size() == 1u)
      << listed.body;
  const std::string id = list["conversations"][0]["id"].GetString();

  const std::string photo = test::ReadFile(test::FixturePath("media/photo1.jpg"));
  HttpClientRequest upload;
  upload.method = "POST";
  upload.url = stack_->Url("media", std::string("/v1/media?phone_number_id=") + kBusiness);
  upload.body = photo;
  upload.content_type = "image/jpeg";
  upload.headers["Authorization"] = "Bearer " + agent_token;
  auto uploaded = HttpFetch(upload);
  ASSERT_TRUE(uploaded.ok()) << uploaded.status().ToString();
  ASSERT_EQ(uploaded->status, 201) << uploaded->body;
  rapidjson::Document stored;
  stored.Parse(uploaded->body.c_str());
  const std::string name = stored["media"].GetString();

  HttpClientRequest message;
  message.method = "POST";
  message.url = stack_->Url("conversation", "/v1/conversations/" + id + "/messages");
  message.body = R"({"image": {"media": ")" + name + R"(", "caption": "Our office"}})";
  message.content_type = "application/json";
  message.headers["Authorization"] = "Bearer " + agent_token;
  message.headers["Idempotency-Key"] = "photo-click-1";
  auto first = HttpFetch(message), again = HttpFetch(message);
  ASSERT_TRUE(first.ok() && again.ok());
  EXPECT_EQ(first->status, 202) << first->body;
  EXPECT_EQ(again->status, 200) << again->body;
  ASSERT_TRUE(stack_->WaitSends(ana, 4));
  ASSERT_TRUE(stack_->Drained(30s));
  const auto sent = stack_->graph.SentTexts(ana);
  ASSERT_EQ(sent.size(), 4u) << "one photo, sent once";
  const std::string prefix = "[image " + stack_->Url("media", "/media/" + name) + "?expires=";
  ASSERT_EQ(sent[3].compare(0, prefix.size(), prefix), 0) << sent[3];
  ASSERT_EQ(sent[3].substr(sent[3].size() - 12), "|Our office]");
  HttpClientRequest fetch;
  fetch.method = "GET";
  fetch.url = sent[3].substr(7, sent[3].size() - 7 - 12);
  auto fetched = HttpFetch(fetch);
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  EXPECT_EQ(fetched->status, 200) << "Meta fetches the link with no token";
  EXPECT_TRUE(fetched->body == photo) << "the very bytes the agent uploaded";
  auto shown = Api("GET", "/v1/conversations/" + id);
  rapidjson::Document conv;
  conv.Parse(shown.body.c_str());
  ASSERT_TRUE(conv.IsObject()) << shown.body;
  const auto& last = conv["messages"][conv["messages"].Size() - 1];
  EXPECT_EQ(JsonStr(last, "author") + " " + JsonStr(last, "kind") + " " + JsonStr(last, "body"),
            "agent:sam image Our office");
  std::remove(tokens.c_str());
}

// A conversation handed to a person and left without an agent's message goes back to the bot after
// --human_idle_release_seconds: what came meanwhile stays unanswered by the bot, the next message
// is the flow's.
TEST_F(LeadE2e, AHandoffNobodyAnswersGoesBackToTheBotAfterTheIdleTime) {
  fake::FakeReceiver receiver({test::Key(test::kOldSecret)});
  ASSERT_TRUE(receiver.Start().ok());
  Up("e2e_idle", receiver.url(), {"--human_idle_release_seconds=5", "--sweep_interval_seconds=1"});
  const std::string ana = "971500000112";
  Say(ana, "Hello", 1);
  EXPECT_EQ(Say(ana, "human", 2), "A member of our team will reply to you here shortly.");
  ASSERT_EQ(Post(ana, test::UniqueName("wamid.wait"), "hello? anyone?", at_ += 2), 200);
  // How many conversations a person owns, as the API lists them.
  auto humans = [&] {
    rapidjson::Document d;
    d.Parse(Api("GET", "/v1/conversations?owner=human").body.c_str());
    return d.IsObject() && d["conversations"].IsArray()
               ? static_cast<int>(d["conversations"].Size())
               : -1;
  };
  ASSERT_TRUE(test::WaitUntil([&] { return humans() == 1; }, 20s));
  ASSERT_TRUE(test::WaitUntil([&] { return humans() == 0; }, 30s)) << "still in human hands";
  ASSERT_TRUE(stack_->Drained(30s));
  EXPECT_EQ(stack_->graph.SentTexts(ana).size(), 2u)
      << "what came while a person owned it is never the bot's";
  EXPECT_EQ(Say(ana, "I need a golden visa", 3), "May I know your full name, please?");
}

// Meta's thread routing (issue 29): on a number that shares its threads with a partner app, an
// agent passes the thread with a note for the partner, and Meta's thread_control (the Graph fake)
// is called once; the conversation is the partner's then, so the customer's next message gets no
// bot reply. The agent takes it back (a second call) and answers the customer.
TEST_F(LeadE2e, AnAgentPassesTheThreadToThePartnerAppAndTakesItBack) {
  fake::FakeReceiver receiver({test::Key(test::kOldSecret)});
  ASSERT_TRUE(receiver.Start().ok());
  Up("e2e_threads", receiver.url());
  const std::string ana = "971500000121";
  EXPECT_EQ(Say(ana, "Hello", 1), std::string(kGreeting) + "\n\nHow can I help you today?");
  auto db = PgConnection::Connect(stack_->db.dsn());
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  ASSERT_TRUE(
      (*db)
          ->Exec("UPDATE numbers SET partner_app_id = '1234567890' WHERE phone_number_id = $1",
                 {std::string(kBusiness)})
          .ok());
  auto id = (*db)->Exec("SELECT id::text FROM conversations WHERE wa_id = $1", {ana});
  ASSERT_TRUE(id.ok() && id->size() == 1);
  const std::string conversation = "/v1/conversations/" + id->get(0, 0);
  auto owner = [&] {
    rapidjson::Document d;
    d.Parse(Api("GET", conversation + "?messages=0").body.c_str());
    return d.IsObject() ? JsonStr(d, "owner") : std::string("?");
  };
  auto passed = Api("POST", conversation + "/pass",
                    R"({"metadata": "Wants a golden visa; prefers English"})");
  ASSERT_EQ(passed.status, 202) << passed.body;
  ASSERT_TRUE(test::WaitUntil([&] { return owner() == "elsewhere"; }, 30s)) << owner();
  ASSERT_EQ(stack_->graph.ThreadControls().size(), 1u);
  rapidjson::Document call;
  call.Parse(stack_->graph.ThreadControls()[0].c_str());
  EXPECT_EQ(JsonText(call["body"]),
            R"({"messaging_product":"whatsapp","to":")" + ana +
                R"(","action":"pass","metadata":"Wants a golden visa; prefers English"})");
  // The partner answers now: a customer message gets nothing from the bot.
  ASSERT_EQ(Post(ana, test::UniqueName("wamid.thread"), "Is anyone there?", at_ += 2), 200);
  ASSERT_TRUE(stack_->Drained(30s));
  EXPECT_EQ(stack_->graph.SentTexts(ana).size(), 1u) << "no bot reply on a thread the partner owns";
  // Taken back by the agent, who answers.
  ASSERT_EQ(Api("POST", conversation + "/take").status, 202);
  ASSERT_TRUE(test::WaitUntil([&] { return owner() == "human"; }, 30s)) << owner();
  ASSERT_EQ(stack_->graph.ThreadControls().size(), 2u);
  call.Parse(stack_->graph.ThreadControls()[1].c_str());
  EXPECT_EQ(JsonStr(call["body"], "action"), "take");
  EXPECT_EQ(Api("POST", conversation + "/messages", R"({"text": "Hi Ana, Sam here."})").status,
            202);
  ASSERT_TRUE(stack_->WaitSends(ana, 2));
  ASSERT_TRUE(stack_->Drained(30s));
  EXPECT_EQ(stack_->graph.ThreadControlCalls(), 2u);
  EXPECT_EQ(stack_->graph.SentTexts(ana).back(), "Hi Ana, Sam here.");
}

TEST_F(LeadE2e, FlowsReloadOnSighupAndThroughTheApiAndABadFileKeepsTheRunningSet) {
  fake::FakeReceiver receiver({test::Key(test::kOldSecret)});
  ASSERT_TRUE(receiver.Start().ok());
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(::testing::TempDir()) / test::UniqueName("flows");
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(test::SourcePath("deploy/flows")))
    fs::copy_file(e.path(), dir / e.path().filename());
  Up("e2e_lead_reload", receiver.url(), {"--flows_dir=" + dir.string()});
  EXPECT_EQ(Say("971500000201", "Hello", 1),
            std::string(kGreeting) + "\n\nHow can I help you today?");
  // Mid-run when the flows change: that person goes on where they are.
  std::string lead = test::ReadFile((dir / "lead.json").string());
  const std::string from = "\"prompt\": \"How can I help you today?\"";
  ASSERT_NE(lead.find(from), std::string::npos);
  lead.replace(lead.find(from), from.size(), "\"prompt\": \"What can we do for you today?\"");
  std::ofstream(dir / "lead.json", std::ios::trunc) << lead;
  auto& conversation = stack_->services["conversation"]->process;
  conversation.Signal(SIGHUP);
  ASSERT_TRUE(test::WaitUntil(
      [&] { return conversation.Log().find("event=flows_reloaded") != std::string::npos; }, 20s))
      << conversation.Log();
  EXPECT_EQ(Say("971500000202", "Hello", 1),
            std::string(kGreeting) + "\n\nWhat can we do for you today?");
  EXPECT_EQ(Say("971500000201", "golden visa", 2), "May I know your full name, please?");
  // A bad file: refused, named, and the running set stays.
  std::ofstream(dir / "broken.json") << R"({"schema": "flow", "version": 1, "name": "broken")";
  HttpResponse refused = Api("POST", "/v1/flows/reload");
  EXPECT_EQ(refused.status, 422);
  EXPECT_NE(refused.body.find("broken.json"), std::string::npos) << refused.body;
  EXPECT_NE(refused.body.find("unchanged"), std::string::npos) << refused.body;
  EXPECT_EQ(Say("971500000203", "Hello", 1),
            std::string(kGreeting) + "\n\nWhat can we do for you today?");
  // Fixed: the API reloads it and says what runs now.
  fs::remove(dir / "broken.json");
  HttpResponse ok = Api("POST", "/v1/flows/reload");
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_NE(ok.body.find("\"name\":\"lead\""), std::string::npos) << ok.body;
  EXPECT_EQ(Api("GET", "/v1/flows").body, ok.body);
  HttpClientRequest anonymous;
  anonymous.method = "POST";
  anonymous.url = stack_->Url("conversation", "/v1/flows/reload");
  auto denied = HttpFetch(anonymous);
  ASSERT_TRUE(denied.ok());
  EXPECT_EQ(denied->status, 401);
  fs::remove_all(dir);
}

TEST_F(LeadE2e,
       TheExtractorFillsWhatTheRulesMissWithinItsContextBudgetAndWhenSlowThePersonIsAsked) {
  fake::FakeReceiver receiver({test::Key(test::kOldSecret)});
  ASSERT_TRUE(receiver.Start().ok());
  fake::FakeChat chat("test-ai-key");
  ASSERT_TRUE(chat.Start().ok());
  chat.SetScript([](const std::string& last) {
    fake::FakeChat::Answer a;
    if (last.find("trading firm") != std::string::npos)
      a.fields = {{"service", "company setup"}, {"name", "Omar Khan"}};
    if (last.find("slow") != std::string::npos) a.delay_ms = 15000;
    return a;
  });
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(::testing::TempDir()) / test::UniqueName("flows");
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(test::SourcePath("deploy/flows")))
    fs::copy_file(e.path(), dir / e.path().filename());
  std::string lead = test::ReadFile((dir / "lead.json").string());
  lead.replace(lead.find("\"default\": true"), 15, R"("default": true, "extractor": "assistant")");
  std::ofstream(dir / "lead.json", std::ios::trunc) << lead;
  const std::string extractors =
      ::testing::TempDir() + "/" + test::UniqueName("extractors") + ".json";
  std::ofstream(extractors)
      << R"({"schema": "extractors", "version": 1, "extractors": [{"name": "assistant", "url": ")" +
             chat.url() +
             R"(", "model": "test-model", "key": "test-ai-key", "timeout_seconds": 2, "allow_private": true}]})";
  constexpr int kBudget =
      60;  // the first message (28 tokens), the greeting (22) and the answer (23) do not all fit
  std::string sinks = test::WriteSinks(
      R"({"schema": "sinks", "version": 1, "sinks": [)" +
      test::WebhookSink("lead", receiver.url(), R"([")" + std::string(test::kOldSecret) + R"("])") +
      "]}");
  stack_ = std::make_unique<test::Stack>(
      "e2e_lead_ai", std::map<std::string, int>{},
      std::map<std::string, std::vector<std::string>>{
          {"outbound", {"--sinks_file=" + sinks, "--extractors_file=" + extractors}},
          {"conversation",
           {"--flows_dir=" + dir.string(), "--default_flow=lead", "--extractor_timeout_seconds=4",
            "--extractor_context_tokens=" + std::to_string(kBudget)}}});
  const std::string omar = "971500000301";
  EXPECT_EQ(Say(omar,
                "Hello there, good afternoon. I found your number on a sign outside the building "
                "near the park.",
                1),
            std::string(kGreeting) + "\n\nHow can I help you today?");
  // No keyword in it: the extractor finds the service and the name, so the nationality is next.
  EXPECT_EQ(
      Say(omar, "we would like to open a small trading firm in the free zone, I'm Omar Khan", 2),
      "What is your nationality?");
  ASSERT_EQ(chat.Requests().size(), 1u);
  EXPECT_EQ(Say(omar, "Pakistani", 3),
            "What is your email address, and when is the best time to call you?");
  EXPECT_EQ(Say(omar, "omar@example.com after 6pm", 4),
            "Thank you, Omar Khan. Our team will call you after 6pm about your company setup.");
  ASSERT_TRUE(receiver.WaitFor(1, 60s));
  rapidjson::Document body;
  body.Parse(receiver.Requests()[0].body.c_str());
  EXPECT_STREQ(body["data"]["fields"]["service"].GetString(), "company setup");
  EXPECT_STREQ(body["data"]["fields"]["name"].GetString(), "Omar Khan");

  // The context the extractor got: the newest messages, within the budget (4 + characters/4 each);
  // the long first message had to go. The table holds no more than the budget either.
  rapidjson::Document request;
  request.Parse(chat.Requests()[0].c_str());
  int tokens = 0;
  std::string context;
  for (const auto& m : request["messages"].GetArray()) {
    if (std::string(m["role"].GetString()) == "system") continue;
    const std::string content = m["content"].GetString();
    size_t chars = 0;
    for (unsigned char ch : content) chars += (ch & 0xC0) != 0x80;
    tokens += 4 + static_cast<int>((chars + 3) / 4);
    context += content + "\n";
  }
  EXPECT_LE(tokens, kBudget) << context;
  EXPECT_NE(context.find("trading firm"), std::string::npos) << context;
  EXPECT_EQ(context.find("sign outside the building"), std::string::npos)
      << "the oldest message was dropped: " << context;
  auto db = PgConnection::Connect(stack_->db.dsn());
  ASSERT_TRUE(db.ok());
  auto kept = (*db)->Exec(
      "SELECT coalesce(sum(tokens), 0), count(*) FROM conversation_context WHERE conversation_key "
      "= $1",
      {std::string(kBusiness) + ":" + omar});
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_LE(kept->get_int(0, 0), kBudget);
  EXPECT_GE(kept->get_int(0, 1), 2);

  // A slow extractor: after --extractor_timeout_seconds the person is asked in other words.
  const std::string sara = "971500000302";
  Say(sara, "Hello", 1);
  const auto asked = std::chrono::steady_clock::now();
  EXPECT_EQ(
      Say(sara, "a slow and vague question", 2),
      "Sorry, I didn't quite catch that. Could you tell me a little more about what you need?");
  const auto waited =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - asked)
          .count();
  EXPECT_GE(waited, 1);
  EXPECT_LE(waited, 15);
  chat.ReleaseDelayed();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace convoy
