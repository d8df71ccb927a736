#pragma once
// A thread that runs one piece of work now and then every `interval` until stopped: for measures
// exported as gauges. Stop() (or the destructor) wakes it at once and joins it; the work is never
// running after Stop() returns.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace convoy {

class Periodic {
 public:
  Periodic(std::chrono::milliseconds interval, std::function<void()> work);
  ~Periodic();
  Periodic(const Periodic&) = delete;
  Periodic& operator=(const Periodic&) = delete;
  void Start();
  void Stop();

 private:
  void Run();
  std::chrono::milliseconds interval_;
  std::function<void()> work_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, started_ = false;
  std::thread thread_;
};

}  // namespace convoy
