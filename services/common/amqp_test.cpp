// Integration: a real RabbitMQ, one vhost per test.
#include "convoy/amqp.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "convoy/amqp_admin.h"
#include "convoy/http.h"
#include "convoy/topology.h"
#include "tcp_proxy.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;
using test::TestVhost;
using test::WaitUntil;

std::string web_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '.' || c == '-' || c == '_') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

AmqpMessage InboundMessage(int i) {
  AmqpMessage m;
  m.exchange = exchanges::kInbound;
  m.routing_key = "message";
  m.body = "{\"n\":" + std::to_string(i) + "}";
  m.message_id = "wamid." + std::to_string(i);
  m.headers[headers::kDedupeKey] = m.message_id;
  m.headers[headers::kConversationKey] = "pnid:" + std::to_string(i % 50);  // as ingress sets it
  return m;
}

TEST(Publisher, KeepsConfirmsPipelinedAndEveryConfirmedMessageIsQueued) {
  TestVhost vhost("amqp_pipeline");
  AmqpOptions o{vhost.url(), "test-publisher"};
  Publisher pub(o);
  pub.Start();
  ASSERT_TRUE(pub.WaitConnected(20s));
  constexpr int kCount = 5000;
  PublishBatch batch;
  for (int i = 0; i < kCount; ++i) pub.Publish(InboundMessage(i), batch.Add());
  ASSERT_TRUE(batch.Wait(std::chrono::steady_clock::now() + 60s).ok());
  auto stats = pub.stats();
  EXPECT_EQ(stats.confirmed, static_cast<uint64_t>(kCount));
  // Waiting for each confirm alone would never have more than one in flight.
  EXPECT_GT(stats.max_in_flight, 50u) << "confirms are not pipelined";
  auto count = QueueMessageCount(o, queues::kConversationInbound);
  ASSERT_TRUE(count.ok()) << count.status().ToString();
  EXPECT_EQ(*count, static_cast<uint32_t>(kCount));
}

TEST(Publisher, UnroutableMandatoryPublishIsAFailureNotAConfirm) {
  TestVhost vhost("amqp_return");
  Publisher pub(AmqpOptions{vhost.url(), "test-return"});
  pub.Start();
  ASSERT_TRUE(pub.WaitConnected(20s));
  AmqpMessage m = InboundMessage(1);
  m.exchange = exchanges::kCommands;
  m.routing_key = "no.such.command";
  Status s = pub.PublishAndWait(m, 10s);
  EXPECT_EQ(s.code(), Code::kRejected) << s.ToString();
  EXPECT_EQ(pub.stats().returned, 1u);
  // The channel stays usable.
  EXPECT_TRUE(pub.PublishAndWait(InboundMessage(2), 10s).ok());
}

TEST(Publisher, PublishWhileDisconnectedFailsFastInsteadOfHanging) {
  Publisher pub(AmqpOptions{"amqp://guest:guest@127.0.0.1:1/%2f", "test-down"});
  pub.Start();
  auto start = std::chrono::steady_clock::now();
  Status s = pub.PublishAndWait(InboundMessage(1), 5s);
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

// "amqp://host:5672/" names the empty vhost (the URI spec): refused by the broker, and the error
// says how to write RabbitMQ's default vhost.
TEST(Publisher, AnEmptyVhostIsRefusedWithAHintForTheDefaultOne) {
  test::TestVhost vhost("amqp_empty_vhost");
  std::string url = vhost.url();
  url = url.substr(0, url.rfind('/') + 1);
  Status s = DeclareConvoyTopology({url, "test-empty-vhost"});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("login to vhost \"\""), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("%2f"), std::string::npos) << s.ToString();
  EXPECT_TRUE(DeclareConvoyTopology({vhost.url(), "test-vhost"}).ok());
}

