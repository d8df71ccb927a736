// convoy-media: turns WhatsApp media ids into verified, stored files; serves them to holders of
// the media token, of a named API token (a tenant's: its own files) or of a signed link; takes the
// photos agents send (POST /v1/media); uploads them where a flow's results go.
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <sys/stat.h>

#include <algorithm>

#include "convoy/amqp.h"
#include "convoy/config.h"
#include "convoy/consumer_group.h"
#include "convoy/flags.h"
#include "convoy/graph_numbers.h"
#include "convoy/http.h"
#include "convoy/ledger.h"
#include "convoy/queue_waits.h"
#include "convoy/retention.h"
#include "convoy/ssrf.h"
#include "convoy/startup.h"
#include "convoy/tokens.h"
#include "convoy/topology.h"
#include "disk.h"
#include "fetcher.h"
#include "intake.h"
#include "owners.h"
#include "retention_rules.h"
#include "server.h"
#include "uploader.h"

DEFINE_string(media_dir, ".run/media",
              "Folder where verified media files are stored (created if missing)");
DEFINE_validator(media_dir, &convoy::ValidateNonEmpty);
DEFINE_int32(max_image_bytes, 5 * 1024 * 1024, "Largest image accepted (Meta's limit: 5 MB)");
DEFINE_validator(max_image_bytes, &convoy::ValidatePositive);
DEFINE_int32(max_video_bytes, 16 * 1024 * 1024, "Largest video accepted (Meta's limit: 16 MB)");
DEFINE_validator(max_video_bytes, &convoy::ValidatePositive);
DEFINE_int32(max_audio_bytes, 16 * 1024 * 1024,
             "Largest audio file accepted (Meta's limit: 16 MB)");
DEFINE_validator(max_audio_bytes, &convoy::ValidatePositive);
DEFINE_int32(max_document_bytes, 100 * 1024 * 1024,
             "Largest document accepted (Meta's limit: 100 MB)");
DEFINE_validator(max_document_bytes, &convoy::ValidatePositive);
DEFINE_int32(download_timeout_ms, 60000, "Timeout of one media download (and of one upload)");
DEFINE_validator(download_timeout_ms, &convoy::ValidatePositive);
DEFINE_string(media_token_file, "",
              "File holding the token GET /media/ requires (else CONVOY_MEDIA_TOKEN)");
DEFINE_bool(media_public, false,
            "Serve GET /media/ without a token: for a local run only (without a token and without "
            "this flag, "
            "media serving answers 403)");
DEFINE_string(
    tokens_file, "",
    "Named API tokens, one a line: name role tenant sha256:<hex> (conversation's and outbound's "
    "file): a "
    "global (*) token reads any stored file, a tenant's only files that came through that tenant's "
    "numbers; read again when it changes and on SIGHUP");
DEFINE_string(
    forward_secret_file, "",
    "File holding the secret conversation vouches with for a person its OIDC proxy signed "
    "in (their photo uploads; else CONVOY_FORWARD_SECRET; the same on conversation, media and "
    "outbound; at "
    "least 32 characters); unset: no vouch is taken");
DEFINE_string(media_link_secret_file, "",
              "File holding the secret that signs photo links given to sinks (else "
              "CONVOY_MEDIA_LINK_SECRET; the "
              "same as convoy-outbound's). Without it, signed links are refused");
DEFINE_string(
    upload_destinations, "",
    "Where media.upload may send files: name=url pairs, comma-separated (e.g. "
    "listing=https://shop.example/api/product-images); commands name a destination, never a URL");
DEFINE_string(upload_token_file, "",
              "File holding the bearer token for upload destinations (else CONVOY_UPLOAD_TOKEN)");
DEFINE_bool(
    upload_allow_private, false,
    "Allow upload destinations on loopback, private or link-local addresses (local runs and "
    "tests); "
    "otherwise each must resolve to public addresses only, checked at start and at every call");
DEFINE_int32(max_photos_per_user_per_day, 300,
             "Media one user (conversation) may have stored per UTC day; past it they are told in "
             "plain words and "
             "nothing is stored (1..1000000)");
