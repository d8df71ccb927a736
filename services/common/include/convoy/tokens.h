#pragma once
// Named API tokens with a role and a tenant, and the gate every /v1/ route of conversation and
// outbound passes through.
//
// The tokens file (--tokens_file), one token a line, fields separated by spaces or tabs:
//
//   # name      role      tenant   hash of the token
//   ana         agent     acme
//   sha256:4d3844e080d8eff8e7e92bf54ac314abb3abf4ed2aeffaad6c9d5b2b771f0531 ops-oncall  operator  *
//   sha256:bbfeb664dcba6da179a3b91f833cae04a3b8891b6d984f15ec462313a58116f4
//
// name: 1-64 of a-z 0-9 . _ - (what logs name; unique). role: viewer, agent, manager, operator or
// admin. tenant: a tenant id (same alphabet) or `*` (every tenant). The last field is
// "sha256:" and the 64 hex digits of SHA-256 of the token (`convoyctl token hash` prints the line):
// never the token itself, so the file (a Kubernetes Secret) gives nobody a usable token. Blank
// lines and lines starting with `#` are skipped. Every error names the file and the line.
//
// Roles are sets, not a ladder: every role reads (viewer's set: GET routes, personal data masked
// for viewer alone), agent adds conversations, manager checklists and assignments, operator parked
// messages and deliveries, and admin holds all of them and the global routes (flows, the number
// registry). A ladder would have to put operator above manager or below it, and either gives one
// of them the other's powers.
//
// A bearer is hashed and its hash compared in constant time with every entry's (no early exit),
// so neither the time nor the order of entries says which one matched or how much of it did.
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "convoy/http.h"
#include "convoy/status.h"

namespace convoy {

enum class Role { kViewer, kAgent, kManager, kOperator, kAdmin };
const char* RoleName(Role role);
std::optional<Role> ParseRole(std::string_view name);
// `have` may call a route that needs `need`: admin may call anything, every role may call a
// viewer route, and agent, manager and operator their own routes.
bool RoleAllows(Role have, Role need);
// Whether answers show personal data (phone numbers, BSUIDs, names) in clear: all but viewer.
bool SeesPersonalData(Role role);

constexpr const char* kAllTenants = "*";

// Who called: what the handler logs (never the token) and scopes by.
struct Caller {
  std::string name;
  Role role = Role::kViewer;
  std::string tenant = kAllTenants;  // "*" or one tenant
  bool all_tenants() const { return tenant == kAllTenants; }
};

class TokenSet {
 public:
  // The file's text; `source` names it in errors ("tokens.txt:3: ...").
  static Result<TokenSet> Parse(std::string_view text, const std::string& source);
  static Result<TokenSet> LoadFile(const std::string& path);
  // CONVOY_ADMIN_TOKEN: a global admin named `name`, hashed here (the clear token is not kept).
  Status AddAdmin(const std::string& name, std::string_view token);
  // The caller whose hash matches SHA-256(token), after comparing with every entry.
  std::optional<Caller> Verify(std::string_view token) const;
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

 private:
  struct Entry {
    Caller caller;
    std::string hash;  // 32 raw bytes
    int line = 0;      // 0: not from the file
  };
  friend class TokenStore;
  Status Add(Entry entry, const std::string& where);
  Status AddAdminHash(const std::string& name, const std::string& hash_hex);
  std::vector<Entry> entries_;
};

// Identities an OIDC proxy vouches for (conversation's --proxy_identities_file), one a line:
//
//   # identity (what the proxy's header carries)  name      role    tenant
//   ana@acme.example                                ana-sso   agent   acme
//
// The identity is 1-254 printable characters without spaces, compared without regard to ASCII
// case (an e-mail address); name, role and tenant as in the tokens file, and the name is what
// logs and the audit log say. A duplicate identity or name is an error naming its line.
class IdentitySet {
 public:
  static Result<IdentitySet> Parse(std::string_view text, const std::string& source);
  static Result<IdentitySet> LoadFile(const std::string& path);
  std::optional<Caller> Find(std::string_view identity) const;
  size_t size() const { return callers_.size(); }

 private:
  std::vector<std::pair<std::string, Caller>> callers_;  // lower-cased identity
};

// The identities file as a service answers to it: swapped whole when the file changes (stat()ed
// at most every `check_every`: inode, size, modification time, so a Kubernetes Secret volume's
// symlink swap counts) or on Reload (SIGHUP). A file that does not parse keeps the running set and
// is logged as an error naming the file and line, once per change; requests in flight keep the set
// they started with. Reloads are counted in
// convoy_api_identities_reloads_total{outcome="loaded"|"refused"}.
class IdentityStore {
 public:
  static Result<std::shared_ptr<IdentityStore>> Open(const std::string& path);
  std::shared_ptr<const IdentitySet> get();
  // Reads the file again; a bad file is an error and the running set stays.
  Status Reload();
  // Reload, logging the outcome (SIGHUP: reason "sighup").
  void ReloadLogged(const char* reason);
  std::chrono::steady_clock::duration check_every = std::chrono::seconds(5);

