// Integration: every /v1/ route of convoy-conversation called with every role's token (for every
// tenant and for one tenant), against a real PostgreSQL, as the HTTP server calls HandleApi; the
// expected answers are written out here, not derived from ApiRoutes().
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>

#include "api/api.h"
#include "api_tokens.h"
#include "convoy/crypto.h"
#include "convoy/json.h"
#include "convoy/metrics.h"
#include "testsupport.h"

namespace convoy::conversation {
namespace {

using test::ApiTokens;

constexpr const char* kChecklist =
    R"({"title": "Line QA", "questions": [{"text": "Guard closed?", "photo": "required"}]})";
constexpr const char* kAll = "viewer agent manager operator admin";

using Want = test::WantRoute;
const std::vector<Want> kWant = {
    {"GET", "/v1/whoami", kAll, 200, Scope::kTenant, 200},
    {"GET", "/v1/audit", kAll, 200, Scope::kTenant, 200},
    {"GET", "/v1/flows", kAll, 200, Scope::kGlobal, 0},
    {"POST", "/v1/flows/reload", "admin", 200, Scope::kGlobal, 0},
    // A tenant's token (acme) on the probes, which are tenant "test"'s: its own new checklist, and
    // the other tenant's number, assignments and numbers not found.
    // The shared checklist (line-qa) is every tenant's to read and assign.
    {"GET", "/v1/checklists", kAll, 200, Scope::kTenant, 200},
    {"GET", "/v1/checklists/{id}", kAll, 200, Scope::kTenant, 200},
    {"PUT", "/v1/checklists/{id}", "manager admin", 201, Scope::kTenant, 201},
    {"POST", "/v1/assignments", "manager admin", 201, Scope::kTenant, 422},
    {"GET", "/v1/assignments", kAll, 200, Scope::kTenant, 200},
    {"GET", "/v1/assignments/{id}", kAll, 200, Scope::kTenant, 404},
    {"POST", "/v1/assignments/{id}/cancel", "manager admin", 200, Scope::kTenant, 404},
    {"POST", "/v1/assignments/{id}/retry", "manager admin", 200, Scope::kTenant, 404},
    {"GET", "/v1/assignments/{id}/export.csv", "manager admin", 200, Scope::kTenant, 404},
    {"GET", "/v1/assignments/{id}/export.pdf", "manager admin", 200, Scope::kTenant, 404},
    {"GET", "/v1/numbers", kAll, 200, Scope::kTenant, 200},
    {"GET", "/v1/numbers/{id}", kAll, 200, Scope::kTenant, 404},
    {"PUT", "/v1/numbers/{id}", "admin", 201, Scope::kGlobal, 0},
    {"DELETE", "/v1/numbers/{id}", "admin", 200, Scope::kGlobal, 0},
    {"GET", "/v1/conversations", kAll, 200, Scope::kTenant, 200},
    {"GET", "/v1/conversations/{id}", kAll, 200, Scope::kTenant, 404},
    {"POST", "/v1/conversations/{id}/handoff", "agent admin", 200, Scope::kTenant, 404},
    {"POST", "/v1/conversations/{id}/take", "agent admin", 200, Scope::kTenant, 404},
    {"POST", "/v1/conversations/{id}/pass", "agent admin", 202, Scope::kTenant, 404},
    {"POST", "/v1/conversations/{id}/release", "agent admin", 200, Scope::kTenant, 404},
    {"POST", "/v1/conversations/{id}/messages", "agent admin", 202, Scope::kTenant, 404},
    // Parked messages hold every tenant's payloads: global (the probes' writes are dry runs).
    {"GET", "/v1/ops/queues", kAll, 200, Scope::kGlobal, 0},
    {"GET", "/v1/ops/health", kAll, 200, Scope::kGlobal, 0},
    {"GET", "/v1/ops/parked", kAll, 200, Scope::kGlobal, 0},
    {"POST", "/v1/ops/parked/replay", "operator admin", 200, Scope::kGlobal, 0},
    {"POST", "/v1/ops/parked/purge", "operator admin", 200, Scope::kGlobal, 0},
    // Forwarded to outbound (none here: 503 once the gate let the call through).
    {"GET", "/v1/deliveries", kAll, 503, Scope::kTenant, 503},
    {"POST", "/v1/deliveries/replay", "operator admin", 503, Scope::kTenant, 503},
    // An agent's photo, forwarded to media (none here: 503 once the gate let the call through).
    {"POST", "/v1/media", "agent admin", 503, Scope::kTenant, 503},
};

class ApiRoles : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(schemas_.LoadDir(test::SourcePath("proto-schemas")).ok());
    auto c = PgConnection::Connect(db_.dsn());
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(RunMigrations(**c, test::SourcePath("deploy/postgres")).ok());
    test::RegisterNumber(**c, test::kDemoNumber);
    sql_ = std::move(*c);
    settings_.pg_dsn = db_.dsn();
    settings_.conversations.pg_dsn = db_.dsn();
    settings_.ops.pg_dsn = db_.dsn();
    settings_.ops.broker = AmqpOptions{vhost_.url(), "conv-roles"};
    ASSERT_TRUE(DeclareConvoyTopology(*settings_.ops.broker).ok());
    settings_.tokens = tokens_.Open();
    settings_.flows = [] { return std::string(R"({"flows":[]})"); };
    settings_.reload_flows = [this]() -> Result<std::string> {
      ++reloads_;
      return std::string(R"({"flows":[]})");
    };
    ASSERT_EQ(Call("PUT", "/v1/checklists/line-qa", kChecklist).status, 201);
  }
  HttpResponse Call(const std::string& method, const std::string& path,
                    const std::string& body = "",
                    const std::string& authorization = std::string("Bearer ") +
                                                       ApiTokens::kAdminEnv) {
    return HandleApi(test::ApiRequest(method, path, body, authorization), settings_, schemas_);
  }
  // A new pending or active assignment (as the admin); its id.
  std::string NewAssignment() {
    const int n = ++made_;
    const std::string body =
        R"({"checklist": "line-qa", "operator": "165055510)" + std::to_string(10 + n) +
        R"(", "phone_number_id": "106540352242922", "reference": "R-)" + std::to_string(n) + "\"}";
    auto a = Call("POST", "/v1/assignments", body);
    EXPECT_EQ(a.status, 201) << a.body;
    const size_t at = a.body.find("asg_");
    return at == std::string::npos ? "" : a.body.substr(at, 28);  // asg_ and 24 hex digits
  }
  // A request that the route answers `ok` when it is let through.
  HttpRequest Probe(const Want& w) {
    HttpRequest r;
    r.method = w.method;
    const std::string p = w.pattern;
    if (p == "/v1/checklists/{id}" && r.method == "GET") {
      r.path = "/v1/checklists/line-qa";
    } else if (p == "/v1/checklists/{id}") {
      r.path = "/v1/checklists/probe-" + std::to_string(++made_);
      r.body = kChecklist;
    } else if (p == "/v1/assignments" && r.method == "POST") {
      const int n = ++made_;
      r.path = p;
      r.body = R"({"checklist": "line-qa", "operator": "165055520)" + std::to_string(10 + n) +
               R"(", "phone_number_id": "106540352242922", "reference": "P-)" + std::to_string(n) +
               "\"}";
    } else if (p == "/v1/assignments/{id}") {
      r.path = "/v1/assignments/" + NewAssignment();
    } else if (p == "/v1/assignments/{id}/cancel") {
      r.path = "/v1/assignments/" + NewAssignment() + "/cancel";
    } else if (p == "/v1/assignments/{id}/export.csv" || p == "/v1/assignments/{id}/export.pdf") {
      const std::string id = NewAssignment();
      EXPECT_TRUE(
          sql_->Exec("UPDATE assignments SET status = 'completed', ended_at = now() WHERE id = $1",
                     {id})
              .ok());
      r.path = "/v1/assignments/" + id + p.substr(p.rfind('/'));
    } else if (p == "/v1/assignments/{id}/retry") {
      const std::string id = NewAssignment();
      EXPECT_TRUE(
          sql_->Exec("UPDATE assignments SET status = 'undeliverable' WHERE id = $1", {id}).ok());
      r.path = "/v1/assignments/" + id + "/retry";
    } else if (p == "/v1/numbers/{id}" && r.method == "GET") {
      r.path = std::string("/v1/numbers/") + test::kDemoNumber;
    } else if (p == "/v1/numbers/{id}") {
      // A number of its own: PUT registers it (201), DELETE offboards one registered here.
      const std::string id = "1065403522" + std::to_string(10000 + ++made_);
      if (r.method == "DELETE") test::RegisterNumber(*sql_, id);
      r.path = "/v1/numbers/" + id;
      r.body =
          R"({"phone_number_id": ")" + id +
          R"(", "tenant": "acme", "waba_id": "102290129340399", )"
          R"("display_phone_number": "+44 20 7946 0000", "graph_token": "env:ACME_GRAPH_TOKEN"})";
    } else if (p.rfind("/v1/conversations/{id}", 0) == 0) {
      // A conversation of the demo number's tenant ("test"), its customer's window open; the number
      // shares its threads with a partner app (a pass is queued: 202).
      EXPECT_TRUE(
          sql_->Exec("UPDATE numbers SET partner_app_id = '1234567890' WHERE phone_number_id = $1",
                     {std::string(test::kDemoNumber)})
              .ok());
      auto c = sql_->Exec(
          "INSERT INTO conversations (conversation_key, phone_number_id, wa_id, last_inbound_at) "
          "VALUES ($1, $2, '16505550199', now()) RETURNING id::text",
          {std::string(test::kDemoNumber) + ":probe" + std::to_string(++made_), test::kDemoNumber});
      EXPECT_TRUE(c.ok());
      r.path = "/v1/conversations/" + (c.ok() ? c->get(0, 0) : "") +
               p.substr(std::string("/v1/conversations/{id}").size());
      if (p.size() > 30 && p.compare(p.size() - 9, 9, "/messages") == 0)
        r.body = R"({"text": "Hello from the team"})";
    } else if (p == "/v1/ops/parked/replay" || p == "/v1/ops/parked/purge") {
      r.path = p;
      r.body = R"({"filter": {"queue": "outbound.send"}, "dry_run": true})";
    } else {
      r.path = p;
    }
    return r;
  }
  test::TestDatabase db_{"conv_roles"};
  test::TestVhost vhost_{"conv_roles"};
  std::unique_ptr<PgConnection> sql_;
  SchemaRegistry schemas_;
  ApiTokens tokens_;
  ApiSettings settings_;
  std::atomic<int> reloads_{0};
  int made_ = 0;
};