TEST(Consumer, AcksRetriesThroughADelayTierAndDeadLettersWithTheReason) {
  TestVhost vhost("amqp_consumer");
  AmqpOptions o{vhost.url(), "test-consumer"};
  Publisher pub(o);
  pub.Start();
  ASSERT_TRUE(pub.WaitConnected(20s));
  std::atomic<int> seen_ok{0}, seen_retry_attempt1{0};
  ConsumerOptions co{o, queues::kOutboundSend, 16, 5};
  Consumer consumer(
      co,
      [&](const Delivery& d) {
        if (d.body == "poison") return Disposition::DeadLetter("schema: poison");
        if (d.body == "flaky") {
          if (d.attempt == 0) return Disposition::Retry("unavailable: try later");
          seen_retry_attempt1 += d.attempt == 1;
          return Disposition::Ack();
        }
        ++seen_ok;
        return Disposition::Ack();
      },
      &pub);
  consumer.Start();
  for (const char* body : {"fine", "poison", "flaky"}) {
    AmqpMessage m;
    m.exchange = exchanges::kCommands;
    m.routing_key = queues::kOutboundSend;
    m.body = body;
    m.headers[headers::kCorrelationId] = "corr-1";
    ASSERT_TRUE(pub.PublishAndWait(m, 10s).ok());
  }
  ASSERT_TRUE(WaitUntil([&] { return seen_ok == 1 && seen_retry_attempt1 == 1; }, 20s));
  auto dlq = test::WaitUntil(
      [&] {
        auto c = QueueMessageCount(o, std::string(queues::kOutboundSend) + ".dlq");
        return c.ok() && *c == 1;
      },
      10s);
  ASSERT_TRUE(dlq);
  auto parked = TakeMessages(o, std::string(queues::kOutboundSend) + ".dlq", 10);
  ASSERT_TRUE(parked.ok());
  ASSERT_EQ(parked->size(), 1u);
  EXPECT_EQ((*parked)[0].body, "poison");
  EXPECT_EQ((*parked)[0].Header(headers::kDeathReason), "schema: poison");
  EXPECT_EQ((*parked)[0].Header(headers::kCorrelationId), "corr-1");
  consumer.Stop();
  auto stats = consumer.stats();
  EXPECT_EQ(stats.dead_lettered, 1u);
  EXPECT_EQ(stats.retried, 1u);
  auto left = QueueMessageCount(o, queues::kOutboundSend);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(*left, 0u);
}

// The broker refuses a delay's copy for a while (its tier unroutable here, as a tier's queue is
// while it has no leader after its node died): the consumer keeps the original unacked and tries
// the copy again. Handed back at once, as it used to be, the message came straight back, failed
// the same way and was returned 10 times in well under a second, past the queue's delivery limit:
// the broker parked it with no reason though it had failed nothing.
TEST(Consumer, ACopyTheBrokerRefusesIsTriedAgainInsteadOfReturnedUntilParked) {
  TestVhost vhost("amqp_refused");
  AmqpOptions o{vhost.url(), "test-refused"};
  Publisher pub(o);
  pub.Start();
  ASSERT_TRUE(pub.WaitConnected(20s));
  AmqpAdmin admin;
  ASSERT_TRUE(admin.Open(o).ok());
  const std::string tier = DelayRoutingKey(queues::kOutboundSend, 1000);
  const BindingSpec binding{exchanges::kRetry, tier, tier};
  std::atomic<int> handled{0}, after_delay{0};
  ConsumerOptions co{o, queues::kOutboundSend, 16, 5};
  Consumer consumer(
      co,
      [&](const Delivery& d) {
        ++handled;
        if (d.Header("x-delay-reason").empty()) return Disposition::Delay("wait a second", 1000);
        ++after_delay;
        return Disposition::Ack();
      },
      &pub);
  consumer.Start();
  // Unbound once the consumer declared the topology (it binds every tier when it connects).
  ASSERT_TRUE(WaitUntil([&] { return consumer.connected(); }, 20s));
  ASSERT_TRUE(admin.Unbind(binding).ok());
  AmqpMessage m;
  m.exchange = exchanges::kCommands;
  m.routing_key = queues::kOutboundSend;
  m.body = "delayed";
  ASSERT_TRUE(pub.PublishAndWait(m, 10s).ok());
  // Refused several times (or, handed back, handled again and again).
  ASSERT_TRUE(
      WaitUntil([&] { return consumer.stats().republish_waits >= 3 || handled >= 11; }, 20s))
      << "handled " << handled << ", delayed " << consumer.stats().delayed;
  ASSERT_TRUE(admin.Bind(binding).ok());
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto parked = QueueMessageCount(o, std::string(queues::kOutboundSend) + ".dlq");
        return after_delay == 1 || (parked.ok() && *parked > 0);
      },
      20s));
  consumer.Stop();
  EXPECT_EQ(after_delay, 1);
  EXPECT_EQ(handled, 2) << "handled once, then once after its delay";
  auto parked = QueueMessageCount(o, std::string(queues::kOutboundSend) + ".dlq");
  ASSERT_TRUE(parked.ok());
  EXPECT_EQ(*parked, 0u);
  EXPECT_GE(consumer.stats().republish_waits, 3u);
  EXPECT_EQ(consumer.stats().delayed, 1u);
}

