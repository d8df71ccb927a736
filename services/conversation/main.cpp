// convoy-conversation: advances each conversation exactly once per update.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <sstream>

#include "api/api.h"
#include "api/console.h"
#include "convoy/amqp.h"
#include "convoy/config.h"
#include "convoy/consumer_group.h"
#include "convoy/flags.h"
#include "convoy/http.h"
#include "convoy/json.h"
#include "convoy/pg.h"
#include "convoy/queue_waits.h"
#include "convoy/retention.h"
#include "convoy/startup.h"
#include "convoy/tokens.h"
#include "convoy/topology.h"
#include "engine/flow.h"
#include "engine/processor.h"
#include "engine/run_timeouts.h"
#include "jobs/relay.h"
#include "jobs/results_feed.h"
#include "jobs/retention_rules.h"
#include "store/assignments.h"
#include "store/numbers.h"

DEFINE_int32(relay_batch, 500, "Outbox rows the relay publishes per transaction");
DEFINE_validator(relay_batch, &convoy::ValidatePositive);
DEFINE_bool(typing_indicator, true,
            "When a user's message is answered, first mark it read and show the typing indicator "
            "(one Graph call "
            "per inbound message; Meta clears it at the reply or after 25 s)");
DEFINE_int32(sweep_interval_seconds, 30,
             "How often the relay looks for lost commands in the ledger, and for checklist "
             "assignments and flow runs "
             "past their due time (1..3600 s)");
DEFINE_int32(sweep_after_seconds, 900,
             "A command neither settled nor pushed back by its consumer this long after it was due "
             "is taken as lost "
             "and published again (1..86400 s)");
DEFINE_int32(
    sweep_max, 3,
    "Times a lost command is published again before it is abandoned for an operator (1..100)");
static bool ValidateSweepInterval(const char* flag, int32_t v) {
  return convoy::InRange(flag, v, 1, 3600);
}
static bool ValidateSweepAfter(const char* flag, int32_t v) {
  return convoy::InRange(flag, v, 1, 86400);
}
static bool ValidateSweepMax(const char* flag, int32_t v) {
  return convoy::InRange(flag, v, 1, 100);
}
DEFINE_validator(sweep_interval_seconds, &ValidateSweepInterval);
DEFINE_validator(sweep_after_seconds, &ValidateSweepAfter);
DEFINE_validator(sweep_max, &ValidateSweepMax);
DEFINE_string(flows_dir, "deploy/flows",
              "Folder of flow definitions (*.json, schema proto-schemas/flow.v1.json)");
DEFINE_validator(flows_dir, &convoy::ValidateNonEmpty);
DEFINE_int32(extractor_context_tokens, 2000,
             "Token budget of the recent messages kept for a flow's extractor, per conversation "
             "(oldest dropped "
             "first; a message counts 4 + characters/4 tokens; 50..100000)");
static bool ValidateContextTokens(const char* flag, int32_t v) {
  return convoy::InRange(flag, v, 50, 100000);
}
DEFINE_validator(extractor_context_tokens, &ValidateContextTokens);
DEFINE_int32(extractor_timeout_seconds, 20,
             "How long a step waits for its extractor's answer before the person is asked instead "
             "(2..300 s)");
static bool ValidateExtractorTimeout(const char* flag, int32_t v) {
  return convoy::InRange(flag, v, 2, 300);
}
DEFINE_validator(extractor_timeout_seconds, &ValidateExtractorTimeout);
DEFINE_string(default_flow, "",
              "The flow a message that starts no other flow starts (the shipped configuration: "
              "lead); empty: the "
              "menu of triggers");
DEFINE_int32(
    photo_ttl_seconds, 3600,
    "Pending photos older than this when the user texts DONE expire (60..604800 s; default 1 h)");
static bool ValidatePhotoTtl(const char* flag, int32_t v) {
  return convoy::InRange(flag, v, 60, 604800);
}
DEFINE_validator(photo_ttl_seconds, &ValidatePhotoTtl);
DEFINE_int32(inactivity_timeout_seconds, 24 * 3600,
             "A flow run with no message from the person this long ends (flow.expired), unless its "
             "flow names its own "
             "inactivity_timeout_seconds (5..2592000 s; default 24 h)");
