// convoy-media: turns WhatsApp media ids into verified, stored files.
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <sys/stat.h>

#include "convoy/amqp.h"
#include "convoy/config.h"
#include "convoy/consumer_group.h"
#include "convoy/flags.h"
#include "convoy/http.h"
#include "convoy/startup.h"
#include "convoy/topology.h"
#include "fetcher.h"

DEFINE_string(media_dir, ".run/media", "Folder where verified media files are stored (created if missing)");
DEFINE_validator(media_dir, &convoy::ValidateNonEmpty);
DEFINE_int32(max_image_bytes, 5 * 1024 * 1024, "Largest image accepted (Meta's limit: 5 MB)");
DEFINE_validator(max_image_bytes, &convoy::ValidatePositive);
DEFINE_int32(download_timeout_ms, 60000, "Timeout of one media download");
DEFINE_validator(download_timeout_ms, &convoy::ValidatePositive);

int main(int argc, char** argv) {
  // 1. load config
  convoy::SetFlagDefault("http_port", "8082");
  convoy::InitService("media", "convoy-media: fetches, verifies and stores WhatsApp media", &argc, &argv);
  auto token = convoy::LoadSecret("CONVOY_GRAPH_TOKEN", FLAGS_graph_token_file);
  // 2. validate: a token, a media folder, schemas, a reachable and migrated database
  convoy::DatabaseService base;
  convoy::Status s = token.ok() ? convoy::Status::Ok() : token.status();
  if (s.ok() && ::mkdir(FLAGS_media_dir.c_str(), 0750) != 0 && errno != EEXIST) {
    s = convoy::Status(convoy::Code::kInvalidArgument, "--media_dir cannot be created: " + FLAGS_media_dir);
  }
  if (s.ok()) s = convoy::PrepareDatabaseService(FLAGS_schema_dir, FLAGS_pg_dsn, FLAGS_migrations_dir, &base);
  if (!s.ok()) {
    LOG(ERROR) << "service=media event=startup_failed error=" << s.ToString();
    return 1;
  }
  // 3. wire up
  convoy::InitHttpThreads(static_cast<size_t>(FLAGS_http_threads));
  convoy::AmqpOptions amqp{FLAGS_amqp_url, "convoy-media"};
  convoy::Publisher publisher(amqp);
  convoy::media::FetchSettings settings{FLAGS_graph_base_url, *token, FLAGS_media_dir,
                                        static_cast<size_t>(FLAGS_max_image_bytes),
                                        std::chrono::milliseconds(FLAGS_download_timeout_ms)};
  convoy::ConsumerGroup consumers(publisher);
  s = consumers.Add({amqp, convoy::queues::kMediaFetch, FLAGS_prefetch, FLAGS_max_attempts}, FLAGS_consumer_threads,
                    [&]() -> convoy::Result<convoy::DeliveryHandler> {
                      auto db = convoy::PgConnection::Connect(FLAGS_pg_dsn);
                      if (!db.ok()) return db.status();
                      std::shared_ptr<convoy::PgConnection> conn(std::move(*db));
                      auto fetcher = std::make_shared<convoy::media::Fetcher>(
                          *conn, base.schemas, settings, [&publisher](convoy::AmqpMessage m) {
                            return publisher.PublishAndWait(std::move(m), std::chrono::seconds(10));
                          });
                      return convoy::DeliveryHandler(
                          [conn, fetcher](const convoy::Delivery& d) { return fetcher->Handle(d); });
                    });
  if (!s.ok()) {
    LOG(ERROR) << "service=media event=startup_failed error=" << s.ToString();
    return 1;
  }
  convoy::HttpServer server({FLAGS_http_host, FLAGS_http_port, 1 << 20, [&] {
                               return publisher.connected() && consumers.connected() && base.DatabaseReachable();
                             }});
  // 4. run
  return convoy::ServeUntilSignal("media", server, publisher, consumers);
}
