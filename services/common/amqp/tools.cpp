// One connection per call, for tools and tests: count the ready messages of a queue, take some off
// it, find a work queue's partitions, declare the topology (convoy/amqp.h).
#include <amqp.h>

#include <algorithm>
#include <string>
#include <vector>

#include "convoy/amqp.h"
#include "convoy/topology.h"
#include "internal.h"

namespace convoy {

using amqp_internal::BytesToString;
using amqp_internal::CheckRc;
using amqp_internal::CheckReply;
using amqp_internal::Conn;
using amqp_internal::DiscoverQueuesOn;
using amqp_internal::kChannel;
using amqp_internal::ToDelivery;

Result<uint32_t> QueueMessageCount(const AmqpOptions& options, const std::string& work_queue) {
  Conn c;
  AmqpOptions o = options;
  o.declare_topology = false;
  Status s = c.Open(o);
  if (!s.ok()) return s;
  uint32_t total = 0;
  auto queues = DiscoverQueuesOn(c.state(), work_queue);
  if (!queues.ok()) return queues.status();
  for (const auto& queue : *queues) {
    amqp_queue_declare_ok_t* ok =
        amqp_queue_declare(c.state(), kChannel, amqp_cstring_bytes(queue.c_str()),
                           /*passive=*/1, 0, 0, 0, amqp_empty_table);
    s = CheckReply(amqp_get_rpc_reply(c.state()), "queue.declare passive " + queue);
    if (!s.ok()) return s;
    total += ok->message_count;
  }
  return total;
}

namespace {

// Up to `max` of the messages ready in `queue` now, through a consumer (acked once all are read).
Result<std::vector<Delivery>> ConsumeReady(amqp_connection_state_t st, const std::string& queue,
                                           size_t max) {
  std::vector<Delivery> out;
  amqp_queue_declare_ok_t* ok = amqp_queue_declare(st, kChannel, amqp_cstring_bytes(queue.c_str()),
                                                   /*passive=*/1, 0, 0, 0, amqp_empty_table);
  Status s = CheckReply(amqp_get_rpc_reply(st), "queue.declare passive " + queue);
  if (!s.ok()) return s;
  const size_t n = std::min<size_t>(max, ok->message_count);
  if (n == 0) return out;
  amqp_basic_qos(st, kChannel, 0, static_cast<uint16_t>(std::min<size_t>(n, 65535)), 0);
  s = CheckReply(amqp_get_rpc_reply(st), "basic.qos");
  if (!s.ok()) return s;
  amqp_basic_consume_ok_t* consume = amqp_basic_consume(
      st, kChannel, amqp_cstring_bytes(queue.c_str()), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
  s = CheckReply(amqp_get_rpc_reply(st), "basic.consume " + queue);
  if (!s.ok()) return s;
  const std::string tag = BytesToString(consume->consumer_tag);
  uint64_t last_tag = 0;
  while (out.size() < n) {
    amqp_envelope_t env;
    timeval tv{5, 0};
    amqp_rpc_reply_t r = amqp_consume_message(st, &env, &tv, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
      s = CheckReply(r, "consume " + queue);
      if (!s.ok()) return s;
      break;
    }
    out.push_back(ToDelivery(queue, env));
    last_tag = env.delivery_tag;
    amqp_destroy_envelope(&env);
  }
  // Acked together at the end: the prefetch (n) keeps the broker from sending more meanwhile.
  if (last_tag != 0) {
    s = CheckRc(amqp_basic_ack(st, kChannel, last_tag, /*multiple=*/1), "ack " + queue);
    if (!s.ok()) return s;
  }
  amqp_basic_cancel(st, kChannel, amqp_cstring_bytes(tag.c_str()));
  s = CheckReply(amqp_get_rpc_reply(st), "basic.cancel " + queue);
  if (!s.ok()) return s;
  return out;
}

}  // namespace

Result<std::vector<Delivery>> TakeMessages(const AmqpOptions& options,
                                           const std::string& work_queue, size_t max) {
  Conn c;
  AmqpOptions o = options;
  o.declare_topology = false;
  Status s = c.Open(o);
  if (!s.ok()) return s;
  std::vector<Delivery> out;
  auto queues = DiscoverQueuesOn(c.state(), work_queue);
  if (!queues.ok()) return queues.status();
  for (const auto& queue : *queues) {
    if (WorkQueueOf(queue) != queue) {
      // A partition has a single active consumer, and such a quorum queue refuses basic.get.
      auto taken = ConsumeReady(c.state(), queue, max - out.size());
      if (!taken.ok()) return taken.status();
      for (auto& d : *taken) out.push_back(std::move(d));
      continue;
    }
    while (out.size() < max) {
      amqp_rpc_reply_t r =
          amqp_basic_get(c.state(), kChannel, amqp_cstring_bytes(queue.c_str()), /*no_ack=*/1);
      s = CheckReply(r, "basic.get " + queue);
      if (!s.ok()) return s;
      if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) break;
      amqp_envelope_t env{};
      amqp_message_t msg;
      s = CheckReply(amqp_read_message(c.state(), kChannel, &msg, 0), "read message " + queue);
      if (!s.ok()) return s;
      auto* get_ok = static_cast<amqp_basic_get_ok_t*>(r.reply.decoded);
      env.exchange = get_ok->exchange;
      env.routing_key = get_ok->routing_key;
      env.redelivered = get_ok->redelivered;
      env.message = msg;
      out.push_back(ToDelivery(queue, env));
      amqp_destroy_message(&msg);
    }
  }
  return out;
}

Result<std::vector<std::string>> DiscoverQueues(const AmqpOptions& options,
                                                const std::string& work_queue) {
  Conn c;
  AmqpOptions o = options;
  o.declare_topology = false;
  Status s = c.Open(o);
  if (!s.ok()) return s;
  return DiscoverQueuesOn(c.state(), work_queue);
}

Status DeclareConvoyTopology(const AmqpOptions& options) {
  Conn c;
  AmqpOptions o = options;
  o.declare_topology = true;
  return c.Open(o);
}

}  // namespace convoy
