// AmqpAdmin: broker administration over one synchronous connection, for convoy-topology --upgrade,
// convoyctl and tests (convoy/amqp_admin.h).
#include <amqp.h>
#include <glog/logging.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "convoy/amqp.h"
#include "convoy/amqp_admin.h"
#include "convoy/log.h"
#include "convoy/topology.h"
#include "internal.h"

namespace convoy {

using amqp_internal::BytesToString;
using amqp_internal::CheckRc;
using amqp_internal::CheckReply;
using amqp_internal::CloseReason;
using amqp_internal::Conn;
using amqp_internal::CountPartitionsOn;
using amqp_internal::kChannel;
using amqp_internal::SendBind;
using amqp_internal::SendExchangeDeclare;
using amqp_internal::SendQueueDeclare;
using amqp_internal::ToDelivery;

bool IsInequivalentArgs(const Status& status) {
  return status.code() == Code::kRejected && status.message().find("406") != std::string::npos;
}

struct AmqpAdmin::Impl {
  AmqpOptions options;
  std::unique_ptr<Conn> conn;
  std::unique_ptr<Publisher> publisher;
  bool channel_closed = false;

  // After the broker closed the channel (a refused call): close-ok, then a new channel 1.
  Status EnsureChannel() {
    if (!conn) return Status(Code::kUnavailable, "not open");
    if (!channel_closed) return Status::Ok();
    amqp_channel_close_ok_t ok{};
    amqp_send_method(conn->state(), kChannel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    amqp_channel_open(conn->state(), kChannel);
    Status s = CheckReply(amqp_get_rpc_reply(conn->state()), "channel.open");
    if (s.ok()) channel_closed = false;
    return s;
  }
  Status Check(const std::string& what) {
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn->state());
    Status s = CheckReply(r, what);
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
      channel_closed = true;
    }
    VLOG(1) << LogCtx{"amqp-admin"} << "event=rpc what=\"" << what << "\" status=" << s.ToString();
    return s;
  }
  // The channel, and a confirming publisher for the copies a move makes.
  Status Ready(const std::string& what) {
    Status s = EnsureChannel();
    if (!s.ok() || publisher) return s;
    publisher = std::make_unique<Publisher>(options);
    publisher->Start();
    if (!publisher->WaitConnected(std::chrono::seconds(10))) {
      return Status(Code::kUnavailable, what + ": publisher could not connect");
    }
    return Status::Ok();
  }
  // One message off `queue` with basic.get, unacked (its delivery tag in *tag); nullopt when empty.
  Result<std::optional<Delivery>> Get(const std::string& queue, uint64_t* tag) {
    amqp_connection_state_t st = conn->state();
    amqp_rpc_reply_t r =
        amqp_basic_get(st, kChannel, amqp_cstring_bytes(queue.c_str()), /*no_ack=*/0);
    Status s = Check("basic.get " + queue);
    if (!s.ok()) return s;
    if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) return std::optional<Delivery>();
    auto* get_ok = static_cast<amqp_basic_get_ok_t*>(r.reply.decoded);
    amqp_envelope_t env{};
    env.exchange = get_ok->exchange;
    env.routing_key = get_ok->routing_key;
    env.redelivered = get_ok->redelivered;
    *tag = get_ok->delivery_tag;
    amqp_message_t msg;
    s = CheckReply(amqp_read_message(st, kChannel, &msg, 0), "read message " + queue);
    if (!s.ok()) return s;
    env.message = msg;
    Delivery d = ToDelivery(queue, env);
    amqp_destroy_message(&msg);
    return std::optional<Delivery>(std::move(d));
  }
};

namespace {
// The copy a move publishes: body, message id and headers, the attempt count as a number.
AmqpMessage MovedCopy(Delivery&& d, const std::string& exchange, const std::string& routing_key) {
  AmqpMessage copy;
  copy.exchange = exchange;
  copy.routing_key = routing_key;
  copy.body = std::move(d.body);
  copy.message_id = d.message_id;
  copy.headers = std::move(d.headers);
  auto attempt = copy.headers.find(headers::kAttempt);
  if (attempt != copy.headers.end()) {
    copy.int_headers[headers::kAttempt] = std::atoll(attempt->second.c_str());
    copy.headers.erase(attempt);
  }
  return copy;
}
}  // namespace

AmqpAdmin::AmqpAdmin() : impl_(new Impl) {}
AmqpAdmin::~AmqpAdmin() {
  if (impl_->publisher) impl_->publisher->Stop();
}

