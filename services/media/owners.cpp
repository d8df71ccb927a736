#include "owners.h"

namespace convoy::media {

namespace {

constexpr const char* kOwnedBy =
    "SELECT EXISTS (SELECT 1 FROM media_objects m JOIN numbers n ON n.phone_number_id = "
    "m.phone_number_id "
    "WHERE m.stored_name = $1 AND n.tenant = $2)";

constexpr const char* kNumberIsTenants =
    "SELECT EXISTS (SELECT 1 FROM numbers WHERE phone_number_id = $1 AND ($2 = '*' OR tenant = "
    "$2))";

constexpr const char* kRecordUpload =
    "INSERT INTO media_objects (media_id, stored_name, sha256, size, mime_type, phone_number_id) "
    "VALUES ('upload:' || $2 || ':' || $5, $1, $2, $3::bigint, $4, $5) ON CONFLICT (media_id) DO "
    "NOTHING";

}  // namespace

Result<PgRows> MediaOwners::Exec(const char* sql, const PgParams& params) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!db_) {
    auto db = PgConnection::Connect(dsn_);
    if (!db.ok()) return db.status();
    db_ = std::move(*db);
  }
  return db_->Exec(sql, params);  // a lost connection is tried again on the next call
}

Result<bool> MediaOwners::OwnedBy(const std::string& stored_name, const std::string& tenant) {
  auto r = Exec(kOwnedBy, {stored_name, tenant});
  if (!r.ok()) return r.status();
  return r->get(0, 0) == "t";
}

Result<bool> MediaOwners::NumberIsTenants(const std::string& phone_number_id,
                                          const std::string& tenant) {
  auto r = Exec(kNumberIsTenants, {phone_number_id, tenant});
  if (!r.ok()) return r.status();
  return r->get(0, 0) == "t";
}

Status MediaOwners::RecordUpload(const std::string& stored_name, const std::string& sha256_hex,
                                 size_t size, const std::string& mime_type,
                                 const std::string& phone_number_id) {
  return Exec(kRecordUpload,
              {stored_name, sha256_hex, std::to_string(size), mime_type, phone_number_id})
      .status();
}

}  // namespace convoy::media
