// Integration, real PostgreSQL, the API running as the service's own database role
// (convoy_conversation, so a missing GRANT fails here with 42501): every write through /v1/ is in
// the audit log with who, what and how it ended; a conversation's change and its entry commit
// together or not at all; a tenant's token reads its own tenant's entries alone, page by page.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <set>

#include "api/api.h"
#include "api_tokens.h"
#include "testsupport.h"

namespace convoy::conversation {
namespace {

using test::ApiTokens;

constexpr const char* kAcmeNumber = "106540352200001";

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(schemas_.LoadDir(test::SourcePath("proto-schemas")).ok());
    auto c = PgConnection::Connect(db_.dsn());
    ASSERT_TRUE(c.ok());
    sql_ = std::move(*c);
    ASSERT_TRUE(RunMigrations(*sql_, test::SourcePath("deploy/postgres")).ok());
    test::RegisterNumber(*sql_, test::kDemoNumber);  // tenant "test"
    test::RegisterNumber(*sql_, kAcmeNumber, "acme");
    const std::string role = db_.RoleDsn("convoy_conversation");
    settings_.pg_dsn = role;
    settings_.conversations.pg_dsn = role;
    settings_.tokens = tokens_.Open();
  }
  // A conversation of `number` whose customer wrote a minute ago; its id.
  std::string Conversation(const std::string& number) {
    auto r = sql_->Exec(
        "INSERT INTO conversations (conversation_key, phone_number_id, wa_id, last_inbound_at) "
        "VALUES "
        "($1, $2, '16505550123', now() - interval '1 minute') RETURNING id::text",
        {number + ":audit" + std::to_string(++made_), number});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->get(0, 0) : "";
  }
  HttpResponse Call(const std::string& method, const std::string& path, const std::string& body,
                    const std::string& token,
                    const std::map<std::string, std::string>& query = {}) {
    HttpRequest r = test::ApiRequest(method, path, body, "Bearer " + token);
    r.query = query;
    return HandleApi(r, settings_, schemas_);
  }
  std::string One(const std::string& sql, const PgParams& params = {}) {
    auto r = sql_->Exec(sql, params);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && !r->empty() ? r->get(0, 0) : "";
  }
  // Every entry a token reads, newest first, paging `limit` at a time: "actor route status".
  std::vector<std::string> Read(const std::string& token, int limit, int* pages = nullptr) {
    std::vector<std::string> out;
    std::string cursor;
    for (int page = 1; page < 100; ++page) {
      std::map<std::string, std::string> q{{"limit", std::to_string(limit)}};
      if (!cursor.empty()) q["cursor"] = cursor;
      auto r = Call("GET", "/v1/audit", "", token, q);
      EXPECT_EQ(r.status, 200) << r.body;
      rapidjson::Document d;
      d.Parse(r.body.c_str());
      if (!d.IsObject()) break;
      for (const auto& e : d["entries"].GetArray()) {
        out.push_back(std::string(e["actor"].GetString()) + " " + e["route"].GetString() + " " +
                      std::to_string(e["status"].GetInt()));
      }
      if (pages) *pages = page;
      if (!d.HasMember("next_cursor")) break;
      cursor = d["next_cursor"].GetString();
    }
    return out;
  }
  test::TestDatabase db_{"conv_audit"};
  std::unique_ptr<PgConnection> sql_;
  SchemaRegistry schemas_;
  ApiTokens tokens_;
  ApiSettings settings_;
  int made_ = 0;
};