Status AmqpAdmin::Open(const AmqpOptions& options) {
  impl_->options = options;
  impl_->options.declare_topology = false;
  impl_->conn = std::make_unique<Conn>();
  return impl_->conn->Open(impl_->options);
}

Result<QueueState> AmqpAdmin::Inspect(const std::string& queue) {
  Status s = impl_->EnsureChannel();
  if (!s.ok()) return s;
  amqp_queue_declare_ok_t* ok =
      amqp_queue_declare(impl_->conn->state(), kChannel, amqp_cstring_bytes(queue.c_str()),
                         /*passive=*/1, 0, 0, 0, amqp_empty_table);
  s = impl_->Check("queue.declare passive " + queue);
  QueueState state;
  if (!s.ok()) {
    if (impl_->channel_closed && s.message().find("404") != std::string::npos) return state;
    return s;
  }
  state.exists = true;
  state.messages = ok->message_count;
  state.consumers = ok->consumer_count;
  return state;
}

Result<bool> AmqpAdmin::ExchangeExists(const std::string& exchange) {
  Status s = impl_->EnsureChannel();
  if (!s.ok()) return s;
  amqp_exchange_declare(impl_->conn->state(), kChannel, amqp_cstring_bytes(exchange.c_str()),
                        amqp_empty_bytes,
                        /*passive=*/1, 0, 0, 0, amqp_empty_table);
  s = impl_->Check("exchange.declare passive " + exchange);
  if (!s.ok()) {
    if (impl_->channel_closed && s.message().find("404") != std::string::npos) return false;
    return s;
  }
  return true;
}

Status AmqpAdmin::DeleteExchange(const std::string& exchange) {
  Status s = impl_->EnsureChannel();
  if (!s.ok()) return s;
  amqp_exchange_delete(impl_->conn->state(), kChannel, amqp_cstring_bytes(exchange.c_str()),
                       /*if_unused=*/0);
  return impl_->Check("exchange.delete " + exchange);
}

Result<int> AmqpAdmin::CountPartitions(const std::string& work_queue) {
  if (!impl_->conn) return Status(Code::kUnavailable, "not open");
  return CountPartitionsOn(impl_->conn->state(), work_queue);
}

Status AmqpAdmin::DeclareExchange(const ExchangeSpec& ex) {
  Status s = impl_->EnsureChannel();
  if (!s.ok()) return s;
  SendExchangeDeclare(impl_->conn->state(), ex);
  return impl_->Check("exchange.declare " + ex.name);
}

Status AmqpAdmin::DeclareQueue(const QueueSpec& q) {
  Status s = impl_->EnsureChannel();
  if (!s.ok()) return s;
  SendQueueDeclare(impl_->conn->state(), q);
  return impl_->Check("queue.declare " + q.name);
}

Status AmqpAdmin::Bind(const BindingSpec& b) {
  Status s = impl_->EnsureChannel();
  if (!s.ok()) return s;
  SendBind(impl_->conn->state(), b, /*unbind=*/false);
  return impl_->Check("bind " + b.exchange + " -> " + b.queue);
}

Status AmqpAdmin::Unbind(const BindingSpec& b) {
  Status s = impl_->EnsureChannel();
  if (!s.ok()) return s;
  SendBind(impl_->conn->state(), b, /*unbind=*/true);
  return impl_->Check("unbind " + b.exchange + " -> " + b.queue);
}

Status AmqpAdmin::DeleteQueue(const std::string& queue, bool if_empty, bool if_unused) {
  Status s = impl_->EnsureChannel();
  if (!s.ok()) return s;
  amqp_queue_delete(impl_->conn->state(), kChannel, amqp_cstring_bytes(queue.c_str()),
                    if_unused ? 1 : 0, if_empty ? 1 : 0);
  return impl_->Check("queue.delete " + queue);
}

Result<uint32_t> AmqpAdmin::Purge(const std::string& queue) {
  Status s = impl_->EnsureChannel();
  if (!s.ok()) return s;
  amqp_queue_purge_ok_t* ok =
      amqp_queue_purge(impl_->conn->state(), kChannel, amqp_cstring_bytes(queue.c_str()));
  s = impl_->Check("queue.purge " + queue);
  if (!s.ok()) return s;
  return ok->message_count;
}