 private:
  std::mutex mu_;
  std::shared_ptr<const IdentitySet> set_;
  std::string file_;
  std::string signature_;  // of the file last read (or tried)
  std::chrono::steady_clock::time_point checked_{};
};

// A caller one service admitted, vouched for to the service it forwards the request to
// (conversation's POST /v1/media to media, /v1/deliveries* to outbound:
// conversation/api/forward.h), so that a person signed in without a token of their own (the OIDC
// proxy) is checked again by the service that does the work, under the same name, role and tenant:
//
//   X-Convoy-Vouch: v1 <expires, unix s> <name> <role> <tenant> <64 hex>
//
// The last field is HMAC-SHA256(forward secret, "convoy-vouch-v1", the four fields before it, the
// request's method, path, query (sorted, encoded) and the SHA-256 of its body, one a line). The
// forward secret (CONVOY_FORWARD_SECRET or --forward_secret_file, at least kMinForwardSecretBytes)
// is the services' alone: no person and no proxy holds it. A vouch is good for that one request (a
// changed route, query, body or caller does not match) for kVouchSeconds, and a service takes it
// only on the routes that are forwarded to it; the role and tenant are checked there again.
constexpr const char* kVouchHeader = "x-convoy-vouch";
constexpr int64_t kVouchSeconds = 60;
constexpr size_t kMinForwardSecretBytes = 32;
std::string Vouch(std::string_view secret, const Caller& caller, const HttpRequest& request,
                  int64_t now);
// The forward secret from `file` (else CONVOY_FORWARD_SECRET); "" when neither is set (no
// vouches made or taken), an error naming both when it is shorter than kMinForwardSecretBytes.
Result<std::string> LoadForwardSecret(const std::string& file);
// The caller the request's vouch names, or kUnauthenticated saying why (no vouch, malformed,
// expired, a signature that does not match).
Result<Caller> CheckVouch(std::string_view secret, const HttpRequest& request, int64_t now);

// The token of an Authorization header "Bearer <token>" (the scheme in any case); nullopt for
// another scheme, an empty token or one with whitespace inside.
std::optional<std::string_view> BearerToken(std::string_view header);

// "sha256:<64 hex>" of a token: the last field of its line.
std::string TokenHashField(std::string_view token);

// The tokens a service answers to, swapped whole on Reload (SIGHUP, or the file changed): requests
// in flight keep the set they started with.
class TokenStore {
 public:
  // tokens_file may be empty (then only the admin token); admin_token may be empty.
  static Result<std::shared_ptr<TokenStore>> Open(const std::string& tokens_file,
                                                  const std::string& admin_token);
  explicit TokenStore(TokenSet set) : set_(std::make_shared<const TokenSet>(std::move(set))) {}
  // The current set. At most every `check_every`, the file is stat()ed and read again when its
  // inode, size or modification time changed (a Kubernetes Secret volume swaps a symlink): a bad
  // file is logged once and the running set stays.
  std::shared_ptr<const TokenSet> get();
  // Reads tokens_file again; a bad file is an error and the running set stays.
  Status Reload();
  // Reload, logging the outcome (SIGHUP: reason "sighup").
  void ReloadLogged(const char* reason);
  std::chrono::steady_clock::duration check_every = std::chrono::seconds(5);

 private:
  std::string FileSignature() const;
  std::shared_ptr<const TokenSet>
  get_current();  // inode, size, mtime; "" when it cannot be stat()ed
  std::mutex mu_;
  std::shared_ptr<const TokenSet> set_;
  std::string file_, admin_hash_;  // the admin token's hash, never the token
  std::string signature_;          // of the file last read (or tried)
  std::chrono::steady_clock::time_point checked_{};
};

// One /v1/ route: method, path pattern (segments; `{x}` matches one non-empty segment), the role
// it needs, and whether a tenant-scoped token may call it (its handler then filters by tenant).
enum class Scope { kGlobal, kTenant };
struct RouteRule {
  const char* method;
  const char* pattern;
  Role role;
  Scope scope;
};
bool PathMatches(std::string_view pattern, std::string_view path);

// The gate's answer: a refusal, or the caller and the route it may call.
struct Admission {
  std::optional<HttpResponse> refused;
  Caller caller;
  const RouteRule* route = nullptr;
};
// 403 "closed" when no token is configured; 401 without a bearer or with an unknown one; 404 for a
// path no rule has, 405 for a known path with another method; 403 naming the role needed when the
// caller's role may not, or when a tenant-scoped token calls a global route. Refusals and admitted
// calls are counted in convoy_api_requests_total{service,outcome} and logged with the caller's
// name, never the token.
Admission Admit(const HttpRequest& request, const TokenSet& tokens,
                const std::vector<RouteRule>& routes, const char* service,
                const std::string& how_to_open);
// The same gate for a caller known another way (an identity an OIDC proxy vouched for): the route,
// the role and the tenant scope are checked, counted and logged exactly as for a token.
Admission AdmitAs(const HttpRequest& request, const Caller& caller,
                  const std::vector<RouteRule>& routes, const char* service);
// The gate for a request without a bearer that carries a vouch (see Vouch): 401 when no secret is
// set or the vouch is not good, 403 for a route not in `vouched` (patterns of routes that are
// forwarded here), else the route, role and tenant as AdmitAs.
Admission AdmitVouched(const HttpRequest& request, std::string_view secret,
                       const std::vector<RouteRule>& routes,
                       const std::vector<std::string>& vouched, const char* service, int64_t now);
// 401 for a request whose credentials are not known (counted as unauthenticated; `why` is logged
// every 100th time and never carries what the request sent).
HttpResponse RefuseUnauthenticated(const char* service, const char* why);

}  // namespace convoy
