// Publisher: persistent, mandatory publishes with pipelined confirms on a thread and connection of
// its own (convoy/amqp.h).
#include <amqp.h>
#include <glog/logging.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
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
using amqp_internal::CheckReply;
using amqp_internal::CloseReason;
using amqp_internal::Conn;
using amqp_internal::kChannel;
using amqp_internal::kPublishTagHeader;
using amqp_internal::ReadHeaders;
using amqp_internal::Table;

const char* PublishOutcomeName(PublishOutcome outcome) {
  switch (outcome) {
    case PublishOutcome::kConfirmed:
      return "confirmed";
    case PublishOutcome::kNacked:
      return "nacked";
    case PublishOutcome::kReturned:
      return "returned";
    case PublishOutcome::kUnavailable:
      return "unavailable";
    case PublishOutcome::kOverloaded:
      return "overloaded";
    case PublishOutcome::kRejected:
      return "rejected";
  }
  return "unknown";
}

Status PublishOutcomeStatus(PublishOutcome outcome) {
  switch (outcome) {
    case PublishOutcome::kConfirmed:
      return Status::Ok();
    case PublishOutcome::kUnavailable:
    case PublishOutcome::kOverloaded:
    case PublishOutcome::kNacked:
      return Status(Code::kUnavailable, std::string("publish ") + PublishOutcomeName(outcome));
    case PublishOutcome::kReturned:
    case PublishOutcome::kRejected:
      return Status(Code::kRejected, std::string("publish ") + PublishOutcomeName(outcome));
  }
  return Status(Code::kInternal, "unknown publish outcome");
}

struct Publisher::Impl {
  struct Pending {
    AmqpMessage message;
    PublishCallback done;
    std::chrono::steady_clock::time_point sent_at{};  // when it went on the wire (the last time)
  };

  AmqpOptions options;
  size_t max_pending;
  int wake_fd = -1;
  std::thread thread;

  mutable std::mutex mu;
  mutable std::condition_variable connected_cv;
  std::deque<Pending> queue;  // guarded by mu
  bool stopping = false;      // guarded by mu
  bool started = false;
  std::atomic<bool> connected{false};
  std::atomic<size_t> outstanding{0};  // queued + unconfirmed

  // Publisher-thread only.
  std::unique_ptr<Conn> conn;
  uint64_t next_tag = 0;
  std::map<uint64_t, Pending> unconfirmed;
  std::chrono::steady_clock::time_point nacking_since{};  // the first nack since the last confirm
  std::set<uint64_t> returned;

  std::atomic<uint64_t> published{0}, confirmed{0}, nacked{0}, returned_count{0}, resent{0},
      reconnects{0}, max_in_flight{0};

  void Wake() {
    uint64_t one = 1;
    ssize_t n = ::write(wake_fd, &one, sizeof(one));
    (void)n;  // a full eventfd counter still wakes the reader
  }

  void Finish(Pending& p, PublishOutcome outcome) {
    outstanding.fetch_sub(1);
    switch (outcome) {
      case PublishOutcome::kConfirmed:
        confirmed.fetch_add(1);
        break;
      case PublishOutcome::kNacked:
        nacked.fetch_add(1);
        break;
      case PublishOutcome::kReturned:
        returned_count.fetch_add(1);
        break;
      default:
        break;
    }
    if (p.done) p.done(outcome);
  }

