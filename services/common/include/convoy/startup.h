#pragma once
// The named start-up steps shared by the services with a database: load the message schemas,
// connect, migrate. Each failure is a Status that names what failed.
#include <memory>
#include <string>

#include "convoy/json.h"
#include "convoy/pg.h"

namespace convoy {

struct DatabaseService {
  SchemaRegistry schemas;
  std::unique_ptr<PgConnection> db;  // for readiness checks; handlers open their own
};

Status PrepareDatabaseService(const std::string& schema_dir, const std::string& pg_dsn,
                              const std::string& migrations_dir, DatabaseService* out);

}  // namespace convoy
