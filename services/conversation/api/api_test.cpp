// Integration: the assignment API against a real PostgreSQL, called as the HTTP server calls it.
#include "api/api.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <ctime>
#include <memory>
#include <mutex>
#include <set>

#include "convoy/crypto.h"
#include "convoy/events.h"
#include "convoy/http.h"
#include "convoy/json.h"
#include "convoy/rapidjson_util.h"
#include "convoy/topology.h"
#include "engine/engine.h"
#include "engine/flow.h"
#include "engine/processor.h"
#include "store/assignments.h"
#include "testsupport.h"

namespace convoy::conversation {
namespace {

constexpr const char* kToken = "api-token";
constexpr const char* kChecklist =
    R"({"title": "Line QA", "questions": [{"text": "Guard closed?", "photo": "required",
  "answers": ["OK", "NOT OK"]}, {"text": "Batch label", "photo": "optional"}]})";

class AssignmentApi : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(schemas_.LoadDir(test::SourcePath("proto-schemas")).ok());
    auto c = PgConnection::Connect(db_.dsn());
    ASSERT_TRUE(c.ok());
    conn_ = std::move(*c);
    ASSERT_TRUE(RunMigrations(*conn_, test::SourcePath("deploy/postgres")).ok());
    test::RegisterNumber(*conn_, test::kDemoNumber);
    settings_ = ApiSettings{db_.dsn(), AdminOnly(), AssignmentSettings{}, nullptr, nullptr};
  }
  static std::shared_ptr<TokenStore> AdminOnly() {
    auto store = TokenStore::Open("", kToken);
    return store.ok() ? *store : nullptr;
  }
  HttpResponse Call(const std::string& method, const std::string& path,
                    const std::string& body = "", std::map<std::string, std::string> headers = {},
                    const std::string& token = kToken) {
    HttpRequest r;
    r.method = method;
    auto q = path.find('?');
    r.path = path.substr(0, q);
    if (q != std::string::npos) {
      std::string query = path.substr(q + 1);
      auto eq = query.find('=');
      r.query[query.substr(0, eq)] = query.substr(eq + 1);
    }
    r.body = body;
    r.headers = std::move(headers);
    if (!token.empty()) r.headers["authorization"] = "Bearer " + token;
    return HandleApi(r, settings_, schemas_);
  }
  static std::string Member(const HttpResponse& r, const char* key) {
    rapidjson::Document d;
    d.Parse(r.body.c_str());
    if (d.HasParseError() || !d.IsObject() || !d.HasMember(key)) return "";
    const auto& v = d[key];
    return v.IsString() ? v.GetString() : v.IsInt() ? std::to_string(v.GetInt()) : "";
  }
  static std::string Assign(const std::string& op, const std::string& reference) {
    return R"({"checklist": "line-qa", "operator": ")" + op +
           R"(", "phone_number_id": "106540352242922", "reference": ")" + reference +
           R"(", "operator_name": "Ana"})";
  }
  int64_t Count(const std::string& sql) {
    auto r = conn_->Exec(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->get_int(0, 0) : -1;
  }
  // An assignment whose first question is answered: a note that is a formula, one photo stored and
  // one not yet; its id. Photo links on, signed at a fixed time (expiring at 1800000900).
  std::string AnsweredWithPhotos(const std::string& photo) {
    EXPECT_EQ(Call("PUT", "/v1/checklists/line-qa", kChecklist).status, 201);
    auto a = Call("POST", "/v1/assignments", Assign("16505550001", "R-1"));
    EXPECT_EQ(a.status, 201) << a.body;
    const std::string id = Member(a, "id");
    const std::string answers =
        R"j({"q1": {"answer": "NOT OK", "note": "=HYPERLINK(\"http://evil\")", "photos": [)j"
        R"({"media_id": "m1", "stored_name": ")" +
        photo + R"("}, {"media_id": "m2"}]}})";
    EXPECT_TRUE(
        conn_->Exec("UPDATE assignments SET answers = $2::jsonb WHERE id = $1", {id, answers})
            .ok());
    settings_.photo_links =
        PhotoLinkSettings{"http://media.example:8082", "link-secret", std::chrono::seconds(900),
                          [] { return int64_t{1800000000}; }};
    return id;
  }
  // An export of an assignment that is not completed is refused (409), of none 404, whatever the
  // format; then it is completed.
  void Complete(const std::string& id) {
    for (const char* format : {"csv", "pdf"}) {
      auto early = Call("GET", "/v1/assignments/" + id + "/export." + format);
      EXPECT_EQ(early.status, 409) << format << " " << early.body;
      EXPECT_NE(early.body.find("only a completed one is exported"), std::string::npos)
          << early.body;
      EXPECT_EQ(Call("GET", std::string("/v1/assignments/asg_nothing/export.") + format).status,
                404);
    }
    ASSERT_TRUE(conn_
                    ->Exec("UPDATE assignments SET status = 'completed', ended_at = '2026-12-07 "
                           "10:00:00+00' WHERE id = $1",
                           {id})
                    .ok());
  }
  // Every assignment event the outbox holds for the conversation service, applied once (as the
  // relay would).
  void Relay(Processor& processor) {
    auto rows = conn_->Exec(
        "SELECT dedupe_key, body FROM outbox WHERE routing_key LIKE 'assignment.%' ORDER BY id");
    ASSERT_TRUE(rows.ok());
    for (size_t i = 0; i < rows->size(); ++i) {
      if (!relayed_.insert(rows->get(i, 0)).second) continue;
      Delivery d;
      d.queue = queues::kConversationEvents;
      d.body = rows->get(i, 1);
      d.headers[headers::kDedupeKey] = rows->get(i, 0);
      ASSERT_EQ(processor.Handle(d).kind, Disposition::Kind::kAck) << d.body;
    }
  }
  std::set<std::string> relayed_;
  test::TestDatabase db_{"conv_api"};
  SchemaRegistry schemas_;
  std::unique_ptr<PgConnection> conn_;
  ApiSettings settings_;
};

TEST_F(AssignmentApi, RefusesWithoutTheTokenAndNamesWhatIsWrong) {
  EXPECT_EQ(Call("GET", "/v1/assignments", "", {}, "").status, 401);
  EXPECT_EQ(Call("GET", "/v1/assignments", "", {}, "wrong").status, 401);
  settings_.tokens = std::make_shared<TokenStore>(TokenSet());
  EXPECT_EQ(Call("GET", "/v1/assignments").status, 403) << "closed without a token configured";
  settings_.tokens = AdminOnly();
  auto bad = Call("PUT", "/v1/checklists/line-qa", R"({"title": "x"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("\"code\":\"invalid_argument\""), std::string::npos) << bad.body;
  EXPECT_EQ(Call("PUT", "/v1/checklists/Bad%20Id", kChecklist).status, 400);
  EXPECT_EQ(Call("POST", "/v1/assignments", Assign("16505550001", "R-1")).status, 404)
      << "no such checklist yet";
  EXPECT_EQ(Call("POST", "/v1/assignments", "{not json").status, 400);
  EXPECT_EQ(Call("POST", "/v1/assignments", Assign("not-an-operator", "R-1")).status, 400);
  EXPECT_EQ(Call("GET", "/v1/assignments/asg_nothing").status, 404);
  EXPECT_EQ(Call("GET", "/v1/assignments?status=sleeping").status, 400);
  EXPECT_EQ(Call("DELETE", "/v1/assignments").status, 405);
}