TEST_F(ApiRoles, TheTableInTheCodeIsTheOneThisTestExpects) {
  test::ExpectTable(ApiRoutes(), kWant);
}

TEST_F(ApiRoles, EveryRouteWithEveryRoleAndTenantAnswersAsTheTableSays) {
  int calls = 0;
  for (const Want& w : kWant) {
    for (Role role : ApiTokens::kRoles) {
      for (const std::string tenant : {"*", "acme"}) {
        HttpRequest r = Probe(w);
        r.headers["authorization"] = "Bearer " + ApiTokens::Token(role, tenant);
        auto resp = HandleApi(r, settings_, schemas_);
        ++calls;
        test::ExpectAnswer(
            w, role, tenant, resp,
            std::string(w.method) + " " + r.path + " as " + ApiTokens::Name(role, tenant));
      }
    }
    // CONVOY_ADMIN_TOKEN is a global admin.
    HttpRequest r = Probe(w);
    r.headers["authorization"] = std::string("Bearer ") + ApiTokens::kAdminEnv;
    EXPECT_EQ(HandleApi(r, settings_, schemas_).status, w.ok)
        << w.pattern << " as CONVOY_ADMIN_TOKEN";
  }
  EXPECT_EQ(calls, 330);
  EXPECT_EQ(reloads_.load(), 2) << "only admin-all and CONVOY_ADMIN_TOKEN reloaded the flows";
}

