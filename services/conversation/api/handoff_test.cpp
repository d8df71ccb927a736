// Integration, real PostgreSQL: people join the conversation (issue 29). A flow's handoff step or
// a customer's keyword puts the conversation in human hands inside the transaction that processed
// it; from then on the bot is silent and each customer message goes to the business's sink once,
// in order; the API lists and shows conversations with their transcript (a tenant's own alone),
// takes, releases and hands off, and sends an agent's message once per Idempotency-Key within the
// 24-hour window.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <ctime>
#include <mutex>

#include "api/api.h"
#include "api_tokens.h"
#include "convoy/json.h"
#include "convoy/rapidjson_util.h"
#include "convoy/topology.h"
#include "engine/flow.h"
#include "engine/processor.h"
#include "store/transcript.h"
#include "testsupport.h"

namespace convoy::conversation {
namespace {

using test::ApiTokens;

constexpr const char* kBusiness = "106540352242922";

class HandoffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(schemas_.LoadDir(test::SourcePath("proto-schemas")).ok());
    auto c = PgConnection::Connect(db_.dsn());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    sql_ = std::move(*c);
    ASSERT_TRUE(RunMigrations(*sql_, test::SourcePath("deploy/postgres")).ok());
    test::RegisterNumber(*sql_, kBusiness);
    auto flows = FlowSet::LoadDir(test::SourcePath("deploy/flows"), schemas_);
    ASSERT_TRUE(flows.ok()) << flows.status().ToString();
    flows_ = std::make_unique<FlowSet>(std::move(*flows));
    EngineSettings es;
    es.default_flow = "lead";
    es.handoff_keywords = {"agent", "human"};
    engine_ = std::make_unique<Engine>(*flows_, es);
    auto pc = PgConnection::Connect(db_.dsn());
    ASSERT_TRUE(pc.ok());
    processor_conn_ = std::move(*pc);
    processor_ = std::make_unique<Processor>(*processor_conn_, schemas_, *engine_, nullptr);
    api_.pg_dsn = db_.dsn();
    api_.tokens = tokens_.Open();
    api_.conversations.pg_dsn = db_.dsn();
    api_.conversations.has_step = [this](const std::string& flow, const std::string& step) {
      const Flow* f = flows_->Find(flow);
      return f != nullptr && f->Find(step) != nullptr;
    };
  }
  // A customer's text, as ingress publishes it, written `ago` seconds ago.
  void Text(const std::string& wa_id, const std::string& wamid, const std::string& text,
            int64_t ago = 60) {
    Delivery d;
    d.queue = queues::kConversationInbound;
    const std::string at = std::to_string(std::time(nullptr) - ago);
    d.body = R"({"schema":"inbound.message","version":1,"correlation_id":"corr-)" + wamid +
             R"(","received_at":"2026-12-07T00:00:00.000Z","phone_number_id":")" + kBusiness +
             R"(","wa_id":")" + wa_id + R"(","conversation_key":")" + kBusiness + ":" + wa_id +
             R"(","profile_name":"Ana","message":{"from":")" + wa_id + R"(","id":")" + wamid +
             R"(","timestamp":")" + at + R"(","type":"text","text":{"body":")" + JsonEscape(text) +
             R"("}}})";
    d.headers[headers::kDedupeKey] = wamid;
    d.headers[headers::kCorrelationId] = "corr-" + wamid;
    EXPECT_EQ(processor_->Handle(d).kind, Disposition::Kind::kAck) << text;
  }
  std::string One(const std::string& sql, const PgParams& params = {}) {
    auto r = sql_->Exec(sql, params);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && !r->empty() ? r->get(0, 0) : "";
  }
  std::vector<std::string> Column(const std::string& sql, const PgParams& params = {}) {
    auto r = sql_->Exec(sql, params);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    std::vector<std::string> out;
    for (size_t i = 0; r.ok() && i < r->size(); ++i) out.push_back(r->get(i, 0));
    return out;
  }
  static std::string Key(const std::string& wa_id) { return std::string(kBusiness) + ":" + wa_id; }
  // What the bot queued for wa_id, oldest first.
  std::vector<std::string> Replies(const std::string& wa_id) {
    return Column(
        "SELECT body::jsonb->'message'->'text'->>'body' FROM outbox WHERE routing_key = "
        "'outbound.send' AND "
        "conversation_key = $1 ORDER BY id",
        {Key(wa_id)});
  }
  // The deliveries queued for the business about wa_id's conversation: "<type> <sink>", oldest
  // first.
  std::vector<std::string> Deliveries(const std::string& wa_id) {
    return Column(
        "SELECT (body::jsonb->>'type') || ' ' || (body::jsonb->>'sink') FROM outbox WHERE "
        "routing_key = "
        "'outbound.deliver' AND conversation_key = $1 ORDER BY id",
        {Key(wa_id)});
  }
  HttpResponse Call(const std::string& method, const std::string& path,
                    const std::string& body = "",
                    const std::string& token = ApiTokens::Token(Role::kAgent, "*"),
                    const std::string& idempotency = "") {
    const size_t q = path.find('?');
    HttpRequest r = test::ApiRequest(method, path.substr(0, q), body, "Bearer " + token);
    for (size_t at = q; at != std::string::npos && at < path.size();) {
      const size_t end = std::min(path.find('&', at + 1), path.size());
      const std::string pair = path.substr(at + 1, end - at - 1);
      r.query[pair.substr(0, pair.find('='))] =
          pair.find('=') == std::string::npos ? "" : pair.substr(pair.find('=') + 1);
      at = end;
    }
    if (!idempotency.empty()) r.headers["idempotency-key"] = idempotency;
    return HandleApi(r, api_, schemas_);
  }
  // What outbound answers for a thread_control command: outbound.thread_controlled, as it publishes
  // it.
  void Controlled(const std::string& wa_id, const std::string& command, const std::string& action,
                  const std::string& outcome, const std::string& extra = "") {
    Delivery d;
    d.queue = queues::kConversationEvents;
    d.body =
        R"({"schema":"outbound.thread_controlled","version":1,"correlation_id":"corr-tc","dedupe_key":")" +
        command + R"(","conversation_key":")" + Key(wa_id) + R"(","action":")" + action +
        R"(","outcome":")" + outcome + R"(","agent":"agent-all","partner_app_id":"1234567890")" +
        extra + "}";
    d.headers[headers::kDedupeKey] = "outbound.thread_controlled:" + command;
    d.headers[headers::kCorrelationId] = "corr-tc";
    d.headers[headers::kConversationKey] = Key(wa_id);
    EXPECT_EQ(processor_->Handle(d).kind, Disposition::Kind::kAck) << d.body;
  }
  // The thread_control commands queued for wa_id, oldest first: "<action> <dedupe key>".
  std::vector<std::string> Controls(const std::string& wa_id) {
    return Column(
        "SELECT (body::jsonb->>'action') || ' ' || dedupe_key FROM outbox WHERE routing_key = "
        "'outbound.send' "
        "AND body::jsonb->>'schema' = 'outbound.thread_control' AND conversation_key = $1 ORDER BY "
        "id",
        {Key(wa_id)});
  }
  std::string IdOf(const std::string& wa_id) {
    return One("SELECT id::text FROM conversations WHERE conversation_key = $1", {Key(wa_id)});
  }

  test::TestDatabase db_{"conv_handoff"};
  std::unique_ptr<PgConnection> sql_, processor_conn_;
  SchemaRegistry schemas_;
  std::unique_ptr<FlowSet> flows_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Processor> processor_;
  ApiTokens tokens_;
  ApiSettings api_;
};

