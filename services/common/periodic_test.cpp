// Periodic: the schedule shared by the gauges (disk, sends in doubt) and the retention passes.
#include "convoy/periodic.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

TEST(Periodic, RunsAtOnceOrOneIntervalAfterStartAndNeverAfterStop) {
  std::atomic<int> now_runs{0}, later_runs{0};
  Periodic now(1h, [&] { ++now_runs; });
  Periodic later(
      1h, [&] { ++later_runs; }, Periodic::First::kAfterInterval);
  now.Start();
  later.Start();
  EXPECT_TRUE(test::WaitUntil([&] { return now_runs.load() == 1; }, 10s));
  const auto stop_started = std::chrono::steady_clock::now();
  later.Stop();  // wakes the hour-long wait at once
  now.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - stop_started, 5s);
  EXPECT_EQ(later_runs.load(), 0) << "a retention pass waits one interval after start";
  EXPECT_EQ(now_runs.load(), 1);
}

TEST(Periodic, RepeatsEveryInterval) {
  std::atomic<int> runs{0};
  Periodic loop(10ms, [&] { ++runs; });
  loop.Start();
  EXPECT_TRUE(test::WaitUntil([&] { return runs.load() >= 3; }, 10s));
  loop.Stop();
}

}  // namespace
}  // namespace convoy
