#include "fetcher.h"

#include <dirent.h>
#include <fcntl.h>
#include <glog/logging.h>
#include <openssl/evp.h>
#include <rapidjson/document.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>

#include "convoy/events.h"
#include "convoy/http.h"
#include "convoy/log.h"
#include "convoy/metrics.h"
#include "convoy/rapidjson_util.h"
#include "convoy/topology.h"

namespace convoy::media {

namespace {

constexpr const char* kFindStored =
    "SELECT stored_name, sha256, size, mime_type FROM media_objects WHERE media_id = $1";
constexpr const char* kRecordStored =
    "INSERT INTO media_objects (media_id, stored_name, sha256, size, mime_type, keep_days, "
    "phone_number_id) VALUES "
    "($1, $2, $3, $4::bigint, $5, NULLIF($6, '0')::int, $7) ON CONFLICT (media_id) DO NOTHING";
// One download per media id at a time, across threads and replicas; a session lock, released by
// the unlock or by the connection's end (a crash).
constexpr const char* kTryLock = "SELECT pg_try_advisory_lock(hashtextextended('media:' || $1, 0))";
constexpr const char* kUnlock = "SELECT pg_advisory_unlock(hashtextextended('media:' || $1, 0))";
constexpr int64_t kLockedRetryMs = 1000;

Counter& QuotaRefused(QuotaKind kind) {
  return DefaultRegistry().GetCounter(
      "convoy_media_quota_refused_total",
      "media.fetch commands refused over a quota, by the limit (user_photos, "
      "user_bytes, number_bytes).",
      std::string("kind=\"") + QuotaKindName(kind) + "\"");
}

Counter& Outcome(const char* what) {
  return DefaultRegistry().GetCounter("convoy_media_fetches_total",
                                      "media.fetch commands by outcome.",
                                      std::string("outcome=\"") + what + "\"");
}

Status Errno(const std::string& what) {
  return Status(Code::kUnavailable, what + ": " + std::strerror(errno));
}

// Incremental sha256 and the first bytes of a download.
class Digest {
 public:
  Digest() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Digest() { EVP_MD_CTX_free(ctx_); }
  void Update(const char* data, size_t n) {
    EVP_DigestUpdate(ctx_, data, n);
    if (head_.size() < 64) head_.append(data, std::min(n, 64 - head_.size()));
    size_ += n;
  }
  std::string Hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    return LowerHex(md, len);
  }
  const std::string& head() const { return head_; }
  size_t size() const { return size_; }

 private:
  EVP_MD_CTX* ctx_;
  std::string head_;
  size_t size_ = 0;
};

}  // namespace

// ---- PendingFile

Result<PendingFile> PendingFile::Create(const std::string& dir) {
  PendingFile f;
  f.dir_ = dir;
  f.fd_ = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0640);
  if (f.fd_ < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
    std::random_device rd;
    f.temp_path_ = dir + "/.tmp-" + std::to_string(rd()) + std::to_string(rd());
    f.fd_ = ::open(f.temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
  }
  if (f.fd_ < 0) return Errno("cannot create a file in " + dir);
  return f;
}

PendingFile::PendingFile(PendingFile&& o) noexcept
    : fd_(o.fd_),
      dir_(std::move(o.dir_)),
      temp_path_(std::move(o.temp_path_)),
      committed_(o.committed_) {
  o.fd_ = -1;
  o.temp_path_.clear();
}

PendingFile::~PendingFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!temp_path_.empty() && !committed_) ::unlink(temp_path_.c_str());
}

Status PendingFile::Write(const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd_, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Errno("write in " + dir_);
    data += n;
    size -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status PendingFile::Commit(const std::string& name) {
  if (::fsync(fd_) != 0) return Errno("fsync in " + dir_);
  const std::string final_path = dir_ + "/" + name;
  if (temp_path_.empty()) {
    std::string self = "/proc/self/fd/" + std::to_string(fd_);
    if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, final_path.c_str(), AT_SYMLINK_FOLLOW) != 0 &&
        errno != EEXIST) {
      return Errno("cannot store " + final_path);
    }
  } else if (::rename(temp_path_.c_str(), final_path.c_str()) != 0) {
    return Errno("cannot store " + final_path);
  }
  committed_ = true;
  int dir_fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return Status::Ok();
}