TEST_F(HandoffTest, TheLeadFlowHandsOffOnceThenEveryMessageGoesToTheInboxInOrderAndTheBotIsSilent) {
  const std::string ana = "971500000201";
  Text(ana, "wamid.h1", "Hello", 300);
  Text(ana, "wamid.h2", "blah blah", 290);
  Text(ana, "wamid.h3", "qwerty zxcv", 280);  // the second miss: the flow's handoff step
  EXPECT_EQ(One("SELECT owner || ' ' || owner_sink FROM conversations WHERE conversation_key = $1",
                {Key(ana)}),
            "human lead");
  ASSERT_EQ(Deliveries(ana), (std::vector<std::string>{"lead.handoff lead"}));
  const size_t said = Replies(ana).size();
  EXPECT_EQ(Replies(ana).back(),
            "Thank you for your patience. A member of our team will reply to you here shortly.")
      << "the bot's last words go with the handoff";
  // The handoff carries the conversation: its id and the transcript up to the last words.
  rapidjson::Document handoff;
  handoff.Parse(One("SELECT body FROM outbox WHERE routing_key = 'outbound.deliver' AND "
                    "conversation_key = $1",
                    {Key(ana)})
                    .c_str());
  ASSERT_TRUE(handoff.IsObject());
  const auto& conv = handoff["conversation"];
  EXPECT_EQ(JsonStr(conv, "id"), IdOf(ana));
  EXPECT_EQ(JsonStr(conv, "owner"), "human");
  ASSERT_TRUE(conv["messages"].IsArray());
  std::vector<std::string> authors;
  for (const auto& m : conv["messages"].GetArray())
    authors.push_back(JsonStr(m, "author") + ":" + JsonStr(m, "body").substr(0, 5));
  EXPECT_EQ(authors,
            (std::vector<std::string>{"customer:Hello", "bot:Hi \xF0\x9F", "customer:blah ",
                                      "bot:Sorry", "customer:qwert", "bot:Thank"}))
      << "customer and bot in the order said";
  // Three messages while the person answers, each delivered twice (Meta redelivers): three
  // conversation.message, in order, and no reply from the bot.
  for (int round = 0; round < 2; ++round) {
    Text(ana, "wamid.h4", "Are you there?", 200);
    Text(ana, "wamid.h5", "I need a golden visa", 190);
    Text(ana, "wamid.h6", "thanks", 180);
  }
  EXPECT_EQ(Replies(ana).size(), said) << "the bot said nothing while a person answers";
  EXPECT_EQ(Deliveries(ana),
            (std::vector<std::string>{"lead.handoff lead", "conversation.message lead",
                                      "conversation.message lead", "conversation.message lead"}));
  EXPECT_EQ(
      Column(
          "SELECT body::jsonb->'conversation'->'message'->>'body' FROM outbox WHERE routing_key = "
          "'outbound.deliver' AND body::jsonb->>'type' = 'conversation.message' AND "
          "conversation_key = $1 "
          "ORDER BY id",
          {Key(ana)}),
      (std::vector<std::string>{"Are you there?", "I need a golden visa", "thanks"}));
  EXPECT_EQ(One("SELECT count(*) FROM conversation_messages WHERE conversation_key = $1 AND "
                "direction = 'in'",
                {Key(ana)}),
            "6")
      << "every customer message in the transcript once";
  for (const std::string& body :
       Column("SELECT body FROM outbox WHERE routing_key = 'outbound.deliver'")) {
    Status valid = schemas_.ValidateAs("outbound.deliver", 1, body);
    EXPECT_TRUE(valid.ok()) << valid.ToString();
  }
}

