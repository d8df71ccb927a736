// convoy-outbound-bench: Meta's side of the outbound benchmark. Serves the fake Graph API on
// --graph_port and measures, from the time each send arrived there:
//   --mode=preload   publish --sends outbound.send commands to one business number, each to a
//                    recipient of its own (so only the number's bucket paces), and exit
//   --mode=measure   serve the fake Graph API until --sends sends arrived, then report
//                    sends/s from the first to the last, and the steady rate over
//                    --window_seconds starting --skip_seconds after the first send (the burst
//                    is spent by then), with the busiest second
//   --mode=ceiling   serve the fake Graph API and post valid sends to it from --connections
//                    threads for --seconds: the HTTP ceiling the service is measured against
//   --mode=statuses  publish, for every "wamid<TAB>dedupe key" line of --wamids_file, its
//                    delivered and read statuses (inbound.status, as ingress makes them) to
//                    outbound.status, and exit
// Prints one "RESULT key=value ..." line.
#include <gflags/gflags.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "convoy/amqp.h"
#include "convoy/config.h"
#include "convoy/http.h"
#include "convoy/json.h"
#include "convoy/topology.h"
#include "fake_graph.h"

DEFINE_string(amqp_url, "amqp://guest:guest@127.0.0.1:21672/%2f",
              "Broker (use a throw-away vhost)");
DEFINE_validator(amqp_url, &convoy::ValidateAmqpUrl);
DEFINE_string(mode, "measure", "preload, measure, ceiling or statuses");
DEFINE_string(wamids_file, "", "statuses: lines of wamid<TAB>dedupe key");
static bool ValidateMode(const char* flag, const std::string& v) {
  if (v == "preload" || v == "measure" || v == "ceiling" || v == "statuses") return true;
  std::fprintf(stderr, "invalid value for --%s: %s (preload, measure, ceiling or statuses)\n", flag,
               v.c_str());
  return false;
}
DEFINE_validator(mode, &ValidateMode);
DEFINE_int32(graph_port, 18090, "Port of the fake Graph API (measure, ceiling)");
DEFINE_validator(graph_port, &convoy::ValidatePort);
DEFINE_int32(sends, 10000, "Commands to publish (preload) or sends to wait for (measure)");
DEFINE_validator(sends, &convoy::ValidatePositive);
DEFINE_string(tag, "b",
              "Prefix of this run's dedupe keys and recipients (runs in one database must differ)");
DEFINE_validator(tag, &convoy::ValidateNonEmpty);
DEFINE_int32(skip_seconds, 2,
             "measure: seconds after the first send before the steady window starts");
DEFINE_int32(window_seconds, 30, "measure: length of the steady window");
DEFINE_validator(window_seconds, &convoy::ValidatePositive);
DEFINE_int32(wait_seconds, 300, "measure: how long to wait for the sends");
DEFINE_validator(wait_seconds, &convoy::ValidatePositive);
DEFINE_int32(connections, 4, "ceiling: posting threads");
DEFINE_validator(connections, &convoy::ValidatePositive);
DEFINE_int32(seconds, 5, "ceiling: how long to post");
DEFINE_validator(seconds, &convoy::ValidatePositive);

namespace {

constexpr const char* kBusiness = "106540352242922";

std::string Token() {
  const char* t = std::getenv("CONVOY_GRAPH_TOKEN");
  return t && *t ? t : "bench-token";
}

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Publishes what `fill` adds (it returns how many, or -1 on bad input) with confirms, and prints
// "RESULT published=N".
int PublishAll(const std::function<int(convoy::Publisher&, convoy::PublishBatch&)>& fill) {
  convoy::Publisher pub(convoy::AmqpOptions{FLAGS_amqp_url, "convoy-outbound-bench"});
  pub.Start();
  if (!pub.WaitConnected(std::chrono::seconds(30))) {
    std::fprintf(stderr, "broker not reachable at %s\n",
                 convoy::RedactAmqpUrl(FLAGS_amqp_url).c_str());
    return 1;
  }
  convoy::PublishBatch batch;
  const int published = fill(pub, batch);
  convoy::Status s = batch.Wait(std::chrono::steady_clock::now() + std::chrono::seconds(120));
  pub.Stop();
  if (published < 0) return 1;
  if (!s.ok()) {
    std::fprintf(stderr, "publish: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("RESULT published=%d\n", published);
  return 0;
}

int Preload() {
  return PublishAll([](convoy::Publisher& pub, convoy::PublishBatch& batch) {
    const int64_t now = NowSeconds();
    for (int i = 0; i < FLAGS_sends; ++i) {
      char to[32];
      std::snprintf(to, sizeof(to), "2%09d", i);
      std::string key = FLAGS_tag + ":" + std::to_string(i);
      convoy::AmqpMessage m;
      m.exchange = convoy::exchanges::kCommands;
      m.routing_key = convoy::queues::kOutboundSend;
      m.message_id = key;
      m.body = R"({"schema":"outbound.send","version":1,"correlation_id":"bench-)" + key +
               R"(","dedupe_key":")" + key + R"(","conversation_key":")" + kBusiness + ":" + to +
               R"(","phone_number_id":")" + kBusiness + R"(","to":")" + to +
               R"(","last_inbound_at":)" + std::to_string(now) +
               R"(,"message":{"type":"text","text":{"body":"Great! Got 3 photos."}}})";
      m.headers = {{convoy::headers::kDedupeKey, key},
                   {convoy::headers::kCorrelationId, "bench-" + key},
                   {convoy::headers::kConversationKey, std::string(kBusiness) + ":" + to}};
      pub.Publish(std::move(m), batch.Add());
    }
    return FLAGS_sends;
  });
}

int Statuses() {
  std::ifstream in(FLAGS_wamids_file);
  if (!in) {
    std::fprintf(stderr, "cannot read --wamids_file %s\n", FLAGS_wamids_file.c_str());
    return 1;
  }
  return PublishAll([&in](convoy::Publisher& pub, convoy::PublishBatch& batch) {
    int published = 0;
    for (std::string line; std::getline(in, line);) {
      auto tab = line.find('\t');
      if (tab == std::string::npos) continue;
      const std::string wamid = line.substr(0, tab), dedupe = line.substr(tab + 1);
      for (const char* status : {"delivered", "read"}) {
        const std::string key = wamid + ":" + status;
        convoy::AmqpMessage m;
        m.exchange = convoy::exchanges::kInbound;
        m.routing_key = "status";
        m.message_id = key;
        m.body = R"({"schema":"inbound.status","version":1,"correlation_id":"bench-status",)"
                 R"("received_at":"2026-01-01T00:00:00Z","phone_number_id":")" +
                 std::string(kBusiness) + R"(","dedupe_key":")" + convoy::JsonEscape(key) +
                 R"(","status":{"id":")" + convoy::JsonEscape(wamid) + R"(","status":")" + status +
                 R"(","timestamp":"1750000001","recipient_id":"200000000",)"
                 R"("biz_opaque_callback_data":"convoy:)" +
                 convoy::JsonEscape(dedupe) + R"("}})";
        m.headers = {{convoy::headers::kDedupeKey, key},
                     {convoy::headers::kCorrelationId, "bench-status"}};
        pub.Publish(std::move(m), batch.Add());
        ++published;
      }
    }
    return published;
  });
}