Status AmqpAdmin::TryConsume(const std::string& queue) {
  Status s = impl_->EnsureChannel();
  if (!s.ok()) return s;
  amqp_basic_consume_ok_t* ok =
      amqp_basic_consume(impl_->conn->state(), kChannel, amqp_cstring_bytes(queue.c_str()),
                         amqp_empty_bytes, 0, /*no_ack=*/0, 0, amqp_empty_table);
  s = impl_->Check("basic.consume " + queue);
  if (!s.ok()) return s;
  amqp_basic_cancel(impl_->conn->state(), kChannel, ok->consumer_tag);
  return impl_->Check("basic.cancel " + queue);
}

Status AmqpAdmin::TryPublish(const std::string& exchange, const std::string& routing_key) {
  Status s = impl_->EnsureChannel();
  if (!s.ok()) return s;
  amqp_connection_state_t st = impl_->conn->state();
  amqp_confirm_select(st, kChannel);
  s = impl_->Check("confirm.select");
  if (!s.ok()) return s;
  amqp_basic_properties_t props{};
  const std::string what = "basic.publish " + exchange + " " + routing_key;
  s = CheckRc(amqp_basic_publish(st, kChannel, amqp_cstring_bytes(exchange.c_str()),
                                 amqp_cstring_bytes(routing_key.c_str()), 0, 0, &props,
                                 amqp_cstring_bytes("probe")),
              what);
  if (!s.ok()) return s;
  // The broker answers a publish it refuses by closing the channel, else with a confirm.
  timeval tv{10, 0};
  amqp_frame_t frame;
  s = CheckRc(amqp_simple_wait_frame_noblock(st, &frame, &tv), what + ": waiting for its confirm");
  if (!s.ok()) return s;
  if (frame.frame_type != AMQP_FRAME_METHOD)
    return Status(Code::kInternal, what + ": unexpected frame");
  if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) return Status::Ok();
  if (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD) {
    impl_->channel_closed = true;
    return Status(Code::kRejected, what + ": " + CloseReason(frame));
  }
  return Status(Code::kRejected, what + ": not confirmed");
}

Result<uint64_t> AmqpAdmin::MoveAll(const std::string& from, const std::string& to) {
  Status s = impl_->Ready("move " + from);
  if (!s.ok()) return s;
  amqp_connection_state_t st = impl_->conn->state();
  constexpr size_t kBatch = 256;
  uint64_t moved = 0;
  while (true) {
    // Take up to a batch unacked, copy them, and ack them (multiple) once every copy is confirmed.
    PublishBatch batch;
    uint64_t last_tag = 0;
    size_t taken = 0;
    for (; taken < kBatch; ++taken) {
      auto got = impl_->Get(from, &last_tag);
      if (!got.ok()) return got.status();
      if (!*got) break;
      impl_->publisher->Publish(MovedCopy(std::move(**got), "", to), batch.Add());
    }
    if (taken == 0) return moved;
    s = batch.Wait(std::chrono::steady_clock::now() + std::chrono::seconds(30));
    if (!s.ok()) {
      // Unacked originals go back to `from` when this connection closes: nothing is lost.
      return Status(s.code(), "move " + from + " -> " + to + ": " + s.ToString());
    }
    s = CheckRc(amqp_basic_ack(st, kChannel, last_tag, /*multiple=*/1), "basic.ack " + from);
    if (!s.ok()) return s;
    moved += taken;
  }
}