int RemoveStaleTemporaries(const std::string& dir, std::chrono::seconds max_age) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return 0;
  int removed = 0;
  const time_t cutoff = ::time(nullptr) - static_cast<time_t>(max_age.count());
  while (struct dirent* e = ::readdir(d)) {
    if (std::strncmp(e->d_name, ".tmp-", 5) != 0) continue;
    std::string path = dir + "/" + e->d_name;
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_mtime < cutoff &&
        ::unlink(path.c_str()) == 0) {
      ++removed;
    }
  }
  ::closedir(d);
  return removed;
}

// ---- Fetcher

struct Fetcher::Downloaded {
  Stored stored;
  PendingFile file;
};

Fetcher::Fetcher(PgConnection& db, const SchemaRegistry& schemas, FetchSettings settings,
                 EventPublisher events)
    : db_(db),
      schemas_(schemas),
      settings_(std::move(settings)),
      events_(std::move(events)),
      quota_(db, settings_.quota),
      graph_numbers_(db, {settings_.graph_base_url, settings_.graph_secrets, settings_.numbers_ttl,
                          settings_.graph_token}) {}

Status Fetcher::Emit(const std::string& schema, const std::string& fields, const Delivery& d) {
  return events_ ? events_(EventFor(d, schema, fields)) : Status::Ok();
}

