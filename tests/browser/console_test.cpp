// End to end, in a real browser (tests/browser/console.mjs: Debian's chromium, playwright-core,
// axe-core): the whole stack with the fakes, a lead driven to a person through the webhook as Meta
// sends it, and 100,000 more conversations in PostgreSQL. An agent signs in to the console, finds
// the lead, answers it, sees the customer's photo in the transcript and answers with a photo of
// its own (uploaded through the console's origin), and answers another customer, whose 24-hour
// window closed, with an approved template: the Graph fake gets each exactly once; a file that is
// not a photo is refused and sends nothing. A viewer sees the numbers masked and no photo; and
// every write of the conversations API, called directly with the viewer's token, is 403 (the
// console hides the buttons, the API is what refuses) and is in the audit log. A person the OIDC
// proxy signed in (no token of their own) takes the lead, answers with a photo (media checks
// conversation's vouch for them) and lists their tenant's deliveries (outbound checks it too).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include "browser_script.h"
#include "convoy/crypto.h"
#include "convoy/http.h"
#include "convoy/pg.h"
#include "convoy/tokens.h"
#include "stack.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

constexpr const char* kBusiness = "106540352242922";  // the demo number: tenant "demo"
constexpr const char* kAgentToken = "console-agent-token-0123456789abcdef";
constexpr const char* kViewerToken = "console-viewer-token-0123456789abcdef";

