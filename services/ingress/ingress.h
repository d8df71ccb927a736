#pragma once
// The webhook endpoint: GET verification and POST → signed, split, published with confirms,
// answered only once the broker confirmed every update of the POST.
#include <chrono>
#include <functional>
#include <string>

#include "convoy/amqp.h"
#include "convoy/http.h"

namespace convoy::ingress {

struct IngressSettings {
  std::string app_secret;
  std::string verify_token;
  std::chrono::milliseconds publish_deadline{2000};
};

// How ingress hands a message to the broker: Publisher::Publish in production, a fake in tests.
using PublishFn = std::function<void(AmqpMessage, PublishCallback)>;

class WebhookHandler {
 public:
  WebhookHandler(IngressSettings settings, PublishFn publish);
  HttpResponse Verify(const HttpRequest& req) const;  // GET /webhook
  HttpResponse Receive(const HttpRequest& req);       // POST /webhook
  static void CountTooLarge();                        // the HTTP layer answered 413

 private:
  IngressSettings settings_;
  PublishFn publish_;
};

std::string NewCorrelationId();
std::string NowRfc3339();

}  // namespace convoy::ingress
