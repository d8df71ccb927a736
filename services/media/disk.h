#pragma once
// How full the media folder's file system is (statvfs), exported as gauges so an alert can fire
// before downloads start failing for want of space (deploy/prometheus: ConvoyMediaDiskFilling).
#include <chrono>
#include <cstdint>
#include <string>

#include "convoy/periodic.h"
#include "convoy/status.h"

namespace convoy::media {

struct DiskUsage {
  int64_t used_bytes = 0;
  int64_t capacity_bytes = 0;  // what unprivileged writers can use: used + available to them
};

// The file system holding `dir`: bytes used and capacity as df counts them (blocks reserved for
// root left out of both).
Result<DiskUsage> MeasureDisk(const std::string& dir);

// Measures `dir` at start and every `interval` into convoy_media_disk_used_bytes and
// convoy_media_disk_capacity_bytes (their ratio is what the alert watches).
class DiskMonitor {
 public:
  DiskMonitor(std::string dir, std::chrono::milliseconds interval);
  void Start() { loop_.Start(); }
  void Stop() { loop_.Stop(); }

 private:
  void Measure();
  std::string dir_;
  Periodic loop_;  // last: stopped first, while dir_ is still there
};

}  // namespace convoy::media
