// convoy-outbound: the only thing that talks to Meta's send endpoint.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include "convoy/amqp.h"
#include "convoy/config.h"
#include "convoy/consumer_group.h"
#include "convoy/flags.h"
#include "convoy/http.h"
#include "convoy/json.h"
#include "convoy/pg.h"
#include "convoy/startup.h"
#include "convoy/topology.h"
#include "sender.h"

namespace {

convoy::HandlerFactory SenderFactory(const convoy::SchemaRegistry& schemas, const convoy::outbound::GraphSettings& graph,
                                     convoy::Publisher& publisher, bool status) {
  return [&schemas, graph, &publisher, status]() -> convoy::Result<convoy::DeliveryHandler> {
    auto db = convoy::PgConnection::Connect(FLAGS_pg_dsn);
    if (!db.ok()) return db.status();
    std::shared_ptr<convoy::PgConnection> conn(std::move(*db));
    auto sender = std::make_shared<convoy::outbound::Sender>(
        *conn, schemas, graph,
        [&publisher](convoy::AmqpMessage m) { return publisher.PublishAndWait(std::move(m), std::chrono::seconds(10)); });
    if (status) {
      return convoy::DeliveryHandler([conn, sender](const convoy::Delivery& d) { return sender->HandleStatus(d); });
    }
    return convoy::DeliveryHandler([conn, sender](const convoy::Delivery& d) { return sender->HandleSend(d); });
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
  convoy::outbound::GraphSettings graph{FLAGS_graph_base_url, *token, std::chrono::milliseconds(FLAGS_graph_timeout_ms)};
  convoy::ConsumerGroup consumers(publisher);
  s = consumers.Add({amqp, convoy::queues::kOutboundSend, FLAGS_prefetch, FLAGS_max_attempts}, FLAGS_consumer_threads,
                    SenderFactory(schemas, graph, publisher, false));
  if (s.ok()) {
    s = consumers.Add({amqp, convoy::queues::kOutboundStatus, FLAGS_prefetch, FLAGS_max_attempts}, 1,
                      SenderFactory(schemas, graph, publisher, true));
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
