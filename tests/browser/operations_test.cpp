// End to end, in a real browser (tests/browser/operations.mjs: Debian's chromium, playwright-core,
// axe-core): the whole stack with the fakes. Four customers' first messages are parked in
// conversation.inbound.dlq as conversation's consumer parks one it gave up on (a parked send is
// failed for good in outbound's log: a replay records it, never sends it again). Three of them (the
// 97150000021x customers) are what the operator is after; the fourth is not.
// The operator signs in, filters the parked messages by content and error code, dry-runs a replay
// (3), types 3 and confirms: the three are processed, the Graph fake gets each one's reply exactly
// once, and the fourth stays parked. Before that, every write of the operations API, called
// directly with a viewer's token, is 403 and changes nothing; bad input is 400 with a code, a stale
// count 409; and every write is in the audit log with its filter, count and reason.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include "apps.h"
#include "browser_script.h"
#include "convoy/amqp.h"
#include "convoy/http.h"
#include "convoy/pg.h"
#include "convoy/rfc3339.h"
#include "convoy/tokens.h"
#include "convoy/topology.h"
#include "stack.h"
#include "testsupport.h"
#include "webhook.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

constexpr const char* kBusiness = "106540352242922";  // the demo number: tenant "demo"
constexpr const char* kOperatorToken = "ops-operator-token-0123456789abcdef";
constexpr const char* kViewerToken = "ops-viewer-token-0123456789abcdef0";
constexpr const char* kTenantOperatorToken = "ops-tenant-operator-token-0123456789";

HttpResponse Call(const std::string& url, const std::string& token, const std::string& method,
                  const std::string& body = "") {
  HttpClientRequest req;
  req.method = method;
  req.url = url;
  req.headers["Authorization"] = "Bearer " + token;
  req.body = body;
  auto r = HttpFetch(req);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (r.ok()) return *r;
  HttpResponse failed;
  failed.status = 0;
  return failed;
}

