// Integration: every /v1/ route of convoy-outbound's admin API called with every role's token (for
// every tenant and for one tenant), against a real PostgreSQL, as the HTTP server calls
// HandleAdmin; the expected answers are written out here, not derived from AdminRoutes().
#include "admin.h"

#include <gtest/gtest.h>

#include <ctime>

#include "api_tokens.h"
#include "convoy/pg.h"
#include "fake_graph.h"
#include "testsupport.h"

namespace convoy::outbound {
namespace {

using test::ApiTokens;

using Want = test::WantRoute;
const std::vector<Want> kWant = {
    {"GET", "/v1/deliveries", "viewer agent manager operator admin", 200, Scope::kTenant, 200},
    // acme's token on tenant "test"'s parked delivery: not found.
    {"POST", "/v1/deliveries/replay", "operator admin", 200, Scope::kTenant, 404},
    {"POST", "/v1/sinks/{name}/enable", "operator admin", 200, Scope::kGlobal, 0},
    {"GET", "/v1/templates", "viewer agent manager operator admin", 200, Scope::kTenant, 200},
    // acme's token on tenant "test"'s WABA: not found.
    {"POST", "/v1/templates/sync", "operator admin", 200, Scope::kTenant, 404},
};

constexpr const char* kWaba = "102290129340398";  // test::RegisterNumber's
constexpr const char* kGraphToken = "graph-token";

class AdminRoles : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = PgConnection::Connect(db_.dsn());
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(RunMigrations(**c, test::SourcePath("deploy/postgres")).ok());
    settings_.pg_dsn = db_.dsn();
    settings_.tokens = tokens_.Open();
    ASSERT_TRUE(graph_.Start().ok());
    graph_.SetTemplates(
        kWaba,
        {R"({"id":"1","name":"hello","language":"en_US","status":"APPROVED","category":"UTILITY"})"},
        10);
    settings_.graph = {graph_.base_url(), nullptr, std::chrono::seconds(30), kGraphToken};
    sinks_.sinks["listing"].name = "listing";
    test::RegisterNumber(**c, test::kDemoNumber);  // tenant "test"
    sql_ = std::move(*c);
    Delivery(test::kDemoNumber, "parked");  // id 1
  }
  // A delivery of a result of a conversation on `number`; its id.
  std::string Delivery(const std::string& number, const std::string& status) {
    const std::string n = std::to_string(++made_);
    auto r = sql_->Exec(
        "INSERT INTO deliveries (result_id, sink, type, conversation_key, correlation_id, command, "
        "status) "
        "VALUES ($1, 'listing', 'webhook', $2, 'corr', '{}', $3) RETURNING id",
        {"res-" + n, number + ":1650555" + n, status});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->get(0, 0) : "";
  }
  HttpResponse Call(const std::string& method, const std::string& path, const std::string& body,
                    const std::string& authorization) {
    return HandleAdmin(test::ApiRequest(method, path, body, authorization), settings_, sinks_);
  }
  static std::pair<std::string, std::string> Probe(const Want& w) {
    const std::string p = w.pattern;
    if (p == "/v1/deliveries/replay") return {p, R"({"id": 1})"};
    if (p == "/v1/sinks/{name}/enable") return {"/v1/sinks/listing/enable", ""};
    if (p == "/v1/templates/sync") return {p, std::string(R"({"waba_id": ")") + kWaba + "\"}"};
    return {p, ""};
  }
  fake::FakeGraph graph_{kGraphToken};
  test::TestDatabase db_{"out_roles"};
  std::unique_ptr<PgConnection> sql_;
  int made_ = 0;
  ApiTokens tokens_;
  AdminSettings settings_;
  SinkSet sinks_;
};

TEST_F(AdminRoles, TheTableInTheCodeIsTheOneThisTestExpects) {
  test::ExpectTable(AdminRoutes(), kWant);
}

