#include "server.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <ctime>
#include <optional>

#include "convoy/crypto.h"
#include "convoy/metrics.h"
#include "verify.h"

namespace convoy::media {

namespace {

HttpResponse Text(int status, const std::string& text) {
  return {status, "text/plain; charset=utf-8", text + "\n", {}, ""};
}

Counter& Served(const char* outcome) {
  return DefaultRegistry().GetCounter("convoy_media_served_total",
                                      "GET /media/ requests by outcome.",
                                      std::string("outcome=\"") + outcome + "\"");
}

bool TokenMatches(const std::string& header, const std::string& token) {
  const std::string want = "Bearer " + token;
  return header.size() == want.size() &&
         CRYPTO_memcmp(header.data(), want.data(), want.size()) == 0;
}

std::string RealPath(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) ? std::string(buf) : "";
}

}  // namespace

HttpResponse ServeMedia(const HttpRequest& r, const ServeSettings& s) {
  const std::string prefix = "/media/";
  std::string name = r.path.size() > prefix.size() ? r.path.substr(prefix.size()) : "";
  std::optional<std::string> tenant;  // a tenant's token: that tenant's files alone
  auto sig = r.query.find("sig");
  if (sig != r.query.end()) {
    // A signed link: good for this one file until it expires, with or without a token.
    auto expires = r.query.find("expires");
    LinkCheck check =
        CheckMediaLink(s.link_secret, name, expires == r.query.end() ? "" : expires->second,
                       sig->second, static_cast<int64_t>(std::time(nullptr)));
    if (check == LinkCheck::kExpired) {
      Served("link_expired").Inc();
      return Text(403, "this link has expired");
    }
    if (check != LinkCheck::kValid) {
      Served("link_invalid").Inc();
      return Text(403, "this link is not valid (its signature does not match)");
    }
  } else if (!s.open_for_local) {
    const auto named = s.tokens ? s.tokens->get() : nullptr;
    if (s.token.empty() && (!named || named->empty())) {
      Served("closed").Inc();
      return Text(403,
                  "media serving is closed: set CONVOY_MEDIA_TOKEN or --tokens_file (or "
                  "--media_public for a "
                  "local run)");
    }
    const std::string header = r.Header("authorization");
    if (s.token.empty() || !TokenMatches(header, s.token)) {
      const auto bearer = named ? BearerToken(header) : std::nullopt;
      const auto caller = bearer ? named->Verify(*bearer) : std::nullopt;
      if (!caller) {
        Served("unauthorized").Inc();
        HttpResponse resp = Text(401, "a media token is needed (Authorization: Bearer ...)");
        resp.headers["WWW-Authenticate"] = "Bearer";
        return resp;
      }
      if (!caller->all_tenants()) tenant = caller->tenant;
    }
  }
  if (r.path.compare(0, prefix.size(), prefix) != 0 || !IsStoredName(name)) {
    Served("bad_name").Inc();
    return Text(404, "not found");
  }
  if (tenant) {
    // Asked before the file is looked at: another tenant's file and an absent one answer alike.
    auto owned = s.owned_by ? s.owned_by(name, *tenant) : Result<bool>(false);
    if (!owned.ok()) {
      Served("unavailable").Inc();
      return Text(503, "media cannot say whose this file is right now; try again");
    }
    if (!*owned) {
      Served("not_owned").Inc();
      return Text(404, "not found");
    }
  }
  const std::string base = RealPath(s.media_dir);
  const std::string path = s.media_dir + "/" + name;
  struct stat st;
  if (base.empty() || ::lstat(path.c_str(), &st) != 0) {
    Served("missing").Inc();
    return Text(404, "not found");
  }
  const std::string real = RealPath(path);
  if (S_ISLNK(st.st_mode) || real.empty() || real.compare(0, base.size() + 1, base + "/") != 0 ||
      real.find('/', base.size() + 1) != std::string::npos) {
    Served("outside").Inc();
    return Text(403, "forbidden");
  }
  if (!S_ISREG(st.st_mode)) {
    Served("missing").Inc();
    return Text(404, "not found");
  }
  Served("ok").Inc();
  HttpResponse resp;
  const MediaType type = *TypeForExtension(name.substr(65));
  resp.content_type = type.mime_type;
  // A document is saved, never shown in the browser's origin; its name is the stored one (the
  // sender's file name is theirs to choose, so it never reaches a header).
  if (type.kind == Kind::kDocument)
    resp.headers["Content-Disposition"] = "attachment; filename=\"" + name + "\"";
  resp.file_path = real;
  resp.headers["X-Content-Type-Options"] = "nosniff";
  resp.headers["Cache-Control"] = "private, max-age=86400, immutable";
  return resp;
}

}  // namespace convoy::media
