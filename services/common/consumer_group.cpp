#include "convoy/consumer_group.h"

namespace convoy {

Status ConsumerGroup::Add(const ConsumerOptions& options, int count, const HandlerFactory& factory) {
  for (int i = 0; i < count; ++i) {
    auto handler = factory();
    if (!handler.ok()) return handler.status();
    ConsumerOptions o = options;
    o.amqp.name = options.amqp.name + "/" + options.queue + "#" + std::to_string(i);
    consumers_.push_back(std::make_unique<Consumer>(o, std::move(*handler), &republisher_));
  }
  return Status::Ok();
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