TEST_F(HandoffTest, AKeywordHandsOffToTheConversationsSinkAndTheRunWaitsForTheRelease) {
  const std::string ana = "971500000202";
  Text(ana, "wamid.k1", "Hello", 300);
  Text(ana, "wamid.k2", "AGENT", 290);
  EXPECT_EQ(One("SELECT owner || ' ' || owner_sink FROM conversations WHERE conversation_key = $1",
                {Key(ana)}),
            "human conversations");
  EXPECT_EQ(Deliveries(ana),
            (std::vector<std::string>{"conversation.handoff_requested conversations"}));
  EXPECT_EQ(Replies(ana).back(), "A member of our team will reply to you here shortly.");
  auto human = Call("GET", "/v1/conversations?owner=human");
  EXPECT_NE(human.body.find(IdOf(ana)), std::string::npos) << human.body;
  // Released (as the agent would, through the API) to the step the run was at: the next message is
  // the flow's again.
  auto released =
      Call("POST", "/v1/conversations/" + IdOf(ana) + "/release", R"({"step": "service"})");
  ASSERT_EQ(released.status, 200) << released.body;
  const size_t before = Replies(ana).size();
  Text(ana, "wamid.k3", "I want a golden visa", 100);
  ASSERT_EQ(Replies(ana).size(), before + 1);
  EXPECT_EQ(Replies(ana).back(), "May I know your full name, please?");
  EXPECT_EQ(
      Call("POST", "/v1/conversations/" + IdOf(ana) + "/release", R"({"step": "nowhere"})").status,
      422);
}

TEST_F(HandoffTest, TheApiListsAndShowsATenantsOwnConversationsAndAViewerSeesThemMasked) {
  const std::string ana = "971500000203";
  Text(ana, "wamid.a1", "Hello", 120);
  const std::string id = IdOf(ana);
  auto shown = Call("GET", "/v1/conversations/" + id);
  ASSERT_EQ(shown.status, 200) << shown.body;
  rapidjson::Document d;
  d.Parse(shown.body.c_str());
  EXPECT_EQ(JsonStr(d, "wa_id"), ana);
  EXPECT_EQ(JsonStr(d, "owner"), "bot");
  EXPECT_TRUE(d["window_open"].IsTrue());
  ASSERT_EQ(d["messages"].Size(), 2u);
  EXPECT_EQ(JsonStr(d["messages"][0], "body"), "Hello");
  EXPECT_EQ(JsonStr(d["messages"][1], "status"), "queued") << "outbound has not claimed it yet";
  auto viewer = Call("GET", "/v1/conversations/" + id, "", ApiTokens::Token(Role::kViewer, "*"));
  EXPECT_EQ(viewer.body.find(ana), std::string::npos) << viewer.body;
  EXPECT_EQ(viewer.body.find("\"Hello\""), std::string::npos)
      << "what was said is masked for a viewer";
  // Another tenant's token: not found, listed nowhere, and nothing it can do.
  const std::string acme = ApiTokens::Token(Role::kAgent, "acme");
  EXPECT_EQ(Call("GET", "/v1/conversations/" + id, "", acme).status, 404);
  EXPECT_EQ(Call("GET", "/v1/conversations", "", acme).body, "{\"conversations\":[]}\n");
  for (const char* action : {"/take", "/release", "/handoff"}) {
    EXPECT_EQ(Call("POST", "/v1/conversations/" + id + action, "", acme).status, 404) << action;
  }
  EXPECT_EQ(Call("POST", "/v1/conversations/" + id + "/messages", R"({"text": "hi"})", acme).status,
            404);
  EXPECT_EQ(One("SELECT owner FROM conversations WHERE id = $1::uuid", {id}), "bot")
      << "acme changed nothing";
  EXPECT_EQ(Call("GET", "/v1/conversations/not-a-uuid").status, 404);
  // Pages: newest first, the cursor moving on without repeating.
  for (int i = 0; i < 5; ++i)
    Text("97150000030" + std::to_string(i), "wamid.p" + std::to_string(i), "Hi", 100 - i);
  std::vector<std::string> seen;
  std::string cursor;
  for (int page = 0; page < 5; ++page) {
    auto list =
        Call("GET", "/v1/conversations?limit=2" + (cursor.empty() ? "" : "&cursor=" + cursor));
    ASSERT_EQ(list.status, 200) << list.body;
    rapidjson::Document l;
    l.Parse(list.body.c_str());
    for (const auto& c : l["conversations"].GetArray()) seen.push_back(JsonStr(c, "id"));
    if (!l.HasMember("next_cursor")) break;
    cursor = JsonStr(l, "next_cursor");
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen.size(), 6u);
  EXPECT_EQ(std::unique(seen.begin(), seen.end()), seen.end()) << "no conversation on two pages";
  EXPECT_EQ(Call("GET", "/v1/conversations?owner=robot").status, 400);
  EXPECT_EQ(Call("GET", "/v1/conversations?cursor=abc").status, 400);
  EXPECT_NE(Call("GET", "/v1/conversations?owner=human").body.find("[]"), std::string::npos);
}

