// End to end: seed 001's checklist. A manager's system assigns it over the API; the operator gets
// the template (outside the 24-hour window), answers "Question i of N" three ways over WhatsApp
// (an answer with its note, "NOT OK - guard cracked"; a tapped answer that needs a note, then it),
// confirms; the assignment is completed and checklist.completed reaches the business, signed,
// with its photos as links. Plus: expiry across a restart of the conversation service.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <iostream>

#include "convoy/http.h"
#include "convoy/json.h"
#include "convoy/pg.h"
#include "convoy/rapidjson_util.h"
#include "deliveries.h"
#include "fake_sink.h"
#include "stack.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

constexpr const char* kBusiness = "106540352242922";

std::string Member(const std::string& json, const char* key) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  return !d.HasParseError() && d.IsObject() && d.HasMember(key) && d[key].IsString()
             ? d[key].GetString()
             : "";
}

std::string Assignment(const std::string& op, const std::string& reference) {
  return R"({"checklist": "line-qa", "operator": ")" + op + R"(", "phone_number_id": ")" +
         kBusiness + R"(", "reference": ")" + reference + R"(", "operator_name": "Ana"})";
}

TEST(ChecklistE2e, AnOperatorAnswersOverWhatsAppAndTheSubmissionReachesTheBusiness) {
  fake::FakeReceiver receiver({test::Key(test::kOldSecret)});
  ASSERT_TRUE(receiver.Start().ok());
  std::string sinks =
      test::WriteSinks(R"({"sinks": [)" +
                       test::WebhookSink("checklist", receiver.url(),
                                         R"([")" + std::string(test::kOldSecret) + R"("])") +
                       "]}");
  test::Stack env("e2e_checklist", {}, {{"outbound", {"--sinks_file=" + sinks}}});
  const std::string op = "16505550081";
  auto photos = env.RegisterPhotos("e2e-checklist-photo-", 2);

  // The shipped checklist (deploy/checklists/line-qa.json) assigned; the same reference again is
  // the same assignment.
  auto created = env.Api("POST", "/v1/assignments", Assignment(op, "MGR-1"));
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = Member(created.body, "id");
  EXPECT_EQ(Member(created.body, "status"), "active");
  auto again = env.Api("POST", "/v1/assignments", Assignment(op, "MGR-1"));
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(Member(again.body, "id"), id);
  // A second checklist for the busy operator waits for the first.
  auto next = env.Api("POST", "/v1/assignments", Assignment(op, "MGR-2"));
  ASSERT_EQ(next.status, 201);
  EXPECT_EQ(Member(next.body, "status"), "pending");
  // Outside the window: the approved template first.
  ASSERT_TRUE(env.WaitSends(op, 1)) << env.services["conversation"]->process.Log();
  EXPECT_EQ(env.graph.SentTexts(op).at(0),
            "[template checklist_assigned: Ana|Line QA — end of shift|4]");

  // WhatsApp's timestamps are seconds: an answer sent in the same second as the one before it was
  // sent before the next question arrived, so the operator's messages here are seconds apart.
  int64_t at = test::NowSeconds();
  auto say = [&](const std::string& message, size_t sends) {
    at += 2;
    ASSERT_EQ(env.PostMessage(op, message, at), 200);
    ASSERT_TRUE(env.WaitSends(op, sends)) << env.graph.RequestsJson();
  };
  say(test::ButtonReplyMessage("start", "Start"), 2);  // the tap on the template
  say(test::TextMessage("OK - Oil level normal"), 3);  // text where a photo is required
  say(test::CaptionedImageMessage(photos[0], "NOT OK - guard cracked"),
      4);                                                 // 1: photo, answer and note
  say(test::ImageMessage(photos[1]), 5);                  // 2: photo first...
  say(test::TextMessage("Batch 4711"), 6);                //    ...then its note
  say(test::ButtonReplyMessage("answer_2", "FOUND"), 7);  // 3: a button that needs a note...
  say(test::TextMessage("oil under the press"), 8);       //    ...then the note
  // The answers so far are on the assignment, with their notes.
  auto progress = env.Api("GET", "/v1/assignments/" + id);
  EXPECT_NE(progress.body.find("Batch 4711"), std::string::npos) << progress.body;
  rapidjson::Document so_far;
  so_far.Parse(progress.body.c_str());
  ASSERT_TRUE(!so_far.HasParseError() && so_far.IsObject() && so_far["answers"].IsObject())
      << progress.body;
  EXPECT_EQ(JsonStr(so_far["answers"]["q1"], "note"), "guard cracked") << progress.body;
  EXPECT_EQ(so_far["answered"].GetInt(), 3) << progress.body;
  say(test::TextMessage("Belt 3 squeaks"), 9);  // 4: text only
  say(test::TextMessage("CONFIRM"), 10);
  const std::vector<std::string> expected = {
      "[template checklist_assigned: Ana|Line QA — end of shift|4]",
      "📋 Question 1 of 4: Is the machine guard closed and undamaged? [OK|NOT OK]",
      "Question 1 needs a photo. Send a photo (with your note as its caption, or the note right "
      "after it).",
      "📋 Question 2 of 4: Photo of the finished batch label, with the batch number as the note.",
      "Got the photo for question 2. Now send your note for it.",
      "📋 Question 3 of 4: Any spills, leaks or loose parts around the line? [NONE|FOUND]",
      "Please add a note for FOUND on question 3: what did you find? (For example: FOUND - what "
      "you saw.)",
      "📋 Question 4 of 4: Anything else the next shift should know?",
      "Here are your answers:\n1. Is the machine guard closed and undamaged?: NOT OK — guard "
      "cracked (1 photo)\n"
      "2. Photo of the finished batch label, with the batch number as the note.: Batch 4711 (1 "
      "photo)\n"
      "3. Any spills, leaks or loose parts around the line?: FOUND — oil under the press\n"
      "4. Anything else the next shift should know?: Belt 3 squeaks\nReply CONFIRM to submit.",
      "✅ Checklist submitted. Thank you!",
  };
  // The operator's next checklist starts right after this one (checked below): these come first.
  auto first = env.graph.SentTexts(op);
  first.resize(std::min(first.size(), expected.size()));
  EXPECT_EQ(first, expected);

  // The submission reaches the business once, signed, with both photos as working links.
  ASSERT_TRUE(receiver.WaitFor(1, 60s)) << env.services["outbound"]->process.Log();
  auto done = env.Api("GET", "/v1/assignments/" + id);
  EXPECT_EQ(Member(done.body, "status"), "completed") << done.body;
  // Each stored photo of the answers comes with a short-lived signed link to media (the console
  // shows it): it works.
  rapidjson::Document answered;
  answered.Parse(done.body.c_str());
  ASSERT_TRUE(!answered.HasParseError() && answered.IsObject() && answered["answers"].IsObject())
      << done.body;
  for (const char* q : {"q1", "q2"}) {
    ASSERT_EQ(answered["answers"][q]["photos"].Size(), 1u) << done.body;
    const auto& photo = answered["answers"][q]["photos"][0];
    ASSERT_TRUE(photo.HasMember("url")) << done.body;
    HttpClientRequest get;
    get.url = photo["url"].GetString();
    auto served = HttpFetch(get);
    ASSERT_TRUE(served.ok());
    EXPECT_EQ(served->status, 200) << get.url;
  }
  const auto r = receiver.Requests().at(0);
  EXPECT_TRUE(r.verified);
  SchemaRegistry schemas;
  ASSERT_TRUE(schemas.LoadDir(test::SourcePath("proto-schemas")).ok());
  EXPECT_TRUE(schemas.ValidateAs("checklist.completed", 1, r.body).ok())
      << schemas.ValidateAs("checklist.completed", 1, r.body).ToString();
  rapidjson::Document body;
  body.Parse(r.body.c_str());
  EXPECT_STREQ(body["data"]["fields"]["reference"].GetString(), "MGR-1");
  EXPECT_STREQ(body["data"]["fields"]["q2"].GetString(), "Batch 4711");
  // The notes reach the business with their answers.
  EXPECT_STREQ(body["data"]["fields"]["q1"].GetString(), "NOT OK");
  EXPECT_STREQ(body["data"]["fields"]["q1_note"].GetString(), "guard cracked");
  EXPECT_STREQ(body["data"]["fields"]["q3"].GetString(), "FOUND");
  EXPECT_STREQ(body["data"]["fields"]["q3_note"].GetString(), "oil under the press");
  ASSERT_EQ(body["data"]["photos"].Size(), 2u);
  for (const auto& p : body["data"]["photos"].GetArray()) {
    ASSERT_STREQ(p["status"].GetString(), "stored") << r.body;
    HttpClientRequest get;
    get.url = p["url"].GetString();
    auto served = HttpFetch(get);
    ASSERT_TRUE(served.ok());
    EXPECT_EQ(served->status, 200);
  }
  EXPECT_EQ(receiver.Count(), 1u);
  // The first completed, the second starts: inside the window now, so no template.
  EXPECT_TRUE(test::WaitUntil(
      [&] {
        return Member(env.Api("GET", "/v1/assignments/" + Member(next.body, "id")).body,
                      "status") == "active";
      },
      30s));
  ASSERT_TRUE(env.WaitSends(op, expected.size() + 1));
  auto texts = env.graph.SentTexts(op);
  ASSERT_EQ(texts.size(), expected.size() + 1) << "the intro and question 1 in one message";
  EXPECT_EQ(texts.back().substr(0, 38), "Hi Ana! You have a new checklist: Line") << texts.back();
  EXPECT_NE(texts.back().find(
                "\n\n📋 Question 1 of 4: Is the machine guard closed and undamaged? [OK|NOT OK]"),
            std::string::npos)
      << texts.back();
}

