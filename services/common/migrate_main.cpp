// convoy-migrate: applies deploy/postgres's numbered migrations as the database owner, each once,
// under the advisory lock the services would take (so two runs at once apply each migration once).
// The services connect as roles of their own that may not create tables; they only check that
// no migration is pending (README: Database roles).
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <iostream>

#include "convoy/config.h"
#include "convoy/flags.h"
#include "convoy/pg.h"

int main(int argc, char** argv) {
  convoy::InitService("migrate",
                      "convoy-migrate [--pg_dsn=owner DSN, else env CONVOY_PG_DSN] "
                      "[--migrations_dir=deploy/postgres]:\n"
                      "  applies pending migrations as the database owner (README: Database roles)",
                      &argc, &argv);
  auto db = convoy::PgConnection::Connect(FLAGS_pg_dsn);
  convoy::Status s = db.ok() ? convoy::RunMigrations(**db, FLAGS_migrations_dir) : db.status();
  if (s.ok()) s = convoy::CheckMigrations(**db, FLAGS_migrations_dir);
  if (!s.ok()) {
    std::cerr << "convoy-migrate: " << s.ToString() << "\n";
    return 1;
  }
  std::cout << "schema is current (" << FLAGS_migrations_dir << ")\n";
  return 0;
}
