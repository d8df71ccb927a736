// convoy-ingress: acknowledges WhatsApp webhooks once the broker has them.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <cstdlib>
#include <string>

#include "convoy/amqp.h"
#include "convoy/config.h"
#include "convoy/flags.h"
#include "convoy/http.h"
#include "ingress.h"

DEFINE_int32(max_body_bytes, 3 * 1024 * 1024,
             "Largest webhook body accepted; larger gets 413 (Meta's maximum is 3 MiB)");
DEFINE_validator(max_body_bytes, &convoy::ValidatePositive);
DEFINE_int32(publish_deadline_ms, 2000,
             "How long a POST waits for broker confirms before answering 503");
DEFINE_validator(publish_deadline_ms, &convoy::ValidatePositive);
DEFINE_int32(max_in_flight, 100000, "Publishes awaiting confirms before new POSTs get 503");
DEFINE_validator(max_in_flight, &convoy::ValidatePositive);
DEFINE_int32(max_history_messages, 1000,
             "Backfilled messages published per `history` change (coexistence onboarding); the "
             "rest are counted in "
             "convoy_ingress_history_dropped_total and not published");
DEFINE_validator(max_history_messages, &convoy::ValidatePositive);
DEFINE_string(app_secret_file, "", "File holding the Meta app secret (else env CONVOY_APP_SECRET)");
DEFINE_string(app_secret_previous_file, "",
              "During a rotation, file holding the app secret being replaced (else env "
              "CONVOY_APP_SECRET_PREVIOUS; "
              "unset: none); webhooks signed with either are accepted");
DEFINE_string(verify_token_file, "",
              "File holding the webhook verify token (else env CONVOY_VERIFY_TOKEN)");
DEFINE_string(
    apps_file, "",
    "File naming the Meta apps besides default, one a line: app, app secret, verify token and "
    "(during a "
    "rotation) the previous app secret, each env:NAME or file:/path; app X's webhooks come to "
    "/webhook/X (README: Tenancy). Unset: /webhook (the app default) only");

int main(int argc, char** argv) {
  // 1. load config
  // Requests wait for confirms without holding a thread: a few threads serve thousands a second.
  convoy::SetFlagDefault("http_threads", "8");
  convoy::InitService("ingress", "convoy-ingress: WhatsApp webhook endpoint", &argc, &argv);
  auto secret = convoy::LoadSecret("CONVOY_APP_SECRET", FLAGS_app_secret_file);
  auto token = convoy::LoadSecret("CONVOY_VERIFY_TOKEN", FLAGS_verify_token_file);
  // Optional: only while a rotation is under way.
  std::string previous;
  if (!FLAGS_app_secret_previous_file.empty() || std::getenv("CONVOY_APP_SECRET_PREVIOUS")) {
    auto loaded = convoy::LoadSecret("CONVOY_APP_SECRET_PREVIOUS", FLAGS_app_secret_previous_file);
    if (!loaded.ok()) {
      LOG(ERROR) << "service=ingress event=bad_config flag=app_secret_previous_file error="
                 << loaded.status().ToString();
      return 2;
    }
    previous = *loaded;
  }
  convoy::Result<convoy::ingress::AppSet> apps = convoy::ingress::AppSet{};
  if (!FLAGS_apps_file.empty()) apps = convoy::ingress::LoadAppsFile(FLAGS_apps_file);
  auto amqp = convoy::AmqpOptionsFromFlags("convoy-ingress");
  // 2. validate
  if (!secret.ok() || !token.ok()) {
    LOG(ERROR) << "service=ingress event=bad_config error="
               << (!secret.ok() ? secret.status() : token.status()).ToString();
    return 2;
  }
  if (!apps.ok()) {
    LOG(ERROR) << "service=ingress event=bad_config flag=apps_file error="
               << apps.status().ToString();
    return 2;
  }
  (*apps)[convoy::ingress::kDefaultApp] = {*secret, *token, previous};
  if (auto distinct = convoy::ingress::CheckSecretsDistinct(*apps); !distinct.ok()) {
    LOG(ERROR) << "service=ingress event=bad_config flag=apps_file error=" << distinct.ToString();
    return 2;
  }
  if (!amqp.ok()) {
    LOG(ERROR) << "service=ingress event=bad_config error=" << amqp.status().ToString();
    return 2;
  }
  // 3. wire up
  convoy::InitHttpThreads(static_cast<size_t>(FLAGS_http_threads));
  convoy::Publisher publisher(*amqp, static_cast<size_t>(FLAGS_max_in_flight));
  std::string names;
  for (const auto& app : *apps) names += (names.empty() ? "" : ",") + app.first;
  LOG(INFO) << "service=ingress event=apps_configured apps=" << names;
  convoy::ingress::WebhookHandler handler(
      {std::move(*apps), std::chrono::milliseconds(FLAGS_publish_deadline_ms),
       FLAGS_max_history_messages},
      [&publisher](convoy::AmqpMessage m, convoy::PublishCallback cb) {
        publisher.Publish(std::move(m), std::move(cb));
      });
  convoy::HttpServerOptions http{FLAGS_http_host,
                                 FLAGS_http_port,
                                 static_cast<size_t>(FLAGS_max_body_bytes),
                                 [&publisher] { return publisher.connected(); },
                                 &convoy::ingress::WebhookHandler::CountTooLarge,
                                 convoy::HttpLimitsFromFlags()};
  convoy::HttpServer server(http);
  // /webhook and /webhook/{app}: the handler reads the app from the path (404 for any other).
  server.Route("GET", "/webhook", [&](const convoy::HttpRequest& r) { return handler.Verify(r); });
  server.RouteAsync("POST", "/webhook",
                    [&](const convoy::HttpRequest& r, convoy::HttpResponder respond) {
                      handler.ReceiveAsync(r, std::move(respond));
                    });
  // 4. run
  publisher.Start();
  auto s = server.Start();
  if (!s.ok()) {
    LOG(ERROR) << "service=ingress event=listen_failed error=" << s.ToString();
    return 1;
  }
  LOG(INFO) << "service=ingress event=started port=" << server.port()
            << " metrics_port=" << server.metrics_port();
  convoy::WaitForShutdownSignal();
  server.Stop();
  publisher.Stop();
  return 0;
}
