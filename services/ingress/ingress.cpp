#include "ingress.h"

#include <glog/logging.h>

#include <algorithm>
#include <condition_variable>
#include <ctime>
#include <future>
#include <mutex>
#include <queue>
#include <random>
#include <thread>
#include <vector>

#include "convoy/log.h"
#include "convoy/metrics.h"
#include "convoy/topology.h"
#include "webhook.h"

namespace convoy::ingress {

namespace {

// One counter per HTTP outcome of a webhook request, in one family; `labels` ("" or `app="x",`)
// comes before the outcome.
struct Outcomes {
  Outcomes(const char* family, const char* help, const std::string& labels)
      : ok(Get(family, help, labels, "200")),
        bad_request(Get(family, help, labels, "400")),
        unauthorized(Get(family, help, labels, "401")),
        forbidden(Get(family, help, labels, "403")),
        unavailable(Get(family, help, labels, "503")) {}
  static Counter& Get(const char* family, const char* help, const std::string& labels,
                      const char* code) {
    return DefaultRegistry().GetCounter(family, help, labels + "outcome=\"" + code + "\"");
  }
  Counter &ok, &bad_request, &unauthorized, &forbidden, &unavailable;
};

constexpr const char* kRequests = "convoy_ingress_requests_total";
constexpr const char* kRequestsHelp = "Webhook requests by HTTP outcome.";

struct IngressMetrics {
  Registry& r = DefaultRegistry();
  Outcomes outcomes{kRequests, kRequestsHelp, ""};
  Counter& too_large = Outcomes::Get(kRequests, kRequestsHelp, "", "413");
  Counter& unknown_app =
      Outcomes::Get(kRequests, kRequestsHelp, "", "404");  // no label: the name is anyone's
  Counter& verified = r.GetCounter("convoy_ingress_verifications_total",
                                   "GET /webhook verifications that succeeded.");
  Counter& messages = Kind("message");
  Counter& statuses = Kind("status");
  Counter& errors = Kind("error");
  Counter& preferences = Kind("preference");
  Counter& accounts = Kind("account");
  Counter& templates = Kind("template");
  Counter& standby = Kind("standby");
  Counter& echoes = Kind("echo");
  Counter& history = Kind("history");
  Counter& handovers = Kind("handover");
  Counter& history_dropped = r.GetCounter(
      "convoy_ingress_history_dropped_total",
      "Backfilled (history) messages past --max_history_messages in one change, not published.");
  Counter& ignored_objects = Ignored("object");
  Counter& ignored_fields = Ignored("field");
  Counter& unknown = r.GetCounter("convoy_ingress_unknown_shapes_total",
                                  "Webhook items or values ingress could not interpret.");
  Histogram& confirm =
      r.GetHistogram("convoy_ingress_confirm_seconds",
                     "Time from first publish to the last broker confirm of one POST.");
  Histogram& request =
      r.GetHistogram("convoy_ingress_request_seconds", "POST /webhook handling time.");