TEST_F(ApiRoles, WithoutAKnownBearerEveryRouteIs401AndUnknownRoutesStay404) {
  const std::string good = ApiTokens::Token(Role::kAdmin, "*");
  const std::string hash = TokenHashField(good);
  const char* bad[] = {
      "", "Bearer", "Bearer ", "Bearer     ", "Bearer\t", "Basic YWRtaW46YWRtaW4=", "Token abc"};
  for (const Want& w : kWant) {
    for (const char* auth : bad) {
      auto resp = Call(w.method, std::string(w.pattern), "", auth);
      EXPECT_EQ(resp.status, 401) << w.pattern << " with '" << auth << "'";
      EXPECT_EQ(resp.headers["WWW-Authenticate"], "Bearer");
    }
    for (const std::string& token :
         {std::string("nope"), good.substr(0, good.size() - 1), good + "x", hash, hash.substr(7),
          good + " " + good, std::string(4096, 'a')}) {
      EXPECT_EQ(Call(w.method, w.pattern, "", "Bearer " + token).status, 401)
          << w.pattern << " with " << token.substr(0, 40);
    }
  }
  EXPECT_EQ(Call("GET", "/v1/flows", "", "bearer " + good).status, 200)
      << "the scheme is case-insensitive";
  EXPECT_EQ(Call("GET", "/v1/flows", "", "Bearer   " + good + "  ").status, 200)
      << "whitespace around the token";
  EXPECT_EQ(Call("GET", "/v1/nothing").status, 404);
  EXPECT_EQ(Call("GET", "/v1/checklist").status, 404);
  EXPECT_EQ(Call("GET", "/v1/checklists/a/b").status, 404);
  EXPECT_EQ(Call("GET", "/v1/assignments/a/b").status, 404);
  EXPECT_EQ(Call("GET", "/v1/nothing", "", "").status, 401)
      << "no route is told to a caller without a token";
  auto wrong_method = Call("DELETE", "/v1/assignments");
  EXPECT_EQ(wrong_method.status, 405);
  EXPECT_EQ(wrong_method.headers["Allow"], "POST, GET");
  EXPECT_EQ(Call("GET", "/v1/flows/reload").status, 405);
  // No token configured at all: closed, and says how to open it.
  settings_.tokens = std::make_shared<TokenStore>(TokenSet());
  auto closed = Call("GET", "/v1/flows");
  EXPECT_EQ(closed.status, 403);
  EXPECT_NE(closed.body.find("--tokens_file"), std::string::npos) << closed.body;
}