TEST_F(HandoffTest, AnAgentsMessageIsQueuedOncePerIdempotencyKeyAndOnlyInsideTheWindow) {
  const std::string ana = "971500000204";
  Text(ana, "wamid.m1", "Hello", 600);
  const std::string id = IdOf(ana);
  const std::string path = "/v1/conversations/" + id + "/messages";
  auto first = Call("POST", path, R"({"text": "Hi Ana, this is Sam from the team."})",
                    ApiTokens::Token(Role::kAgent, "*"), "key-1");
  ASSERT_EQ(first.status, 202) << first.body;
  auto again = Call("POST", path, R"({"text": "Hi Ana, this is Sam from the team."})",
                    ApiTokens::Token(Role::kAgent, "*"), "key-1");
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_NE(again.body.find("\"duplicate\":true"), std::string::npos);
  EXPECT_EQ(One("SELECT count(*) FROM outbox WHERE routing_key = 'outbound.send' AND "
                "body::jsonb->>'author' = "
                "'agent:agent-all'"),
            "1");
  EXPECT_EQ(One("SELECT owner || ' ' || owner_agent FROM conversations WHERE id = $1::uuid", {id}),
            "human agent-all")
      << "an agent who writes owns the conversation";
  // While human: the customer's next message gets no bot reply.
  const size_t replies = Replies(ana).size();
  Text(ana, "wamid.m2", "Thanks Sam", 500);
  EXPECT_EQ(Replies(ana).size(), replies);
  // Bad input changes nothing.
  EXPECT_EQ(Call("POST", path, R"({"text": ""})").status, 400);
  EXPECT_EQ(
      Call("POST", path, R"({"text": "a", "template": {"name": "x", "language": "en"}})").status,
      400);
  EXPECT_EQ(Call("POST", path, "not json").status, 400);
  EXPECT_EQ(Call("POST", path, R"({"text": "hi"})", ApiTokens::Token(Role::kViewer, "*")).status,
            403);
  // The window closed: a text is refused, naming the approved templates that could reopen it.
  ASSERT_TRUE(sql_->Exec("UPDATE conversations SET last_inbound_at = now() - interval '25 hours' "
                         "WHERE id = $1::uuid",
                         {id})
                  .ok());
  ASSERT_TRUE(
      sql_->Exec("INSERT INTO templates (waba_id, name, language, status, category, source) VALUES "
                 "('102290129340398', 'follow_up', 'en_US', 'APPROVED', 'UTILITY', 'sync'), "
                 "('102290129340398', 'promo', 'en_US', 'PAUSED', 'MARKETING', 'sync')")
          .ok());
  auto closed = Call("POST", path, R"({"text": "Are you still interested?"})");
  EXPECT_EQ(closed.status, 422) << closed.body;
  EXPECT_NE(closed.body.find("window_closed"), std::string::npos);
  EXPECT_NE(closed.body.find("follow_up"), std::string::npos);
  EXPECT_EQ(closed.body.find("promo"), std::string::npos) << "only approved templates are offered";
  // The conversation names them too, so the console offers them in place of a text.
  rapidjson::Document shown;
  shown.Parse(Call("GET", "/v1/conversations/" + id).body.c_str());
  const auto& offered = JsonMember(shown, "templates");
  ASSERT_TRUE(offered.IsArray());
  ASSERT_EQ(offered.Size(), 1u) << "only approved templates are offered";
  EXPECT_EQ(JsonStr(offered[0], "name"), "follow_up");
  EXPECT_EQ(JsonStr(offered[0], "language"), "en_US");
  auto tpl =
      Call("POST", path,
           R"({"template": {"name": "follow_up", "language": "en_US", "parameters": ["Ana"]}})");
  EXPECT_EQ(tpl.status, 202) << tpl.body;
  EXPECT_EQ(One("SELECT count(*) FROM outbox WHERE routing_key = 'outbound.send' AND "
                "body::jsonb->>'author' = "
                "'agent:agent-all'"),
            "2");
}

// An agent's photo (issue 29): by the name convoy-media gave it, only a file this conversation's
// number brought or an agent uploaded for it — never another number's — and, being free-form, only
// inside the window. The command names the stored file (outbound makes it a signed link); the
// transcript names it by its media_objects key, as a customer's photo.
TEST_F(HandoffTest, AnAgentsPhotoIsOneOfItsNumbersFilesAndGoesByItsStoredName) {
  const std::string ana = "971500000205", other = "106540352242999";
  test::RegisterNumber(*sql_, other, "globex");
  Text(ana, "wamid.p1", "Hello", 600);
  const std::string id = IdOf(ana), path = "/v1/conversations/" + id + "/messages";
  const std::string mine(64, 'a'), theirs(64, 'b');
  ASSERT_TRUE(sql_->Exec("INSERT INTO media_objects (media_id, stored_name, sha256, size, "
                         "mime_type, phone_number_id) VALUES "
                         "('upload:' || $1 || ':' || $3, $1 || '.jpg', $1, 10, 'image/jpeg', $3), "
                         "('meta-media-9', $2 || '.jpg', $2, 10, 'image/jpeg', $4)",
                         {mine, theirs, kBusiness, other})
                  .ok());
  const auto queued = [&] {
    return Column(
        "SELECT body::jsonb->'message'->>'type' || ' ' || (body::jsonb->'message'->'image')::text "
        "FROM outbox "
        "WHERE routing_key = 'outbound.send' AND body::jsonb->>'author' = 'agent:agent-all' ORDER "
        "BY id");
  };
  auto another = Call("POST", path, R"({"image": {"media": ")" + theirs + R"(.jpg"}})");
  EXPECT_EQ(another.status, 422) << "another number's file, though it exists";
  EXPECT_NE(another.body.find("unknown_media"), std::string::npos) << another.body;
  EXPECT_EQ(
      Call("POST", path, R"({"image": {"media": ")" + std::string(64, 'c') + R"(.jpg"}})").status,
      422);
  for (const std::string& bad : std::vector<std::string>{
           R"({"image": {"media": "../../etc/passwd"}})",
           R"({"image": {"media": ")" + mine + R"(.pdf"}})",
           R"({"image": {"media": ")" + mine + R"(.jpg", "caption": 7}})", R"({"image": "x"})",
           R"({"image": {"media": ")" + mine + R"(.jpg"}, "text": "hi"})"}) {
    EXPECT_EQ(Call("POST", path, bad).status, 400) << bad;
  }
  EXPECT_TRUE(queued().empty()) << "nothing refused was queued";
  auto sent =
      Call("POST", path, R"({"image": {"media": ")" + mine + R"(.jpg", "caption": "Our office"}})",
           ApiTokens::Token(Role::kAgent, "*"), "photo-1");
  ASSERT_EQ(sent.status, 202) << sent.body;
  EXPECT_EQ(
      Call("POST", path, R"({"image": {"media": ")" + mine + R"(.jpg", "caption": "Our office"}})",
           ApiTokens::Token(Role::kAgent, "*"), "photo-1")
          .status,
      200);
  rapidjson::Document image;
  ASSERT_EQ(queued().size(), 1u);
  image.Parse(queued()[0].substr(6).c_str());
  ASSERT_TRUE(image.IsObject()) << queued()[0];
  EXPECT_EQ(queued()[0].substr(0, 5), "image");
  EXPECT_EQ(JsonStr(image, "media"), mine + ".jpg");
  EXPECT_EQ(JsonStr(image, "caption"), "Our office");
  EXPECT_EQ(One("SELECT kind || ' ' || media_id || ' ' || body FROM conversation_messages WHERE "
                "conversation_key = $1 AND "
                "author = 'agent:agent-all'",
                {Key(ana)}),
            "image upload:" + mine + ":" + kBusiness + " Our office");
  // Free-form: outside the window it is refused like a text.
  ASSERT_TRUE(sql_->Exec("UPDATE conversations SET last_inbound_at = now() - interval '25 hours' "
                         "WHERE id = $1::uuid",
                         {id})
                  .ok());
  auto closed = Call("POST", path, R"({"image": {"media": ")" + mine + R"(.jpg"}})");
  EXPECT_EQ(closed.status, 422);
  EXPECT_NE(closed.body.find("window_closed"), std::string::npos) << closed.body;
  EXPECT_EQ(queued().size(), 1u);
}