  Counter& Kind(const char* kind) {
    return r.GetCounter("convoy_ingress_updates_published_total", "Updates published, by kind.",
                        std::string("kind=\"") + kind + "\"");
  }
  Counter& Ignored(const char* what) {
    return r.GetCounter("convoy_ingress_ignored_total",
                        "Webhook objects or changes accepted and ignored.",
                        std::string("what=\"") + what + "\"");
  }
};

IngressMetrics& Metrics() {
  static IngressMetrics* m = new IngressMetrics();
  return *m;
}

// One configured app's series (as many as apps are configured: a name from a request path is
// never a label).
struct AppMetrics {
  explicit AppMetrics(const std::string& app)
      : outcomes("convoy_ingress_app_requests_total",
                 "Webhook requests to each configured app's path (/webhook is app default), by "
                 "HTTP outcome.",
                 "app=\"" + app + "\","),
        signed_current(Signed(app, "current")),
        signed_previous(Signed(app, "previous")) {}
  static Counter& Signed(const std::string& app, const char* secret) {
    return DefaultRegistry().GetCounter("convoy_ingress_signatures_verified_total",
                                        "Webhook signatures verified, by app and the app secret "
                                        "that matched (previous: during a rotation).",
                                        "app=\"" + app + "\",secret=\"" + secret + "\"");
  }
  Outcomes outcomes;
  Counter &signed_current, &signed_previous;
};

HttpResponse Text(int status, std::string body, const std::string& correlation_id = "") {
  HttpResponse r{status, "text/plain; charset=utf-8", std::move(body) + "\n", {}};
  if (!correlation_id.empty()) r.headers["X-Correlation-Id"] = correlation_id;
  return r;
}

}  // namespace

std::string NewCorrelationId() {
  thread_local std::mt19937_64 rng(std::random_device{}() ^
                                   (static_cast<uint64_t>(std::random_device{}()) << 32));
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

struct WebhookHandler::App {
  App(std::string n, AppCredentials c)
      : name(std::move(n)), credentials(std::move(c)), metrics(name) {}
  const std::string name;
  const AppCredentials credentials;
  AppMetrics metrics;
};

WebhookHandler::WebhookHandler(IngressSettings settings, PublishFn publish)
    : publish_deadline_(settings.publish_deadline),
      max_history_messages_(settings.max_history_messages),
      publish_(std::move(publish)) {
  Metrics();  // register every series at start so /metrics shows zeros
  for (auto& [name, credentials] : settings.apps)
    apps_[name] = std::make_unique<App>(name, std::move(credentials));
}

WebhookHandler::~WebhookHandler() = default;

void WebhookHandler::CountTooLarge() { Metrics().too_large.Inc(); }

const WebhookHandler::App* WebhookHandler::Find(const HttpRequest& req) const {
  auto name = AppOfPath(req.path);
  auto it = name ? apps_.find(*name) : apps_.end();
  if (it != apps_.end()) return it->second.get();
  Metrics().unknown_app.Inc();
  // The name is logged only when it could be an app's (a-z, 0-9, _, -; at most 64).
  LOG_EVERY_N(WARNING, 100) << "service=ingress handler=webhook event=unknown_app method="
                            << req.method << " app=" << (name ? *name : "(not a webhook path)")
                            << " (logged every 100th)";
  return nullptr;
}

namespace {
HttpResponse UnknownApp() {
  return Text(404,
              "no such app: /webhook serves the app default, /webhook/{app} each app ingress is "
              "configured with");
}
}  // namespace

HttpResponse WebhookHandler::Verify(const HttpRequest& req) const {
  const App* app = Find(req);
  if (!app) return UnknownApp();
  auto get = [&](const char* k) {
    auto it = req.query.find(k);
    return it == req.query.end() ? std::string() : it->second;
  };
  const std::string& expected = app->credentials.verify_token;
  std::string token = get("hub.verify_token");
  bool ok = get("hub.mode") == "subscribe" && !expected.empty() &&
            token.size() == expected.size() && ConstantTimeEquals(token, expected);
  if (!ok) {
    Metrics().outcomes.forbidden.Inc();
    app->metrics.outcomes.forbidden.Inc();
    return Text(403, "verification failed");
  }
  Metrics().verified.Inc();
  app->metrics.outcomes.ok.Inc();
  return HttpResponse{200, "text/plain; charset=utf-8", get("hub.challenge"), {}};
}

struct DeadlineTimer::Impl {
  using Entry = std::pair<std::chrono::steady_clock::time_point, std::function<void()>>;
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const { return a.first > b.first; }
  };
  std::mutex mu;
  std::condition_variable cv;
  std::priority_queue<Entry, std::vector<Entry>, Later> due;
  bool stopping = false;
  bool earlier = false;  // an entry due before the one waited for was added
  std::thread thread;

  // Deadlines are met to within kTick: at thousands of requests a second the thread wakes about
  // every kTick, not once per request.
  static constexpr std::chrono::milliseconds kTick{20};

  void Run() {
    std::unique_lock<std::mutex> lock(mu);
    while (!stopping) {
      if (due.empty()) {
        cv.wait(lock);
        continue;
      }
      auto next = std::max(due.top().first, std::chrono::steady_clock::now() + kTick);
      earlier = false;
      cv.wait_until(lock, next, [&] {
        return stopping || earlier || std::chrono::steady_clock::now() >= next;
      });
      while (!stopping && !due.empty() && due.top().first <= std::chrono::steady_clock::now()) {
        auto run = std::move(const_cast<Entry&>(due.top()).second);
        due.pop();
        lock.unlock();
        run();
        lock.lock();
      }
    }
  }
};

DeadlineTimer::DeadlineTimer() : impl_(new Impl()) {
  impl_->thread = std::thread([this] { impl_->Run(); });
}

DeadlineTimer::~DeadlineTimer() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->thread.join();
}