static bool ValidateInactivityTimeout(const char* flag, int32_t v) {
  return convoy::InRange(flag, v, 5, 30 * 86400);
}
DEFINE_validator(inactivity_timeout_seconds, &ValidateInactivityTimeout);
DEFINE_int32(max_photos, 100, "Photos one photo step keeps (1..1000)");
static bool ValidateMaxPhotos(const char* flag, int32_t v) {
  return convoy::InRange(flag, v, 1, 1000);
}
DEFINE_validator(max_photos, &ValidateMaxPhotos);
DEFINE_int32(max_photos_per_run, 200,
             "Photos one run keeps over all its photo steps or checklist questions; past it the "
             "user is told in "
             "plain words and the photo is not fetched (1..10000)");
static bool ValidateMaxPhotosPerRun(const char* flag, int32_t v) {
  return convoy::InRange(flag, v, 1, 10000);
}
DEFINE_validator(max_photos_per_run, &ValidateMaxPhotosPerRun);
DEFINE_int32(result_photo_wait_seconds, 600,
             "A completed result waits for its photos to be stored at most this long, then goes to "
             "its sink with "
             "the rest named as missing (1..86400 s)");
static bool ValidateResultWait(const char* flag, int32_t v) {
  return convoy::InRange(flag, v, 1, 86400);
}
DEFINE_validator(result_photo_wait_seconds, &ValidateResultWait);
DEFINE_int32(
    dedupe_retention_days, 8,
    "Days a processed update's dedupe key is kept (8..3650: Meta redelivers for up to 7 days)");
static bool ValidateDedupeDays(const char* flag, int32_t v) {
  return convoy::InRange(flag, v, 8, 3650);
}
DEFINE_validator(dedupe_retention_days, &ValidateDedupeDays);
DEFINE_int32(outbox_retention_hours, 24,
             "Hours a published (and, for a command, settled) outbox row is kept (1..8760)");
static bool ValidateOutboxHours(const char* flag, int32_t v) {
  return convoy::InRange(flag, v, 1, 8760);
}
DEFINE_validator(outbox_retention_hours, &ValidateOutboxHours);
DEFINE_int32(assignment_ttl_seconds, 24 * 3600,
             "An active checklist assignment not completed this long after it started expires "
             "(5..2592000 s)");
static bool ValidateAssignmentTtl(const char* flag, int32_t v) {
  return convoy::InRange(flag, v, 5, 30 * 86400);
}
DEFINE_validator(assignment_ttl_seconds, &ValidateAssignmentTtl);
DEFINE_string(checklist_flow, "checklist",
              "The flow (with `assignment`) that runs checklist assignments");
DEFINE_string(checklists_dir, "deploy/checklists",
              "Checklist definitions shipped as files (<id>.json, "
              "proto-schemas/checklist.v1.json), loaded at start");
DEFINE_string(numbers_dir, "deploy/numbers",
              "The numbers registry shipped as files (<phone_number_id>.json, "
              "proto-schemas/number.v1.json), put at "
              "start; a bad file stops the start naming it");
DEFINE_string(
    admin_token_file, "",
    "File holding the assignment API's bearer token, a global admin (else CONVOY_ADMIN_TOKEN)");
DEFINE_string(tokens_file, "",
              "Named API tokens, one a line: name role tenant sha256:<hex> (roles viewer, agent, "
              "manager, operator, "
              "admin; tenant or *); read again when it changes and on SIGHUP. `convoyctl token "
              "hash` prints a line");
DEFINE_int32(
    batch, 16,
    "Deliveries a consumer applies in one transaction, at most (those already received; 1..256, "
    "at most --prefetch; 1: one transaction per delivery)");
