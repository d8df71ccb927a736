#include "convoy/startup.h"

#include <glog/logging.h>

#include "convoy/amqp.h"
#include "convoy/config.h"
#include "convoy/consumer_group.h"
#include "convoy/http.h"

namespace convoy {

Status PrepareDatabaseService(const std::string& schema_dir, const std::string& pg_dsn,
                              const std::string& migrations_dir, bool migrate,
                              DatabaseService* out) {
  Status s = out->schemas.LoadDir(schema_dir);
  if (!s.ok()) return Status(s.code(), "loading schemas: " + s.message());
  auto db = PgConnection::Connect(pg_dsn);
  if (!db.ok()) return db.status();
  out->db = std::move(*db);
  s = migrate ? RunMigrations(*out->db, migrations_dir) : CheckMigrations(*out->db, migrations_dir);
  if (!s.ok())
    return Status(s.code(), (migrate ? "migrating: " : "checking the schema: ") + s.message());
  return Status::Ok();
}

bool DatabaseService::DatabaseReachable() {
  std::lock_guard<std::mutex> lock(mu_);
  auto now = std::chrono::steady_clock::now();
  if (now - checked_ < std::chrono::seconds(1)) return reachable_;
  reachable_ = db && db->Exec("SELECT 1").ok();
  checked_ = now;
  return reachable_;
}

int ServeUntilSignal(const char* service, HttpServer& server, Publisher& publisher,
                     ConsumerGroup& consumers, const std::function<void()>& start_more,
                     const std::function<void()>& stop_more,
                     const std::function<void()>& on_hangup) {
  publisher.Start();
  if (!publisher.WaitConnected(std::chrono::seconds(30))) {
    LOG(WARNING) << "service=" << service
                 << " event=broker_not_yet_connected (starting anyway; /readyz says so)";
  }
  if (start_more) start_more();
  consumers.Start();
  Status s = server.Start();
  if (!s.ok()) {
    LOG(ERROR) << "service=" << service << " event=listen_failed error=" << s.ToString();
    consumers.Stop();
    if (stop_more) stop_more();
    publisher.Stop();
    return 1;
  }
  LOG(INFO) << "service=" << service << " event=started port=" << server.port()
            << " metrics_port=" << server.metrics_port();
  WaitForShutdownSignal(on_hangup);
  server.Stop();
  consumers.Stop();
  if (stop_more) stop_more();
  publisher.Stop();
  LOG(INFO) << "service=" << service << " event=stopped";
  return 0;
}

}  // namespace convoy
