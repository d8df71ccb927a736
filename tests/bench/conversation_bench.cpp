// convoy-conversation-bench: loads conversation.inbound with listing conversations (SELL, an
// email, a description, photos, DONE: every step kind, every effect kind) as ingress would
// publish them, and reads back from PostgreSQL when each one was applied.
//   --mode=preload   publish every message as fast as the broker confirms (the service may be
//                    stopped); a later --publish=false run waits for the service and reports its
//                    drain rate from the database (first to last transaction over the messages)
//   --mode=rate      publish at --rate messages/s to a running service and report
//                    publish-to-transaction latency per message (open loop)
// Prints one "RESULT key=value ..." line.
#include <gflags/gflags.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <thread>
#include <vector>

#include "convoy/amqp.h"
#include "convoy/config.h"
#include "convoy/json.h"
#include "convoy/pg.h"
#include "convoy/topology.h"

DEFINE_string(amqp_url, "amqp://guest:guest@127.0.0.1:21672/%2f",
              "Broker (use a throw-away vhost)");
DEFINE_validator(amqp_url, &convoy::ValidateAmqpUrl);
DEFINE_string(pg_dsn, "host=127.0.0.1 port=21432 user=postgres dbname=postgres",
              "The service's database");
DEFINE_validator(pg_dsn, &convoy::ValidateNonEmpty);
DEFINE_string(mode, "preload", "preload or rate");
static bool ValidateMode(const char* flag, const std::string& v) {
  if (v == "preload" || v == "rate") return true;
  std::fprintf(stderr, "invalid value for --%s: %s (preload or rate)\n", flag, v.c_str());
  return false;
}
DEFINE_validator(mode, &ValidateMode);
DEFINE_int32(conversations, 2000, "Conversations, each sent the 10-message listing sequence");
DEFINE_validator(conversations, &convoy::ValidatePositive);
DEFINE_int32(rate, 1000, "--mode=rate: messages published per second");
DEFINE_validator(rate, &convoy::ValidatePositive);
DEFINE_string(tag, "b",
              "Prefix of this run's message ids and senders (runs in one database must differ)");
DEFINE_validator(tag, &convoy::ValidateNonEmpty);
DEFINE_bool(publish, true,
            "Publish this run's messages (false: only wait for and measure an earlier preload)");
DEFINE_bool(wait, true, "Wait until the service applied every message, then report");
DEFINE_int32(wait_seconds, 300, "How long to wait for the service");
DEFINE_validator(wait_seconds, &convoy::ValidatePositive);

namespace {

constexpr int kPerConversation = 10;
constexpr int64_t kT0 = 1750000000;

std::string Sender(int c) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "1%09d", c);
  return buf;
}

// Message k (0..9) of conversation c: SELL, email, description, 6 photos, DONE.
convoy::AmqpMessage Message(int c, int k) {
  const std::string wa_id = Sender(c), conv = "106540352242922:" + wa_id;
  const std::string wamid =
      "wamid." + FLAGS_tag + "." + std::to_string(c) + "." + std::to_string(k);
  std::string m;
  if (k == 0) m = R"("type":"text","text":{"body":"SELL"})";
  if (k == 1)
    m = R"("type":"text","text":{"body":"seller)" + std::to_string(c) + R"(@example.com"})";
  if (k == 2) m = R"("type":"text","text":{"body":"Nike running shoes, size 42, used, $35"})";
  if (k >= 3 && k <= 8) {
    m = R"("type":"image","image":{"id":"media.)" + FLAGS_tag + std::to_string(c) + "." +
        std::to_string(k) +
        R"(","mime_type":"image/jpeg","sha256":"SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI="})";
  }
  if (k == 9) m = R"("type":"text","text":{"body":"DONE"})";
  convoy::AmqpMessage msg;
  msg.exchange = convoy::exchanges::kInbound;
  msg.routing_key = "message";
  msg.message_id = wamid;
  msg.body =
      R"({"schema":"inbound.message","version":1,"correlation_id":"bench-)" + wamid +
      R"(","received_at":"2026-01-01T00:00:00.000Z","phone_number_id":"106540352242922","wa_id":")" +
      wa_id + R"(","conversation_key":")" + conv +
      R"(","profile_name":"Bench","message":{"from":")" + wa_id + R"(","id":")" + wamid +
      R"(","timestamp":")" + std::to_string(kT0 + k) + R"(",)" + m + "}}";
  msg.headers[convoy::headers::kDedupeKey] = wamid;
  msg.headers[convoy::headers::kCorrelationId] = "bench-" + wamid;
  msg.headers[convoy::headers::kConversationKey] = conv;
  return msg;
}

double NowEpoch() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

