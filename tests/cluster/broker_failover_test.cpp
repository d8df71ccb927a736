// Cluster: three RabbitMQ nodes (tests/cluster/run_cluster_test.sh starts them; the URLs come in
// CONVOY_CLUSTER_AMQP_URLS), convoy's quorum queues with a member on each. A broker node dies
// under convoy's publisher and consumer — killed under load, or killed while a publish waits
// for its confirm — and nothing confirmed is lost: the clients move to a node that answers
// (--amqp_url with the nodes' URLs), what was not confirmed is published again, and consumers
// resume there.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "cluster_env.h"
#include "convoy/amqp.h"
#include "convoy/http.h"
#include "convoy/rapidjson_util.h"
#include "convoy/topology.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;
using test::WaitUntil;

using test::Env;
using test::Infra;

AmqpOptions ClusterOptions(const std::string& name) {
  AmqpOptions o{Env("CONVOY_CLUSTER_AMQP_URLS"), name};
  o.heartbeat_seconds = 2;  // a hung node is noticed in seconds
  o.connect_timeout = 1000ms;
  return o;
}

AmqpMessage Command(const std::string& body) {
  AmqpMessage m;
  m.exchange = exchanges::kCommands;
  m.routing_key = queues::kOutboundSend;
  m.body = body;
  m.message_id = body;
  m.headers[headers::kDedupeKey] = body;
  return m;
}

// The node a connection named `name` is on ("convoy-28672@localhost"), from node `via`'s
// management API; "" when none is listed (yet).
std::string NodeOf(const std::string& name, int via) {
  HttpClientRequest req;
  req.url = "http://127.0.0.1:" +
            std::to_string(std::atoi(Env("CONVOY_AMQP_MGMT_PORT").c_str()) + 100 * (via - 1)) +
            "/api/connections";
  req.headers["Authorization"] = "Basic Z3Vlc3Q6Z3Vlc3Q=";  // guest:guest
  req.timeout = 5000ms;
  auto r = HttpFetch(req);
  if (!r.ok() || r->status != 200) return "";
  rapidjson::Document d;
  d.Parse(r->body.c_str());
  if (!d.IsArray()) return "";
  for (const auto& c : d.GetArray()) {
    if (JsonStr(JsonMember(c, "client_properties"), "connection_name") == name)
      return JsonStr(c, "node");
  }
  return "";
}

// The node a connection named `name` is on, asked of whichever node answers.
std::string NodeOfAny(const std::string& name) {
  for (int via = 1; via <= 3; ++via) {
    std::string node = NodeOf(name, via);
    if (!node.empty()) return node;
  }
  return "";
}

// Everything on outbound.send, consumed through the cluster: the bodies seen, each once or more.
std::multiset<std::string> Drain(const AmqpOptions& o, size_t expect_distinct,
                                 std::vector<std::string>* keys = nullptr) {
  std::mutex mu;
  std::multiset<std::string> seen;
  std::set<std::string> distinct;
  Publisher pub(o);
  pub.Start();
  Consumer consumer(
      {o, queues::kOutboundSend, 200, 5},
      [&](const Delivery& d) {
        std::lock_guard<std::mutex> lock(mu);
        seen.insert(d.body);
        distinct.insert(d.body);
        if (keys) keys->push_back(d.Header(headers::kDedupeKey));
        return Disposition::Ack();
      },
      &pub);
  consumer.Start();
  EXPECT_TRUE(WaitUntil(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return distinct.size() >= expect_distinct;
      },
      120s));
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto left = QueueMessageCount(o, queues::kOutboundSend);
        return left.ok() && *left == 0;
      },
      30s));
  consumer.Stop();
  std::lock_guard<std::mutex> lock(mu);
  return seen;
}