int Measure() {
  convoy::fake::FakeGraph graph(Token(), "127.0.0.1", FLAGS_graph_port);
  convoy::Status s = graph.Start();
  if (!s.ok()) {
    std::fprintf(stderr, "fake graph: %s\n", s.ToString().c_str());
    return 1;
  }
  graph.WaitForSends(static_cast<size_t>(FLAGS_sends), std::chrono::seconds(FLAGS_wait_seconds));
  std::vector<int64_t> at = graph.SendTimesMs();
  graph.Stop();
  if (at.size() < 2) {
    std::fprintf(stderr, "only %zu sends arrived\n", at.size());
    return 1;
  }
  std::sort(at.begin(), at.end());
  double span = static_cast<double>(at.back() - at.front()) / 1000;
  const int64_t from = at.front() + FLAGS_skip_seconds * 1000,
                to = from + FLAGS_window_seconds * 1000;
  size_t in_window = 0, busiest = 0;
  for (size_t i = 0, j = 0; i < at.size(); ++i) {
    if (at[i] >= from && at[i] < to) ++in_window;
    while (at[i] - at[j] >= 1000) ++j;
    busiest = std::max(busiest, i - j + 1);
  }
  bool window_full = at.back() >= to;
  std::printf(
      "RESULT sends=%zu calls=%zu span_s=%.2f sends_per_s=%.1f window_s=%d window_rate=%.2f "
      "window_full=%d "
      "busiest_second=%zu\n",
      at.size(), graph.CallCount(), span, (at.size() - 1) / span, FLAGS_window_seconds,
      static_cast<double>(in_window) / FLAGS_window_seconds, window_full ? 1 : 0, busiest);
  return at.size() >= static_cast<size_t>(FLAGS_sends) ? 0 : 1;
}

int Ceiling() {
  convoy::fake::FakeGraph graph(Token(), "127.0.0.1", FLAGS_graph_port);
  convoy::Status s = graph.Start();
  if (!s.ok()) {
    std::fprintf(stderr, "fake graph: %s\n", s.ToString().c_str());
    return 1;
  }
  std::atomic<uint64_t> ok{0}, failed{0};
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(FLAGS_seconds);
  std::vector<std::thread> threads;
  for (int t = 0; t < FLAGS_connections; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; std::chrono::steady_clock::now() < end; ++i) {
        convoy::HttpClientRequest req;
        req.method = "POST";
        req.url = graph.base_url() + "/" + kBusiness + "/messages";
        req.headers["Authorization"] = "Bearer " + Token();
        req.body = R"({"messaging_product":"whatsapp","recipient_type":"individual","to":"3)" +
                   std::to_string(t) + std::to_string(i) +
                   R"(","type":"text","text":{"body":"Great! Got 3 photos."}})";
        auto r = convoy::HttpFetch(req);
        (r.ok() && r->status == 200 ? ok : failed).fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  graph.Stop();
  std::printf("RESULT posts=%llu failed=%llu posts_per_s=%.1f connections=%d\n",
              static_cast<unsigned long long>(ok.load()),
              static_cast<unsigned long long>(failed.load()),
              static_cast<double>(ok.load()) / FLAGS_seconds, FLAGS_connections);
  return failed.load() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "convoy-outbound-bench: the fake Graph API's side of the outbound benchmark");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  convoy::InitHttpThreads(8);
  if (FLAGS_mode == "preload") return Preload();
  if (FLAGS_mode == "ceiling") return Ceiling();
  if (FLAGS_mode == "statuses") return Statuses();
  return Measure();
}