// The console's sign-in: who a token is, and nothing of the token itself.
TEST_F(ApiRoles, WhoamiNamesTheTokensHolderRoleAndTenant) {
  auto viewer = Call("GET", "/v1/whoami", "", "Bearer " + ApiTokens::Token(Role::kViewer, "acme"));
  EXPECT_EQ(viewer.status, 200);
  EXPECT_EQ(
      viewer.body,
      R"({"name":"viewer-acme","role":"viewer","tenant":"acme","sees_personal_data":false,"via":"token"})"
      "\n");
  auto agent = Call("GET", "/v1/whoami", "", "Bearer " + ApiTokens::Token(Role::kAgent, "*"));
  EXPECT_EQ(
      agent.body,
      R"({"name":"agent-all","role":"agent","tenant":"*","sees_personal_data":true,"via":"token"})"
      "\n");
  EXPECT_EQ(agent.body.find("tok-"), std::string::npos);
  EXPECT_EQ(Call("GET", "/v1/whoami", "", "Bearer nope").status, 401);
}

// Sign-in through an OIDC proxy (oauth2-proxy in front of the console): the identity header is
// believed only with the proxy's secret, mapped to a name, role and tenant; a client that sends the
// header itself, a wrong secret, an identity nobody listed and a proxy that names nobody are all
// 401; a bearer token of the request's own is the token's; every route is checked as for a token,
// and a write is audited under the mapped name.
TEST_F(ApiRoles, AnOidcProxysIdentityIsBelievedOnlyWithTheProxysSecret) {
  const std::string secret = "proxy-secret-0123456789abcdef-0123456789";
  const std::string file = ::testing::TempDir() + "/identities_" + test::UniqueName("p") + ".txt";
  std::ofstream(file) << "# identity name role tenant\n"
                         "ana@acme.example   ana-sso  agent   acme\n"
                         "Vic@Corp.Example   vic-sso  viewer  *\n";
  auto identities = IdentityStore::Open(file);
  ASSERT_TRUE(identities.ok()) << identities.status().ToString();
  settings_.proxy = ProxySignIn{"x-forwarded-email", "x-convoy-proxy-secret", secret, *identities};
  const auto call = [&](const std::string& method, const std::string& path,
                        const std::map<std::string, std::string>& h,
                        const std::string& authorization = "") {
    HttpRequest r = test::ApiRequest(method, path, method == "GET" ? "" : "{}", authorization);
    for (const auto& [k, v] : h) r.headers[k] = v;
    return HandleApi(r, settings_, schemas_);
  };
  // Hostile: the identity header without the proxy's secret, or with a wrong one, gets nothing.
  EXPECT_EQ(call("GET", "/v1/whoami", {{"x-forwarded-email", "ana@acme.example"}}).status, 401);
  EXPECT_EQ(call("GET", "/v1/whoami",
                 {{"x-forwarded-email", "ana@acme.example"}, {"x-convoy-proxy-secret", "guess"}})
                .status,
            401);
  EXPECT_EQ(call("GET", "/v1/whoami",
                 {{"x-forwarded-email", "ana@acme.example"},
                  {"x-convoy-proxy-secret", secret.substr(0, secret.size() - 1)}})
                .status,
            401);
  // From the proxy: the mapped caller (an e-mail address's case does not matter).
  auto ana = call("GET", "/v1/whoami",
                  {{"x-forwarded-email", "ANA@acme.example"}, {"x-convoy-proxy-secret", secret}});
  EXPECT_EQ(ana.status, 200) << ana.body;
  EXPECT_EQ(
      ana.body,
      R"({"name":"ana-sso","role":"agent","tenant":"acme","sees_personal_data":true,"via":"proxy"})"
      "\n");
  EXPECT_EQ(call("GET", "/v1/whoami",
                 {{"x-forwarded-email", "nobody@acme.example"}, {"x-convoy-proxy-secret", secret}})
                .status,
            401)
      << "an identity the file does not list";
  EXPECT_EQ(call("GET", "/v1/whoami", {{"x-convoy-proxy-secret", secret}}).status, 401)
      << "the proxy named nobody";
  // A bearer token of the request's own is the token's, whatever the headers say.
  auto token = call("GET", "/v1/whoami",
                    {{"x-forwarded-email", "ana@acme.example"}, {"x-convoy-proxy-secret", secret}},
                    "Bearer " + ApiTokens::Token(Role::kViewer, "*"));
  EXPECT_NE(token.body.find(R"("name":"viewer-all")"), std::string::npos) << token.body;
  // Roles and tenants as for a token; a refused write is audited under the mapped name.
  const std::map<std::string, std::string> vic{{"x-forwarded-email", "vic@corp.example"},
                                               {"x-convoy-proxy-secret", secret}};
  EXPECT_EQ(call("GET", "/v1/conversations", vic).status, 200);
  EXPECT_EQ(call("POST", "/v1/conversations/00000000-0000-0000-0000-000000000000/take", vic).status,
            403);
  const std::map<std::string, std::string> as_ana{{"x-forwarded-email", "ana@acme.example"},
                                                  {"x-convoy-proxy-secret", secret}};
  EXPECT_EQ(call("GET", "/v1/flows", as_ana).status, 403)
      << "a tenant's identity on a global route";
  EXPECT_EQ(
      call("POST", "/v1/conversations/00000000-0000-0000-0000-000000000000/take", as_ana).status,
      404);
  auto audited = sql_->Exec(
      "SELECT string_agg(actor || ' ' || status, ',' ORDER BY id) FROM audit_log WHERE actor LIKE "
      "'%-sso'");
  ASSERT_TRUE(audited.ok()) << audited.status().ToString();
  EXPECT_EQ(audited->get(0, 0), "vic-sso 403,ana-sso 404");

  // The file is read again when it changes: a new identity signs in, a removed one no more; a
  // broken file keeps the last good set (no restart, and nobody locked out by a typo).
  (*identities)->check_every = std::chrono::seconds(0);
  std::ofstream(file) << "bo@acme.example bo-sso manager acme\n";
  auto bo = call("GET", "/v1/whoami",
                 {{"x-forwarded-email", "bo@acme.example"}, {"x-convoy-proxy-secret", secret}});
  EXPECT_EQ(bo.status, 200) << bo.body;
  EXPECT_NE(bo.body.find(R"("name":"bo-sso","role":"manager")"), std::string::npos) << bo.body;
  EXPECT_EQ(call("GET", "/v1/whoami", as_ana).status, 401) << "ana is no longer listed";
  std::ofstream(file) << "bo@acme.example bo-sso manager acme\ncy@acme.example cy-sso boss acme\n";
  EXPECT_EQ(call("GET", "/v1/whoami",
                 {{"x-forwarded-email", "bo@acme.example"}, {"x-convoy-proxy-secret", secret}})
                .status,
            200)
      << "a broken file keeps the last good set";
  EXPECT_EQ(call("GET", "/v1/whoami",
                 {{"x-forwarded-email", "cy@acme.example"}, {"x-convoy-proxy-secret", secret}})
                .status,
            401);
  std::remove(file.c_str());
}

