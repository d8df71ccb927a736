// convoy-outbound: the only thing that talks to Meta's send endpoint.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <algorithm>
#include <cstdio>

#include "admin.h"
#include "chatwoot_hook.h"
#include "convoy/amqp.h"
#include "convoy/config.h"
#include "convoy/consumer_group.h"
#include "convoy/flags.h"
#include "convoy/http.h"
#include "convoy/json.h"
#include "convoy/ledger.h"
#include "convoy/pg.h"
#include "convoy/queue_waits.h"
#include "convoy/retention.h"
#include "convoy/startup.h"
#include "convoy/tokens.h"
#include "convoy/topology.h"
#include "deliverer.h"
#include "extractor.h"
#include "in_doubt.h"
#include "retention_rules.h"
#include "sender.h"

DEFINE_bool(
    pacing, true,
    "Pace sends with token buckets per business number and per recipient (shared by replicas)");
DEFINE_double(number_rate, 80,
              "Sends per second for a business number the registry does not have (a registered "
              "number goes at its "
              "throughput; Meta's default: 80)");
DEFINE_double(number_burst, 20, "Sends a business number's bucket holds (burst above the rate)");
DEFINE_double(pair_refill_seconds, 6,
              "Seconds per token of a recipient's bucket (Meta's pair rate: about 1 per 6 s)");
DEFINE_double(pair_burst, 45, "Sends a recipient's bucket holds (Meta allows bursts to one user)");
DEFINE_int32(send_deadline_seconds, 24 * 3600,
             "A send failing transiently (Meta down, rate limits) is retried, backing off up to "
             "the longest delay "
             "tier, until this long after its first attempt or until its customer-service window "
             "closes, whichever "
             "is sooner; then it is failed and parked with the last error (60..604800)");
DEFINE_int32(reconcile_seconds, 30,
             "How long a send that may have reached Meta (no answer, or the process died) waits "
             "for its status "
             "webhook before it is sent again (1..3600)");
DEFINE_int32(record_attempts, 8,
             "After Meta accepted a send or a sink took a delivery, how many times recording it "
             "is tried, through the delay tiers (1 s, 5 s, 30 s, 2 m, then 10 m), before the "
             "command is parked with the answer for a replay that only records it (1..100)");
DEFINE_int32(
    thread_control_deadline_seconds, 600,
    "A call of Meta's thread_control (POST /v1/conversations/{id}/pass and /take) answered with a "
    "transient error is retried through the delay tiers until this long after its first attempt; "
    "then the "
    "conversation hears it failed (60..86400)");
DEFINE_int32(
    in_doubt_interval_seconds, 15,
    "How often the sends in doubt (Meta may have taken them, no record says so) are counted into "
    "convoy_outbound_in_doubt_sends and convoy_outbound_in_doubt_oldest_seconds (1..3600)");

DEFINE_int32(template_sync_page_size, 100,
             "Templates asked for per page when POST /v1/templates/sync reads a WABA's catalog "
             "from Graph (1..1000)");
DEFINE_int32(
    template_sync_max_pages, 200,
    "Pages a template sync reads at most; a WABA with more is not synced, and says so (1..100000)");

DEFINE_string(sinks_file, "",
              "Where results go, by name (JSON, proto-schemas/sinks.v1.json); without it results "
              "are held until "
              "their sink is configured");
DEFINE_string(delivery_schedule, "0,5s,5m,30m,2h,5h,10h,10h",
              "Delays before each delivery attempt (ms, s, m, h); its length is the number of "
              "attempts, then the "
              "delivery is parked");
DEFINE_int32(delivery_timeout_seconds, 15,
             "Timeout of one delivery attempt, for sinks that name none (1..120)");
DEFINE_string(media_public_url, "http://127.0.0.1:8082",
              "convoy-media's address as a sink's receiver (and Meta, for an agent's photo) "
              "reaches it: photo links are "
              "<url>/media/<name>?expires=&sig=");
DEFINE_string(
    media_link_secret_file, "",
    "File holding the secret photo links are signed with (else CONVOY_MEDIA_LINK_SECRET)");