Result<Fetcher::Downloaded> Fetcher::Fetch(const std::string& media_id,
                                           const std::string& phone_number_id,
                                           const GraphTarget& graph, const Expected& expected,
                                           int64_t room, int64_t* over_room) {
  for (int round = 0; round < 2; ++round) {
    // 1. Metadata: where the bytes are, and what Meta says they are.
    HttpClientRequest meta;
    meta.url = graph.base_url + "/" + media_id + "?phone_number_id=" + phone_number_id;
    meta.headers["Authorization"] = "Bearer " + graph.token;
    meta.timeout = settings_.timeout;
    auto m = HttpFetch(meta);
    if (!m.ok()) return m.status();
    if (m->status == 404 || m->status == 400) {
      return Status(Code::kNotFound, "media metadata: HTTP " + std::to_string(m->status) +
                                         " (unknown or expired media id)");
    }
    if (m->status / 100 != 2)
      return Status(Code::kUnavailable, "media metadata: HTTP " + std::to_string(m->status));
    rapidjson::Document doc;
    doc.Parse(m->body.c_str(), m->body.size());
    std::string url = JsonStr(doc, "url"), mime = JsonStr(doc, "mime_type"),
                sha = JsonStr(doc, "sha256");
    if (url.empty() || mime.empty() || sha.empty())
      return Status(Code::kInvalidArgument, "media metadata incomplete");
    auto type = AllowedType(mime);
    if (!type) return Status(Code::kInvalidArgument, "type not allowed: " + mime);
    if (!expected.mime_type.empty()) {
      auto said = AllowedType(expected.mime_type);
      if (!said || said->mime_type != type->mime_type) {
        return Status(Code::kInvalidArgument,
                      "the webhook said " + expected.mime_type + ", the metadata says " + mime);
      }
    }
    if (!expected.kinds.empty() && std::find(expected.kinds.begin(), expected.kinds.end(),
                                             type->kind) == expected.kinds.end()) {
      std::string takes;
      for (Kind k : expected.kinds) takes += std::string(takes.empty() ? "" : ", ") + KindName(k);
      return Status(Code::kInvalidArgument, "type not allowed here: " + type->mime_type + " is " +
                                                KindName(type->kind) + ", the step takes " + takes);
    }
    const size_t limit = settings_.limits.For(type->kind);
    const auto& declared = JsonMember(doc, "file_size");
    int64_t declared_size = declared.IsInt64()    ? declared.GetInt64()
                            : declared.IsString() ? std::atoll(declared.GetString())
                                                  : 0;
    if (declared_size > 0 && static_cast<size_t>(declared_size) > limit) {
      return Status(Code::kTooLarge,
                    std::string(KindName(type->kind)) + " of " + std::to_string(declared_size) +
                        " bytes (declared) is over the limit of " + std::to_string(limit));
    }
    // The quota's room, when smaller than the kind's limit, caps the download.
    const bool room_caps = room >= 0 && static_cast<uint64_t>(room) < limit;
    if (room_caps && declared_size > room) {
      *over_room = declared_size;
      return Status(Code::kTooLarge, std::to_string(declared_size) +
                                         " bytes (declared) over the quota's room of " +
                                         std::to_string(room));
    }
    // 2. The bytes, into a file with no name yet, hashed as they arrive.
    auto file = PendingFile::Create(settings_.media_dir);
    if (!file.ok()) return file.status();
    Digest digest;
    HttpClientRequest get;
    get.url = url;
    get.headers["Authorization"] = "Bearer " + graph.token;
    get.timeout = settings_.timeout;
    auto got = HttpDownload(get, room_caps ? static_cast<size_t>(room) : limit,
                            [&](const char* data, size_t n) {
                              digest.Update(data, n);
                              return file->Write(data, n);
                            });
    if (!got.ok()) {
      if (got.status().code() == Code::kTooLarge && room_caps) {
        *over_room = room + 1;
        return Status(Code::kTooLarge, "over the quota's room of " + std::to_string(room) +
                                           " bytes (download stopped)");
      }
      if (got.status().code() == Code::kTooLarge) {
        return Status(Code::kTooLarge, std::string(KindName(type->kind)) + " over the limit of " +
                                           std::to_string(limit) + " bytes (download stopped)");
      }
      return got.status();
    }
    int code = got->status;
    if ((code == 401 || code == 403 || code == 404) && round == 0)
      continue;  // URL expired: fresh metadata
    if (code / 100 != 2)
      return Status(Code::kUnavailable, "media download: HTTP " + std::to_string(code));
    // 3. Checks before the file gets a name.
    std::string hex = digest.Hex();
    Status v = VerifyMedia(mime, digest.size(), digest.head(), hex, sha, settings_.limits);
    if (v.ok() && !expected.sha256.empty()) {
      auto said = NormalizeSha256(expected.sha256);
      if (!said || *said != hex)
        v = Status(Code::kInvalidArgument, "sha256 differs from the webhook's: got " + hex);
    }
    if (!v.ok()) return v;
    return Downloaded{Stored{hex + "." + type->extension, hex, type->mime_type,
                             static_cast<int64_t>(digest.size())},
                      std::move(*file)};
  }
  return Status(Code::kUnavailable, "media download: the URL expired twice");
}

