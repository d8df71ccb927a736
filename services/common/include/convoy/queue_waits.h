#pragma once
// How long messages wait in each work queue, as their consumers see it. RabbitMQ 3.10's quorum
// queues report no head message's age, and looking at a head (basic.get, then a requeue) counts as
// a delivery towards the queue's delivery limit. So every consumer notes, for each message it
// takes, when that message began to wait where it was: the later of x-published-at (stamped by the
// publisher) and x-requeued-at (set when a retry or delay tier ends, or a replay puts it back).
//
// A queue is first in, first out: the message at its head now began to wait no earlier than the
// newest of those taken from it. So a queue with messages ready has its oldest one waiting at most
// now - that time: close while consumers keep taking (the next message arrived just after the one
// taken), and growing a second a second once they stop, which is when it matters. Each consumer
// process writes its times to PostgreSQL's queue_waits (QueueWaitReporter); the operations API
// reads them beside the broker's depths (OldestReadyAgeSeconds).
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "convoy/status.h"

namespace convoy {

struct Delivery;
class PgConnection;
class Periodic;
class Histogram;

int64_t UnixMillisNow();

// When the delivery began to wait in the queue it came from (ms since the epoch); 0 when it
// carries neither header (published by a version from before them).
int64_t WaitingSinceMs(const Delivery& d);

struct QueueWait {
  int64_t waiting_since_ms = 0;  // the newest among the messages taken
  int64_t taken_ms = 0;          // when the last one was taken
  int64_t last_wait_ms = 0;      // how long that one had waited
  uint64_t takes = 0;            // messages taken (with a time) so far
};

// This process's view, queue by queue (a partition under its own name). Thread-safe.
class QueueWaits {
 public:
  static QueueWaits& Global();
  // A message taken from `queue` at now_ms that began to wait at waiting_since_ms (0: unknown,
  // ignored; a time after now_ms, from a clock ahead of this one, counts as now_ms so that it
  // cannot hold the bound at 0). Also observed in convoy_queue_wait_seconds{queue=<work queue>}.
  void Taken(const std::string& queue, int64_t waiting_since_ms, int64_t now_ms);
  std::map<std::string, QueueWait> Snapshot() const;

 private:
  struct Entry {
    QueueWait wait;
    Histogram* histogram = nullptr;
  };
  mutable std::mutex mu_;
  std::map<std::string, Entry> waits_;
};

// "<service>@<host name>/<pid>": a consumer process's row in queue_waits.
std::string ConsumerProcessName(const std::string& service);

// Writes QueueWaits::Global() to queue_waits every interval (what changed since the last write,
// one transaction), as `consumer`. Times go in on the database's clock (the database's now() minus
// how long ago they were on this process's), so readers on other hosts compare them with one
// clock. With `cleanup` (one service: conversation), also deletes rows no process has written for
// 7 days (pods gone), in a transaction of its own.
class QueueWaitReporter {
 public:
  QueueWaitReporter(std::string pg_dsn, std::string consumer, bool cleanup = false,
                    std::chrono::milliseconds interval = std::chrono::seconds(5));
  ~QueueWaitReporter();
  void Start();
  void Stop();  // writes once more, then stops
  Status Flush();

 private:
  std::string pg_dsn_, consumer_;
  bool cleanup_;
  std::chrono::milliseconds interval_;
  std::mutex mu_;  // one Flush at a time
  std::unique_ptr<PgConnection> db_;
  std::map<std::string, uint64_t> written_;  // queue -> takes at the last write
  int64_t last_cleanup_ms_ = 0;
  std::unique_ptr<Periodic> loop_;
};

// How long ago (ms, on the database's clock) each queue's newest waiting-since time was, over
// every consumer process's row.
Result<std::map<std::string, int64_t>> ReadQueueWaitAges(PgConnection& db);

// A work queue's oldest ready message's age in whole seconds (rounded up), at most (see above): 0
// when no part has a message ready; nullopt when a part with messages ready has never had one taken
// (no time to bound it with). parts: the queue's parts (its partitions, or itself) and their ready
// counts; ages_ms: ReadQueueWaitAges.
std::optional<int64_t> OldestReadyAgeSeconds(
    const std::vector<std::pair<std::string, uint64_t>>& parts,
    const std::map<std::string, int64_t>& ages_ms);

}  // namespace convoy