TEST_F(AssignmentApi, ChecklistsAreVersionedAndAnAssignmentKeepsItsVersion) {
  auto first = Call("PUT", "/v1/checklists/line-qa", kChecklist);
  EXPECT_EQ(first.status, 201) << first.body;
  EXPECT_EQ(Member(first, "version"), "1");
  EXPECT_EQ(Call("PUT", "/v1/checklists/line-qa", kChecklist).status, 200)
      << "the same definition: no new version";
  auto a = Call("POST", "/v1/assignments", Assign("16505550001", "R-1"));
  ASSERT_EQ(a.status, 201) << a.body;
  std::string changed = kChecklist;
  changed.replace(changed.find("Line QA"), 7, "Line QA 2");
  auto second = Call("PUT", "/v1/checklists/line-qa", changed);
  EXPECT_EQ(second.status, 201);
  EXPECT_EQ(Member(second, "version"), "2");
  auto shown = Call("GET", "/v1/assignments/" + Member(a, "id"));
  EXPECT_NE(shown.body.find(R"("version" : 1)"), std::string::npos) << shown.body;
  auto later = Call("POST", "/v1/assignments", Assign("16505550002", "R-2"));
  EXPECT_NE(Call("GET", "/v1/assignments/" + Member(later, "id")).body.find(R"("version" : 2)"),
            std::string::npos);
}