static bool ValidateUserPhotos(const char* flag, int32_t v) {
  return convoy::InRange(flag, v, 1, 1000000);
}
DEFINE_validator(max_photos_per_user_per_day, &ValidateUserPhotos);
DEFINE_int64(max_media_bytes_per_user_per_day, int64_t{256} << 20,
             "Bytes of media one user (conversation) may have stored per UTC day (default 256 MiB; "
             "1 MiB..1 TiB)");
static bool ValidateUserBytes(const char* flag, int64_t v) {
  return convoy::InRange(flag, static_cast<double>(v), 1 << 20, 1ull << 40);
}
DEFINE_validator(max_media_bytes_per_user_per_day, &ValidateUserBytes);
DEFINE_int64(
    max_media_bytes_per_number_per_day, int64_t{20} << 30,
    "Bytes of media all users of one business number may have stored per UTC day (default 20 GiB; "
    "1 MiB..1 PiB)");
static bool ValidateNumberBytes(const char* flag, int64_t v) {
  return convoy::InRange(flag, static_cast<double>(v), 1 << 20, 1ull << 50);
}
DEFINE_validator(max_media_bytes_per_number_per_day, &ValidateNumberBytes);
DEFINE_int32(
    disk_measure_seconds, 30,
    "How often the media folder's file system is measured into convoy_media_disk_used_bytes / "
    "convoy_media_disk_capacity_bytes (1..3600 s)");
static bool ValidateDiskMeasure(const char* flag, int32_t v) {
  return convoy::InRange(flag, v, 1, 3600);
}
DEFINE_validator(disk_measure_seconds, &ValidateDiskMeasure);
DEFINE_string(upload_field, "file", "The multipart form field that carries the file");
DEFINE_validator(upload_field, &convoy::ValidateNonEmpty);