Disposition Fetcher::Handle(const Delivery& d) {
  LogCtx ctx = CommandContext(d, "media.fetch");
  if (auto invalid = RefuseInvalid(d, schemas_, ctx)) return *invalid;
  rapidjson::Document cmd;
  cmd.Parse(d.body.c_str(), d.body.size());
  std::string media_id = JsonStr(cmd, "media_id"), pnid = JsonStr(cmd, "phone_number_id");
  auto stored_event = [&](const Stored& s) {
    Status e = Emit("media.stored",
                    R"("media_id":")" + JsonEscape(media_id) + R"(","stored_name":")" + s.name +
                        R"(","sha256":")" + s.sha256 + R"(","size":)" + std::to_string(s.size) +
                        R"(,"mime_type":")" + JsonEscape(s.mime_type) + "\"",
                    d);
    return e.ok() ? Disposition::Ack() : Disposition::Retry(e.ToString());
  };
  auto find = [&]() -> Result<std::optional<Stored>> {
    auto found = db_.Exec(kFindStored, {media_id});
    if (!found.ok()) return found.status();
    if (found->empty()) return std::optional<Stored>();
    return std::optional<Stored>(
        Stored{found->get(0, 0), found->get(0, 1), found->get(0, 3), found->get_int(0, 2)});
  };
  auto found = find();
  if (!found.ok()) return DispositionFor(found.status());
  if (*found) {
    Outcome("already_stored").Inc();
    return stored_event(**found);
  }
  // The number's own Graph token and version (issue 27): one that cannot be resolved holds the
  // fetch back (no download, no attempt counted); it is never fetched with another number's token.
  auto graph = graph_numbers_.For(pnid);
  if (!graph.ok() && graph.status().code() == Code::kUnavailable)
    return DispositionFor(graph.status());
  if (!graph.ok()) {
    Outcome("graph_token_unresolved").Inc();
    LOG_EVERY_N(WARNING, 100) << ctx << "event=graph_token_unresolved media_id=" << media_id
                              << " phone_number_id=" << pnid << " error=\""
                              << graph.status().message() << "\" (logged every 100th)";
    return Disposition::Delay(graph.status().message() + " (business number " + pnid + ")",
                              settings_.graph_token_recheck.count());
  }
  // One download of a media id at a time: another holder → come back after the shortest delay.
  auto locked = db_.Exec(kTryLock, {media_id});
  if (!locked.ok()) return DispositionFor(locked.status());
  if (locked->get(0, 0) != "t") {
    Outcome("busy").Inc();
    return Disposition::Delay("another consumer is fetching media " + media_id, kLockedRetryMs);
  }
  // Best effort: a lock not given back goes with the session (a lost connection's at once), and
  // until then other consumers see the id busy and come back later.
  struct Unlock {
    PgConnection& db;
    const std::string& id;
    const LogCtx& ctx;
    ~Unlock() {
      Status s = db.Exec(kUnlock, {id}).status();
      if (!s.ok()) LOG(WARNING) << ctx << "event=media_unlock_failed error=" << s.ToString();
    }
  } unlock{db_, media_id, ctx};
  found = find();  // stored by the holder before us?
  if (!found.ok()) return DispositionFor(found.status());
  if (*found) {
    Outcome("already_stored").Inc();
    return stored_event(**found);
  }
  // The quota: a day already full is refused before any download; an admitted media id (an
  // earlier delivery was charged) is neither checked nor charged again.
  std::string user = JsonStr(cmd, "conversation_key");
  if (user.empty()) user = d.Header(headers::kConversationKey);
  const std::string day = UtcDay(settings_.clock());
  auto admission = quota_.Admit(media_id, user, pnid, day);
  if (!admission.ok()) return DispositionFor(admission.status());
  int64_t room = -1;  // no cap
  if (!admission->charged) {
    QuotaKind full = OverQuota(admission->user, admission->number, 1, quota_.limits());
    if (full != QuotaKind::kNone) return Refuse(full, *admission, media_id, ctx, d);
    room = Room(admission->user, admission->number, quota_.limits());
  }
  int64_t over_room = 0;
  Expected expected{JsonStr(cmd, "mime_type"), JsonStr(cmd, "sha256"), {}};
  const auto& kinds = JsonMember(cmd, "kinds");
  if (kinds.IsArray()) {
    for (const auto& k : kinds.GetArray()) {
      // The schema allows only the four names.
      if (auto kind = k.IsString() ? KindFromName(k.GetString()) : std::nullopt)
        expected.kinds.push_back(*kind);
    }
  }
  auto fetched = Fetch(media_id, pnid, *graph, expected, room, &over_room);
  if (!fetched.ok() && over_room > 0) {
    return Refuse(OverQuota(admission->user, admission->number, over_room, quota_.limits()),
                  *admission, media_id, ctx, d);
  }
  if (!fetched.ok()) {
    if (IsTransient(fetched.status().code())) {
      LOG(WARNING) << ctx << "event=fetch_retry media_id=" << media_id
                   << " error=" << fetched.status().ToString();
      return Disposition::Retry(fetched.status().ToString());
    }
    Outcome("failed").Inc();
    LOG(WARNING) << ctx << "event=fetch_failed media_id=" << media_id
                 << " error=" << fetched.status().ToString();
    Status e = Emit("media.failed",
                    R"("media_id":")" + JsonEscape(media_id) + R"(","reason":")" +
                        JsonEscape(fetched.status().ToString()) + R"(","code":")" +
                        FailureCode(fetched.status()) + "\"",
                    d);
    return e.ok() ? Disposition::Ack() : Disposition::Retry(e.ToString());
  }
  const Stored& stored = fetched->stored;
  // Charged before the file gets its name: over quota (another replica took the room since the
  // check), the unnamed file goes and nothing is stored.
  auto charged = quota_.Charge(media_id, user, pnid, day, stored.size);
  if (!charged.ok()) return DispositionFor(charged.status());
  if (*charged != QuotaKind::kNone) return Refuse(*charged, *admission, media_id, ctx, d);
  Status s = fetched->file.Commit(stored.name);
  if (!s.ok()) {
    LOG(WARNING) << ctx << "event=fetch_retry media_id=" << media_id << " error=" << s.ToString();
    return Disposition::Retry(s.ToString());
  }
  const auto& keep = JsonMember(cmd, "keep_days");
  s = db_.Exec(kRecordStored,
               {media_id, stored.name, stored.sha256, std::to_string(stored.size), stored.mime_type,
                std::to_string(keep.IsInt() ? keep.GetInt() : 0), pnid})
          .status();
  if (!s.ok()) return DispositionFor(s);
  Outcome("stored").Inc();
  LOG(INFO) << ctx << "event=stored media_id=" << media_id << " name=" << stored.name
            << " bytes=" << stored.size;
  return stored_event(stored);
}