// One assignment per reference, one answer per Idempotency-Key, one active per operator.
TEST_F(AssignmentApi, NeverTwoConversationsForOneReferenceAndOneOperatorAtATime) {
  ASSERT_EQ(Call("PUT", "/v1/checklists/line-qa", kChecklist).status, 201);
  auto a =
      Call("POST", "/v1/assignments", Assign("16505550001", "R-1"), {{"idempotency-key", "k-1"}});
  ASSERT_EQ(a.status, 201) << a.body;
  const std::string id = Member(a, "id");
  EXPECT_EQ(Member(a, "status"), "active");
  auto again =
      Call("POST", "/v1/assignments", Assign("16505550001", "R-1"), {{"idempotency-key", "k-1"}});
  EXPECT_EQ(again.status, 201) << "the first answer again";
  EXPECT_EQ(Member(again, "id"), id);
  EXPECT_EQ(
      Call("POST", "/v1/assignments", Assign("16505550001", "R-9"), {{"idempotency-key", "k-1"}})
          .status,
      409);
  auto same_reference = Call("POST", "/v1/assignments", Assign("16505550001", "R-1"));
  EXPECT_EQ(same_reference.status, 200);
  EXPECT_EQ(Member(same_reference, "id"), id);
  EXPECT_EQ(Count("SELECT count(*) FROM assignments"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM outbox WHERE routing_key = 'assignment.started'"), 1);
  // A second checklist for the busy operator waits.
  auto queued = Call("POST", "/v1/assignments", Assign("16505550001", "R-2"));
  ASSERT_EQ(queued.status, 201);
  EXPECT_EQ(Member(queued, "status"), "pending");
  auto pending = Call("GET", "/v1/assignments?status=pending");
  EXPECT_NE(pending.body.find(Member(queued, "id")), std::string::npos) << pending.body;
  // The first one cancelled: the operator is free, the second starts.
  auto cancelled = Call("POST", "/v1/assignments/" + id + "/cancel");
  EXPECT_EQ(cancelled.status, 200) << cancelled.body;
  EXPECT_EQ(Member(cancelled, "status"), "cancelled");
  EXPECT_EQ(Member(Call("GET", "/v1/assignments/" + Member(queued, "id")), "status"), "active");
  EXPECT_EQ(Count("SELECT count(*) FROM outbox WHERE routing_key = 'assignment.started'"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM outbox WHERE routing_key = 'assignment.cancelled'"), 1);
  EXPECT_EQ(Call("POST", "/v1/assignments/" + id + "/cancel").status, 409) << "already cancelled";
  EXPECT_EQ(Call("POST", "/v1/assignments/asg_none/cancel").status, 404);
  // Every change audited: created, started, cancelled.
  EXPECT_EQ(Count("SELECT count(*) FROM assignment_changes WHERE assignment_id = '" + id + "'"), 3);
  // assignment.started carries the checklist to the operator's conversation.
  auto started = conn_->Exec(
      "SELECT body FROM outbox WHERE routing_key = 'assignment.started' ORDER BY id LIMIT 1");
  ASSERT_TRUE(started.ok());
  EXPECT_TRUE(schemas_.Validate(started->get(0, 0)).ok())
      << schemas_.Validate(started->get(0, 0)).ToString();
  EXPECT_NE(started->get(0, 0).find("Guard closed?"), std::string::npos);
}

// Due times live in PostgreSQL: whichever replica looks next expires what is due, and the
// operator's next assignment starts.
TEST_F(AssignmentApi, AnAssignmentPastItsDueTimeExpiresAndTheNextStarts) {
  ASSERT_EQ(Call("PUT", "/v1/checklists/line-qa", kChecklist).status, 201);
  const std::string first =
      Member(Call("POST", "/v1/assignments", Assign("16505550001", "R-1")), "id");
  const std::string second =
      Member(Call("POST", "/v1/assignments", Assign("16505550001", "R-2")), "id");
  auto none = ExpireDue(*conn_, AssignmentSettings{});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0);
  ASSERT_TRUE(
      conn_
          ->Exec("UPDATE assignments SET expires_at = now() - interval '1 second' WHERE id = $1",
                 {first})
          .ok());
  auto expired = ExpireDue(*conn_, AssignmentSettings{});
  ASSERT_TRUE(expired.ok()) << expired.status().ToString();
  EXPECT_EQ(*expired, 1);
  EXPECT_EQ(Member(Call("GET", "/v1/assignments/" + first), "status"), "expired");
  EXPECT_EQ(Member(Call("GET", "/v1/assignments/" + second), "status"), "active");
  EXPECT_EQ(Count("SELECT count(*) FROM outbox WHERE routing_key = 'assignment.expired'"), 1);
}

// An operator known only by a business-scoped user ID (no phone): the checklist reaches them by
// `recipient`, in a conversation of their own keyed by the BSUID.
TEST_F(AssignmentApi, AnOperatorKnownOnlyByABsuidGetsTheTemplateByRecipient) {
  ASSERT_EQ(Call("PUT", "/v1/checklists/line-qa", kChecklist).status, 201);
  const std::string bsuid = "US.13491208655302741918";
  auto a = Call("POST", "/v1/assignments", Assign(bsuid, "R-B"));
  ASSERT_EQ(a.status, 201) << a.body;
  auto started =
      conn_->Exec("SELECT dedupe_key, body FROM outbox WHERE routing_key = 'assignment.started'");
  ASSERT_TRUE(started.ok() && started->size() == 1u);
  auto flows = FlowSet::LoadDir(test::SourcePath("deploy/flows"), schemas_);
  ASSERT_TRUE(flows.ok()) << flows.status().ToString();
  Engine engine(*flows, EngineSettings{});
  Processor processor(*conn_, schemas_, engine, nullptr);
  Delivery d;
  d.queue = queues::kConversationEvents;
  d.body = started->get(0, 1);
  d.headers[headers::kDedupeKey] = started->get(0, 0);
  ASSERT_EQ(processor.Handle(d).kind, Disposition::Kind::kAck);
  const std::string key = "106540352242922:" + bsuid;
  auto conv = conn_->Exec(
      "SELECT coalesce(wa_id, ''), coalesce(user_id, '') FROM conversations WHERE conversation_key "
      "= $1",
      {key});
  ASSERT_TRUE(conv.ok() && conv->size() == 1u);
  EXPECT_EQ(conv->get(0, 0), "") << "no phone";
  EXPECT_EQ(conv->get(0, 1), bsuid);
  auto send = conn_->Exec(
      "SELECT body FROM outbox WHERE routing_key = 'outbound.send' AND conversation_key = $1",
      {key});
  ASSERT_TRUE(send.ok() && send->size() == 1u);
  rapidjson::Document body;
  body.Parse(send->get(0, 0).c_str());
  EXPECT_FALSE(body.HasMember("to"));
  EXPECT_STREQ(body["recipient"].GetString(), bsuid.c_str());
  EXPECT_STREQ(body["message"]["type"].GetString(), "template");
  EXPECT_TRUE(schemas_.Validate(send->get(0, 0)).ok())
      << schemas_.Validate(send->get(0, 0)).ToString();
  EXPECT_EQ(Count("SELECT count(*) FROM identities WHERE identity = 'US.13491208655302741918'"), 1);
}

// The template that opens an assignment fails for good (here 132001, template not approved): the
// assignment becomes undeliverable with the reason, the manager's system hears it at the checklist
// sink, and a retry sends the template again in a new round. Any other failed send changes nothing.
TEST_F(AssignmentApi, AnAssignmentWhoseTemplateFailsIsUndeliverableAndARetrySendsItAgain) {
  ASSERT_EQ(Call("PUT", "/v1/checklists/line-qa", kChecklist).status, 201);
  auto a = Call("POST", "/v1/assignments", Assign("16505550999", "R-U"));
  ASSERT_EQ(a.status, 201) << a.body;
  const std::string id = Member(a, "id");
  auto flows = FlowSet::LoadDir(test::SourcePath("deploy/flows"), schemas_);
  ASSERT_TRUE(flows.ok()) << flows.status().ToString();
  Engine engine(*flows, EngineSettings{});
  Processor processor(*conn_, schemas_, engine, nullptr);
  auto relay = [&] { Relay(processor); };
  // outbound.failed as outbound emits it (EventFor) for a send of the operator's conversation.
  std::string conversation;
  auto failed = [&](const std::string& command_key, int code) {
    Delivery cmd;
    cmd.headers = {{headers::kDedupeKey, command_key},
                   {headers::kConversationKey, conversation},
                   {headers::kCorrelationId, "c"}};
    AmqpMessage m = EventFor(
        cmd, "outbound.failed",
        R"("code":)" + std::to_string(code) + R"(,"reason":"template not approved","attempts":1)");
    Delivery d;
    d.queue = queues::kConversationEvents;
    d.body = m.body;
    d.headers = m.headers;
    EXPECT_EQ(processor.Handle(d).kind, Disposition::Kind::kAck) << d.body;
  };
  auto templates = [&] {
    return Count(
        "SELECT count(*) FROM outbox WHERE routing_key = 'outbound.send' AND "
        "body::jsonb->'message'->>'type' = "
        "'template'");
  };
  relay();
  ASSERT_EQ(templates(), 1);
  auto send = conn_->Exec(
      "SELECT dedupe_key, conversation_key FROM outbox WHERE routing_key = 'outbound.send'");
  ASSERT_TRUE(send.ok() && send->size() == 1u);
  const std::string template_key = send->get(0, 0);
  conversation = send->get(0, 1);
  EXPECT_EQ(conversation, "106540352242922:16505550999") << "the operator's own conversation";
  ASSERT_EQ(template_key.substr(template_key.size() - 9), ":template");

  failed(template_key.substr(0, template_key.size() - 9) + ":reply", 131026);  // not the template
  std::string earlier = template_key;  // another (an earlier, cancelled) assignment's template
  earlier.replace(earlier.find(id), id.size(), "asg_000000000000000000000000");
  failed(earlier, 132001);
  EXPECT_EQ(Member(Call("GET", "/v1/assignments/" + id), "status"), "active");
  failed(template_key, 132001);
  failed(template_key, 132001);  // redelivered: once
  auto shown = Call("GET", "/v1/assignments/" + id);
  EXPECT_EQ(Member(shown, "status"), "undeliverable") << shown.body;
  EXPECT_NE(shown.body.find("the checklist_assigned template did not reach the operator (132001): "
                            "template not approved"),
            std::string::npos)
      << shown.body;
  EXPECT_EQ(Count("SELECT count(*) FROM outbox WHERE routing_key = 'assignment.undeliverable'"), 1);
  auto told = conn_->Exec("SELECT body FROM outbox WHERE routing_key = 'outbound.deliver'");
  ASSERT_TRUE(told.ok());
  ASSERT_EQ(told->size(), 1u);
  EXPECT_TRUE(schemas_.Validate(told->get(0, 0)).ok())
      << schemas_.Validate(told->get(0, 0)).ToString();
  rapidjson::Document body;
  body.Parse(told->get(0, 0).c_str());
  EXPECT_STREQ(body["type"].GetString(), "checklist.undeliverable");
  EXPECT_STREQ(body["sink"].GetString(), "checklist");
  EXPECT_STREQ(body["fields"]["assignment_id"].GetString(), id.c_str());
  EXPECT_STREQ(body["fields"]["reference"].GetString(), "R-U");
  relay();  // assignment.undeliverable reaches the conversation: recorded, nothing said
  EXPECT_EQ(Count("SELECT count(*) FROM outbox WHERE routing_key = 'outbound.send'"), 1);
  EXPECT_NE(Call("GET", "/v1/assignments?status=undeliverable").body.find(id), std::string::npos);

  // Retry: pending, then active in round 2; its template goes again.
  auto retried = Call("POST", "/v1/assignments/" + id + "/retry");
  EXPECT_EQ(retried.status, 200) << retried.body;
  EXPECT_EQ(Member(retried, "status"), "active");
  EXPECT_EQ(
      Count("SELECT count(*) FROM outbox WHERE dedupe_key = 'assignment.started:" + id + ":2'"), 1);
  relay();
  EXPECT_EQ(templates(), 2) << "the template is sent again";
  auto again = Call("POST", "/v1/assignments/" + id + "/retry");
  EXPECT_EQ(again.status, 409) << again.body;
  EXPECT_NE(again.body.find("is active: only an undeliverable one is retried"), std::string::npos)
      << again.body;
  EXPECT_EQ(Call("POST", "/v1/assignments/asg_nope/retry").status, 404);

  // Round 2's template fails just after the manager cancelled (the cancel not yet relayed to the
  // conversation): the assignment stays cancelled and the business is not told it is undeliverable.
  auto second = conn_->Exec(
      "SELECT dedupe_key FROM outbox WHERE routing_key = 'outbound.send' ORDER BY id DESC LIMIT 1");
  ASSERT_TRUE(second.ok() && second->size() == 1u);
  ASSERT_EQ(Call("POST", "/v1/assignments/" + id + "/cancel").status, 200);
  failed(second->get(0, 0), 132001);
  EXPECT_EQ(Member(Call("GET", "/v1/assignments/" + id), "status"), "cancelled");
  EXPECT_EQ(Count("SELECT count(*) FROM outbox WHERE routing_key = 'outbound.deliver'"), 1)
      << "told once, in round 1";
  // A retry from a number offboarded since: refused like a new assignment, nothing changed.
  ASSERT_TRUE(
      conn_->Exec("UPDATE assignments SET status = 'undeliverable' WHERE id = $1", {id}).ok());
  ASSERT_TRUE(
      conn_
          ->Exec(
              "UPDATE numbers SET status = 'offboarded' WHERE phone_number_id = '106540352242922'")
          .ok());
  auto offboarded = Call("POST", "/v1/assignments/" + id + "/retry");
  EXPECT_EQ(offboarded.status, 422) << offboarded.body;
  EXPECT_NE(offboarded.body.find("is offboarded in the numbers registry"), std::string::npos)
      << offboarded.body;
  EXPECT_EQ(Member(Call("GET", "/v1/assignments/" + id), "status"), "undeliverable");
}

// An operator answers a question with an inspection report, a PDF sent as a WhatsApp document (the
// webhook as Meta shapes it): the processor takes its document member, media is asked for it as an
// image or a document, and the confirmed submission carries it, stored, with its type and its file
// name. A voice note for the next question is refused and fetches nothing.
TEST_F(AssignmentApi, AChecklistAnswerWithAPdfReachesTheSubmission) {
  ASSERT_EQ(Call("PUT", "/v1/checklists/line-qa", kChecklist).status, 201);
  ASSERT_EQ(Call("POST", "/v1/assignments", Assign("16505550777", "R-PDF")).status, 201);
  auto flows = FlowSet::LoadDir(test::SourcePath("deploy/flows"), schemas_);
  ASSERT_TRUE(flows.ok()) << flows.status().ToString();
  Engine engine(*flows, EngineSettings{});
  Processor processor(*conn_, schemas_, engine, nullptr);
  Relay(processor);
  const std::string key = "106540352242922:16505550777";
  int64_t at = static_cast<int64_t>(std::time(nullptr));  // after the assignment started
  auto inbound = [&](const std::string& wamid, const std::string& message) {
    Delivery d;
    d.queue = queues::kConversationInbound;
    d.body =
        R"({"schema":"inbound.message","version":1,"correlation_id":"c-)" + wamid +
        R"(","received_at":"2026-01-01T00:00:00.000Z","phone_number_id":"106540352242922","wa_id":"16505550777",)"
        R"("conversation_key":")" +
        key + R"(","message":{"from":"16505550777","id":")" + wamid + R"(","timestamp":")" +
        std::to_string(++at) + R"(",)" + message + "}}";
    d.headers = {{headers::kDedupeKey, wamid},
                 {headers::kCorrelationId, "c-" + wamid},
                 {headers::kConversationKey, key}};
    ASSERT_EQ(processor.Handle(d).kind, Disposition::Kind::kAck) << d.body;
  };
  auto fetches = [&] {
    return Count("SELECT count(*) FROM outbox WHERE routing_key = 'media.fetch'");
  };
  inbound("wamid.hi",
          R"("type":"text","text":{"body":"hi"})");  // the reply to the template: question 1
  inbound(
      "wamid.voice",
      R"("type":"audio","audio":{"id":"v-1","mime_type":"audio/ogg; codecs=opus","sha256":"x","voice":true})");
  EXPECT_EQ(fetches(), 0) << "a voice note is not taken for a question";
  inbound(
      "wamid.pdf",
      R"("type":"document","document":{"caption":"OK","filename":"../line 4 report.pdf",)"
      R"("mime_type":"application/pdf","sha256":"grwfwe/ZPx0wAbdfbdeFUNItPZ0RylL8gGUvdt3YFqc=","id":"doc-1"})");
  auto notes = conn_->Exec(
      "SELECT string_agg(coalesce(note, '-') || ':' || to_step, ', ' ORDER BY id) FROM "
      "transitions");
  ASSERT_EQ(fetches(), 1) << (notes.ok() ? notes->get(0, 0) : "");
  auto fetch = conn_->Exec("SELECT body FROM outbox WHERE routing_key = 'media.fetch'");
  ASSERT_TRUE(fetch.ok());
  EXPECT_TRUE(schemas_.Validate(fetch->get(0, 0)).ok())
      << schemas_.Validate(fetch->get(0, 0)).ToString();
  rapidjson::Document cmd;
  cmd.Parse(fetch->get(0, 0).c_str());
  EXPECT_STREQ(cmd["media_id"].GetString(), "doc-1");
  EXPECT_STREQ(cmd["mime_type"].GetString(), "application/pdf");
  ASSERT_TRUE(cmd["kinds"].IsArray());
  EXPECT_EQ(cmd["kinds"].Size(), 2u);
  EXPECT_STREQ(cmd["kinds"][1].GetString(), "document");
  // media stores it: media.stored as media emits it for that command.
  Delivery command;
  command.headers = {{headers::kDedupeKey, "fetch-doc-1"},
                     {headers::kConversationKey, key},
                     {headers::kCorrelationId, "c"}};
  const std::string stored_name = std::string(64, 'c') + ".pdf";
  AmqpMessage m =
      EventFor(command, "media.stored",
               R"("media_id":"doc-1","stored_name":")" + stored_name + R"(","sha256":")" +
                   std::string(64, 'c') + R"(","size":1234,"mime_type":"application/pdf")");
  Delivery stored;
  stored.queue = queues::kConversationEvents;
  stored.body = m.body;
  stored.headers = m.headers;
  ASSERT_EQ(processor.Handle(stored).kind, Disposition::Kind::kAck) << stored.body;
  // The assignment shows the stored document at once (the console shows it as it comes), not only
  // with the next answer.
  EXPECT_EQ(
      Count(
          "SELECT count(*) FROM assignments WHERE answers->'q1'->'photos'->0->>'stored_name' = '" +
          stored_name + "'"),
      1);
  inbound("wamid.q2", R"("type":"text","text":{"body":"Batch 4711"})");
  inbound("wamid.confirm", R"("type":"text","text":{"body":"CONFIRM"})");
  auto delivered = conn_->Exec("SELECT body FROM outbox WHERE routing_key = 'outbound.deliver'");
  ASSERT_TRUE(delivered.ok());
  ASSERT_EQ(delivered->size(), 1u) << "the submission, its one document stored";
  EXPECT_TRUE(schemas_.Validate(delivered->get(0, 0)).ok())
      << schemas_.Validate(delivered->get(0, 0)).ToString();
  rapidjson::Document body;
  body.Parse(delivered->get(0, 0).c_str());
  EXPECT_STREQ(body["type"].GetString(), "checklist.completed");
  EXPECT_STREQ(body["fields"]["q1"].GetString(), "OK");
  ASSERT_EQ(body["photos"].Size(), 1u);
  const auto& doc = body["photos"][0];
  EXPECT_STREQ(doc["field"].GetString(), "q1");
  EXPECT_STREQ(doc["stored_name"].GetString(), stored_name.c_str());
  EXPECT_STREQ(doc["mime_type"].GetString(), "application/pdf");
  EXPECT_STREQ(doc["filename"].GetString(), "line 4 report.pdf");
}

