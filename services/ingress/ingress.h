#pragma once
// The webhook endpoint: GET verification and POST → signed, split, published with confirms,
// answered only once the broker confirmed every update of the POST. /webhook/{app} is verified
// with that app's secret and token alone, /webhook with the app `default`'s (apps.h).
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "apps.h"
#include "convoy/amqp.h"
#include "convoy/http.h"

namespace convoy::ingress {

struct IngressSettings {
  AppSet apps;  // `default` is /webhook's; any other app is /webhook/{app}
  std::chrono::milliseconds publish_deadline{2000};
  int max_history_messages = 1000;  // --max_history_messages (webhook.h SplitLimits)
};

// How ingress hands a message to the broker: Publisher::Publish in production, a fake in tests.
using PublishFn = std::function<void(AmqpMessage, PublishCallback)>;

// Runs callbacks at their deadline on a thread of its own (a callback may find its work done).
class DeadlineTimer {
 public:
  DeadlineTimer();
  ~DeadlineTimer();
  void At(std::chrono::steady_clock::time_point when, std::function<void()> run);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class WebhookHandler {
 public:
  WebhookHandler(IngressSettings settings, PublishFn publish);
  ~WebhookHandler();
  // GET /webhook[/{app}]: 404 for a path that names no configured app.
  HttpResponse Verify(const HttpRequest& req) const;
  // POST /webhook[/{app}]: answers through `respond` when the broker confirmed every update (200),
  // one failed or the deadline passed (503), or at once for a bad request (a path that names no
  // configured app: 404, before the signature is looked at). No thread waits meanwhile. Every
  // update published carries the app in its envelope.
  void ReceiveAsync(const HttpRequest& req, HttpResponder respond);
  HttpResponse Receive(const HttpRequest& req);  // the same, waiting for the answer
  static void CountTooLarge();                   // the HTTP layer answered 413

 private:
  struct App;
  const App* Find(const HttpRequest& req) const;  // nullptr: counted and logged as an unknown app
  std::map<std::string, std::unique_ptr<App>> apps_;
  std::chrono::milliseconds publish_deadline_;
  int max_history_messages_;
  PublishFn publish_;
  DeadlineTimer deadlines_;
};

std::string NewCorrelationId();
std::string NowRfc3339();

}  // namespace convoy::ingress
