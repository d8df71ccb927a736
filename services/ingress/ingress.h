#pragma once
// The webhook endpoint: GET verification and POST → signed, split, published with confirms,
// answered only once the broker confirmed every update of the POST.
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "convoy/amqp.h"
#include "convoy/http.h"

namespace convoy::ingress {

struct IngressSettings {
  std::string app_secret;
  std::string verify_token;
  std::chrono::milliseconds publish_deadline{2000};
  // During a rotation of the app secret, the one being replaced: webhooks signed with either are
  // accepted (Meta signs with the new one from the moment it is saved). Empty: none.
  std::string previous_app_secret = "";
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
  HttpResponse Verify(const HttpRequest& req) const;  // GET /webhook
  // POST /webhook: answers through `respond` when the broker confirmed every update (200), one
  // failed or the deadline passed (503), or at once for a bad request. No thread waits meanwhile.
  void ReceiveAsync(const HttpRequest& req, HttpResponder respond);
  HttpResponse Receive(const HttpRequest& req);  // the same, waiting for the answer
  static void CountTooLarge();                   // the HTTP layer answered 413

 private:
  IngressSettings settings_;
  PublishFn publish_;
  DeadlineTimer deadlines_;
};

std::string NewCorrelationId();
std::string NowRfc3339();

}  // namespace convoy::ingress
