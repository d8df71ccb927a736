#include "convoy/tokens.h"

#include <glog/logging.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>

#include "convoy/config.h"
#include "convoy/crypto.h"
#include "convoy/metrics.h"
#include "convoy/url.h"

namespace convoy {

namespace {

constexpr size_t kMaxFileBytes = 1 << 20;
constexpr const char* kHashPrefix = "sha256:";
constexpr const char* kAdminTokenName = "CONVOY_ADMIN_TOKEN";  // upper case: no file name can be it
constexpr const char* kRoles = "viewer, agent, manager, operator, admin";

// 1-64 of a-z 0-9 . _ -, starting with a letter or digit: names and tenants.
bool ValidName(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) return false;
  }
  return true;
}

bool AllHex(std::string_view s) {
  for (char c : s) {
    if (HexDigitValue(c) < 0) return false;
  }
  return true;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

// Each line of a tokens or identities file that is not blank or a comment, split in fields, with
// "<source>:<line>" for its errors and the line's number; the first error `each` returns ends the
// walk.
using EntryFn = std::function<Status(const std::vector<std::string_view>& fields,
                                     const std::string& where, int line)>;
Status ForEachEntry(std::string_view text, const std::string& source, const EntryFn& each) {
  int number = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto f = Fields(line);
    if (f.empty() || f[0].front() == '#') continue;
    Status s = each(f, source + ":" + std::to_string(number), number);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

// A file of at most 1 MiB, whole.
Result<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status(Code::kInvalidArgument, "cannot read " + path + ": " + std::strerror(errno));
  std::string text(kMaxFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxFileBytes)
    return Status(Code::kInvalidArgument, path + ": over 1 MiB; is it the right file?");
  return text;
}

// inode, size and modification time of a file; "" when it cannot be stat()ed.
std::string FileSignatureOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";
  return std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

Counter& IdentityReloads(const char* outcome) {
  return DefaultRegistry().GetCounter(
      "convoy_api_identities_reloads_total",
      "Reads of the OIDC proxy's identities file after start, by outcome (refused: it did not "
      "parse and the running set stayed)",
      std::string("outcome=\"") + outcome + "\"");
}

// What a vouch's signature covers: its fields and the request it is good for.
std::string VouchedText(std::string_view fields, const HttpRequest& r) {
  std::string query;
  for (const auto& [k, v] : r.query)
    query += (query.empty() ? "" : "&") + UrlEncode(k) + "=" + UrlEncode(v);
  return "convoy-vouch-v1\n" + std::string(fields) + "\n" + r.method + "\n" + r.path + "\n" +
         query + "\n" + Sha256Hex(r.body);
}

Counter& Requests(const char* service, const char* outcome) {
  return DefaultRegistry().GetCounter(
      "convoy_api_requests_total", "Calls to the /v1/ API by how the token gate answered them",
      std::string("service=\"") + service + "\",outcome=\"" + outcome + "\"");
}

HttpResponse Unauthenticated(const char* service, const char* why) {
  Requests(service, "unauthenticated").Inc();
  LOG_EVERY_N(WARNING, 100) << "service=" << service
                            << " handler=api event=api_refused status=401 reason=\"" << why
                            << "\" (logged every 100th)";
  HttpResponse resp = JsonError(401, "unauthenticated", "Authorization: Bearer <token> is needed");
  resp.headers["WWW-Authenticate"] = "Bearer";
  return resp;
}

}  // namespace

// The token of "Bearer <token>" (the scheme in any case, optional whitespace after the token);
// nullopt for another scheme, an empty token or one with whitespace inside.
std::optional<std::string_view> BearerToken(std::string_view header) {
  constexpr std::string_view kScheme = "bearer";
  if (header.size() <= kScheme.size() || Lower(header.substr(0, kScheme.size())) != kScheme)
    return std::nullopt;
  if (header[kScheme.size()] != ' ') return std::nullopt;
  std::string_view rest = header.substr(kScheme.size());
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
  while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t')) rest.remove_suffix(1);
  if (rest.empty() || rest.find_first_of(" \t") != std::string_view::npos) return std::nullopt;
  return rest;
}

