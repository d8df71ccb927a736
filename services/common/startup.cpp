#include "convoy/startup.h"

namespace convoy {

Status PrepareDatabaseService(const std::string& schema_dir, const std::string& pg_dsn,
                              const std::string& migrations_dir, DatabaseService* out) {
  Status s = out->schemas.LoadDir(schema_dir);
  if (!s.ok()) return Status(s.code(), "loading schemas: " + s.message());
  auto db = PgConnection::Connect(pg_dsn);
  if (!db.ok()) return db.status();
  out->db = std::move(*db);
  s = RunMigrations(*out->db, migrations_dir);
  if (!s.ok()) return Status(s.code(), "migrating: " + s.message());
  return Status::Ok();
}

}  // namespace convoy
