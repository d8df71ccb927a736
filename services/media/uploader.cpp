#include "uploader.h"

#include <glog/logging.h>
#include <rapidjson/document.h>

#include <fstream>
#include <random>
#include <sstream>

#include "convoy/http.h"
#include "convoy/log.h"
#include "convoy/metrics.h"
#include "convoy/rapidjson_util.h"
#include "convoy/topology.h"
#include "verify.h"

namespace convoy::media {

namespace {

constexpr const char* kLookup =
    "SELECT status, coalesce(url, '') FROM media_uploads WHERE dedupe_key = $1";
// Claimed unless settled or an attempt younger than $6 s is in flight; no row: not claimed.
constexpr const char* kClaim =
    "INSERT INTO media_uploads AS u (dedupe_key, stored_name, destination, status, attempts, "
    "correlation_id, "
    "attempt_started_at) VALUES ($1, $2, $3, 'uploading', 1, $4, clock_timestamp()) "
    "ON CONFLICT (dedupe_key) DO UPDATE SET status = 'uploading', attempts = u.attempts + 1, "
    "attempt_started_at = clock_timestamp(), updated_at = now() "
    "WHERE u.status = 'uploading' AND (u.attempt_started_at IS NULL OR "
    "u.attempt_started_at < clock_timestamp() - make_interval(secs => $5::float8)) "
    "RETURNING attempts";
constexpr const char* kUploaded =
    "UPDATE media_uploads SET status = 'uploaded', url = $2, error_reason = NULL, updated_at = "
    "now() "
    "WHERE dedupe_key = $1";
constexpr const char* kRetrying =
    "UPDATE media_uploads SET attempt_started_at = NULL, error_reason = $2, updated_at = now() "
    "WHERE dedupe_key = $1";
constexpr const char* kFailed =
    "INSERT INTO media_uploads (dedupe_key, stored_name, destination, status, attempts, "
    "error_reason, correlation_id) "
    "VALUES ($1, $2, $3, 'failed', 0, $4, $5) ON CONFLICT (dedupe_key) DO UPDATE SET status = "
    "'failed', "
    "error_reason = EXCLUDED.error_reason, updated_at = now() WHERE media_uploads.status <> "
    "'uploaded'";

Counter& Outcome(const char* what) {
  return DefaultRegistry().GetCounter("convoy_media_uploads_total",
                                      "media.upload commands by outcome.",
                                      std::string("outcome=\"") + what + "\"");
}

}  // namespace

Result<std::map<std::string, std::string>> ParseDestinations(const std::string& spec) {
  std::map<std::string, std::string> out;
  std::stringstream ss(spec);
  for (std::string item; std::getline(ss, item, ',');) {
    if (item.empty()) continue;
    auto eq = item.find('=');
    std::string name = eq == std::string::npos ? "" : item.substr(0, eq),
                url = eq == std::string::npos ? "" : item.substr(eq + 1);
    bool name_ok =
        !name.empty() && name.size() <= 64 &&
        name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") == std::string::npos;
    bool url_ok = url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0;
    if (!name_ok || !url_ok) {
      return Status(Code::kInvalidArgument,
                    "upload destination '" + item +
                        "' is not name=http(s)://... (name: a-z 0-9 _ -, up to 64)");
    }
    out[name] = url;
  }
  return out;
}

std::string MultipartBody(const std::string& field, const std::string& filename,
                          const std::string& mime_type, const std::string& bytes,
                          std::string* content_type) {
  std::random_device rd;
  std::string boundary = "convoy-" + std::to_string(rd()) + std::to_string(rd());
  while (bytes.find(boundary) != std::string::npos) boundary += std::to_string(rd());
  *content_type = "multipart/form-data; boundary=" + boundary;
  std::string out = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + field +
                    "\"; filename=\"" + filename + "\"\r\nContent-Type: " + mime_type + "\r\n\r\n";
  out += bytes;
  out += "\r\n--" + boundary + "--\r\n";
  return out;
}

Uploader::Uploader(PgConnection& db, const SchemaRegistry& schemas, UploadSettings settings,
                   EventPublisher events)
    : db_(db), schemas_(schemas), settings_(std::move(settings)), events_(std::move(events)) {}

Status Uploader::Emit(const std::string& schema, const std::string& fields, const Delivery& d) {
  return events_ ? events_(EventFor(d, schema, fields)) : Status::Ok();
}

Disposition Uploader::Fail(const Delivery& d, const std::string& stored,
                           const std::string& destination, const std::string& reason,
                           bool dead_letter) {
  LogCtx ctx("media.upload", d.Header(headers::kCorrelationId), d.Header(headers::kConversationKey),
             d.Header(headers::kDedupeKey));
  Status s = db_.Exec(kFailed, {d.Header(headers::kDedupeKey), stored, destination, reason,
                                d.Header(headers::kCorrelationId)})
                 .status();
  if (!s.ok()) return DispositionFor(s);
  Outcome("failed").Inc();
  LOG(WARNING) << ctx << "event=upload_failed stored_name=" << stored << " reason=" << reason;
  Status e = Emit("media.upload_failed",
                  R"("stored_name":")" + JsonEscape(stored) + R"(","destination":")" +
                      JsonEscape(destination) + R"(","reason":")" + JsonEscape(reason) +
                      R"(","attempts":)" + std::to_string(d.attempt + 1),
                  d);
  if (!e.ok()) return Disposition::Retry("could not emit media.upload_failed: " + e.ToString());
  return dead_letter ? Disposition::DeadLetter(reason) : Disposition::Ack();
}