// The console shows a transcript's photos (issue 30): to a caller who sees personal data, each
// photo the conversation's own number stored is named and, with photo links set, linked for a
// short while; a viewer gets neither, a photo another number's media holds is never linked, and
// one not stored yet is only a media id.
TEST_F(HandoffTest, ATranscriptsPhotosAreNamedAndLinkedForThoseWhoSeeContent) {
  const std::string ana = "971500000208", other = "106540352242998";
  test::RegisterNumber(*sql_, other, "globex");
  Text(ana, "wamid.ph1", "Hello", 600);
  const std::string id = IdOf(ana), mine(64, 'd'), agents(64, 'e'), theirs(64, 'f');
  ASSERT_TRUE(sql_->Exec("INSERT INTO media_objects (media_id, stored_name, sha256, size, "
                         "mime_type, phone_number_id) VALUES "
                         "('meta-mine', $1 || '.jpg', $1, 10, 'image/jpeg', $4), "
                         "('upload:' || $2 || ':' || $4, $2 || '.png', $2, 10, 'image/png', $4), "
                         "('meta-theirs', $3 || '.jpg', $3, 10, 'image/jpeg', $5)",
                         {mine, agents, theirs, kBusiness, other})
                  .ok());
  for (const auto& [media, dedupe] :
       std::vector<std::pair<std::string, std::string>>{{"meta-mine", "wamid.ph2"},
                                                        {"meta-theirs", "wamid.ph3"},
                                                        {"meta-not-yet", "wamid.ph4"}}) {
    TranscriptMessage m;
    m.kind = "image";
    m.body = "caption " + media;
    m.media_id = media;
    m.dedupe_key = dedupe;
    ASSERT_TRUE(RecordMessage(*sql_, Key(ana), m).ok());
  }
  ASSERT_EQ(Call("POST", "/v1/conversations/" + id + "/messages",
                 R"({"image": {"media": ")" + agents + R"(.png"}})")
                .status,
            202);
  // "<media_id> <photo> <photo_url>" of each image in the transcript, oldest first.
  const auto photos = [&](const std::string& token) {
    auto shown = Call("GET", "/v1/conversations/" + id, "", token);
    EXPECT_EQ(shown.status, 200) << shown.body;
    rapidjson::Document d;
    d.Parse(shown.body.c_str());
    std::vector<std::string> out;
    const auto& messages = JsonMember(d, "messages");
    for (rapidjson::SizeType i = 0; messages.IsArray() && i < messages.Size(); ++i) {
      if (JsonStr(messages[i], "kind") != "image") continue;
      out.push_back(JsonStr(messages[i], "media_id") + " " + JsonStr(messages[i], "photo") + " " +
                    JsonStr(messages[i], "photo_url"));
    }
    return out;
  };
  const std::string agent = ApiTokens::Token(Role::kAgent, "*"),
                    viewer = ApiTokens::Token(Role::kViewer, "*");
  const std::string upload = "upload:" + agents + ":" + kBusiness;
  EXPECT_EQ(photos(agent),
            (std::vector<std::string>{"meta-mine " + mine + ".jpg ", "meta-theirs  ",
                                      "meta-not-yet  ", upload + " " + agents + ".png "}))
      << "without photo links: named, not linked";
  api_.conversations.photo_links =
      PhotoLinkSettings{"http://media.example:8082", "link-secret", std::chrono::seconds(900),
                        [] { return int64_t{1800000000}; }};
  const auto linked = photos(agent);
  ASSERT_EQ(linked.size(), 4u);
  const std::string link =
      "http://media.example:8082/media/" + mine + ".jpg?expires=1800000900&sig=";
  EXPECT_EQ(linked[0].substr(0, ("meta-mine " + mine + ".jpg " + link).size()),
            "meta-mine " + mine + ".jpg " + link);
  EXPECT_EQ(linked[1], "meta-theirs  ") << "another number's file is never linked";
  EXPECT_EQ(linked[2], "meta-not-yet  ");
  EXPECT_NE(linked[3].find("/media/" + agents + ".png?expires="), std::string::npos) << linked[3];
  for (const auto& p : photos(viewer))
    EXPECT_EQ(p.find(".jpg"), std::string::npos) << "a viewer sees no photo: " << p;
  for (const auto& p : photos(viewer))
    EXPECT_EQ(p.find(".png"), std::string::npos) << "a viewer sees no photo: " << p;
  EXPECT_EQ(photos(viewer).size(), 4u);
}