// Every node back and in the cluster after each test, whatever it left paused or dead.
class BrokerCluster : public ::testing::Test {
 protected:
  void TearDown() override {
    for (int n = 1; n <= 3; ++n) {
      const std::string cmd =
          Env("CONVOY_CLUSTER_INFRA") + " resume rabbit " + std::to_string(n) + " >/dev/null 2>&1";
      (void)std::system(cmd.c_str());  // a dead node has nothing to resume
    }
    Infra("start cluster");
  }
};

// Publishes kCount commands as ingress does — a publish the broker did not confirm (nacked while a
// quorum queue elects a new leader, or lost with its connection and not resent in time) is
// published again, as Meta redelivers a webhook that got no 200 — and kills the node the
// publisher is on after a fifth of them.
TEST_F(BrokerCluster, ANodeKilledUnderLoadLosesNoConfirmedPublish) {
  constexpr int kCount = 5000;
  // Before the publisher: its callbacks may run until it is destroyed.
  std::mutex mu;
  std::condition_variable cv;
  std::set<int> confirmed;
  std::vector<int> again;  // not confirmed: published again
  size_t refused = 0;
  std::map<int, size_t> outcomes;  // PublishOutcome -> how many
  AmqpOptions o = ClusterOptions("failover-load");
  Publisher pub(o);
  pub.Start();
  ASSERT_TRUE(pub.WaitConnected(30s));
  std::string node;
  ASSERT_TRUE(WaitUntil([&] { return !(node = NodeOfAny("failover-load")).empty(); }, 30s));
  const int victim = test::ClusterNodeNumber(node);
  std::function<void(int)> publish = [&](int i) {
    pub.Publish(Command("load-" + std::to_string(i)), [&, i](PublishOutcome outcome) {
      std::lock_guard<std::mutex> lock(mu);
      ++outcomes[static_cast<int>(outcome)];
      if (outcome == PublishOutcome::kConfirmed) {
        confirmed.insert(i);
      } else {
        ++refused;
        again.push_back(i);
      }
      cv.notify_all();
    });
  };
  // About 1,000 publishes a second, as webhooks arrive, and the node killed a second in, from
  // another thread: publishes keep coming while its connection dies and the next one opens.
  const auto start = std::chrono::steady_clock::now();
  std::thread killer;
  for (int i = 0; i < kCount; ++i) {
    publish(i);
    if (i == kCount / 5)
      killer = std::thread([victim] { Infra("kill rabbit " + std::to_string(victim)); });
    std::this_thread::sleep_until(start +
                                  std::chrono::microseconds(1000 * (i + 1)));  // the arrival rate
  }
  killer.join();
  const auto deadline = std::chrono::steady_clock::now() + 180s;
  std::unique_lock<std::mutex> lock(mu);
  while (confirmed.size() < static_cast<size_t>(kCount) &&
         std::chrono::steady_clock::now() < deadline) {
    std::vector<int> retry;
    retry.swap(again);
    lock.unlock();
    if (!retry.empty()) {
      std::this_thread::sleep_for(
          200ms);  // a client's backoff before it retries, not a wait for a condition
      for (int i : retry) publish(i);
    }
    lock.lock();
    cv.wait_for(lock, 500ms,
                [&] { return !again.empty() || confirmed.size() == static_cast<size_t>(kCount); });
  }
  std::string tally;
  for (const auto& [outcome, n] : outcomes)
    tally += " " + std::to_string(outcome) + ":" + std::to_string(n);
  ASSERT_EQ(confirmed.size(), static_cast<size_t>(kCount))
      << "every publish confirmed in the end; outcomes" << tally << "; publisher "
      << pub.stats().published << " published, " << pub.stats().reconnects << " reconnects";
  lock.unlock();
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  const auto stats = pub.stats();
  EXPECT_GE(stats.reconnects, 1u);
  auto seen = Drain(o, kCount);
  std::set<std::string> distinct(seen.begin(), seen.end());
  EXPECT_EQ(distinct.size(), static_cast<size_t>(kCount)) << "every confirmed publish is there";
  EXPECT_GT(refused + stats.resent, 0u)
      << "the kill caught publishes on their way (else it proves nothing)";
  std::printf(
      "[ cluster ] node %d killed after %d of %d publishes: all confirmed in %lld ms (%zu refused "
      "and "
      "published again, %llu resent by the publisher); %zu consumed (%zu distinct, %zu "
      "duplicates)\n",
      victim, kCount / 5, kCount, static_cast<long long>(took.count()), refused,
      static_cast<unsigned long long>(stats.resent), seen.size(), distinct.size(),
      seen.size() - distinct.size());
}