// The identities file is checked like the tokens file: every error names its line.
TEST(ProxyIdentities, ABadLineIsRefusedNamingIt) {
  for (const auto& [text, why] : std::vector<std::pair<std::string, std::string>>{
           {"ana@a.example ana agent\n", "ids:1: expected 4 fields"},
           {"ana@a.example ana root acme\n", "ids:1: the role 'root'"},
           {"# c\nana@a.example Ana agent acme\n", "ids:2: the name 'Ana'"},
           {"ana@a.example ana agent ACME\n", "ids:1: the tenant 'ACME'"},
           {"ana@a.example ana agent acme\nANA@A.EXAMPLE bob agent acme\n",
            "ids:2: the identity is listed twice"},
           {"ana@a.example ana agent acme\nbob@a.example ana agent acme\n",
            "ids:2: the name 'ana' is listed twice"},
           {"# nobody\n", "ids: holds no identity"}}) {
    auto parsed = IdentitySet::Parse(text, "ids");
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.status().message().rfind(why, 0), 0u) << parsed.status().message();
  }
}

TEST_F(ApiRoles, AViewerSeesPersonalDataMaskedAndAnAgentInClear) {
  const std::string id = NewAssignment();
  auto viewer =
      Call("GET", "/v1/assignments/" + id, "", "Bearer " + ApiTokens::Token(Role::kViewer, "*"));
  ASSERT_EQ(viewer.status, 200) << viewer.body;
  EXPECT_EQ(viewer.body.find("16505551011"), std::string::npos) << viewer.body;
  EXPECT_NE(viewer.body.find(R"("operator":"*******1011")"), std::string::npos) << viewer.body;
  EXPECT_NE(viewer.body.find(R"("answers":null)"), std::string::npos) << viewer.body;
  auto list = Call("GET", "/v1/assignments", "", "Bearer " + ApiTokens::Token(Role::kViewer, "*"));
  EXPECT_EQ(list.body.find("16505551011"), std::string::npos) << list.body;
  EXPECT_NE(list.body.find("*******1011"), std::string::npos) << list.body;
  auto agent =
      Call("GET", "/v1/assignments/" + id, "", "Bearer " + ApiTokens::Token(Role::kAgent, "*"));
  EXPECT_NE(agent.body.find("16505551011"), std::string::npos) << agent.body;
  auto tenant =
      Call("GET", "/v1/assignments", "", "Bearer " + ApiTokens::Token(Role::kAdmin, "acme"));
  EXPECT_EQ(tenant.status, 200);
  EXPECT_EQ(tenant.body, "{\"assignments\":[]}\n") << "acme sees none of tenant test's assignments";
}