const char* RoleName(Role role) {
  switch (role) {
    case Role::kViewer:
      return "viewer";
    case Role::kAgent:
      return "agent";
    case Role::kManager:
      return "manager";
    case Role::kOperator:
      return "operator";
    case Role::kAdmin:
      return "admin";
  }
  return "?";
}

std::optional<Role> ParseRole(std::string_view name) {
  for (Role r : {Role::kViewer, Role::kAgent, Role::kManager, Role::kOperator, Role::kAdmin}) {
    if (name == RoleName(r)) return r;
  }
  return std::nullopt;
}

bool RoleAllows(Role have, Role need) {
  return have == Role::kAdmin || need == Role::kViewer || have == need;
}

bool SeesPersonalData(Role role) { return role != Role::kViewer; }

std::string TokenHashField(std::string_view token) { return kHashPrefix + Sha256Hex(token); }

Status TokenSet::Add(Entry entry, const std::string& where) {
  auto at = [](const Entry& e) {
    return e.line > 0 ? "line " + std::to_string(e.line) : std::string("the admin token");
  };
  for (const auto& e : entries_) {
    if (e.caller.name == entry.caller.name) {
      return Status(Code::kInvalidArgument,
                    where + ": the name " + entry.caller.name + " is already on " + at(e));
    }
    if (e.hash == entry.hash) {
      return Status(Code::kInvalidArgument, where + ": the same token as " + at(e) + " (" +
                                                e.caller.name +
                                                "): give each caller a token of its own");
    }
  }
  entries_.push_back(std::move(entry));
  return Status::Ok();
}

Result<TokenSet> TokenSet::Parse(std::string_view text, const std::string& source) {
  TokenSet set;
  const std::string empty_hash = Sha256Hex("");
  using Row = std::vector<std::string_view>;
  Status parsed = ForEachEntry(text, source, [&](const Row& f, const std::string& where, int line) {
    auto bad = [&](const std::string& why) {
      return Status(Code::kInvalidArgument, where + ": " + why);
    };
    if (f.size() != 4) {
      return bad("expected 4 fields (name role tenant sha256:<hex>), found " +
                 std::to_string(f.size()));
    }
    if (!ValidName(f[0]))
      return bad("the name '" + std::string(f[0]) + "' is not 1-64 of a-z, 0-9, '.', '_', '-'");
    auto role = ParseRole(f[1]);
    if (!role) return bad("the role '" + std::string(f[1]) + "' is not one of " + kRoles);
    if (f[2] != kAllTenants && !ValidName(f[2])) {
      return bad("the tenant '" + std::string(f[2]) +
                 "' is neither '*' nor 1-64 of a-z, 0-9, '.', '_', '-'");
    }
    std::string_view hash = f[3];
    const std::string_view prefix = kHashPrefix;
    // Never echo the field: when it is not a hash it may well be a token.
    if (hash.substr(0, prefix.size()) != prefix) {
      return bad(
          "the last field must be sha256:<64 hex digits> of the token, never the token itself (it "
          "looks like "
          "a token in clear: hash it with `convoyctl token hash`, and replace that token)");
    }
    hash.remove_prefix(prefix.size());
    if (hash.size() != 64 || !AllHex(hash)) {
      return bad("sha256: must be followed by 64 hex digits (found " + std::to_string(hash.size()) +
                 " characters)");
    }
    Entry e{Caller{std::string(f[0]), *role, std::string(f[2])}, Lower(hash), line};
    if (e.hash == empty_hash) return bad("that is the hash of an empty token");
    return set.Add(std::move(e), where);
  });
  if (!parsed.ok()) return parsed;
  if (set.empty())
    return Status(Code::kInvalidArgument,
                  source + ": holds no token (one a line: name role tenant sha256:<hex>)");
  return set;
}

