#include "ingress.h"

#include <glog/logging.h>

#include <ctime>
#include <random>

#include "convoy/log.h"
#include "convoy/metrics.h"
#include "convoy/topology.h"
#include "webhook.h"

namespace convoy::ingress {

namespace {

struct IngressMetrics {
  Registry& r = DefaultRegistry();
  Counter& ok = Outcome("200");
  Counter& bad_request = Outcome("400");
  Counter& unauthorized = Outcome("401");
  Counter& forbidden = Outcome("403");
  Counter& unavailable = Outcome("503");
  Counter& too_large = Outcome("413");
  Counter& verified = r.GetCounter("convoy_ingress_verifications_total", "GET /webhook verifications that succeeded.");
  Counter& messages = Kind("message");
  Counter& statuses = Kind("status");
  Counter& errors = Kind("error");
  Counter& ignored_objects = Ignored("object");
  Counter& ignored_fields = Ignored("field");
  Counter& unknown = r.GetCounter("convoy_ingress_unknown_shapes_total", "Webhook items or values ingress could not interpret.");
  Histogram& confirm = r.GetHistogram("convoy_ingress_confirm_seconds", "Time from first publish to the last broker confirm of one POST.");
  Histogram& request = r.GetHistogram("convoy_ingress_request_seconds", "POST /webhook handling time.");

  Counter& Outcome(const char* code) {
    return r.GetCounter("convoy_ingress_requests_total", "Webhook requests by HTTP outcome.",
                        std::string("outcome=\"") + code + "\"");
  }
  Counter& Kind(const char* kind) {
    return r.GetCounter("convoy_ingress_updates_published_total", "Updates published, by kind.",
                        std::string("kind=\"") + kind + "\"");
  }
  Counter& Ignored(const char* what) {
    return r.GetCounter("convoy_ingress_ignored_total", "Webhook objects or changes accepted and ignored.",
                        std::string("what=\"") + what + "\"");
  }
};

IngressMetrics& Metrics() {
  static IngressMetrics* m = new IngressMetrics();
  return *m;
}

HttpResponse Text(int status, std::string body, const std::string& correlation_id = "") {
  HttpResponse r{status, "text/plain; charset=utf-8", std::move(body) + "\n", {}};
  if (!correlation_id.empty()) r.headers["X-Correlation-Id"] = correlation_id;
  return r;
}

}  // namespace

std::string NewCorrelationId() {
  thread_local std::mt19937_64 rng(std::random_device{}() ^ (static_cast<uint64_t>(std::random_device{}()) << 32));
  char buf[33];
  std::snprintf(buf, sizeof(buf), "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return buf;
}

std::string NowRfc3339() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc;
  gmtime_r(&ts.tv_sec, &utc);
  char buf[40];
  size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(buf + n, sizeof(buf) - n, ".%03ldZ", ts.tv_nsec / 1000000);
  return buf;
}

WebhookHandler::WebhookHandler(IngressSettings settings, PublishFn publish)
    : settings_(std::move(settings)), publish_(std::move(publish)) {
  Metrics();  // register every series at start so /metrics shows zeros
}

void WebhookHandler::CountTooLarge() { Metrics().too_large.Inc(); }

HttpResponse WebhookHandler::Verify(const HttpRequest& req) const {
  auto get = [&](const char* k) {
    auto it = req.query.find(k);
    return it == req.query.end() ? std::string() : it->second;
  };
  std::string token = get("hub.verify_token");
  bool ok = get("hub.mode") == "subscribe" && !settings_.verify_token.empty() &&
            token.size() == settings_.verify_token.size() &&
            ConstantTimeEquals(token, settings_.verify_token);
  if (!ok) {
    Metrics().forbidden.Inc();
    return Text(403, "verification failed");
  }
  Metrics().verified.Inc();
  return HttpResponse{200, "text/plain; charset=utf-8", get("hub.challenge"), {}};
}

HttpResponse WebhookHandler::Receive(const HttpRequest& req) {
  auto started = std::chrono::steady_clock::now();
  auto& m = Metrics();
  std::string correlation_id = NewCorrelationId();
  LogCtx ctx{"webhook", correlation_id};
  auto finish = [&](HttpResponse r) {
    m.request.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    r.headers["X-Correlation-Id"] = correlation_id;
    return r;
  };
  if (!VerifySignature(req.body, req.Header("x-hub-signature-256"), settings_.app_secret)) {
    m.unauthorized.Inc();
    LOG_EVERY_N(WARNING, 100) << ctx << "event=bad_signature bytes=" << req.body.size();
    return finish(Text(401, "invalid X-Hub-Signature-256"));
  }
  std::string received_at = NowRfc3339();
  auto split = SplitWebhook(req.body, correlation_id, received_at);
  if (!split.ok()) {
    m.bad_request.Inc();
    LOG_EVERY_N(WARNING, 100) << ctx << "event=bad_request reason=" << split.status().message();
    return finish(Text(400, split.status().message()));
  }
  if (split->ignored_object) m.ignored_objects.Inc();
  m.ignored_fields.Inc(split->ignored_changes);
  m.unknown.Inc(split->unknown_shapes);
  PublishBatch batch;
  auto publishing = std::chrono::steady_clock::now();
  for (auto& u : split->updates) {
    AmqpMessage msg;
    msg.exchange = exchanges::kInbound;
    msg.routing_key = u.routing_key;
    msg.message_id = u.message_id;
    msg.body = std::move(u.body);
    msg.headers[headers::kDedupeKey] = u.dedupe_key;
    msg.headers[headers::kCorrelationId] = correlation_id;
    msg.headers[headers::kReceivedAt] = received_at;
    if (!u.conversation_key.empty()) msg.headers[headers::kConversationKey] = u.conversation_key;
    LOG(INFO) << LogCtx{"webhook", correlation_id, u.conversation_key, u.dedupe_key}
              << "event=update_received kind=" << KindName(u.kind);
    publish_(std::move(msg), batch.Add());
  }
  Status s = batch.Wait(started + settings_.publish_deadline);
  m.confirm.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - publishing).count());
  if (!s.ok()) {
    m.unavailable.Inc();
    LOG_EVERY_N(WARNING, 10) << ctx << "event=not_confirmed updates=" << split->updates.size()
                             << " error=" << s.ToString();
    return finish(Text(503, "not stored, retry later"));
  }
  for (const auto& u : split->updates) {
    switch (u.kind) {
      case Update::Kind::kMessage: m.messages.Inc(); break;
      case Update::Kind::kStatus: m.statuses.Inc(); break;
      case Update::Kind::kError: m.errors.Inc(); break;
    }
  }
  m.ok.Inc();
  LOG(INFO) << ctx << "event=webhook_accepted updates=" << split->updates.size()
            << " ignored=" << split->ignored_changes + (split->ignored_object ? 1 : 0)
            << " unknown=" << split->unknown_shapes;
  return finish(Text(200, "ok"));
}

}  // namespace convoy::ingress
