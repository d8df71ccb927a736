// Unit: the tokens file's loader (every refusal names the file and line), the matcher, the roles
// and the route patterns.
#include "convoy/tokens.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "convoy/crypto.h"
#include "convoy/metrics.h"

namespace convoy {
namespace {

std::string Line(const std::string& name, const std::string& role, const std::string& tenant,
                 const std::string& token) {
  return name + " " + role + " " + tenant + " " + TokenHashField(token) + "\n";
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

std::string ParseError(const std::string& text) {
  auto set = TokenSet::Parse(text, "tokens.txt");
  EXPECT_FALSE(set.ok()) << text;
  return set.ok() ? "" : set.status().message();
}

TEST(TokenFile, ParsesNamesRolesTenantsAndSkipsCommentsAndBlankLines) {
  std::string hash_upper = TokenHashField("tok-viewer-0123456789");
  for (size_t i = 7; i < hash_upper.size(); ++i)
    hash_upper[i] = static_cast<char>(std::toupper(hash_upper[i]));
  const std::string text =
      "# name role tenant hash\n\n   \n" + Line("ana", "agent", "acme", "tok-ana-0123456789") +
      "ops\toperator\t*\t" + TokenHashField("tok-ops-0123456789") + "\r\n" + "view viewer * " +
      hash_upper + "\n" + Line("boss", "admin", "*", "tok-boss-0123456789");
  auto set = TokenSet::Parse(text, "tokens.txt");
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->size(), 4u);
  auto ana = set->Verify("tok-ana-0123456789");
  ASSERT_TRUE(ana);
  EXPECT_EQ(ana->name, "ana");
  EXPECT_EQ(ana->role, Role::kAgent);
  EXPECT_EQ(ana->tenant, "acme");
  EXPECT_FALSE(ana->all_tenants());
  auto ops = set->Verify("tok-ops-0123456789");
  ASSERT_TRUE(ops) << "tabs and CRLF";
  EXPECT_EQ(ops->role, Role::kOperator);
  EXPECT_TRUE(ops->all_tenants());
  ASSERT_TRUE(set->Verify("tok-viewer-0123456789")) << "upper-case hex";
  EXPECT_EQ(set->Verify("tok-boss-0123456789")->role, Role::kAdmin);
}

TEST(TokenFile, EveryRefusalNamesTheFileTheLineAndWhatIsWrong) {
  const std::string ok = Line("ana", "agent", "acme", "tok-ana-0123456789");
  struct Case {
    std::string text, expect;
  } cases[] = {
      {ok + "bob agent acme\n",
       "tokens.txt:2: expected 4 fields (name role tenant sha256:<hex>), found 3"},
      {ok + "bob agent acme " + TokenHashField("x") + " extra\n",
       "tokens.txt:2: expected 4 fields"},
      {"Bob agent * " + TokenHashField("t1-0123456789") + "\n",
       "tokens.txt:1: the name 'Bob' is not 1-64 of a-z"},
      {"-bob agent * " + TokenHashField("t1-0123456789") + "\n", "tokens.txt:1: the name '-bob'"},
      {std::string(65, 'a') + " agent * " + TokenHashField("t1-0123456789") + "\n",
       "tokens.txt:1: the name"},
      {"bob root * " + TokenHashField("t1-0123456789") + "\n",
       "tokens.txt:1: the role 'root' is not one of viewer, agent, manager, operator, admin"},
      {"bob Admin * " + TokenHashField("t1-0123456789") + "\n", "tokens.txt:1: the role 'Admin'"},
      {"bob agent ACME " + TokenHashField("t1-0123456789") + "\n",
       "tokens.txt:1: the tenant 'ACME' is neither '*'"},
      {"bob agent ** " + TokenHashField("t1-0123456789") + "\n", "tokens.txt:1: the tenant '**'"},
      {"bob agent * sha256:abc\n",
       "tokens.txt:1: sha256: must be followed by 64 hex digits (found 3 characters)"},
      {"bob agent * sha256:" + std::string(64, 'g') + "\n",
       "tokens.txt:1: sha256: must be followed by 64 hex digits"},
      {"bob agent * " + Sha256Hex("t1") + "\n",
       "tokens.txt:1: the last field must be sha256:<64 hex digits> of the token"},
      {"bob agent * " + TokenHashField("") + "\n",
       "tokens.txt:1: that is the hash of an empty token"},
      {ok + "# a comment\n" + Line("ana", "viewer", "*", "other-0123456789"),
       "tokens.txt:3: the name ana is already on line 1"},
      {ok + Line("bob", "viewer", "*", "tok-ana-0123456789"),
       "tokens.txt:2: the same token as line 1 (ana): give each caller a token of its own"},
      {"", "tokens.txt: holds no token"},
      {"# only comments\n\n", "tokens.txt: holds no token"},
  };
  for (const auto& c : cases) {
    const std::string got = ParseError(c.text);
    EXPECT_EQ(got.rfind(c.expect, 0), 0u) << "for:\n" << c.text << "got: " << got;
  }
}

TEST(TokenFile, AClearTextTokenIsRefusedWithoutBeingEchoed) {
  const std::string secret = "s3cr3t-token-in-clear-Zq81";
  const std::string got = ParseError("bob agent * " + secret + "\n");
  EXPECT_NE(got.find("never the token itself"), std::string::npos) << got;
  EXPECT_NE(got.find("convoyctl token hash"), std::string::npos) << got;
  EXPECT_EQ(got.find(secret), std::string::npos) << "the error must not carry the token: " << got;
}

TEST(TokenFile, LoadFileNamesThePathAndTheAdminTokenJoinsAsAGlobalAdmin) {
  auto missing = TokenSet::LoadFile("/nonexistent/tokens.txt");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("cannot read /nonexistent/tokens.txt"),
            std::string::npos);
  const std::string path = ::testing::TempDir() + "tokens_test.txt";
  WriteFile(path, Line("ana", "agent", "acme", "tok-ana-0123456789") + "bob nobody * x\n");
  auto bad = TokenSet::LoadFile(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().rfind(path + ":2: the role 'nobody'", 0), 0u)
      << bad.status().message();
  WriteFile(path, Line("ana", "agent", "acme", "tok-ana-0123456789"));
  auto store = TokenStore::Open(path, "the-admin-token");
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto admin = (*store)->get()->Verify("the-admin-token");
  ASSERT_TRUE(admin);
  EXPECT_EQ(admin->name, "CONVOY_ADMIN_TOKEN");
  EXPECT_EQ(admin->role, Role::kAdmin);
  EXPECT_TRUE(admin->all_tenants());
  auto same = TokenStore::Open(path, "tok-ana-0123456789");
  ASSERT_FALSE(same.ok());
  EXPECT_NE(same.status().message().find("the same token as line 1 (ana)"), std::string::npos);
  std::remove(path.c_str());
}

// Rotation: a new file is read on Reload (SIGHUP); a broken one leaves the running set.
TEST(TokenStore, ReloadSwapsTheSetAndABadFileKeepsTheRunningOne) {
  const std::string path = ::testing::TempDir() + "tokens_reload.txt";
  WriteFile(path, Line("ana", "agent", "*", "old-token-0123456789"));
  auto store = TokenStore::Open(path, "admin-token");
  ASSERT_TRUE(store.ok());
  auto before = (*store)->get();
  WriteFile(path, Line("ana", "agent", "*", "old-token-0123456789") +
                      Line("ana2", "agent", "*", "new-token-0123456789"));
  ASSERT_TRUE((*store)->Reload().ok());
  EXPECT_TRUE((*store)->get()->Verify("new-token-0123456789"));
  EXPECT_TRUE((*store)->get()->Verify("admin-token")) << "the admin token stays through a reload";
  EXPECT_FALSE(before->Verify("new-token-0123456789")) << "a request in flight keeps its set";
  WriteFile(path, "ana2 agent * new-token-in-clear\n");
  Status s = (*store)->Reload();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(path + ":1:"), std::string::npos) << s.message();
  EXPECT_TRUE((*store)->get()->Verify("new-token-0123456789")) << "the running set stays";
  std::remove(path.c_str());
}

