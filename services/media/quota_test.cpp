// Unit: the quota arithmetic (which limit a photo passes, the room left, the UTC day) and the
// disk measure. No broker, no database.
#include "quota.h"

#include <gtest/gtest.h>

#include <limits>

#include "convoy/metrics.h"
#include "disk.h"
#include "testsupport.h"

namespace convoy::media {
namespace {

constexpr QuotaLimits kLimits{3, 1000, 5000};

TEST(Quota, APhotoThatFitsEveryLimitPasses) {
  EXPECT_EQ(OverQuota({2, 400}, {10, 4000}, 600, kLimits), QuotaKind::kNone)
      << "exactly at both byte limits";
  EXPECT_EQ(OverQuota({}, {}, 1, kLimits), QuotaKind::kNone);
}

TEST(Quota, EachLimitIsNamedWhenPassed) {
  EXPECT_EQ(OverQuota({3, 0}, {}, 1, kLimits), QuotaKind::kUserPhotos);
  EXPECT_EQ(OverQuota({2, 400}, {}, 601, kLimits), QuotaKind::kUserBytes);
  EXPECT_EQ(OverQuota({0, 0}, {50, 4900}, 101, kLimits), QuotaKind::kNumberBytes);
  EXPECT_EQ(OverQuota({}, {}, 1001, kLimits), QuotaKind::kUserBytes)
      << "one photo larger than a whole day";
  EXPECT_EQ(OverQuota({3, 1000}, {0, 5000}, 1, kLimits), QuotaKind::kUserPhotos)
      << "photos are checked first";
  EXPECT_STREQ(QuotaKindName(QuotaKind::kNumberBytes), "number_bytes");
}

TEST(Quota, HugeCountsDoNotOverflow) {
  const int64_t max = std::numeric_limits<int64_t>::max();
  QuotaLimits l{max, max, max};
  EXPECT_EQ(OverQuota({0, max - 10}, {}, 10, l), QuotaKind::kNone);
  EXPECT_EQ(OverQuota({0, max - 10}, {}, 11, l), QuotaKind::kUserBytes);
  EXPECT_EQ(OverQuota({0, 0}, {0, max}, max, l), QuotaKind::kNumberBytes);
}

TEST(Quota, RoomIsTheSmallerOfWhatTheUserAndTheNumberHaveLeft) {
  EXPECT_EQ(Room({0, 0}, {0, 0}, kLimits), 1000);
  EXPECT_EQ(Room({1, 300}, {0, 4800}, kLimits), 200);
  EXPECT_EQ(Room({3, 0}, {0, 0}, kLimits), 0) << "no photo left";
  EXPECT_EQ(Room({0, 1200}, {0, 0}, kLimits), 0) << "never negative (a limit lowered since)";
}

TEST(Quota, TheDayIsTheUtcDate) {
  using std::chrono::system_clock;
  EXPECT_EQ(UtcDay(system_clock::from_time_t(1772366400)), "2026-03-01");  // 12:00Z
  EXPECT_EQ(UtcDay(system_clock::from_time_t(1772409599)), "2026-03-01");  // 23:59:59Z
  EXPECT_EQ(UtcDay(system_clock::from_time_t(1772409600)), "2026-03-02");
}

TEST(Disk, TheMediaFoldersFileSystemIsMeasured) {
  auto m = MeasureDisk(::testing::TempDir());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_GT(m->capacity_bytes, 0);
  EXPECT_GT(m->used_bytes, 0);
  EXPECT_LE(m->used_bytes, m->capacity_bytes);
  auto missing = MeasureDisk(::testing::TempDir() + "/" + test::UniqueName("absent"));
  EXPECT_EQ(missing.status().code(), Code::kUnavailable);
}

// Measured at start, then on the schedule: the gauges the disk alert divides.
TEST(Disk, TheMonitorExportsUsedBytesAndCapacity) {
  Gauge& used = DefaultRegistry().GetGauge("convoy_media_disk_used_bytes", "");
  Gauge& capacity = DefaultRegistry().GetGauge("convoy_media_disk_capacity_bytes", "");
  DiskMonitor monitor(::testing::TempDir(), std::chrono::hours(1));
  monitor.Start();
  ASSERT_TRUE(test::WaitUntil([&] { return capacity.Value() > 0; }, std::chrono::seconds(5)));
  monitor.Stop();
  EXPECT_GT(used.Value(), 0);
  EXPECT_LE(used.Value(), capacity.Value());
}

}  // namespace
}  // namespace convoy::media