Result<TokenSet> TokenSet::LoadFile(const std::string& path) {
  auto text = ReadSmallFile(path);
  if (!text.ok()) return text.status();
  return Parse(*text, path);
}

Result<IdentitySet> IdentitySet::Parse(std::string_view text, const std::string& source) {
  IdentitySet set;
  using Row = std::vector<std::string_view>;
  Status parsed = ForEachEntry(text, source, [&](const Row& f, const std::string& where, int) {
    auto bad = [&](const std::string& why) {
      return Status(Code::kInvalidArgument, where + ": " + why);
    };
    if (f.size() != 4)
      return bad("expected 4 fields (identity name role tenant), found " +
                 std::to_string(f.size()));
    bool printable = f[0].size() <= 254;
    for (unsigned char c : f[0]) printable = printable && c > 0x20 && c < 0x7f;
    if (!printable) return bad("the identity is not 1-254 printable characters without spaces");
    if (!ValidName(f[1]))
      return bad("the name '" + std::string(f[1]) + "' is not 1-64 of a-z, 0-9, '.', '_', '-'");
    auto role = ParseRole(f[2]);
    if (!role) return bad("the role '" + std::string(f[2]) + "' is not one of " + kRoles);
    if (f[3] != kAllTenants && !ValidName(f[3])) {
      return bad("the tenant '" + std::string(f[3]) +
                 "' is neither '*' nor 1-64 of a-z, 0-9, '.', '_', '-'");
    }
    const std::string identity = Lower(f[0]);
    for (const auto& [known, caller] : set.callers_) {
      if (known == identity) return bad("the identity is listed twice");
      if (caller.name == f[1]) return bad("the name '" + std::string(f[1]) + "' is listed twice");
    }
    set.callers_.emplace_back(identity, Caller{std::string(f[1]), *role, std::string(f[3])});
    return Status::Ok();
  });
  if (!parsed.ok()) return parsed;
  if (set.callers_.empty())
    return Status(Code::kInvalidArgument,
                  source + ": holds no identity (identity name role tenant)");
  return set;
}

Result<IdentitySet> IdentitySet::LoadFile(const std::string& path) {
  auto text = ReadSmallFile(path);
  if (!text.ok()) return text.status();
  return Parse(*text, path);
}

// Compared with every entry in constant time per byte, as tokens are: the time says nothing of
// which identity matched.
std::optional<Caller> IdentitySet::Find(std::string_view identity) const {
  const std::string wanted = Lower(identity);
  std::optional<Caller> found;
  for (const auto& [known, caller] : callers_) {
    if (ConstantTimeEquals(known, wanted) && !found) found = caller;
  }
  return found;
}

Status TokenSet::AddAdmin(const std::string& name, std::string_view token) {
  if (token.empty()) return Status(Code::kInvalidArgument, name + " is empty");
  return AddAdminHash(name, Sha256Hex(token));
}

Status TokenSet::AddAdminHash(const std::string& name, const std::string& hash_hex) {
  return Add(Entry{Caller{name, Role::kAdmin, kAllTenants}, hash_hex, 0}, name);
}

std::optional<Caller> TokenSet::Verify(std::string_view token) const {
  if (token.empty()) return std::nullopt;
  const std::string hash = Sha256Hex(token);
  const Entry* found = nullptr;
  // Every entry is compared, whatever matched before: the loop's time depends on the count alone.
  for (const auto& e : entries_) {
    const bool same = ConstantTimeEquals(hash, e.hash);
    found = same ? &e : found;
  }
  if (!found) return std::nullopt;
  return found->caller;
}

