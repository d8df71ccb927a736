// The chaos run (scripts/chaos.sh N): N conversations, each from its own user (one in five
// writes twice), each webhook delivered twice in a shuffled order by a Meta-like client that
// retries every non-200 with backoff; the Graph API failing sends at random (503 and 130429); and
// mid-stream every service killed with kill -9 twice and restarted, the broker killed once,
// PostgreSQL crash-restarted once. It ends by printing accepted / answered once / answered twice /
// parked / lost and fails unless nothing was lost, nothing answered twice and nothing parked; and
// unless each conversation's replies reached Graph in the order the conversation wrote them (outbox
// order). One user in ten of those who write once asks for a person ("agent"): the bot's
// acknowledgement is their reply, the business's inbox (a fake receiver) is told once, and an agent
// answers each of them through the API while the faults strike — every answer posted twice with one
// Idempotency-Key, retried while conversation is down — and each answer reaches Graph once.
//
// Settings from the environment (scripts/chaos.sh sets them): CONVOY_CHAOS_CONVERSATIONS (1000),
// CONVOY_CHAOS_RATE (POSTs per second, 400), CONVOY_CHAOS_SEED (1), CONVOY_CHAOS_DRAIN_SECONDS
// (300). It kills the broker and the database, so it runs only where the test owns them
// (CONVOY_RUN_DIR set by scripts/test.sh or scripts/chaos.sh).
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <queue>
#include <random>
#include <sstream>
#include <thread>

#include "convoy/amqp.h"
#include "convoy/json.h"
#include "convoy/pg.h"
#include "convoy/rapidjson_util.h"
#include "convoy/topology.h"
#include "deliveries.h"
#include "fake_sink.h"
#include "stack.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

int Infra(const std::string& args) {
  return std::system(
      ("bash " + test::SourcePath("scripts/infra.sh") + " " + args + " >&2").c_str());
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Meta's side of the webhooks: every update delivered twice, in a shuffled order, at a fixed
// rate; a POST not answered 200 (a 503, a refused connection while ingress is down) is retried
// with backoff (1, 2, 4, 8, 16 s), as Meta retries.
class MetaClient {
 public:
  MetaClient(test::Stack& stack, std::vector<std::string> bodies, int rate, uint32_t seed)
      : stack_(stack), bodies_(std::move(bodies)), accepted_(bodies_.size() / 2) {
    std::vector<size_t> order;
    for (size_t i = 0; i < bodies_.size(); ++i) order.push_back(i);
    std::shuffle(order.begin(), order.end(), std::mt19937(seed));
    const auto start = Clock::now();
    for (size_t k = 0; k < order.size(); ++k) {
      due_.push(
          {start + std::chrono::microseconds(static_cast<int64_t>(1e6 * k / rate)), order[k], 0});
    }
    for (int t = 0; t < 8; ++t) threads_.emplace_back([this] { Run(); });
  }
  ~MetaClient() { Join(); }
  void Join() {
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  // Update i (0..N-1) was acknowledged with a 200 at least once.
  bool Accepted(size_t i) const { return accepted_[i].load(); }
  size_t Posts() const { return posts_.load(); }
  Clock::time_point LastPost() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_post_;
  }
  size_t Retries() const { return retries_.load(); }

 private:
  struct Post {
    Clock::time_point due;
    size_t body;
    int attempt;
    bool operator>(const Post& o) const { return due > o.due; }
  };

  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!due_.empty() || in_flight_ > 0) {
      if (due_.empty()) {
        cv_.wait(lock);  // a POST in flight may come back for a retry
        continue;
      }
      Post p = due_.top();
      if (p.due > Clock::now()) {
        cv_.wait_until(lock, p.due);  // the schedule: this POST is not due yet
        continue;
      }
      due_.pop();
      ++in_flight_;
      lock.unlock();
      int status = stack_.PostUpdate(bodies_[p.body]);
      posts_.fetch_add(1);
      lock.lock();
      last_post_ = Clock::now();
      --in_flight_;
      if (status == 200) {
        accepted_[p.body % accepted_.size()].store(true);
      } else if (p.attempt < 12) {
        retries_.fetch_add(1);
        due_.push({Clock::now() + std::chrono::seconds(1 << std::min(p.attempt, 4)), p.body,
                   p.attempt + 1});
      }
      cv_.notify_all();
    }
    cv_.notify_all();
  }

  test::Stack& stack_;
  std::vector<std::string> bodies_;
  std::vector<std::atomic<bool>> accepted_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  Clock::time_point last_post_;
  std::priority_queue<Post, std::vector<Post>, std::greater<Post>> due_;
  int in_flight_ = 0;
  std::atomic<size_t> posts_{0}, retries_{0};
  std::vector<std::thread> threads_;
};