TEST(Consumer, GivesUpAfterMaxAttempts) {
  TestVhost vhost("amqp_giveup");
  AmqpOptions o{vhost.url(), "test-giveup"};
  Publisher pub(o);
  pub.Start();
  ASSERT_TRUE(pub.WaitConnected(20s));
  std::atomic<int> calls{0};
  // max_attempts=2: the first failure goes to the 1 s tier, the second is parked.
  Consumer consumer(
      ConsumerOptions{o, queues::kMediaFetch, 4, 2},
      [&](const Delivery&) {
        ++calls;
        return Disposition::Retry("unavailable: always");
      },
      &pub);
  consumer.Start();
  AmqpMessage m;
  m.exchange = exchanges::kCommands;
  m.routing_key = queues::kMediaFetch;
  m.body = "x";
  ASSERT_TRUE(pub.PublishAndWait(m, 10s).ok());
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto c = QueueMessageCount(o, std::string(queues::kMediaFetch) + ".dlq");
        return c.ok() && *c == 1;
      },
      20s));
  EXPECT_EQ(calls.load(), 2);
  auto parked = TakeMessages(o, std::string(queues::kMediaFetch) + ".dlq", 1);
  ASSERT_TRUE(parked.ok() && parked->size() == 1);
  EXPECT_NE((*parked)[0].Header(headers::kDeathReason).find("gave up after 2 attempts"),
            std::string::npos);
}

// Bytes this process has taken from malloc, in its arenas and in chunks of their own.
size_t HeapInUse() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

// A steady load, each delivery arriving while the consumer waits for the next (what a service
// keeping up with Meta's traffic sees): the frames librabbitmq read for each delivery must be
// given back. They were kept until the consumer found itself idle with no ack pending, which a
// steady load never gives it: 2,000 deliveries of 4 KB kept 9.6 MB, 4.8 KB each.
TEST(Consumer, ASteadyLoadKeepsNoFrameOfTheDeliveriesItHandled) {
  TestVhost vhost("amqp_frames");
  AmqpOptions o{vhost.url(), "test-frames"};
  Publisher pub(o);
  pub.Start();
  ASSERT_TRUE(pub.WaitConnected(20s));
  std::atomic<int> handled{0};
  Consumer consumer(
      ConsumerOptions{o, queues::kMediaFetch, 16, 5},
      [&](const Delivery&) {
        ++handled;
        return Disposition::Ack();
      },
      &pub);
  consumer.Start();
  AmqpMessage m;
  m.exchange = exchanges::kCommands;
  m.routing_key = queues::kMediaFetch;
  m.body = std::string(4096, 'x');
  auto send_one_by_one = [&](int count) {
    for (int i = 0; i < count; ++i) {
      const int before = handled.load();
      if (!pub.PublishAndWait(m, 10s).ok()) return false;
      if (!WaitUntil([&] { return handled.load() > before; }, 10s)) return false;
    }
    return true;
  };
  ASSERT_TRUE(send_one_by_one(200));  // warm-up: the pools and buffers every connection keeps
  const size_t warm = HeapInUse();
  constexpr int kDeliveries = 1000;
  ASSERT_TRUE(send_one_by_one(kDeliveries));
  const size_t grown = HeapInUse() > warm ? HeapInUse() - warm : 0;
  consumer.Stop();
  EXPECT_EQ(handled.load(), 200 + kDeliveries);
  // Kept frames would be more than the bodies: 1,000 x 4 KB = 4 MB. A quarter of one body per
  // delivery is far above any noise of the test's own threads.
  EXPECT_LT(grown, kDeliveries * m.body.size() / 4)
      << "the consumer kept " << grown / kDeliveries << " bytes per delivery it handled";
}