Result<std::shared_ptr<TokenStore>> TokenStore::Open(const std::string& tokens_file,
                                                     const std::string& admin_token) {
  TokenSet set;
  if (!tokens_file.empty()) {
    auto loaded = TokenSet::LoadFile(tokens_file);
    if (!loaded.ok()) return loaded.status();
    set = std::move(*loaded);
  }
  if (!admin_token.empty()) {
    Status s = set.AddAdmin(kAdminTokenName, admin_token);
    if (!s.ok()) return s;
  }
  LOG(INFO) << "service=" << ServiceName() << " event=api_tokens_loaded count=" << set.size()
            << (tokens_file.empty() ? "" : " file=" + tokens_file)
            << (admin_token.empty() ? "" : " admin_token=set");
  auto store = std::make_shared<TokenStore>(std::move(set));
  store->file_ = tokens_file;
  if (!tokens_file.empty()) store->signature_ = store->FileSignature();
  store->checked_ = std::chrono::steady_clock::now();
  if (!admin_token.empty()) store->admin_hash_ = Sha256Hex(admin_token);
  return store;
}

std::string TokenStore::FileSignature() const { return FileSignatureOf(file_); }

std::shared_ptr<const TokenSet> TokenStore::get() {
  const auto now = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  if (file_.empty() || now - checked_ < check_every) return set_;
  checked_ = now;
  const std::string signature = FileSignature();
  if (signature.empty() || signature == signature_) return set_;
  lock.unlock();
  ReloadLogged("file_changed");
  return get_current();
}

std::shared_ptr<const TokenSet> TokenStore::get_current() {
  std::lock_guard<std::mutex> lock(mu_);
  return set_;
}

void TokenStore::ReloadLogged(const char* reason) {
  Status s = Reload();
  if (s.ok()) {
    LOG(INFO) << "service=" << ServiceName() << " event=api_tokens_reloaded reason=" << reason
              << " count=" << get_current()->size();
  } else {
    LOG(ERROR) << "service=" << ServiceName()
               << " event=api_tokens_reload_refused reason=" << reason << " error=" << s.ToString()
               << " (the running tokens are unchanged)";
  }
}

Status TokenStore::Reload() {
  if (file_.empty()) return Status::Ok();
  const std::string signature = FileSignature();
  {
    std::lock_guard<std::mutex> lock(mu_);
    signature_ = signature;
  }
  auto loaded = TokenSet::LoadFile(file_);
  if (!loaded.ok()) return loaded.status();
  if (!admin_hash_.empty()) {
    Status s = loaded->AddAdminHash(kAdminTokenName, admin_hash_);
    if (!s.ok()) return s;
  }
  auto next = std::make_shared<const TokenSet>(std::move(*loaded));
  std::lock_guard<std::mutex> lock(mu_);
  set_ = std::move(next);
  return Status::Ok();
}

Result<std::shared_ptr<IdentityStore>> IdentityStore::Open(const std::string& path) {
  auto store = std::make_shared<IdentityStore>();
  store->file_ = path;
  store->signature_ = FileSignatureOf(path);
  auto loaded = IdentitySet::LoadFile(path);
  if (!loaded.ok()) return loaded.status();
  store->set_ = std::make_shared<const IdentitySet>(std::move(*loaded));
  store->checked_ = std::chrono::steady_clock::now();
  return store;
}

std::shared_ptr<const IdentitySet> IdentityStore::get() {
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (now - checked_ < check_every) return set_;
    checked_ = now;
    const std::string signature = FileSignatureOf(file_);
    if (signature.empty() || signature == signature_) return set_;
  }
  ReloadLogged("file_changed");
  std::lock_guard<std::mutex> lock(mu_);
  return set_;
}

Status IdentityStore::Reload() {
  const std::string signature = FileSignatureOf(file_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    signature_ = signature;  // a bad file is reported once, not on every look
  }
  auto loaded = IdentitySet::LoadFile(file_);
  if (!loaded.ok()) {
    IdentityReloads("refused").Inc();
    return loaded.status();
  }
  auto next = std::make_shared<const IdentitySet>(std::move(*loaded));
  IdentityReloads("loaded").Inc();
  std::lock_guard<std::mutex> lock(mu_);
  set_ = std::move(next);
  return Status::Ok();
}

