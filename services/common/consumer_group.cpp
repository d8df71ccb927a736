#include "convoy/consumer_group.h"

#include <algorithm>

#include "convoy/topology.h"

namespace convoy {

namespace {
template <typename Factory>
Status AddConsumers(const ConsumerOptions& options, int count, const Factory& factory,
                    Publisher& republisher, std::vector<std::unique_ptr<Consumer>>& consumers) {
  // A partitioned work queue: its partitions dealt out over the consumers, each partition read by
  // one of them (and, having a single active consumer, by one replica at a time). Which partitions
  // exist is the broker's to say (convoy-topology declares them): each consumer finds
  // them when it connects and reads those i with i % count == its index; a consumer beyond the
  // partitions there are reads none.
  const bool partitioned = options.queues.empty() && FindPartitioned(options.queue);
  if (partitioned) count = std::min(count, kMaxConversationPartitions);
  for (int i = 0; i < count; ++i) {
    auto handler = factory();
    if (!handler.ok()) return handler.status();
    ConsumerOptions o = options;
    o.amqp.name = options.amqp.name + "/" + options.queue + "#" + std::to_string(i);
    if (partitioned) {
      o.share = i;
      o.shares = count;
    }
    consumers.push_back(std::make_unique<Consumer>(o, std::move(*handler), &republisher));
  }
  return Status::Ok();
}
}  // namespace

Status ConsumerGroup::Add(const ConsumerOptions& options, int count,
                          const HandlerFactory& factory) {
  return AddConsumers(options, count, factory, republisher_, consumers_);
}

Status ConsumerGroup::AddBatch(const ConsumerOptions& options, int count,
                               const BatchHandlerFactory& factory) {
  return AddConsumers(options, count, factory, republisher_, consumers_);
}

void ConsumerGroup::Start() {
  for (auto& c : consumers_) c->Start();
}

void ConsumerGroup::Stop() {
  for (auto& c : consumers_) c->Stop();
}

bool ConsumerGroup::connected() const {
  for (const auto& c : consumers_) {
    if (!c->connected()) return false;
  }
  return !consumers_.empty();
}

}  // namespace convoy