// A Secret volume updates the file without a signal: the store notices at its next look.
TEST(TokenStore, AChangedFileIsReadAtTheNextLookAndABrokenOneIsNot) {
  const std::string path = ::testing::TempDir() + "tokens_watch.txt";
  WriteFile(path, Line("ana", "agent", "*", "old-token-0123456789"));
  auto store = TokenStore::Open(path, "");
  ASSERT_TRUE(store.ok());
  (*store)->check_every = std::chrono::hours(1);
  WriteFile(path, Line("ana", "agent", "*", "old-token-0123456789") +
                      Line("bo", "viewer", "*", "new-token-0123456789"));
  EXPECT_FALSE((*store)->get()->Verify("new-token-0123456789"))
      << "not looked at within check_every";
  (*store)->check_every = std::chrono::seconds(0);
  EXPECT_TRUE((*store)->get()->Verify("new-token-0123456789"));
  WriteFile(path, "bo viewer * new-token-in-clear-text\n");
  EXPECT_TRUE((*store)->get()->Verify("new-token-0123456789"))
      << "a broken file leaves the running set";
  EXPECT_TRUE((*store)->get()->Verify("old-token-0123456789"));
  std::remove(path.c_str());
}

// The identities file of the OIDC proxy is read again when it changes (and on Reload: SIGHUP); a
// broken one leaves the running set, is counted as refused, and is not read again until it changes.
TEST(IdentityStore, AChangedFileIsReadAtTheNextLookAndABrokenOneKeepsTheLastGoodSet) {
  const std::string path = ::testing::TempDir() + "identities_watch.txt";
  WriteFile(path, "ana@acme.example ana-sso agent acme\n");
  auto store = IdentityStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Counter& loaded =
      DefaultRegistry().GetCounter("convoy_api_identities_reloads_total", "", "outcome=\"loaded\"");
  Counter& refused = DefaultRegistry().GetCounter("convoy_api_identities_reloads_total", "",
                                                  "outcome=\"refused\"");
  const uint64_t loaded_before = loaded.Value(), refused_before = refused.Value();
  (*store)->check_every = std::chrono::hours(1);
  WriteFile(path, "ana@acme.example ana-sso agent acme\nbo@acme.example bo-sso manager acme\n");
  EXPECT_FALSE((*store)->get()->Find("bo@acme.example")) << "not looked at within check_every";
  (*store)->check_every = std::chrono::seconds(0);
  auto bo = (*store)->get()->Find("BO@acme.example");
  ASSERT_TRUE(bo);
  EXPECT_EQ(bo->role, Role::kManager);
  EXPECT_EQ(loaded.Value(), loaded_before + 1);
  auto before = (*store)->get();
  WriteFile(path, "bo@acme.example bo-sso root acme\n");
  EXPECT_TRUE((*store)->get()->Find("bo@acme.example")) << "a broken file keeps the last good set";
  EXPECT_TRUE((*store)->get()->Find("ana@acme.example"));
  EXPECT_EQ(refused.Value(), refused_before + 1);
  EXPECT_TRUE((*store)->get()->Find("ana@acme.example"));
  EXPECT_EQ(refused.Value(), refused_before + 1) << "an unchanged broken file is not read again";
  Status s = (*store)->Reload();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(path + ":1: the role 'root'"), std::string::npos) << s.message();
  // SIGHUP after a fix: the new set; a request in flight keeps the set it started with.
  WriteFile(path, "cy@acme.example cy-sso viewer acme\n");
  ASSERT_TRUE((*store)->Reload().ok());
  EXPECT_TRUE((*store)->get()->Find("cy@acme.example"));
  EXPECT_FALSE((*store)->get()->Find("ana@acme.example")) << "a removed identity signs in no more";
  EXPECT_TRUE(before->Find("ana@acme.example"));
  std::remove(path.c_str());
  EXPECT_FALSE(IdentityStore::Open(path).ok()) << "no file at start is an error";
}