void IdentityStore::ReloadLogged(const char* reason) {
  Status s = Reload();
  if (s.ok()) {
    size_t count = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      count = set_->size();
    }
    LOG(INFO) << "service=" << ServiceName() << " event=proxy_identities_reloaded reason=" << reason
              << " file=" << file_ << " count=" << count;
  } else {
    LOG(ERROR) << "service=" << ServiceName()
               << " event=proxy_identities_reload_refused reason=" << reason
               << " error=" << s.ToString() << " (the running identities are unchanged)";
  }
}

std::string Vouch(std::string_view secret, const Caller& caller, const HttpRequest& r,
                  int64_t now) {
  const std::string fields = "v1 " + std::to_string(now + kVouchSeconds) + " " + caller.name + " " +
                             RoleName(caller.role) + " " + caller.tenant;
  return fields + " " + HexEncode(HmacSha256(secret, VouchedText(fields, r)));
}

Result<std::string> LoadForwardSecret(const std::string& file) {
  const char* env = std::getenv("CONVOY_FORWARD_SECRET");
  if (file.empty() && (env == nullptr || *env == '\0')) return std::string();
  auto secret = LoadSecret("CONVOY_FORWARD_SECRET", file);
  if (!secret.ok()) return secret.status();
  if (secret->size() < kMinForwardSecretBytes) {
    return Status(Code::kInvalidArgument,
                  "the forward secret (--forward_secret_file or CONVOY_FORWARD_SECRET) must be at "
                  "least " +
                      std::to_string(kMinForwardSecretBytes) + " characters");
  }
  return secret;
}

Result<Caller> CheckVouch(std::string_view secret, const HttpRequest& r, int64_t now) {
  auto refuse = [](const char* why) { return Status(Code::kUnauthenticated, why); };
  if (secret.size() < kMinForwardSecretBytes) return refuse("vouches are not taken here");
  const std::string header = r.Header(kVouchHeader);
  if (header.empty()) return refuse("no vouch");
  const auto f = Fields(header);
  const size_t signed_part = header.rfind(' ');
  if (f.size() != 6 || f[0] != "v1" || f[1].empty() || f[1].size() > 12 ||
      f[1].find_first_not_of("0123456789") != std::string_view::npos || !ValidName(f[2]) ||
      !ParseRole(f[3]) || (f[4] != kAllTenants && !ValidName(f[4])) || f[5].size() != 64 ||
      !AllHex(f[5]) || signed_part == std::string::npos)
    return refuse("a malformed vouch");
  const std::string want =
      HexEncode(HmacSha256(secret, VouchedText(header.substr(0, signed_part), r)));
  if (!ConstantTimeEquals(want, Lower(f[5])))
    return refuse("a vouch whose signature does not match");
  if (std::stoll(std::string(f[1])) < now) return refuse("an expired vouch");
  return Caller{std::string(f[2]), *ParseRole(f[3]), std::string(f[4])};
}

Admission AdmitVouched(const HttpRequest& r, std::string_view secret,
                       const std::vector<RouteRule>& routes,
                       const std::vector<std::string>& vouched, const char* service, int64_t now) {
  auto caller = CheckVouch(secret, r, now);
  if (!caller.ok()) {
    Admission a;
    a.refused = Unauthenticated(service, caller.status().message().c_str());
    return a;
  }
  Admission a = AdmitAs(r, *caller, routes, service);
  if (a.refused) return a;
  if (std::find(vouched.begin(), vouched.end(), a.route->pattern) == vouched.end()) {
    Requests(service, "vouch_refused").Inc();
    LOG(WARNING) << "service=" << service
                 << " handler=api event=api_refused status=403 caller=" << a.caller.name
                 << " route=\"" << r.method << " " << a.route->pattern << "\" reason=not_forwarded";
    a.refused = JsonError(403, "forbidden",
                          r.method + " " + a.route->pattern +
                              " is not forwarded here, so a vouch is not good for it; call it with "
                              "a token");
  }
  return a;
}

