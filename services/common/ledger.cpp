#include "convoy/ledger.h"

#include <glog/logging.h>

#include <algorithm>

#include "convoy/log.h"
#include "convoy/topology.h"

namespace convoy {
namespace {

// A command the sweeper gave up on that its consumer then finished is settled as it ended.
constexpr const char* kSettle =
    "UPDATE outbox SET settled_at = now(), outcome = $2 WHERE dedupe_key = $1 AND "
    "(settled_at IS NULL OR outcome = 'abandoned')";
constexpr const char* kDue =
    "UPDATE outbox SET due_at = now() + make_interval(secs => $2::float8) WHERE dedupe_key = $1 "
    "AND settled_at IS NULL";

Status Record(PgConnection& db, const Delivery& d, const Disposition& disp, int max_attempts) {
  const std::string key = d.Header(headers::kDedupeKey);
  if (key.empty()) return Status::Ok();
  auto due_in = [&](int64_t ms) {
    return db.Exec(kDue, {key, std::to_string(static_cast<double>(ms) / 1000)}).status();
  };
  switch (disp.kind) {
    case Disposition::Kind::kAck:
      return db.Exec(kSettle, {key, std::string("done")}).status();
    case Disposition::Kind::kDeadLetter:
      return db.Exec(kSettle, {key, std::string("parked")}).status();
    case Disposition::Kind::kRetry:
      if (d.attempt + 1 >= max_attempts)
        return db.Exec(kSettle, {key, std::string("parked")}).status();
      return due_in(RetryDelayMs(d.attempt + 1, disp.delay_ms));
    case Disposition::Kind::kDelay:
      return due_in(std::max(disp.delay_ms, ShortestDelayMs(d.queue)));
  }
  return Status::Ok();
}

}  // namespace

DeliveryHandler Ledgered(DeliveryHandler inner, PgConnection& db, int max_attempts) {
  return [inner = std::move(inner), &db, max_attempts](const Delivery& d) {
    Disposition disp = inner(d);
    Status s = Record(db, d, disp, max_attempts);
    if (!s.ok()) {
      LOG_EVERY_N(WARNING, 20) << LogCtx(d.queue, d.Header(headers::kCorrelationId),
                                         d.Header(headers::kConversationKey),
                                         d.Header(headers::kDedupeKey))
                               << "event=ledger_record_failed error=" << s.ToString();
    }
    return disp;
  };
}

}  // namespace convoy