DEFINE_int32(
    media_link_ttl_seconds, 7 * 86400,
    "How long a delivered photo link (or an agent's photo sent to Meta) works (60..2592000 s)");
DEFINE_int32(shopify_reconcile_seconds, 30,
             "A Shopify attempt whose outcome is unknown is looked up by its tag no sooner than "
             "this after it "
             "started (the store's search is indexed after its writes; 1..3600)");
DEFINE_string(conversation_api_url, "http://127.0.0.1:8081",
              "convoy-conversation's address from outbound: a Chatwoot agent's reply (POST "
              "/hooks/chatwoot/{sink}) is "
              "sent through its POST /v1/conversations/{id}/messages with the sink's agent_token");
DEFINE_string(extractors_file, "",
              "Extractors a flow may name (proto-schemas/extractors.v1.json): OpenAI-compatible "
              "chat-completions "
              "endpoints asked for the fields an answer's rules could not find; empty: none (the "
              "person is asked)");
DEFINE_string(content_guard_file, "deploy/guard/content-guard.json",
              "Deny rules applied to every text just before the Graph API call "
              "(proto-schemas/content_guard.v1.json); "
              "empty: no guard");
DEFINE_string(
    admin_token_file, "",
    "File holding the admin API's bearer token, a global admin (else CONVOY_ADMIN_TOKEN)");
DEFINE_string(tokens_file, "",
              "Named API tokens, one a line: name role tenant sha256:<hex> (roles viewer, agent, "
              "manager, operator, "
              "admin; tenant or *); read again when it changes and on SIGHUP. `convoyctl token "
              "hash` prints a line");

DEFINE_string(
    forward_secret_file, "",
    "File holding the secret conversation vouches with for a person its OIDC proxy signed "
    "in (their /v1/deliveries calls; else CONVOY_FORWARD_SECRET; the same on "
    "conversation, media and outbound; at least 32 characters); unset: no vouch is taken");

namespace {

using convoy::InRange;
bool ValidateRate(const char* flag, double v) { return InRange(flag, v, 0.001, 10000); }
bool ValidateBurst(const char* flag, double v) { return InRange(flag, v, 1, 100000); }
bool ValidateRefill(const char* flag, double v) { return InRange(flag, v, 0.001, 86400); }
bool ValidateReconcile(const char* flag, int32_t v) { return InRange(flag, v, 1, 3600); }
bool ValidateSendDeadline(const char* flag, int32_t v) { return InRange(flag, v, 60, 7 * 86400); }
bool ValidateRecordAttempts(const char* flag, int32_t v) { return InRange(flag, v, 1, 100); }
bool ValidateInDoubtInterval(const char* flag, int32_t v) { return InRange(flag, v, 1, 3600); }
bool ValidateThreadControlDeadline(const char* flag, int32_t v) {
  return InRange(flag, v, 60, 86400);
}
bool ValidateTemplatePageSize(const char* flag, int32_t v) { return InRange(flag, v, 1, 1000); }
bool ValidateTemplateMaxPages(const char* flag, int32_t v) { return InRange(flag, v, 1, 100000); }

bool ValidateDeliveryTimeout(const char* flag, int32_t v) { return InRange(flag, v, 1, 120); }
bool ValidateShopifyReconcile(const char* flag, int32_t v) { return InRange(flag, v, 1, 3600); }
bool ValidateLinkTtl(const char* flag, int32_t v) { return InRange(flag, v, 60, 30 * 86400); }
bool ValidateSchedule(const char* flag, const std::string& v) {
  auto s = convoy::outbound::ParseSchedule(v);
  if (!s.ok())
    std::fprintf(stderr, "invalid value for --%s: %s\n", flag, s.status().message().c_str());
  return s.ok();
}

}  // namespace

