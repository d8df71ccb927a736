// Integration: convoyctl against a real RabbitMQ and PostgreSQL. Parked messages are made by real
// consumers giving up (the headers they write), then listed, shown, replayed and purged; a real
// stack gives conversation show, deliveries, health and stats something to read.
#include "ctl.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <functional>
#include <sstream>

#include "convoy/amqp.h"
#include "convoy/pg.h"
#include "convoy/topology.h"
#include "stack.h"
#include "testsupport.h"

namespace convoy::ctl {
namespace {

using namespace std::chrono_literals;

uint32_t Ready(const std::string& url, const std::string& queue) {
  auto n = QueueMessageCount(AmqpOptions{url, "ctl-test"}, queue);
  return n.ok() ? *n : 9999;
}

// Parks three messages the way consumers do: media.fetch gives up on "gone" after one retry, and
// on "huge" at once; outbound.send on "poison".
void ParkThree(const std::string& url) {
  AmqpOptions o{url, "ctl-test"};
  ASSERT_TRUE(DeclareConvoyTopology(o).ok());
  Publisher pub(o);
  pub.Start();
  ASSERT_TRUE(pub.WaitConnected(20s));
  Consumer media(
      {o, queues::kMediaFetch, 8, 5},
      [](const Delivery& d) {
        if (d.body == "gone" && d.attempt == 0)
          return Disposition::Retry("unavailable: Meta timed out");
        if (d.body == "gone") return Disposition::DeadLetter("not_found: media gone (404)");
        return Disposition::DeadLetter("invalid_argument: 30 MB is over the limit", 413);
      },
      &pub);
  Consumer send(
      {o, queues::kOutboundSend, 8, 5},
      [](const Delivery&) { return Disposition::DeadLetter("schema: poison"); }, &pub);
  media.Start();
  send.Start();
  auto publish = [&](const char* queue, const std::string& body, const std::string& id) {
    AmqpMessage m;
    m.exchange = exchanges::kCommands;
    m.routing_key = queue;
    m.body = body;
    m.message_id = id;
    m.headers = {{headers::kDedupeKey, id},
                 {headers::kCorrelationId, "corr-" + id},
                 {headers::kConversationKey, "1:2"}};
    ASSERT_TRUE(pub.PublishAndWait(m, 10s).ok());
  };
  publish(queues::kMediaFetch, "gone", "fetch-gone");
  publish(queues::kMediaFetch, "huge", "fetch-huge");
  publish(queues::kOutboundSend, "poison", "send-poison");
  ASSERT_TRUE(test::WaitUntil(
      [&] { return Ready(url, "media.fetch.dlq") == 2 && Ready(url, "outbound.send.dlq") == 1; },
      30s));
  media.Stop();
  send.Stop();
}

TEST(ConvoyctlDlq, ListsShowsReplaysAndPurgesParkedMessagesByQueueReasonAndAge) {
  test::TestVhost vhost("ctl_dlq");
  ASSERT_NO_FATAL_FAILURE(ParkThree(vhost.url()));
  const std::string url = vhost.url();

  auto all = ListParked(url, {});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 3u);
  DlqFilter by_reason;
  by_reason.reason = "404";
  auto gone = ListParked(url, by_reason);
  ASSERT_TRUE(gone.ok());
  ASSERT_EQ(gone->size(), 1u);
  const ParkedMessage& g = (*gone)[0];
  EXPECT_EQ(g.id, "fetch-gone");
  EXPECT_EQ(g.queue, "media.fetch");
  EXPECT_EQ(g.first_reason, "unavailable: Meta timed out");
  EXPECT_EQ(g.last_reason, "not_found: media gone (404)");
  EXPECT_EQ(g.attempts, 2) << "failed twice: once retried, once given up";
  EXPECT_EQ(g.correlation_id, "corr-fetch-gone");
  EXPECT_GT(g.parked_at, test::NowSeconds() - 60);
  DlqFilter by_queue;
  by_queue.queue = "outbound.send";
  EXPECT_EQ(ListParked(url, by_queue)->size(), 1u);
  DlqFilter recent;
  recent.since = test::NowSeconds() - 3600;
  EXPECT_EQ(ListParked(url, recent)->size(), 3u);
  recent.since = test::NowSeconds() + 60;
  EXPECT_EQ(ListParked(url, recent)->size(), 0u);
  recent.since = 0;
  recent.until = test::NowSeconds() - 3600;
  EXPECT_EQ(ListParked(url, recent)->size(), 0u) << "none parked before an hour ago";
  recent.until = test::NowSeconds() + 60;
  EXPECT_EQ(ListParked(url, recent)->size(), 3u);
  // By the failure's own code, and by what the message says (any case), through the broker
  // options a service passes (its ops user) as through the URL.
  DlqFilter by_code;
  by_code.code = "413";
  auto huge = ListParked(AmqpOptions{url, "ctl-test"}, by_code);
  ASSERT_TRUE(huge.ok()) << huge.status().ToString();
  ASSERT_EQ(huge->size(), 1u);
  EXPECT_EQ((*huge)[0].id, "fetch-huge");
  EXPECT_EQ((*huge)[0].error_code, "413");
  DlqFilter by_content;
  by_content.content = "POISON";
  auto poison = ListParked(AmqpOptions{url, "ctl-test"}, by_content);
  ASSERT_TRUE(poison.ok());
  ASSERT_EQ(poison->size(), 1u);
  EXPECT_EQ((*poison)[0].id, "send-poison");
  auto depths = QueueDepths(AmqpOptions{url, "ctl-test"});
  ASSERT_TRUE(depths.ok()) << depths.status().ToString();
  uint64_t parked = 0;
  for (const auto& d : *depths) {
    parked += d.parked;
    if (d.queue == "media.fetch") {
      EXPECT_EQ(d.parked, 2u);
    }
  }
  EXPECT_EQ(parked, 3u);
  EXPECT_EQ(Ready(url, "media.fetch.dlq"), 2u) << "listing moves nothing";