static bool ValidateBatch(const char* flag, int32_t v) { return convoy::InRange(flag, v, 1, 256); }
DEFINE_validator(batch, &ValidateBatch);
DEFINE_string(handoff_keywords, "agent,human",
              "Comma-separated words that, sent alone by a customer (any case), hand the "
              "conversation to a person "
              "(\"\": none)");
DEFINE_string(handoff_sink, "conversations",
              "The sink (outbound's --sinks_file, or a number's sinks mapping) told of handoffs by "
              "keyword or API, and "
              "of customer messages while a person answers");
DEFINE_string(
    console_dir, "services/console",
    "The console's files (issue 30), served at /console/: found from the working directory, then "
    "<binary>/../share/convoy/console (the images), then the source tree; \"\": no console");
DEFINE_string(
    media_public_url, "",
    "convoy-media's URL as a browser reaches it (no trailing '/'): the console shows a checklist "
    "answer's "
    "and a transcript's photos through signed links to it, expiring after --media_link_ttl_seconds "
    "(needs the link secret: "
    "CONVOY_MEDIA_LINK_SECRET or --media_link_secret_file); \"\": the console shows no photos");
static bool ValidateMediaUrl(const char* flag, const std::string& v) {
  return v.empty() || convoy::ValidateHttpUrl(flag, v);
}
DEFINE_validator(media_public_url, &ValidateMediaUrl);
DEFINE_string(
    media_link_secret_file, "",
    "File holding the secret photo links are signed with (else CONVOY_MEDIA_LINK_SECRET)");
DEFINE_int32(media_link_ttl_seconds, 900,
             "How long a photo link given to the console works (60..86400 s)");
static bool ValidateLinkTtl(const char* flag, int32_t v) {
  return convoy::InRange(flag, v, 60, 86400);
}
DEFINE_validator(media_link_ttl_seconds, &ValidateLinkTtl);
DEFINE_string(ops_amqp_url, "",
              "The broker as the ops user (topology.h BrokerGrants \"ops\"), for the console's "
              "parked messages and "
              "queue depths; credentials from CONVOY_OPS_AMQP_USERNAME / CONVOY_OPS_AMQP_PASSWORD "
              "(the Secret "
              "convoy-ops-user-credentials) replace the URL's; TLS as --amqp_ca_file etc. \"\": "
              "those routes answer 503");
DEFINE_string(outbound_admin_url, "",
              "convoy-outbound's base URL (http://host:port): the console's /v1/deliveries* are "
              "forwarded there with "
              "the caller's token; \"\": they answer 503");
DEFINE_string(media_api_url, "",
              "convoy-media's base URL (http://host:port) as this service reaches it: the "
              "console's photo uploads "
              "(POST /v1/media) are forwarded there with the caller's Authorization; \"\": the "
              "console cannot send photos");
DEFINE_int32(max_image_bytes, 5 * 1024 * 1024,
             "Largest photo this service takes to forward to convoy-media (POST /v1/media; media "
             "applies its own "
             "--max_image_bytes too); 1 MiB..100 MiB");
static bool ValidateMaxImage(const char* flag, int32_t v) {
  return convoy::InRange(flag, v, 1 << 20, 100 << 20);
}
DEFINE_validator(max_image_bytes, &ValidateMaxImage);
DEFINE_string(proxy_identity_header, "",
              "The header an OIDC proxy in front of the console puts the signed-in identity in "
              "(oauth2-proxy: "
              "X-Forwarded-Email); trusted only with the proxy's secret (--proxy_secret_header) "
              "and mapped by "
              "--proxy_identities_file; \"\": no proxy sign-in");
DEFINE_string(proxy_identities_file, "",
              "identity name role tenant, one a line: who each identity the proxy names is (README "
              "\"The console\"); read again when it changes (looked at every 5 s) and on SIGHUP, "
              "a bad file keeping the running set");
DEFINE_string(forward_secret_file, "",
              "File holding the secret this service vouches with for a person its OIDC proxy "
              "signed in, on the routes it forwards to media and outbound (else "
              "CONVOY_FORWARD_SECRET; the same on all three; at least 32 characters); unset: those "
              "routes are 503 to such a person");