Disposition Uploader::Handle(const Delivery& d) {
  LogCtx ctx = CommandContext(d, "media.upload");
  if (auto invalid = RefuseInvalid(d, schemas_, ctx)) return *invalid;
  rapidjson::Document cmd;
  cmd.Parse(d.body.c_str(), d.body.size());
  const std::string dedupe = JsonStr(cmd, "dedupe_key"), stored = JsonStr(cmd, "stored_name"),
                    destination = JsonStr(cmd, "destination");
  std::string filename = JsonStr(cmd, "filename");
  if (filename.empty()) filename = stored;
  auto uploaded_event = [&](const std::string& url) {
    Status e = Emit("media.uploaded",
                    R"("stored_name":")" + JsonEscape(stored) + R"(","destination":")" +
                        JsonEscape(destination) + R"(","url":")" + JsonEscape(url) + "\"",
                    d);
    return e.ok() ? Disposition::Ack() : Disposition::Retry(e.ToString());
  };
  auto row = db_.Exec(kLookup, {dedupe});
  if (!row.ok()) return DispositionFor(row.status());
  if (!row->empty() && row->get(0, 0) == "uploaded") {
    Outcome("duplicate").Inc();
    return uploaded_event(row->get(0, 1));
  }
  if (!row->empty() && row->get(0, 0) == "failed") {
    Outcome("duplicate").Inc();
    return Disposition::Ack();
  }
  auto url = settings_.destinations.find(destination);
  if (url == settings_.destinations.end()) {
    return Fail(d, stored, destination,
                "no upload destination named '" + destination + "' is configured", false);
  }
  auto type = IsStoredName(stored) ? TypeForExtension(stored.substr(65)) : std::nullopt;
  std::ifstream in(settings_.media_dir + "/" + stored, std::ios::binary);
  if (!type || !in)
    return Fail(d, stored, destination, "no stored file named '" + stored + "'", false);
  std::stringstream bytes;
  bytes << in.rdbuf();

  double in_flight = std::chrono::duration<double>(settings_.timeout).count() + 5;
  auto claimed = db_.Exec(kClaim, {dedupe, stored, destination, d.Header(headers::kCorrelationId),
                                   std::to_string(in_flight)});
  if (!claimed.ok()) return DispositionFor(claimed.status());
  if (claimed->empty()) {
    Outcome("in_flight").Inc();
    return Disposition::Delay("another attempt at this upload is in flight", 1000);
  }
  HttpClientRequest req;
  req.method = "POST";
  req.url = url->second;
  req.public_only = !settings_.allow_private;
  req.body =
      MultipartBody(settings_.field, filename, type->mime_type, bytes.str(), &req.content_type);
  req.headers["Idempotency-Key"] = dedupe;
  req.headers["X-Correlation-Id"] = d.Header(headers::kCorrelationId);
  if (!settings_.token.empty()) req.headers["Authorization"] = "Bearer " + settings_.token;
  req.timeout = settings_.timeout;
  auto resp = HttpFetch(req);
  const bool last = d.attempt + 1 >= settings_.max_attempts;
  std::string error;
  bool transient = true;
  if (!resp.ok()) {
    error = resp.status().ToString();
    // An internal address (SSRF) or a malformed URL is not a passing fault; nothing was sent.
    if (resp.status().code() == Code::kRejected || resp.status().code() == Code::kInvalidArgument) {
      return Fail(d, stored, destination,
                  "the destination is not allowed: " + resp.status().message(), false);
    }
  } else if (resp->status / 100 == 2) {
    rapidjson::Document answer;
    answer.Parse(resp->body.c_str(), resp->body.size());
    std::string where = JsonStr(answer, "url");
    if (where.empty()) where = JsonStr(answer, "src");
    if (where.empty()) {
      return Fail(d, stored, destination,
                  "the destination answered " + std::to_string(resp->status) + " without a url",
                  false);
    }
    Status s = db_.Exec(kUploaded, {dedupe, where}).status();
    if (!s.ok()) return DispositionFor(s);
    Outcome("uploaded").Inc();
    LOG(INFO) << ctx << "event=uploaded stored_name=" << stored << " destination=" << destination
              << " url=" << where;
    return uploaded_event(where);
  } else {
    error = "HTTP " + std::to_string(resp->status) + ": " + resp->body.substr(0, 200);
    transient = resp->status >= 500 || resp->status == 408 || resp->status == 429;
  }
  if (!transient)
    return Fail(d, stored, destination, "the destination refused the upload: " + error, false);
  if (last) {
    return Fail(d, stored, destination,
                error + " (after " + std::to_string(d.attempt + 1) + " attempts)", true);
  }
  // Best effort: unmarked, the attempt still looks in flight and the retry waits until it is stale
  // (the claim's in-flight window) instead of going at once; nothing is uploaded twice either way.
  if (Status m = db_.Exec(kRetrying, {dedupe, error}).status(); !m.ok())
    LOG(WARNING) << ctx << "event=upload_retry_mark_failed error=" << m.ToString();
  Outcome("retry").Inc();
  LOG(WARNING) << ctx << "event=upload_retry attempt=" << d.attempt + 1 << " error=" << error;
  return Disposition::Retry(error);
}

}  // namespace convoy::media