  Options o;
  o.amqp_url = url;
  std::ostringstream out, err;
  EXPECT_EQ(DlqList(o, {}, out, err), kOk);
  EXPECT_NE(out.str().find("fetch-huge  media.fetch  attempts=1"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("3 parked message(s)"), std::string::npos) << out.str();
  o.json = true;
  out.str("");
  EXPECT_EQ(DlqList(o, by_reason, out, err), kOk);
  rapidjson::Document d;
  d.Parse(out.str().c_str());
  ASSERT_TRUE(d.IsArray()) << out.str();
  ASSERT_EQ(d.Size(), 1u);
  EXPECT_STREQ(d[0]["first_reason"].GetString(), "unavailable: Meta timed out");
  DlqFilter one;
  one.id = "send-poison";
  out.str("");
  EXPECT_EQ(DlqShow(o, one, out, err), kOk);
  d.Parse(out.str().c_str());
  ASSERT_TRUE(d.IsObject()) << out.str();
  EXPECT_STREQ(d["body"].GetString(), "poison");
  EXPECT_STREQ(d["headers"]["x-dedupe-key"].GetString(), "send-poison");
  one.id = "no-such-id";
  EXPECT_EQ(DlqShow(o, one, out, err), kNotFound);

  // Replay: a dry run moves nothing; then the parked send goes back with a fresh count and its
  // history.
  out.str("");
  o.json = false;
  EXPECT_EQ(DlqReplay(o, by_queue, true, out, err), kOk);
  EXPECT_NE(out.str().find("would replay send-poison -> outbound.send"), std::string::npos)
      << out.str();
  EXPECT_EQ(Ready(url, "outbound.send.dlq"), 1u);
  auto replayed = ReplayParked(url, by_queue, false);
  ASSERT_TRUE(replayed.ok()) << replayed.status().ToString();
  EXPECT_EQ(*replayed, 1u);
  EXPECT_EQ(Ready(url, "outbound.send.dlq"), 0u);
  auto back = TakeMessages(AmqpOptions{url, "ctl-test"}, queues::kOutboundSend, 10);
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->size(), 1u);
  const Delivery& r = (*back)[0];
  EXPECT_EQ(r.body, "poison");
  EXPECT_EQ(r.attempt, 0) << "a fresh attempt count";
  EXPECT_EQ(r.Header("x-replays"), "1");
  EXPECT_NE(r.Header("x-replay-history").find("schema: poison"), std::string::npos)
      << r.Header("x-replay-history");
  EXPECT_EQ(r.Header(headers::kDeathReason), "");
  EXPECT_EQ(r.Header(headers::kDedupeKey), "send-poison")
      << "the dedupe key makes a replay safe to repeat";