// A checklist goes only from a registered, active number: an unknown or offboarded one is refused
// with the reason, and no assignment is created.
TEST_F(AssignmentApi, AnAssignmentFromANumberNotActiveInTheRegistryIsRefused) {
  ASSERT_EQ(Call("PUT", "/v1/checklists/line-qa", kChecklist).status, 201);
  const std::string unknown =
      R"({"checklist": "line-qa", "operator": "16505550001", "phone_number_id": "106540352299999", "reference": "U-1"})";
  auto refused = Call("POST", "/v1/assignments", unknown);
  EXPECT_EQ(refused.status, 422) << refused.body;
  EXPECT_NE(refused.body.find("106540352299999 is unknown in the numbers registry"),
            std::string::npos)
      << refused.body;
  test::RegisterNumber(*conn_, "106540352299999", "test", "offboarded");
  refused = Call("POST", "/v1/assignments", unknown);
  EXPECT_EQ(refused.status, 422) << refused.body;
  EXPECT_NE(refused.body.find("is offboarded"), std::string::npos) << refused.body;
  EXPECT_EQ(Count("SELECT count(*) FROM assignments"), 0);
  EXPECT_EQ(Call("POST", "/v1/assignments", Assign("16505550001", "R-1")).status, 201)
      << "the demo number is active";
}

