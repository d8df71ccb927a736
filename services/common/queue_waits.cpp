// Queue waits: what consumers saw of each queue's wait, and its rows in PostgreSQL (queue_waits.h).
#include "convoy/queue_waits.h"

#include <glog/logging.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "convoy/amqp.h"
#include "convoy/metrics.h"
#include "convoy/periodic.h"
#include "convoy/pg.h"
#include "convoy/topology.h"

namespace convoy {

int64_t UnixMillisNow() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {
int64_t HeaderMs(const Delivery& d, const char* name) {
  auto it = d.headers.find(name);
  if (it == d.headers.end()) return 0;
  char* end = nullptr;
  const long long v = std::strtoll(it->second.c_str(), &end, 10);
  return end != it->second.c_str() && *end == '\0' && v > 0 ? v : 0;
}
}  // namespace

int64_t WaitingSinceMs(const Delivery& d) {
  return std::max(HeaderMs(d, headers::kPublishedAt), HeaderMs(d, headers::kRequeuedAt));
}

QueueWaits& QueueWaits::Global() {
  static QueueWaits* waits = new QueueWaits();
  return *waits;
}

namespace {
// Queue waits run from milliseconds (a steady flow) to hours (a stuck consumer).
std::vector<double> WaitBuckets() {
  return {0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200};
}
}  // namespace

void QueueWaits::Taken(const std::string& queue, int64_t waiting_since_ms, int64_t now_ms) {
  if (waiting_since_ms <= 0) return;
  waiting_since_ms = std::min(waiting_since_ms, now_ms);
  const int64_t wait = now_ms - waiting_since_ms;
  Histogram* h = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Entry& e = waits_[queue];
    if (e.histogram == nullptr) {
      // By work queue: a partitioned one's partitions share one series.
      e.histogram = &DefaultRegistry().GetHistogram(
          "convoy_queue_wait_seconds",
          "How long each message taken had waited in its queue (since published or requeued).",
          "queue=\"" + WorkQueueOf(queue) + "\"", WaitBuckets());
    }
    e.wait.waiting_since_ms = std::max(e.wait.waiting_since_ms, waiting_since_ms);
    e.wait.taken_ms = now_ms;
    e.wait.last_wait_ms = wait;
    ++e.wait.takes;
    h = e.histogram;
  }
  h->Observe(static_cast<double>(wait) / 1000.0);
}

std::map<std::string, QueueWait> QueueWaits::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, QueueWait> out;
  for (const auto& [queue, e] : waits_) out.emplace(queue, e.wait);
  return out;
}

std::string ConsumerProcessName(const std::string& service) {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return service + "@" + (host[0] ? host : "unknown") + "/" + std::to_string(getpid());
}

QueueWaitReporter::QueueWaitReporter(std::string pg_dsn, std::string consumer, bool cleanup,
                                     std::chrono::milliseconds interval)
    : pg_dsn_(std::move(pg_dsn)),
      consumer_(std::move(consumer)),
      cleanup_(cleanup),
      interval_(interval) {}

QueueWaitReporter::~QueueWaitReporter() { Stop(); }

void QueueWaitReporter::Start() {
  if (loop_) return;
  loop_ = std::make_unique<Periodic>(
      interval_,
      [this] {
        Status s = Flush();
        if (!s.ok()) {
          LOG_EVERY_N(WARNING, 12) << "event=queue_waits_write_failed error=" << s.ToString();
        }
      },
      Periodic::First::kAfterInterval);
  loop_->Start();
}

void QueueWaitReporter::Stop() {
  if (!loop_) return;
  loop_->Stop();
  loop_.reset();
  Status s = Flush();
  if (!s.ok()) LOG(WARNING) << "event=queue_waits_write_failed error=" << s.ToString();
}

Status QueueWaitReporter::Flush() {
  std::lock_guard<std::mutex> lock(mu_);
  auto snapshot = QueueWaits::Global().Snapshot();
  std::vector<std::pair<std::string, QueueWait>> changed;
  for (const auto& [queue, w] : snapshot) {
    auto it = written_.find(queue);
    if (it == written_.end() || it->second != w.takes) changed.emplace_back(queue, w);
  }
  const int64_t now = UnixMillisNow();
  const bool cleanup = cleanup_ && now - last_cleanup_ms_ > 3600 * 1000;
  if (changed.empty() && !cleanup) return Status::Ok();
  if (!db_) {
    auto db = PgConnection::Connect(pg_dsn_);
    if (!db.ok()) return db.status();
    db_ = std::move(*db);
  }
  Status s = Status::Ok();
  if (!changed.empty()) {
    auto tx = PgTransaction::Begin(*db_);
    s = tx.status();
    for (size_t i = 0; s.ok() && i < changed.size(); ++i) {
      const auto& [queue, w] = changed[i];
      // On the database's clock: its now() minus how long ago each time was on this one.
      s = db_->Exec(
                 "INSERT INTO queue_waits (queue, consumer, waiting_since, taken_at, "
                 "last_wait_ms) VALUES ($1, $2, now() - $3::bigint * interval '1 millisecond', "
                 "now() - $4::bigint * interval '1 millisecond', $5) ON CONFLICT (queue, "
                 "consumer) DO UPDATE SET waiting_since = EXCLUDED.waiting_since, taken_at = "
                 "EXCLUDED.taken_at, last_wait_ms = EXCLUDED.last_wait_ms",
                 {queue, consumer_, std::to_string(std::max<int64_t>(0, now - w.waiting_since_ms)),
                  std::to_string(std::max<int64_t>(0, now - w.taken_ms)),
                  std::to_string(w.last_wait_ms)})
              .status();
    }
    if (s.ok()) s = tx->Commit();
    if (tx.ok()) tx->Rollback();  // does nothing once committed; before the connection may go
    if (s.ok()) {
      for (const auto& [queue, w] : changed) written_[queue] = w.takes;
    }
  }
  if (s.ok() && cleanup) {
    s = db_->Exec("DELETE FROM queue_waits WHERE taken_at < now() - interval '7 days'").status();
    if (s.ok()) last_cleanup_ms_ = now;
  }
  if (!s.ok() && !db_->healthy()) db_.reset();
  return s;
}

Result<std::map<std::string, int64_t>> ReadQueueWaitAges(PgConnection& db) {
  auto rows = db.Exec(
      "SELECT queue, (extract(epoch FROM now() - max(waiting_since)) * 1000)::bigint FROM "
      "queue_waits GROUP BY queue");
  if (!rows.ok()) return rows.status();
  std::map<std::string, int64_t> out;
  for (size_t i = 0; i < rows->size(); ++i) out[rows->get(i, 0)] = rows->get_int(i, 1);
  return out;
}

std::optional<int64_t> OldestReadyAgeSeconds(
    const std::vector<std::pair<std::string, uint64_t>>& parts,
    const std::map<std::string, int64_t>& ages_ms) {
  int64_t oldest = 0;
  for (const auto& [queue, ready] : parts) {
    if (ready == 0) continue;
    auto it = ages_ms.find(queue);
    if (it == ages_ms.end()) return std::nullopt;
    // Rounded up: an upper bound stays one.
    oldest = std::max(oldest, (std::max<int64_t>(0, it->second) + 999) / 1000);
  }
  return oldest;
}

}  // namespace convoy
