// Declarations of topology.h's specs on a connection, and the discovery of a partitioned work
// queue's partitions on the broker.
#include <amqp.h>

#include <string>
#include <vector>

#include "convoy/amqp.h"
#include "convoy/topology.h"
#include "internal.h"

namespace convoy::amqp_internal {

// The declarations of topology.h's specs (their replies are read by the caller).
void SendExchangeDeclare(amqp_connection_state_t st, const ExchangeSpec& ex) {
  Table args;
  for (const auto& [k, v] : ex.string_args) args.Add(k, v);
  amqp_exchange_declare(st, kChannel, amqp_cstring_bytes(ex.name.c_str()),
                        amqp_cstring_bytes(ex.type.c_str()), 0, 1, 0, 0, args.table());
}

void SendQueueDeclare(amqp_connection_state_t st, const QueueSpec& q) {
  Table args;
  for (const auto& [k, v] : q.string_args) args.Add(k, v);
  for (const auto& [k, v] : q.int_args) args.Add(k, v);
  for (const auto& [k, v] : q.bool_args) args.AddBool(k, v);
  amqp_queue_declare(st, kChannel, amqp_cstring_bytes(q.name.c_str()), 0, 1, 0, 0, args.table());
}

void SendBind(amqp_connection_state_t st, const BindingSpec& b, bool unbind) {
  amqp_bytes_t dest = amqp_cstring_bytes(b.queue.c_str()),
               source = amqp_cstring_bytes(b.exchange.c_str()),
               key = amqp_cstring_bytes(b.routing_key.c_str());
  if (b.to_exchange && unbind) {
    amqp_exchange_unbind(st, kChannel, dest, source, key, amqp_empty_table);
  } else if (b.to_exchange) {
    amqp_exchange_bind(st, kChannel, dest, source, key, amqp_empty_table);
  } else if (unbind) {
    amqp_queue_unbind(st, kChannel, dest, source, key, amqp_empty_table);
  } else {
    amqp_queue_bind(st, kChannel, dest, source, key, amqp_empty_table);
  }
}

namespace {

// A channel of its own for probing: the broker closes a channel on a passive declare of a queue
// that does not exist, and channel 1 carries the connection's real work.
constexpr amqp_channel_t kProbeChannel = 2;

}  // namespace

// How many partitions of a partitioned work queue exist on the broker: passive declares of
// "<queue>.0", "<queue>.1", ... until the first that does not exist (at most
// kMaxConversationPartitions are looked for).
Result<int> CountPartitionsOn(amqp_connection_state_t st, const std::string& work_queue) {
  amqp_channel_open(st, kProbeChannel);
  Status s = CheckReply(amqp_get_rpc_reply(st), "channel.open (partition discovery)");
  if (!s.ok()) return s;
  for (int i = 0; i < kMaxConversationPartitions; ++i) {
    const std::string name = PartitionName(work_queue, i);
    amqp_queue_declare(st, kProbeChannel, amqp_cstring_bytes(name.c_str()), /*passive=*/1, 0, 0, 0,
                       amqp_empty_table);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(st);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) continue;
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
      const bool missing =
          static_cast<amqp_channel_close_t*>(r.reply.decoded)->reply_code == AMQP_NOT_FOUND;
      amqp_channel_close_ok_t ok{};
      s = CheckRc(amqp_send_method(st, kProbeChannel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok),
                  "channel.close-ok");
      if (!s.ok()) return s;
      if (missing) return i;
    }
    return CheckReply(r, "queue.declare passive " + name);
  }
  s = CheckReply(amqp_channel_close(st, kProbeChannel, AMQP_REPLY_SUCCESS),
                 "channel.close (partition discovery)");
  if (!s.ok()) return s;
  return kMaxConversationPartitions;
}

Result<std::vector<std::string>> DiscoverQueuesOn(amqp_connection_state_t st,
                                                  const std::string& work_queue) {
  if (!FindPartitioned(work_queue)) return std::vector<std::string>{work_queue};
  auto n = CountPartitionsOn(st, work_queue);
  if (!n.ok()) return n.status();
  if (*n == 0) {
    return Status(Code::kNotFound,
                  PartitionName(work_queue, 0) +
                      " does not exist: declare the topology (`convoy-topology --upgrade`) first");
  }
  return PartitionNames(work_queue, *n);
}

}  // namespace convoy::amqp_internal
