#include "intake.h"

#include <glog/logging.h>

#include <ctime>

#include "convoy/metrics.h"
#include "fetcher.h"

namespace convoy::media {

namespace {

Counter& Taken(const char* outcome) {
  return DefaultRegistry().GetCounter("convoy_media_intake_total",
                                      "POST /v1/media uploads by outcome.",
                                      std::string("outcome=\"") + outcome + "\"");
}

HttpResponse Refuse(const char* outcome, int status, const std::string& code,
                    const std::string& message) {
  Taken(outcome).Inc();
  return JsonError(status, code, message);
}

bool ValidNumberId(const std::string& id) {
  if (id.empty() || id.size() > 32) return false;
  for (char c : id) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

HttpResponse IntakeMedia(const HttpRequest& r, const IntakeSettings& s) {
  const auto named = s.tokens ? s.tokens->get() : nullptr;
  if ((!named || named->empty()) && s.forward_secret.empty()) {
    return Refuse("closed", 403, "uploads_closed",
                  "uploads need named API tokens (--tokens_file) or conversation's vouch "
                  "(--forward_secret_file)");
  }
  const std::string header = r.Header("authorization");  // BearerToken views into it
  const auto bearer = BearerToken(header);
  auto caller = bearer && named ? named->Verify(*bearer) : std::nullopt;
  if (header.empty() && !r.Header(kVouchHeader).empty()) {
    // A person conversation's proxy signed in, vouched for by conversation for this one upload.
    auto vouched = CheckVouch(s.forward_secret, r, static_cast<int64_t>(std::time(nullptr)));
    if (vouched.ok()) {
      caller = *vouched;
    } else {
      LOG_EVERY_N(WARNING, 100) << "service=media event=intake_refused reason=\""
                                << vouched.status().message() << "\" (logged every 100th)";
    }
  }
  if (!caller) {
    HttpResponse resp = Refuse("unauthorized", 401, "unauthorized",
                               "an API token is needed (Authorization: Bearer ...)");
    resp.headers["WWW-Authenticate"] = "Bearer";
    return resp;
  }
  if (caller->role < Role::kAgent) {
    return Refuse("forbidden", 403, "forbidden",
                  "a " + std::string(RoleName(caller->role)) + " token cannot upload");
  }
  auto number = r.query.find("phone_number_id");
  if (number == r.query.end() || !ValidNumberId(number->second)) {
    return Refuse("bad_request", 400, "invalid_argument",
                  "phone_number_id (the number the photo is sent from) is 1 to 32 digits");
  }
  // Meta's image message takes JPEG and PNG; the body's first bytes must be what it says it is.
  std::string mime = r.Header("content-type");
  mime = mime.substr(0, mime.find(';'));
  while (!mime.empty() && mime.back() == ' ') mime.pop_back();
  auto type = AllowedType(mime);
  if (!type || type->kind != Kind::kImage || type->mime_type == "image/webp") {
    return Refuse("bad_type", 415, "unsupported_media_type",
                  "a photo is sent as image/jpeg or image/png");
  }
  if (r.body.empty())
    return Refuse("bad_request", 400, "invalid_argument",
                  "the request body is the photo; it is empty");
  if (r.body.size() > s.limits.image) {
    return Refuse("too_large", 413, "too_large",
                  "a photo is at most " + std::to_string(s.limits.image) +
                      " bytes (Meta's limit for an image)");
  }
  const std::string_view head(r.body.data(), std::min<size_t>(r.body.size(), 64));
  if (!MagicMatches(*type, head)) {
    const std::string hostile = HostileContent(head);
    LOG(WARNING) << "service=media event=intake_refused reason=magic token=" << caller->name
                 << " declared=" << type->mime_type
                 << (hostile.empty() ? "" : " looks_like=\"" + hostile + "\"");
    return Refuse("bad_content", 415, "unsupported_media_type",
                  "the body is not a " + type->mime_type + " file" +
                      (hostile.empty() ? "" : " (it looks like " + hostile + ")"));
  }
  // Asked before anything is written: another tenant's number and an unknown one answer alike.
  auto mine = s.number_is_tenants ? s.number_is_tenants(number->second, caller->tenant)
                                  : Result<bool>(false);
  if (!mine.ok())
    return Refuse("unavailable", 503, "unavailable",
                  "media cannot check the number right now; try again");
  if (!*mine) return Refuse("not_found", 404, "not_found", "no such number");
  const std::string sha = Sha256Hex(r.body);
  const std::string name = sha + "." + type->extension;
  auto file = PendingFile::Create(s.media_dir);
  Status st = file.ok() ? file->Write(r.body.data(), r.body.size()) : file.status();
  if (st.ok())
    st = file->Commit(name);  // the same bytes again: the same name, replaced by themselves
  if (st.ok()) st = s.record(name, sha, r.body.size(), type->mime_type, number->second);
  if (!st.ok()) {
    LOG(ERROR) << "service=media event=intake_failed token=" << caller->name << " error=\""
               << st.message() << "\"";
    return Refuse("failed", 503, "unavailable",
                  "the photo could not be stored right now; try again");
  }
  Taken("ok").Inc();
  LOG(INFO) << "service=media event=intake_stored token=" << caller->name
            << " phone_number_id=" << number->second << " name=" << name
            << " size=" << r.body.size();
  return JsonResponse(201, "{\"media\":\"" + name + "\",\"mime_type\":\"" + type->mime_type +
                               "\",\"size\":" + std::to_string(r.body.size()) + "}");
}

}  // namespace convoy::media
