#include "stack.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include "convoy/amqp.h"
#include "convoy/amqp_admin.h"
#include "convoy/pg.h"
#include "convoy/topology.h"
#include "webhook.h"

namespace convoy::test {

using namespace std::chrono_literals;

Stack::Stack(const std::string& prefix, std::map<std::string, int> pg_ports,
             std::map<std::string, std::vector<std::string>> extra)
    : vhost(prefix),
      db(prefix),
      pg_port_override(std::move(pg_ports)),
      extra_args(std::move(extra)) {
  dir = ::testing::TempDir() + "/" + UniqueName("convoy_" + prefix);
  ::mkdir(dir.c_str(), 0755);
  EXPECT_TRUE(graph.Start().ok());
  graph.RegisterMedia("1003383421387256", FixturePath("media/photo1.jpg"), "image/jpeg");
  // As in production: the topology and migration steps run first, with their own rights; each
  // service then connects as its own broker user and database role, which may do neither.
  auto topology = UpgradeTopology(AmqpOptions{vhost.url(), "stack-topology"});
  EXPECT_TRUE(topology.ok()) << topology.status().ToString();
  auto owner = PgConnection::Connect(db.dsn());
  Status migrated =
      owner.ok() ? RunMigrations(**owner, SourcePath("deploy/postgres")) : owner.status();
  EXPECT_TRUE(migrated.ok()) << migrated.ToString();
  // The numbers the tests post for: the demo number comes from deploy/numbers (as in
  // scripts/run.sh), the fixtures' others are registered here; any other number's updates are never
  // applied.
  if (owner.ok()) {
    for (const auto& number : FixtureNumbers()) RegisterNumber(**owner, number, "fixtures");
  }
  for (const char* name : {"ingress", "conversation", "media", "outbound"}) Launch(name);
  for (auto& [name, svc] : services)
    EXPECT_TRUE(WaitReady(name, 90s)) << name << " not ready:\n" << svc->process.Log();
  // Meta tells the business about every send it accepted with a signed status webhook.
  const int ingress_port = services["ingress"]->port;
  graph.SetStatusSink([ingress_port](const std::string& pnid, const std::string& status) {
    std::string body = fake::FakeGraph::StatusWebhook(pnid, status);
    HttpClientRequest req;
    req.method = "POST";
    req.url = "http://127.0.0.1:" + std::to_string(ingress_port) + "/webhook";
    req.headers["X-Hub-Signature-256"] = ingress::SignBody(body, kAppSecret);
    req.body = body;
    req.timeout = std::chrono::milliseconds(5000);
    (void)HttpFetch(req);  // like Meta's, a webhook that is not answered is not redelivered here
  });
}

Stack::~Stack() {
  for (auto& [name, svc] : services) svc->process.Signal(SIGTERM);
  for (auto& [name, svc] : services) {
    bool stopped = WaitUntil([&] { return !svc->process.running(); }, 20s);
    EXPECT_TRUE(stopped) << name << " did not stop on SIGTERM";
  }
}

bool Stack::WaitReady(const std::string& service, std::chrono::seconds deadline) {
  return WaitUntil(
      [&] {
        int status = 0;
        HttpGet(Url(service, "/readyz"), &status);
        return status == 200;
      },
      deadline);
}

void Stack::Launch(const std::string& name) {
  auto& svc = services[name];
  if (!svc) {
    svc = std::make_unique<Service>();
    svc->name = name;
    svc->port = FreePort();
    svc->log = dir + "/" + name + ".log";
  }
  const std::string kind = name.substr(0, name.find('#'));
  std::vector<std::string> argv = {BinaryPath("services/" + kind + "/convoy-" + kind),
                                   "--amqp_url=" + vhost.PartUrl(kind),
                                   "--http_port=" + std::to_string(svc->port)};
  if (kind != "ingress") {
    std::string dsn = db.RoleDsn("convoy_" + kind);
    auto over = pg_port_override.find(name);
    if (over != pg_port_override.end()) {
      auto at = dsn.find("port=");
      dsn.replace(at, dsn.find(' ', at) - at, "port=" + std::to_string(over->second));
    }
    argv.push_back("--pg_dsn=" + dsn);
    argv.push_back("--schema_dir=" + SourcePath("proto-schemas"));
    argv.push_back("--migrations_dir=" + SourcePath("deploy/postgres"));
    argv.push_back("--consumer_threads=2");
  }
  if (kind == "conversation") {
    argv.push_back("--flows_dir=" + SourcePath("deploy/flows"));
    argv.push_back("--numbers_dir=" + SourcePath("deploy/numbers"));
  }
  if (kind == "media" || kind == "outbound") argv.push_back("--graph_base_url=" + graph.base_url());
  if (kind == "outbound" && services.count("media")) {
    argv.push_back("--media_public_url=http://127.0.0.1:" +
                   std::to_string(services["media"]->port));
  }
  // The console shows a checklist's photos through signed links to media: its port is chosen now
  // when media has not started yet (Launch("media") keeps it).
  if (kind == "conversation") {
    auto& media = services["media"];
    if (!media) {
      media = std::make_unique<Service>();
      media->name = "media";
      media->port = FreePort();
      media->log = dir + "/media.log";
    }
    argv.push_back("--media_public_url=http://127.0.0.1:" + std::to_string(media->port));
    // ...and takes an agent's photo for media (POST /v1/media, forwarded).
    argv.push_back("--media_api_url=http://127.0.0.1:" + std::to_string(media->port));
  }
  if (kind == "outbound" && services.count("conversation")) {
    argv.push_back("--conversation_api_url=http://127.0.0.1:" +
                   std::to_string(services["conversation"]->port));
  }
  if (kind == "media") {
    argv.push_back("--media_dir=" + dir + "/media");
    argv.push_back("--upload_destinations=listing=" + graph.upload_url());
    argv.push_back("--upload_allow_private");
  }
  auto extra = extra_args.find(kind);
  if (extra != extra_args.end())
    argv.insert(argv.end(), extra->second.begin(), extra->second.end());
  EXPECT_TRUE(svc->process.Start(argv, svc->log,
                                 {{"CONVOY_APP_SECRET", kAppSecret},
                                  {"CONVOY_VERIFY_TOKEN", "e2e-verify"},
                                  {"CONVOY_GRAPH_TOKEN", kGraphToken},
                                  {"CONVOY_MEDIA_TOKEN", kMediaToken},
                                  {"CONVOY_MEDIA_LINK_SECRET", kMediaLinkSecret},
                                  {"CONVOY_ADMIN_TOKEN", kAdminToken}}));
}

void Stack::Kill(const std::string& name) {
  services[name]->process.Signal(SIGKILL);
  services[name]->process.Wait();
}

std::string Stack::Url(const std::string& service, const std::string& path) {
  return "http://127.0.0.1:" + std::to_string(services[service]->port) + path;
}

HttpResponse Stack::Api(const std::string& method, const std::string& path,
                        const std::string& body) {
  HttpClientRequest req;
  req.method = method;
  req.url = Url("conversation", path);
  req.body = body;
  req.headers["Authorization"] = std::string("Bearer ") + kAdminToken;
  auto r = HttpFetch(req);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : HttpResponse{};
}

HttpResponse Stack::PostWebhook(const std::string& body, const std::string& signature) {
  HttpClientRequest req;
  req.method = "POST";
  // With a second ingress replica, every other POST goes to it (as a load balancer spreads them).
  const bool second = services.count("ingress#2") && (posts_.fetch_add(1) % 2 == 1);
  req.url = Url(second ? "ingress#2" : "ingress", "/webhook");
  req.headers["X-Hub-Signature-256"] = signature;
  req.body = body;
  auto r = HttpFetch(req);
  return r.ok() ? *r : HttpResponse{0, "", r.status().ToString(), {}};
}

double Stack::Metric(const std::string& service, const std::string& series) {
  return MetricValue(HttpGet(Url(service, "/metrics")), series);
}

bool Stack::Logged(const std::string& service, const std::string& correlation) {
  return WaitUntil(
      [&] {
        return services[service]->process.Log().find("correlation_id=" + correlation) !=
               std::string::npos;
      },
      10s);
}

std::string Stack::TextUpdate(const std::string& tag, int i, int senders) const {
  static const std::string kBase = ReadFile(FixturePath("webhooks/text.json"));
  static const std::string kSender = "16505551234", kText = "Does it come in another color?";
  std::string body = kBase;
  body.insert(body.find("\"wamid.") + 7, tag + std::to_string(i) + "x");
  std::string sender = kSender.substr(0, kSender.size() - 1) + std::to_string(i % senders);
  for (auto at = body.find(kSender); at != std::string::npos;
       at = body.find(kSender, at + sender.size())) {
    body.replace(at, kSender.size(), sender);
  }
  body.replace(body.find(kText), kText.size(), tag + " message " + std::to_string(i));
  // Written now: the reply is inside the 24-hour customer-service window.
  const std::string kStamp = "\"timestamp\": \"1749416383\"";
  body.replace(body.find(kStamp), kStamp.size(),
               "\"timestamp\": \"" + std::to_string(NowSeconds()) + "\"");
  return body;
}

int Stack::PostUpdate(const std::string& body) {
  return PostWebhook(body, ingress::SignBody(body, kAppSecret)).status;
}

int Stack::PostMessage(const std::string& wa_id, const std::string& message, int64_t timestamp) {
  if (timestamp == 0) timestamp = NowSeconds();
  return PostUpdate(
      MessageWebhook("106540352242922", wa_id, "Kerry", UniqueName("wamid.t"), timestamp, message));
}

bool Stack::WaitSends(const std::string& to, size_t count, std::chrono::seconds deadline) {
  return WaitUntil([&] { return graph.SentTexts(to).size() >= count; }, deadline);
}

std::vector<std::string> Stack::RegisterPhotos(const std::string& prefix, int n) {
  static const char* kFiles[] = {"media/photo1.jpg", "media/photo2.jpg", "media/photo3.jpg"};
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    ids.push_back(prefix + std::to_string(i));
    graph.RegisterMedia(ids.back(), FixturePath(kFiles[i % 3]), "image/jpeg");
  }
  return ids;
}

