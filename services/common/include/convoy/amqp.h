#pragma once
// RabbitMQ through rabbitmq-c, behind plain types. services/common/amqp/ is the only folder that
// includes <amqp.h> (amqp/internal.h lists its files, one per role). A rabbitmq-c connection is
// not thread-safe, so every Publisher and Consumer owns one connection and one thread; other
// threads talk to them through queues.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "convoy/status.h"

namespace convoy {

struct AmqpMessage {
  std::string exchange;
  std::string routing_key;
  std::string body;
  std::string message_id;
  std::string content_type = "application/json";
  std::map<std::string, std::string> headers;
  std::map<std::string, int64_t> int_headers;
};

enum class PublishOutcome {
  kConfirmed,    // the broker took responsibility (persisted, routed)
  kNacked,       // the broker refused it
  kReturned,     // mandatory and unroutable: no queue is bound for it
  kUnavailable,  // not connected, or shutting down
  kOverloaded,   // too many publishes in flight
  kRejected,     // the channel was closed by the broker while it was in flight
};
const char* PublishOutcomeName(PublishOutcome outcome);
Status PublishOutcomeStatus(PublishOutcome outcome);

using PublishCallback = std::function<void(PublishOutcome)>;

// amqps:// always opens TLS (1.2 or later) and verifies the broker: its certificate must chain to
// ca_file (the system's trust store when ca_file is empty) and name the URL's host (a DNS name:
// rabbitmq-c 0.11 matches DNS names, not IP addresses). Nothing turns verification off, and
// amqps:// never falls back to plain.
struct AmqpOptions {
  // amqp://user:pass@host:port/vhost or amqps://...; or the nodes of a cluster, comma-separated:
  // a connection goes to the first that answers, starting with the one that answered last.
  std::string url;
  std::string name = "convoy";
  // When set, they replace the URL's user and password (a deployment keeps a part's generated
  // broker credentials in a Secret of their own, apart from the broker's address).
  std::string username = {}, password = {};
  int heartbeat_seconds = 30;
  std::chrono::milliseconds connect_timeout{3000};
  std::chrono::milliseconds reconnect_delay{500};
  // A publish not confirmed this long means its channel is stuck (a broker node's failover can
  // leave one so): the publisher reconnects and sends everything unconfirmed again.
  std::chrono::milliseconds confirm_timeout{15000};
  // Every publish nacked and none confirmed this long: the channel is replaced as well. RabbitMQ
  // 3.10's quorum queue client nacks a channel's first publish to a queue when the leader it knows
  // is on a node that is down, and keeps that leader: a channel opened while a queue elects a new
  // one after a node's death nacks everything sent to that queue for as long as it lives. A new
  // channel learns the new leader. (A queue really full under reject-publish also nacks; a new
  // connection every nack_timeout then costs little.)
  std::chrono::milliseconds nack_timeout{2000};
  // Declare convoy's topology on every connect (tests and one-process tools). The services do
  // only with --declare_topology: their users may not configure (topology.h BrokerGrants).
  bool declare_topology = true;
  std::string ca_file = "";  // amqps: PEM bundle of the CAs the broker's certificate may chain to
  std::string cert_file =
      "";  // amqps: client certificate (PEM), for a broker that asks for one; with key_file
  std::string key_file = "";  // amqps: the client certificate's private key (PEM, unencrypted)
};

// The TLS settings fit the URL: files readable, a client certificate with its key, and no TLS
// file given for a plain amqp:// URL (a CA for a plain connection means the URL was meant to be
// amqps://). Conn::Open checks the same before it connects.
Status ValidateAmqpOptions(const AmqpOptions& options);

// The URLs of a comma-separated list, spaces around each trimmed, empty ones left out.
std::vector<std::string> AmqpUrls(const std::string& list);

// The URL (each URL of a list) with its password replaced by "***", for logs and messages.
std::string RedactAmqpUrl(const std::string& url);

struct PublisherStats {
  uint64_t published = 0, confirmed = 0, nacked = 0, returned = 0, resent = 0, reconnects = 0;
  uint64_t max_in_flight = 0;  // the most publishes awaiting a confirm at one time
};

// Persistent, mandatory publishes with pipelined publisher confirms: Publish() only queues;
// the publisher thread sends as fast as it can and matches basic.ack/nack (by delivery tag and
// the `multiple` flag) and basic.return back to each callback. On connection loss it
// reconnects, redeclares and resends everything unconfirmed. Callbacks run on the publisher
// thread and must be quick.
class Publisher {
 public:
  explicit Publisher(AmqpOptions options, size_t max_pending = 100000);
  ~Publisher();
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  void Start();
  void Stop();  // fails what is still queued with kUnavailable
  void Publish(AmqpMessage message, PublishCallback done);
  Status PublishAndWait(AmqpMessage message, std::chrono::milliseconds timeout);
  bool connected() const;
  // Waits until the first (or next) connection is up; false on timeout.
  bool WaitConnected(std::chrono::milliseconds timeout) const;
  PublisherStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Waits for the outcomes of many publishes; safe to abandon after a timeout.
class PublishBatch {
 public:
  PublishBatch();
  PublishCallback Add();
  // Ok when every added publish was confirmed before the deadline.
  Status Wait(std::chrono::steady_clock::time_point deadline);

