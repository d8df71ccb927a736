// convoy-outbound: the only thing that talks to Meta's send endpoint.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <cstdio>

#include "convoy/amqp.h"
#include "convoy/config.h"
#include "convoy/consumer_group.h"
#include "convoy/flags.h"
#include "convoy/http.h"
#include "convoy/json.h"
#include "convoy/ledger.h"
#include "convoy/pg.h"
#include "convoy/startup.h"
#include "convoy/topology.h"
#include "sender.h"

DEFINE_bool(pacing, true, "Pace sends with token buckets per business number and per recipient (shared by replicas)");
DEFINE_double(number_rate, 80, "Sends per second per business phone number (Meta's default throughput: 80)");
DEFINE_double(number_burst, 20, "Sends a business number's bucket holds (burst above the rate)");
DEFINE_double(pair_refill_seconds, 6, "Seconds per token of a recipient's bucket (Meta's pair rate: about 1 per 6 s)");
DEFINE_double(pair_burst, 45, "Sends a recipient's bucket holds (Meta allows bursts to one user)");
DEFINE_int32(send_deadline_seconds, 24 * 3600,
             "A send failing transiently (Meta down, rate limits) is retried, backing off up to the longest delay "
             "tier, until this long after its first attempt or until its customer-service window closes, whichever "
             "is sooner; then it is failed and parked with the last error (60..604800)");
DEFINE_int32(reconcile_seconds, 30,
             "How long a send that may have reached Meta (no answer, or the process died) waits for its status "
             "webhook before it is sent again (1..3600)");

namespace {

using convoy::InRange;
bool ValidateRate(const char* flag, double v) { return InRange(flag, v, 0.001, 10000); }
bool ValidateBurst(const char* flag, double v) { return InRange(flag, v, 1, 100000); }
bool ValidateRefill(const char* flag, double v) { return InRange(flag, v, 0.001, 86400); }
bool ValidateReconcile(const char* flag, int32_t v) { return InRange(flag, v, 1, 3600); }
bool ValidateSendDeadline(const char* flag, int32_t v) { return InRange(flag, v, 60, 7 * 86400); }

}  // namespace

DEFINE_validator(number_rate, &ValidateRate);
DEFINE_validator(number_burst, &ValidateBurst);
DEFINE_validator(pair_refill_seconds, &ValidateRefill);
DEFINE_validator(pair_burst, &ValidateBurst);
DEFINE_validator(reconcile_seconds, &ValidateReconcile);
DEFINE_validator(send_deadline_seconds, &ValidateSendDeadline);

namespace {

convoy::HandlerFactory SenderFactory(const convoy::SchemaRegistry& schemas, const convoy::outbound::SenderSettings& settings,
                                     convoy::Publisher& publisher, bool status) {
  return [&schemas, settings, &publisher, status]() -> convoy::Result<convoy::DeliveryHandler> {
    auto db = convoy::PgConnection::Connect(FLAGS_pg_dsn);
    if (!db.ok()) return db.status();
    std::shared_ptr<convoy::PgConnection> conn(std::move(*db));
    auto sender = std::make_shared<convoy::outbound::Sender>(
        *conn, schemas, settings,
        [&publisher](convoy::AmqpMessage m) { return publisher.PublishAndWait(std::move(m), std::chrono::seconds(10)); });
    if (status) {
      return convoy::DeliveryHandler([conn, sender](const convoy::Delivery& d) { return sender->HandleStatus(d); });
    }
    return convoy::Ledgered([conn, sender](const convoy::Delivery& d) { return sender->HandleSend(d); }, *conn,
                            convoy::kUnlimitedAttempts);
  };
}

}  // namespace

int main(int argc, char** argv) {
  // 1. load config
  convoy::SetFlagDefault("http_port", "8083");
  convoy::InitService("outbound", "convoy-outbound: sends WhatsApp messages through the Graph API", &argc, &argv);
  auto token = convoy::LoadSecret("CONVOY_GRAPH_TOKEN", FLAGS_graph_token_file);
  // 2. validate: a token, schemas, a reachable and migrated database
  convoy::DatabaseService base;
  convoy::Status s = token.ok() ? convoy::PrepareDatabaseService(FLAGS_schema_dir, FLAGS_pg_dsn, FLAGS_migrations_dir, &base)
                                : token.status();
  if (!s.ok()) {
    LOG(ERROR) << "service=outbound event=startup_failed error=" << s.ToString();
    return 1;
  }
  const convoy::SchemaRegistry& schemas = base.schemas;
  // 3. wire up
  convoy::InitHttpThreads(static_cast<size_t>(FLAGS_http_threads));
  convoy::AmqpOptions amqp{FLAGS_amqp_url, "convoy-outbound"};
  convoy::Publisher publisher(amqp);
  convoy::outbound::SenderSettings settings;
  settings.graph = {FLAGS_graph_base_url, *token, std::chrono::milliseconds(FLAGS_graph_timeout_ms)};
  settings.pacing = {FLAGS_pacing, FLAGS_number_rate, FLAGS_number_burst, 1.0 / FLAGS_pair_refill_seconds,
                     FLAGS_pair_burst};
  settings.send_deadline = std::chrono::seconds(FLAGS_send_deadline_seconds);
  settings.reconcile = std::chrono::seconds(FLAGS_reconcile_seconds);
  convoy::ConsumerGroup consumers(publisher);
  // Sends have a retry budget in time (--send_deadline_seconds), not a count: the sender parks them.
  s = consumers.Add({amqp, convoy::queues::kOutboundSend, FLAGS_prefetch, convoy::kUnlimitedAttempts}, FLAGS_consumer_threads,
                    SenderFactory(schemas, settings, publisher, false));
  if (s.ok()) {
    s = consumers.Add({amqp, convoy::queues::kOutboundStatus, FLAGS_prefetch, FLAGS_max_attempts}, 1,
                      SenderFactory(schemas, settings, publisher, true));
  }
  if (!s.ok()) {
    LOG(ERROR) << "service=outbound event=startup_failed error=" << s.ToString();
    return 1;
  }
  convoy::HttpServer server({FLAGS_http_host, FLAGS_http_port, 1 << 20, [&] {
                               return publisher.connected() && consumers.connected() && base.DatabaseReachable();
                             }});
  // 4. run
  return convoy::ServeUntilSignal("outbound", server, publisher, consumers);
}