// The console uploads an agent's photo on its own origin (issue 30): POST /v1/media goes on to
// convoy-media as it came — query, bytes, Content-Type and the caller's Authorization — and media's
// answer comes back; media checks the token again. A viewer's upload never leaves this service,
// an unconfigured media is a clear 503, and no other route takes a body larger than 1 MiB.
TEST_F(HandoffTest, APhotoUploadIsForwardedToMediaWithTheCallersToken) {
  struct Seen {
    std::mutex mu;
    std::vector<HttpRequest> requests;
  };
  auto seen = std::make_shared<Seen>();
  HttpServer media({"127.0.0.1", 0, 8 << 20});
  media.Route("POST", "/v1/media", [seen](const HttpRequest& r) {
    std::lock_guard<std::mutex> lock(seen->mu);
    seen->requests.push_back(r);
    return HttpResponse{
        201, "application/json", R"({"media":")" + std::string(64, 'a') + R"(.jpg"})", {}};
  });
  ASSERT_TRUE(media.Start().ok());
  const std::string photo = std::string("\xFF\xD8\xFF\xE0", 4) + std::string(2 << 20, '\0') + "end";
  const auto upload = [&](const std::string& token, const std::string& body,
                          const std::string& path) {
    HttpRequest r = test::ApiRequest("POST", path, body, "Bearer " + token);
    r.query["phone_number_id"] = kBusiness;
    r.headers["content-type"] = "image/jpeg";
    return HandleApi(r, api_, schemas_);
  };
  const std::string agent = ApiTokens::Token(Role::kAgent, "*");
  auto unset = upload(agent, photo, "/v1/media");
  EXPECT_EQ(unset.status, 503) << unset.body;
  EXPECT_NE(unset.body.find("--media_api_url"), std::string::npos) << unset.body;
  api_.media_api_url = "http://127.0.0.1:" + std::to_string(media.port());
  EXPECT_EQ(upload(ApiTokens::Token(Role::kViewer, "*"), photo, "/v1/media").status, 403);
  EXPECT_EQ(upload("not-a-token", photo, "/v1/media").status, 401);
  {
    std::lock_guard<std::mutex> lock(seen->mu);
    EXPECT_TRUE(seen->requests.empty()) << "a refused upload never reaches media";
  }
  auto sent = upload(agent, photo, "/v1/media");
  ASSERT_EQ(sent.status, 201) << sent.body;
  EXPECT_EQ(sent.body.rfind(R"({"media":")" + std::string(64, 'a') + R"(.jpg"})", 0), 0u)
      << "media's answer, as it came";
  {
    std::lock_guard<std::mutex> lock(seen->mu);
    ASSERT_EQ(seen->requests.size(), 1u);
    const HttpRequest& got = seen->requests[0];
    EXPECT_EQ(got.body, photo) << "the bytes, all of them";
    EXPECT_EQ(got.Header("authorization"), "Bearer " + agent);
    EXPECT_EQ(got.Header("content-type"), "image/jpeg");
    EXPECT_EQ(got.query.at("phone_number_id"), kBusiness);
  }
  // A JSON route refuses a photo-sized body before it is parsed.
  Text("971500000209", "wamid.u1", "Hello", 60);
  auto big = upload(agent, "{\"text\": \"" + std::string(2 << 20, 'x') + "\"}",
                    "/v1/conversations/" + IdOf("971500000209") + "/messages");
  EXPECT_EQ(big.status, 413) << big.body;
  EXPECT_EQ(One("SELECT count(*) FROM outbox WHERE routing_key = 'outbound.send' AND "
                "body::jsonb->>'author' LIKE 'agent:%'"),
            "0");
  // Uploads are writes: each is in the audit log, the refused one too.
  EXPECT_EQ(One("SELECT string_agg(status::text, ',' ORDER BY id) FROM audit_log WHERE route = "
                "'/v1/media'"),
            "503,403,201");
}

TEST_F(HandoffTest, AConversationLeftInHumanHandsGoesBackToTheBotAfterTheIdleTime) {
  const std::string ana = "971500000205", bob = "971500000206";
  Text(ana, "wamid.i1", "agent", 300);
  Text(bob, "wamid.i2", "human", 300);
  ASSERT_EQ(Call("POST", "/v1/conversations/" + IdOf(bob) + "/messages", R"({"text": "Hello Bob"})")
                .status,
            202);
  // Ana's handoff is an hour old with no agent message; Bob's agent wrote just now.
  ASSERT_TRUE(sql_->Exec("UPDATE conversations SET owner_since = now() - interval '1 hour'").ok());
  auto released = ReleaseIdleHumans(*sql_, 1800);
  ASSERT_TRUE(released.ok()) << released.status().ToString();
  EXPECT_EQ(*released, 1);
  EXPECT_EQ(One("SELECT owner FROM conversations WHERE conversation_key = $1", {Key(ana)}), "bot");
  EXPECT_EQ(One("SELECT owner FROM conversations WHERE conversation_key = $1", {Key(bob)}),
            "human");
  EXPECT_EQ(One("SELECT note FROM transitions WHERE conversation_key = $1 ORDER BY id DESC LIMIT 1",
                {Key(ana)}),
            "released: no agent message for 1800 s");
  // Released, the next message is the flow's.
  const size_t before = Replies(ana).size();
  Text(ana, "wamid.i3", "Hello again", 10);
  EXPECT_EQ(Replies(ana).size(), before + 1);
}

