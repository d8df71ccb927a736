// Consumer: manual acks on a thread and connection of its own, and the ack contract that settles
// each delivery: ack, a retry or delay tier, or the parking queue (convoy/amqp.h).
#include <amqp.h>
#include <glog/logging.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "convoy/amqp.h"
#include "convoy/log.h"
#include "convoy/queue_waits.h"
#include "convoy/topology.h"
#include "internal.h"

namespace convoy {

using amqp_internal::AnswerClose;
using amqp_internal::BytesToString;
using amqp_internal::CheckReply;
using amqp_internal::CloseReason;
using amqp_internal::Conn;
using amqp_internal::DiscoverQueuesOn;
using amqp_internal::kChannel;
using amqp_internal::ToDelivery;

Disposition DispositionFor(const Status& status) {
  if (status.ok()) return Disposition::Ack();
  if (IsTransient(status.code())) return Disposition::Retry(status.ToString());
  return Disposition::DeadLetter(status.ToString());
}

std::string Delivery::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

struct Consumer::Impl {
  ConsumerOptions options;
  BatchHandler handler;
  Publisher* republisher = nullptr;
  std::thread thread;
  std::atomic<bool> stop{false};
  bool started = false;
  std::atomic<bool> connected{false};
  std::unique_ptr<Conn> conn;
  std::atomic<uint64_t> delivered{0}, acked{0}, retried{0}, delayed{0}, dead_lettered{0},
      reconnects{0}, republish_waits{0};
  std::mutex sleep_mu;
  std::condition_variable sleep_cv;
  // Acks not yet sent: the highest settled tag and how many it stands for. Settled deliveries are
  // acked together (one basic.ack, multiple) when no further delivery is already waiting, or
  // every half prefetch: one quorum-queue settle command for many instead of one each. A
  // delivery is only ever counted here after its outcome is committed or confirmed, so a crash
  // before the ack redelivers work already done, which every handler takes as a duplicate.
  uint64_t pending_ack_tag = 0;
  int pending_acks = 0;
  bool tagged = false;  // consuming several queues: a delivery's consumer tag names its queue
  // Since when the broker has refused every retry's, delay's or parking's copy
  // (RepublishPatiently).
  std::optional<std::chrono::steady_clock::time_point> refused_since;

  void SleepUnlessStopped(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(sleep_mu);
    sleep_cv.wait_for(lock, d, [&] { return stop.load(); });
  }

  Status Connect() {
    auto c = std::make_unique<Conn>();
    Status s = c->Open(options.amqp);
    if (!s.ok()) return s;
    amqp_basic_qos(c->state(), kChannel, 0, static_cast<uint16_t>(options.prefetch), 0);
    s = CheckReply(amqp_get_rpc_reply(c->state()), "basic.qos");
    if (!s.ok()) return s;
    std::vector<std::string> queues = options.queues;
    if (queues.empty() && options.shares > 0) {
      // A partitioned work queue: this consumer's share of the partitions the broker has now.
      auto all = DiscoverQueuesOn(c->state(), options.queue);
      if (!all.ok()) return all.status();
      for (size_t i = static_cast<size_t>(options.share); i < all->size();
           i += static_cast<size_t>(options.shares)) {
        queues.push_back((*all)[i]);
      }
      LOG(INFO) << LogCtx{options.queue} << "event=amqp_partitions found=" << all->size()
                << " consuming=" << queues.size();
    } else if (queues.empty()) {
      amqp_basic_consume(c->state(), kChannel, amqp_cstring_bytes(options.queue.c_str()),
                         amqp_empty_bytes, 0,
                         /*no_ack=*/0, 0, amqp_empty_table);
      s = CheckReply(amqp_get_rpc_reply(c->state()), "basic.consume " + options.queue);
      if (!s.ok()) return s;
    }
    tagged = options.queues.size() + static_cast<size_t>(options.shares) > 0;
    // Several queues: each consumer's tag is its queue's name, which tells a delivery's queue.
    for (const auto& q : queues) {
      amqp_basic_consume(c->state(), kChannel, amqp_cstring_bytes(q.c_str()),
                         amqp_cstring_bytes(q.c_str()), 0,
                         /*no_ack=*/0, 0, amqp_empty_table);
      s = CheckReply(amqp_get_rpc_reply(c->state()), "basic.consume " + q);
      if (!s.ok()) return s;
    }
    conn = std::move(c);
    return Status::Ok();
  }