  void Run() {
    bool first = true;
    while (true) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stopping) break;
      }
      if (!conn) {
        auto c = std::make_unique<Conn>();
        Status s = c->Open(options);
        if (!s.ok()) {
          LOG_EVERY_N(WARNING, 20)
              << LogCtx{"publisher"} << "event=amqp_connect_failed name=" << options.name
              << " error=" << s.ToString();
          WaitWake(static_cast<int>(options.reconnect_delay.count()));
          continue;
        }
        amqp_confirm_select(c->state(), kChannel);
        s = CheckReply(amqp_get_rpc_reply(c->state()), "confirm.select");
        if (!s.ok()) {
          LOG(WARNING) << LogCtx{"publisher"}
                       << "event=amqp_confirm_select_failed error=" << s.ToString();
          WaitWake(static_cast<int>(options.reconnect_delay.count()));
          continue;
        }
        conn = std::move(c);
        next_tag = 0;
        returned.clear();
        {
          std::lock_guard<std::mutex> lock(mu);
          connected.store(true);
        }
        connected_cv.notify_all();
        if (!first) reconnects.fetch_add(1);
        first = false;
        LOG(INFO) << LogCtx{"publisher"} << "event=amqp_connected name=" << options.name
                  << " vhost=" << conn->vhost();
      }
      std::deque<Pending> batch;
      {
        std::lock_guard<std::mutex> lock(mu);
        batch.swap(queue);
      }
      // Several publishes at once leave in as few TCP segments as the kernel can make of them.
      const bool cork = batch.size() > 1;
      if (cork) SetCork(true);
      while (!batch.empty()) {
        if (!Send(batch.front())) {
          // Put back what was not sent, ahead of anything queued since, then recover.
          std::lock_guard<std::mutex> lock(mu);
          while (!batch.empty()) {
            queue.push_front(std::move(batch.back()));
            batch.pop_back();
          }
          break;
        }
        batch.pop_front();
      }
      if (cork && conn) SetCork(false);
      if (!conn) {
        Lost("publish failed");
        continue;
      }
      Poll();
      // A channel whose oldest publish waits past the confirm timeout is stuck, not slow: seen in
      // tests/cluster on a channel opened while a quorum queue elected its new leader (a node
      // killed under load), which took publishes for minutes and confirmed none. A new connection
      // (and channel) finds the leader; everything unconfirmed goes again (consumers dedupe). The
      // same channel may instead nack every publish while the queue is healthy (seen there in every
      // run, and why: AmqpOptions::nack_timeout): nacks and no confirm for nack_timeout is as
      // stuck.
      const auto now = std::chrono::steady_clock::now();
      if (conn && !unconfirmed.empty() &&
          now - unconfirmed.begin()->second.sent_at > options.confirm_timeout) {
        Lost("no confirm for " + std::to_string(options.confirm_timeout.count()) +
             " ms: the channel is stuck");
      } else if (conn && nacking_since != std::chrono::steady_clock::time_point{} &&
                 now - nacking_since > options.nack_timeout) {
        Lost("every publish nacked for " + std::to_string(options.nack_timeout.count()) +
             " ms: the channel is stuck");
      }
    }
    // Shutting down: everything not confirmed fails.
    std::deque<Pending> rest;
    {
      std::lock_guard<std::mutex> lock(mu);
      rest.swap(queue);
    }
    for (auto& [tag, p] : unconfirmed) Finish(p, PublishOutcome::kUnavailable);
    unconfirmed.clear();
    for (auto& p : rest) Finish(p, PublishOutcome::kUnavailable);
    connected.store(false);
    conn.reset();
  }

  // Waits on the wake fd only (not connected).
  void WaitWake(int timeout_ms) {
    pollfd pfd{wake_fd, POLLIN, 0};
    if (::poll(&pfd, 1, timeout_ms) > 0) DrainWake();
  }

  void SetCork(bool on) {
    int v = on ? 1 : 0;
    ::setsockopt(amqp_get_sockfd(conn->state()), IPPROTO_TCP, TCP_CORK, &v, sizeof(v));
  }

  void DrainWake() {
    uint64_t v;
    ssize_t n = ::read(wake_fd, &v, sizeof(v));
    (void)n;
  }

  bool Send(Pending& p) {
    amqp_connection_state_t st = conn->state();
    uint64_t tag = ++next_tag;
    Table headers;
    for (const auto& [k, v] : p.message.headers) headers.Add(k, v);
    for (const auto& [k, v] : p.message.int_headers) headers.Add(k, v);
    static const std::string kTagKey = kPublishTagHeader;
    headers.Add(kTagKey, static_cast<int64_t>(tag));
    amqp_basic_properties_t props{};
    props._flags =
        AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_HEADERS_FLAG;
    props.content_type = amqp_cstring_bytes(p.message.content_type.c_str());
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    props.headers = headers.table();
    if (!p.message.message_id.empty()) {
      props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
      props.message_id = amqp_cstring_bytes(p.message.message_id.c_str());
    }
    amqp_bytes_t body{p.message.body.size(), const_cast<char*>(p.message.body.data())};
    int rc = amqp_basic_publish(st, kChannel, amqp_cstring_bytes(p.message.exchange.c_str()),
                                amqp_cstring_bytes(p.message.routing_key.c_str()),
                                /*mandatory=*/1, /*immediate=*/0, &props, body);
    if (rc != AMQP_STATUS_OK) {
      LOG(WARNING) << LogCtx{"publisher"}
                   << "event=amqp_publish_failed error=" << amqp_error_string2(rc);
      conn->MarkBroken();
      conn.reset();
      return false;
    }
    published.fetch_add(1);
    p.sent_at = std::chrono::steady_clock::now();
    unconfirmed.emplace(tag, std::move(p));
    uint64_t in_flight = unconfirmed.size();
    uint64_t prev = max_in_flight.load();
    while (in_flight > prev && !max_in_flight.compare_exchange_weak(prev, in_flight)) {
    }
    return true;
  }

  // Waits for broker frames or new work, whichever comes first, then handles what arrived.
  void Poll() {
    amqp_connection_state_t st = conn->state();
    bool readable = amqp_frames_enqueued(st) || amqp_data_in_buffer(st);
    if (!readable) {
      pollfd fds[2] = {{amqp_get_sockfd(st), POLLIN, 0}, {wake_fd, POLLIN, 0}};
      // Awake often enough for the heartbeats and to see a confirm overdue (Run's watchdog).
      int timeout_ms = std::max(
          100, std::min(options.heartbeat_seconds * 250,
                        static_cast<int>(
                            std::min(options.confirm_timeout, options.nack_timeout).count() / 4)));
      if (::poll(fds, 2, timeout_ms) < 0 && errno != EINTR) {
        Lost("poll failed");
        return;
      }
      if (fds[1].revents & POLLIN) DrainWake();
    }
    // Read every complete frame available; a zero timeout also sends a heartbeat when due.
    while (conn) {
      amqp_frame_t frame;
      timeval zero{0, 0};
      int rc = amqp_simple_wait_frame_noblock(st, &frame, &zero);
      if (rc == AMQP_STATUS_TIMEOUT) break;
      if (rc != AMQP_STATUS_OK) {
        Lost(amqp_error_string2(rc));
        return;
      }
      HandleFrame(frame);
    }
    // The frames just handled (confirms, returns) stay in the channel's pool until released, and
    // nothing else releases it: one confirm frame kept for every publish otherwise.
    if (conn) amqp_maybe_release_buffers(conn->state());
  }

  void HandleFrame(const amqp_frame_t& frame) {
    if (frame.frame_type != AMQP_FRAME_METHOD) return;
    amqp_connection_state_t st = conn->state();
    switch (frame.payload.method.id) {
      case AMQP_BASIC_ACK_METHOD: {
        auto* m = static_cast<amqp_basic_ack_t*>(frame.payload.method.decoded);
        Settle(m->delivery_tag, m->multiple, PublishOutcome::kConfirmed);
        break;
      }
      case AMQP_BASIC_NACK_METHOD: {
        auto* m = static_cast<amqp_basic_nack_t*>(frame.payload.method.decoded);
        Settle(m->delivery_tag, m->multiple, PublishOutcome::kNacked);
        break;
      }
      case AMQP_BASIC_RETURN_METHOD: {
        // The returned content follows; its publish tag says which publish it was. The
        // broker's ack for that publish comes after the return.
        amqp_message_t msg;
        Status s =
            CheckReply(amqp_read_message(st, frame.channel, &msg, 0), "read returned message");
        if (!s.ok()) {
          Lost(s.ToString());
          return;
        }
        auto headers = ReadHeaders(msg.properties);
        auto it = headers.find(kPublishTagHeader);
        if (it != headers.end()) returned.insert(std::stoull(it->second));
        amqp_destroy_message(&msg);
        break;
      }
      case AMQP_CHANNEL_CLOSE_METHOD:
      case AMQP_CONNECTION_CLOSE_METHOD: {
        std::string why = CloseReason(frame);
        AnswerClose(st, frame);
        if (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD) {
          // A channel error (e.g. a missing exchange) is about what was in flight: fail it
          // rather than resend it forever.
          for (auto& [tag, p] : unconfirmed) Finish(p, PublishOutcome::kRejected);
          unconfirmed.clear();
        }
        Lost(why);
        break;
      }
      default:
        break;
    }
  }

  void Settle(uint64_t tag, bool multiple, PublishOutcome outcome) {
    // Nacks with no confirm between them: since when (the watchdog in Run).
    if (outcome == PublishOutcome::kNacked) {
      if (nacking_since == std::chrono::steady_clock::time_point{})
        nacking_since = std::chrono::steady_clock::now();
    } else {
      nacking_since = {};
    }
    std::vector<std::pair<uint64_t, Pending>> done;
    if (multiple) {
      auto end = unconfirmed.upper_bound(tag);
      for (auto it = unconfirmed.begin(); it != end; ++it)
        done.emplace_back(it->first, std::move(it->second));
      unconfirmed.erase(unconfirmed.begin(), end);
    } else {
      auto it = unconfirmed.find(tag);
      if (it == unconfirmed.end()) return;
      done.emplace_back(it->first, std::move(it->second));
      unconfirmed.erase(it);
    }
    for (auto& [t, p] : done) {
      PublishOutcome o = outcome;
      if (returned.erase(t)) o = PublishOutcome::kReturned;
      Finish(p, o);
    }
  }

  // Connection lost: unconfirmed publishes go back to the front of the queue, in order, and
  // are sent again after reconnecting.
  void Lost(const std::string& why) {
    LOG(WARNING) << LogCtx{"publisher"} << "event=amqp_connection_lost name=" << options.name
                 << " unconfirmed=" << unconfirmed.size() << " why=" << why;
    connected.store(false);
    nacking_since = {};
    if (conn) {
      conn->MarkBroken();
      conn.reset();
    }
    std::lock_guard<std::mutex> lock(mu);
    for (auto it = unconfirmed.rbegin(); it != unconfirmed.rend(); ++it) {
      queue.push_front(std::move(it->second));
      resent.fetch_add(1);
    }
    unconfirmed.clear();
    returned.clear();
  }
};