// The publish is pinned between publish and confirm: the other two nodes are paused, so no quorum
// can commit it. Its node is killed, the two resumed: the publisher reaches one of them, publishes
// it again, the confirm comes, and it is there. At least once, not exactly once: the first copy
// may sit in a paused follower's socket buffer and be committed by the new leader (Raft keeps
// entries a new majority holds), so the queue may hold it twice — with one dedupe key, which every
// convoy consumer makes an effect of once (the chaos run counts answers, not deliveries).
TEST_F(BrokerCluster, APublishInFlightWhenItsNodeDiesIsNotLost) {
  AmqpOptions o = ClusterOptions("failover-pin");
  Publisher pub(o);
  pub.Start();
  ASSERT_TRUE(pub.WaitConnected(30s));
  std::string node;
  ASSERT_TRUE(WaitUntil([&] { return !(node = NodeOfAny("failover-pin")).empty(); }, 30s));
  const int home = test::ClusterNodeNumber(node);
  std::vector<int> others;
  for (int n = 1; n <= 3; ++n) {
    if (n != home) others.push_back(n);
  }
  for (int n : others) Infra("pause rabbit " + std::to_string(n));
  PublishBatch batch;
  AmqpMessage m = Command("pinned");
  m.headers[headers::kDedupeKey] = "pinned-1";
  pub.Publish(m, batch.Add());
  // Pinned: on the wire, and no confirm comes without a quorum.
  ASSERT_TRUE(WaitUntil([&] { return pub.stats().published >= 1; }, 10s));
  EXPECT_FALSE(batch.Wait(std::chrono::steady_clock::now() + 2s).ok())
      << "confirmed without a quorum";
  EXPECT_EQ(pub.stats().confirmed, 0u);
  EXPECT_EQ(pub.stats().nacked, 0u) << "held, not refused";
  Infra("kill rabbit " + std::to_string(home));
  for (int n : others) Infra("resume rabbit " + std::to_string(n));
  // The publisher resends it on the node it reaches; refused meanwhile (a queue electing its new
  // leader nacks), it is published again, as ingress's caller retries.
  Status confirmed = batch.Wait(std::chrono::steady_clock::now() + 120s);
  int published_again = 0;
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (!confirmed.ok() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(200ms);  // the caller's backoff between retries
    ++published_again;
    confirmed = pub.PublishAndWait(m, 10s);
  }
  ASSERT_TRUE(confirmed.ok()) << confirmed.ToString();
  std::vector<std::string> keys;
  auto seen = Drain(o, 1, &keys);
  EXPECT_GE(seen.count("pinned"), 1u) << "not lost";
  EXPECT_LE(seen.count("pinned"), 2u + published_again)
      << "the first copy and the ones published again, no more";
  for (const auto& k : keys) EXPECT_EQ(k, "pinned-1") << "every copy carries the dedupe key";
  std::printf(
      "[ cluster ] a publish pinned on node %d (nodes %d and %d paused), node killed: confirmed "
      "after "
      "%llu reconnect(s) and %d publish(es) again, delivered %zu time(s) with one dedupe key\n",
      home, others[0], others[1], static_cast<unsigned long long>(pub.stats().reconnects),
      published_again, seen.count("pinned"));
}

}  // namespace
}  // namespace convoy