DEFINE_validator(delivery_timeout_seconds, &ValidateDeliveryTimeout);
DEFINE_validator(media_link_ttl_seconds, &ValidateLinkTtl);
DEFINE_validator(shopify_reconcile_seconds, &ValidateShopifyReconcile);
DEFINE_validator(delivery_schedule, &ValidateSchedule);
DEFINE_validator(media_public_url, &convoy::ValidateHttpUrl);
DEFINE_validator(conversation_api_url, &convoy::ValidateHttpUrl);
DEFINE_validator(number_rate, &ValidateRate);
DEFINE_validator(number_burst, &ValidateBurst);
DEFINE_validator(pair_refill_seconds, &ValidateRefill);
DEFINE_validator(pair_burst, &ValidateBurst);
DEFINE_validator(reconcile_seconds, &ValidateReconcile);
DEFINE_validator(send_deadline_seconds, &ValidateSendDeadline);
DEFINE_validator(record_attempts, &ValidateRecordAttempts);
DEFINE_validator(in_doubt_interval_seconds, &ValidateInDoubtInterval);
DEFINE_validator(thread_control_deadline_seconds, &ValidateThreadControlDeadline);
DEFINE_validator(template_sync_page_size, &ValidateTemplatePageSize);
DEFINE_validator(template_sync_max_pages, &ValidateTemplateMaxPages);

DEFINE_int32(status_batch, 32,
             "Status webhooks applied in one transaction (1 to 1000; at most --prefetch): the "
             "deliveries the broker already sent, never waiting to fill a batch");
static bool ValidateStatusBatch(const char* flag, int32_t v) {
  if (v >= 1 && v <= 1000) return true;
  std::fprintf(stderr, "invalid value for --%s: %d (1 to 1000)\n", flag, v);
  return false;
}
DEFINE_validator(status_batch, &ValidateStatusBatch);

namespace {

// A Sender on a database connection of its own (kept alive by the handler that holds it).
struct OwnedSender {
  std::shared_ptr<convoy::PgConnection> conn;
  std::shared_ptr<convoy::outbound::Sender> sender;
};
convoy::Result<OwnedSender> MakeSender(const convoy::SchemaRegistry& schemas,
                                       const convoy::outbound::SenderSettings& settings,
                                       convoy::Publisher& publisher) {
  auto db = convoy::PgConnection::Connect(FLAGS_pg_dsn);
  if (!db.ok()) return db.status();
  std::shared_ptr<convoy::PgConnection> conn(std::move(*db));
  auto sender = std::make_shared<convoy::outbound::Sender>(
      *conn, schemas, settings, [&publisher](convoy::AmqpMessage m) {
        return publisher.PublishAndWait(std::move(m), std::chrono::seconds(10));
      });
  return OwnedSender{conn, sender};
}

convoy::HandlerFactory SenderFactory(const convoy::SchemaRegistry& schemas,
                                     const convoy::outbound::SenderSettings& settings,
                                     convoy::Publisher& publisher) {
  return [&schemas, settings, &publisher]() -> convoy::Result<convoy::DeliveryHandler> {
    auto made = MakeSender(schemas, settings, publisher);
    if (!made.ok()) return made.status();
    auto conn = made->conn;
    auto sender = made->sender;
    return convoy::Ledgered(
        [conn, sender](const convoy::Delivery& d) { return sender->HandleSend(d); }, *conn,
        convoy::kUnlimitedAttempts);
  };
}

// outbound.status: a batch of statuses per transaction (Sender::HandleStatusBatch).
convoy::BatchHandlerFactory StatusFactory(const convoy::SchemaRegistry& schemas,
                                          const convoy::outbound::SenderSettings& settings,
                                          convoy::Publisher& publisher) {
  return [&schemas, settings, &publisher]() -> convoy::Result<convoy::BatchHandler> {
    auto made = MakeSender(schemas, settings, publisher);
    if (!made.ok()) return made.status();
    return convoy::BatchHandler([owned = *made](const std::vector<convoy::Delivery>& batch) {
      return owned.sender->HandleStatusBatch(batch);
    });
  };
}

}  // namespace

