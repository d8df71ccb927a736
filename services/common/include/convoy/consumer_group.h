#pragma once
// Several consumers of one or more queues, each on its own thread with its own broker
// connection and whatever per-thread resources (a database connection) its factory gives it.
#include <functional>
#include <memory>
#include <vector>

#include "convoy/amqp.h"

namespace convoy {

// Called once per consumer at Add(); returns the handler that owns that consumer's resources.
using HandlerFactory = std::function<Result<DeliveryHandler>()>;
using BatchHandlerFactory = std::function<Result<BatchHandler>()>;

class ConsumerGroup {
 public:
  explicit ConsumerGroup(Publisher& republisher) : republisher_(republisher) {}
  ~ConsumerGroup() { Stop(); }
  Status Add(const ConsumerOptions& options, int count, const HandlerFactory& factory);
  Status AddBatch(const ConsumerOptions& options, int count, const BatchHandlerFactory& factory);
  void Start();
  void Stop();
  bool connected() const;  // every consumer is consuming

 private:
  Publisher& republisher_;
  std::vector<std::unique_ptr<Consumer>> consumers_;
};

}  // namespace convoy