// The business's agents: each conversation handed to a person (owner human in the database) gets
// one answer through POST /v1/conversations/{id}/messages, posted twice with the same
// Idempotency-Key; a POST that is not answered 2xx (conversation killed, the database down) is
// tried again after a second, as a person clicks again.
class Agents {
 public:
  Agents(test::Stack& stack, std::string dsn, size_t expected)
      : stack_(stack), dsn_(std::move(dsn)), expected_(expected), thread_([this] { Run(); }) {}
  ~Agents() { Stop(); }
  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  size_t Answered() const { return answered_.load(); }
  size_t Posts() const { return posts_.load(); }
  // Conversations answered (both POSTs 2xx), by the customer's phone.
  std::vector<std::string> AnsweredPhones() const {
    std::lock_guard<std::mutex> lock(mu_);
    return phones_;
  }

 private:
  int Post(const std::string& id) {
    HttpClientRequest req;
    req.method = "POST";
    req.url = stack_.Url("conversation", "/v1/conversations/" + id + "/messages");
    req.body = R"({"text": "Hello, this is Sam from the team."})";
    req.headers["Authorization"] = std::string("Bearer ") + test::kAdminToken;
    req.headers["Content-Type"] = "application/json";
    req.headers["Idempotency-Key"] = "chaos-answer-" + id;
    req.timeout = std::chrono::seconds(10);
    posts_.fetch_add(1);
    auto r = HttpFetch(req);
    return r.ok() ? r->status : 0;
  }
  void Run() {
    std::map<std::string, int> done;  // conversation id -> 2xx answers so far (2: finished)
    while (!stop_.load() && answered_.load() < expected_) {
      auto db = PgConnection::Connect(dsn_);
      auto rows =
          db.ok() ? (*db)->Exec("SELECT id::text, wa_id FROM conversations WHERE owner = 'human'")
                  : Result<PgRows>(db.status());
      if (rows.ok()) {
        for (size_t r = 0; r < rows->size() && !stop_.load(); ++r) {
          const std::string id = rows->get(r, 0);
          int& n = done[id];
          while (n < 2 && !stop_.load()) {
            const int status = Post(id);
            if (status < 200 || status >= 300) break;  // again on the next round
            if (++n == 2) {
              answered_.fetch_add(1);
              std::lock_guard<std::mutex> lock(mu_);
              phones_.push_back(rows->get(r, 1));
            }
          }
        }
      }
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(1),
                   [this] { return stop_.load(); });  // the next round
    }
  }
  test::Stack& stack_;
  std::string dsn_;
  size_t expected_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> answered_{0}, posts_{0};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> phones_;
  std::thread thread_;
};

struct Fault {
  std::string what;  // a service name, "broker" or "database"; in a cluster run also the ones below
  double at_s = 0, back_s = 0;
};

const char* const kServices[] = {"ingress", "conversation", "media", "outbound"};

// The broker node (1..3) that leads queue `queue` of the stack's vhost; 1 when none says.
int LeaderNode(test::Stack& stack, const std::string& queue) {
  const int n = test::ClusterNodeNumber(stack.vhost.QueueLeader(queue));
  return n == 0 ? 1 : n;
}

// The faults of a cluster run (CONVOY_CHAOS_CLUSTER=1: three broker nodes, a database primary with
// a standby, two replicas of every service), each struck once, in this order: the node leading
// the first inbound partition killed with kill -9 (and started again: it rejoins), another node
// SIGSTOPped for 30 s, the database failed over to its standby, one replica of each service killed
// with kill -9 (and started again), and every replica restarted in turn with SIGTERM, as a rolling
// upgrade does. `strike` runs one; the caller waits for every replica to be ready after each.
std::vector<std::string> ClusterFaults() {
  return {"broker-leader", "broker-pause", "database-failover", "ingress",
          "conversation",  "media",        "outbound",          "rolling-restart"};
}

