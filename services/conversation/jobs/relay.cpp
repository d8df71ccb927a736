#include "jobs/relay.h"

#include <glog/logging.h>

#include "convoy/log.h"
#include "convoy/metrics.h"
#include "convoy/topology.h"

namespace convoy::conversation {

namespace {
constexpr const char* kClaim =
    "SELECT id, exchange, routing_key, dedupe_key, correlation_id, coalesce(conversation_key, ''), "
    "body "
    "FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1::int FOR UPDATE SKIP LOCKED";
constexpr const char* kMarkPublished =
    "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])";
}  // namespace

OutboxRelay::OutboxRelay(RelaySettings settings, Publisher& publisher)
    : settings_(std::move(settings)), publisher_(publisher) {}

OutboxRelay::~OutboxRelay() { Stop(); }

void OutboxRelay::Start() {
  started_ = true;
  thread_ = std::thread([this] { Run(); });
}

void OutboxRelay::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_ || stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void OutboxRelay::Notify() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_ = true;
  }
  cv_.notify_one();
}

Result<size_t> OutboxRelay::RelayBatch(PgConnection& db) {
  auto tx = PgTransaction::Begin(db);
  if (!tx.ok()) return tx.status();
  auto rows = db.Exec(kClaim, {std::to_string(settings_.batch_size)});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return size_t{0};
  PublishBatch batch;
  std::string ids = "{";
  for (size_t i = 0; i < rows->size(); ++i) {
    AmqpMessage m;
    m.exchange = rows->get(i, 1);
    m.routing_key = rows->get(i, 2);
    m.message_id = rows->get(i, 3);
    m.headers[headers::kDedupeKey] = rows->get(i, 3);
    m.headers[headers::kCorrelationId] = rows->get(i, 4);
    if (!rows->get(i, 5).empty()) m.headers[headers::kConversationKey] = rows->get(i, 5);
    m.body = rows->get(i, 6);
    LOG(INFO) << LogCtx("relay", rows->get(i, 4), rows->get(i, 5), rows->get(i, 3))
              << "event=outbox_publish routing_key=" << m.routing_key;
    publisher_.Publish(std::move(m), batch.Add());
    ids += (i ? "," : "") + rows->get(i, 0);
  }
  ids += "}";
  // Not confirmed: the transaction rolls back, the rows stay unpublished and are claimed again.
  Status s = batch.Wait(std::chrono::steady_clock::now() + settings_.confirm_timeout);
  if (!s.ok()) return s;
  s = db.Exec(kMarkPublished, {ids}).status();
  if (s.ok()) s = tx->Commit();
  if (!s.ok()) return s;
  published_.fetch_add(rows->size());
  DefaultRegistry()
      .GetCounter("convoy_outbox_published_total", "Outbox rows published and marked.")
      .Inc(rows->size());
  return rows->size();
}

void OutboxRelay::Run() {
  std::unique_ptr<PgConnection> db;
  auto next_sweep = std::chrono::steady_clock::now() + settings_.sweep.interval;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) break;
      pending_ = false;
    }
    if (!db) {
      auto c = PgConnection::Connect(settings_.pg_dsn);
      if (c.ok()) db = std::move(*c);
    }
    if (db && std::chrono::steady_clock::now() >= next_sweep) {
      next_sweep = std::chrono::steady_clock::now() + settings_.sweep.interval;
      if (settings_.periodic) settings_.periodic(*db);
      auto swept = SweepOnce(*db, settings_.sweep);
      if (!swept.ok()) {
        LOG_EVERY_N(WARNING, 10) << LogCtx("sweeper")
                                 << "event=sweep_failed error=" << swept.status().ToString();
      }
    }
    Result<size_t> n =
        db ? RelayBatch(*db) : Result<size_t>(Status(Code::kUnavailable, "no database"));
    if (!n.ok()) {
      LOG_EVERY_N(WARNING, 10) << LogCtx("relay")
                               << "event=relay_failed error=" << n.status().ToString();
    }
    if (n.ok() && *n > 0) continue;  // more may be waiting
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, n.ok() ? settings_.idle_poll : std::chrono::milliseconds(500),
                 [&] { return stop_ || pending_; });
  }
}

}  // namespace convoy::conversation
