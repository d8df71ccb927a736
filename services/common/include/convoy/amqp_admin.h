#pragma once
// Broker administration over AMQP, for tools (`convoy-topology --upgrade`) and tests: one
// connection, one channel, every call synchronous. Implemented in amqp/admin.cpp (amqp/ is the only
// folder that includes rabbitmq-c). A call the broker refuses closes the channel; the next call
// reopens it.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "convoy/amqp.h"
#include "convoy/status.h"
#include "convoy/topology.h"

namespace convoy {

struct QueueState {
  bool exists = false;
  uint32_t messages = 0;  // ready messages
  uint32_t consumers = 0;
};

class AmqpAdmin {
 public:
  AmqpAdmin();
  ~AmqpAdmin();
  AmqpAdmin(const AmqpAdmin&) = delete;
  AmqpAdmin& operator=(const AmqpAdmin&) = delete;

  // Connects without declaring anything.
  Status Open(const AmqpOptions& options);
  Result<QueueState> Inspect(const std::string& queue);
  // Whether an exchange exists (a passive declare).
  Result<bool> ExchangeExists(const std::string& exchange);
  Status DeclareExchange(const ExchangeSpec& exchange);
  Status DeleteExchange(const std::string& exchange);
  // How many partitions of a partitioned work queue exist: "<queue>.0" .. up to the first missing.
  Result<int> CountPartitions(const std::string& work_queue);
  // kRejected with "406 PRECONDITION_FAILED" when the queue exists with other arguments.
  Status DeclareQueue(const QueueSpec& queue);
  Status Bind(const BindingSpec& binding);
  Status Unbind(const BindingSpec& binding);
  // kRejected when if_empty/if_unused do not hold.
  Status DeleteQueue(const std::string& queue, bool if_empty, bool if_unused);
  // Drops every ready message of a queue (tests: "an operator purged it"); how many.
  Result<uint32_t> Purge(const std::string& queue);
  // Moves every ready message of `from` into queue `to` (through the default exchange), in
  // order, with its body and headers: copies are published persistent with confirms, and each
  // original is acked only once its copy was confirmed, so a crash at any point duplicates at
  // most, never loses. The number moved.
  Result<uint64_t> MoveAll(const std::string& from, const std::string& to);
  // Moves every ready message of `from` in order to `exchange` with `routing_key` (the default
  // exchange and a queue's name: straight to that queue), with body and headers, as MoveAll does
  // (confirmed copies, originals acked after; a copy no queue takes fails the move). Reads through
  // a consumer, so `from` may be a partition (a single-active-consumer quorum queue refuses
  // basic.get) as long as nothing else consumes it. How many.
  Result<uint64_t> MoveThrough(const std::string& from, const std::string& exchange,
                               const std::string& routing_key);
  // The ready messages of `queue` (at most `max`, in queue order), each shown to `decide` while
  // held unacked: kKeep leaves it in the queue, kDrop removes it, kMove publishes *copy (which
  // decide fills: exchange, routing key, body, headers) persistent with confirms and then removes
  // it. Originals are settled only once every copy was confirmed; a failure returns them all to
  // the queue (a copy may have gone too: a move duplicates at most, never loses). How many it saw.
  // What this connection's user may do (tests of the parts' permissions): a consumer on
  // `queue` started and cancelled; one small message published with a confirm. kRejected
  // naming the broker's reason (403 ACCESS_REFUSED) when refused.
  Status TryConsume(const std::string& queue);
  Status TryPublish(const std::string& exchange, const std::string& routing_key);
  enum class SweepAction { kKeep, kDrop, kMove };
  using SweepDecision = std::function<SweepAction(const Delivery&, AmqpMessage* copy)>;
  Result<size_t> Sweep(const std::string& queue, size_t max, const SweepDecision& decide);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Brings a broker declared by an older convoy to the current topology without losing a message
// (README, "Upgrading the broker topology"). Run with the consumers stopped (conversation, media
// and outbound scaled to 0; ingress may keep publishing). Idempotent, and safe to run again after
// it was interrupted at any step:
//  1. declares every exchange and every queue whose arguments are current;
//  2. each work queue declared with other arguments (topology 1's): a holding queue
//     "<queue>.upgrade" takes its bindings, its messages and those of its legacy delay queues
//     move there (a waiting retry comes back early), the queue is deleted and declared anew with
//     its delay queues, takes its bindings back, and the messages move back;
//  3. each remaining legacy classic delay queue "<queue>.<tier>": its messages move to the
//     successor delay queue of the same tier, then it is deleted;
//  4. every binding of the topology.
// With settings.conversation_partitions other than the number of partitions of
// conversation.inbound on the broker, it re-partitions them first, each conversation's messages
// kept in order in its new partition (topology_upgrade.cpp, Repartition); after an interruption,
// run it again with the same number.
struct UpgradeStep {
  std::string queue, action;
  uint64_t moved = 0;
};
Result<std::vector<UpgradeStep>> UpgradeTopology(const AmqpOptions& options,
                                                 const TopologySettings& settings = {});

// True when a Status is the broker refusing a declaration with other arguments.
bool IsInequivalentArgs(const Status& status);
// True when that refusal is about x-quorum-initial-group-size (the only argument the broker reads
// only at creation); *current is then the value the queue has, or 0 when it has none. The broker
// names one argument per refusal: another may differ too.
bool IsInequivalentGroupSize(const Status& status, int64_t* current);

}  // namespace convoy