 private:
  struct State;
  std::shared_ptr<State> state_;
};

struct Delivery {
  std::string queue, exchange, routing_key, body, message_id;
  std::map<std::string, std::string> headers;  // string-valued headers
  int attempt = 0;                             // x-attempt: how many times it failed before
  bool redelivered = false;
  std::string Header(const std::string& name) const;
};

struct Disposition {
  // kRetry: a failure, counted in x-attempt, back after the attempt's tier (at least delay_ms).
  // kDelay: not a failure (a rate limit's wait, an outcome still being reconciled): back after
  // the smallest tier of at least delay_ms, x-attempt unchanged.
  enum class Kind { kAck, kRetry, kDelay, kDeadLetter };
  Kind kind = Kind::kAck;
  std::string reason;
  int64_t delay_ms = 0;
  int code = 0;  // the failure's own code (a Graph error.code): header x-last-error-code
  // Headers to set on the message that goes back (an empty value removes one): state a handler
  // keeps with the message across delays, such as a reserved send slot.
  std::map<std::string, std::string> headers;
  static Disposition Ack() { return {Kind::kAck, "", 0, 0, {}}; }
  static Disposition Retry(std::string why, int64_t min_delay_ms = 0, int code = 0) {
    return {Kind::kRetry, std::move(why), min_delay_ms, code, {}};
  }
  static Disposition Delay(std::string why, int64_t delay_ms) {
    return {Kind::kDelay, std::move(why), delay_ms, 0, {}};
  }
  static Disposition DeadLetter(std::string why, int code = 0) {
    return {Kind::kDeadLetter, std::move(why), 0, code, {}};
  }
};

// The ack contract: ok → ack; transient failure (Code::kUnavailable/kTimeout) → retry tier;
// anything else → dead letter with the reason.
Disposition DispositionFor(const Status& status);

using DeliveryHandler = std::function<Disposition(const Delivery&)>;
// Several deliveries at once (those the broker already sent, up to ConsumerOptions::batch); one
// disposition per delivery, in the same order.
using BatchHandler = std::function<std::vector<Disposition>(const std::vector<Delivery>&)>;

// A consumer whose handler decides when to give up (a retry budget in time) counts no attempts.
constexpr int kUnlimitedAttempts = 1 << 30;

struct ConsumerOptions {
  AmqpOptions amqp;
  std::string queue;
  int prefetch = 32;
  int max_attempts = 5;  // a message that failed this often is dead-lettered
  int batch = 1;  // a batch handler gets at most this many deliveries at once (never waits to fill)
  // When set, these queues are consumed (on one channel) instead of `queue`, which then only names
  // them in logs: partitions of the work queue `queue` (topology.h PartitionedQueue). Each
  // delivery's Delivery::queue is the queue it came from; its retries, delays and parking go
  // through its work queue's (WorkQueueOf).
  std::vector<std::string> queues = {};
  // When shares > 0 (and queues is empty): `queue` is a partitioned work queue, and this consumer
  // reads its partitions i with i % shares == share, found on the broker at each connect
  // (DiscoverQueues), so it always reads what convoy-topology declared there.
  int share = 0, shares = 0;
  // How long a retry's, delay's or parking's copy the broker refuses is tried again, its original
  // kept unacked, before the original is handed back (each return counts toward the queue's
  // delivery limit).
  std::chrono::milliseconds republish_patience{120000};
};

struct ConsumerStats {
  uint64_t delivered = 0, acked = 0, retried = 0, delayed = 0, dead_lettered = 0, reconnects = 0;
  uint64_t republish_waits = 0;  // waits for a refused copy to be taken (RepublishPatiently)
};

// Manual-ack consumer on its own thread and connection. Retries and dead letters are
// republished through `republisher` and acked only after the broker confirmed them.
class Consumer {
 public:
  Consumer(ConsumerOptions options, DeliveryHandler handler, Publisher* republisher);
  Consumer(ConsumerOptions options, BatchHandler handler, Publisher* republisher);
  ~Consumer();
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  void Start();
  void Stop();  // returns after the thread has finished its current delivery
  bool connected() const;
  ConsumerStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Opens a connection, declares the topology and closes; for tools and tests.
Status DeclareConvoyTopology(const AmqpOptions& options);

// The queues a work queue's consumers read: a partitioned one's partitions as they exist on the
// broker ("<queue>.0", "<queue>.1", ... up to the first that does not exist; passive declares on a
// channel of their own), any other the queue itself. kNotFound when a partitioned queue has none.
Result<std::vector<std::string>> DiscoverQueues(const AmqpOptions& options,
                                                const std::string& work_queue);

// Tools and tests: the number of ready messages in a queue (passive declare: exact, unlike the
// management API's sampled statistics), and up to `max` messages taken off it with basic.get. A
// partitioned work queue's name stands for all its partitions on the broker.
Result<uint32_t> QueueMessageCount(const AmqpOptions& options, const std::string& queue);
Result<std::vector<Delivery>> TakeMessages(const AmqpOptions& options, const std::string& queue,
                                           size_t max);

}  // namespace convoy
