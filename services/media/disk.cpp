#include "disk.h"

#include <glog/logging.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>

#include "convoy/log.h"
#include "convoy/metrics.h"

namespace convoy::media {

namespace {

Gauge& Used() {
  return DefaultRegistry().GetGauge(
      "convoy_media_disk_used_bytes",
      "Bytes used on the file system of --media_dir (as df counts them).");
}
Gauge& Capacity() {
  return DefaultRegistry().GetGauge(
      "convoy_media_disk_capacity_bytes",
      "Bytes of the file system of --media_dir usable by media: used + available.");
}

}  // namespace

Result<DiskUsage> MeasureDisk(const std::string& dir) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) {
    return Status(Code::kUnavailable, "statvfs " + dir + ": " + std::strerror(errno));
  }
  const int64_t block = static_cast<int64_t>(st.f_frsize);
  const int64_t used = static_cast<int64_t>(st.f_blocks - st.f_bfree) * block;
  return DiskUsage{used, used + static_cast<int64_t>(st.f_bavail) * block};
}

DiskMonitor::DiskMonitor(std::string dir, std::chrono::milliseconds interval)
    : dir_(std::move(dir)), loop_(interval, [this] { Measure(); }) {}

void DiskMonitor::Measure() {
  auto m = MeasureDisk(dir_);
  if (!m.ok()) {
    LOG_EVERY_N(WARNING, 20) << LogCtx("media")
                             << "event=disk_unmeasured error=" << m.status().ToString();
    return;
  }
  Used().Set(m->used_bytes);
  Capacity().Set(m->capacity_bytes);
}

}  // namespace convoy::media
