#pragma once
// Whose a stored file is (issue 27: media is tenant-scoped). Files are content-addressed, so one
// file may be several rows' of media_objects; it is a tenant's when one of those rows came through
// a number of that tenant (media_objects.phone_number_id → numbers.tenant, migration 0034). A row
// stored before that column has no number: its file is no tenant's (a global token reads it).
#include <memory>
#include <mutex>
#include <string>

#include "convoy/pg.h"
#include "convoy/status.h"

namespace convoy::media {

class MediaOwners {
 public:
  explicit MediaOwners(std::string pg_dsn) : dsn_(std::move(pg_dsn)) {}
  // Whether some media_objects row naming `stored_name` came through a number of `tenant`;
  // an error when the database cannot say. One indexed query on one connection, opened on first use
  // (and reconnected by PgConnection after a loss), shared by the HTTP threads one at a time.
  Result<bool> OwnedBy(const std::string& stored_name, const std::string& tenant);
  // Whether the number is registered and `tenant`'s ("*": any registered number).
  Result<bool> NumberIsTenants(const std::string& phone_number_id, const std::string& tenant);
  // A file a person uploaded (intake.h), recorded as having come through the number; once per
  // (file, number): media_id is "upload:<sha256>:<number>".
  Status RecordUpload(const std::string& stored_name, const std::string& sha256_hex, size_t size,
                      const std::string& mime_type, const std::string& phone_number_id);

 private:
  Result<PgRows> Exec(const char* sql, const PgParams& params);
  const std::string dsn_;
  std::mutex mu_;
  std::unique_ptr<PgConnection> db_;  // guarded by mu_
};

}  // namespace convoy::media