TEST_F(AdminRoles, EveryRouteWithEveryRoleAndTenantAnswersAsTheTableSays) {
  int calls = 0;
  for (const Want& w : kWant) {
    const auto [path, body] = Probe(w);
    for (Role role : ApiTokens::kRoles) {
      for (const std::string tenant : {"*", "acme"}) {
        auto resp = Call(w.method, path, body, "Bearer " + ApiTokens::Token(role, tenant));
        ++calls;
        test::ExpectAnswer(
            w, role, tenant, resp,
            std::string(w.method) + " " + path + " as " + ApiTokens::Name(role, tenant));
      }
    }
    EXPECT_EQ(Call(w.method, path, body, std::string("Bearer ") + ApiTokens::kAdminEnv).status,
              w.ok)
        << w.pattern << " as CONVOY_ADMIN_TOKEN";
    for (const char* auth : {"", "Bearer ", "Bearer    ", "Bearer nope"}) {
      EXPECT_EQ(Call(w.method, path, body, auth).status, 401)
          << w.pattern << " with '" << auth << "'";
    }
  }
  EXPECT_EQ(calls, 50);
  const std::string admin = std::string("Bearer ") + ApiTokens::kAdminEnv;
  EXPECT_EQ(Call("GET", "/v1/nothing", "", admin).status, 404);
  EXPECT_EQ(Call("POST", "/v1/sinks/nope/enable", "", admin).status, 404)
      << "the handler's own 404";
  EXPECT_EQ(Call("GET", "/v1/deliveries/replay", "", admin).status, 405);
  EXPECT_EQ(
      Call("GET", "/v1/deliveries", "", "Bearer " + ApiTokens::Token(Role::kViewer, "acme")).body,
      "{\"deliveries\":[]}\n")
      << "a tenant sees none of another tenant's deliveries";
}

// A delivery is the tenant's whose number its conversation is on: a tenant's token lists and
// replays its own, and another tenant's are not there (404 by id, left out of a range).
TEST_F(AdminRoles, ATenantsTokenListsAndReplaysItsOwnDeliveriesAlone) {
  const std::string acme_number = "106540352290001";
  test::RegisterNumber(*sql_, acme_number, "acme");
  const std::string mine1 = Delivery(acme_number, "parked"),
                    mine2 = Delivery(acme_number, "parked");
  const std::string theirs = Delivery(test::kDemoNumber, "parked");
  const std::string acme_viewer = "Bearer " + ApiTokens::Token(Role::kViewer, "acme");
  const std::string acme_operator = "Bearer " + ApiTokens::Token(Role::kOperator, "acme");
  const std::string admin = std::string("Bearer ") + ApiTokens::kAdminEnv;
  auto listed = Call("GET", "/v1/deliveries", "", acme_viewer);
  ASSERT_EQ(listed.status, 200);
  EXPECT_EQ(test::CountOccurrences(listed.body, "\"result_id\""), 2) << listed.body;
  EXPECT_NE(listed.body.find("\"id\":" + mine1 + ","), std::string::npos) << listed.body;
  EXPECT_NE(listed.body.find("\"id\":" + mine2 + ","), std::string::npos) << listed.body;
  EXPECT_EQ(test::CountOccurrences(Call("GET", "/v1/deliveries", "", admin).body, "\"result_id\""),
            4);

  auto by_id = Call("POST", "/v1/deliveries/replay", R"({"id": )" + theirs + "}", acme_operator);
  EXPECT_EQ(by_id.status, 404) << by_id.body;
  EXPECT_NE(by_id.body.find("no delivery " + theirs), std::string::npos) << by_id.body;
  auto range =
      Call("POST", "/v1/deliveries/replay", R"({"from": 0, "to": 99999999999})", acme_operator);
  ASSERT_EQ(range.status, 200) << range.body;
  EXPECT_EQ(range.body, "{\"replayed\":2}\n");
  auto left = sql_->Exec("SELECT id FROM deliveries WHERE status = 'parked' ORDER BY id");
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 2u) << "tenant test's two parked deliveries stay parked";
  EXPECT_EQ(left->get(0, 0), "1");
  EXPECT_EQ(left->get(1, 0), theirs);
  auto outbox = sql_->Exec("SELECT count(*) FROM outbox WHERE routing_key = 'outbound.deliver'");
  ASSERT_TRUE(outbox.ok());
  EXPECT_EQ(outbox->get(0, 0), "2") << "only acme's two commands were written again";
}