  // Purge: refused without confirmation; then only the matching one goes.
  EXPECT_EQ(DlqPurge(o, by_reason, false, out, err), kUsage);
  EXPECT_EQ(Ready(url, "media.fetch.dlq"), 2u);
  out.str("");
  EXPECT_EQ(DlqPurge(o, by_reason, true, out, err), kOk);
  EXPECT_EQ(out.str(), "1 parked message(s) deleted\n");
  EXPECT_EQ(Ready(url, "media.fetch.dlq"), 1u);
  ASSERT_EQ(ListParked(url, {})->at(0).id, "fetch-huge");
  EXPECT_EQ(ParseDuration("90s"), 90);
  EXPECT_EQ(ParseDuration("15m"), 900);
  EXPECT_EQ(ParseDuration("7d"), 604800);
  EXPECT_EQ(ParseDuration("2 weeks"), -1);
}

// n messages in media.fetch's parking queue, as a consumer parks them.
void Park(Publisher& pub, int n) {
  for (int i = 0; i < n; ++i) {
    AmqpMessage m;
    m.exchange = exchanges::kDlx;
    m.routing_key = queues::kMediaFetch;
    m.body = "{}";
    ASSERT_TRUE(pub.PublishAndWait(m, 10s).ok());
  }
}

// Each of health's thresholds drives the exit code on its own: within it ok (0), over it a warning
// (1), over twice it critical (2). The seeds' thresholds: stuck conversations > 5, parked > 10,
// errors > 10 an hour, p95 > 2 s, failed sends > 1 %. Rows are written as the services write them.
TEST(ConvoyctlHealth, EachThresholdDrivesTheExitCodeOnItsOwn) {
  test::TestVhost vhost("ctl_health");
  test::TestDatabase db("ctl_health");
  ASSERT_TRUE(DeclareConvoyTopology(AmqpOptions{vhost.url(), "ctl-test"}).ok());
  auto conn = PgConnection::Connect(db.dsn());
  ASSERT_TRUE(conn.ok());
  PgConnection& sql = **conn;
  ASSERT_TRUE(RunMigrations(sql, test::SourcePath("deploy/postgres")).ok());
  Options o;
  o.amqp_url = vhost.url();
  o.pg_dsn = db.dsn();
  const HealthThresholds seeds;
  EXPECT_EQ(seeds.stuck, 5);
  EXPECT_EQ(seeds.parked, 10);
  EXPECT_EQ(seeds.errors, 10);
  EXPECT_EQ(seeds.p95_seconds, 2.0);
  EXPECT_EQ(seeds.failed_percent, 1.0);
  std::ostringstream out, err;
  auto health = [&] {
    out.str("");
    return Health(o, seeds, out, err);
  };
  auto exec = [&](const std::string& q) {
    auto r = sql.Exec(q);
    ASSERT_TRUE(r.ok()) << r.status().ToString() << "\n" << q;
  };
  ASSERT_EQ(health(), kOk) << out.str() << err.str();
  int sends = 0;
  // n sends of `status`, settled now; `latency` s from the webhook to the attempt.
  auto send = [&](int n, const std::string& status, double latency = 0.5) {
    for (int i = 0; i < n; ++i, ++sends) {
      exec(
          "INSERT INTO outbound_messages (dedupe_key, phone_number_id, recipient, status, "
          "correlation_id, "
          "received_at, attempt_started_at) VALUES ('h" +
          std::to_string(sends) + "', '1', '2', '" + status + "', 'c', now() - interval '" +
          std::to_string(latency) + " seconds', now())");
    }
  };
  struct Step {
    const char* what;
    std::function<void()> over, twice, clear;
  };
  const std::vector<Step> steps = {
      {"stuck conversations",
       [&] {
         for (int i = 0; i < 6; ++i) {
           exec(
               "INSERT INTO outbox (exchange, routing_key, dedupe_key, correlation_id, "
               "conversation_key, body, due_at) "
               "VALUES ('convoy.commands', 'outbound.send', 's" +
               std::to_string(i) + "', 'c', 'k" + std::to_string(i) +
               "', '{}', now() - interval '1 hour')");
         }
       },
       [&] {
         for (int i = 6; i < 11; ++i) {
           exec(
               "INSERT INTO outbox (exchange, routing_key, dedupe_key, correlation_id, "
               "conversation_key, body, due_at) "
               "VALUES ('convoy.commands', 'outbound.send', 's" +
               std::to_string(i) + "', 'c', 'k" + std::to_string(i) +
               "', '{}', now() - interval '1 hour')");
         }
       },
       [&] { exec("UPDATE outbox SET settled_at = now(), outcome = 'done'"); }},
      // 1 % of the hour's settled sends: 4 of 304 is over it (and 4 errors are within theirs), 7 of
      // 307 over twice it.
      {"failed sends, last hour",
       [&] {
         send(300, "sent");
         send(4, "failed");
       },
       [&] { send(3, "failed"); },
       [&] {
         exec(
             "UPDATE outbound_messages SET updated_at = now() - interval '2 hours' WHERE status = "
             "'failed'");
       }},
      {"p95 webhook to send", [&] { send(1000, "sent", 3); }, [&] { send(2000, "sent", 5); },
       [&] {
         exec(
             "UPDATE outbound_messages SET received_at = attempt_started_at - interval '0.5 "
             "seconds'");
       }},
      {"errors in the last hour",
       [&] {
         exec(
             "INSERT INTO deliveries (result_id, sink, type, correlation_id, command, status) "
             "VALUES ('r1', 'hook', 'lead.qualified', 'c', '{}', 'retrying')");
         exec(
             "INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, "
             "outcome) SELECT "
             "(SELECT min(id) FROM deliveries), g, now(), 5, 'retry' FROM generate_series(1, 11) "
             "g");
       },
       [&] {
         exec(
             "INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, "
             "outcome) SELECT "
             "(SELECT min(id) FROM deliveries), g, now(), 5, 'permanent' FROM generate_series(12, "
             "21) g");
       },
       [&] { exec("UPDATE delivery_attempts SET started_at = now() - interval '2 hours'"); }},
  };
  for (const Step& step : steps) {
    step.over();
    EXPECT_EQ(health(), kWarning) << step.what << ":\n" << out.str() << err.str();
    EXPECT_NE(out.str().find(step.what), std::string::npos) << out.str();
    step.twice();
    EXPECT_EQ(health(), kCritical) << step.what << ":\n" << out.str() << err.str();
    step.clear();
    EXPECT_EQ(health(), kOk) << step.what << " cleared:\n" << out.str() << err.str();
  }
  // Parked messages: in the parking queues, as the broker holds them.
  Publisher pub(AmqpOptions{vhost.url(), "ctl-test"});
  pub.Start();
  ASSERT_TRUE(pub.WaitConnected(20s));
  auto park = [&](int n) { ASSERT_NO_FATAL_FAILURE(Park(pub, n)); };
  park(11);
  EXPECT_EQ(health(), kWarning) << out.str();
  park(10);
  EXPECT_EQ(health(), kCritical) << out.str();
}

TEST(ConvoyctlStack, ConversationShowDeliveriesHealthAndStatsReadARunningStack) {
  test::Stack stack("ctl_stack");
  const std::string seller = "16505550991";
  ASSERT_NO_FATAL_FAILURE(stack.StartListing(seller));
  ASSERT_TRUE(stack.Drained(30s));
  Options o;
  o.amqp_url = stack.vhost.url();
  o.pg_dsn = stack.db.dsn();
  o.outbound_url = stack.Url("outbound", "");
  o.admin_token = test::kAdminToken;
  std::ostringstream out, err;

  EXPECT_EQ(ConversationShow(o, seller, "", 50, out, err), kOk) << err.str();
  const std::string text = out.str();
  EXPECT_NE(text.find("flow: listing, step photos"), std::string::npos) << text;
  EXPECT_NE(text.find("email: kerry@example.com"), std::string::npos) << text;
  EXPECT_NE(text.find("idle -> listing/email  started"), std::string::npos) << text;
  EXPECT_NE(text.find("listing/description -> listing/photos  answered"), std::string::npos)
      << text;
  EXPECT_NE(text.find("  sent  attempts=1"), std::string::npos) << text;
  o.json = true;
  out.str("");
  EXPECT_EQ(ConversationShow(o, "106540352242922:" + seller, "", 50, out, err), kOk);
  rapidjson::Document d;
  d.Parse(out.str().c_str());
  ASSERT_TRUE(d.IsObject()) << out.str();
  EXPECT_EQ(d["transitions"].Size(), 3u) << "3 messages (a send Meta accepted writes none)";
  EXPECT_GE(d["sends"].Size(), 3u);
  EXPECT_STREQ(d["state"]["step"].GetString(), "photos");
  EXPECT_EQ(ConversationShow(o, "16505550000", "", 50, out, err), kNotFound);

  // The conversations through conversation's API: listed, and one shown as its transcript.
  o.conversation_url = stack.Url("conversation", "");
  o.json = false;
  out.str("");
  EXPECT_EQ(ConversationList(o, "", out, err), kOk) << err.str();
  const std::string listed = out.str();
  const std::string id = listed.substr(0, 36);
  EXPECT_TRUE(IsConversationId(id)) << listed;
  EXPECT_NE(listed.find(id + "  bot  106540352242922  " + seller + "  listing/photos  window open"),
            std::string::npos)
      << listed;
  EXPECT_NE(listed.find("1 conversation(s)"), std::string::npos) << listed;
  out.str("");
  EXPECT_EQ(ConversationList(o, "owner=human", out, err), kOk) << err.str();
  EXPECT_EQ(out.str(), "0 conversation(s)\n");
  out.str("");
  EXPECT_EQ(ConversationTranscript(o, id, 100, out, err), kOk) << err.str();
  const std::string said = out.str();
  EXPECT_NE(said.find("owner bot\n"), std::string::npos) << said;
  EXPECT_NE(said.find("messages (last 6):"), std::string::npos) << said;
  EXPECT_NE(said.find("  customer  text  SELL\n"), std::string::npos) << said;
  EXPECT_NE(said.find("  bot  text  " + test::Stack::ListingOpening()[0] + "  [sent]\n"),
            std::string::npos)
      << said;
  EXPECT_LT(said.find("SELL"), said.find("kerry@example.com")) << "oldest first";
  o.json = true;
  out.str("");
  EXPECT_EQ(ConversationTranscript(o, id, 2, out, err), kOk) << err.str();
  d.Parse(out.str().c_str());
  ASSERT_TRUE(d.IsObject()) << out.str();
  EXPECT_EQ(d["messages"].Size(), 2u) << "the last two";
  EXPECT_EQ(ConversationTranscript(o, "00000000-0000-4000-8000-000000000000", 100, out, err),
            kNotFound);
  EXPECT_EQ(ConversationTranscript(o, "not-an-id", 100, out, err), kUsage);
  Options wrong = o;
  wrong.admin_token = "wrong";
  EXPECT_EQ(ConversationList(wrong, "", out, err), kFailed);
  o.json = true;

  out.str("");
  EXPECT_EQ(DeliveriesList(o, "status=parked", out, err), kOk) << err.str();
  Options no_token = o;
  no_token.admin_token = "wrong";
  EXPECT_EQ(DeliveriesList(no_token, "", out, err), kFailed);
  // Templates: the catalog through the same API; a sync of a WABA no number is in is not found.
  out.str("");
  EXPECT_EQ(TemplatesList(o, "status=APPROVED", out, err), kOk) << err.str();
  EXPECT_NE(out.str().find("\"templates\""), std::string::npos) << out.str();
  EXPECT_EQ(TemplatesSync(o, "999", out, err), kNotFound) << err.str();
  EXPECT_EQ(TemplatesList(no_token, "", out, err), kFailed);

  // Health: all within the thresholds; then parked messages past one (a warning) and past twice
  // it (critical). The exit code says which.
  HealthThresholds t;
  t.p95_seconds =
      60;  // this test is about the parked levels: a loaded machine's latency must not decide it
  out.str("");
  EXPECT_EQ(Health(o, t, out, err), kOk) << out.str();
  d.Parse(out.str().c_str());
  ASSERT_TRUE(d.IsObject()) << out.str();
  EXPECT_STREQ(d["status"].GetString(), "ok");
  EXPECT_EQ(d["checks"].Size(), 5u);
  Publisher pub(AmqpOptions{stack.vhost.url(), "ctl-test"});
  pub.Start();
  ASSERT_TRUE(pub.WaitConnected(20s));
  auto park = [&](int n) { ASSERT_NO_FATAL_FAILURE(Park(pub, n)); };
  t.parked = 2;
  park(3);
  EXPECT_EQ(Health(o, t, out, err), kWarning);
  park(2);
  o.json = false;
  out.str("");
  EXPECT_EQ(Health(o, t, out, err), kCritical);
  EXPECT_NE(out.str().find("parked messages"), std::string::npos);
  EXPECT_NE(out.str().find("health: critical"), std::string::npos) << out.str();
  Options no_db = o;
  no_db.pg_dsn = "host=127.0.0.1 port=1 user=nobody connect_timeout=2";
  EXPECT_EQ(Health(no_db, HealthThresholds{}, out, err), kCritical)
      << "a check that cannot run is critical";

  // Stats: the replies' webhook-to-send latency is measured from the webhook's arrival.
  o.json = true;
  out.str("");
  EXPECT_EQ(Stats(o, 3600, out, err), kOk) << err.str();
  d.Parse(out.str().c_str());
  ASSERT_TRUE(d.IsObject()) << out.str();
  EXPECT_EQ(d["messages_in"].GetInt64(), 3);
  EXPECT_EQ(d["webhook_to_send_seconds"]["count"].GetInt64(), 3) << out.str();
  EXPECT_GT(d["webhook_to_send_seconds"]["p50"].GetDouble(), 0.0);
  EXPECT_LT(d["webhook_to_send_seconds"]["p99"].GetDouble(), 30.0);
  EXPECT_GE(d["sends"]["sent"].GetInt64(), 3);
}

}  // namespace
}  // namespace convoy::ctl