// A checklist's opening template (outside the window) goes in its number's templates_language when
// the registry names one, else in the flow's (deploy/flows/checklist.json: en).
TEST_F(AssignmentApi, TheOpeningTemplateGoesInTheNumbersTemplatesLanguageElseTheFlows) {
  ASSERT_EQ(Call("PUT", "/v1/checklists/line-qa", kChecklist).status, 201);
  auto flows = FlowSet::LoadDir(test::SourcePath("deploy/flows"), schemas_);
  ASSERT_TRUE(flows.ok()) << flows.status().ToString();
  Engine engine(*flows, EngineSettings{});
  Processor processor(*conn_, schemas_, engine, nullptr);
  const PgParams demo = {std::string(test::kDemoNumber)};
  ASSERT_TRUE(
      conn_->Exec("UPDATE numbers SET templates_language = 'es' WHERE phone_number_id = $1", demo)
          .ok());
  ASSERT_EQ(Call("POST", "/v1/assignments", Assign("16505550401", "L-ES")).status, 201);
  Relay(processor);
  ASSERT_TRUE(
      conn_->Exec("UPDATE numbers SET templates_language = NULL WHERE phone_number_id = $1", demo)
          .ok());
  ASSERT_EQ(Call("POST", "/v1/assignments", Assign("16505550402", "L-EN")).status, 201);
  Relay(processor);
  const auto language = [&](const std::string& op) {
    auto r = conn_->Exec(
        "SELECT body::jsonb->'message'->'template'->'language'->>'code' FROM outbox WHERE "
        "routing_key = "
        "'outbound.send' AND conversation_key = $1",
        {std::string(test::kDemoNumber) + ":" + op});
    EXPECT_TRUE(r.ok() && r->size() == 1u)
        << (r.ok() ? std::to_string(r->size()) : r.status().ToString());
    return r.ok() && r->size() == 1u ? r->get(0, 0) : "";
  };
  EXPECT_EQ(language("16505550401"), "es") << "the number's language wins";
  EXPECT_EQ(language("16505550402"), "en") << "none: the flow's";
}

// A number whose flows leave the checklist flow out runs no checklist: an assignment from it is
// refused, naming the flows it runs, and nothing is created; a retry of one is refused too.
TEST_F(AssignmentApi, AnAssignmentFromANumberThatDoesNotRunTheChecklistFlowIsRefused) {
  ASSERT_EQ(Call("PUT", "/v1/checklists/line-qa", kChecklist).status, 201);
  ASSERT_TRUE(conn_
                  ->Exec("UPDATE numbers SET flows = '{lead,listing}' WHERE phone_number_id = $1",
                         {std::string(test::kDemoNumber)})
                  .ok());
  auto refused = Call("POST", "/v1/assignments", Assign("16505550001", "F-1"));
  EXPECT_EQ(refused.status, 422) << refused.body;
  EXPECT_NE(refused.body.find("flow_not_run"), std::string::npos) << refused.body;
  EXPECT_NE(refused.body.find("does not run the flow checklist (its flows: lead,listing)"),
            std::string::npos)
      << refused.body;
  EXPECT_EQ(Count("SELECT count(*) FROM assignments"), 0);
  ASSERT_TRUE(conn_
                  ->Exec("UPDATE numbers SET flows = '{lead,checklist}' WHERE phone_number_id = $1",
                         {std::string(test::kDemoNumber)})
                  .ok());
  auto created = Call("POST", "/v1/assignments", Assign("16505550001", "F-1"));
  EXPECT_EQ(created.status, 201) << created.body;
  const std::string id = Member(created, "id");
  ASSERT_TRUE(
      conn_->Exec("UPDATE assignments SET status = 'undeliverable' WHERE id = $1", {id}).ok());
  ASSERT_TRUE(conn_
                  ->Exec("UPDATE numbers SET flows = '{lead}' WHERE phone_number_id = $1",
                         {std::string(test::kDemoNumber)})
                  .ok());
  auto retried = Call("POST", "/v1/assignments/" + id + "/retry");
  EXPECT_EQ(retried.status, 422) << retried.body;
  EXPECT_EQ(Count("SELECT count(*) FROM assignments WHERE status = 'undeliverable'"), 1);
}

// An answer that needs a note must be one of the question's answers: the schema cannot say so,
// the API does, naming the question, and nothing is stored.
TEST_F(AssignmentApi, ANoteRequiredForAnAnswerTheQuestionDoesNotHaveIsRefused) {
  auto bad = Call(
      "PUT", "/v1/checklists/notes",
      R"({"title": "t", "questions": [{"text": "a?"}, {"text": "b?", "answers": ["OK", "NOT OK"], )"
      R"("note_required": ["BROKEN"]}]})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find(
                R"(questions[1].note_required: \"BROKEN\" is not one of the question's answers)"),
            std::string::npos)
      << bad.body;
  EXPECT_EQ(Count("SELECT count(*) FROM checklists WHERE id = 'notes'"), 0);
  auto good = Call(
      "PUT", "/v1/checklists/notes",
      R"({"title": "t", "questions": [{"text": "b?", "answers": ["OK", "NOT OK"], "note_required": ["NOT OK"]}]})");
  EXPECT_EQ(good.status, 201) << good.body;
}