Result<uint64_t> AmqpAdmin::MoveThrough(const std::string& from, const std::string& exchange,
                                        const std::string& routing_key) {
  Status s = impl_->Ready("move " + from);
  if (!s.ok()) return s;
  amqp_connection_state_t st = impl_->conn->state();
  constexpr uint32_t kBatch = 500;
  uint64_t moved = 0;
  for (;;) {
    auto state = Inspect(from);
    if (!state.ok()) return state.status();
    if (!state->exists || state->messages == 0) return moved;
    if (state->consumers > 0) {
      return Status(Code::kRejected,
                    from + " has " + std::to_string(state->consumers) + " consumer(s)");
    }
    // A batch held unacked (the prefetch stops the broker there), copied, and acked once every copy
    // is confirmed; the consumer is cancelled first, so nothing more is delivered meanwhile.
    const uint32_t n = std::min(kBatch, state->messages);
    amqp_basic_qos(st, kChannel, 0, static_cast<uint16_t>(n), 0);
    s = impl_->Check("basic.qos");
    if (!s.ok()) return s;
    amqp_basic_consume_ok_t* consume =
        amqp_basic_consume(st, kChannel, amqp_cstring_bytes(from.c_str()), amqp_empty_bytes, 0,
                           /*no_ack=*/0, 0, amqp_empty_table);
    s = impl_->Check("basic.consume " + from);
    if (!s.ok()) return s;
    const std::string tag = BytesToString(consume->consumer_tag);
    PublishBatch batch;
    uint64_t last_tag = 0;
    uint32_t taken = 0;
    while (taken < n) {
      amqp_envelope_t env;
      timeval tv{10, 0};
      amqp_rpc_reply_t r = amqp_consume_message(st, &env, &tv, 0);
      if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        s = CheckReply(r, "consume " + from);
        break;
      }
      Delivery d = ToDelivery(from, env);
      last_tag = env.delivery_tag;
      amqp_destroy_envelope(&env);
      impl_->publisher->Publish(MovedCopy(std::move(d), exchange, routing_key), batch.Add());
      ++taken;
    }
    amqp_basic_cancel(st, kChannel, amqp_cstring_bytes(tag.c_str()));
    Status cancelled = impl_->Check("basic.cancel " + from);
    if (s.ok()) s = cancelled;
    if (s.ok()) s = batch.Wait(std::chrono::steady_clock::now() + std::chrono::seconds(30));
    if (!s.ok()) {
      // The originals go back to `from` (a copy may have gone too: a duplicate, never a loss).
      if (last_tag != 0) amqp_basic_nack(st, kChannel, last_tag, /*multiple=*/1, /*requeue=*/1);
      return Status(s.code(), "move " + from + " -> " +
                                  (exchange.empty() ? routing_key : exchange) + ": " + s.message());
    }
    s = CheckRc(amqp_basic_ack(st, kChannel, last_tag, /*multiple=*/1), "basic.ack " + from);
    if (!s.ok()) return s;
    moved += taken;
  }
}

Result<size_t> AmqpAdmin::Sweep(const std::string& queue, size_t max, const SweepDecision& decide) {
  auto state = Inspect(queue);
  if (!state.ok()) return state.status();
  if (!state->exists) return Status(Code::kNotFound, "no queue " + queue);
  Status s = impl_->Ready("sweep " + queue);
  if (!s.ok()) return s;
  amqp_connection_state_t st = impl_->conn->state();
  // Only the messages ready now: one returned to the queue is not seen twice.
  const size_t n = std::min<size_t>(max, state->messages);
  std::vector<std::pair<uint64_t, SweepAction>> held;
  PublishBatch batch;
  auto give_back = [&](const Status& why) {
    amqp_basic_nack(st, kChannel, 0, /*multiple=*/1, /*requeue=*/1);
    return why;
  };
  for (size_t i = 0; i < n; ++i) {
    uint64_t tag = 0;
    auto got = impl_->Get(queue, &tag);
    if (!got.ok()) return give_back(got.status());
    if (!*got) break;
    AmqpMessage copy;
    SweepAction action = decide(**got, &copy);
    if (action == SweepAction::kMove) impl_->publisher->Publish(std::move(copy), batch.Add());
    held.emplace_back(tag, action);
  }
  s = batch.Wait(std::chrono::steady_clock::now() + std::chrono::seconds(30));
  if (!s.ok())
    return give_back(
        Status(s.code(), "sweep " + queue + ": a copy was not confirmed: " + s.ToString()));
  for (const auto& [tag, action] : held) {
    int rc = action == SweepAction::kKeep ? amqp_basic_nack(st, kChannel, tag, 0, /*requeue=*/1)
                                          : amqp_basic_ack(st, kChannel, tag, 0);
    s = CheckRc(rc, "settle " + queue);
    if (!s.ok()) return s;
  }
  // The broker settles a nack (requeue) after it answered nothing: until it has, what was kept
  // is neither unacked nor ready, and a sweep right after this one (an operator's second
  // `convoyctl dlq list`) would not see it. Wait, a little, until it is back.
  const size_t removed = static_cast<size_t>(std::count_if(
      held.begin(), held.end(), [](const auto& h) { return h.second != SweepAction::kKeep; }));
  const size_t expected = state->messages >= removed ? state->messages - removed : 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < until) {
    auto now = Inspect(queue);
    if (!now.ok() || !now->exists || now->messages >= expected) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return held.size();
}

}  // namespace convoy