bool PathMatches(std::string_view pattern, std::string_view path) {
  while (!pattern.empty() || !path.empty()) {
    if (pattern.empty() || path.empty()) return false;
    const size_t pe = pattern.find('/', 1), se = path.find('/', 1);
    std::string_view p = pattern.substr(0, pe), s = path.substr(0, se);
    if (p.size() > 2 && p[1] == '{') {
      if (s.size() < 2) return false;  // "/" and an empty segment match no placeholder
    } else if (p != s) {
      return false;
    }
    pattern = pe == std::string_view::npos ? std::string_view() : pattern.substr(pe);
    path = se == std::string_view::npos ? std::string_view() : path.substr(se);
  }
  return true;
}

Admission Admit(const HttpRequest& r, const TokenSet& tokens, const std::vector<RouteRule>& routes,
                const char* service, const std::string& how_to_open) {
  Admission a;
  if (tokens.empty()) {
    Requests(service, "closed").Inc();
    a.refused = JsonError(403, "closed", "closed: " + how_to_open);
    return a;
  }
  const std::string header = r.Header("authorization");
  if (header.empty()) {
    a.refused = Unauthenticated(service, "no Authorization header");
    return a;
  }
  auto token = BearerToken(header);
  if (!token) {
    a.refused = Unauthenticated(service, "not Bearer <token>");
    return a;
  }
  auto caller = tokens.Verify(*token);
  if (!caller) {
    a.refused = Unauthenticated(service, "unknown token");
    return a;
  }
  return AdmitAs(r, *caller, routes, service);
}

HttpResponse RefuseUnauthenticated(const char* service, const char* why) {
  return Unauthenticated(service, why);
}

Admission AdmitAs(const HttpRequest& r, const Caller& caller, const std::vector<RouteRule>& routes,
                  const char* service) {
  Admission a;
  a.caller = caller;
  std::string methods;
  for (const auto& rule : routes) {
    if (!PathMatches(rule.pattern, r.path)) continue;
    if (r.method == rule.method) {
      a.route = &rule;
      break;
    }
    if (methods.find(rule.method) == std::string::npos)
      methods += (methods.empty() ? "" : ", ") + std::string(rule.method);
  }
  if (!a.route) {
    Requests(service, methods.empty() ? "not_found" : "method_not_allowed").Inc();
    a.refused = methods.empty()
                    ? JsonError(404, "not_found", "no such endpoint: " + r.method + " " + r.path)
                    : JsonError(405, "method_not_allowed", r.path + " takes " + methods);
    if (!methods.empty()) a.refused->headers["Allow"] = methods;
    return a;
  }
  const std::string route = std::string(a.route->method) + " " + a.route->pattern;
  auto forbidden = [&](const char* outcome, const std::string& why) {
    Requests(service, outcome).Inc();
    LOG(WARNING) << "service=" << service
                 << " handler=api event=api_refused status=403 caller=" << a.caller.name
                 << " role=" << RoleName(a.caller.role) << " tenant=" << a.caller.tenant
                 << " route=\"" << route << "\" reason=" << outcome;
    a.refused = JsonError(403, "forbidden", why);
    return a;
  };
  if (!RoleAllows(a.caller.role, a.route->role)) {
    const std::string need = a.route->role == Role::kAdmin
                                 ? "admin"
                                 : std::string(RoleName(a.route->role)) + " or admin";
    return forbidden("forbidden", route + " needs the role " + need + "; the token '" +
                                      a.caller.name + "' has " + RoleName(a.caller.role));
  }
  if (a.route->scope == Scope::kGlobal && !a.caller.all_tenants()) {
    return forbidden("tenant_refused",
                     route +
                         " acts on every tenant, so it needs a token with tenant '*'; the token '" +
                         a.caller.name + "' is for tenant " + a.caller.tenant);
  }
  Requests(service, "admitted").Inc();
  LOG(INFO) << "service=" << service << " handler=api event=api_call caller=" << a.caller.name
            << " role=" << RoleName(a.caller.role) << " tenant=" << a.caller.tenant << " route=\""
            << route << "\"";
  return a;
}

}  // namespace convoy