void StrikeClusterFault(test::Stack& stack, const std::string& what) {
  if (what == "broker-leader") {
    const int node = LeaderNode(stack, PartitionName(queues::kConversationInbound, 0));
    ASSERT_EQ(Infra("kill rabbit " + std::to_string(node)), 0);
    ASSERT_EQ(Infra("start rabbit " + std::to_string(node)), 0);
  } else if (what == "broker-pause") {
    const int node = LeaderNode(stack, PartitionName(queues::kConversationInbound, 1)) % 3 + 1;
    ASSERT_EQ(Infra("pause rabbit " + std::to_string(node)), 0);
    std::this_thread::sleep_for(30s);  // the fault's length: a node hung for 30 s
    ASSERT_EQ(Infra("resume rabbit " + std::to_string(node)), 0);
  } else if (what == "database-failover") {
    ASSERT_EQ(Infra("failover pg"), 0);
  } else if (what == "rolling-restart") {
    for (const char* s : kServices) {
      for (const std::string& replica : {std::string(s), std::string(s) + "#2"}) {
        stack.services[replica]->process.Signal(SIGTERM);
        stack.services[replica]->process.Wait();
        stack.Launch(replica);
        ASSERT_TRUE(stack.WaitReady(replica, 120s))
            << replica << " did not come back in the rolling restart";
      }
    }
  } else {
    stack.Kill(what);
    stack.Launch(what);
  }
}