TEST_F(AuditTest, EveryWriteIsRecordedWithWhoWhatAndHowItEnded) {
  const std::string id = Conversation(kAcmeNumber);
  const std::string agent = ApiTokens::Token(Role::kAgent, "acme");
  EXPECT_EQ(Call("POST", "/v1/conversations/" + id + "/handoff",
                 R"({"reason": "asked for a person", "note": "vip"})", agent)
                .status,
            200);
  EXPECT_EQ(
      Call("POST", "/v1/conversations/" + id + "/messages", R"({"text": "Hello, Ana here"})", agent)
          .status,
      202);
  EXPECT_EQ(Call("POST", "/v1/conversations/" + id + "/release", "{}", agent).status, 200);
  // Refused and failed writes are there too: a viewer's (403), a bad body (400), an unknown id
  // (404).
  EXPECT_EQ(
      Call("POST", "/v1/conversations/" + id + "/take", "", ApiTokens::Token(Role::kViewer, "acme"))
          .status,
      403);
  EXPECT_EQ(Call("POST", "/v1/conversations/" + id + "/messages", R"({"text": ""})", agent).status,
            400);
  EXPECT_EQ(
      Call("POST", "/v1/conversations/00000000-0000-0000-0000-000000000000/take", "", agent).status,
      404);
  // A read is not a write; an unknown token and an unknown route have nobody and nothing to record.
  EXPECT_EQ(Call("GET", "/v1/conversations/" + id, "", agent).status, 200);
  EXPECT_EQ(Call("POST", "/v1/conversations/" + id + "/take", "", "nope").status, 401);
  EXPECT_EQ(Call("POST", "/v1/nothing", "", agent).status, 404);

  auto rows = sql_->Exec(
      "SELECT actor, role, caller_tenant, coalesce(tenant, '-'), method, route, coalesce(target, "
      "'-'), "
      "coalesce(reason, '-'), status FROM audit_log ORDER BY id");
  ASSERT_TRUE(rows.ok());
  std::vector<std::string> got;
  for (size_t i = 0; i < rows->size(); ++i) {
    std::string line;
    for (int c = 0; c < 9; ++c) line += (c ? " | " : "") + rows->get(i, c);
    got.push_back(line);
  }
  const std::string conv = "/v1/conversations/{id}";
  EXPECT_EQ(
      got,
      (std::vector<std::string>{
          "agent-acme | agent | acme | acme | POST | " + conv + "/handoff | " + id +
              " | asked for a person | 200",
          "agent-acme | agent | acme | acme | POST | " + conv + "/messages | " + id + " | - | 202",
          "agent-acme | agent | acme | acme | POST | " + conv + "/release | " + id + " | - | 200",
          "viewer-acme | viewer | acme | acme | POST | " + conv + "/take | " + id + " | - | 403",
          "agent-acme | agent | acme | acme | POST | " + conv + "/messages | " + id + " | - | 400",
          "agent-acme | agent | acme | acme | POST | " + conv +
              "/take | 00000000-0000-0000-0000-000000000000 | - | 404",
      }));
  // A global token's write is the tenant's whose conversation it changed; a global route's,
  // nobody's.
  const std::string theirs = Conversation(test::kDemoNumber);
  EXPECT_EQ(
      Call("POST", "/v1/conversations/" + theirs + "/take", "", ApiTokens::Token(Role::kAgent, "*"))
          .status,
      200);
  EXPECT_EQ(One("SELECT tenant || ' ' || caller_tenant FROM audit_log ORDER BY id DESC LIMIT 1"),
            "test *");
  EXPECT_EQ(
      Call("PUT", "/v1/checklists/line-qa",
           R"({"title": "Line QA", "questions": [{"text": "Guard closed?", "photo": "required"}]})",
           ApiTokens::Token(Role::kManager, "*"), {{"dry_run", "1"}})
          .status,
      201);
  EXPECT_EQ(One("SELECT coalesce(tenant, 'none') || ' ' || target || ' ' || filter::text FROM "
                "audit_log ORDER BY id DESC "
                "LIMIT 1"),
            "none line-qa {\"dry_run\": \"1\"}");
}