// A vouch is good for the one request it was made for, by the services' secret, for a minute.
TEST(Vouch, GoodForItsOwnRequestAloneAndNeverWhenChangedExpiredOrForged) {
  const std::string secret = "forward-secret-0123456789abcdef-0123456789";
  HttpRequest r;
  r.method = "POST";
  r.path = "/v1/media";
  r.query["phone_number_id"] = "106540352242922";
  r.body = "photo bytes";
  const int64_t now = 1'800'000'000;
  const Caller sam{"sam-sso", Role::kAgent, "demo"};
  r.headers[kVouchHeader] = Vouch(secret, sam, r, now);
  EXPECT_EQ(r.headers[kVouchHeader].rfind("v1 1800000060 sam-sso agent demo ", 0), 0u)
      << r.headers[kVouchHeader];
  auto good = CheckVouch(secret, r, now + kVouchSeconds);
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ(good->name, "sam-sso");
  EXPECT_EQ(good->role, Role::kAgent);
  EXPECT_EQ(good->tenant, "demo");
  const auto refused = [&](HttpRequest changed, const std::string& why, int64_t at,
                           const std::string& key) {
    auto c = CheckVouch(key, changed, at);
    EXPECT_FALSE(c.ok()) << why;
    if (!c.ok()) {
      EXPECT_EQ(c.status().code(), Code::kUnauthenticated) << why;
    }
  };
  refused(r, "expired", now + kVouchSeconds + 1, secret);
  refused(r, "another secret", now, secret.substr(1) + "x");
  refused(r, "no secret here", now, "");
  auto changed = r;
  changed.body += "x";
  refused(changed, "another body", now, secret);
  changed = r;
  changed.query["phone_number_id"] = "106540352242923";
  refused(changed, "another number", now, secret);
  changed = r;
  changed.path = "/v1/deliveries";
  refused(changed, "another route", now, secret);
  changed = r;
  changed.method = "GET";
  refused(changed, "another method", now, secret);
  for (const auto& [from, to] :
       std::vector<std::pair<std::string, std::string>>{{" agent ", " admin "},
                                                        {" demo ", " * "},
                                                        {"sam-sso", "ana-sso"},
                                                        {"1800000060", "1900000060"}}) {
    changed = r;
    std::string& h = changed.headers[kVouchHeader];
    h.replace(h.find(from), from.size(), to);
    refused(changed, "a field changed: " + to, now, secret);
  }
  for (const std::string& bad : std::vector<std::string>{
           "", "v1", "v2 1800000060 sam-sso agent demo " + std::string(64, 'a'),
           "v1 1800000060 sam-sso agent demo", "v1 x sam-sso agent demo a"}) {
    changed = r;
    changed.headers[kVouchHeader] = bad;
    refused(changed, "malformed: " + bad, now, secret);
  }
}

