#pragma once
// media.fetch: metadata, download (refreshing an expired URL once), verification, a file stored
// under its content hash (never a partial one under that name, even through kill -9), a row in
// media_objects, and media.stored / media.failed. One download per media id at a time across
// threads and replicas (a PostgreSQL advisory lock); a stored media id is never downloaded again.
#include <chrono>
#include <functional>
#include <string>

#include "convoy/amqp.h"
#include "convoy/events.h"
#include "convoy/json.h"
#include "convoy/pg.h"
#include "verify.h"

namespace convoy::media {

struct FetchSettings {
  std::string graph_base_url;
  std::string graph_token;
  std::string media_dir;
  SizeLimits limits;
  std::chrono::milliseconds timeout{60000};
};

class Fetcher {
 public:
  Fetcher(PgConnection& db, const SchemaRegistry& schemas, FetchSettings settings, EventPublisher events);
  Disposition Handle(const Delivery& d);

  struct Stored {
    std::string name, sha256, mime_type;
    int64_t size = 0;
  };

 private:
  // Transient failures are kUnavailable/kTimeout; the rest are permanent and say why.
  Result<Stored> Fetch(const std::string& media_id, const std::string& phone_number_id, const std::string& expected_mime,
                       const std::string& expected_sha256);
  Status Emit(const std::string& schema, const std::string& fields, const Delivery& d);
  PgConnection& db_;
  const SchemaRegistry& schemas_;
  FetchSettings settings_;
  EventPublisher events_;
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