// The console's reads (checklists_api.h): the checklists and their versions, an assignment's
// progress and its photos as signed links to media, and a completed one's answers as CSV.
TEST_F(AssignmentApi, ChecklistsAreListedWithTheirVersionsAndBadInputIsAClearError) {
  ASSERT_EQ(Call("PUT", "/v1/checklists/line-qa", kChecklist).status, 201);
  std::string changed = kChecklist;
  changed.replace(changed.find("Line QA"), 7, "Line QA 2");
  ASSERT_EQ(Call("PUT", "/v1/checklists/line-qa", changed).status, 201);
  auto list = Call("GET", "/v1/checklists");
  ASSERT_EQ(list.status, 200) << list.body;
  rapidjson::Document d;
  d.Parse(list.body.c_str());
  ASSERT_TRUE(d.IsObject() && d["checklists"].IsArray()) << list.body;
  ASSERT_EQ(d["checklists"].Size(), 1u)
      << "one entry per checklist, its latest version: " << list.body;
  EXPECT_EQ(d["checklists"][0]["version"].GetInt(), 2);
  EXPECT_STREQ(d["checklists"][0]["title"].GetString(), "Line QA 2");
  EXPECT_EQ(d["checklists"][0]["questions"].GetInt(), 2);

  auto latest = Call("GET", "/v1/checklists/line-qa");
  ASSERT_EQ(latest.status, 200) << latest.body;
  d.Parse(latest.body.c_str());
  EXPECT_EQ(d["version"].GetInt(), 2);
  EXPECT_EQ(d["versions"].Size(), 2u);
  EXPECT_STREQ(d["definition"]["title"].GetString(), "Line QA 2");
  auto first = Call("GET", "/v1/checklists/line-qa?version=1");
  ASSERT_EQ(first.status, 200) << first.body;
  d.Parse(first.body.c_str());
  EXPECT_STREQ(d["definition"]["title"].GetString(), "Line QA");
  EXPECT_EQ(Call("GET", "/v1/checklists/line-qa?version=3").status, 404);
  EXPECT_EQ(Call("GET", "/v1/checklists/line-qa?version=-1").status, 400);
  EXPECT_EQ(Call("GET", "/v1/checklists/nothing").status, 404);
}

TEST_F(AssignmentApi, AnAnswersStoredPhotoIsAShortLivedSignedLinkToThatFileAlone) {
  const std::string photo = std::string(64, 'a') + ".jpg";
  const std::string id = AnsweredWithPhotos(photo);
  // Links on: a link to that one file, signed, expiring after the TTL.
  auto linked = Call("GET", "/v1/assignments/" + id);
  ASSERT_EQ(linked.status, 200) << linked.body;
  EXPECT_EQ(Member(linked, "answered"), "1");
  rapidjson::Document d;
  d.Parse(linked.body.c_str());
  ASSERT_TRUE(d.IsObject() && d["answers"]["q1"]["photos"].IsArray()) << linked.body;
  EXPECT_EQ(JsonStr(d["answers"]["q1"]["photos"][0], "url"),
            MediaLink("http://media.example:8082", "link-secret", photo, 1800000900));
  EXPECT_FALSE(d["answers"]["q1"]["photos"][1].HasMember("url"))
      << "a photo not stored yet has no link";
  // Links off: the photo is named, never linked.
  settings_.photo_links = PhotoLinkSettings{};
  auto plain = Call("GET", "/v1/assignments/" + id);
  EXPECT_NE(plain.body.find(photo), std::string::npos) << plain.body;
  EXPECT_EQ(plain.body.find("\"url\""), std::string::npos) << plain.body;
}

TEST_F(AssignmentApi, OnlyACompletedAssignmentExportsAndItsCsvDefusesFormulas) {
  const std::string photo = std::string(64, 'a') + ".jpg";
  const std::string id = AnsweredWithPhotos(photo);
  Complete(id);
  // Every question a row (an unanswered one empty), the note's formula defused and quoted.
  auto csv = Call("GET", "/v1/assignments/" + id + "/export.csv");
  ASSERT_EQ(csv.status, 200) << csv.body;
  EXPECT_EQ(csv.content_type, "text/csv; charset=utf-8");
  EXPECT_EQ(csv.headers["Content-Disposition"], "attachment; filename=\"" + id + ".csv\"");
  EXPECT_EQ(csv.body,
            "number,question,answer,note,photos,photo_links,completed_at\r\n"
            "1,Guard closed?,NOT OK,\"'=HYPERLINK(\"\"http://evil\"\")\"," +
                photo + "," +
                MediaLink("http://media.example:8082", "link-secret", photo, 1800000900) +
                ",2026-12-07T10:00:00Z\r\n"
                "2,Batch label,,,,,2026-12-07T10:00:00Z\r\n");
  for (const char* cell : {"=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"}) {
    EXPECT_EQ(CsvCell(cell).find_first_of("=+-@\t\r"), CsvCell(cell)[0] == '"' ? 2u : 1u) << cell;
  }
  EXPECT_EQ(CsvCell("plain"), "plain");
  EXPECT_EQ(CsvCell("a,b"), "\"a,b\"");
  EXPECT_EQ(CsvCell("say \"hi\""), "\"say \"\"hi\"\"\"");
}

// The PDF export: the same refusals as the CSV's, then every question with its answer and note,
// and each photo convoy-media gives embedded whole (fetched through a signed link of its own); a
// photo media cannot give is named and said not to be embedded, never silently left out.
TEST_F(AssignmentApi, APdfExportEmbedsThePhotosMediaGivesAndNamesTheOnesItCannot) {
  const std::string photo = std::string(64, 'a') + ".jpg";
  const std::string id = AnsweredWithPhotos(photo);
  Complete(id);
  const std::string jpeg = test::ReadFile(test::FixturePath("media/photo1.jpg"));
  auto asked = std::make_shared<std::vector<std::string>>();
  auto mu = std::make_shared<std::mutex>();
  HttpServer media({"127.0.0.1", 0, 1 << 20});
  media.Route("GET", "/media/", [jpeg, asked, mu](const HttpRequest& r) {
    std::lock_guard<std::mutex> lock(*mu);
    asked->push_back(r.path + "?expires=" + r.query.at("expires") + "&sig=" + r.query.at("sig"));
    return HttpResponse{200, "image/jpeg", jpeg, {}};
  });
  ASSERT_TRUE(media.Start().ok());
  settings_.media_api_url = "http://127.0.0.1:" + std::to_string(media.port());
  auto pdf = Call("GET", "/v1/assignments/" + id + "/export.pdf");
  ASSERT_EQ(pdf.status, 200) << pdf.body;
  EXPECT_EQ(pdf.content_type, "application/pdf");
  EXPECT_EQ(pdf.headers["Content-Disposition"], "attachment; filename=\"" + id + ".pdf\"");
  EXPECT_EQ(pdf.headers["X-Convoy-Photos"], "1 embedded, 0 not");
  EXPECT_EQ(pdf.body.rfind("%PDF-1.4\n", 0), 0u);
  EXPECT_NE(pdf.body.find("stream\n" + jpeg + "\nendstream"), std::string::npos)
      << "the JPEG, byte for byte";
  EXPECT_NE(pdf.body.find("(1. Guard closed?) Tj"), std::string::npos);
  EXPECT_NE(pdf.body.find("(Note: =HYPERLINK\\(\"http://evil\"\\)) Tj"), std::string::npos);
  EXPECT_NE(pdf.body.find("(2. Batch label) Tj"), std::string::npos);
  {
    std::lock_guard<std::mutex> lock(*mu);
    ASSERT_EQ(asked->size(), 1u);
    EXPECT_EQ((*asked)[0], MediaLink("", "link-secret", photo, 1800000060))
        << "a signed link of a minute";
  }
  media.Stop();
  auto without = Call("GET", "/v1/assignments/" + id + "/export.pdf");
  ASSERT_EQ(without.status, 200) << without.body;
  EXPECT_EQ(without.headers["X-Convoy-Photos"], "0 embedded, 1 not");
  EXPECT_EQ(without.body.find("/Subtype /Image"), std::string::npos);
  const size_t named = without.body.find("(Photo " + photo + ":");
  ASSERT_NE(named, std::string::npos) << "named";
  EXPECT_NE(without.body.find("embedded \\(", named), std::string::npos)
      << "not embedded, and why: " << without.body.substr(named, 200);
}

