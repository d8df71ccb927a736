#include "pacer.h"

#include <algorithm>
#include <sstream>

namespace convoy::outbound {

namespace {

// A bucket starts full. Its tokens as of now are what it had at updated_at plus the refill since,
// capped at the burst, in the database's clock (one clock for every replica); one is taken.
constexpr const char* kReserve =
    "INSERT INTO rate_buckets AS b (bucket, tokens, updated_at) VALUES ($1, $2::float8 - 1, "
    "clock_timestamp()) "
    "ON CONFLICT (bucket) DO UPDATE SET tokens = LEAST($2::float8, b.tokens + $3::float8 * "
    "GREATEST(0, extract(epoch FROM clock_timestamp() - b.updated_at)::float8)) - 1, updated_at = "
    "clock_timestamp() "
    "RETURNING tokens";
constexpr const char* kPenalize =
    "INSERT INTO rate_buckets AS b (bucket, tokens) VALUES ($1, $2::float8) "
    "ON CONFLICT (bucket) DO UPDATE SET tokens = LEAST(b.tokens, 0) + $2::float8, updated_at = "
    "clock_timestamp()";

std::string Num(double v) {
  std::ostringstream o;
  o.precision(17);
  o << v;
  return o.str();
}

}  // namespace

Result<double> Pacer::Reserve(const Bucket& bucket) {
  auto rows = db_.Exec(kReserve, {bucket.key, Num(bucket.burst), Num(bucket.rate)});
  if (!rows.ok()) return rows.status();
  if (rows->empty())
    return Status(Code::kInternal, "rate bucket " + bucket.key + ": no row returned");
  double left = std::stod(rows->get(0, 0));
  return left >= 0 ? 0.0 : -left / bucket.rate;
}

Status Pacer::Penalize(const Bucket& bucket, double seconds) {
  return db_.Exec(kPenalize, {bucket.key, Num(-seconds * bucket.rate)}).status();
}

}  // namespace convoy::outbound
