#pragma once
// The named start-up steps shared by the services with a database: load the message schemas,
// connect, check (or apply) the migrations. Each failure is a Status that names what failed.
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "convoy/json.h"
#include "convoy/pg.h"

namespace convoy {

struct DatabaseService {
  SchemaRegistry schemas;
  std::unique_ptr<PgConnection> db;  // for readiness checks; handlers open their own
  // For /readyz: runs SELECT 1 (reconnecting if needed) at most once a second, from any thread.
  bool DatabaseReachable();

 private:
  std::mutex mu_;
  std::chrono::steady_clock::time_point checked_{};
  bool reachable_ = false;
};

// migrate: apply pending migrations (the owner's DSN: tests, one-process tools, --migrate);
// otherwise only check that none is pending (a service's role may not create tables).
Status PrepareDatabaseService(const std::string& schema_dir, const std::string& pg_dsn,
                              const std::string& migrations_dir, bool migrate,
                              DatabaseService* out);

class HttpServer;
class Publisher;
class ConsumerGroup;

// The run step: starts the publisher (and waits for its first connection, since consumers
// republish through it), then start_more (e.g. a relay), the consumers and the HTTP server;
// blocks until SIGTERM or SIGINT (calling on_hangup at each SIGHUP); stops in the reverse order.
// Returns the exit code.
int ServeUntilSignal(const char* service, HttpServer& server, Publisher& publisher,
                     ConsumerGroup& consumers, const std::function<void()>& start_more = {},
                     const std::function<void()>& stop_more = {},
                     const std::function<void()>& on_hangup = {});

}  // namespace convoy