// The numbers registry's API (numbers_api.h), behind the same bearer check.
constexpr const char* kSecond = "106540352249999";

std::string NumberJson(const std::string& id, const std::string& extra = "") {
  return R"({"phone_number_id": ")" + id +
         R"(", "tenant": "acme", "waba_id": "102290129340399", )"
         R"("display_phone_number": "+44 20 7946 0000", "graph_token": "env:ACME_GRAPH_TOKEN")" +
         extra + "}";
}

// A member of a JSON object as text (strings, integers, booleans); "" when absent.
std::string Field(const std::string& body, const char* key) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember(key)) return "";
  const auto& v = d[key];
  if (v.IsString()) return v.GetString();
  if (v.IsInt()) return std::to_string(v.GetInt());
  if (v.IsBool()) return v.GetBool() ? "true" : "false";
  return "";
}

using NumbersApi = AssignmentApi;

TEST_F(NumbersApi, PutThenGetReturnsWhatWasPut) {
  auto put = Call(
      "PUT", std::string("/v1/numbers/") + kSecond,
      NumberJson(
          kSecond,
          R"(, "default_flow": "lead", "greeting": "Hi from Acme", "templates_language": "en_GB")"));
  ASSERT_EQ(put.status, 201) << put.body;
  auto got = Call("GET", std::string("/v1/numbers/") + kSecond);
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(Field(got.body, "phone_number_id"), kSecond);
  EXPECT_EQ(Field(got.body, "tenant"), "acme");
  EXPECT_EQ(Field(got.body, "waba_id"), "102290129340399");
  EXPECT_EQ(Field(got.body, "display_phone_number"), "+44 20 7946 0000");
  EXPECT_EQ(Field(got.body, "app"), "default");
  EXPECT_EQ(Field(got.body, "graph_token"), "env:ACME_GRAPH_TOKEN");
  EXPECT_EQ(Field(got.body, "throughput"), "80");
  EXPECT_EQ(Field(got.body, "coexistence"), "false");
  EXPECT_EQ(Field(got.body, "default_flow"), "lead");
  EXPECT_EQ(Field(got.body, "greeting"), "Hi from Acme");
  EXPECT_EQ(Field(got.body, "templates_language"), "en_GB");
  EXPECT_EQ(Field(got.body, "status"), "active");
  EXPECT_EQ(Field(got.body, "source"), "api");
  EXPECT_FALSE(Field(got.body, "created_at").empty());
  // The same again changes nothing (200); a change is 200 and kept.
  EXPECT_EQ(
      Call(
          "PUT", std::string("/v1/numbers/") + kSecond,
          NumberJson(
              kSecond,
              R"(, "default_flow": "lead", "greeting": "Hi from Acme", "templates_language": "en_GB")"))
          .status,
      200);
  auto paused = Call("PUT", std::string("/v1/numbers/") + kSecond,
                     NumberJson(kSecond, R"(, "status": "paused")"));
  EXPECT_EQ(paused.status, 200) << paused.body;
  EXPECT_EQ(Field(paused.body, "status"), "paused");
  EXPECT_EQ(Field(paused.body, "greeting"), "");  // a PUT is the whole entry
  EXPECT_EQ(paused.body.find("templates_language"), std::string::npos)
      << "none: each flow's own " << paused.body;
  // Its sinks: a flow's sink name to the sinks that receive its results.
  auto sinks =
      Call("PUT", std::string("/v1/numbers/") + kSecond,
           NumberJson(kSecond,
                      R"(, "status": "paused", "sinks": {"listing": ["acme-shop", "acme-hook"]})"));
  EXPECT_EQ(sinks.status, 200) << sinks.body;
  EXPECT_NE(sinks.body.find(R"("sinks":{"listing":["acme-shop","acme-hook"]})"), std::string::npos)
      << sinks.body;
  // A coexistence number defaults to 20/s.
  const std::string third = "106540352248888";
  auto coex = Call("PUT", "/v1/numbers/" + third, NumberJson(third, R"(, "coexistence": true)"));
  ASSERT_EQ(coex.status, 201) << coex.body;
  EXPECT_EQ(Field(coex.body, "throughput"), "20");
  auto list = Call("GET", "/v1/numbers");
  ASSERT_EQ(list.status, 200);
  EXPECT_NE(list.body.find(kSecond), std::string::npos) << list.body;
  EXPECT_NE(list.body.find(third), std::string::npos) << list.body;
  auto active = Call("GET", "/v1/numbers?status=active");
  EXPECT_EQ(active.body.find(kSecond), std::string::npos)
      << "paused is not active: " << active.body;
  EXPECT_EQ(Call("GET", "/v1/numbers?status=gone").status, 400);
}

// A number's Graph API version: absent, the deployment's (not shown); put, kept and shown; a change
// of version alone is an update.
TEST_F(NumbersApi, AGraphVersionIsKeptAndShownAndAbsentMeansTheDeployments) {
  const std::string path = std::string("/v1/numbers/") + kSecond;
  auto put = Call("PUT", path, NumberJson(kSecond));
  ASSERT_EQ(put.status, 201) << put.body;
  EXPECT_EQ(Field(put.body, "graph_version"), "") << put.body;
  auto moved = Call("PUT", path, NumberJson(kSecond, R"(, "graph_version": "v27.0")"));
  ASSERT_EQ(moved.status, 200) << moved.body;
  EXPECT_EQ(Field(Call("GET", path).body, "graph_version"), "v27.0");
  EXPECT_EQ(Count("SELECT count(*) FROM numbers WHERE graph_version = 'v27.0'"), 1);
  auto bad = Call("PUT", path, NumberJson(kSecond, R"(, "graph_version": "27")"));
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_NE(bad.body.find("graph_version is a Graph API version such as v24.0"), std::string::npos)
      << bad.body;
  EXPECT_EQ(Field(Call("GET", path).body, "graph_version"), "v27.0")
      << "a refused PUT changes nothing";
  ASSERT_EQ(Call("PUT", path, NumberJson(kSecond)).status, 200);
  EXPECT_EQ(Field(Call("GET", path).body, "graph_version"), "")
      << "a PUT is the whole entry: back to the default";
}