TEST(ConsoleBrowser, AnAgentAnswersAHandedOffLeadOnceAndAViewerSeesItMaskedAndMayWriteNothing) {
  const std::string tokens =
      ::testing::TempDir() + "/console_tokens_" + std::to_string(::getpid()) + ".txt";
  {
    std::ofstream out(tokens);
    out << "ana-agent agent demo " << TokenHashField(kAgentToken) << "\n"
        << "vic-viewer viewer demo " << TokenHashField(kViewerToken) << "\n";
  }
  // An OIDC proxy in front (oauth2-proxy): who its identities are, and the secret only it sends.
  const std::string identities =
      ::testing::TempDir() + "/console_identities_" + std::to_string(::getpid()) + ".txt";
  const std::string proxy_secret_file =
      ::testing::TempDir() + "/console_proxy_secret_" + std::to_string(::getpid());
  const std::string proxy_secret = "console-proxy-secret-0123456789abcdef-" + test::UniqueName("s");
  // What conversation vouches for such a person with, to media and outbound.
  const std::string forward_secret_file =
      ::testing::TempDir() + "/console_forward_secret_" + std::to_string(::getpid());
  {
    std::ofstream(identities) << "sam@demo.example sam-sso agent demo\n";
    std::ofstream(proxy_secret_file) << proxy_secret;
    std::ofstream(forward_secret_file)
        << "console-forward-secret-0123456789abcdef-" << test::UniqueName("f");
  }
  test::Stack stack(
      "console", {},
      {{"conversation",
        {"--default_flow=lead", "--tokens_file=" + tokens,
         "--console_dir=" + test::SourcePath("services/console"),
         "--proxy_identity_header=X-Forwarded-Email", "--proxy_identities_file=" + identities,
         "--proxy_secret_file=" + proxy_secret_file,
         "--forward_secret_file=" + forward_secret_file}},
       {"media", {"--tokens_file=" + tokens, "--forward_secret_file=" + forward_secret_file}},
       {"outbound", {"--tokens_file=" + tokens, "--forward_secret_file=" + forward_secret_file}}});
  // Conversation again, now that outbound's port is known: deliveries are listed through it.
  stack.extra_args["conversation"].push_back("--outbound_admin_url=" + stack.Url("outbound", ""));
  stack.Kill("conversation");
  stack.Launch("conversation");
  ASSERT_TRUE(stack.WaitReady("conversation", 60s))
      << stack.services["conversation"]->process.Log();
  // A lead the flow does not understand is handed to a person (the lead flow's not-understood end).
  const std::string lead = "971500000131";
  int64_t at = test::NowSeconds() - 600;
  // One at a time, each answered before the next, as a person writes (a reply still queued when the
  // handoff comes is cancelled, never sent).
  size_t answered = 0;
  for (const char* text : {"Hello", "blah blah", "qwerty zxcv"}) {
    ASSERT_EQ(stack.PostUpdate(test::MessageWebhook(kBusiness, lead, "Ana",
                                                    test::UniqueName("wamid.console"), at += 2,
                                                    test::TextMessage(text))),
              200);
    ASSERT_TRUE(stack.WaitSends(lead, ++answered)) << text;
  }
  auto owner = PgConnection::Connect(stack.db.dsn());
  ASSERT_TRUE(owner.ok());
  auto one = [&](const std::string& sql) {
    auto r = (*owner)->Exec(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && !r->empty() ? r->get(0, 0) : "";
  };
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        return one("SELECT owner FROM conversations WHERE wa_id = '" + lead + "'") == "human";
      },
      30s));
  const std::string id = one("SELECT id FROM conversations WHERE wa_id = '" + lead + "'");
  // The customer sends a photo while a person answers: fetched and stored all the same.
  const auto photos = stack.RegisterPhotos(test::UniqueName("console-photo-"), 1);
  ASSERT_EQ(stack.PostUpdate(test::MessageWebhook(
                kBusiness, lead, "Ana", test::UniqueName("wamid.console"), at += 2,
                test::CaptionedImageMessage(photos[0], "the broken part"))),
            200);
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        return one("SELECT count(*) FROM media_objects WHERE media_id = '" + photos[0] + "'") ==
               "1";
      },
      30s));
  // Another customer, who last wrote 25 hours ago: only an approved template may reach them.
  const std::string late = "971500000133";
  ASSERT_EQ(stack.PostUpdate(test::MessageWebhook(kBusiness, late, "Lin",
                                                  test::UniqueName("wamid.console"), at += 2,
                                                  test::TextMessage("Hello"))),
            200);
  ASSERT_TRUE(stack.WaitSends(late, 1));
  ASSERT_TRUE((*owner)
                  ->Exec("UPDATE conversations SET last_inbound_at = now() - interval '25 hours' "
                         "WHERE wa_id = $1",
                         {late})
                  .ok());
  ASSERT_TRUE(
      (*owner)
          ->Exec("INSERT INTO templates (waba_id, name, language, status, category, source) VALUES "
                 "('102290129340398', 'follow_up', 'en_US', 'APPROVED', 'UTILITY', 'sync'), "
                 "('102290129340398', 'spring_sale', 'en_US', 'PAUSED', 'MARKETING', 'sync') "
                 "ON CONFLICT DO NOTHING")
          .ok());
  const std::string late_id = one("SELECT id FROM conversations WHERE wa_id = '" + late + "'");
  // A parked delivery of the demo tenant, for the proxy-signed-in person's Operations screen.
  const std::string delivery = one(
      "INSERT INTO deliveries (result_id, sink, type, conversation_key, correlation_id, command, "
      "status, last_error) VALUES ('console-res-1', 'listing', 'webhook', '" +
      std::string(kBusiness) + ":" + lead +
      "', 'corr', '{}', 'parked', 'console test') RETURNING id");
  ASSERT_FALSE(delivery.empty());
  // 100,000 more conversations of the same number, older than the lead, one in ten with a person.
  auto seeded = (*owner)->Exec(
      "INSERT INTO conversations (conversation_key, phone_number_id, wa_id, owner, owner_agent, "
      "flow, last_inbound_at, "
      "created_at, updated_at) SELECT $1 || ':972' || lpad(i::text, 9, '0'), $1, '972' || "
      "lpad(i::text, 9, '0'), "
      "CASE WHEN i % 10 = 0 THEN 'human' ELSE 'bot' END, CASE WHEN i % 10 = 0 THEN 'ana-agent' "
      "END, 'lead', "
      "now() - interval '1 day' - i * interval '1 second', now() - interval '2 days', "
      "now() - interval '1 day' - i * interval '1 second' FROM generate_series(1, 100000) i",
      {std::string(kBusiness)});
  ASSERT_TRUE(seeded.ok()) << seeded.status().ToString();
  ASSERT_TRUE((*owner)->Exec("ANALYZE conversations").ok());

  // The browser run.
  const std::string reply =
      "Hi Ana, this is Ana from sales: when may we call you? " + test::UniqueName("r");
  test::ChildProcess node;
  ASSERT_TRUE(test::StartBrowserScript(node, "console.mjs", stack.dir + "/browser.log",
                                       {{"CONSOLE_URL", stack.Url("conversation", "/console/")},
                                        {"AGENT_TOKEN", kAgentToken},
                                        {"VIEWER_TOKEN", kViewerToken},
                                        {"LEAD_WA_ID", lead},
                                        {"LEAD_ID", id},
                                        {"LATE_ID", late_id},
                                        {"PHOTO_FILE", test::FixturePath("media/photo2.jpg")},
                                        {"PROXY_IDENTITY", "sam@demo.example"},
                                        {"PROXY_SECRET", proxy_secret},
                                        {"PROXY_PHOTO_FILE", test::FixturePath("media/photo3.jpg")},
                                        {"DELIVERY_ID", delivery},
                                        {"REPLY_TEXT", reply}}));
  const std::string out = test::ExpectBrowserChecksPassed(node);
  EXPECT_NE(out.find("first page rendered in "), std::string::npos);

  // The agent's answer and photo reached the Graph fake once each, the template once, and nothing
  // else was sent (the file that was not a photo never left).
  ASSERT_TRUE(stack.WaitSends(lead, 6)) << stack.services["outbound"]->process.Log();
  ASSERT_TRUE(stack.WaitSends(late, 2)) << stack.services["outbound"]->process.Log();
  ASSERT_TRUE(stack.Drained(30s));
  auto sent = stack.graph.SentTexts(lead);
  EXPECT_EQ(std::count(sent.begin(), sent.end(), reply), 1);
  ASSERT_EQ(sent.size(), 6u);
  EXPECT_EQ(sent[4].rfind("[image http://127.0.0.1:", 0), 0u) << sent[4];
  EXPECT_NE(sent[4].find("|Our workshop]"), std::string::npos) << sent[4];
  EXPECT_EQ(sent[5].rfind("[image http://127.0.0.1:", 0), 0u) << sent[5];
  EXPECT_NE(sent[5].find("|From the proxy]"), std::string::npos) << sent[5];
  EXPECT_EQ(stack.graph.SentTexts(late), (std::vector<std::string>{stack.graph.SentTexts(late)[0],
                                                                   "[template follow_up: Lin]"}));
  EXPECT_EQ(one("SELECT count(*) FROM audit_log WHERE actor = 'ana-agent' AND route = "
                "'/v1/conversations/{id}/messages' "
                "AND status = 202 AND tenant = 'demo'"),
            "3");
  EXPECT_EQ(one("SELECT string_agg(status::text, ',' ORDER BY id) FROM audit_log WHERE actor = "
                "'ana-agent' AND route = "
                "'/v1/media'"),
            "415,201")
      << "the file that was not a photo was refused by media, then the photo stored";

  // Behind the proxy, the agent's take and photo are in the audit log under the identity's mapped
  // name, and the photo is stored as the demo number's.
  EXPECT_EQ(one("SELECT count(*) FROM audit_log WHERE actor = 'sam-sso' AND route = "
                "'/v1/conversations/{id}/take' AND "
                "status = 200"),
            "1");
  EXPECT_EQ(one("SELECT string_agg(status::text, ',' ORDER BY id) FROM audit_log WHERE actor = "
                "'sam-sso' AND route = '/v1/media' AND tenant = 'demo'"),
            "201");
  EXPECT_EQ(one("SELECT phone_number_id FROM media_objects WHERE stored_name = '" +
                Sha256Hex(test::ReadFile(test::FixturePath("media/photo3.jpg"))) + ".jpg'"),
            kBusiness);

  // Every write of the conversations API, called directly with the viewer's token: 403, nothing
  // changed, each in the audit log.
  const std::string before =
      one("SELECT owner || ' ' || version FROM conversations WHERE id = '" + id + "'");
  int writes = 0;
  for (const char* action : {"handoff", "take", "pass", "release", "messages"}) {
    HttpClientRequest req;
    req.method = "POST";
    req.url = stack.Url("conversation", "/v1/conversations/" + id + "/" + action);
    req.headers["Authorization"] = std::string("Bearer ") + kViewerToken;
    req.body = std::string(action) == "messages" ? R"({"text": "from a viewer"})"
                                                 : R"({"reason": "viewer"})";
    auto r = HttpFetch(req);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 403) << action << " " << r->body;
    ++writes;
  }
  EXPECT_EQ(writes, 5);
  EXPECT_EQ(one("SELECT owner || ' ' || version FROM conversations WHERE id = '" + id + "'"),
            before);
  EXPECT_EQ(one("SELECT count(*) FROM audit_log WHERE actor = 'vic-viewer' AND status = 403"), "5");
  EXPECT_EQ(stack.graph.SentTexts(lead).size(), 6u) << "nothing sent for the viewer";
  std::remove(tokens.c_str());
  std::remove(identities.c_str());
  std::remove(proxy_secret_file.c_str());
  std::remove(forward_secret_file.c_str());
}

}  // namespace
}  // namespace convoy
