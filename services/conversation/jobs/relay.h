#pragma once
// Publishes committed outbox rows with pipelined confirms and marks them published. Replicas
// share the table safely: rows are claimed with FOR UPDATE SKIP LOCKED, so two relays never
// publish the same row at once; a crash between publish and mark republishes the row, which
// the consumers' dedupe keys absorb.
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "convoy/amqp.h"
#include "convoy/pg.h"
#include "jobs/sweeper.h"

namespace convoy::conversation {

struct RelaySettings {
  std::string pg_dsn;
  int batch_size = 500;
  std::chrono::milliseconds idle_poll{1000};  // also picks up rows another replica left behind
  std::chrono::milliseconds confirm_timeout{10000};
  SweepSettings sweep;  // the relay's thread also sweeps the command ledger
  // ... and, at the same interval, runs this (due times kept in PostgreSQL: assignments expiring).
  std::function<void(PgConnection&)> periodic;
};

class OutboxRelay {
 public:
  OutboxRelay(RelaySettings settings, Publisher& publisher);
  ~OutboxRelay();
  void Start();
  void Stop();
  void Notify();  // rows were committed
  uint64_t published() const { return published_.load(); }

 private:
  void Run();
  // Publishes one batch; returns how many rows it published (0: nothing to do).
  Result<size_t> RelayBatch(PgConnection& db);
  RelaySettings settings_;
  Publisher& publisher_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool pending_ = false;
  bool stop_ = false;
  bool started_ = false;
  std::atomic<uint64_t> published_{0};
};

}  // namespace convoy::conversation