  // Sends the pending acks, if any.
  void FlushAcks() {
    if (pending_acks == 0 || !conn) return;
    int rc = amqp_basic_ack(conn->state(), kChannel, pending_ack_tag, /*multiple=*/1);
    const int n = pending_acks;
    pending_acks = 0;
    pending_ack_tag = 0;
    if (rc != AMQP_STATUS_OK) {
      Lose(std::string("basic.ack: ") + amqp_error_string2(rc));
      return;
    }
    acked.fetch_add(static_cast<uint64_t>(n));
  }

  void Lose(const std::string& why) {
    LOG(WARNING) << LogCtx{options.queue} << "event=amqp_consumer_lost why=" << why;
    pending_acks = 0;  // the broker redelivers what the lost channel held unacked
    pending_ack_tag = 0;
    connected.store(false);
    if (conn) {
      conn->MarkBroken();
      conn.reset();
    }
  }

  void Run() {
    bool first = true;
    while (!stop.load()) {
      if (!conn) {
        Status s = Connect();
        if (!s.ok()) {
          conn.reset();
          LOG_EVERY_N(WARNING, 20) << LogCtx{options.queue}
                                   << "event=amqp_consumer_connect_failed error=" << s.ToString();
          SleepUnlessStopped(options.amqp.reconnect_delay);
          continue;
        }
        connected.store(true);
        if (!first) reconnects.fetch_add(1);
        first = false;
        LOG(INFO) << LogCtx{options.queue} << "event=amqp_consuming prefetch=" << options.prefetch;
      }
      amqp_connection_state_t st = conn->state();
      // Every frame read on a channel (a delivery's method, header and body frames: ~1-2 KB for an
      // inbound message) stays in the connection's pool for that channel until released, and
      // librabbitmq never releases it by itself. Released only when no ack was pending, the pool
      // grew by every delivery for as long as deliveries kept coming less than 200 ms apart, which
      // a steady load always does. Nothing read before this point is still in use: every envelope
      // was copied and destroyed.
      amqp_maybe_release_buffers(st);
      amqp_envelope_t env;
      amqp_rpc_reply_t r;
      if (pending_acks > 0) {
        // Acks wait only while more deliveries are already here; before blocking they go.
        timeval zero{0, 0};
        r = amqp_consume_message(st, &env, &zero, 0);
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT) {
          FlushAcks();
          if (!conn) continue;
          timeval tv{0, 200000};
          r = amqp_consume_message(st, &env, &tv, 0);
        }
      } else {
        timeval tv{0, 200000};
        r = amqp_consume_message(st, &env, &tv, 0);
      }
      if (r.reply_type == AMQP_RESPONSE_NORMAL) {
        std::vector<Delivery> batch;
        std::vector<uint64_t> tags;
        for (;;) {
          batch.push_back(
              ToDelivery(tagged ? BytesToString(env.consumer_tag) : options.queue, env));
          tags.push_back(env.delivery_tag);
          amqp_destroy_envelope(&env);
          if (static_cast<int>(batch.size()) >= options.batch) break;
          // More only if already received: a batch never waits to fill.
          timeval zero{0, 0};
          if (amqp_consume_message(st, &env, &zero, 0).reply_type != AMQP_RESPONSE_NORMAL) break;
        }
        delivered.fetch_add(batch.size());
        const int64_t taken_ms = UnixMillisNow();
        for (const auto& d : batch)
          QueueWaits::Global().Taken(d.queue, WaitingSinceMs(d), taken_ms);
        std::vector<Disposition> disps;
        try {
          disps = handler(batch);
        } catch (const std::exception& e) {
          disps.assign(batch.size(), Disposition::Retry(std::string("handler threw: ") + e.what()));
        }
        if (disps.size() != batch.size()) {
          disps.assign(batch.size(),
                       Disposition::Retry("handler returned " + std::to_string(disps.size()) +
                                          " dispositions for " + std::to_string(batch.size())));
        }
        for (size_t i = 0; i < batch.size() && conn; ++i) Settle(tags[i], batch[i], disps[i]);
        if (pending_acks * 2 >= options.prefetch) FlushAcks();
        continue;
      }
      if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT)
        continue;
      if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
          r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
        amqp_frame_t frame;
        timeval zero{0, 0};
        int rc = amqp_simple_wait_frame_noblock(st, &frame, &zero);
        if (rc == AMQP_STATUS_OK && frame.frame_type == AMQP_FRAME_METHOD &&
            (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
             frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)) {
          std::string why = CloseReason(frame);
          AnswerClose(st, frame);
          Lose(why);
        } else if (rc != AMQP_STATUS_OK && rc != AMQP_STATUS_TIMEOUT) {
          Lose(amqp_error_string2(rc));
        }
        continue;
      }
      Lose(CheckReply(r, "consume").ToString());
    }
    FlushAcks();
    connected.store(false);
    conn.reset();
  }

  // The broker refused a retry's, delay's or parking's copy (the tier's queue has no leader while
  // its node restarts, the republisher is reconnecting): tried again here with the original kept
  // unacked, instead of handed back at once. A message handed back (nack, requeue) comes straight
  // back, fails the same way, and each return counts toward its queue's delivery limit, past which
  // the broker parks it with no reason: a second's refusal used to park messages that had failed
  // nothing (10 returns in well under a second). A copy not confirmed yet is waited for, not
  // published again (the publisher still holds it and sends it again after a reconnect). Heartbeats
  // go out on this consumer's connection while it waits (a third of the interval apart). It gives
  // up after options.republish_patience, when the consumer stops, or when its own connection is
  // gone; then the one message is handed back (if the connection is there to take it) and the next
  // refusal waits afresh.
  Status RepublishPatiently(const AmqpMessage& copy, const LogCtx& ctx) {
    if (!republisher) return Status(Code::kUnavailable, "no republisher");
    using Clock = std::chrono::steady_clock;
    const std::chrono::milliseconds beat(std::max(200, options.amqp.heartbeat_seconds * 1000 / 3));
    const auto refused = [&](Clock::time_point now) {
      if (!refused_since) refused_since = now;
      return stop.load() || now >= *refused_since + options.republish_patience;
    };
    std::chrono::milliseconds backoff(100);
    for (int tries = 1;; ++tries) {
      PublishBatch batch;
      republisher->Publish(copy, batch.Add());
      const auto published_at = Clock::now();
      Status s;
      while (true) {
        s = batch.Wait(Clock::now() + beat);
        if (s.code() != Code::kTimeout) break;
        const auto now = Clock::now();
        if (now - published_at >= std::chrono::seconds(10) && refused(now)) {
          refused_since.reset();
          return s;
        }
        if (!KeepAlive()) return s;
      }
      if (s.ok()) {
        if (refused_since) {
          LOG(INFO) << ctx << "event=republished tries=" << tries;
          refused_since.reset();
        }
        return s;
      }
      const auto now = Clock::now();
      if (refused(now) || now + backoff >= *refused_since + options.republish_patience) {
        refused_since.reset();
        return s;
      }
      LOG_EVERY_N(WARNING, 20) << ctx << "event=republish_refused tries=" << tries
                               << " error=" << s.ToString();
      republish_waits.fetch_add(1);
      if (!KeepAlive()) return s;
      SleepUnlessStopped(backoff);
      backoff = std::min({backoff * 2, std::chrono::milliseconds(2000), beat});
    }
  }

  // A heartbeat on this consumer's connection (it reads nothing while a copy is waited for). False,
  // with the connection given up, when it cannot be sent.
  bool KeepAlive() {
    if (!conn) return false;
    amqp_frame_t heartbeat{};
    heartbeat.frame_type = AMQP_FRAME_HEARTBEAT;
    heartbeat.channel = 0;
    const int rc = amqp_send_frame(conn->state(), &heartbeat);
    if (rc == AMQP_STATUS_OK) return true;
    refused_since.reset();
    Lose(std::string("heartbeat: ") + amqp_error_string2(rc));
    return false;
  }

  // Publishes a copy of the delivery for a retry tier or the parking queue; acks the original
  // only once the broker confirmed the copy.
  void Settle(uint64_t tag, const Delivery& d, const Disposition& disp) {
    LogCtx ctx{d.queue, d.Header(headers::kCorrelationId), d.Header(headers::kConversationKey),
               d.Header(headers::kDedupeKey)};
    // A partition's retries and parked messages go through its work queue's delay and parking
    // queues (the delay queues route back through the partitions' exchange).
    const std::string work_queue = WorkQueueOf(d.queue);
    Disposition::Kind kind = disp.kind;
    std::string reason = disp.reason;
    // A delay is not a failure: the attempt count travels unchanged.
    int attempt = kind == Disposition::Kind::kDelay ? d.attempt : d.attempt + 1;
    if (kind == Disposition::Kind::kRetry && attempt >= options.max_attempts) {
      kind = Disposition::Kind::kDeadLetter;
      reason = "gave up after " + std::to_string(attempt) + " attempts: " + reason;
    }
    if (kind != Disposition::Kind::kAck) {
      AmqpMessage copy;
      copy.body = d.body;
      copy.message_id = d.message_id;
      copy.headers = d.headers;
      copy.headers.erase(headers::kAttempt);
      copy.int_headers[headers::kAttempt] = attempt;
      copy.headers["x-original-routing-key"] = d.routing_key;
      for (const auto& [name, value] : disp.headers) {
        if (value.empty()) {
          copy.headers.erase(name);
        } else {
          copy.headers[name] = value;
        }
      }
      // Back in the work queue when its tier ends: it waits there from then (queue_waits.h).
      copy.headers.erase(headers::kRequeuedAt);
      if (kind == Disposition::Kind::kDelay) {
        copy.headers["x-delay-reason"] = reason;
        copy.exchange = exchanges::kRetry;
        copy.routing_key = DelayRoutingKey(work_queue, disp.delay_ms);
        copy.int_headers[headers::kRequeuedAt] =
            UnixMillisNow() + DelayTierMs(work_queue, disp.delay_ms);
      } else {
        copy.headers["x-last-error"] = reason;
        if (!copy.headers.count("x-first-error")) copy.headers["x-first-error"] = reason;
        if (disp.code != 0) copy.int_headers["x-last-error-code"] = disp.code;
      }
      if (kind == Disposition::Kind::kRetry) {
        copy.exchange = exchanges::kRetry;
        copy.routing_key = RetryRoutingKey(work_queue, attempt, disp.delay_ms);
        copy.int_headers[headers::kRequeuedAt] =
            UnixMillisNow() + RetryDelayMs(attempt, disp.delay_ms);
      } else if (kind == Disposition::Kind::kDeadLetter) {
        copy.exchange = exchanges::kDlx;
        copy.routing_key = work_queue;
        copy.headers[headers::kDeathReason] = reason;
        copy.headers[headers::kOriginalQueue] = work_queue;
        copy.headers["x-parked-at"] =
            std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count());
      }
      Status s = RepublishPatiently(copy, ctx);
      if (!s.ok()) {
        LOG(WARNING) << ctx << "event=republish_failed error=" << s.ToString()
                     << " requeue=" << (conn ? "true" : "false (the connection is gone)");
        if (conn) amqp_basic_nack(conn->state(), kChannel, tag, 0, /*requeue=*/1);
        return;
      }
      if (kind == Disposition::Kind::kRetry) {
        retried.fetch_add(1);
        LOG(INFO) << ctx << "event=retry attempt=" << attempt << " reason=" << reason;
      } else if (kind == Disposition::Kind::kDelay) {
        delayed.fetch_add(1);
        VLOG(1) << ctx << "event=delayed ms=" << disp.delay_ms << " reason=" << reason;
      } else {
        dead_lettered.fetch_add(1);
        LOG(WARNING) << ctx << "event=dead_lettered attempt=" << attempt << " reason=" << reason;
      }
    }
    pending_ack_tag = std::max(pending_ack_tag, tag);
    ++pending_acks;
  }
};