void DeadlineTimer::At(std::chrono::steady_clock::time_point when, std::function<void()> run) {
  bool idle = false;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    // Wake the thread only if it waits for nothing or for something due later than this.
    idle = impl_->due.empty() || when < impl_->due.top().first;
    if (idle) impl_->earlier = true;
    impl_->due.emplace(when, std::move(run));
  }
  if (idle) impl_->cv.notify_one();
}

namespace {

// One POST whose updates await their confirms; answered exactly once.
struct Pending {
  HttpResponder respond;
  // The app's series live in the registry for the life of the process: an answer that comes after
  // the handler is gone still counts.
  Counter* app_ok = nullptr;
  Counter* app_unavailable = nullptr;
  std::string correlation_id, app_name;
  std::chrono::steady_clock::time_point started, publishing;
  std::vector<Update::Kind> kinds;
  size_t ignored = 0, unknown = 0;
  std::atomic<size_t> remaining{0};
  std::atomic<bool> answered{false};

  // Every POST is answered: if nothing holds an outcome callback any more (a publisher that
  // dropped them), the last reference answers 503 here.
  ~Pending() {
    if (!answered.load())
      Answer(Status(Code::kUnavailable, "the publishes were dropped without an outcome"));
  }

  void Confirmed(PublishOutcome outcome) {
    if (outcome != PublishOutcome::kConfirmed) return Answer(PublishOutcomeStatus(outcome));
    if (remaining.fetch_sub(1) == 1) Answer(Status::Ok());
  }
  void Expired() {
    Answer(Status(Code::kTimeout, std::to_string(kinds.size() - remaining.load()) + " of " +
                                      std::to_string(kinds.size()) +
                                      " publishes confirmed in time"));
  }
  void Answer(const Status& s) {
    if (answered.exchange(true)) return;
    auto& m = Metrics();
    auto now = std::chrono::steady_clock::now();
    m.confirm.Observe(std::chrono::duration<double>(now - publishing).count());
    LogCtx ctx{"webhook", correlation_id};
    HttpResponse r;
    if (!s.ok()) {
      m.outcomes.unavailable.Inc();
      app_unavailable->Inc();
      LOG_EVERY_N(WARNING, 10) << ctx << "event=not_confirmed app=" << app_name
                               << " updates=" << kinds.size() << " error=" << s.ToString();
      r = Text(503, "not stored, retry later");
    } else {
      for (auto k : kinds) {
        switch (k) {
          case Update::Kind::kMessage:
            m.messages.Inc();
            break;
          case Update::Kind::kStatus:
            m.statuses.Inc();
            break;
          case Update::Kind::kError:
            m.errors.Inc();
            break;
          case Update::Kind::kPreference:
            m.preferences.Inc();
            break;
          case Update::Kind::kAccount:
            m.accounts.Inc();
            break;
          case Update::Kind::kTemplate:
            m.templates.Inc();
            break;
          case Update::Kind::kStandby:
            m.standby.Inc();
            break;
          case Update::Kind::kEcho:
            m.echoes.Inc();
            break;
          case Update::Kind::kHistory:
            m.history.Inc();
            break;
          case Update::Kind::kHandover:
            m.handovers.Inc();
            break;
        }
      }
      m.outcomes.ok.Inc();
      app_ok->Inc();
      LOG(INFO) << ctx << "event=webhook_accepted app=" << app_name << " updates=" << kinds.size()
                << " ignored=" << ignored << " unknown=" << unknown;
      r = Text(200, "ok");
    }
    m.request.Observe(std::chrono::duration<double>(now - started).count());
    r.headers["X-Correlation-Id"] = correlation_id;
    respond(std::move(r));
  }
};

}  // namespace