// A batch consumer gets the deliveries already waiting (never more than `batch`, never waiting
// to fill one), and settles each by its own disposition.
TEST(Consumer, BatchHandlerGetsWaitingDeliveriesAndSettlesEachOnItsOwn) {
  TestVhost vhost("amqp_batch");
  AmqpOptions o{vhost.url(), "test-batch"};
  Publisher pub(o);
  pub.Start();
  ASSERT_TRUE(pub.WaitConnected(20s));
  constexpr int kMessages = 40;
  PublishBatch published;
  for (int i = 0; i < kMessages; ++i) {
    AmqpMessage m;
    m.exchange = exchanges::kCommands;
    m.routing_key = queues::kMediaUpload;
    m.body = i == 7 ? "poison" : "m" + std::to_string(i);
    pub.Publish(m, published.Add());
  }
  ASSERT_TRUE(published.Wait(std::chrono::steady_clock::now() + 20s).ok());
  std::mutex mu;
  std::vector<size_t> sizes;
  std::set<std::string> seen;
  Consumer consumer(ConsumerOptions{o, queues::kMediaUpload, 32, 5, 8},
                    BatchHandler([&](const std::vector<Delivery>& batch) {
                      std::lock_guard<std::mutex> lock(mu);
                      sizes.push_back(batch.size());
                      std::vector<Disposition> out;
                      for (const auto& d : batch) {
                        seen.insert(d.body);
                        out.push_back(d.body == "poison" ? Disposition::DeadLetter("schema: poison")
                                                         : Disposition::Ack());
                      }
                      return out;
                    }),
                    &pub);
  consumer.Start();
  ASSERT_TRUE(WaitUntil([&] { return consumer.stats().acked == kMessages; }, 20s))
      << consumer.stats().acked;
  consumer.Stop();
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(seen.size(), size_t(kMessages));
  EXPECT_LE(*std::max_element(sizes.begin(), sizes.end()), 8u);
  EXPECT_GT(*std::max_element(sizes.begin(), sizes.end()), 1u)
      << "preloaded deliveries come in batches";
  EXPECT_EQ(consumer.stats().dead_lettered, 1u);
  auto parked = QueueMessageCount(o, std::string(queues::kMediaUpload) + ".dlq");
  ASSERT_TRUE(parked.ok());
  EXPECT_EQ(*parked, 1u);
  auto left = QueueMessageCount(o, queues::kMediaUpload);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(*left, 0u);
}

// With a 1 s heartbeat the broker closes a connection that stays silent for ~2 s; an idle
// publisher must keep sending heartbeats by itself.
TEST(Publisher, HeartbeatsAreServicedWhileIdle) {
  TestVhost vhost("amqp_heartbeat");
  AmqpOptions o{vhost.url(), "test-heartbeat"};
  o.heartbeat_seconds = 1;
  Publisher pub(o);
  pub.Start();
  ASSERT_TRUE(pub.WaitConnected(20s));
  // Idle time is the input of this test, not a stand-in for a condition.
  std::this_thread::sleep_for(5s);
  EXPECT_TRUE(pub.PublishAndWait(InboundMessage(1), 5s).ok());
  EXPECT_EQ(pub.stats().reconnects, 0u)
      << "the broker dropped an idle connection: heartbeats not sent";
}