Consumer::Consumer(ConsumerOptions options, BatchHandler handler, Publisher* republisher)
    : impl_(new Impl) {
  impl_->options = std::move(options);
  impl_->options.batch = std::max(1, impl_->options.batch);
  impl_->handler = std::move(handler);
  impl_->republisher = republisher;
}

Consumer::Consumer(ConsumerOptions options, DeliveryHandler handler, Publisher* republisher)
    : Consumer(
          [&options] {
            options.batch = 1;
            return std::move(options);
          }(),
          BatchHandler([handler = std::move(handler)](const std::vector<Delivery>& batch) {
            std::vector<Disposition> out;
            for (const auto& d : batch) out.push_back(handler(d));
            return out;
          }),
          republisher) {}

Consumer::~Consumer() { Stop(); }

void Consumer::Start() {
  if (impl_->started) return;
  impl_->started = true;
  impl_->thread = std::thread([impl = impl_.get()] { impl->Run(); });
}

void Consumer::Stop() {
  if (!impl_->started || impl_->stop.exchange(true)) return;
  impl_->sleep_cv.notify_all();
  impl_->thread.join();
}

bool Consumer::connected() const { return impl_->connected.load(); }

ConsumerStats Consumer::stats() const {
  ConsumerStats s;
  s.delivered = impl_->delivered.load();
  s.acked = impl_->acked.load();
  s.retried = impl_->retried.load();
  s.delayed = impl_->delayed.load();
  s.dead_lettered = impl_->dead_lettered.load();
  s.reconnects = impl_->reconnects.load();
  s.republish_waits = impl_->republish_waits.load();
  return s;
}

}  // namespace convoy