const std::vector<std::string>& Stack::ListingOpening() {
  static const auto* opening = new std::vector<std::string>{
      "Let's list your item! What's your email address? (Send CANCEL at any time to stop.)",
      "Describe the item in one message: what it is, brand, size, condition and price.",
      "Now send photos of the item. Text DONE when finished.",
  };
  return *opening;
}

void Stack::StartListing(const std::string& wa_id) {
  const std::vector<std::string> answers = {"SELL", "kerry@example.com",
                                            "Nike running shoes, size 42, used, $35"};
  for (size_t i = 0; i < answers.size(); ++i) {
    ASSERT_EQ(PostMessage(wa_id, TextMessage(answers[i])), 200);
    ASSERT_TRUE(WaitSends(wa_id, i + 1)) << "no answer to \"" << answers[i] << "\"\n"
                                         << graph.RequestsJson();
  }
  ASSERT_EQ(graph.SentTexts(wa_id), ListingOpening());
}

bool Stack::Drained(std::chrono::seconds deadline) {
  AmqpOptions o{vhost.url(), "stack-drained"};
  return WaitUntil(
      [&] {
        for (const char* q : {queues::kConversationInbound, queues::kConversationEvents,
                              queues::kOutboundSend, queues::kOutboundDeliver}) {
          auto n = QueueMessageCount(o, q);
          if (!n.ok() || *n != 0) return false;
        }
        return true;
      },
      deadline);
}

void Stack::ExpectEachAnsweredOnce(const std::string& tag, int n) {
  std::string sends = graph.RequestsJson();
  EXPECT_EQ(graph.SendCount(), static_cast<size_t>(n)) << sends;
  for (int k = 0; k < n; ++k) {
    std::string needle = tag + " message " + std::to_string(k) + "\\\"";  // the reply quotes it
    size_t first = sends.find(needle);
    EXPECT_NE(first, std::string::npos) << "update " << k << " lost";
    EXPECT_EQ(sends.find(needle, first + 1), std::string::npos)
        << "update " << k << " answered twice";
  }
  AmqpOptions o{vhost.url(), "stack-parked"};
  for (const char* q :
       {"conversation.inbound.dlq", "conversation.events.dlq", "outbound.send.dlq"}) {
    auto parked = QueueMessageCount(o, q);
    ASSERT_TRUE(parked.ok()) << parked.status().ToString();
    EXPECT_EQ(*parked, 0u) << q;
  }
}

}  // namespace convoy::test
