#include "fetcher.h"

#include <fcntl.h>
#include <glog/logging.h>
#include <rapidjson/document.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <random>

#include "convoy/http.h"
#include "convoy/events.h"
#include "convoy/log.h"
#include "convoy/rapidjson_util.h"
#include "convoy/metrics.h"
#include "convoy/topology.h"
#include "verify.h"

namespace convoy::media {

namespace {

constexpr const char* kFindStored = "SELECT stored_name, sha256, size, mime_type FROM media_objects WHERE media_id = $1";
constexpr const char* kRecordStored =
    "INSERT INTO media_objects (media_id, stored_name, sha256, size, mime_type) VALUES ($1, $2, $3, $4::bigint, $5) "
    "ON CONFLICT (media_id) DO NOTHING";

Counter& Outcome(const char* what) {
  return DefaultRegistry().GetCounter("convoy_media_fetches_total", "media.fetch commands by outcome.",
                                      std::string("outcome=\"") + what + "\"");
}

}  // namespace

Fetcher::Fetcher(PgConnection& db, const SchemaRegistry& schemas, FetchSettings settings, EventPublisher events)
    : db_(db), schemas_(schemas), settings_(std::move(settings)), events_(std::move(events)) {}

Status Fetcher::Emit(const std::string& schema, const std::string& fields, const Delivery& d) {
  return events_ ? events_(EventFor(d, schema, fields)) : Status::Ok();
}

Result<std::string> Fetcher::StoreFile(const std::string& bytes, const std::string& sha256, const std::string& ext) {
  std::string name = sha256 + "." + ext;
  std::string final_path = settings_.media_dir + "/" + name;
  struct stat st;
  if (::stat(final_path.c_str(), &st) == 0 && static_cast<size_t>(st.st_size) == bytes.size()) return name;
  std::random_device rd;
  std::string tmp = settings_.media_dir + "/.tmp-" + std::to_string(rd()) + "-" + name;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
  if (fd < 0) return Status(Code::kUnavailable, "cannot create " + tmp);
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n <= 0) {
      ::close(fd);
      ::unlink(tmp.c_str());
      return Status(Code::kUnavailable, "write failed: " + tmp);
    }
    off += static_cast<size_t>(n);
  }
  bool synced = ::fsync(fd) == 0;
  ::close(fd);
  // rename() is atomic: the final name holds the whole file or nothing.
  if (!synced || ::rename(tmp.c_str(), final_path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Status(Code::kUnavailable, "cannot store " + final_path);
  }
  return name;
}

Result<Fetcher::Stored> Fetcher::Fetch(const std::string& media_id, const std::string& phone_number_id) {
  for (int round = 0; round < 2; ++round) {
    HttpClientRequest meta;
    meta.url = settings_.graph_base_url + "/" + media_id + "?phone_number_id=" + phone_number_id;
    meta.headers["Authorization"] = "Bearer " + settings_.graph_token;
    meta.timeout = settings_.timeout;
    auto m = HttpFetch(meta);
    if (!m.ok()) return m.status();
    if (m->status == 404 || m->status == 400) return Status(Code::kNotFound, "media metadata: HTTP " + std::to_string(m->status));
    if (m->status / 100 != 2) return Status(Code::kUnavailable, "media metadata: HTTP " + std::to_string(m->status));
    rapidjson::Document doc;
    doc.Parse(m->body.c_str(), m->body.size());
    std::string url = JsonStr(doc, "url"), mime = JsonStr(doc, "mime_type"), sha = JsonStr(doc, "sha256");
    if (url.empty() || mime.empty() || sha.empty()) return Status(Code::kInvalidArgument, "media metadata incomplete");
    HttpClientRequest get;
    get.url = url;
    get.headers["Authorization"] = "Bearer " + settings_.graph_token;
    get.timeout = settings_.timeout;
    auto bytes = HttpFetch(get);
    if (!bytes.ok()) return bytes.status();
    int code = bytes->status;
    if ((code == 401 || code == 403 || code == 404) && round == 0) continue;  // URL expired: fresh metadata
    if (code / 100 != 2) return Status(Code::kUnavailable, "media download: HTTP " + std::to_string(code));
    Status v = VerifyMedia(bytes->body, mime, sha, settings_.max_image_bytes);
    if (!v.ok()) return v;
    std::string hex = Sha256Hex(bytes->body);
    auto name = StoreFile(bytes->body, hex, *ExtensionFor(mime));
    if (!name.ok()) return name.status();
    return Stored{*name, hex, mime, static_cast<int64_t>(bytes->body.size())};
  }
  return Status(Code::kUnavailable, "media download: URL expired twice");
}

Disposition Fetcher::Handle(const Delivery& d) {
  LogCtx ctx("media.fetch", d.Header(headers::kCorrelationId), d.Header(headers::kConversationKey),
             d.Header(headers::kDedupeKey));
  Status valid = schemas_.Validate(d.body);
  if (!valid.ok()) {
    LOG(WARNING) << ctx << "event=invalid_command reason=" << valid.message();
    return Disposition::DeadLetter(valid.ToString());
  }
  rapidjson::Document cmd;
  cmd.Parse(d.body.c_str(), d.body.size());
  std::string media_id = JsonStr(cmd, "media_id"), pnid = JsonStr(cmd, "phone_number_id");
  auto found = db_.Exec(kFindStored, {media_id});
  if (!found.ok()) return DispositionFor(found.status());
  Stored stored;
  if (!found->empty()) {
    stored = {found->get(0, 0), found->get(0, 1), found->get(0, 3), found->get_int(0, 2)};
    Outcome("already_stored").Inc();
  } else {
    auto fetched = Fetch(media_id, pnid);
    if (!fetched.ok()) {
      if (IsTransient(fetched.status().code())) {
        LOG(WARNING) << ctx << "event=fetch_retry media_id=" << media_id << " error=" << fetched.status().ToString();
        return Disposition::Retry(fetched.status().ToString());
      }
      Outcome("failed").Inc();
      LOG(WARNING) << ctx << "event=fetch_failed media_id=" << media_id << " error=" << fetched.status().ToString();
      Status e = Emit("media.failed", R"("media_id":")" + JsonEscape(media_id) + R"(","reason":")" +
                                          JsonEscape(fetched.status().ToString()) + "\"", d);
      return e.ok() ? Disposition::Ack() : Disposition::Retry(e.ToString());
    }
    stored = *fetched;
    Status s = db_.Exec(kRecordStored, {media_id, stored.name, stored.sha256, std::to_string(stored.size), stored.mime_type})
                   .status();
    if (!s.ok()) return DispositionFor(s);
    Outcome("stored").Inc();
    LOG(INFO) << ctx << "event=stored media_id=" << media_id << " name=" << stored.name << " bytes=" << stored.size;
  }
  Status e = Emit("media.stored", R"("media_id":")" + JsonEscape(media_id) + R"(","stored_name":")" + stored.name +
                                      R"(","sha256":")" + stored.sha256 + R"(","size":)" + std::to_string(stored.size) +
                                      R"(,"mime_type":")" + JsonEscape(stored.mime_type) + "\"", d);
  return e.ok() ? Disposition::Ack() : Disposition::Retry(e.ToString());
}

}  // namespace convoy::media
