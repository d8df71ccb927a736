// End to end, in a real browser (tests/browser/checklists.mjs: Debian's chromium, playwright-core,
// axe-core): the console's Checklists screen. A manager signs in, defines a checklist and assigns
// it; the operator answers "Question i of N" with photos through the webhook as Meta sends it; the
// manager watches the answers and photos appear, and exports the completed assignment as CSV and
// as PDF (both photos embedded). A
// viewer sees progress, not answers; and every write of the screen, called directly with the
// viewer's token, is 403 and changes nothing.
//
// The browser and this test take turns through files in a folder of the run (each waits for the
// other's file, with a deadline): the manager has the assignment open before the operator starts,
// sees the first answer and photo before the second comes, and both before the operator confirms.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "browser_script.h"
#include "convoy/http.h"
#include "convoy/pg.h"
#include "convoy/tokens.h"
#include "stack.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

constexpr const char* kBusiness = "106540352242922";  // the demo number: tenant "demo"
constexpr const char* kManagerToken = "console-manager-token-0123456789abcdef";
constexpr const char* kViewerToken = "console-viewer-token-0123456789abcdef";

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

TEST(ChecklistsBrowser, AManagerAssignsAChecklistWatchesThePhotosArriveAndExportsThem) {
  const std::string tokens =
      ::testing::TempDir() + "/checklists_tokens_" + std::to_string(::getpid()) + ".txt";
  {
    std::ofstream out(tokens);
    out << "mia-manager manager demo " << TokenHashField(kManagerToken) << "\n"
        << "vic-viewer viewer demo " << TokenHashField(kViewerToken) << "\n";
  }
  test::Stack stack(
      "checklists", {},
      {{"conversation",
        {"--tokens_file=" + tokens, "--console_dir=" + test::SourcePath("services/console")}}});
  const std::string op = "16505550241";
  const std::string checklist = test::UniqueName("press-qa");
  auto photos = stack.RegisterPhotos(test::UniqueName("browser-checklist-photo-"), 2);
  const std::string turns = stack.dir + "/turns";
  ASSERT_EQ(::mkdir(turns.c_str(), 0700), 0);
  auto owner = PgConnection::Connect(stack.db.dsn());
  ASSERT_TRUE(owner.ok());
  auto one = [&](const std::string& sql,
                 const std::vector<std::optional<std::string>>& params = {}) {
    auto r = (*owner)->Exec(sql, params);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && !r->empty() ? r->get(0, 0) : "";
  };

  test::ChildProcess node;
  ASSERT_TRUE(test::StartBrowserScript(node, "checklists.mjs", stack.dir + "/browser.log",
                                       {{"CONSOLE_URL", stack.Url("conversation", "/console/")},
                                        {"MANAGER_TOKEN", kManagerToken},
                                        {"VIEWER_TOKEN", kViewerToken},
                                        {"OPERATOR", op},
                                        {"BUSINESS", kBusiness},
                                        {"CHECKLIST_ID", checklist},
                                        {"TURNS_DIR", turns}}));
  // The browser's turn: waited for while it runs (a failed script ends the wait at once).
  auto browser_did = [&](const std::string& what, std::chrono::seconds deadline) {
    const bool done =
        test::WaitUntil([&] { return Exists(turns + "/" + what) || !node.running(); }, deadline) &&
        Exists(turns + "/" + what);
    EXPECT_TRUE(done) << "the browser did not get to " << what << ":\n" << node.Log();
    return done;
  };
  auto my_turn = [&](const std::string& what) { std::ofstream(turns + "/" + what) << "done\n"; };

  // The manager defined the checklist and assigned it, and has it open ("Question 1 of 2").
  if (browser_did("assigned", 90s)) {
    const std::string id = one(
        "SELECT id FROM assignments WHERE checklist_id = $1 AND operator = $2", {checklist, op});
    EXPECT_EQ(one("SELECT status || ' ' || tenant FROM assignments WHERE id = $1", {id}),
              "active demo");
    EXPECT_EQ(one("SELECT source || ' ' || tenant FROM checklists WHERE id = $1", {checklist}),
              "api demo");
    // The operator, as Meta sends it: the template's tap, then each answer once the question came.
    ASSERT_TRUE(stack.WaitSends(op, 1)) << stack.services["conversation"]->process.Log();
    int64_t at = test::NowSeconds();
    auto say = [&](const std::string& message, size_t sends) {
      at += 2;  // WhatsApp's seconds: each answer after the question it answers
      ASSERT_EQ(stack.PostMessage(op, message, at), 200);
      ASSERT_TRUE(stack.WaitSends(op, sends)) << stack.graph.RequestsJson();
    };
    say(test::ButtonReplyMessage("start", "Start"), 2);                        // Question 1 of 2
    say(test::CaptionedImageMessage(photos[0], "NOT OK - guard cracked"), 3);  // Question 2 of 2
    // The manager saw the first answer and its photo while the second question was open...
    if (browser_did("seen-first-answer", 90s)) {
      say(test::ImageMessage(photos[1]), 4);    // its photo first...
      say(test::TextMessage("Batch 4711"), 5);  // ...then its note: the summary
      // ...and both answers and photos before the operator confirmed.
      if (browser_did("seen-answers", 90s)) {
        say(test::TextMessage("CONFIRM"), 6);
        my_turn("confirmed");
      }
    }
  }
  test::ExpectBrowserChecksPassed(node);
  const std::string id =
      one("SELECT id FROM assignments WHERE checklist_id = $1 AND operator = $2", {checklist, op});
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(one("SELECT status FROM assignments WHERE id = $1", {id}), "completed");
  EXPECT_EQ(one("SELECT count(*) FROM audit_log WHERE actor = 'mia-manager' AND route = "
                "'/v1/assignments' AND status = 201 "
                "AND tenant = 'demo'"),
            "1");

  // Every write of the screen, called directly with the viewer's token: 403, nothing changed, each
  // in the audit log; the export (the answers in full) is refused too.
  const std::string before =
      one("SELECT (SELECT count(*) FROM checklists) || ' ' || (SELECT count(*) FROM assignments) "
          "|| ' ' || "
          "(SELECT string_agg(status || updated_at::text, ',' ORDER BY id) FROM assignments)");
  const std::string body = R"({"title": "From a viewer", "questions": [{"text": "Anything?"}]})";
  const std::string assign = R"({"checklist": ")" + checklist +
                             R"(", "operator": "16505550242", "phone_number_id": ")" + kBusiness +
                             R"(", "reference": "viewer-1"})";
  int refused = 0;
  for (const auto& [method, path, payload] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"PUT", "/v1/checklists/" + checklist, body},
           {"PUT", "/v1/checklists/" + checklist + "-viewer", body},
           {"POST", "/v1/assignments", assign},
           {"POST", "/v1/assignments/" + id + "/cancel", "{}"},
           {"POST", "/v1/assignments/" + id + "/retry", "{}"},
           {"GET", "/v1/assignments/" + id + "/export.csv", ""},
           {"GET", "/v1/assignments/" + id + "/export.pdf", ""}}) {
    HttpClientRequest req;
    req.method = method;
    req.url = stack.Url("conversation", path);
    req.headers["Authorization"] = std::string("Bearer ") + kViewerToken;
    req.body = payload;
    auto r = HttpFetch(req);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 403) << method << " " << path << " " << r->body;
    refused += r->status == 403;
  }
  EXPECT_EQ(refused, 7);
  EXPECT_EQ(
      one("SELECT (SELECT count(*) FROM checklists) || ' ' || (SELECT count(*) FROM assignments) "
          "|| ' ' || "
          "(SELECT string_agg(status || updated_at::text, ',' ORDER BY id) FROM assignments)"),
      before);
  EXPECT_EQ(one("SELECT count(*) FROM audit_log WHERE actor = 'vic-viewer' AND status = 403"), "5")
      << "the five writes";
  std::remove(tokens.c_str());
}

}  // namespace
}  // namespace convoy