// The due time is in PostgreSQL: an assignment that falls due while the conversation service is
// down expires when it is back, and the operator's next one starts.
// Meta refuses the template that opens the checklist (132001: not in that language): the manager's
// system hears the assignment is undeliverable, with the reason, at the checklist sink within a
// minute; a retry sends the template again and the assignment runs.
TEST(ChecklistE2e, ARejectedTemplateMakesTheAssignmentUndeliverableAtTheSinkAndARetrySendsItAgain) {
  fake::FakeReceiver receiver({test::Key(test::kOldSecret)});
  ASSERT_TRUE(receiver.Start().ok());
  std::string sinks =
      test::WriteSinks(R"({"sinks": [)" +
                       test::WebhookSink("checklist", receiver.url(),
                                         R"([")" + std::string(test::kOldSecret) + R"("])") +
                       "]}");
  test::Stack env("e2e_checklist_undeliverable", {}, {{"outbound", {"--sinks_file=" + sinks}}});
  const std::string op = "16505550089";
  env.graph.Inject(400, 132001, 1, 0,
                   "/messages");  // the first send: the template, refused for good
  const auto start = std::chrono::steady_clock::now();
  auto created = env.Api("POST", "/v1/assignments", Assignment(op, "MGR-U"));
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = Member(created.body, "id");
  ASSERT_TRUE(receiver.WaitFor(1, 60s)) << env.services["outbound"]->process.Log();
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  std::cout << "assignment created -> assignment.undeliverable at the sink: " << waited.count()
            << " ms\n";
  EXPECT_LT(waited, 60s);
  auto got = receiver.Requests();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].verified);
  rapidjson::Document body;
  body.Parse(got[0].body.c_str());
  ASSERT_TRUE(body.IsObject()) << got[0].body;
  EXPECT_STREQ(body["type"].GetString(), "checklist.undeliverable");
  EXPECT_EQ(std::string(body["data"]["fields"]["assignment_id"].GetString()), id);
  EXPECT_EQ(std::string(body["data"]["fields"]["reference"].GetString()), "MGR-U");
  EXPECT_NE(std::string(body["data"]["fields"]["reason"].GetString()).find("132001"),
            std::string::npos)
      << got[0].body;
  auto shown = env.Api("GET", "/v1/assignments/" + id);
  EXPECT_EQ(Member(shown.body, "status"), "undeliverable") << shown.body;
  EXPECT_TRUE(env.graph.SentTexts(op).empty()) << "the refused template reached no one";

  auto retried = env.Api("POST", "/v1/assignments/" + id + "/retry");
  ASSERT_EQ(retried.status, 200) << retried.body;
  EXPECT_EQ(Member(retried.body, "status"), "active");
  ASSERT_TRUE(env.WaitSends(op, 1)) << env.services["conversation"]->process.Log();
  EXPECT_EQ(env.graph.SentTexts(op).at(0),
            "[template checklist_assigned: Ana|Line QA — end of shift|4]");
  ASSERT_TRUE(env.Drained(30s));
  EXPECT_EQ(receiver.Requests().size(), 1u) << "told once";
}