Publisher::Publisher(AmqpOptions options, size_t max_pending) : impl_(new Impl) {
  impl_->options = std::move(options);
  impl_->max_pending = max_pending;
  impl_->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  PCHECK(impl_->wake_fd >= 0) << "eventfd";
}

Publisher::~Publisher() {
  Stop();
  ::close(impl_->wake_fd);
}

void Publisher::Start() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->started) return;
  impl_->started = true;
  impl_->thread = std::thread([impl = impl_.get()] { impl->Run(); });
}

void Publisher::Stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (!impl_->started || impl_->stopping) return;
    impl_->stopping = true;
  }
  impl_->Wake();
  impl_->thread.join();
}

void Publisher::Publish(AmqpMessage message, PublishCallback done) {
  // When it was first published: its copies (retries, moves, replays) keep it (queue_waits.h).
  if (!message.headers.count(headers::kPublishedAt)) {
    message.int_headers.emplace(headers::kPublishedAt, UnixMillisNow());
  }
  PublishOutcome refuse = PublishOutcome::kConfirmed;
  bool was_empty = false;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stopping || !impl_->connected.load()) {
      refuse = PublishOutcome::kUnavailable;
    } else if (impl_->outstanding.load() >= impl_->max_pending) {
      refuse = PublishOutcome::kOverloaded;
    } else {
      impl_->outstanding.fetch_add(1);
      was_empty = impl_->queue.empty();
      impl_->queue.push_back({std::move(message), std::move(done)});
    }
  }
  if (refuse != PublishOutcome::kConfirmed) {
    if (done) done(refuse);
    return;
  }
  // The publisher thread takes the whole queue each time round and polls only after sending it:
  // only the first publish into an empty queue has to wake it (one syscall per burst, not per
  // message).
  if (was_empty) impl_->Wake();
}

Status Publisher::PublishAndWait(AmqpMessage message, std::chrono::milliseconds timeout) {
  PublishBatch batch;
  Publish(std::move(message), batch.Add());
  return batch.Wait(std::chrono::steady_clock::now() + timeout);
}

bool Publisher::connected() const { return impl_->connected.load(); }

bool Publisher::WaitConnected(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(impl_->mu);
  return impl_->connected_cv.wait_for(lock, timeout, [&] { return impl_->connected.load(); });
}

PublisherStats Publisher::stats() const {
  PublisherStats s;
  s.published = impl_->published.load();
  s.confirmed = impl_->confirmed.load();
  s.nacked = impl_->nacked.load();
  s.returned = impl_->returned_count.load();
  s.resent = impl_->resent.load();
  s.reconnects = impl_->reconnects.load();
  s.max_in_flight = impl_->max_in_flight.load();
  return s;
}

}  // namespace convoy