void WebhookHandler::ReceiveAsync(const HttpRequest& req, HttpResponder respond) {
  auto started = std::chrono::steady_clock::now();
  auto& m = Metrics();
  std::string correlation_id = NewCorrelationId();
  LogCtx ctx{"webhook", correlation_id};
  auto finish = [&](HttpResponse r) {
    m.request.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    r.headers["X-Correlation-Id"] = correlation_id;
    respond(std::move(r));
  };
  const App* app = Find(req);
  if (!app) return finish(UnknownApp());
  // Only this app's secrets: a webhook signed for another app is refused here, never accepted as
  // this one's.
  const AppCredentials& secrets = app->credentials;
  const std::string signature = req.Header("x-hub-signature-256");
  if (VerifySignature(req.body, signature, secrets.app_secret)) {
    app->metrics.signed_current.Inc();
  } else if (!secrets.previous_app_secret.empty() &&
             VerifySignature(req.body, signature, secrets.previous_app_secret)) {
    app->metrics.signed_previous.Inc();
  } else {
    m.outcomes.unauthorized.Inc();
    app->metrics.outcomes.unauthorized.Inc();
    LOG_EVERY_N(WARNING, 100) << ctx << "event=bad_signature app=" << app->name
                              << " bytes=" << req.body.size();
    return finish(Text(401, "invalid X-Hub-Signature-256"));
  }
  std::string received_at = NowRfc3339();
  auto split =
      SplitWebhook(req.body, correlation_id, received_at, SplitLimits{max_history_messages_});
  if (!split.ok()) {
    m.outcomes.bad_request.Inc();
    app->metrics.outcomes.bad_request.Inc();
    LOG_EVERY_N(WARNING, 100) << ctx << "event=bad_request app=" << app->name
                              << " reason=" << split.status().message();
    return finish(Text(400, split.status().message()));
  }
  if (split->ignored_object) m.ignored_objects.Inc();
  m.ignored_fields.Inc(split->ignored_changes);
  m.unknown.Inc(split->unknown_shapes);
  if (split->history_dropped > 0) {
    m.history_dropped.Inc(split->history_dropped);
    LOG(WARNING) << ctx << "event=history_dropped app=" << app->name
                 << " dropped=" << split->history_dropped << " published=" << split->updates.size()
                 << " (--max_history_messages a change)";
  }
  auto pending = std::make_shared<Pending>();
  pending->respond = std::move(respond);
  pending->app_ok = &app->metrics.outcomes.ok;
  pending->app_unavailable = &app->metrics.outcomes.unavailable;
  pending->app_name = app->name;
  pending->correlation_id = correlation_id;
  pending->started = started;
  pending->publishing = std::chrono::steady_clock::now();
  pending->ignored = split->ignored_changes + (split->ignored_object ? 1 : 0);
  pending->unknown = split->unknown_shapes;
  for (const auto& u : split->updates) pending->kinds.push_back(u.kind);
  pending->remaining =
      split->updates.size() + 1;  // +1: released after every publish was handed over
  for (auto& u : split->updates) {
    AmqpMessage msg;
    msg.exchange = exchanges::kInbound;
    msg.routing_key = u.routing_key;
    msg.message_id = u.message_id;
    msg.body = WithApp(u.body, app->name);
    msg.headers[headers::kDedupeKey] = u.dedupe_key;
    msg.headers[headers::kCorrelationId] = correlation_id;
    msg.headers[headers::kReceivedAt] = received_at;
    if (!u.conversation_key.empty()) msg.headers[headers::kConversationKey] = u.conversation_key;
    LOG(INFO) << LogCtx{"webhook", correlation_id, u.conversation_key, u.dedupe_key}
              << "event=update_received app=" << app->name << " kind=" << KindName(u.kind);
    publish_(std::move(msg), [pending](PublishOutcome outcome) { pending->Confirmed(outcome); });
  }
  if (!pending->answered.load()) {
    std::weak_ptr<Pending> weak = pending;
    deadlines_.At(started + publish_deadline_, [weak] {
      if (auto p = weak.lock()) p->Expired();
    });
  }
  pending->Confirmed(PublishOutcome::kConfirmed);  // the +1: every publish is handed over
}

HttpResponse WebhookHandler::Receive(const HttpRequest& req) {
  auto answer = std::make_shared<std::promise<HttpResponse>>();
  auto future = answer->get_future();
  ReceiveAsync(req, [answer](HttpResponse r) { answer->set_value(std::move(r)); });
  return future.get();
}

}  // namespace convoy::ingress