TEST_F(ApiRoles, LogsNameTheCallerNeverTheToken) {
  test::LogCapture logs;
  const std::string token = ApiTokens::Token(Role::kManager, "*");
  ASSERT_EQ(
      Call("POST", "/v1/assignments/" + NewAssignment() + "/cancel", "", "Bearer " + token).status,
      200);
  ASSERT_EQ(Call("POST", "/v1/flows/reload", "", "Bearer " + token).status, 403);
  ASSERT_EQ(Call("GET", "/v1/flows", "", "Bearer " + token + "-wrong").status, 401);
  bool call = false, refused = false;
  for (const auto& line : logs.lines()) {
    EXPECT_EQ(line.find(token), std::string::npos) << line;
    EXPECT_EQ(line.find(Sha256Hex(token)), std::string::npos) << line;
    call = call || line.find(
                       "event=api_call caller=manager-all role=manager tenant=* route=\"POST "
                       "/v1/assignments/{id}/cancel\"") != std::string::npos;
    refused = refused ||
              line.find("event=api_refused status=403 caller=manager-all") != std::string::npos;
  }
  EXPECT_TRUE(call && refused) << "the call and the refusal are logged with the token's name";
  const std::string metrics = DefaultRegistry().Render();
  EXPECT_NE(
      metrics.find("convoy_api_requests_total{service=\"conversation\",outcome=\"forbidden\"}"),
      std::string::npos);
}

