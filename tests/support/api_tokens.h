#pragma once
// Test tokens for the /v1/ APIs: one token per role for every tenant ("*") and one per role for
// tenant "acme", written to a tokens file as an operator would (hashes only), plus the global
// admin token (CONVOY_ADMIN_TOKEN). Header-only: the conversation and outbound API tests share it.
#include <glog/logging.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "convoy/http.h"
#include "convoy/tokens.h"

namespace convoy::test {

struct ApiTokens {
  static constexpr const char* kAdminEnv = "env-admin-token-0123456789abcdef";
  static constexpr Role kRoles[] = {Role::kViewer, Role::kAgent, Role::kManager, Role::kOperator,
                                    Role::kAdmin};

  // The token of `role` for `tenant` ("*" or "acme"); its name is "<role>-all" or "<role>-acme".
  static std::string Token(Role role, const std::string& tenant) {
    return std::string("tok-") + RoleName(role) + "-" + (tenant == "*" ? "all" : tenant) +
           "-0123456789abcdef";
  }
  static std::string Name(Role role, const std::string& tenant) {
    return std::string(RoleName(role)) + "-" + (tenant == "*" ? "all" : tenant);
  }

  // Writes the file and opens a store over it and the admin token.
  std::shared_ptr<TokenStore> Open() {
    path = ::testing::TempDir() + "api_tokens_" + std::to_string(::getpid()) + ".txt";
    std::ofstream out(path);
    out << "# one token per role and tenant\n";
    for (Role r : kRoles) {
      for (const char* tenant : {"*", "acme"}) {
        out << Name(r, tenant) << " " << RoleName(r) << " " << tenant << " "
            << TokenHashField(Token(r, tenant)) << "\n";
      }
    }
    out.close();
    auto store = TokenStore::Open(path, kAdminEnv);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? *store : nullptr;
  }
  ~ApiTokens() {
    if (!path.empty()) std::remove(path.c_str());
  }
  std::string path;
};

// A request as the HTTP server hands it to a handler; `authorization` is the header's value (none
// when empty).
inline HttpRequest ApiRequest(const std::string& method, const std::string& path,
                              const std::string& body, const std::string& authorization) {
  HttpRequest r;
  r.method = method;
  r.path = path;
  r.body = body;
  if (!authorization.empty()) r.headers["authorization"] = authorization;
  return r;
}

// Every log line written while it lives.
class LogCapture : public google::LogSink {
 public:
  LogCapture() { google::AddLogSink(this); }
  ~LogCapture() override { google::RemoveLogSink(this); }
  void send(google::LogSeverity, const char*, const char*, int, const google::LogMessageTime&,
            const char* message, size_t message_len) override {
    std::lock_guard<std::mutex> lock(mu_);
    lines_.emplace_back(message, message_len);
  }
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
};

// The route's expected answer for a role: the roles listed get `ok`, the rest 403.
inline int Expected(const std::string& allowed_roles, Role role, int ok) {
  return (" " + allowed_roles + " ").find(std::string(" ") + RoleName(role) + " ") !=
                 std::string::npos
             ? ok
             : 403;
}

// What a test expects of one route, written out by hand (not derived from the service's table).
struct WantRoute {
  const char* method;
  const char* pattern;
  const char* roles;  // roles answered `ok`; every other role gets 403
  int ok;
  Scope scope;
  int tenant_ok;  // what a tenant's token of an allowed role gets on a tenant-scoped route
};

// The service's table has exactly these routes, in this order, with these roles and scopes.
inline void ExpectTable(const std::vector<RouteRule>& routes, const std::vector<WantRoute>& want) {
  ASSERT_EQ(routes.size(), want.size())
      << "a route was added or removed: add it to the test's table";
  for (size_t i = 0; i < routes.size(); ++i) {
    EXPECT_STREQ(routes[i].method, want[i].method);
    EXPECT_STREQ(routes[i].pattern, want[i].pattern);
    EXPECT_EQ(routes[i].scope, want[i].scope) << routes[i].pattern;
    for (Role r : ApiTokens::kRoles) {
      EXPECT_EQ(RoleAllows(r, routes[i].role), Expected(want[i].roles, r, 1) == 1)
          << routes[i].method << " " << routes[i].pattern << " as " << RoleName(r);
    }
  }
}

// Checks one answer to `role`'s token for `tenant`: the status, and what a 403 says.
inline void ExpectAnswer(const WantRoute& w, Role role, const std::string& tenant,
                         const HttpResponse& resp, const std::string& what) {
  const bool role_ok = Expected(w.roles, role, 1) == 1;
  int want = role_ok ? w.ok : 403;
  if (tenant != "*" && role_ok) want = w.scope == Scope::kGlobal ? 403 : w.tenant_ok;
  EXPECT_EQ(resp.status, want) << what << ": " << resp.body;
  if (resp.status != 403) return;
  if (!role_ok) {
    const std::string roles = w.roles;
    EXPECT_NE(resp.body.find("needs the role " + roles.substr(0, roles.find(' '))),
              std::string::npos)
        << what << ": " << resp.body;
    EXPECT_NE(resp.body.find(ApiTokens::Name(role, tenant)), std::string::npos)
        << "names the token: " << resp.body;
  } else {
    EXPECT_NE(resp.body.find("acts on every tenant, so it needs a token with tenant '*'"),
              std::string::npos)
        << what << ": " << resp.body;
  }
}

}  // namespace convoy::test
