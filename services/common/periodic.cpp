#include "convoy/periodic.h"

namespace convoy {

Periodic::Periodic(std::chrono::milliseconds interval, std::function<void()> work, First first)
    : interval_(interval), work_(std::move(work)), first_(first) {}

Periodic::~Periodic() { Stop(); }

void Periodic::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this] { Run(); });
}

void Periodic::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_ || stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Periodic::Run() {
  for (bool wait = first_ == First::kAfterInterval;; wait = true) {
    if (wait) {
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_for(lock, interval_, [&] { return stop_; }))
        return;  // the schedule, not a condition
    }
    work_();
  }
}

}  // namespace convoy
