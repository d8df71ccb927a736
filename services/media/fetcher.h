#pragma once
// media.fetch: metadata, download (refreshing an expired URL once), verification, a file stored
// under its content hash (never a partial one under that name, even through kill -9), a row in
// media_objects, and media.stored / media.failed. One download per media id at a time across
// threads and replicas (a PostgreSQL advisory lock); a stored media id is never downloaded again.
// Quotas (quota.h) are checked before the download (the day already full: no download; a declared
// size that does not fit: no download; the download stopped where the room ends) and charged
// before the file gets its name: over quota, nothing is stored and media.failed carries
// "code":"over_quota", which the conversation turns into a plain-language message.
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "convoy/amqp.h"
#include "convoy/events.h"
#include "convoy/graph_numbers.h"
#include "convoy/json.h"
#include "convoy/pg.h"
#include "quota.h"
#include "verify.h"

namespace convoy::media {

// media.failed's code for a fetch that failed for good, so that conversation can tell the person in
// plain words (the reason itself stays in the event, the audit and the log): "expired" (Meta no
// longer has it), "too_large", "not_a_photo" (a type not allowed, or not taken by the step it was
// sent to, or content that is not what it says; of any kind: the name is older than documents),
// "damaged" (anything else: a checksum that differs, incomplete metadata).
std::string FailureCode(const Status& failure);

struct FetchSettings {
  // The deployment's Graph base URL and token (what env:CONVOY_GRAPH_TOKEN means when graph_secrets
  // is empty). A number's media is fetched with the number's own token and version from the
  // registry (convoy/graph_numbers.h); a number not in the registry's with these.
  std::string graph_base_url;
  std::string graph_token;
  std::shared_ptr<SecretRefs> graph_secrets;  // shared by the threads
  std::chrono::seconds numbers_ttl{30};  // how long a number's token reference and version are kept
  // A fetch for a number whose token cannot be resolved waits (no download), and looks again this
  // often.
  std::chrono::milliseconds graph_token_recheck{30000};
  std::string media_dir;
  SizeLimits limits;
  std::chrono::milliseconds timeout{60000};
  QuotaLimits quota;
  // The quota day is the UTC day of this clock (injectable for tests).
  std::function<std::chrono::system_clock::time_point()> clock = [] {
    return std::chrono::system_clock::now();
  };
};

class PendingFile;

class Fetcher {
 public:
  Fetcher(PgConnection& db, const SchemaRegistry& schemas, FetchSettings settings,
          EventPublisher events);
  Disposition Handle(const Delivery& d);

  struct Stored {
    std::string name, sha256, mime_type;
    int64_t size = 0;
  };

 private:
  struct Downloaded;
  // The verified bytes in a file with no name yet. Transient failures are kUnavailable/kTimeout;
  // the rest are permanent and say why. A file larger than `room` (the quota's) is not downloaded,
  // or its download stopped: then *over_room is the size that did not fit.
  // What the command says the media is: the webhook's type and sha256 ("" unknown) and the kinds
  // the step it was sent to takes (empty: any allowed kind).
  struct Expected {
    std::string mime_type, sha256;
    std::vector<Kind> kinds;
  };
  Result<Downloaded> Fetch(const std::string& media_id, const std::string& phone_number_id,
                           const GraphTarget& graph, const Expected& expected, int64_t room,
                           int64_t* over_room);
  Status Emit(const std::string& schema, const std::string& fields, const Delivery& d);
  // Over quota: counted, logged with the usage, media.failed with code over_quota; acked.
  Disposition Refuse(QuotaKind kind, const Admission& used, const std::string& media_id,
                     const LogCtx& ctx, const Delivery& d);
  PgConnection& db_;
  const SchemaRegistry& schemas_;
  FetchSettings settings_;
  EventPublisher events_;
  QuotaLedger quota_;
  GraphNumbers graph_numbers_;
};

// A file being written into `dir` that has no name there until Commit(): an O_TMPFILE inode (a
// crash leaves nothing), or where the file system cannot, a ".tmp-*" file removed on failure
// (and swept at start by RemoveStaleTemporaries).
class PendingFile {
 public:
  static Result<PendingFile> Create(const std::string& dir);
  PendingFile(PendingFile&& other) noexcept;
  ~PendingFile();
  Status Write(const char* data, size_t size);
  // fsync, then give the file `name` in the folder (an existing file of that name wins: same
  // name, same content), then fsync the folder.
  Status Commit(const std::string& name);

 private:
  PendingFile() = default;
  int fd_ = -1;
  std::string dir_, temp_path_;  // temp_path_ empty for O_TMPFILE
  bool committed_ = false;
};

// Removes ".tmp-*" files older than max_age from dir (left by a process that died mid-download
// where O_TMPFILE is not supported); the number removed.
int RemoveStaleTemporaries(const std::string& dir, std::chrono::seconds max_age);

}  // namespace convoy::media