TEST(Chaos, NothingLostNothingTwiceNothingParked) {
  if (std::getenv("CONVOY_RUN_DIR") == nullptr) {
    GTEST_SKIP()
        << "kills the broker and the database: runs only under scripts/test.sh or scripts/chaos.sh";
  }
  const int n = EnvInt("CONVOY_CHAOS_CONVERSATIONS", 1000);
  const int rate = EnvInt("CONVOY_CHAOS_RATE", 400);
  const uint32_t seed = static_cast<uint32_t>(EnvInt("CONVOY_CHAOS_SEED", 1));
  const auto drain = std::chrono::seconds(EnvInt("CONVOY_CHAOS_DRAIN_SECONDS", 300));
  // The sweeper as a backstop within the run's time (its count is printed: a hop that loses
  // messages shows up there even when the sweeper saves the reply).
  // Its margin grows with the backlog the run builds (10,000 replies at Meta's 80/s take 125 s to
  // send): a command that is only waiting its turn is not published again.
  const std::string sweep_after = "--sweep_after_seconds=" + std::to_string(60 + n / 50);
  fake::FakeReceiver inbox({test::Key(test::kOldSecret)});
  ASSERT_TRUE(inbox.Start().ok());
  const std::string sinks =
      test::WriteSinks(R"({"schema": "sinks", "version": 1, "sinks": [)" +
                       test::WebhookSink("conversations", inbox.url(),
                                         R"([")" + std::string(test::kOldSecret) + R"("])") +
                       "]}");
  test::Stack stack(
      "chaos", {},
      {{"conversation", {"--sweep_interval_seconds=5", sweep_after}},
       {"outbound",
        {"--reconcile_seconds=10", "--sinks_file=" + sinks, "--delivery_schedule=1s,2s,5s,10s"}}});
  // A cluster run: a second replica of every service beside the first (scripts/chaos.sh --cluster).
  const bool cluster = EnvInt("CONVOY_CHAOS_CLUSTER", 0) != 0;
  if (cluster) {
    for (const char* s : kServices) stack.Launch(std::string(s) + "#2");
    for (const char* s : kServices)
      ASSERT_TRUE(stack.WaitReady(std::string(s) + "#2", 120s)) << s << "#2";
  }
  // Meta having a bad day: 20 % of sends answered 503, 2 % 130429; one message fails at most
  // three times in a row (the retry tiers then cost 1 + 5 + 30 s, which keeps the run bounded).
  stack.graph.InjectRandom(0.20, 0.02, 3, seed);

  // Updates 0..n-1: each user's first message; n..n+twice-1: a second message of users
  // 0..twice-1 (so that their two replies have an order to keep).
  const int twice_writers = n / 5, updates = n + twice_writers;
  // Users who write once and ask for a person: one in ten of them.
  auto hands_off = [&](int i) { return i >= twice_writers && i < n && i % 10 == 7; };
  std::vector<std::string> bodies;
  for (int copy = 0; copy < 2; ++copy) {
    for (int i = 0; i < updates; ++i) {
      std::string body = stack.TextUpdate("chaos", i, n);
      if (hands_off(i)) {
        const std::string text = "\"chaos message " + std::to_string(i) + "\"";
        body.replace(body.find(text), text.size(), "\"agent\"");
      }
      bodies.push_back(body);
    }
  }
  size_t handoffs = 0;
  for (int i = 0; i < n; ++i) handoffs += hands_off(i);
  std::vector<std::string> users;
  for (int i = 0; i < n; ++i) users.push_back("1650555123" + std::to_string(i));
  // The user of update u, and how many replies user i is owed (one per update accepted).
  auto user_of = [&](int u) { return u % n; };

  const auto t0 = Clock::now();
  const int64_t t0_ms = test::NowMillis();
  MetaClient client(stack, bodies, rate, seed);
  Agents agents(stack, stack.db.dsn(), handoffs);

  // Mid-stream, spread over the posting time (at least 40 s): each service killed twice, the
  // broker once, the database once, in a shuffled order; each restarted at once.
  std::vector<std::string> faults = {"ingress", "conversation", "media", "outbound",
                                     "ingress", "conversation", "media", "outbound",
                                     "broker",  "database"};
  std::shuffle(faults.begin(), faults.end(), std::mt19937(seed + 1));
  if (cluster) faults = ClusterFaults();
  const double window = std::max(40.0, 2.0 * n / rate);
  std::vector<Fault> done;
  int64_t broker_back_ms = 0;
  for (size_t k = 0; k < faults.size(); ++k) {
    std::this_thread::sleep_until(
        t0 + std::chrono::milliseconds(static_cast<int64_t>(
                 1000 * window * (k + 1) / (faults.size() + 1))));  // the fault schedule
    Fault f{faults[k], Seconds(Clock::now() - t0), 0};
    if (cluster) {
      StrikeClusterFault(stack, f.what);
      if (f.what == "broker-leader") broker_back_ms = test::NowMillis();
    } else if (f.what == "broker") {
      ASSERT_EQ(Infra("kill rabbit"), 0);
      ASSERT_EQ(Infra("start rabbit"), 0);
      broker_back_ms = test::NowMillis();
    } else if (f.what == "database") {
      ASSERT_EQ(Infra("kill pg"), 0);
      ASSERT_EQ(Infra("start pg"), 0);
    } else {
      stack.Kill(f.what);
      stack.Launch(f.what);
    }
    for (const char* s : kServices) {
      ASSERT_TRUE(stack.WaitReady(s, 120s)) << s << " did not recover after " << f.what;
      if (cluster) {
        ASSERT_TRUE(stack.WaitReady(std::string(s) + "#2", 120s))
            << s << "#2 did not recover after " << f.what;
      }
    }
    f.back_s = Seconds(Clock::now() - t0);
    std::cerr << "chaos: " << f.what << " killed at " << f.at_s << " s, all ready again at "
              << f.back_s << " s\n";
    done.push_back(f);
  }
  client.Join();
  const double posted_s = Seconds(client.LastPost() - t0);
  ASSERT_TRUE(test::WaitUntil([&] { return agents.Answered() == handoffs; }, drain))
      << agents.Answered() << " of " << handoffs
      << " handed-off conversations answered by an agent";
  agents.Stop();

  // Drain: every accepted update answered, and nothing left in flight (every command settled).
  auto db = PgConnection::Connect(stack.db.dsn());
  ASSERT_TRUE(db.ok());
  std::vector<size_t> owed(n, 0);
  size_t accepted = 0, accepted_updates = 0, owed_total = 0;
  for (int u = 0; u < updates; ++u) {
    if (client.Accepted(u)) ++owed[user_of(u)], ++accepted_updates, ++owed_total;
  }
  // A handed-off conversation is also owed its agent's answer, once.
  std::map<std::string, int> user_index;
  for (int i = 0; i < n; ++i) user_index[users[i]] = i;
  for (const auto& phone : agents.AnsweredPhones()) ++owed[user_index.at(phone)], ++owed_total;
  for (int i = 0; i < n; ++i) {
    bool all = client.Accepted(i) && (i >= twice_writers || client.Accepted(n + i));
    accepted += all;
  }
  auto answered_all = [&] {
    auto sends = stack.graph.SendsPerRecipient();
    for (int i = 0; i < n; ++i) {
      auto it = sends.find(users[i]);
      if ((it == sends.end() ? 0 : it->second) < owed[i]) return false;
    }
    return true;
  };
  auto settled = [&] {
    auto r =
        (*db)->Exec("SELECT count(*) FROM outbox WHERE settled_at IS NULL AND due_at IS NOT NULL");
    return r.ok() && r->get_int(0, 0) == 0;
  };
  bool drained =
      test::WaitUntil([&] { return answered_all() && settled(); }, drain) && stack.Drained(60s);
  const double drained_s = Seconds(Clock::now() - t0);

  size_t once = 0, twice = 0, lost = 0;
  std::vector<std::string> lost_users, twice_users;
  const auto per_user = stack.graph.SendsPerRecipient();
  // Answered once: every accepted message of the conversation got one reply, no more.
  for (int i = 0; i < n; ++i) {
    auto it = per_user.find(users[i]);
    size_t sends = it == per_user.end() ? 0 : it->second;
    if (sends == owed[i] && sends > 0) ++once;
    if (sends > owed[i]) {
      ++twice;
      if (twice_users.size() < 5) twice_users.push_back(users[i]);
    }
    if (sends < owed[i]) {
      ++lost;
      if (lost_users.size() < 5) lost_users.push_back(users[i]);
    }
  }
  // Each conversation's replies in the order it wrote them: the outbox ids of the sends Graph
  // accepted for one user (named by their callback data) must rise in the order Graph took them.
  std::map<std::string, int64_t> written;
  auto sends_written =
      (*db)->Exec("SELECT dedupe_key, id FROM outbox WHERE routing_key = 'outbound.send'");
  ASSERT_TRUE(sends_written.ok()) << sends_written.status().ToString();
  for (size_t r = 0; r < sends_written->size(); ++r)
    written[sends_written->get(r, 0)] = sends_written->get_int(r, 1);
  std::map<std::string, std::vector<int64_t>> graph_order;
  {
    rapidjson::Document requests;
    const std::string json = stack.graph.RequestsJson();
    requests.Parse(json.c_str(), json.size());
    ASSERT_TRUE(requests.IsArray());
    for (const auto& r : requests.GetArray()) {
      const std::string callback = JsonStr(JsonMember(r, "body"), "biz_opaque_callback_data");
      auto it = written.find(callback.rfind("convoy:", 0) == 0 ? callback.substr(7) : callback);
      graph_order[JsonStr(r, "to")].push_back(it == written.end() ? -1 : it->second);
    }
  }
  size_t ordered = 0, misordered = 0, unmatched = 0;
  std::string misordered_example;
  for (int i = 0; i < twice_writers; ++i) {
    const auto& ids = graph_order[users[i]];
    if (ids.size() < 2) continue;
    if (std::count(ids.begin(), ids.end(), -1) > 0) {
      ++unmatched;
    } else if (std::is_sorted(ids.begin(), ids.end())) {
      ++ordered;
    } else {
      ++misordered;
      if (misordered_example.empty()) misordered_example = users[i];
    }
  }
  AmqpOptions o{stack.vhost.url(), "chaos-check"};
  o.declare_topology = false;
  size_t parked = 0;
  std::map<std::string, size_t> reasons;
  for (const auto& q : ConvoyTopology().work_queues) {
    auto taken = TakeMessages(o, q + ".dlq", 100000);
    ASSERT_TRUE(taken.ok()) << taken.status().ToString();
    for (const auto& d : *taken) {
      ++parked;
      // Parked by the broker itself (past the queue's delivery limit), the message carries no
      // reason of ours: the broker's own says so.
      const std::string why = d.Header(headers::kDeathReason).empty()
                                  ? "by the broker: " + d.Header("x-first-death-reason")
                                  : d.Header(headers::kDeathReason);
      ++reasons[q + ": " + why.substr(0, 100)];
    }
  }
  // The business's inbox: each handoff told once (every request answered 200: the sink never
  // failed).
  std::map<std::string, int> told;
  for (const auto& r : inbox.Requests()) {
    rapidjson::Document b;
    b.Parse(r.body.c_str());
    if (b.IsObject() && JsonStr(b, "type") == "conversation.handoff_requested") {
      ++told[JsonStr(JsonMember(JsonMember(b, "data"), "conversation"), "id")];
    }
  }
  size_t told_once = 0, told_twice = 0;
  for (const auto& [id, count] : told) (count == 1 ? told_once : told_twice)++;
  auto swept = (*db)->Exec("SELECT coalesce(sum(sweeps), 0) FROM outbox");
  ASSERT_TRUE(swept.ok());
  // What a broker restart costs: from the broker being up again to the first send after it.
  double first_send_after_broker_s = -1;
  for (int64_t at : stack.graph.SendTimesMs()) {
    if (at >= broker_back_ms &&
        (first_send_after_broker_s < 0 || at - broker_back_ms < first_send_after_broker_s * 1000)) {
      first_send_after_broker_s = (at - broker_back_ms) / 1000.0;
    }
  }
  const Fault* broker = nullptr;
  for (const auto& f : done) {
    if (f.what == "broker" || f.what == "broker-leader") broker = &f;
  }

  // The longest time Graph heard nothing while there was work (between the first and last send).
  std::vector<int64_t> send_times = stack.graph.SendTimesMs();
  std::sort(send_times.begin(), send_times.end());
  int64_t longest_gap_ms = 0, longest_gap_from_ms = 0;
  for (size_t k = 1; k < send_times.size(); ++k) {
    if (send_times[k] - send_times[k - 1] > longest_gap_ms) {
      longest_gap_ms = send_times[k] - send_times[k - 1];
      longest_gap_from_ms = send_times[k - 1];
    }
  }

  std::ostringstream out;
  out << "chaos: "
      << (cluster
              ? "cluster (3 broker nodes, database primary + standby, 2 replicas of each service): "
              : "")
      << n << " conversations (" << twice_writers << " writing twice), " << 2 * updates
      << " webhooks at " << rate << "/s (" << client.Posts() << " POSTs, " << client.Retries()
      << " retried), " << stack.graph.RandomFailures() << " Graph calls failed at random, "
      << done.size() << " faults\n"
      << "chaos: accepted " << accepted << " / answered once " << once << " / answered twice "
      << twice << " / parked " << parked << " / lost " << lost << " / not accepted "
      << (n - static_cast<int>(accepted)) << "\n"
      << "chaos: replies in the order written " << ordered << " / "
      << ordered + misordered + unmatched << " conversations with two replies (out of order "
      << misordered << ", not matched to the outbox " << unmatched
      << (misordered_example.empty() ? "" : ", e.g. " + misordered_example) << "); "
      << accepted_updates << " / " << updates << " updates accepted\n"
      << "chaos: posted in " << posted_s << " s (faults over " << window << " s), drained "
      << (drained ? "in " : "NOT within ") << drained_s << " s; longest time without a send "
      << longest_gap_ms / 1000.0 << " s (from " << (longest_gap_from_ms - t0_ms) / 1000.0
      << " s); commands republished by the sweeper: " << swept->get(0, 0)
      << "\nchaos: broker killed at " << (broker ? broker->at_s : -1)
      << " s, every service ready again " << (broker ? broker->back_s - broker->at_s : -1)
      << " s later; first send " << first_send_after_broker_s << " s after the broker was up\n";
  out << "chaos: handed to a person " << handoffs << " / inbox told once " << told_once
      << " / told twice " << told_twice << " / answered by an agent " << agents.Answered() << " ("
      << agents.Posts() << " API POSTs)\n";
  for (const auto& [reason, count] : reasons)
    out << "chaos: parked " << count << " × " << reason << "\n";
  for (const auto& u : lost_users) out << "chaos: lost " << u << "\n";
  for (const auto& u : twice_users) out << "chaos: answered twice " << u << "\n";
  std::cout << out.str() << std::flush;

  EXPECT_TRUE(drained);
  EXPECT_EQ(accepted, static_cast<size_t>(n)) << "Meta's retries must get every update accepted";
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(twice, 0u);
  EXPECT_EQ(parked, 0u);
  EXPECT_EQ(stack.graph.SendCount(), owed_total) << "one accepted send per accepted message";
  EXPECT_EQ(misordered, 0u);
  EXPECT_EQ(told_once, handoffs) << "every handoff told to the business's inbox";
  EXPECT_EQ(told_twice, 0u);
  EXPECT_EQ(unmatched, 0u);
  EXPECT_GE(ordered, static_cast<size_t>(twice_writers) * 9 / 10)
      << "too few conversations with two replies to check";
}

}  // namespace
}  // namespace convoy
