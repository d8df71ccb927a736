// Integration: every /v1/ route of convoy-outbound's admin API called with every role's token (for
// every tenant and for one tenant), against a real PostgreSQL, as the HTTP server calls
// HandleAdmin; the expected answers are written out here, not derived from AdminRoutes().
#include "admin.h"

#include <gtest/gtest.h>

#include "api_tokens.h"
#include "convoy/pg.h"
#include "testsupport.h"

namespace convoy::outbound {
namespace {

using test::ApiTokens;

using Want = test::WantRoute;
const std::vector<Want> kWant = {
    {"GET", "/v1/deliveries", "viewer agent manager operator admin", 200, Scope::kTenant, 200},
    {"POST", "/v1/deliveries/replay", "operator admin", 200, Scope::kGlobal, 0},
    {"POST", "/v1/sinks/{name}/enable", "operator admin", 200, Scope::kGlobal, 0},
};

class AdminRoles : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = PgConnection::Connect(db_.dsn());
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(RunMigrations(**c, test::SourcePath("deploy/postgres")).ok());
    settings_.pg_dsn = db_.dsn();
    settings_.tokens = tokens_.Open();
    sinks_.sinks["listing"].name = "listing";
  }
  HttpResponse Call(const std::string& method, const std::string& path, const std::string& body,
                    const std::string& authorization) {
    return HandleAdmin(test::ApiRequest(method, path, body, authorization), settings_, sinks_);
  }
  static std::pair<std::string, std::string> Probe(const Want& w) {
    const std::string p = w.pattern;
    if (p == "/v1/deliveries/replay") return {p, R"({"id": 1})"};
    if (p == "/v1/sinks/{name}/enable") return {"/v1/sinks/listing/enable", ""};
    return {p, ""};
  }
  test::TestDatabase db_{"out_roles"};
  ApiTokens tokens_;
  AdminSettings settings_;
  SinkSet sinks_;
};

TEST_F(AdminRoles, TheTableInTheCodeIsTheOneThisTestExpects) { test::ExpectTable(AdminRoutes(), kWant); }

TEST_F(AdminRoles, EveryRouteWithEveryRoleAndTenantAnswersAsTheTableSays) {
  int calls = 0;
  for (const Want& w : kWant) {
    const auto [path, body] = Probe(w);
    for (Role role : ApiTokens::kRoles) {
      for (const std::string tenant : {"*", "acme"}) {
        auto resp = Call(w.method, path, body, "Bearer " + ApiTokens::Token(role, tenant));
        ++calls;
        test::ExpectAnswer(w, role, tenant, resp, std::string(w.method) + " " + path + " as " + ApiTokens::Name(role, tenant));
      }
    }
    EXPECT_EQ(Call(w.method, path, body, std::string("Bearer ") + ApiTokens::kAdminEnv).status, w.ok)
        << w.pattern << " as CONVOY_ADMIN_TOKEN";
    for (const char* auth : {"", "Bearer ", "Bearer    ", "Bearer nope"}) {
      EXPECT_EQ(Call(w.method, path, body, auth).status, 401) << w.pattern << " with '" << auth << "'";
    }
  }
  EXPECT_EQ(calls, 30);
  const std::string admin = std::string("Bearer ") + ApiTokens::kAdminEnv;
  EXPECT_EQ(Call("GET", "/v1/nothing", "", admin).status, 404);
  EXPECT_EQ(Call("POST", "/v1/sinks/nope/enable", "", admin).status, 404) << "the handler's own 404";
  EXPECT_EQ(Call("GET", "/v1/deliveries/replay", "", admin).status, 405);
  EXPECT_EQ(Call("GET", "/v1/deliveries", "", "Bearer " + ApiTokens::Token(Role::kViewer, "acme")).body,
            "{\"deliveries\":[]}\n")
      << "a tenant sees none of the untenanted deliveries";
}

}  // namespace
}  // namespace convoy::outbound