// A person conversation's OIDC proxy signed in reaches /v1/deliveries* through conversation, which
// vouches for them: outbound checks the vouch, then the role and tenant as for a token; the vouch
// is good for the routes conversation forwards alone and for the one request it was made for.
TEST_F(AdminRoles, AVouchedPersonListsAndReplaysAsTheirRoleAndTenantOnTheForwardedRoutesAlone) {
  const std::string secret = "forward-secret-0123456789abcdef-0123456789";
  settings_.forward_secret = secret;
  const std::string acme_number = "106540352290011";
  test::RegisterNumber(*sql_, acme_number, "acme");
  const std::string mine = Delivery(acme_number, "parked");
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  const auto call = [&](const std::string& method, const std::string& path, const std::string& body,
                        const Caller& who, int64_t at) {
    HttpRequest r = test::ApiRequest(method, path, body, "");
    r.headers[kVouchHeader] = Vouch(secret, who, r, at);
    return HandleAdmin(r, settings_, sinks_);
  };
  const Caller viewer{"vic-sso", Role::kViewer, "acme"}, op{"olga-sso", Role::kOperator, "acme"},
      global_op{"oz-sso", Role::kOperator, "*"};
  auto listed = call("GET", "/v1/deliveries", "", viewer, now);
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_EQ(test::CountOccurrences(listed.body, "\"result_id\""), 1) << "acme's own alone";
  EXPECT_NE(listed.body.find("\"id\":" + mine + ","), std::string::npos) << listed.body;
  EXPECT_EQ(call("POST", "/v1/deliveries/replay", R"({"id": )" + mine + "}", viewer, now).status,
            403)
      << "a viewer replays nothing";
  EXPECT_EQ(call("POST", "/v1/deliveries/replay", R"({"id": 1})", op, now).status, 404)
      << "another tenant's delivery";
  EXPECT_EQ(call("POST", "/v1/sinks/listing/enable", "", global_op, now).status, 403)
      << "not a forwarded route";
  EXPECT_EQ(call("POST", "/v1/templates/sync", std::string(R"({"waba_id": ")") + kWaba + "\"}",
                 global_op, now)
                .status,
            403)
      << "not a forwarded route";
  EXPECT_EQ(call("GET", "/v1/deliveries", "", viewer, now - kVouchSeconds - 5).status, 401)
      << "expired";
  HttpRequest moved = test::ApiRequest("POST", "/v1/deliveries/replay", R"({"id": 1})", "");
  moved.headers[kVouchHeader] = Vouch(secret, op, moved, now);
  moved.body = R"({"id": )" + mine + "}";
  EXPECT_EQ(HandleAdmin(moved, settings_, sinks_).status, 401) << "a vouch for another body";
  auto replayed = call("POST", "/v1/deliveries/replay", R"({"id": )" + mine + "}", op, now);
  EXPECT_EQ(replayed.status, 200) << replayed.body;
  settings_.forward_secret.clear();
  EXPECT_EQ(call("GET", "/v1/deliveries", "", viewer, now).status, 401)
      << "no secret here: no vouch is taken";
  auto parked = sql_->Exec("SELECT count(*) FROM deliveries WHERE status = 'parked'");
  ASSERT_TRUE(parked.ok());
  EXPECT_EQ(parked->get(0, 0), "1") << "only acme's delivery went again";
}

// The catalog is the tenant's whose numbers are in the WABA: another tenant lists none of it and
// cannot sync it; a sync without a WABA is a 400 naming what is needed.
TEST_F(AdminRoles, ATenantListsAndSyncsTheTemplatesOfItsOwnWabasAlone) {
  const std::string admin = std::string("Bearer ") + ApiTokens::kAdminEnv;
  const std::string acme_operator = "Bearer " + ApiTokens::Token(Role::kOperator, "acme");
  const std::string test_operator = "Bearer " + ApiTokens::Token(Role::kOperator, "*");
  auto synced = Call("POST", "/v1/templates/sync", std::string(R"({"waba_id":")") + kWaba + "\"}",
                     test_operator);
  ASSERT_EQ(synced.status, 200) << synced.body;
  EXPECT_EQ(synced.body, std::string(R"({"waba_id":")") + kWaba +
                             R"(","templates":1,"pages":1,"deleted":0})" + "\n");
  auto listed = Call("GET", "/v1/templates", "", admin);
  ASSERT_EQ(listed.status, 200);
  EXPECT_NE(listed.body.find(R"("name":"hello","language":"en_US")"), std::string::npos)
      << listed.body;
  EXPECT_EQ(Call("GET", "/v1/templates", "", acme_operator).body, "{\"templates\":[]}\n");
  EXPECT_EQ(Call("POST", "/v1/templates/sync", std::string(R"({"waba_id":")") + kWaba + "\"}",
                 acme_operator)
                .status,
            404);
  for (const char* bad :
       {"", "{}", R"({"waba_id": "waba-1"})", R"({"waba_id": 102290129340398})"}) {
    auto r = Call("POST", "/v1/templates/sync", bad, admin);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_NE(r.body.find("waba_id"), std::string::npos) << r.body;
  }
}

}  // namespace
}  // namespace convoy::outbound