// A tenant's token works on its own tenant's numbers, checklists and assignments, and finds
// nothing of another tenant's: not their assignments, numbers or checklists, not even whether an
// Idempotency-Key was used there.
TEST_F(ApiRoles, ATenantsTokenActsOnItsOwnAndFindsNothingOfAnothers) {
  const std::string acme_number = "106540352290001";
  test::RegisterNumber(*sql_, acme_number, "acme");
  const std::string theirs = NewAssignment();  // tenant "test"'s, by the global admin
  const std::string manager = "Bearer " + ApiTokens::Token(Role::kManager, "acme");
  const std::string viewer = "Bearer " + ApiTokens::Token(Role::kViewer, "acme");
  const std::string admin = std::string("Bearer ") + ApiTokens::kAdminEnv;
  auto assign = [&](const std::string& checklist, const std::string& number, const std::string& op,
                    const std::string& auth, const std::string& key = "") {
    HttpRequest r = test::ApiRequest("POST", "/v1/assignments",
                                     R"({"checklist": ")" + checklist + R"(", "operator": ")" + op +
                                         R"(", "phone_number_id": ")" + number +
                                         R"(", "reference": "R-)" + op + "\"}",
                                     auth);
    if (!key.empty()) r.headers["idempotency-key"] = key;
    return HandleApi(r, settings_, schemas_);
  };
  // Its own checklist, and the shared one (line-qa, defined by a global token): both assignable.
  ASSERT_EQ(Call("PUT", "/v1/checklists/acme-qa", kChecklist, manager).status, 201);
  auto own = assign("acme-qa", acme_number, "16505559001", manager, "key-1");
  ASSERT_EQ(own.status, 201) << own.body;
  const std::string own_id = own.body.substr(own.body.find("asg_"), 28);
  ASSERT_EQ(assign("line-qa", acme_number, "16505559002", manager).status, 201);
  // The other tenant's number is unknown to it; its checklist cannot be used from the other
  // tenant's number, even by a global token.
  auto other_number = assign("acme-qa", test::kDemoNumber, "16505559003", manager);
  EXPECT_EQ(other_number.status, 422) << other_number.body;
  EXPECT_NE(other_number.body.find("unknown in the numbers registry"), std::string::npos)
      << other_number.body;
  EXPECT_EQ(assign("acme-qa", test::kDemoNumber, "16505559004", admin).status, 404);
  // The same Idempotency-Key in the other tenant is another request, not a conflict.
  EXPECT_EQ(assign("line-qa", test::kDemoNumber, "16505559005", admin, "key-1").status, 201);
  // A shared checklist, or another tenant's, is not its to version; a global token versions a
  // tenant's checklist and it stays that tenant's.
  auto taken = Call("PUT", "/v1/checklists/line-qa", kChecklist, manager);
  EXPECT_EQ(taken.status, 409) << taken.body;
  EXPECT_NE(taken.body.find("checklist id line-qa is taken"), std::string::npos) << taken.body;
  const std::string v2 =
      R"({"title": "Line QA 2", "questions": [{"text": "Guard closed?", "photo": "required"}]})";
  ASSERT_EQ(Call("PUT", "/v1/checklists/acme-qa", v2, admin).status, 201);
  auto owner =
      sql_->Exec("SELECT DISTINCT coalesce(tenant, 'shared') FROM checklists WHERE id = 'acme-qa'");
  ASSERT_TRUE(owner.ok());
  ASSERT_EQ(owner->size(), 1u);
  EXPECT_EQ(owner->get(0, 0), "acme");

  // Checklists: the shared ones and its own; another tenant's not found, in the list or by id.
  ASSERT_TRUE(sql_->Exec("INSERT INTO checklists (id, version, definition, source, tenant) VALUES "
                         "('other-qa', 1, $1::jsonb, "
                         "'api', 'other')",
                         {std::string(kChecklist)})
                  .ok());
  auto lists = Call("GET", "/v1/checklists", "", viewer);
  EXPECT_NE(lists.body.find("\"id\" : \"acme-qa\""), std::string::npos) << lists.body;
  EXPECT_NE(lists.body.find("\"id\" : \"line-qa\""), std::string::npos) << lists.body;
  EXPECT_EQ(lists.body.find("other-qa"), std::string::npos) << lists.body;
  EXPECT_EQ(Call("GET", "/v1/checklists/other-qa", "", viewer).status, 404);
  EXPECT_EQ(Call("GET", "/v1/checklists/acme-qa", "", viewer).status, 200);
  EXPECT_NE(Call("GET", "/v1/checklists", "", admin).body.find("other-qa"), std::string::npos)
      << "a global token sees all";
  EXPECT_EQ(Call("GET", "/v1/assignments/" + theirs + "/export.csv", "", manager).status, 404);

  // Reads: its two assignments; the other's not found, in a list or by id; cancel the same.
  auto list = Call("GET", "/v1/assignments", "", viewer);
  EXPECT_EQ(test::CountOccurrences(list.body, "\"id\":\"asg_"), 2) << list.body;
  EXPECT_EQ(list.body.find(theirs), std::string::npos) << list.body;
  EXPECT_EQ(Call("GET", "/v1/assignments/" + own_id, "", viewer).status, 200);
  EXPECT_EQ(Call("GET", "/v1/assignments/" + theirs, "", viewer).status, 404);
  EXPECT_EQ(Call("POST", "/v1/assignments/" + theirs + "/cancel", "", manager).status, 404);
  auto still = sql_->Exec("SELECT status FROM assignments WHERE id = $1", {theirs});
  ASSERT_TRUE(still.ok());
  EXPECT_NE(still->get(0, 0), "cancelled");
  EXPECT_EQ(Call("POST", "/v1/assignments/" + own_id + "/cancel", "", manager).status, 200);
  EXPECT_EQ(test::CountOccurrences(Call("GET", "/v1/assignments", "", admin).body, "\"id\":\"asg_"),
            4)
      << "a global token sees every tenant's";

  // Numbers: its own alone; the registry is changed by a global admin only.
  auto numbers = Call("GET", "/v1/numbers", "", viewer);
  EXPECT_NE(numbers.body.find(acme_number), std::string::npos) << numbers.body;
  EXPECT_EQ(numbers.body.find(test::kDemoNumber), std::string::npos) << numbers.body;
  HttpRequest other = test::ApiRequest("GET", "/v1/numbers", "", viewer);
  other.query["tenant"] = "test";
  EXPECT_EQ(HandleApi(other, settings_, schemas_).body, "{\"numbers\":[]}\n");
  EXPECT_EQ(Call("GET", std::string("/v1/numbers/") + test::kDemoNumber, "", viewer).status, 404);
  EXPECT_EQ(Call("GET", "/v1/numbers/" + acme_number, "", viewer).status, 200);
  EXPECT_EQ(Call("DELETE", "/v1/numbers/" + acme_number, "",
                 "Bearer " + ApiTokens::Token(Role::kAdmin, "acme"))
                .status,
            403);

  // A checklist file with a tenant's id is skipped, loudly; the others load and the service starts.
  const std::string dir = ::testing::TempDir() + "checklists_" + std::to_string(::getpid());
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  for (const char* id : {"acme-qa", "floor-qa"})
    std::ofstream(dir + "/" + id + ".json") << kChecklist;
  test::LogCapture logs;
  EXPECT_TRUE(LoadChecklistFiles(*sql_, dir, schemas_).ok());
  auto files = sql_->Exec(
      "SELECT id, count(*), coalesce(max(tenant), 'shared') FROM checklists WHERE id IN "
      "('acme-qa', "
      "'floor-qa') GROUP BY id ORDER BY id");
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ(files->get(0, 1) + " " + files->get(0, 2), "2 acme")
      << "acme's two versions, none from the file";
  EXPECT_EQ(files->get(1, 1) + " " + files->get(1, 2), "1 shared");
  bool told = false;
  for (const auto& line : logs.lines())
    told = told || line.find("event=checklist_file_skipped") != std::string::npos;
  EXPECT_TRUE(told);
  for (const char* id : {"acme-qa", "floor-qa"}) std::remove((dir + "/" + id + ".json").c_str());
  ::rmdir(dir.c_str());
}

