// convoy-topology --upgrade: see UpgradeTopology() in convoy/amqp_admin.h.
//
// Quorum queues can be deleted only unconditionally (not "if empty"), so a queue is deleted only
// once nothing can deliver to it any more: its bindings moved to a holding queue, and no delay
// queue left that dead-letters into it by name.
#include <glog/logging.h>

#include <algorithm>
#include <set>

#include "convoy/amqp_admin.h"
#include "convoy/topology.h"

namespace convoy {
namespace {

constexpr const char* kHoldingSuffix = ".upgrade";

// A quorum queue of the upgrade's own (a holding or staging queue), with the topology's group size.
QueueSpec QuorumSpec(const Topology& t, const std::string& name) {
  QueueSpec q{name, {{"x-queue-type", "quorum"}}, {}};
  if (t.quorum_group_size > 0) q.int_args[kQuorumInitialGroupSize] = t.quorum_group_size;
  return q;
}

// Declares a queue. One that exists with another x-quorum-initial-group-size is kept as it is:
// the broker reads that argument only when it creates a queue (its members are changed with
// `rabbitmq-queues grow` / `add_member`), so rebuilding every queue for it would move every
// message for nothing. It is declared again with the size it has, which checks every other
// argument: a queue that differs in another one is refused as before (kRejected, 406), and the
// caller rebuilds it (a work queue) or stops. With `steps`, a kept queue is reported there.
Status Declare(AmqpAdmin& admin, const QueueSpec& q, std::vector<UpgradeStep>* steps) {
  Status s = admin.DeclareQueue(q);
  int64_t current = 0;
  if (!IsInequivalentGroupSize(s, &current)) return s;
  QueueSpec as_is = q;
  if (current > 0) {
    as_is.int_args[kQuorumInitialGroupSize] = current;
  } else {
    as_is.int_args.erase(kQuorumInitialGroupSize);
  }
  s = admin.DeclareQueue(as_is);
  if (!s.ok()) return s;
  auto wanted = q.int_args.find(kQuorumInitialGroupSize);
  const std::string had = current > 0 ? std::to_string(current) : "the broker's default";
  const std::string want =
      wanted == q.int_args.end() ? "the broker's default" : std::to_string(wanted->second);
  LOG(WARNING) << "event=topology_queue_kept queue=" << q.name << " group_size=\"" << had
               << "\" wanted=\"" << want << "\"";
  if (steps) {
    steps->push_back({q.name,
                      "kept with the members it has (created with initial group size " + had +
                          ", not " + want + ": `rabbitmq-queues grow` adds members)",
                      0});
  }
  return Status::Ok();
}

Status Busy(const std::string& queue, uint32_t consumers) {
  return Status(Code::kRejected,
                queue + " has " + std::to_string(consumers) +
                    " consumer(s): stop conversation, media and outbound before upgrading");
}

// Moves `from` into `to` until `from` is empty, then deletes it: a classic queue only if empty
// (moving again when a message slipped in), a quorum queue unconditionally (the caller made sure
// nothing delivers to it any more).
Status Drain(AmqpAdmin& admin, const std::string& from, const std::string& to, bool classic,
             uint64_t* moved) {
  for (int round = 0; round < 20; ++round) {
    auto state = admin.Inspect(from);
    if (!state.ok()) return state.status();
    if (!state->exists) return Status::Ok();
    if (state->consumers > 0) return Busy(from, state->consumers);
    auto n = admin.MoveAll(from, to);
    if (!n.ok()) return n.status();
    *moved += *n;
    if (!classic) {
      state = admin.Inspect(from);
      if (!state.ok()) return state.status();
      if (state->messages > 0) continue;
    }
    Status s = admin.DeleteQueue(from, /*if_empty=*/classic, /*if_unused=*/false);
    if (s.ok() || s.code() != Code::kRejected) return s;
  }
  return Status(Code::kUnavailable, from + " keeps receiving messages: stop what publishes to it");
}

std::vector<const QueueSpec*> DelayQueuesOf(const Topology& t, const std::string& work_queue) {
  std::vector<const QueueSpec*> out;
  for (const auto& q : t.queues) {
    auto it = q.string_args.find("x-dead-letter-routing-key");
    if (q.name != work_queue && it != q.string_args.end() && it->second == work_queue &&
        q.string_args.count("x-message-ttl") + q.int_args.count("x-message-ttl") > 0) {
      out.push_back(&q);
    }
  }
  return out;
}

// The second half of rebuilding a work queue: it exists with the current arguments; its delay
// queues are declared, it takes its bindings back from the holding queue, and the holding queue's
// messages move into it.
Status Restore(AmqpAdmin& admin, const Topology& t, const std::string& queue, uint64_t* moved,
               std::vector<UpgradeStep>* steps) {
  for (const auto* d : DelayQueuesOf(t, queue)) {
    Status s = Declare(admin, *d, steps);
    if (!s.ok()) return s;
    for (const auto& b : BindingsOf(d->name)) {
      s = admin.Bind(b);
      if (!s.ok()) return s;
    }
  }
  const std::string holding = queue + kHoldingSuffix;
  for (auto b : BindingsOf(queue)) {
    Status s = admin.Bind(b);
    if (!s.ok()) return s;
    b.queue = holding;
    s = admin.Unbind(b);
    if (!s.ok()) return s;
  }
  return Drain(admin, holding, queue, /*classic=*/false, moved);
}

// Rebuilds a work queue declared with other arguments. Its legacy delay queues are emptied into
// the holding queue (what waited there comes back early: a retry sooner, a paced send waits for
// its slot again), so that nothing delivers to the queue by name when it is deleted.
Status Rebuild(AmqpAdmin& admin, const Topology& t, const QueueSpec& q, uint64_t* moved,
               std::vector<UpgradeStep>* steps) {
  auto state = admin.Inspect(q.name);
  if (!state.ok()) return state.status();
  if (state->consumers > 0) return Busy(q.name, state->consumers);
  const std::string holding = q.name + kHoldingSuffix;
  Status s = Declare(admin, QuorumSpec(t, holding), nullptr);
  if (!s.ok()) return s;
  // Publishes through the exchanges go to the holding queue from now on (to both for a moment:
  // a duplicate, never a loss).
  for (auto b : BindingsOf(q.name)) {
    b.queue = holding;
    s = admin.Bind(b);
    if (!s.ok()) return s;
  }
  for (const auto& b : BindingsOf(q.name)) {
    s = admin.Unbind(b);
    if (!s.ok()) return s;
  }
  for (const auto& legacy : LegacyDelayQueues()) {
    if (legacy.name.compare(0, q.name.size() + 1, q.name + ".") != 0) continue;
    bool of_this_queue = false;
    for (const auto* d : DelayQueuesOf(t, q.name)) of_this_queue |= d->name == legacy.successor;
    if (!of_this_queue) continue;
    s = Drain(admin, legacy.name, holding, /*classic=*/true, moved);
    if (!s.ok()) return s;
  }
  s = Drain(admin, q.name, holding, /*classic=*/false, moved);
  if (!s.ok()) return s;
  s = Declare(admin, q, nullptr);
  if (!s.ok()) return s;
  uint64_t back = 0;
  return Restore(admin, t, q.name, &back, steps);
}

// The exchange-to-exchange bindings that deliver to an exchange (convoy.inbound's "message").
std::vector<BindingSpec> BindingsTo(const Topology& t, const std::string& exchange) {
  std::vector<BindingSpec> out;
  for (const auto& b : t.bindings) {
    if (b.to_exchange && b.queue == exchange) out.push_back(b);
  }
  return out;
}

// Moves every ready message of `from`, in order, into `exchange` (a partitioned work queue's: each
// lands in its conversation's partition), with its body and headers. How many.
Status DrainToExchange(AmqpAdmin& admin, const std::string& from, const std::string& exchange,
                       uint64_t* moved) {
  for (int round = 0; round < 10000; ++round) {
    auto state = admin.Inspect(from);
    if (!state.ok()) return state.status();
    if (!state->exists || state->messages == 0) return Status::Ok();
    if (state->consumers > 0) return Busy(from, state->consumers);
    auto n = admin.Sweep(from, 500, [&](const Delivery& d, AmqpMessage* copy) {
      copy->exchange = exchange;
      copy->routing_key = from;
      copy->body = d.body;
      copy->message_id = d.message_id;
      copy->headers = d.headers;
      // A delay queue's message comes out before its tier's end: the time it would have been back
      // goes, and its first publication bounds its wait (convoy/queue_waits.h).
      copy->headers.erase(headers::kRequeuedAt);
      if (d.attempt > 0) copy->int_headers[headers::kAttempt] = d.attempt;
      return AmqpAdmin::SweepAction::kMove;
    });
    if (!n.ok()) return n.status();
    *moved += *n;
  }
  return Status(Code::kUnavailable, from + " keeps receiving messages: stop what publishes to it");
}

// From one work queue to its partitions (topology 3: conversation.inbound split). Ingress may keep
// publishing, and each conversation keeps its order across the switch: the old queue loses its
// binding first (a "message" published in the moment until the partitions take over is returned
// to ingress, which refuses the webhook, and Meta delivers it again later), its delay queues are
// emptied into the partitions and declared anew (routing back through the exchange), then the old
// queue's messages move in order into the partitions, and only then does the exchange take the
// binding. Each step is idempotent: an interrupted run goes on where it stopped.
Status Partition(AmqpAdmin& admin, const Topology& t, const PartitionedQueue& p,
                 std::vector<UpgradeStep>* steps) {
  auto old = admin.Inspect(p.queue);
  if (!old.ok()) return old.status();
  if (!old->exists) return Status::Ok();
  if (old->consumers > 0) return Busy(p.queue, old->consumers);
  for (const auto& q : t.queues) {
    if (q.name == p.queue || WorkQueueOf(q.name) != p.queue) continue;  // its partitions only
    Status s = Declare(admin, q, nullptr);
    if (!s.ok()) return s;
    for (const auto& b : t.bindings) {
      if (b.queue != q.name || b.to_exchange) continue;
      s = admin.Bind(b);
      if (!s.ok()) return s;
    }
  }
  UpgradeStep step{p.queue,
                   "moved into " + std::to_string(p.partitions) + " partitions behind " +
                       p.exchange + " and deleted",
                   0};
  // The bindings the exchange takes over, taken from the old queue first.
  const std::vector<BindingSpec> taken = BindingsTo(t, p.exchange);
  for (auto b : taken) {
    b.queue = p.queue;
    b.to_exchange = false;
    Status s = admin.Unbind(b);
    if (!s.ok()) return s;
  }
  for (const auto* d : DelayQueuesOf(t, p.queue)) {
    Status s = Declare(admin, *d, nullptr);
    if (s.ok()) continue;  // declared as it is now (by an interrupted run)
    if (!IsInequivalentArgs(s)) return s;
    // Dead-letters to the old queue by name: nothing may reach it any more, then what waits comes
    // back early into the partitions (a retry sooner).
    for (const auto& b : BindingsOf(d->name)) {
      s = admin.Unbind(b);
      if (!s.ok()) return s;
    }
    s = DrainToExchange(admin, d->name, p.exchange, &step.moved);
    if (!s.ok()) return s;
    s = admin.DeleteQueue(d->name, /*if_empty=*/false, /*if_unused=*/false);
    if (!s.ok()) return s;
    s = Declare(admin, *d, nullptr);
    if (!s.ok()) return s;
  }
  // Topology 1's classic delay queues dead-letter into the old queue by name too.
  for (const auto& legacy : LegacyDelayQueues()) {
    if (legacy.name.compare(0, p.queue.size() + 1, p.queue + ".") != 0) continue;
    auto state = admin.Inspect(legacy.name);
    if (!state.ok()) return state.status();
    if (!state->exists) continue;
    for (const auto& b : BindingsOf(legacy.successor)) {
      Status s = admin.Unbind({b.exchange, legacy.name, legacy.name});
      if (!s.ok()) return s;
    }
    Status s = DrainToExchange(admin, legacy.name, p.exchange, &step.moved);
    if (!s.ok()) return s;
    s = admin.DeleteQueue(legacy.name, /*if_empty=*/true, /*if_unused=*/false);
    if (!s.ok()) return s;
  }
  Status s = DrainToExchange(admin, p.queue, p.exchange, &step.moved);
  if (!s.ok()) return s;
  s = admin.DeleteQueue(p.queue, /*if_empty=*/false, /*if_unused=*/false);
  if (!s.ok()) return s;
  for (const auto& b : taken) {
    s = admin.Bind(b);
    if (!s.ok()) return s;
  }
  steps->push_back(step);
  return Status::Ok();
}

// Re-partitioning: the staging queue of partition i, and the exchange that routes the staged
// messages as the partitioned exchange will ("<exchange>.upgrade.<partitions>": a run for another
// count finds it and refuses).
std::string StagingName(const std::string& queue, int i) {
  return PartitionName(queue, i) + kHoldingSuffix;
}
std::string RouterName(const PartitionedQueue& p, int partitions) {
  return p.exchange + kHoldingSuffix + "." + std::to_string(partitions);
}

// From the partitions on the broker to p.partitions of them, ingress publishing all along, nothing
// lost and each conversation's messages in order. The consistent-hash exchange maps a key by the
// order of its bindings (jump consistent hashing over the bound queues: a queue's buckets are its
// place in that order, not its name), so an exchange bound to partitions 0..n-1 in that order maps
// as the partitioned exchange bound the same way (topology_upgrade_test checks it on the broker).
//  1. "message" is taken from the exchange: ingress's publishes are returned to it, and it refuses
//     the webhook (Meta delivers it again later) until step 8.
//  2. A staging queue per partition (declared first: the mark of a re-partitioning under way).
//  3. The partitions 0..n-1 are declared and the exchange bound to the new ones after the others,
//     the extra ones unbound highest first: from now on it maps as it will, and what the delay
//     queues dead-letter into it goes to its conversation's new partition (a retry has no place in
//     its conversation's order to keep). It always has a route: the at-least-once dead-lettering
//     of the delay queues never finds it without one.
//  4. Every partition's messages move in order into its staging queue (those dead-lettered there
//     while the bindings changed included), then the router exchange is declared: the mark that
//     step 4 is done.
//  5. The router is bound to the partitions 0..n-1 in order.
//  6. Each staging queue moves through the router in order, and is deleted. A conversation's
//     messages were all in one partition, so they are in one staging queue, and arrive in order in
//     its new partition, before anything ingress publishes after step 8.
//  7. The extra partitions (unbound since step 3) move through the router what reached them
//     meanwhile, and are deleted once empty, highest first (discovery counts up to the first gap).
//  8. The router is deleted and the exchange takes "message" back.
// Each step is idempotent, so a run that stopped anywhere is finished by running it again.
Status Repartition(AmqpAdmin& admin, const Topology& t, const PartitionedQueue& p,
                   std::vector<UpgradeStep>* steps) {
  const int target = p.partitions;
  auto found = admin.CountPartitions(p.queue);
  if (!found.ok()) return found.status();
  const int existing = *found;
  const int span = std::max(existing, target);
  const std::string router = RouterName(p, target);
  auto routed = admin.ExchangeExists(router);
  if (!routed.ok()) return routed.status();
  auto staged = admin.Inspect(StagingName(p.queue, 0));
  if (!staged.ok()) return staged.status();
  // Nothing under way, and as many as asked for (or none yet: a new broker is simply declared).
  if (!*routed && !staged->exists && (existing == target || existing == 0)) return Status::Ok();
  if (!*routed && staged->exists) {
    // Staged messages routed for another count must finish with that count, or a conversation's
    // messages would be split between two layouts.
    for (int other = 1; other <= kMaxConversationPartitions; ++other) {
      if (other == target) continue;
      auto exists = admin.ExchangeExists(RouterName(p, other));
      if (!exists.ok()) return exists.status();
      if (*exists) {
        return Status(Code::kRejected, "an interrupted re-partitioning of " + p.queue + " into " +
                                           std::to_string(other) +
                                           " partitions is under way: run it again with "
                                           "--conversation_partitions=" +
                                           std::to_string(other) + " first");
      }
    }
  }
  for (int i = 0; i < span; ++i) {
    for (const std::string& q : {PartitionName(p.queue, i), StagingName(p.queue, i)}) {
      auto state = admin.Inspect(q);
      if (!state.ok()) return state.status();
      if (state->exists && state->consumers > 0) return Busy(q, state->consumers);
    }
  }
  UpgradeStep step{p.queue,
                   "re-partitioned from " + std::to_string(existing) + " into " +
                       std::to_string(target) + " partitions",
                   0};
  // 1.
  const std::vector<BindingSpec> taken = BindingsTo(t, p.exchange);
  for (const auto& b : taken) {
    Status s = admin.Unbind(b);
    if (!s.ok()) return s;
  }
  // 2.
  if (!*routed) {
    for (int i = 0; i < span; ++i) {
      Status s = Declare(admin, QuorumSpec(t, StagingName(p.queue, i)), nullptr);
      if (!s.ok()) return s;
    }
  }
  // 3.
  for (const auto& q : t.queues) {
    if (q.name == p.queue || WorkQueueOf(q.name) != p.queue) continue;  // the partitions 0..n-1
    Status s = Declare(admin, q, nullptr);
    if (!s.ok()) return s;
  }
  for (int i = 0; i < target; ++i) {
    Status s = admin.Bind({p.exchange, PartitionName(p.queue, i), "1"});
    if (!s.ok()) return s;
  }
  for (int i = existing - 1; i >= target; --i) {
    Status s = admin.Unbind({p.exchange, PartitionName(p.queue, i), "1"});
    if (!s.ok()) return s;
  }
  // 4.
  if (!*routed) {
    for (int i = 0; i < span; ++i) {
      auto n = admin.MoveThrough(PartitionName(p.queue, i), "", StagingName(p.queue, i));
      if (!n.ok()) return n.status();
    }
    Status s = admin.DeclareExchange(
        {router, "x-consistent-hash", {{"hash-header", headers::kConversationKey}}});
    if (!s.ok()) return s;
  }
  // 5.
  for (int i = 0; i < target; ++i) {
    Status s = admin.Bind({router, PartitionName(p.queue, i), "1"});
    if (!s.ok()) return s;
  }
  // 6.
  for (int i = 0; i < span; ++i) {
    auto n = admin.MoveThrough(StagingName(p.queue, i), router, p.queue);
    if (!n.ok()) return n.status();
    step.moved += *n;
    Status s = admin.DeleteQueue(StagingName(p.queue, i), /*if_empty=*/false, /*if_unused=*/false);
    if (!s.ok()) return s;
  }
  // 7.
  for (int i = existing - 1; i >= target; --i) {
    auto n = admin.MoveThrough(PartitionName(p.queue, i), router, p.queue);
    if (!n.ok()) return n.status();
    step.moved += *n;
    Status s =
        admin.DeleteQueue(PartitionName(p.queue, i), /*if_empty=*/false, /*if_unused=*/false);
    if (!s.ok()) return s;
  }
  // 8.
  Status s = admin.DeleteExchange(router);
  if (!s.ok()) return s;
  for (const auto& b : taken) {
    s = admin.Bind(b);
    if (!s.ok()) return s;
  }
  steps->push_back(step);
  return Status::Ok();
}

}  // namespace

Result<std::vector<UpgradeStep>> UpgradeTopology(const AmqpOptions& options,
                                                 const TopologySettings& settings) {
  Status s = ValidateTopologySettings(settings);
  if (!s.ok()) return s;
  AmqpAdmin admin;
  s = admin.Open(options);
  if (!s.ok()) return s;
  const Topology t = BuildTopology(settings);
  std::vector<UpgradeStep> steps;
  for (const auto& ex : t.exchanges) {
    s = admin.DeclareExchange(ex);
    if (!s.ok()) return s;
  }
  // 0. Work queues now consumed in partitions (their delay queues are declared anew there), and
  // partitioned work queues with another number of partitions than the settings ask for.
  for (const auto& p : t.partitioned) {
    s = Partition(admin, t, p, &steps);
    if (!s.ok()) return s;
    s = Repartition(admin, t, p, &steps);
    if (!s.ok()) return s;
  }
  // 1. Work queues first: those declared with other arguments are rebuilt below, and their
  // delay queues declared only then.
  std::vector<const QueueSpec*> differing, interrupted;
  std::set<std::string> later;
  for (const auto& q : t.queues) {
    if (std::find(t.work_queues.begin(), t.work_queues.end(), q.name) == t.work_queues.end())
      continue;
    s = Declare(admin, q, &steps);
    if (IsInequivalentArgs(s)) {
      differing.push_back(&q);
    } else if (!s.ok()) {
      return s;
    } else {
      // Deleted and declared anew by an upgrade that stopped before moving its messages back.
      auto holding = admin.Inspect(q.name + kHoldingSuffix);
      if (!holding.ok()) return holding.status();
      if (holding->exists) interrupted.push_back(&q);
    }
  }
  for (const auto* q : differing) {
    for (const auto* d : DelayQueuesOf(t, q->name)) later.insert(d->name);
  }
  for (const auto& q : t.queues) {
    if (later.count(q.name) ||
        std::find(t.work_queues.begin(), t.work_queues.end(), q.name) != t.work_queues.end()) {
      continue;
    }
    s = Declare(admin, q, &steps);
    if (!s.ok()) return s;
  }
  for (const auto* q : interrupted) {
    UpgradeStep step{q->name, "restored from " + q->name + kHoldingSuffix, 0};
    s = Restore(admin, t, q->name, &step.moved, &steps);
    if (!s.ok()) return s;
    steps.push_back(step);
  }
  // 2. Work queues declared with other arguments: through a holding queue and back.
  for (const auto* q : differing) {
    UpgradeStep step{q->name, "declared anew with the current arguments", 0};
    s = Rebuild(admin, t, *q, &step.moved, &steps);
    if (!s.ok()) return s;
    steps.push_back(step);
  }
  // 3. Legacy delay queues of current work queues: what waits there goes on waiting in the
  // successor of the same tier.
  for (const auto& legacy : LegacyDelayQueues()) {
    auto state = admin.Inspect(legacy.name);
    if (!state.ok()) return state.status();
    if (!state->exists) continue;
    UpgradeStep step{legacy.name, "moved to " + legacy.successor + " and deleted", 0};
    s = Drain(admin, legacy.name, legacy.successor, /*classic=*/true, &step.moved);
    if (!s.ok()) return s;
    steps.push_back(step);
  }
  // 4. Every binding (anything an interrupted run left unbound).
  for (const auto& b : t.bindings) {
    s = admin.Bind(b);
    if (!s.ok()) return s;
  }
  for (const auto& step : steps) {
    LOG(INFO) << "event=topology_upgrade queue=" << step.queue << " action=\"" << step.action
              << "\" moved=" << step.moved;
  }
  return steps;
}

bool IsInequivalentGroupSize(const Status& status, int64_t* current) {
  if (!IsInequivalentArgs(status)) return false;
  const std::string& m = status.message();
  if (m.find(std::string("inequivalent arg '") + kQuorumInitialGroupSize + "'") ==
      std::string::npos) {
    return false;
  }
  // "... received the value '3' of type 'long' but current is none", "... received none but
  // current is the value '3' of type 'long'", "... received '1' but current is '3'".
  const std::string marker = "but current is ";
  size_t at = m.find(marker);
  if (at == std::string::npos) return false;
  at += marker.size();
  if (m.compare(at, 4, "none") == 0) {
    *current = 0;
    return true;
  }
  if (m.compare(at, 10, "the value ") == 0) at += 10;
  if (at >= m.size() || m[at] != '\'') return false;
  size_t end = m.find('\'', at + 1);
  if (end == std::string::npos || end == at + 1 || end - at > 4) return false;
  int64_t value = 0;
  for (size_t i = at + 1; i < end; ++i) {
    if (m[i] < '0' || m[i] > '9') return false;
    value = value * 10 + (m[i] - '0');
  }
  *current = value;
  return true;
}

}  // namespace convoy