// Meta's thread control: on a number that shares its threads with a partner app, an agent passes
// the thread (one command, kept in the outbox with the conversation's sends) and the owner follows
// outbound's answer; while the pass is on its way the bot and the agents are silent; a take of a
// thread another app owns makes the agent its owner once Meta did it. Without a partner app, or
// with bad input, the routes answer a clear error and change nothing.
TEST_F(HandoffTest, PassAndTakeMoveTheThreadThroughMetasThreadControlAndTheOwnerFollowsTheOutcome) {
  const std::string ana = "971500000207";
  Text(ana, "wamid.t1", "Hello", 300);
  const std::string id = IdOf(ana), pass = "/v1/conversations/" + id + "/pass";
  auto no_partner = Call("POST", pass, R"({"metadata": "VIP"})");
  EXPECT_EQ(no_partner.status, 409) << no_partner.body;
  EXPECT_NE(no_partner.body.find("no_partner_app"), std::string::npos) << no_partner.body;
  ASSERT_TRUE(
      sql_->Exec("UPDATE numbers SET partner_app_id = '1234567890' WHERE phone_number_id = $1",
                 {kBusiness})
          .ok());
  EXPECT_EQ(Call("POST", pass, R"({"metadata": 7})").status, 400);
  EXPECT_EQ(Call("POST", pass, R"({"to": "somewhere"})").status, 400);
  EXPECT_EQ(Call("POST", pass, "{\"metadata\": \"" + std::string(2001, 'x') + "\"}").status, 400);
  EXPECT_EQ(Call("POST", pass, "{}", ApiTokens::Token(Role::kViewer, "*")).status, 403);
  EXPECT_TRUE(Controls(ana).empty()) << "bad input changed nothing";
  auto passed = Call("POST", pass, R"({"metadata": "VIP: wants a golden visa", "to": "partner"})");
  ASSERT_EQ(passed.status, 202) << passed.body;
  ASSERT_EQ(Controls(ana).size(), 1u);
  const std::string command = Controls(ana)[0].substr(5);
  rapidjson::Document body;
  body.Parse(One("SELECT body FROM outbox WHERE dedupe_key = $1", {command}).c_str());
  EXPECT_TRUE(schemas_.Validate(JsonText(body)).ok()) << JsonText(body);
  EXPECT_EQ(JsonStr(body, "to"), ana);
  EXPECT_EQ(JsonStr(body, "metadata"), "VIP: wants a golden visa");
  EXPECT_EQ(JsonStr(body, "partner_app_id"), "1234567890");
  // On its way: one at a time, no agent message, and the bot says nothing.
  EXPECT_EQ(Call("POST", pass, "{}").status, 409);
  auto message = Call("POST", "/v1/conversations/" + id + "/messages", R"({"text": "Hi"})");
  EXPECT_EQ(message.status, 409) << message.body;
  EXPECT_NE(message.body.find("thread_control_pending"), std::string::npos);
  const size_t said = Replies(ana).size();
  Text(ana, "wamid.t2", "I want a golden visa", 200);
  EXPECT_EQ(Replies(ana).size(), said) << "no bot reply while the pass is on its way";
  EXPECT_EQ(One("SELECT owner FROM conversations WHERE id = $1::uuid", {id}), "bot")
      << "until Meta did it";
  // Done: the thread is the partner's; the same answer again changes nothing more.
  Controlled(ana, command, "pass", "done");
  Controlled(ana, command, "pass", "done");
  EXPECT_EQ(One("SELECT owner || ' ' || coalesce(thread_control, '-') FROM conversations WHERE id "
                "= $1::uuid",
                {id}),
            "elsewhere -");
  EXPECT_EQ(Column("SELECT note FROM transitions WHERE conversation_key = $1 AND note LIKE "
                   "'thread_control %' ORDER BY id",
                   {Key(ana)}),
            (std::vector<std::string>{"thread_control pass asked by agent-all",
                                      "thread_control pass done"}));
  EXPECT_EQ(Call("POST", pass, "{}").status, 409) << "not convoy's to pass";
  // Taken back: a take command; refused by Meta, the thread stays the partner's; done, the agent
  // owns it.
  auto take =
      Call("POST", "/v1/conversations/" + id + "/take", R"({"metadata": "back to the team"})");
  ASSERT_EQ(take.status, 202) << take.body;
  ASSERT_EQ(Controls(ana).size(), 2u);
  const std::string refused = Controls(ana)[1].substr(5);
  Controlled(ana, refused, "take", "failed",
             R"(,"code":2494191,"reason":"graph 2494191: not permitted")");
  EXPECT_EQ(One("SELECT owner FROM conversations WHERE id = $1::uuid", {id}), "elsewhere");
  ASSERT_EQ(Call("POST", "/v1/conversations/" + id + "/take").status, 202);
  const std::string taken = Controls(ana)[2].substr(5);
  Controlled(ana, taken, "take", "done");
  EXPECT_EQ(One("SELECT owner || ' ' || owner_agent || ' ' || owner_sink FROM conversations WHERE "
                "id = $1::uuid",
                {id}),
            "human agent-all conversations");
  EXPECT_EQ(Call("POST", "/v1/conversations/" + id + "/messages", R"({"text": "Hi Ana, Sam here"})")
                .status,
            202);
  // A pass Meta may or may not have made (no answer): convoy stays silent rather than barge in.
  ASSERT_EQ(Call("POST", pass, R"({"to": "ai_agent"})").status, 202);
  const std::string unknown = Controls(ana)[3].substr(5);
  EXPECT_EQ(One("SELECT body::jsonb->>'target_role' FROM outbox WHERE dedupe_key = $1", {unknown}),
            "ai_agent");
  Controlled(ana, unknown, "pass", "unknown");
  EXPECT_EQ(One("SELECT owner FROM conversations WHERE id = $1::uuid", {id}), "elsewhere");
}

