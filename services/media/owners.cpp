#include "owners.h"

namespace convoy::media {

namespace {

constexpr const char* kOwnedBy =
    "SELECT EXISTS (SELECT 1 FROM media_objects m JOIN numbers n ON n.phone_number_id = m.phone_number_id "
    "WHERE m.stored_name = $1 AND n.tenant = $2)";

}  // namespace

Result<bool> MediaOwners::OwnedBy(const std::string& stored_name, const std::string& tenant) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!db_) {
    auto db = PgConnection::Connect(dsn_);
    if (!db.ok()) return db.status();
    db_ = std::move(*db);
  }
  auto r = db_->Exec(kOwnedBy, {stored_name, tenant});  // a lost connection is tried again on the next call
  if (!r.ok()) return r.status();
  return r->get(0, 0) == "t";
}

}  // namespace convoy::media