DEFINE_string(proxy_secret_header, "X-Convoy-Proxy-Secret",
              "The header the proxy (and only the proxy) sends its shared secret in");
DEFINE_string(
    proxy_secret_file, "",
    "File holding the proxy's shared secret, at least 32 characters (else CONVOY_PROXY_SECRET)");
DEFINE_string(grafana_url, "",
              "Grafana's URL, linked from the console's operations screen (http:// or https://; "
              "\"\": no link)");
DEFINE_string(rabbitmq_management_url, "",
              "The RabbitMQ management UI's URL, linked from the console's operations screen "
              "(http:// or https://; "
              "\"\": no link)");
static bool ValidateLinkUrl(const char* flag, const std::string& v) {
  if (v.empty() || v.rfind("http://", 0) == 0 || v.rfind("https://", 0) == 0) return true;
  std::fprintf(stderr, "--%s: an http:// or https:// URL, or empty\n", flag);
  return false;
}
DEFINE_validator(outbound_admin_url, &ValidateLinkUrl);
DEFINE_validator(media_api_url, &ValidateLinkUrl);
DEFINE_validator(grafana_url, &ValidateLinkUrl);
DEFINE_validator(rabbitmq_management_url, &ValidateLinkUrl);
DEFINE_int32(human_idle_release_seconds, 12 * 3600,
             "A conversation in human hands with no agent message for this long goes back to the "
             "bot (5..2592000 s)");
static bool ValidateIdleRelease(const char* flag, int32_t v) {
  return convoy::InRange(flag, v, 5, 2592000);
}
DEFINE_validator(human_idle_release_seconds, &ValidateIdleRelease);

namespace {

// "agent, human" -> {"agent", "human"}: trimmed, empty parts dropped.
std::vector<std::string> SplitWords(const std::string& list) {
  std::vector<std::string> out;
  std::string word;
  std::istringstream in(list);
  while (std::getline(in, word, ',')) {
    word.erase(0, word.find_first_not_of(" \t"));
    word.erase(word.find_last_not_of(" \t") + 1);
    if (!word.empty()) out.push_back(word);
  }
  return out;
}

convoy::conversation::AssignmentSettings Assignments() {
  convoy::conversation::AssignmentSettings a;
  a.ttl = std::chrono::seconds(FLAGS_assignment_ttl_seconds);
  a.flow = FLAGS_checklist_flow;
  return a;
}

// A handler that owns its database connection: one per consumer thread.
convoy::BatchHandlerFactory ProcessorFactory(const convoy::SchemaRegistry& schemas,
                                             const convoy::conversation::Engine& engine,
                                             convoy::conversation::OutboxRelay& relay) {
  return [&schemas, &engine, &relay]() -> convoy::Result<convoy::BatchHandler> {
    auto db = convoy::PgConnection::Connect(FLAGS_pg_dsn);
    if (!db.ok()) return db.status();
    std::shared_ptr<convoy::PgConnection> conn(std::move(*db));
    auto processor = std::make_shared<convoy::conversation::Processor>(
        *conn, schemas, engine, [&relay] { relay.Notify(); });
    processor->set_typing_indicator(FLAGS_typing_indicator);
    processor->set_assignments(Assignments());
    processor->set_context_budget(FLAGS_extractor_context_tokens);
    return convoy::BatchHandler([conn, processor](const std::vector<convoy::Delivery>& batch) {
      return processor->HandleBatch(batch);
    });
  };
}

}  // namespace

