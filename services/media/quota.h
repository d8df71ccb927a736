#pragma once
// Media quotas against abuse by a WhatsApp user: photos and bytes per user (conversation key) per
// UTC day, bytes per business number (phone_number_id) per UTC day. The arithmetic is pure
// (OverQuota, Room); QuotaLedger keeps the counts in PostgreSQL (0015_media_quotas.sql) so every
// replica sees the same day, and charges each media id at most once: a redelivered fetch, or one
// that died between its charge and its stored row, is never counted twice.
#include <chrono>
#include <cstdint>
#include <string>

#include "convoy/pg.h"
#include "convoy/status.h"

namespace convoy::media {

struct QuotaLimits {
  int64_t photos_per_user_per_day = 300;
  int64_t bytes_per_user_per_day = int64_t{256} << 20;   // 256 MiB
  int64_t bytes_per_number_per_day = int64_t{20} << 30;  // 20 GiB
};

// What one day has taken so far, for a user or a number.
struct Usage {
  int64_t photos = 0;
  int64_t bytes = 0;
};

// The limit a photo would pass (the first that does, in this order), or kNone.
enum class QuotaKind { kNone, kUserPhotos, kUserBytes, kNumberBytes };
const char* QuotaKindName(QuotaKind kind);  // "none", "user_photos", "user_bytes", "number_bytes"

// Whether one more photo of `bytes` fits in the day of this user and this number.
QuotaKind OverQuota(const Usage& user, const Usage& number, int64_t bytes,
                    const QuotaLimits& limits);
// The largest photo that still fits (0: none; check OverQuota with 1 byte to learn which limit).
int64_t Room(const Usage& user, const Usage& number, const QuotaLimits& limits);

// "YYYY-MM-DD" in UTC: the quota day of a moment.
std::string UtcDay(std::chrono::system_clock::time_point t);

// Where a fetch stands before its download: already charged (an earlier delivery of the same
// media id was admitted: no check, no second charge), or the day's usage to check against.
struct Admission {
  bool charged = false;
  Usage user, number;
};

class QuotaLedger {
 public:
  QuotaLedger(PgConnection& db, QuotaLimits limits) : db_(db), limits_(limits) {}
  const QuotaLimits& limits() const { return limits_; }

  // `user` may be empty (a command without a conversation key): then only the number's limit holds.
  [[nodiscard]] Result<Admission> Admit(const std::string& media_id, const std::string& user,
                                        const std::string& number, const std::string& day);
  // Charges one photo of `bytes` in one transaction, the day's rows locked (user's, then number's)
  // so replicas charging together cannot both take the last room. kNone: charged now or before
  // (same media id); otherwise the limit it would pass, and nothing charged.
  [[nodiscard]] Result<QuotaKind> Charge(const std::string& media_id, const std::string& user,
                                         const std::string& number, const std::string& day,
                                         int64_t bytes);

 private:
  PgConnection& db_;
  QuotaLimits limits_;
};

}  // namespace convoy::media