TEST_F(NumbersApi, PutRefusesWhatIsWrongWithAClearReasonAndStoresNothing) {
  struct Case {
    std::string path, body, says;
  };
  const std::string path = std::string("/v1/numbers/") + kSecond;
  const std::string token =
      "EAAGm0PX4ZCpsBAKZCe1dQq3ZBxD8zZAbZAWCZCaZBZBZA";  // what a Graph token looks like
  const std::vector<Case> cases = {
      {path, NumberJson(kSecond, R"(, "status": "closed")"),
       "status is one of active, paused, offboarded"},
      {path,
       R"({"phone_number_id": ")" + std::string(kSecond) +
           R"(", "tenant": "acme", "waba_id": "1", )"
           R"("display_phone_number": "15550783881", "graph_token": ")" +
           token + R"("})",
       "never the token itself"},
      {path, NumberJson("106540352242922"), "is not the one it is put as, " + std::string(kSecond)},
      {"/v1/numbers/abc123", NumberJson("abc123"), "numeric id"},
      {path, NumberJson(kSecond, R"(, "coexistence": true, "throughput": 80)"),
       "at most 20 messages/s"},
      {path,
       R"({"phone_number_id": ")" + std::string(kSecond) +
           R"(", "waba_id": "1", "display_phone_number": "1555078", "graph_token": "env:X"})",
       "missing tenant"},
      {path, "{not json", "nvalid"},
      {path, NumberJson(kSecond, R"(, "sinks": {"listing": []})"), "sinks"},
      {path, NumberJson(kSecond, R"(, "sinks": {"listing": ["Acme Shop"]})"), "sinks"},
      {path, NumberJson(kSecond, R"(, "sinks": {"listing": ["a", "a"]})"), "sinks"},
      {path, NumberJson(kSecond, R"(, "sinks": {"Listing": ["a"]})"), "sinks"},
  };
  for (const auto& c : cases) {
    auto r = Call("PUT", c.path, c.body);
    EXPECT_EQ(r.status, 400) << c.body << " -> " << r.body;
    EXPECT_NE(r.body.find(c.says), std::string::npos) << c.body << " -> " << r.body;
    EXPECT_EQ(r.body.find(token), std::string::npos) << "the refusal repeats the token: " << r.body;
  }
  EXPECT_EQ(Count("SELECT count(*) FROM numbers WHERE phone_number_id <> '106540352242922'"), 0);
  // The database refuses a token in clear too, whoever writes.
  EXPECT_FALSE(
      conn_
          ->Exec("INSERT INTO numbers (phone_number_id, tenant, waba_id, display_phone_number, "
                 "graph_token_ref, source) VALUES ('1', 't', '1', '1', $1, 'sql')",
                 {token})
          .ok());
}

// The flows a number runs: kept and shown; absent, every flow (not shown); a default_flow outside
// them is a 422 naming both, a malformed list a 400, and neither changes what is stored.
TEST_F(NumbersApi, AListOfFlowsIsKeptAndADefaultFlowOutsideItIsRefused) {
  const std::string path = std::string("/v1/numbers/") + kSecond;
  auto put = Call("PUT", path,
                  NumberJson(kSecond, R"(, "flows": ["lead", "listing"], "default_flow": "lead")"));
  ASSERT_EQ(put.status, 201) << put.body;
  EXPECT_NE(put.body.find(R"("flows":["lead","listing"])"), std::string::npos) << put.body;
  EXPECT_EQ(Call("PUT", path,
                 NumberJson(kSecond, R"(, "flows": ["lead", "listing"], "default_flow": "lead")"))
                .status,
            200);
  auto outside =
      Call("PUT", path, NumberJson(kSecond, R"(, "flows": ["listing"], "default_flow": "lead")"));
  EXPECT_EQ(outside.status, 422) << outside.body;
  EXPECT_NE(outside.body.find("default_flow is not one of flows: number " + std::string(kSecond) +
                              " does not run the flow lead (its flows: listing)"),
            std::string::npos)
      << outside.body;
  std::string many;
  for (int i = 0; i < 33; ++i)
    many += std::string(many.empty() ? "" : ", ") + "\"f" + std::to_string(i) + "\"";
  for (const std::string& bad :
       {std::string(R"([])"), std::string(R"(["lead", "lead"])"), std::string(R"(["Lead"])"),
        std::string(R"("lead")"), "[" + many + "]"}) {
    auto r = Call("PUT", path, NumberJson(kSecond, R"(, "flows": )" + bad));
    EXPECT_EQ(r.status, 400) << bad << " -> " << r.body;
    EXPECT_NE(r.body.find("flows names 1-32 distinct flows"), std::string::npos)
        << bad << " -> " << r.body;
  }
  EXPECT_EQ(
      Count(
          "SELECT count(*) FROM numbers WHERE flows = '{lead,listing}' AND default_flow = 'lead'"),
      1)
      << "a refused PUT changes nothing";
  auto every = Call("PUT", path, NumberJson(kSecond));
  ASSERT_EQ(every.status, 200) << every.body;
  EXPECT_EQ(every.body.find(R"("flows")"), std::string::npos)
      << "absent: every flow " << every.body;
}

TEST_F(NumbersApi, DeleteOffboardsAndKeepsTheRecord) {
  const std::string path = std::string("/v1/numbers/") + kSecond;
  ASSERT_EQ(Call("PUT", path, NumberJson(kSecond)).status, 201);
  auto gone = Call("DELETE", path);
  ASSERT_EQ(gone.status, 200) << gone.body;
  EXPECT_EQ(Field(gone.body, "status"), "offboarded");
  EXPECT_EQ(Field(Call("GET", path).body, "status"), "offboarded");
  EXPECT_EQ(Count("SELECT count(*) FROM numbers WHERE phone_number_id <> '106540352242922'"), 1)
      << "kept for the record";
  EXPECT_NE(Call("GET", "/v1/numbers?status=offboarded").body.find(kSecond), std::string::npos);
  EXPECT_EQ(Call("DELETE", "/v1/numbers/106540352247777").status, 404);
  EXPECT_EQ(Call("GET", "/v1/numbers/106540352247777").status, 404);
  // Brought back by a PUT, and never moved to another tenant.
  EXPECT_EQ(Call("PUT", path, NumberJson(kSecond)).status, 200);
  std::string other = NumberJson(kSecond);
  other.replace(other.find("acme"), 4, "globex");
  auto moved = Call("PUT", path, other);
  EXPECT_EQ(moved.status, 409) << moved.body;
  EXPECT_EQ(Field(Call("GET", path).body, "tenant"), "acme");
}

TEST_F(NumbersApi, TheSameTokenCheckAsTheOtherRoutes) {
  EXPECT_EQ(Call("GET", "/v1/numbers", "", {}, "").status, 401);
  EXPECT_EQ(
      Call("PUT", std::string("/v1/numbers/") + kSecond, NumberJson(kSecond), {}, "wrong").status,
      401);
  settings_.tokens = std::make_shared<TokenStore>(TokenSet());
  EXPECT_EQ(Call("GET", "/v1/numbers").status, 403) << "closed without a token configured";
  EXPECT_EQ(Count("SELECT count(*) FROM numbers WHERE phone_number_id <> '106540352242922'"), 0);
}

}  // namespace
}  // namespace convoy::conversation