std::string FailureCode(const Status& failure) {
  const std::string& m = failure.message();
  if (failure.code() == Code::kNotFound) return "expired";
  if (failure.code() == Code::kTooLarge) return "too_large";
  if (m.rfind("type not allowed", 0) == 0 || m.find("does not look like") != std::string::npos ||
      m.rfind("the webhook said", 0) == 0) {
    return "not_a_photo";
  }
  return "damaged";
}

Disposition Fetcher::Refuse(QuotaKind kind, const Admission& used, const std::string& media_id,
                            const LogCtx& ctx, const Delivery& d) {
  QuotaRefused(kind).Inc();
  Outcome("over_quota").Inc();
  const QuotaLimits& l = quota_.limits();
  const bool number = kind == QuotaKind::kNumberBytes;
  const Usage& u = number ? used.number : used.user;
  const int64_t limit = kind == QuotaKind::kUserPhotos ? l.photos_per_user_per_day
                        : number                       ? l.bytes_per_number_per_day
                                                       : l.bytes_per_user_per_day;
  const std::string reason = std::string("over quota: ") + QuotaKindName(kind) + " (today " +
                             std::to_string(u.photos) + " photos, " + std::to_string(u.bytes) +
                             " bytes; limit " + std::to_string(limit) + ")";
  LOG(WARNING) << ctx << "event=quota_refused media_id=" << media_id
               << " kind=" << QuotaKindName(kind) << " used_photos=" << u.photos
               << " used_bytes=" << u.bytes << " limit=" << limit;
  Status e = Emit("media.failed",
                  R"("media_id":")" + JsonEscape(media_id) + R"(","reason":")" +
                      JsonEscape(reason) + R"(","code":"over_quota")",
                  d);
  return e.ok() ? Disposition::Ack() : Disposition::Retry(e.ToString());
}

}  // namespace convoy::media