// The broker (or a network fault) kills the connection while publishes are in flight: the
// publisher reconnects, redeclares, resends what was unconfirmed, and every publish ends
// confirmed.
TEST(Publisher, ReconnectsAndResendsEverythingUnconfirmed) {
  TestVhost vhost("amqp_reconnect");
  AmqpOptions o{vhost.url(), "test-reconnect-" + vhost.name()};
  Publisher pub(o);
  pub.Start();
  ASSERT_TRUE(pub.WaitConnected(20s));
  auto close_connections = [&] {
    HttpClientRequest list;
    list.url = test::RabbitMgmtUrl() + "/api/vhosts/" + vhost.name() + "/connections";
    list.headers["Authorization"] = "Basic Z3Vlc3Q6Z3Vlc3Q=";
    auto r = HttpFetch(list);
    if (!r.ok() || r->status != 200) return 0;
    int closed = 0;
    // "name":"127.0.0.1:PORT -> 127.0.0.1:PORT"
    for (size_t at = r->body.find("\"name\":\""); at != std::string::npos;
         at = r->body.find("\"name\":\"", at + 1)) {
      size_t start = at + 8, end = r->body.find('"', start);
      std::string name = r->body.substr(start, end - start);
      if (name.find("->") == std::string::npos) continue;
      HttpClientRequest del;
      del.method = "DELETE";
      del.url = test::RabbitMgmtUrl() + "/api/connections/" + web_escape(name);
      del.headers["Authorization"] = list.headers["Authorization"];
      auto d = HttpFetch(del);
      closed += d.ok() && d->status / 100 == 2;
    }
    return closed;
  };
  ASSERT_TRUE(WaitUntil([&] { return close_connections() > 0; }, 20s)) << "no connection listed";
  ASSERT_TRUE(WaitUntil([&] { return pub.stats().reconnects >= 1 && pub.connected(); }, 20s));
  // Now kill it again with 3000 publishes in flight.
  constexpr int kCount = 3000;
  PublishBatch batch;
  for (int i = 0; i < kCount; ++i) pub.Publish(InboundMessage(i), batch.Add());
  close_connections();
  ASSERT_TRUE(batch.Wait(std::chrono::steady_clock::now() + 60s).ok());
  EXPECT_EQ(pub.stats().confirmed, static_cast<uint64_t>(kCount));
  auto count = QueueMessageCount(o, queues::kConversationInbound);
  ASSERT_TRUE(count.ok());
  // At least once: a message confirmed late may have been routed before the cut and resent.
  EXPECT_GE(*count, static_cast<uint32_t>(kCount));
}

// The broker as a list of nodes: the first is down (nothing listens) and the second hung (it
// accepts the connection and never speaks, as a SIGSTOPped node does); the publisher and the
// consumer go on to the node that answers, within the connect timeout per dead node, and every
// publish is confirmed and consumed.
TEST(Publisher, AListOfNodesConnectsToTheOneThatAnswers) {
  TestVhost vhost("amqp_nodes");
  auto listener = [](bool listen) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    if (listen) ::listen(fd, 16);
    return std::make_pair(fd, static_cast<int>(ntohs(addr.sin_port)));
  };
  auto [down_fd, down_port] = listener(false);  // bound, not listening: connection refused
  auto [hung_fd, hung_port] = listener(true);   // the kernel accepts; nobody answers
  const std::string real = vhost.url();
  const std::string path = real.substr(real.rfind('/'));
  AmqpOptions o{"amqp://guest:guest@127.0.0.1:" + std::to_string(down_port) + path +
                    ", amqp://guest:guest@127.0.0.1:" + std::to_string(hung_port) + path + "," +
                    real,
                "test-nodes"};
  o.connect_timeout = 500ms;
  Publisher pub(o);
  pub.Start();
  ASSERT_TRUE(pub.WaitConnected(20s));
  constexpr int kCount = 200;
  PublishBatch batch;
  for (int i = 0; i < kCount; ++i) {
    AmqpMessage m;
    m.exchange = exchanges::kCommands;
    m.routing_key = queues::kOutboundSend;
    m.body = std::to_string(i);
    pub.Publish(m, batch.Add());
  }
  ASSERT_TRUE(batch.Wait(std::chrono::steady_clock::now() + 30s).ok());
  std::mutex mu;
  std::set<std::string> seen;
  Consumer consumer(
      {o, queues::kOutboundSend, 50, 5},
      [&](const Delivery& d) {
        std::lock_guard<std::mutex> lock(mu);
        seen.insert(d.body);
        return Disposition::Ack();
      },
      &pub);
  consumer.Start();
  EXPECT_TRUE(WaitUntil(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return seen.size() == kCount;
      },
      30s));
  consumer.Stop();
  // Only the hung node: the connection fails within the timeout, naming the nodes tried.
  AmqpAdmin admin;
  AmqpOptions dead = o;
  dead.url = "amqp://guest:guest@127.0.0.1:" + std::to_string(down_port) + path +
             ",amqp://guest:guest@127.0.0.1:" + std::to_string(hung_port) + path;
  const auto start = std::chrono::steady_clock::now();
  Status s = admin.Open(dead);
  EXPECT_FALSE(s.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_NE(s.message().find("no broker node of 2 answered"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find("guest:guest"), std::string::npos) << "no password in the error";
  ::close(down_fd);
  ::close(hung_fd);
}

// A channel that takes publishes and never confirms one (seen after a cluster node's failover:
// tests/cluster) is replaced: the oldest publish waits past the confirm timeout, the publisher
// reconnects and sends it again, and the confirm comes on the new channel. Heartbeats would not
// catch it: the connection is alive (here the broker's side is held by a proxy, as the stuck
// channel's confirms are held by the broker).
TEST(Publisher, AChannelThatNeverConfirmsIsReplacedAndItsPublishesSentAgain) {
  TestVhost vhost("amqp_stuck");
  const std::string base = test::AmqpBaseUrl();
  test::TcpProxy proxy(std::atoi(base.substr(base.rfind(':') + 1).c_str()));
  ASSERT_TRUE(proxy.Start());
  AmqpOptions o{
      base.substr(0, base.rfind(':') + 1) + std::to_string(proxy.port()) + "/" + vhost.name(),
      "test-stuck"};
  o.heartbeat_seconds = 120;  // not what finds it
  o.confirm_timeout = 1000ms;
  Publisher pub(o);
  pub.Start();
  ASSERT_TRUE(pub.WaitConnected(20s));
  AmqpMessage m;
  m.exchange = exchanges::kCommands;
  m.routing_key = queues::kOutboundSend;
  m.body = "before";
  ASSERT_TRUE(pub.PublishAndWait(m, 10s).ok());
  proxy.HoldReplies();
  m.body = "stuck";
  PublishBatch batch;
  pub.Publish(m, batch.Add());
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(batch.Wait(std::chrono::steady_clock::now() + 20s).ok())
      << "confirmed on a new channel";
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 1000ms) << "not before the confirm timeout";
  EXPECT_EQ(pub.stats().reconnects, 1u);
  EXPECT_GE(pub.stats().resent, 1u);
  auto parked =
      TakeMessages(AmqpOptions{vhost.url(), "test-stuck-check"}, queues::kOutboundSend, 10);
  ASSERT_TRUE(parked.ok());
  std::set<std::string> bodies;
  for (const auto& d : *parked) bodies.insert(d.body);
  EXPECT_EQ(bodies, (std::set<std::string>{"before", "stuck"}));
}

