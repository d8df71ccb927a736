#include "quota.h"

#include <algorithm>
#include <ctime>
#include <vector>

namespace convoy::media {

namespace {

constexpr const char* kCharged = "SELECT 1 FROM media_quota_charges WHERE media_id = $1";
constexpr const char* kUsage =
    "SELECT bucket, photos, bytes FROM media_quota_usage WHERE bucket = ANY($1::text[])";
constexpr const char* kRecordCharge =
    "INSERT INTO media_quota_charges (media_id, day, bytes) VALUES ($1, $2::date, $3::bigint) "
    "ON CONFLICT (media_id) DO NOTHING";
// Rows created and then locked in bucket order: replicas charging the same rows wait in line.
constexpr const char* kEnsureRows =
    "INSERT INTO media_quota_usage (bucket, day) SELECT b, $2::date FROM unnest($1::text[]) AS b "
    "ORDER BY b "
    "ON CONFLICT (bucket) DO NOTHING";
constexpr const char* kLockUsage =
    "SELECT bucket, photos, bytes FROM media_quota_usage WHERE bucket = ANY($1::text[]) ORDER BY "
    "bucket FOR UPDATE";
constexpr const char* kAddUsage =
    "UPDATE media_quota_usage SET photos = photos + 1, bytes = bytes + $2::bigint WHERE bucket = "
    "ANY($1::text[])";

struct Buckets {
  std::string user, number;  // user empty: no conversation key
  std::string Array() const {
    std::vector<std::string> all{number};
    if (!user.empty()) all.push_back(user);
    std::sort(all.begin(), all.end());
    return PgTextArray(all);
  }
};

Buckets For(const std::string& user, const std::string& number, const std::string& day) {
  return {user.empty() ? "" : day + "|user|" + user, day + "|number|" + number};
}

// The usage rows read into the user's and the number's (a missing row: nothing used yet).
void Read(const PgRows& rows, const Buckets& b, Usage* user, Usage* number) {
  for (size_t i = 0; i < rows.size(); ++i) {
    Usage u{rows.get_int(i, 1), rows.get_int(i, 2)};
    if (rows.get(i, 0) == b.number) *number = u;
    if (!b.user.empty() && rows.get(i, 0) == b.user) *user = u;
  }
}

}  // namespace

const char* QuotaKindName(QuotaKind kind) {
  switch (kind) {
    case QuotaKind::kNone:
      return "none";
    case QuotaKind::kUserPhotos:
      return "user_photos";
    case QuotaKind::kUserBytes:
      return "user_bytes";
    case QuotaKind::kNumberBytes:
      return "number_bytes";
  }
  return "none";
}

QuotaKind OverQuota(const Usage& user, const Usage& number, int64_t bytes,
                    const QuotaLimits& limits) {
  // Compared as "what is left", never as a sum that could overflow.
  if (user.photos >= limits.photos_per_user_per_day) return QuotaKind::kUserPhotos;
  if (bytes > limits.bytes_per_user_per_day - user.bytes) return QuotaKind::kUserBytes;
  if (bytes > limits.bytes_per_number_per_day - number.bytes) return QuotaKind::kNumberBytes;
  return QuotaKind::kNone;
}

int64_t Room(const Usage& user, const Usage& number, const QuotaLimits& limits) {
  if (user.photos >= limits.photos_per_user_per_day) return 0;
  return std::max<int64_t>(0, std::min(limits.bytes_per_user_per_day - user.bytes,
                                       limits.bytes_per_number_per_day - number.bytes));
}

std::string UtcDay(std::chrono::system_clock::time_point t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[16];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d", &tm);
  return buf;
}

Result<Admission> QuotaLedger::Admit(const std::string& media_id, const std::string& user,
                                     const std::string& number, const std::string& day) {
  Admission a;
  auto charged = db_.Exec(kCharged, {media_id});
  if (!charged.ok()) return charged.status();
  a.charged = !charged->empty();
  if (a.charged) return a;
  const Buckets b = For(user, number, day);
  auto rows = db_.Exec(kUsage, {b.Array()});
  if (!rows.ok()) return rows.status();
  Read(*rows, b, &a.user, &a.number);
  return a;
}

Result<QuotaKind> QuotaLedger::Charge(const std::string& media_id, const std::string& user,
                                      const std::string& number, const std::string& day,
                                      int64_t bytes) {
  const Buckets b = For(user, number, day);
  const std::string buckets = b.Array();
  auto tx = PgTransaction::Begin(db_);
  if (!tx.ok()) return tx.status();
  auto recorded = db_.Exec(kRecordCharge, {media_id, day, std::to_string(bytes)});
  if (!recorded.ok()) return recorded.status();
  if (recorded->affected == 0) {  // charged by an earlier delivery of this media id
    Status s = tx->Commit();
    if (!s.ok()) return s;
    return QuotaKind::kNone;
  }
  Status s = db_.Exec(kEnsureRows, {buckets, day}).status();
  if (!s.ok()) return s;
  auto rows = db_.Exec(kLockUsage, {buckets});
  if (!rows.ok()) return rows.status();
  Usage used_user, used_number;
  Read(*rows, b, &used_user, &used_number);
  QuotaKind over = OverQuota(used_user, used_number, bytes, limits_);
  if (over != QuotaKind::kNone) {
    tx->Rollback();  // nothing charged, the charge row with it
    return over;
  }
  s = db_.Exec(kAddUsage, {buckets, std::to_string(bytes)}).status();
  if (!s.ok()) return s;
  s = tx->Commit();
  if (!s.ok()) return s;
  return QuotaKind::kNone;
}

}  // namespace convoy::media