TEST_F(AuditTest, AConversationsChangeAndItsEntryCommitTogetherOrNotAtAll) {
  const std::string id = Conversation(kAcmeNumber);
  const std::string agent = ApiTokens::Token(Role::kAgent, "acme");
  // The entry cannot be written (the service may not insert it): the take must not happen either.
  ASSERT_TRUE(sql_->Exec("REVOKE INSERT ON audit_log FROM convoy_conversation").ok());
  auto refused = Call("POST", "/v1/conversations/" + id + "/take", "", agent);
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_EQ(One("SELECT owner FROM conversations WHERE id = $1::uuid", {id}), "bot")
      << "changed with no audit entry";
  EXPECT_EQ(One("SELECT count(*) FROM audit_log"), "0");
  // Once it can, the same take goes through with its entry.
  ASSERT_TRUE(sql_->Exec("GRANT INSERT ON audit_log TO convoy_conversation").ok());
  EXPECT_EQ(Call("POST", "/v1/conversations/" + id + "/take", "", agent).status, 200);
  EXPECT_EQ(One("SELECT owner FROM conversations WHERE id = $1::uuid", {id}), "human");
  EXPECT_EQ(One("SELECT count(*) FROM audit_log WHERE status = 200 AND target = $1", {id}), "1");
  // The log is append-only for the service: its own history is not its to rewrite.
  auto as_service = PgConnection::Connect(db_.RoleDsn("convoy_conversation"));
  ASSERT_TRUE(as_service.ok());
  for (const char* sql : {"UPDATE audit_log SET status = 200", "DELETE FROM audit_log"}) {
    auto r = (*as_service)->Exec(sql);
    ASSERT_FALSE(r.ok()) << sql;
    EXPECT_NE(r.status().message().find("42501"), std::string::npos) << r.status().ToString();
  }
}

TEST_F(AuditTest, ATenantReadsItsOwnEntriesAloneNewestFirstPageByPage) {
  const std::string ours = Conversation(kAcmeNumber), theirs = Conversation(test::kDemoNumber);
  const std::string acme_agent = ApiTokens::Token(Role::kAgent, "acme"),
                    all_agent = ApiTokens::Token(Role::kAgent, "*");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Call("POST", "/v1/conversations/" + ours + "/take", "", acme_agent).status, 200);
    EXPECT_EQ(Call("POST", "/v1/conversations/" + theirs + "/take", "", all_agent).status, 200);
  }
  // acme's attempt on another tenant's conversation (404) is acme's entry, never the other's.
  EXPECT_EQ(
      Call("POST", "/v1/conversations/" + theirs + "/release", R"({"reason": "x"})", acme_agent)
          .status,
      404);
  EXPECT_EQ(Call("POST", "/v1/conversations/" + ours + "/handoff",
                 R"({"reason": "Ana Lopez wants a call"})", acme_agent)
                .status,
            200);
  int pages = 0;
  const auto acme = Read(ApiTokens::Token(Role::kViewer, "acme"), 2, &pages);
  EXPECT_EQ(acme, (std::vector<std::string>{"agent-acme /v1/conversations/{id}/handoff 200",
                                            "agent-acme /v1/conversations/{id}/release 404",
                                            "agent-acme /v1/conversations/{id}/take 200",
                                            "agent-acme /v1/conversations/{id}/take 200",
                                            "agent-acme /v1/conversations/{id}/take 200"}));
  EXPECT_EQ(pages, 3);
  const auto all = Read(ApiTokens::Token(Role::kViewer, "*"), 3);
  EXPECT_EQ(all.size(), 8u);
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end())
                .count("agent-all /v1/conversations/{id}/take 200"),
            1u);
  // A viewer sees that there was a reason, not what it says (a reason may name a person).
  auto shown =
      Call("GET", "/v1/audit", "", ApiTokens::Token(Role::kViewer, "acme"), {{"limit", "1"}});
  EXPECT_EQ(shown.body.find("Ana Lopez"), std::string::npos) << shown.body;
  EXPECT_NE(shown.body.find("22 characters, hidden"), std::string::npos) << shown.body;
  auto agent_view = Call("GET", "/v1/audit", "", acme_agent, {{"limit", "1"}});
  EXPECT_NE(agent_view.body.find("Ana Lopez wants a call"), std::string::npos) << agent_view.body;
  EXPECT_EQ(Call("GET", "/v1/audit", "", acme_agent, {{"cursor", "1;DROP"}}).status, 400);
  EXPECT_EQ(Call("GET", "/v1/audit", "", acme_agent, {{"limit", "0"}}).status, 400);
}

}  // namespace
}  // namespace convoy::conversation