// The listener refuses a 10 MB Authorization header before any handler (or hashing) runs.
TEST_F(ApiRoles, ATenMegabyteAuthorizationHeaderIsRefusedByTheListener) {
  std::atomic<int> handled{0};
  HttpServer server({"127.0.0.1", 0, 1 << 20});
  server.Route("GET", "/v1/", [&](const HttpRequest& r) {
    ++handled;
    return HandleApi(r, settings_, schemas_);
  });
  ASSERT_TRUE(server.Start().ok());
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server.port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  std::string request = "GET /v1/flows HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ";
  request += std::string(10 << 20, 'a');
  request += "\r\n\r\n";
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the listener answered and closed
    sent += static_cast<size_t>(n);
  }
  std::string answer;
  char buf[4096];
  pollfd p{fd, POLLIN, 0};
  while (::poll(&p, 1, 2000) > 0) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    answer.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  server.Stop();
  std::cout << "10 MB Authorization header: " << sent / 1024 << " KiB written, answer "
            << answer.substr(0, answer.find("\r\n")) << "\n";
  EXPECT_EQ(answer.rfind("HTTP/1.1 431", 0), 0u) << answer.substr(0, 200);
  EXPECT_EQ(handled.load(), 0);
}

}  // namespace
}  // namespace convoy::conversation