TEST(TokenMatcher, OnlyTheWholeTokenMatchesNeverItsHashAPrefixOrAnExtension) {
  auto set = TokenSet::Parse(
      Line("long", "admin", "*", "abcdef-0123456789") + Line("short", "viewer", "*", "abc"),
      "tokens.txt");
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->Verify("abc")->name, "short");
  EXPECT_EQ(set->Verify("abcdef-0123456789")->name, "long");
  EXPECT_FALSE(set->Verify("abcdef-012345678")) << "a prefix of a token";
  EXPECT_FALSE(set->Verify("abcdef-01234567890")) << "a token and more";
  EXPECT_FALSE(set->Verify("ab"));
  EXPECT_FALSE(set->Verify(""));
  EXPECT_FALSE(set->Verify(TokenHashField("abcdef-0123456789")))
      << "the hash in the file is not a token";
  EXPECT_FALSE(set->Verify(Sha256Hex("abcdef-0123456789")));
  EXPECT_FALSE(set->Verify(Sha256Hex("abcdef-0123456789").substr(0, 32)));
}

TEST(Roles, SetsWithViewerUnderAllAndAdminOverAll) {
  const Role all[] = {Role::kViewer, Role::kAgent, Role::kManager, Role::kOperator, Role::kAdmin};
  for (Role have : all) {
    for (Role need : all) {
      const bool expect = have == Role::kAdmin || need == Role::kViewer || have == need;
      EXPECT_EQ(RoleAllows(have, need), expect)
          << RoleName(have) << " calling a " << RoleName(need) << " route";
    }
    EXPECT_EQ(ParseRole(RoleName(have)), have);
    EXPECT_EQ(SeesPersonalData(have), have != Role::kViewer);
  }
  EXPECT_FALSE(RoleAllows(Role::kOperator, Role::kManager)) << "siblings, not a ladder";
  EXPECT_FALSE(RoleAllows(Role::kManager, Role::kOperator));
  EXPECT_FALSE(ParseRole("root"));
}

TEST(RoutePatterns, PlaceholdersMatchOneNonEmptySegment) {
  EXPECT_TRUE(PathMatches("/v1/assignments", "/v1/assignments"));
  EXPECT_FALSE(PathMatches("/v1/assignments", "/v1/assignments/"));
  EXPECT_FALSE(PathMatches("/v1/assignments", "/v1/assignmentsx"));
  EXPECT_TRUE(PathMatches("/v1/assignments/{id}", "/v1/assignments/asg_1"));
  EXPECT_FALSE(PathMatches("/v1/assignments/{id}", "/v1/assignments/"));
  EXPECT_FALSE(PathMatches("/v1/assignments/{id}", "/v1/assignments"));
  EXPECT_FALSE(PathMatches("/v1/assignments/{id}", "/v1/assignments/a/cancel"));
  EXPECT_TRUE(PathMatches("/v1/assignments/{id}/cancel", "/v1/assignments/a/cancel"));
  EXPECT_FALSE(PathMatches("/v1/assignments/{id}/cancel", "/v1/assignments//cancel"));
  EXPECT_TRUE(PathMatches("/v1/sinks/{name}/enable", "/v1/sinks/listing/enable"));
  EXPECT_FALSE(PathMatches("/v1/sinks/{name}/enable", "/v1/sinks/listing/enable/"));
}

}  // namespace
}  // namespace convoy