// The delivery statuses of an agent's message reach the business's sink as
// conversation.message_status: once per status though outbound tells one again, never a status
// before the last one told, and nothing for a bot's reply.
TEST_F(HandoffTest, AnAgentsMessageStatusesReachTheSinkOnceEachAndNeverBackwards) {
  const std::string ana = "971500000208";
  Text(ana, "wamid.s1", "Hello", 300);
  const std::string id = IdOf(ana);
  auto sent =
      Call("POST", "/v1/conversations/" + id + "/messages", R"({"text": "Hi Ana, Sam here"})",
           ApiTokens::Token(Role::kAgent, "*"), "status-1");
  ASSERT_EQ(sent.status, 202) << sent.body;
  rapidjson::Document answer;
  answer.Parse(sent.body.c_str());
  const int64_t seq = answer["seq"].GetInt64();
  const std::string send =
      One("SELECT dedupe_key FROM conversation_messages WHERE seq = $1", {std::to_string(seq)});
  const std::string bot =
      One("SELECT dedupe_key FROM conversation_messages WHERE conversation_key = $1 AND author = "
          "'bot' LIMIT 1",
          {Key(ana)});
  auto changed = [&](const std::string& key, const std::string& status, const std::string& author,
                     int n) {
    Delivery d;
    d.queue = queues::kConversationEvents;
    d.body =
        R"({"schema":"outbound.status_changed","version":1,"correlation_id":"corr-s","dedupe_key":")" +
        key + R"(","conversation_key":")" + Key(ana) + R"(","status":")" + status +
        R"(","author":")" + author + R"(","wamid":"wamid.OUT1","at":)" +
        std::to_string(1765000000 + n) + "}";
    // outbound's key per status; a status told again comes under the same key, or (after a
    // redelivery of the webhook) under another delivery of it
    d.headers[headers::kDedupeKey] =
        "outbound.status_changed:" + key + ":" + status + (n > 10 ? ":again" : "");
    d.headers[headers::kConversationKey] = Key(ana);
    EXPECT_EQ(processor_->Handle(d).kind, Disposition::Kind::kAck) << d.body;
  };
  changed(send, "sent", "agent:agent-all", 1);
  changed(send, "sent", "agent:agent-all", 1);   // the same event again
  changed(send, "sent", "agent:agent-all", 11);  // told again by outbound
  changed(send, "read", "agent:agent-all", 3);
  changed(send, "delivered", "agent:agent-all", 2);  // late: read was told already
  changed(bot, "read", "agent:agent-all", 4);        // not an agent's message in the transcript
  auto statuses = Column(
      "SELECT body::jsonb->'conversation'->'message'->>'status' FROM outbox WHERE routing_key = "
      "'outbound.deliver' AND body::jsonb->>'type' = 'conversation.message_status' ORDER BY id");
  EXPECT_EQ(statuses, (std::vector<std::string>{"sent", "read"}));
  rapidjson::Document told;
  told.Parse(One("SELECT body FROM outbox WHERE routing_key = 'outbound.deliver' AND "
                 "body::jsonb->>'type' = "
                 "'conversation.message_status' ORDER BY id LIMIT 1")
                 .c_str());
  ASSERT_TRUE(told.IsObject());
  EXPECT_TRUE(schemas_.ValidateAs("outbound.deliver", 1, JsonText(told)).ok());
  EXPECT_EQ(JsonStr(told, "sink"), "conversations")
      << "the conversation's sink, as its customer messages";
  EXPECT_EQ(JsonStr(told["conversation"], "id"), id);
  EXPECT_EQ(told["conversation"]["message"]["seq"].GetInt64(), seq);
  EXPECT_EQ(JsonStr(told["conversation"]["message"], "author"), "agent:agent-all");
  EXPECT_EQ(JsonStr(told["conversation"]["message"], "wamid"), "wamid.OUT1");
  EXPECT_EQ(JsonStr(told, "result_id"), Key(ana) + ":" + send + ":status:sent");
}

// The console's search: any part of the customer's number (written as people write it) or BSUID,
// or of anything said; LIKE's wildcards are plain characters; a viewer, who sees these masked,
// cannot search them.
TEST_F(HandoffTest, TheListFindsAConversationByPartOfItsNumberOrWhatWasSaid) {
  Text("971500001234", "wamid.search1", "I need a golden visa");
  Text("971500005678", "wamid.search2", "my name is Zed, 100% sure");
  auto ids = [&](const std::string& q) {
    auto r = Call("GET", "/v1/conversations?q=" + q);
    EXPECT_EQ(r.status, 200) << q << " " << r.body;
    std::vector<std::string> found;
    for (const std::string wa : {"971500001234", "971500005678"}) {
      if (r.body.find(wa) != std::string::npos) found.push_back(wa.substr(8));
    }
    return found;
  };
  EXPECT_EQ(ids("5678"), (std::vector<std::string>{"5678"}));
  EXPECT_EQ(ids("+971 50 000 1234"), (std::vector<std::string>{"1234"}));
  EXPECT_EQ(ids("GOLDEN"), (std::vector<std::string>{"1234"}));
  EXPECT_EQ(ids("Zed, 100%"), (std::vector<std::string>{"5678"}));
  EXPECT_EQ(ids("9715000"), (std::vector<std::string>{"1234", "5678"}));
  EXPECT_TRUE(ids("Ze_").empty()) << "_ is not a wildcard";
  EXPECT_TRUE(ids("0%s").empty()) << "% is not a wildcard";
  EXPECT_EQ(Call("GET", "/v1/conversations?q=ab").status, 400);
  EXPECT_EQ(Call("GET", "/v1/conversations?q=5678&owner=human").body, "{\"conversations\":[]}\n");
  auto viewer = Call("GET", "/v1/conversations?q=5678", "", ApiTokens::Token(Role::kViewer, "*"));
  EXPECT_EQ(viewer.status, 403);
  EXPECT_EQ(viewer.body.find("5678"), std::string::npos);
}

}  // namespace
}  // namespace convoy::conversation