int main(int argc, char** argv) {
  // 1. load config
  convoy::SetFlagDefault("http_port", "8083");
  convoy::InitService("outbound", "convoy-outbound: sends WhatsApp messages through the Graph API",
                      &argc, &argv);
  auto token = convoy::LoadSecret("CONVOY_GRAPH_TOKEN", FLAGS_graph_token_file);
  // 2. validate: a token, schemas, a reachable and migrated database
  // Sinks first: a wrong sink is a configuration error, named before anything connects.
  convoy::SchemaRegistry config_schemas;
  convoy::Status loaded = config_schemas.LoadDir(FLAGS_schema_dir);
  auto sinks = loaded.ok() ? convoy::outbound::LoadSinks(
                                 FLAGS_sinks_file, config_schemas,
                                 std::chrono::seconds(FLAGS_delivery_timeout_seconds))
                           : convoy::Result<convoy::outbound::SinkSet>(loaded);
  if (!sinks.ok()) {
    LOG(ERROR) << "service=outbound event=startup_failed flag=--sinks_file error="
               << sinks.status().ToString();
    return 1;
  }
  convoy::DatabaseService base;
  convoy::Status s =
      token.ok() ? convoy::PrepareDatabaseService(FLAGS_schema_dir, FLAGS_pg_dsn,
                                                  FLAGS_migrations_dir, FLAGS_migrate, &base)
                 : token.status();
  if (!s.ok()) {
    LOG(ERROR) << "service=outbound event=startup_failed error=" << s.ToString();
    return 1;
  }
  const convoy::SchemaRegistry& schemas = base.schemas;
  auto link_secret = convoy::LoadSecret("CONVOY_MEDIA_LINK_SECRET", FLAGS_media_link_secret_file);
  auto admin_token = convoy::LoadSecret("CONVOY_ADMIN_TOKEN", FLAGS_admin_token_file);
  if (!sinks->sinks.empty() && !link_secret.ok()) {
    LOG(ERROR)
        << "service=outbound event=startup_failed error=sinks deliver photos as signed links: "
        << link_secret.status().ToString();
    return 1;
  }
  if (!FLAGS_admin_token_file.empty() && !admin_token.ok()) {
    LOG(ERROR) << "service=outbound event=startup_failed flag=--admin_token_file error="
               << admin_token.status().ToString();
    return 1;
  }
  auto tokens = convoy::TokenStore::Open(FLAGS_tokens_file, admin_token.ok() ? *admin_token : "");
  if (!tokens.ok()) {
    LOG(ERROR) << "service=outbound event=startup_failed flag=--tokens_file error="
               << tokens.status().ToString();
    return 1;
  }
  auto forward_secret = convoy::LoadForwardSecret(FLAGS_forward_secret_file);
  if (!forward_secret.ok()) {
    LOG(ERROR) << "service=outbound event=startup_failed flag=--forward_secret_file error="
               << forward_secret.status().ToString();
    return 1;
  }
  for (const auto& [name, sink] : sinks->sinks) {
    LOG(INFO) << "service=outbound event=sink_configured sink=" << name
              << " kind=" << convoy::outbound::KindName(sink.kind) << " url=" << sink.url
              << (sink.allow_private ? " allow_private=true" : "");
  }
  {
    auto db = convoy::PgConnection::Connect(FLAGS_pg_dsn);
    auto released = db.ok() ? convoy::outbound::ReleaseHeld(**db, *sinks)
                            : convoy::Result<int64_t>(db.status());
    if (!released.ok()) {
      LOG(WARNING) << "service=outbound event=release_held_failed error="
                   << released.status().ToString();
    } else if (*released > 0) {
      LOG(WARNING) << "service=outbound event=held_deliveries_released count=" << *released;
    }
  }
  convoy::outbound::DeliverySettings delivery;
  delivery.schedule = *convoy::outbound::ParseSchedule(FLAGS_delivery_schedule);
  delivery.media_base_url = FLAGS_media_public_url;
  delivery.link_secret = link_secret.ok() ? *link_secret : "";
  delivery.link_ttl = std::chrono::seconds(FLAGS_media_link_ttl_seconds);
  delivery.shopify_search_lag = std::chrono::seconds(FLAGS_shopify_reconcile_seconds);
  delivery.record_attempts = FLAGS_record_attempts;
  convoy::outbound::shopify::Throttle throttle;
  // 3. wire up
  convoy::InitHttpThreads(static_cast<size_t>(FLAGS_http_threads));
  auto amqp_options = convoy::AmqpOptionsFromFlags("convoy-outbound");
  if (!amqp_options.ok()) {
    LOG(ERROR) << "service=outbound event=bad_config error=" << amqp_options.status().ToString();
    return 2;
  }
  const convoy::AmqpOptions& amqp = *amqp_options;
  convoy::Publisher publisher(amqp);
  convoy::outbound::SenderSettings settings;
  settings.graph = {
      FLAGS_graph_base_url, *token, std::chrono::milliseconds(FLAGS_graph_timeout_ms),
      convoy::DeploymentGraphSecrets(FLAGS_graph_token_file,
                                     std::chrono::seconds(FLAGS_graph_token_check_seconds))};
  settings.pacing = {FLAGS_pacing, FLAGS_number_rate, FLAGS_number_burst,
                     1.0 / FLAGS_pair_refill_seconds, FLAGS_pair_burst};
  settings.send_deadline = std::chrono::seconds(FLAGS_send_deadline_seconds);
  settings.reconcile = std::chrono::seconds(FLAGS_reconcile_seconds);
  settings.record_attempts = FLAGS_record_attempts;
  settings.thread_control_deadline = std::chrono::seconds(FLAGS_thread_control_deadline_seconds);
  settings.media_base_url = FLAGS_media_public_url;
  settings.link_secret = link_secret.ok() ? *link_secret : "";
  settings.link_ttl = std::chrono::seconds(FLAGS_media_link_ttl_seconds);
  auto extractors = convoy::outbound::LoadExtractors(FLAGS_extractors_file, schemas);
  if (!extractors.ok()) {
    LOG(ERROR) << "service=outbound event=startup_failed flag=--extractors_file error="
               << extractors.status().ToString();
    return 1;
  }
  LOG(INFO) << "service=outbound event=extractors_loaded count=" << extractors->extractors.size();
  if (!FLAGS_content_guard_file.empty()) {
    std::string path = FLAGS_content_guard_file;
    const auto slash = path.rfind('/');
    if (path[0] != '/' && slash != std::string::npos) {
      path = convoy::FindDataDir(path.substr(0, slash), "guard") + path.substr(slash);
    }
    auto guard = convoy::outbound::ContentGuard::Load(path, schemas);
    if (!guard.ok()) {
      LOG(ERROR) << "service=outbound event=startup_failed flag=--content_guard_file error="
                 << guard.status().ToString();
      return 1;
    }
    settings.guard = *guard;
    LOG(INFO) << "service=outbound event=content_guard_loaded file=" << path
              << " rules=" << (*guard)->rules();
  } else {
    LOG(WARNING) << "service=outbound event=content_guard_off (--content_guard_file is empty)";
  }
  convoy::ConsumerGroup consumers(publisher);
  // Sends have a retry budget in time (--send_deadline_seconds), not a count: the sender parks
  // them.
  s = consumers.Add(
      {amqp, convoy::queues::kOutboundSend, FLAGS_prefetch, convoy::kUnlimitedAttempts},
      FLAGS_consumer_threads, SenderFactory(schemas, settings, publisher));
  if (s.ok()) {
    s = consumers.AddBatch({amqp, convoy::queues::kOutboundStatus, FLAGS_prefetch,
                            FLAGS_max_attempts, std::min(FLAGS_status_batch, FLAGS_prefetch)},
                           1, StatusFactory(schemas, settings, publisher));
  }
  if (s.ok()) {
    // Deliveries count their attempts themselves (the schedule), like sends.
    s = consumers.Add(
        {amqp, convoy::queues::kOutboundDeliver, FLAGS_prefetch, convoy::kUnlimitedAttempts},
        FLAGS_consumer_threads, [&]() -> convoy::Result<convoy::DeliveryHandler> {
          auto db = convoy::PgConnection::Connect(FLAGS_pg_dsn);
          if (!db.ok()) return db.status();
          std::shared_ptr<convoy::PgConnection> conn(std::move(*db));
          auto deliverer = std::make_shared<convoy::outbound::Deliverer>(*conn, schemas, *sinks,
                                                                         delivery, throttle);
          return convoy::Ledgered(
              [conn, deliverer](const convoy::Delivery& d) { return deliverer->Handle(d); }, *conn,
              convoy::kUnlimitedAttempts);
        });
  }
  if (s.ok()) {
    // Extractor calls: bounded by the deadline each command carries, then always answered.
    s = consumers.Add(
        {amqp, convoy::queues::kOutboundExtract, FLAGS_prefetch, convoy::kUnlimitedAttempts},
        FLAGS_consumer_threads, [&]() -> convoy::Result<convoy::DeliveryHandler> {
          auto db = convoy::PgConnection::Connect(FLAGS_pg_dsn);
          if (!db.ok()) return db.status();
          std::shared_ptr<convoy::PgConnection> conn(std::move(*db));
          auto extractor = std::make_shared<convoy::outbound::Extractor>(
              schemas, *extractors, [&publisher](convoy::AmqpMessage m) {
                return publisher.PublishAndWait(std::move(m), std::chrono::seconds(10));
              });
          return convoy::Ledgered(
              [conn, extractor](const convoy::Delivery& d) { return extractor->Handle(d); }, *conn,
              convoy::kUnlimitedAttempts);
        });
  }
  if (!s.ok()) {
    LOG(ERROR) << "service=outbound event=startup_failed error=" << s.ToString();
    return 1;
  }
  convoy::HttpServer server(
      {FLAGS_http_host,
       FLAGS_http_port,
       1 << 20,
       [&] { return publisher.connected() && consumers.connected() && base.DatabaseReachable(); },
       {},
       convoy::HttpLimitsFromFlags()});
  convoy::outbound::AdminSettings admin;
  admin.pg_dsn = FLAGS_pg_dsn;
  admin.tokens = *tokens;
  admin.forward_secret = *forward_secret;
  admin.graph = {FLAGS_graph_base_url, settings.graph.secrets, settings.pacing.rates_ttl, *token};
  admin.template_sync.page_size = FLAGS_template_sync_page_size;
  admin.template_sync.max_pages = FLAGS_template_sync_max_pages;
  admin.template_sync.timeout = std::chrono::milliseconds(FLAGS_graph_timeout_ms);
  for (const char* method : {"GET", "POST"}) {
    server.Route(method, "/v1/", [admin, &sinks](const convoy::HttpRequest& r) {
      return convoy::outbound::HandleAdmin(r, admin, *sinks);
    });
  }
  convoy::outbound::chatwoot::HookSettings hook;
  hook.pg_dsn = FLAGS_pg_dsn;
  hook.conversation_api_url = FLAGS_conversation_api_url;
  server.Route("POST", convoy::outbound::chatwoot::kHookPrefix,
               [hook, &sinks](const convoy::HttpRequest& r) {
                 return convoy::outbound::chatwoot::HandleHook(r, *sinks, hook);
               });
  convoy::RetentionLoop retention(FLAGS_pg_dsn, "outbound",
                                  convoy::outbound::RetentionRules(FLAGS_retention_days),
                                  std::chrono::seconds(FLAGS_retention_interval_seconds));
  retention.Start();
  convoy::outbound::InDoubtMonitor in_doubt(
      FLAGS_pg_dsn, std::chrono::seconds(FLAGS_in_doubt_interval_seconds), settings.reconcile);
  in_doubt.Start();
  // What its consumers see of their queues' waits, for the console (convoy/queue_waits.h).
  convoy::QueueWaitReporter queue_waits(FLAGS_pg_dsn, convoy::ConsumerProcessName("outbound"));
  queue_waits.Start();
  // 4. run
  return convoy::ServeUntilSignal("outbound", server, publisher, consumers, {}, {},
                                  [&tokens] { (*tokens)->ReloadLogged("sighup"); });
}