// The other face of a stuck channel: every publish nacked, none confirmed, for longer than the
// nack timeout (2 s; AmqpOptions says why). Here a full queue (reject-publish) nacks them for real;
// the publisher tries a new connection (which a stuck channel needs, and which costs a full queue
// nothing).
TEST(Publisher, NacksWithNoConfirmForLongerThanTheNackTimeoutMakeANewConnection) {
  TestVhost vhost("amqp_nacked");
  AmqpOptions o{vhost.url(), "test-nacked"};
  o.nack_timeout = 1000ms;  // the confirm timeout stays 15 s: nacks are not waited out that long
  AmqpAdmin admin;
  ASSERT_TRUE(admin.Open(o).ok());
  ASSERT_TRUE(
      admin.DeclareQueue({"full", {{"x-overflow", "reject-publish"}}, {{"x-max-length", 1}}}).ok());
  Publisher pub(o);
  pub.Start();
  ASSERT_TRUE(pub.WaitConnected(20s));
  AmqpMessage m;
  m.routing_key = "full";
  m.body = "first";
  ASSERT_TRUE(pub.PublishAndWait(m, 10s).ok());
  m.body = "more";
  const auto start = std::chrono::steady_clock::now();
  size_t nacked = 0;
  while (pub.stats().reconnects == 0 && std::chrono::steady_clock::now() - start < 20s) {
    Status s = pub.PublishAndWait(m, 10s);
    nacked += !s.ok();
  }
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(pub.stats().reconnects, 1u) << nacked << " nacked";
  EXPECT_GE(took, 1000ms) << "not before the timeout";
  EXPECT_LT(took, 10s) << "after the nack timeout, not the confirm timeout";
  EXPECT_GT(nacked, 0u);
}

}  // namespace
}  // namespace convoy
