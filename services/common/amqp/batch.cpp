// PublishBatch: waits for the outcomes of many publishes (convoy/amqp.h).
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "convoy/amqp.h"

namespace convoy {

struct PublishBatch::State {
  std::mutex mu;
  std::condition_variable cv;
  size_t added = 0, confirmed = 0;
  bool failed = false;
  PublishOutcome failure = PublishOutcome::kConfirmed;
};

PublishBatch::PublishBatch() : state_(std::make_shared<State>()) {}

PublishCallback PublishBatch::Add() {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    ++state_->added;
  }
  return [state = state_](PublishOutcome outcome) {
    std::lock_guard<std::mutex> lock(state->mu);
    if (outcome == PublishOutcome::kConfirmed) {
      ++state->confirmed;
    } else if (!state->failed) {
      state->failed = true;
      state->failure = outcome;
    }
    state->cv.notify_all();
  };
}

Status PublishBatch::Wait(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(state_->mu);
  bool settled = state_->cv.wait_until(
      lock, deadline, [&] { return state_->failed || state_->confirmed == state_->added; });
  if (state_->failed) return PublishOutcomeStatus(state_->failure);
  if (!settled) {
    return Status(Code::kTimeout, std::to_string(state_->confirmed) + " of " +
                                      std::to_string(state_->added) +
                                      " publishes confirmed in time");
  }
  return Status::Ok();
}

}  // namespace convoy