int64_t Applied(convoy::PgConnection& db) {
  auto r = db.Exec("SELECT count(*) FROM inbound_messages WHERE dedupe_key LIKE $1",
                   {"wamid." + FLAGS_tag + ".%"});
  return r.ok() ? r->get_int(0, 0) : -1;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "convoy-conversation-bench: load conversation.inbound, measure from the database");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  const int total = FLAGS_conversations * kPerConversation;
  std::map<std::string, double> published_at;
  double publish_seconds = 0;
  if (FLAGS_publish) {
    convoy::Status declared =
        convoy::DeclareConvoyTopology({FLAGS_amqp_url, "convoy-conversation-bench"});
    if (!declared.ok()) {
      std::fprintf(stderr, "cannot declare the topology: %s\n", declared.ToString().c_str());
      return 1;
    }
    convoy::Publisher pub(convoy::AmqpOptions{FLAGS_amqp_url, "convoy-conversation-bench"});
    pub.Start();
    if (!pub.WaitConnected(std::chrono::seconds(30))) {
      std::fprintf(stderr, "cannot connect to %s\n", convoy::RedactAmqpUrl(FLAGS_amqp_url).c_str());
      return 1;
    }
    // Conversation-major order within each round: message k of every conversation, then k+1, so
    // many conversations are in flight at once, as with many users.
    convoy::PublishBatch batch;
    auto start = std::chrono::steady_clock::now();
    int n = 0;
    for (int k = 0; k < kPerConversation; ++k) {
      for (int c = 0; c < FLAGS_conversations; ++c, ++n) {
        if (FLAGS_mode == "rate") {
          std::this_thread::sleep_until(
              start + std::chrono::microseconds(static_cast<int64_t>(1e6 * n / FLAGS_rate)));
        }
        convoy::AmqpMessage m = Message(c, k);
        published_at[m.message_id] = NowEpoch();
        pub.Publish(std::move(m), batch.Add());
      }
    }
    convoy::Status s = batch.Wait(std::chrono::steady_clock::now() + std::chrono::seconds(120));
    publish_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!s.ok()) {
      std::fprintf(stderr, "publish failed: %s\n", s.ToString().c_str());
      return 1;
    }
    std::fprintf(stderr, "published %d messages in %.1f s\n", total, publish_seconds);
    if (!FLAGS_wait) {
      std::printf("RESULT published=%d publish_s=%.2f\n", total, publish_seconds);
      return 0;
    }
  }
  auto db = convoy::PgConnection::Connect(FLAGS_pg_dsn);
  if (!db.ok()) {
    std::fprintf(stderr, "cannot connect to the database: %s\n", db.status().ToString().c_str());
    return 1;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(FLAGS_wait_seconds);
  int64_t applied = 0;
  while ((applied = Applied(**db)) < total && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(
        std::chrono::milliseconds(200));  // polling interval of a progress probe
  }
  if (applied < total) {
    std::fprintf(stderr, "only %lld of %d applied after %d s\n", static_cast<long long>(applied),
                 total, FLAGS_wait_seconds);
    return 1;
  }
  // When each delivery's transaction committed (track_commit_timestamp, set by scripts/infra.sh);
  // a server without it gives the transaction's start instead, and the line says so.
  const char* measured = "commit";
  auto rows = (*db)->Exec(
      "SELECT dedupe_key, extract(epoch FROM pg_xact_commit_timestamp(xmin))::float8 FROM "
      "inbound_messages "
      "WHERE dedupe_key LIKE $1",
      {"wamid." + FLAGS_tag + ".%"});
  if (!rows.ok()) {
    measured = "transaction_start";
    rows = (*db)->Exec(
        "SELECT dedupe_key, extract(epoch FROM processed_at)::float8 FROM inbound_messages WHERE "
        "dedupe_key LIKE $1",
        {"wamid." + FLAGS_tag + ".%"});
  }
  if (!rows.ok()) {
    std::fprintf(stderr, "%s\n", rows.status().ToString().c_str());
    return 1;
  }
  std::vector<double> latency_ms;
  double first = 1e300, last = 0;
  for (size_t i = 0; i < rows->size(); ++i) {
    double at = std::stod(rows->get(i, 1));
    first = std::min(first, at);
    last = std::max(last, at);
    auto sent = published_at.find(rows->get(i, 0));
    if (sent != published_at.end()) latency_ms.push_back(1000 * (at - sent->second));
  }
  double span = std::max(last - first, 1e-3);
  std::printf(
      "RESULT messages=%d conversations=%d apply_span_s=%.2f applied_per_s=%.0f publish_s=%.2f "
      "p50_ms=%.1f p99_ms=%.1f max_ms=%.1f until=%s (latency only for messages this run "
      "published)\n",
      total, FLAGS_conversations, span, total / span, publish_seconds, Percentile(latency_ms, 0.5),
      Percentile(latency_ms, 0.99), Percentile(latency_ms, 1.0), measured);
  return 0;
}