TEST(OperationsBrowser, AnOperatorFiltersParkedMessagesDryRunsAReplayConfirmsItAndTheyAreSentOnce) {
  const std::string tokens =
      ::testing::TempDir() + "/ops_tokens_" + std::to_string(::getpid()) + ".txt";
  {
    std::ofstream out(tokens);
    out << "olga-ops operator * " << TokenHashField(kOperatorToken) << "\n"
        << "vic-viewer viewer * " << TokenHashField(kViewerToken) << "\n"
        << "tom-tenant operator demo " << TokenHashField(kTenantOperatorToken) << "\n";
  }
  test::Stack stack("ops", {},
                    {{"conversation",
                      {"--default_flow=lead", "--typing_indicator=false", "--tokens_file=" + tokens,
                       "--console_dir=" + test::SourcePath("services/console"),
                       "--grafana_url=https://grafana.example.net/d/convoy",
                       "--rabbitmq_management_url=https://rabbitmq.example.net/"}},
                     {"outbound", {"--tokens_file=" + tokens}}});
  // Conversation again, now that the broker's ops user and outbound's port are known: parked
  // messages through the ops user (conversation's own may not read them), deliveries through
  // outbound.
  stack.extra_args["conversation"].push_back("--ops_amqp_url=" + stack.vhost.PartUrl("ops"));
  stack.extra_args["conversation"].push_back("--outbound_admin_url=" + stack.Url("outbound", ""));
  stack.Kill("conversation");
  stack.Launch("conversation");
  ASSERT_TRUE(stack.WaitReady("conversation", 60s))
      << stack.services["conversation"]->process.Log();
  const std::string api = stack.Url("conversation", "");

  // Four customers' first messages, parked as conversation's consumer parks one it gave up on (the
  // database refused it too many times): what ingress publishes, dead-lettered to
  // conversation.inbound.dlq with the reason, its code and the time. Replayed, each is a new lead.
  const std::vector<std::string> wanted = {"971500000211", "971500000212", "971500000213"};
  const std::string other = "971500000314";
  const AmqpOptions broker{stack.vhost.url(), "ops-test"};
  {
    Publisher pub(broker);
    pub.Start();
    ASSERT_TRUE(pub.WaitConnected(20s));
    int64_t at = test::NowSeconds() - 60;
    for (const auto& who : {wanted[0], wanted[1], wanted[2], other}) {
      const std::string correlation = test::UniqueName("corr");
      auto split = ingress::SplitWebhook(
          test::MessageWebhook(kBusiness, who, "Pat", test::UniqueName("wamid.ops"), ++at,
                               test::TextMessage("Hello")),
          correlation, Rfc3339(test::NowSeconds()));
      ASSERT_TRUE(split.ok()) << split.status().ToString();
      ASSERT_EQ(split->updates.size(), 1u);
      const auto& u = split->updates[0];
      AmqpMessage m;
      m.exchange = exchanges::kDlx;
      m.routing_key = queues::kConversationInbound;
      m.message_id = u.message_id;
      m.body = ingress::WithApp(u.body, ingress::kDefaultApp);
      const std::string why = "unavailable: the database refused the connection (SQLSTATE 53300)";
      m.headers = {{headers::kDedupeKey, u.dedupe_key},
                   {headers::kCorrelationId, correlation},
                   {headers::kConversationKey, u.conversation_key},
                   {headers::kOriginalQueue, queues::kConversationInbound},
                   {headers::kDeathReason, "gave up after 5 attempts: " + why},
                   {"x-last-error", "gave up after 5 attempts: " + why},
                   {"x-first-error", why},
                   {"x-parked-at", std::to_string(test::NowSeconds())}};
      m.int_headers = {{headers::kAttempt, 5}, {"x-last-error-code", 53300}};
      ASSERT_TRUE(pub.PublishAndWait(m, 10s).ok());
    }
    pub.Stop();
  }
  auto parked = [&] {
    auto n = QueueMessageCount(broker, "conversation.inbound.dlq");
    return n.ok() ? static_cast<int>(*n) : -1;
  };
  ASSERT_TRUE(test::WaitUntil([&] { return parked() == 4; }, 30s)) << parked();
  EXPECT_EQ(stack.graph.SendCount(), 0u);

  auto owner = PgConnection::Connect(stack.db.dsn());
  ASSERT_TRUE(owner.ok());
  auto one = [&](const std::string& sql) {
    auto r = (*owner)->Exec(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && !r->empty() ? r->get(0, 0) : "";
  };
  const std::string filter =
      R"({"q": "9715000002", "code": "53300", "queue": "conversation.inbound"})";

  // Reads: health with convoyctl's checks (as conversation's database role), queue depths, the
  // parked list; a viewer's masked, and no content search for it; a tenant's token none of it.
  {
    auto h = Call(api + "/v1/ops/health", kViewerToken, "GET");
    EXPECT_EQ(h.status, 200) << h.body;
    EXPECT_NE(h.body.find(R"("name":"parked messages","value":4.0)"), std::string::npos) << h.body;
    EXPECT_EQ(h.body.find("\"error\""), std::string::npos) << "every check ran: " << h.body;
    auto q = Call(api + "/v1/ops/queues", kViewerToken, "GET");
    EXPECT_EQ(q.status, 200) << q.body;
    EXPECT_NE(q.body.find(R"("queue":"conversation.inbound",)"), std::string::npos) << q.body;
    // Nothing waits in it (its age bound, from its consumers, is queue_waits_test's): 0 s.
    EXPECT_NE(q.body.find(R"("oldest_ready_age_seconds":0})"), std::string::npos) << q.body;
    EXPECT_NE(q.body.find(R"("grafana":"https://grafana.example.net/d/convoy")"), std::string::npos)
        << q.body;
    auto v = Call(api + "/v1/ops/parked?queue=conversation.inbound", kViewerToken, "GET");
    EXPECT_EQ(v.status, 200) << v.body;
    EXPECT_NE(v.body.find(R"("count":4)"), std::string::npos) << v.body;
    EXPECT_EQ(v.body.find(wanted[0]), std::string::npos)
        << "a viewer sees payloads masked: " << v.body;
    EXPECT_NE(v.body.find(wanted[0].substr(wanted[0].size() - 4)), std::string::npos) << v.body;
    auto o = Call(api + "/v1/ops/parked?q=9715000002&code=53300", kOperatorToken, "GET");
    EXPECT_EQ(o.status, 200) << o.body;
    EXPECT_NE(o.body.find(R"("count":3)"), std::string::npos) << o.body;
    EXPECT_NE(o.body.find(wanted[0]), std::string::npos) << "an operator reads payloads in clear";
    EXPECT_EQ(Call(api + "/v1/ops/parked?q=9715000002", kViewerToken, "GET").status, 403);
    EXPECT_EQ(Call(api + "/v1/ops/parked", kTenantOperatorToken, "GET").status, 403)
        << "parked messages are global";
    EXPECT_EQ(Call(api + "/v1/ops/parked?since=yesterday", kOperatorToken, "GET").status, 400);
    auto d = Call(api + "/v1/deliveries", kOperatorToken, "GET");
    EXPECT_EQ(d.status, 200) << "forwarded to outbound: " << d.body;
    EXPECT_NE(d.body.find(R"("deliveries":)"), std::string::npos) << d.body;
  }

  // Every write, with a viewer's token: 403, nothing moved, each in the audit log.
  const std::string replay = api + "/v1/ops/parked/replay", purge = api + "/v1/ops/parked/purge";
  EXPECT_EQ(Call(replay, kViewerToken, "POST", R"({"filter": )" + filter + R"(, "dry_run": true})")
                .status,
            403);
  EXPECT_EQ(
      Call(replay, kViewerToken, "POST", R"({"filter": )" + filter + R"(, "confirm": "3"})").status,
      403);
  EXPECT_EQ(Call(purge, kViewerToken, "POST",
                 R"({"filter": )" + filter + R"(, "confirm": "3", "reason": "viewer"})")
                .status,
            403);
  EXPECT_EQ(Call(api + "/v1/deliveries/replay", kViewerToken, "POST", R"({"id": 1})").status, 403);
  EXPECT_EQ(
      Call(replay, kTenantOperatorToken, "POST", R"({"filter": )" + filter + R"(, "confirm": "3"})")
          .status,
      403);
  EXPECT_EQ(one("SELECT count(*) FROM audit_log WHERE actor = 'vic-viewer' AND status = 403"), "4");
  EXPECT_EQ(one("SELECT count(*) FROM audit_log WHERE actor = 'tom-tenant' AND status = 403"), "1");
  // Bad input from the operator: a clear 400 with a code, and a count that is not the filter's now
  // a 409; nothing moved.
  auto code_of = [](const HttpResponse& r) {
    const size_t at = r.body.find("\"code\":\"");
    return at == std::string::npos ? std::string()
                                   : r.body.substr(at + 8, r.body.find('"', at + 8) - at - 8);
  };
  auto r = Call(replay, kOperatorToken, "POST",
                R"({"filter": {"queue": "no.such.queue"}, "dry_run": true})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(code_of(r), "invalid_argument") << r.body;
  r = Call(replay, kOperatorToken, "POST", R"({"filter": {"qq": "x"}, "dry_run": true})");
  EXPECT_EQ(r.status, 400) << "an unknown filter member never widens a filter to everything: "
                           << r.body;
  r = Call(replay, kOperatorToken, "POST", R"({"filter": )" + filter + "}");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(code_of(r), "confirm_required") << r.body;
  r = Call(replay, kOperatorToken, "POST", "not json");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(code_of(r), "invalid_json") << r.body;
  r = Call(replay, kOperatorToken, "POST", R"({"filter": )" + filter + R"(, "confirm": "4"})");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(code_of(r), "count_changed") << r.body;
  r = Call(purge, kOperatorToken, "POST", R"({"filter": )" + filter + R"(, "confirm": "3"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(code_of(r), "reason_required") << r.body;
  EXPECT_EQ(parked(), 4);
  EXPECT_EQ(stack.graph.SendCount(), 0u);

  // The browser run.
  test::ChildProcess node;
  ASSERT_TRUE(test::StartBrowserScript(node, "operations.mjs", stack.dir + "/browser.log",
                                       {{"CONSOLE_URL", stack.Url("conversation", "/console/")},
                                        {"OPERATOR_TOKEN", kOperatorToken},
                                        {"VIEWER_TOKEN", kViewerToken},
                                        {"CONTENT", "9715000002"},
                                        {"WANTED", wanted[0] + "," + wanted[1] + "," + wanted[2]},
                                        {"OTHER", other}}));
  test::ExpectBrowserChecksPassed(node);

  // Each of the three replies reached Graph once; the fourth is still parked and was never sent.
  for (const auto& who : wanted) EXPECT_TRUE(stack.WaitSends(who, 1)) << who;
  ASSERT_TRUE(stack.Drained(30s));
  for (const auto& who : wanted) EXPECT_EQ(stack.graph.SentTexts(who).size(), 1u) << who;
  EXPECT_EQ(stack.graph.SentTexts(other).size(), 0u);
  EXPECT_EQ(parked(), 1);
  EXPECT_EQ(one("SELECT count(*) FROM conversations WHERE wa_id IN ('" + wanted[0] + "', '" +
                wanted[1] + "', '" + wanted[2] + "', '" + other + "')"),
            "3")
      << "the three replayed are conversations now, the other is not";
  // The operator's dry run and replay, with the filter and the count.
  EXPECT_EQ(one("SELECT count(*) FROM audit_log WHERE actor = 'olga-ops' AND route = "
                "'/v1/ops/parked/replay' AND status = 200 "
                "AND count = 3 AND filter->>'q' = '9715000002' AND filter->>'code' = '53300'"),
            "2")
      << one("SELECT json_agg(a)::text FROM audit_log a WHERE actor = 'olga-ops'");

  // The one left: purged with a reason, after its own dry run; in the log with both.
  r = Call(purge, kOperatorToken, "POST",
           R"({"filter": {"q": ")" + other + R"("}, "dry_run": true})");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find(R"("count":1)"), std::string::npos) << r.body;
  r = Call(purge, kOperatorToken, "POST",
           R"({"filter": {"q": ")" + other +
               R"("}, "confirm": "1", "reason": "test customer, not real"})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body.rfind(R"({"purged":1})", 0), 0u) << r.body;
  EXPECT_EQ(parked(), 0);
  EXPECT_EQ(one("SELECT count(*) FROM audit_log WHERE actor = 'olga-ops' AND route = "
                "'/v1/ops/parked/purge' AND status = 200 "
                "AND count = 1 AND reason = 'test customer, not real'"),
            "1");
  EXPECT_EQ(stack.graph.SentTexts(other).size(), 0u);
  std::remove(tokens.c_str());
}

}  // namespace
}  // namespace convoy