int main(int argc, char** argv) {
  // 1. load config
  convoy::SetFlagDefault("http_port", "8082");
  convoy::InitService("media",
                      "convoy-media: fetches, verifies, stores, serves and uploads WhatsApp media",
                      &argc, &argv);
  auto token = convoy::LoadSecret("CONVOY_GRAPH_TOKEN", FLAGS_graph_token_file);
  auto media_token = convoy::LoadSecret("CONVOY_MEDIA_TOKEN", FLAGS_media_token_file);
  auto upload_token = convoy::LoadSecret("CONVOY_UPLOAD_TOKEN", FLAGS_upload_token_file);
  auto link_secret = convoy::LoadSecret("CONVOY_MEDIA_LINK_SECRET", FLAGS_media_link_secret_file);
  auto destinations = convoy::media::ParseDestinations(FLAGS_upload_destinations);
  // 2. validate: a token, a media folder, destinations, schemas, a reachable and migrated database
  convoy::DatabaseService base;
  convoy::Status s = token.ok() ? convoy::Status::Ok() : token.status();
  if (s.ok() && !destinations.ok()) s = destinations.status();
  if (s.ok()) {
    for (const auto& [name, url] : *destinations) {
      convoy::Status dest = convoy::CheckDestination(url, FLAGS_upload_allow_private);
      // A name that does not resolve now may later; an internal address never becomes public.
      if (!dest.ok() && dest.code() != convoy::Code::kUnavailable) {
        s = convoy::Status(
            convoy::Code::kInvalidArgument,
            "--upload_destinations: " + name + ": " + dest.message() +
                (dest.code() == convoy::Code::kRejected ? "; --upload_allow_private allows it"
                                                        : ""));
        break;
      }
    }
  }
  // Optional secrets, but a file that was named must be readable.
  if (s.ok() && !FLAGS_media_token_file.empty() && !media_token.ok()) s = media_token.status();
  if (s.ok() && !FLAGS_upload_token_file.empty() && !upload_token.ok()) s = upload_token.status();
  if (s.ok() && !FLAGS_media_link_secret_file.empty() && !link_secret.ok())
    s = link_secret.status();
  if (s.ok()) {
    convoy::Status made = convoy::MakeDirs(FLAGS_media_dir);
    if (!made.ok())
      s = convoy::Status(convoy::Code::kInvalidArgument, "--media_dir: " + made.message());
  }
  if (s.ok())
    s = convoy::PrepareDatabaseService(FLAGS_schema_dir, FLAGS_pg_dsn, FLAGS_migrations_dir,
                                       FLAGS_migrate, &base);
  if (!s.ok()) {
    LOG(ERROR) << "service=media event=startup_failed error=" << s.ToString();
    return 1;
  }
  auto tokens = convoy::TokenStore::Open(FLAGS_tokens_file, "");
  if (!tokens.ok()) {
    LOG(ERROR) << "service=media event=startup_failed flag=--tokens_file error="
               << tokens.status().ToString();
    return 1;
  }
  auto forward_secret = convoy::LoadForwardSecret(FLAGS_forward_secret_file);
  if (!forward_secret.ok()) {
    LOG(ERROR) << "service=media event=startup_failed flag=--forward_secret_file error="
               << forward_secret.status().ToString();
    return 1;
  }
  int swept = convoy::media::RemoveStaleTemporaries(
      FLAGS_media_dir,
      std::chrono::seconds(3600) + std::chrono::duration_cast<std::chrono::seconds>(
                                       std::chrono::milliseconds(FLAGS_download_timeout_ms)));
  if (swept > 0) LOG(WARNING) << "service=media event=stale_temporaries_removed count=" << swept;
  // 3. wire up
  convoy::InitHttpThreads(static_cast<size_t>(FLAGS_http_threads));
  auto amqp_options = convoy::AmqpOptionsFromFlags("convoy-media");
  if (!amqp_options.ok()) {
    LOG(ERROR) << "service=media event=bad_config error=" << amqp_options.status().ToString();
    return 2;
  }
  const convoy::AmqpOptions& amqp = *amqp_options;
  convoy::Publisher publisher(amqp);
  auto emit = [&publisher](convoy::AmqpMessage m) {
    return publisher.PublishAndWait(std::move(m), std::chrono::seconds(10));
  };
  convoy::media::FetchSettings fetch;
  fetch.graph_base_url = FLAGS_graph_base_url;
  fetch.graph_token = *token;
  fetch.graph_secrets = convoy::DeploymentGraphSecrets(
      FLAGS_graph_token_file, std::chrono::seconds(FLAGS_graph_token_check_seconds));
  fetch.media_dir = FLAGS_media_dir;
  fetch.limits = {
      static_cast<size_t>(FLAGS_max_image_bytes), static_cast<size_t>(FLAGS_max_video_bytes),
      static_cast<size_t>(FLAGS_max_audio_bytes), static_cast<size_t>(FLAGS_max_document_bytes)};
  fetch.timeout = std::chrono::milliseconds(FLAGS_download_timeout_ms);
  fetch.quota = {FLAGS_max_photos_per_user_per_day, FLAGS_max_media_bytes_per_user_per_day,
                 FLAGS_max_media_bytes_per_number_per_day};
  convoy::media::UploadSettings upload;
  upload.media_dir = FLAGS_media_dir;
  upload.destinations = *destinations;
  upload.token = upload_token.ok() ? *upload_token : "";
  upload.field = FLAGS_upload_field;
  upload.timeout = fetch.timeout;
  upload.max_attempts = FLAGS_max_attempts;
  upload.allow_private = FLAGS_upload_allow_private;
  convoy::ConsumerGroup consumers(publisher);
  s = consumers.Add({amqp, convoy::queues::kMediaFetch, FLAGS_prefetch, FLAGS_max_attempts},
                    FLAGS_consumer_threads, [&]() -> convoy::Result<convoy::DeliveryHandler> {
                      auto db = convoy::PgConnection::Connect(FLAGS_pg_dsn);
                      if (!db.ok()) return db.status();
                      std::shared_ptr<convoy::PgConnection> conn(std::move(*db));
                      auto fetcher = std::make_shared<convoy::media::Fetcher>(*conn, base.schemas,
                                                                              fetch, emit);
                      return convoy::Ledgered(
                          [conn, fetcher](const convoy::Delivery& d) { return fetcher->Handle(d); },
                          *conn, FLAGS_max_attempts);
                    });
  if (s.ok()) {
    s = consumers.Add(
        {amqp, convoy::queues::kMediaUpload, FLAGS_prefetch, FLAGS_max_attempts}, 1,
        [&]() -> convoy::Result<convoy::DeliveryHandler> {
          auto db = convoy::PgConnection::Connect(FLAGS_pg_dsn);
          if (!db.ok()) return db.status();
          std::shared_ptr<convoy::PgConnection> conn(std::move(*db));
          auto uploader =
              std::make_shared<convoy::media::Uploader>(*conn, base.schemas, upload, emit);
          return convoy::Ledgered(
              [conn, uploader](const convoy::Delivery& d) { return uploader->Handle(d); }, *conn,
              FLAGS_max_attempts);
        });
  }
  if (!s.ok()) {
    LOG(ERROR) << "service=media event=startup_failed error=" << s.ToString();
    return 1;
  }
  // Bodies: an agent's photo (POST /v1/media), at most an image's limit; nothing else takes one.
  const size_t max_body = std::max<size_t>(1 << 20, static_cast<size_t>(FLAGS_max_image_bytes) + 1);
  convoy::HttpServer server(
      {FLAGS_http_host,
       FLAGS_http_port,
       max_body,
       [&] { return publisher.connected() && consumers.connected() && base.DatabaseReachable(); },
       {},
       convoy::HttpLimitsFromFlags()});
  auto owners = std::make_shared<convoy::media::MediaOwners>(FLAGS_pg_dsn);
  convoy::media::ServeSettings serve{FLAGS_media_dir,
                                     media_token.ok() ? *media_token : "",
                                     FLAGS_media_public,
                                     link_secret.ok() ? *link_secret : "",
                                     *tokens,
                                     [owners](const std::string& name, const std::string& tenant) {
                                       return owners->OwnedBy(name, tenant);
                                     }};
  if (serve.token.empty() && (*tokens)->get()->empty() && !serve.open_for_local) {
    LOG(WARNING) << "service=media event=media_serving_closed reason=no CONVOY_MEDIA_TOKEN, no "
                    "--tokens_file and no "
                    "--media_public";
  }
  server.Route("GET", "/media/", [serve](const convoy::HttpRequest& r) {
    return convoy::media::ServeMedia(r, serve);
  });
  convoy::media::IntakeSettings intake{
      FLAGS_media_dir,
      *tokens,
      fetch.limits,
      [owners](const std::string& number, const std::string& tenant) {
        return owners->NumberIsTenants(number, tenant);
      },
      [owners](const std::string& name, const std::string& sha, size_t size,
               const std::string& mime, const std::string& number) {
        return owners->RecordUpload(name, sha, size, mime, number);
      },
      *forward_secret};
  server.Route("POST", "/v1/media", [intake](const convoy::HttpRequest& r) {
    return convoy::media::IntakeMedia(r, intake);
  });
  convoy::RetentionLoop retention(
      FLAGS_pg_dsn, "media", convoy::media::RetentionRules(FLAGS_media_dir, FLAGS_retention_days),
      std::chrono::seconds(FLAGS_retention_interval_seconds));
  retention.Start();
  convoy::media::DiskMonitor disk(FLAGS_media_dir,
                                  std::chrono::seconds(FLAGS_disk_measure_seconds));
  disk.Start();
  // What its consumers see of their queues' waits, for the console (convoy/queue_waits.h).
  convoy::QueueWaitReporter queue_waits(FLAGS_pg_dsn, convoy::ConsumerProcessName("media"));
  queue_waits.Start();
  // 4. run
  return convoy::ServeUntilSignal("media", server, publisher, consumers, {}, {},
                                  [&tokens] { (*tokens)->ReloadLogged("sighup"); });
}
