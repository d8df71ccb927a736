#pragma once
// A thread that runs one piece of work every `interval` until stopped (the first time at once, or
// one interval after Start: kAfterInterval): gauges, retention passes. Stop() (or the destructor)
// wakes it at once and joins it; the work is never running after Stop() returns.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace convoy {

class Periodic {
 public:
  enum class First { kNow, kAfterInterval };
  Periodic(std::chrono::milliseconds interval, std::function<void()> work,
           First first = First::kNow);
  ~Periodic();
  Periodic(const Periodic&) = delete;
  Periodic& operator=(const Periodic&) = delete;
  void Start();
  void Stop();

 private:
  void Run();
  std::chrono::milliseconds interval_;
  std::function<void()> work_;
  First first_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, started_ = false;
  std::thread thread_;
};

}  // namespace convoy