TEST(ChecklistE2e, AnAssignmentDueWhileTheServiceIsDownExpiresWhenItIsBack) {
  test::Stack env("e2e_checklist_expiry", {},
                  {{"conversation", {"--assignment_ttl_seconds=5", "--sweep_interval_seconds=1"}}});
  const std::string op = "16505550082";
  auto first = env.Api("POST", "/v1/assignments", Assignment(op, "MGR-10"));
  ASSERT_EQ(first.status, 201) << first.body;
  auto second = env.Api("POST", "/v1/assignments", Assignment(op, "MGR-11"));
  EXPECT_EQ(Member(second.body, "status"), "pending");
  ASSERT_TRUE(env.WaitSends(op, 1));
  env.Kill("conversation");
  auto db = PgConnection::Connect(env.db.dsn());
  ASSERT_TRUE(db.ok());
  // Until the first is due (a condition on the database's clock, not a sleep).
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        auto due =
            (*db)->Exec("SELECT expires_at <= now() FROM assignments WHERE reference = 'MGR-10'");
        return due.ok() && due->get(0, 0) == "t";
      },
      30s));
  auto still = (*db)->Exec("SELECT status FROM assignments WHERE reference = 'MGR-10'");
  EXPECT_EQ(still->get(0, 0), "active") << "nobody expired it while the service was down";
  env.Launch("conversation");
  ASSERT_TRUE(env.WaitReady("conversation", 60s));
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        return Member(env.Api("GET", "/v1/assignments/" + Member(first.body, "id")).body,
                      "status") == "expired";
      },
      30s));
  EXPECT_TRUE(test::WaitUntil(
      [&] {
        return Member(env.Api("GET", "/v1/assignments/" + Member(second.body, "id")).body,
                      "status") == "active";
      },
      30s));
  // The second checklist's template goes to the operator.
  ASSERT_TRUE(env.WaitSends(op, 2));
}

}  // namespace
}  // namespace convoy