int main(int argc, char** argv) {
  // 1. load config
  convoy::SetFlagDefault("http_port", "8081");
  convoy::InitService("conversation", "convoy-conversation: per-conversation state machines", &argc,
                      &argv);
  // 2. validate: schemas, a reachable and migrated database
  convoy::DatabaseService base;
  convoy::Status s = convoy::PrepareDatabaseService(FLAGS_schema_dir, FLAGS_pg_dsn,
                                                    FLAGS_migrations_dir, FLAGS_migrate, &base);
  if (!s.ok()) {
    LOG(ERROR) << "service=conversation event=startup_failed error=" << s.ToString();
    return 1;
  }
  if (FLAGS_batch > FLAGS_prefetch) {
    LOG(ERROR) << "service=conversation event=startup_failed flag=--batch error=--batch "
               << FLAGS_batch << " exceeds --prefetch " << FLAGS_prefetch
               << ": a batch can never be larger than the prefetch";
    return 1;
  }
  const convoy::SchemaRegistry& schemas = base.schemas;
  auto flows = convoy::conversation::FlowSet::LoadDir(FLAGS_flows_dir, schemas);
  if (!flows.ok()) {
    LOG(ERROR) << "service=conversation event=startup_failed flag=--flows_dir error="
               << flows.status().ToString();
    return 1;
  }
  LOG(INFO) << "service=conversation event=flows_loaded count=" << flows->size()
            << " dir=" << FLAGS_flows_dir;
  s = convoy::conversation::CheckFlowSet(*flows, FLAGS_default_flow, FLAGS_checklist_flow);
  if (!s.ok()) {
    LOG(ERROR) << "service=conversation event=startup_failed dir=" << FLAGS_flows_dir
               << " error=" << s.ToString();
    return 1;
  }
  s = convoy::conversation::LoadChecklistFiles(
      *base.db, convoy::FindDataDir(FLAGS_checklists_dir, "checklists"), schemas);
  if (!s.ok()) {
    LOG(ERROR) << "service=conversation event=startup_failed flag=--checklists_dir error="
               << s.ToString();
    return 1;
  }
  s = convoy::conversation::LoadNumberFiles(
      *base.db, convoy::FindDataDir(FLAGS_numbers_dir, "numbers"), schemas);
  if (!s.ok()) {
    LOG(ERROR) << "service=conversation event=startup_failed flag=--numbers_dir error="
               << s.ToString();
    return 1;
  }
  auto admin_token = convoy::LoadSecret("CONVOY_ADMIN_TOKEN", FLAGS_admin_token_file);
  if (!FLAGS_admin_token_file.empty() && !admin_token.ok()) {
    LOG(ERROR) << "service=conversation event=startup_failed flag=--admin_token_file error="
               << admin_token.status().ToString();
    return 1;
  }
  auto tokens = convoy::TokenStore::Open(FLAGS_tokens_file, admin_token.ok() ? *admin_token : "");
  if (!tokens.ok()) {
    LOG(ERROR) << "service=conversation event=startup_failed flag=--tokens_file error="
               << tokens.status().ToString();
    return 1;
  }
  convoy::conversation::ProxySignIn proxy;
  if (!FLAGS_proxy_identity_header.empty() || !FLAGS_proxy_identities_file.empty()) {
    auto lower = [](std::string v) {
      for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return v;
    };
    auto header_name = [](const std::string& v) {
      return !v.empty() && v.size() <= 64 &&
             v.find_first_not_of(
                 "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") ==
                 std::string::npos;
    };
    auto identities = convoy::IdentityStore::Open(FLAGS_proxy_identities_file);
    auto secret = convoy::LoadSecret("CONVOY_PROXY_SECRET", FLAGS_proxy_secret_file);
    std::string why;
    if (!header_name(FLAGS_proxy_identity_header) ||
        lower(FLAGS_proxy_identity_header) == "authorization") {
      why =
          "flag=--proxy_identity_header error=a header name (letters, digits, '-'), not "
          "Authorization";
    } else if (!header_name(FLAGS_proxy_secret_header) ||
               lower(FLAGS_proxy_secret_header) == lower(FLAGS_proxy_identity_header)) {
      why = "flag=--proxy_secret_header error=a header name of its own (letters, digits, '-')";
    } else if (!identities.ok()) {
      why = "flag=--proxy_identities_file error=" + identities.status().ToString();
    } else if (!secret.ok() || secret->size() < 32) {
      why =
          "flag=--proxy_secret_file error=the proxy's secret (CONVOY_PROXY_SECRET or "
          "--proxy_secret_file) must be at "
          "least 32 characters";
    }
    if (!why.empty()) {
      LOG(ERROR) << "service=conversation event=startup_failed " << why;
      return 1;
    }
    proxy.identity_header = lower(FLAGS_proxy_identity_header);
    proxy.secret_header = lower(FLAGS_proxy_secret_header);
    proxy.secret = *secret;
    proxy.identities = *identities;
    LOG(INFO) << "service=conversation event=proxy_sign_in header=" << proxy.identity_header
              << " identities=" << proxy.identities->get()->size();
  }
  convoy::conversation::PhotoLinkSettings photo_links;
  if (!FLAGS_media_public_url.empty()) {
    auto link_secret = convoy::LoadSecret("CONVOY_MEDIA_LINK_SECRET", FLAGS_media_link_secret_file);
    if (!link_secret.ok() || link_secret->empty()) {
      LOG(ERROR) << "service=conversation event=startup_failed flag=--media_public_url error=photo "
                    "links need the link "
                    "secret (CONVOY_MEDIA_LINK_SECRET or --media_link_secret_file)"
                 << (link_secret.ok() ? "" : ": " + link_secret.status().ToString());
      return 1;
    }
    photo_links = {FLAGS_media_public_url, *link_secret,
                   std::chrono::seconds(FLAGS_media_link_ttl_seconds), nullptr};
  }
  std::optional<convoy::conversation::ConsoleSite> console;
  if (!FLAGS_console_dir.empty()) {
    auto site = convoy::conversation::ConsoleSite::Load(
        convoy::FindDataDir(FLAGS_console_dir, "console"), FLAGS_media_public_url);
    if (!site.ok()) {
      LOG(ERROR) << "service=conversation event=startup_failed flag=--console_dir error="
                 << site.status().ToString();
      return 1;
    }
    console = std::move(*site);
  }
  convoy::conversation::EngineSettings engine_settings;
  engine_settings.photo_ttl_seconds = FLAGS_photo_ttl_seconds;
  engine_settings.max_photos = static_cast<size_t>(FLAGS_max_photos);
  engine_settings.result_photo_wait_seconds = FLAGS_result_photo_wait_seconds;
  engine_settings.default_flow = FLAGS_default_flow;
  engine_settings.extractor_timeout_seconds = FLAGS_extractor_timeout_seconds;
  engine_settings.max_photos_per_run = static_cast<size_t>(FLAGS_max_photos_per_run);
  engine_settings.handoff_keywords = SplitWords(FLAGS_handoff_keywords);
  engine_settings.handoff_sink = FLAGS_handoff_sink;
  engine_settings.inactivity_timeout_seconds = FLAGS_inactivity_timeout_seconds;
  convoy::conversation::Engine engine(*flows, engine_settings);
  // SIGHUP and POST /v1/flows/reload: the folder is read and checked again; a bad file keeps the
  // running set. One reload at a time.
  std::mutex reload_mu;
  auto reload = [&engine, &schemas, &reload_mu]() -> convoy::Result<std::string> {
    std::lock_guard<std::mutex> lock(reload_mu);
    auto next = convoy::conversation::FlowSet::LoadDir(FLAGS_flows_dir, schemas);
    convoy::Status ok = next.ok() ? convoy::conversation::CheckFlowSet(*next, FLAGS_default_flow,
                                                                       FLAGS_checklist_flow)
                                  : next.status();
    if (!ok.ok()) {
      LOG(ERROR) << "service=conversation event=flows_reload_refused dir=" << FLAGS_flows_dir
                 << " error=" << ok.ToString() << " (the running flows are unchanged)";
      return ok;
    }
    std::string summary = convoy::conversation::FlowSetSummary(*next);
    engine.Reload(std::move(*next));
    LOG(INFO) << "service=conversation event=flows_reloaded dir=" << FLAGS_flows_dir
              << " flows=" << summary;
    return summary;
  };
  // 3. wire up
  convoy::InitHttpThreads(static_cast<size_t>(FLAGS_http_threads));
  auto amqp_options = convoy::AmqpOptionsFromFlags("convoy-conversation");
  if (!amqp_options.ok()) {
    LOG(ERROR) << "service=conversation event=bad_config error="
               << amqp_options.status().ToString();
    return 2;
  }
  const convoy::AmqpOptions& amqp = *amqp_options;
  convoy::Publisher publisher(amqp);
  convoy::conversation::RelaySettings relay_settings;
  relay_settings.pg_dsn = FLAGS_pg_dsn;
  relay_settings.batch_size = FLAGS_relay_batch;
  relay_settings.sweep.interval = std::chrono::seconds(FLAGS_sweep_interval_seconds);
  relay_settings.sweep.margin = std::chrono::seconds(FLAGS_sweep_after_seconds);
  relay_settings.sweep.max_sweeps = FLAGS_sweep_max;
  relay_settings.periodic = [&engine](convoy::PgConnection& db) {
    auto expired = convoy::conversation::ExpireDue(db, Assignments());
    if (!expired.ok()) {
      LOG(WARNING) << "service=conversation event=assignment_expiry_failed error="
                   << expired.status().ToString();
    } else if (*expired > 0) {
      LOG(INFO) << "service=conversation event=assignments_expired count=" << *expired;
    }
    auto released = convoy::conversation::ReleaseIdleHumans(db, FLAGS_human_idle_release_seconds);
    if (!released.ok()) {
      LOG(WARNING) << "service=conversation event=idle_release_failed error="
                   << released.status().ToString();
    } else if (*released > 0) {
      LOG(INFO) << "service=conversation event=idle_released count=" << *released;
    }
    const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    auto runs = convoy::conversation::ExpireDueRuns(db, engine, now);
    if (!runs.ok()) {
      LOG(WARNING) << "service=conversation event=run_expiry_failed error="
                   << runs.status().ToString();
    } else if (runs->expired + runs->touched > 0) {
      LOG(INFO) << "service=conversation event=runs_expired count=" << runs->expired
                << " touched=" << runs->touched;
    }
  };
  convoy::conversation::OutboxRelay relay(relay_settings, publisher);
  convoy::ConsumerGroup consumers(publisher);
  for (const char* queue :
       {convoy::queues::kConversationInbound, convoy::queues::kConversationEvents}) {
    s = consumers.AddBatch({amqp, queue, FLAGS_prefetch, FLAGS_max_attempts, FLAGS_batch},
                           FLAGS_consumer_threads, ProcessorFactory(schemas, engine, relay));
    if (!s.ok()) {
      LOG(ERROR) << "service=conversation event=startup_failed error=" << s.ToString();
      return 1;
    }
  }
  // flow.completed, read for the business's own numbers (results_feed.h): one consumer is plenty.
  s = consumers.Add({amqp, convoy::queues::kFlowCompleted, FLAGS_prefetch, FLAGS_max_attempts}, 1,
                    [&schemas, &engine]() -> convoy::Result<convoy::DeliveryHandler> {
                      return convoy::conversation::ResultsFeed(
                          schemas, [&engine](const std::string& flow, const std::string& step) {
                            const auto flows = engine.flows();
                            const auto* f = flows->Find(flow);
                            return f != nullptr && (step.empty() || f->Find(step) != nullptr);
                          });
                    });
  if (!s.ok()) {
    LOG(ERROR) << "service=conversation event=startup_failed error=" << s.ToString();
    return 1;
  }
  // Bodies: a photo for POST /v1/media at most; every other route refuses more than 1 MiB (api.h).
  const size_t max_body = std::max<size_t>(convoy::conversation::kMaxJsonBodyBytes,
                                           static_cast<size_t>(FLAGS_max_image_bytes) + 1);
  convoy::HttpServer server(
      {FLAGS_http_host,
       FLAGS_http_port,
       max_body,
       [&] { return publisher.connected() && consumers.connected() && base.DatabaseReachable(); },
       {},
       convoy::HttpLimitsFromFlags()});
  convoy::conversation::ApiSettings api;
  api.pg_dsn = FLAGS_pg_dsn;
  api.tokens = *tokens;
  api.assignments = Assignments();
  api.reload_flows = reload;
  api.flows = [&engine] { return convoy::conversation::FlowSetSummary(*engine.flows()); };
  api.conversations.pg_dsn = FLAGS_pg_dsn;
  api.photo_links = photo_links;
  api.conversations.photo_links = photo_links;
  api.conversations.handoff_sink = FLAGS_handoff_sink;
  api.conversations.has_step = [&engine](const std::string& flow, const std::string& step) {
    const auto flows = engine.flows();
    const auto* f = flows->Find(flow);
    return f != nullptr && f->Find(step) != nullptr;
  };
  api.conversations.on_commit = [&relay] { relay.Notify(); };
  api.ops.pg_dsn = FLAGS_pg_dsn;
  api.ops.grafana_url = FLAGS_grafana_url;
  api.ops.rabbitmq_management_url = FLAGS_rabbitmq_management_url;
  api.ops.outbound_admin_url = FLAGS_outbound_admin_url;
  api.media_api_url = FLAGS_media_api_url;
  api.proxy = proxy;
  auto forward_secret = convoy::LoadForwardSecret(FLAGS_forward_secret_file);
  if (!forward_secret.ok()) {
    LOG(ERROR) << "service=conversation event=startup_failed flag=--forward_secret_file error="
               << forward_secret.status().ToString();
    return 1;
  }
  api.forward_secret = *forward_secret;
  api.ops.forward_secret = *forward_secret;
  if (!FLAGS_ops_amqp_url.empty()) {
    convoy::AmqpOptions ops = amqp;
    ops.url = FLAGS_ops_amqp_url;
    ops.name = "convoy-conversation-ops";
    ops.declare_topology = false;
    ops.username.clear();
    ops.password.clear();
    if (const char* user = std::getenv("CONVOY_OPS_AMQP_USERNAME"); user && *user)
      ops.username = user;
    if (const char* password = std::getenv("CONVOY_OPS_AMQP_PASSWORD"); password && *password)
      ops.password = password;
    s = convoy::ValidateAmqpOptions(ops);
    if (!s.ok()) {
      LOG(ERROR) << "service=conversation event=startup_failed flag=--ops_amqp_url error="
                 << s.ToString();
      return 1;
    }
    api.ops.broker = ops;
  }
  for (const char* method : {"GET", "POST", "PUT", "DELETE"}) {
    server.Route(method, "/v1/", [api, &schemas](const convoy::HttpRequest& r) {
      return convoy::conversation::HandleApi(r, api, schemas);
    });
  }
  if (console) {
    server.Route("GET", "/console",
                 [&console](const convoy::HttpRequest& r) { return console->Serve(r); });
  }
  // 4. run
  convoy::RetentionLoop retention(
      FLAGS_pg_dsn, "conversation",
      convoy::conversation::RetentionRules(FLAGS_dedupe_retention_days,
                                           FLAGS_outbox_retention_hours, FLAGS_retention_days),
      std::chrono::seconds(FLAGS_retention_interval_seconds));
  retention.Start();
  // What its consumers see of their queues' waits, for the console (convoy/queue_waits.h).
  // It also deletes the rows of processes gone for 7 days (the only role that may).
  convoy::QueueWaitReporter queue_waits(FLAGS_pg_dsn, convoy::ConsumerProcessName("conversation"),
                                        /*cleanup=*/true);
  queue_waits.Start();
  return convoy::ServeUntilSignal(
      "conversation", server, publisher, consumers, [&] { relay.Start(); }, [&] { relay.Stop(); },
      [&] {
        (void)reload();
        (*tokens)->ReloadLogged("sighup");
        if (proxy.identities) proxy.identities->ReloadLogged("sighup");
      });
}
